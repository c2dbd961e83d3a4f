package sam

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

const deployDocPath = "../../docs/deploy.md"

// paramRow matches a row of the parameters table: | `Name` | default | meaning |.
var paramRow = regexp.MustCompile("(?m)^\\| `([A-Za-z0-9]+)` \\| ([^|\\n]+) \\| [^|\\n]+ \\|$")

func TestDeployDocListsEveryParameter(t *testing.T) {
	tp := loadTmpl(t)
	doc, err := os.ReadFile(deployDocPath)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Parameters\n")
	if !ok {
		t.Fatal("docs/deploy.md has no \"## Parameters\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, m := range paramRow.FindAllStringSubmatch(section, -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/deploy.md lists %s twice", m[1])
		}
		rows[m[1]] = strings.TrimSpace(m[2])
	}
	for name, p := range tp.params {
		got, ok := rows[name]
		if !ok {
			t.Errorf("docs/deploy.md does not list parameter %s", name)
			continue
		}
		want := "(required)"
		switch def, has := asMap(p)["Default"]; {
		case has && fmt.Sprint(def) == "":
			want = "(empty)"
		case has:
			want = fmt.Sprintf("`%v`", def)
		}
		if got != want {
			t.Errorf("docs/deploy.md gives %s the default %q, the template %q", name, got, want)
		}
	}
	for name := range rows {
		if tp.params[name] == nil {
			t.Errorf("docs/deploy.md lists %s, which is no template parameter", name)
		}
	}
}
