package sam

import (
	"debug/elf"
	"fmt"
)

// CheckLambdaBinary reports why the file at path cannot run as a provided.al2023 arm64 bootstrap: it
// must be a 64-bit little-endian ELF executable for AArch64, statically linked (no program
// interpreter, no dynamic section), since the runtime's glibc may differ from the build host's.
func CheckLambdaBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF file: %w", path, err)
	}
	defer f.Close()
	switch {
	case f.Class != elf.ELFCLASS64:
		return fmt.Errorf("%s: class %v, want ELFCLASS64", path, f.Class)
	case f.Data != elf.ELFDATA2LSB:
		return fmt.Errorf("%s: byte order %v, want ELFDATA2LSB", path, f.Data)
	case f.Machine != elf.EM_AARCH64:
		return fmt.Errorf("%s: machine %v, want EM_AARCH64 (arm64)", path, f.Machine)
	case f.Type != elf.ET_EXEC:
		return fmt.Errorf("%s: type %v, want ET_EXEC (a static, non-PIE executable)", path, f.Type)
	}
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			return fmt.Errorf("%s: dynamically linked (has a program interpreter); build with CGO_ENABLED=0", path)
		case elf.PT_DYNAMIC:
			return fmt.Errorf("%s: has a dynamic section; build with CGO_ENABLED=0", path)
		}
	}
	return nil
}
