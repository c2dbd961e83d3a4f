package docscheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

const root = "../.."

// docs are the pages a reader follows: the README, docs/ and the local stack's README.
func docs(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "infra", "local", "README.md"))
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		out[rel] = string(b)
	}
	return out
}

// makeTargets are the targets the Makefile and the files it includes define (pattern rules aside).
func makeTargets(t *testing.T) []string {
	t.Helper()
	rule := regexp.MustCompile(`(?m)^([A-Za-z][A-Za-z0-9_-]*):`)
	var targets []string
	for _, f := range []string{"Makefile", "infra/sam/sam.mk", "infra/dev.mk", "infra/bench/bench.mk"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rule.FindAllStringSubmatch(string(b), -1) {
			if m[1] != "FORCE" {
				targets = append(targets, m[1])
			}
		}
	}
	return targets
}

func makeHelp(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", "help")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			listed[f[0]] = true
		}
	}
	return listed
}

// TestMakeHelpListsEveryTarget: every target has its line in `make help` (the build-<LogicalId>
// targets `sam build` runs share one).
func TestMakeHelpListsEveryTarget(t *testing.T) {
	listed := makeHelp(t)
	for _, target := range makeTargets(t) {
		if !listed[target] && !(strings.HasPrefix(target, "build-") && listed["build-<LogicalId>"]) {
			t.Errorf("make help does not list %s (give it a `## %s: ...` line)", target, target)
		}
	}
}

// TestMakeCommandsExist: every make command in the docs' code (code spans, code blocks) names targets of
// the Makefile.
func TestMakeCommandsExist(t *testing.T) {
	targets := makeTargets(t)
	makeCmd := regexp.MustCompile(`(?:^|[;&|(]\s*)make ((?:[A-Za-z][A-Za-z0-9_-]*(?: |$))+)`)
	for file, text := range docs(t) {
		for _, code := range codeOf(text) {
			for _, m := range makeCmd.FindAllStringSubmatch(code, -1) {
				for _, word := range strings.Fields(m[1]) {
					if strings.ToUpper(word) == word {
						break // a variable assignment follows the targets
					}
					if !slices.Contains(targets, word) {
						t.Errorf("%s: `make %s`: no such target", file, word)
					}
				}
			}
		}
	}
}

// codeOf returns the code spans of a Markdown page and the lines of its code blocks.
func codeOf(body string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			out = append(out, strings.TrimSpace(line))
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

var (
	pathToken = regexp.MustCompile("`((?:internal|infra|functions|events|docs)/[^` ]*|template\\.yaml|samconfig\\.toml|go\\.mod|Makefile)`")
	goRun     = regexp.MustCompile(`go run (\./[A-Za-z0-9_./-]+)`)
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpan  = regexp.MustCompile("`([^`]+)`")
)

// TestNamedPathsExist: every repository path the docs name in code spans exists (globs and
// placeholders are left alone; `pkg.Name` is the package pkg).
func TestNamedPathsExist(t *testing.T) {
	for file, text := range docs(t) {
		for _, m := range pathToken.FindAllStringSubmatch(text, -1) {
			p := m[1]
			if strings.ContainsAny(p, "*<…") {
				continue
			}
			p = strings.TrimSuffix(p, "/...")
			if !exists(p) {
				if i := strings.LastIndex(p, "."); i > strings.LastIndex(p, "/") && i+1 < len(p) && unicode.IsUpper(rune(p[i+1])) {
					p = p[:i]
				}
			}
			if !exists(p) {
				t.Errorf("%s names %s, which does not exist", file, m[1])
			}
		}
	}
}

// TestLinksResolve: every relative link points at a file that exists, and at a heading of it.
func TestLinksResolve(t *testing.T) {
	all := docs(t)
	for file, text := range all {
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Clean(filepath.Join(filepath.Dir(file), path))
				if !exists(resolved) {
					t.Errorf("%s links to %s, which does not exist", file, target)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			body, ok := all[resolved]
			if !ok {
				b, err := os.ReadFile(filepath.Join(root, resolved))
				if err != nil {
					t.Errorf("%s links to %s: %v", file, target, err)
					continue
				}
				body = string(b)
			}
			if !slices.Contains(anchors(body), anchor) {
				t.Errorf("%s links to %s: %s has no heading with that anchor", file, target, resolved)
			}
		}
	}
}

// TestGoRunCommandsBuild: the program of every `go run ./…` in the docs builds.
func TestGoRunCommandsBuild(t *testing.T) {
	var pkgs []string
	for _, text := range docs(t) {
		for _, m := range goRun.FindAllStringSubmatch(text, -1) {
			if !slices.Contains(pkgs, m[1]) {
				pkgs = append(pkgs, m[1])
			}
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("no `go run` command found in the docs")
	}
	slices.Sort(pkgs)
	cmd := exec.Command("go", append([]string{"build", "-o", os.DevNull}, pkgs...)...)
	if len(pkgs) > 1 {
		cmd = exec.Command("go", append([]string{"build"}, pkgs...)...) // several packages: built, then discarded
	}
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("go build %v: %v\n%s", pkgs, err, stderr.String())
	}
}

func exists(p string) bool {
	_, err := os.Stat(filepath.Join(root, p))
	return err == nil
}

// anchors are the GitHub anchors of a Markdown page's headings (outside code blocks).
func anchors(body string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range title {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// TestEnvFileDocumented: infra/local/README.md, the one description of .cache/run/env, lists exactly
// the keys stack.sh writes.
func TestEnvFileDocumented(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(root, "infra/local/stack.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, m := range regexp.MustCompile(`(?m)^\s*write_kv_line ([A-Z_]+) `).FindAllStringSubmatch(string(script), -1) {
		if !slices.Contains(written, m[1]) { // up and ensure write the same file
			written = append(written, m[1])
		}
	}
	_, section, ok := strings.Cut(docs(t)["infra/local/README.md"], "## Env file `.cache/run/env`")
	if !ok {
		t.Fatal("infra/local/README.md has no \"## Env file `.cache/run/env`\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var documented []string
	for _, row := range regexp.MustCompile("(?m)^\\| ((?:`[A-Z_]+`(?:, )?)+) \\|").FindAllStringSubmatch(section, -1) {
		for _, m := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(row[1], -1) {
			documented = append(documented, m[1])
		}
	}
	slices.Sort(written)
	slices.Sort(documented)
	if len(written) == 0 || !slices.Equal(written, documented) {
		t.Errorf("stack.sh writes %v to the env file, infra/local/README.md documents %v", written, documented)
	}
}
