package sam

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimalELF builds a 64-bit little-endian ELF file with the given type, machine and program header
// types: just enough for debug/elf, so the test needs no cross-compiler.
func minimalELF(typ elf.Type, machine elf.Machine, progs ...elf.ProgType) []byte {
	const ehsize, phentsize = 64, 56
	var b bytes.Buffer
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	b.Write(ident[:])
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&b, le, v) }
	phoff := uint64(0)
	if len(progs) > 0 {
		phoff = ehsize
	}
	w(uint16(typ))
	w(uint16(machine))
	w(uint32(elf.EV_CURRENT))
	w(uint64(0x10000)) // entry
	w(phoff)
	w(uint64(0)) // no section headers
	w(uint32(0)) // flags
	w(uint16(ehsize))
	w(uint16(phentsize))
	w(uint16(len(progs)))
	w(uint16(64)) // shentsize
	w(uint16(0))  // shnum
	w(uint16(0))  // shstrndx
	dataOff := uint64(ehsize + phentsize*len(progs))
	for _, p := range progs {
		w(uint32(p))
		w(uint32(elf.PF_R))
		w(dataOff) // offset
		w(uint64(0x10000))
		w(uint64(0x10000))
		w(uint64(1)) // filesz
		w(uint64(1)) // memsz
		w(uint64(1)) // align
	}
	b.WriteByte(0)
	return b.Bytes()
}

func TestCheckLambdaBinary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string // "" = accepted
	}{
		{"static arm64 executable", minimalELF(elf.ET_EXEC, elf.EM_AARCH64, elf.PT_LOAD), ""},
		{"amd64", minimalELF(elf.ET_EXEC, elf.EM_X86_64, elf.PT_LOAD), "EM_AARCH64"},
		{"dynamically linked", minimalELF(elf.ET_EXEC, elf.EM_AARCH64, elf.PT_LOAD, elf.PT_INTERP), "interpreter"},
		{"dynamic section", minimalELF(elf.ET_EXEC, elf.EM_AARCH64, elf.PT_LOAD, elf.PT_DYNAMIC), "dynamic section"},
		{"position-independent", minimalELF(elf.ET_DYN, elf.EM_AARCH64, elf.PT_LOAD), "ET_EXEC"},
		{"not ELF", []byte("#!/bin/sh\necho bootstrap\n"), "not an ELF file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bootstrap")
			if err := os.WriteFile(path, tc.data, 0o755); err != nil {
				t.Fatal(err)
			}
			err := CheckLambdaBinary(path)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted, want an error mentioning %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}
