package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// SizeResult describes the arm64 bootstrap that `make build` produces.
type SizeResult struct {
	Path     string
	Bytes    int64
	Zipped   int64         // the deployment package (zip, deflate)
	Sections []SymbolGroup // the stripped binary's sections that occupy the file
	ByGroup  []SymbolGroup // machine code (.text) by dependency, from an unstripped build
	Symbols  int64         // sum of those code symbols
}

// SymbolGroup is the symbol bytes of one group of packages.
type SymbolGroup struct {
	Name  string
	Bytes int64
}

// BinarySize measures the stripped arm64 binary at path and splits an unstripped build of the same
// package by dependency.
func BinarySize(ctx context.Context, path, repo, scratch string) (SizeResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return SizeResult{}, fmt.Errorf("binary size: %w", err)
	}
	r := SizeResult{Path: path, Bytes: st.Size()}
	if r.Zipped, err = zippedSize(path); err != nil {
		return r, err
	}
	stripped, err := elf.Open(path)
	if err != nil {
		return r, fmt.Errorf("binary size: %w", err)
	}
	for _, sec := range stripped.Sections {
		if sec.Type != elf.SHT_NOBITS && sec.Size > 0 && sec.Name != "" {
			r.Sections = append(r.Sections, SymbolGroup{sec.Name, int64(sec.Size)})
		}
	}
	stripped.Close()
	sort.Slice(r.Sections, func(i, j int) bool { return r.Sections[i].Bytes > r.Sections[j].Bytes })
	full := filepath.Join(scratch, "bootstrap-arm64-symbols")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", full, "./functions/kinesis-to-pulsar")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		return r, fmt.Errorf("binary size: unstripped build: %w\n%s", err, out)
	}
	defer os.Remove(full)
	f, err := elf.Open(full)
	if err != nil {
		return r, fmt.Errorf("binary size: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return r, fmt.Errorf("binary size: symbols: %w", err)
	}
	groups := map[string]int64{}
	for _, sym := range syms {
		// Code only: its symbols carry their sizes and belong to one package each.
		if sym.Section == elf.SHN_UNDEF || int(sym.Section) >= len(f.Sections) || f.Sections[sym.Section].Name != ".text" {
			continue
		}
		g := symbolGroup(sym.Name)
		groups[g] += int64(sym.Size)
		r.Symbols += int64(sym.Size)
	}
	for name, n := range groups {
		r.ByGroup = append(r.ByGroup, SymbolGroup{name, n})
	}
	sort.Slice(r.ByGroup, func(i, j int) bool { return r.ByGroup[i].Bytes > r.ByGroup[j].Bytes })
	return r, nil
}

// symbolGroup maps a symbol to a readable group: a module (or its interesting part), the standard
// library, or the runtime's own tables.
func symbolGroup(sym string) string {
	sym = strings.TrimPrefix(sym, "type:.eq.")
	sym = strings.TrimPrefix(sym, "type:")
	sym = strings.TrimPrefix(sym, "go:itab.")
	sym = strings.TrimLeft(sym, "*")
	// A package path ends at the first dot after the last slash.
	pkg := sym
	if i := strings.LastIndexByte(sym, '/'); i >= 0 {
		if j := strings.IndexByte(sym[i:], '.'); j >= 0 {
			pkg = sym[:i+j]
		}
	} else if j := strings.IndexByte(sym, '.'); j >= 0 {
		pkg = sym[:j]
	}
	prefixes := []struct{ prefix, name string }{
		{"github.com/streambridge/kinesis-pulsar", "kinesis-pulsar (our code)"},
		{"github.com/apache/pulsar-client-go", "pulsar-client-go"},
		{"github.com/aws/aws-sdk-go-v2", "aws-sdk-go-v2 (DynamoDB, Secrets Manager)"},
		{"github.com/aws/smithy-go", "smithy-go (AWS SDK)"},
		{"github.com/aws/aws-lambda-go", "aws-lambda-go"},
		{"k8s.io", "k8s.io/* and its deps (via Athenz auth in pulsar-client-go)"},
		{"sigs.k8s.io", "k8s.io/* and its deps (via Athenz auth in pulsar-client-go)"},
		{"github.com/fxamacker/cbor", "k8s.io/* and its deps (via Athenz auth in pulsar-client-go)"},
		{"github.com/json-iterator", "k8s.io/* and its deps (via Athenz auth in pulsar-client-go)"},
		{"github.com/AthenZ", "Athenz (pulsar-client-go auth)"},
		{"github.com/ardielle", "Athenz (pulsar-client-go auth)"},
		{"github.com/RoaringBitmap", "RoaringBitmap, gods (pulsar-client-go)"},
		{"github.com/bits-and-blooms", "RoaringBitmap, gods (pulsar-client-go)"},
		{"github.com/emirpasic/gods", "RoaringBitmap, gods (pulsar-client-go)"},
		{"google.golang.org/protobuf", "google.golang.org/protobuf"},
		{"github.com/gogo/protobuf", "gogo/protobuf"},
		{"github.com/prometheus", "prometheus client (pulsar-client-go metrics)"},
		{"github.com/klauspost/compress", "klauspost/compress (zstd)"},
		{"github.com/hamba/avro", "hamba/avro (pulsar schemas)"},
		{"golang.org/x", "golang.org/x/*"},
		{"vendor/golang.org/x", "standard library"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(pkg, p.prefix) {
			return p.name
		}
	}
	if strings.HasPrefix(pkg, "runtime") || strings.HasPrefix(pkg, "go:") || strings.HasPrefix(pkg, "gclocals") ||
		strings.HasPrefix(pkg, "go.") || !strings.Contains(pkg, ".") && !strings.Contains(pkg, "/") && pkg == sym {
		return "Go runtime"
	}
	if !strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") {
		return "standard library"
	}
	return "other modules"
}

func zippedSize(path string) (int64, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err != nil {
		return 0, fmt.Errorf("zip: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("zip: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return 0, fmt.Errorf("zip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("zip: %w", err)
	}
	return int64(buf.Len()), nil
}
