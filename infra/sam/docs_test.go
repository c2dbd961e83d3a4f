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

// The connector's settings are mapped in one table, docs/deploy.md's; every template parameter it names
// exists, and the README links to it instead of keeping a copy.
func TestConnectorTableNamesParameters(t *testing.T) {
	tp := loadTmpl(t)
	doc, err := os.ReadFile(deployDocPath)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### Switching over from the Pulsar IO Kinesis source\n")
	if !ok {
		t.Fatal("docs/deploy.md has no \"### Switching over from the Pulsar IO Kinesis source\" section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	rows := regexp.MustCompile(`(?m)^\| (.+) \| (.+) \|$`).FindAllStringSubmatch(section, -1)
	if len(rows) < 10 {
		t.Fatalf("the connector table has %d rows", len(rows))
	}
	for _, row := range rows {
		for _, m := range regexp.MustCompile("`([A-Z][a-z][A-Za-z]*)`").FindAllStringSubmatch(row[2], -1) {
			if tp.params[m[1]] == nil {
				t.Errorf("the connector table maps %s to %s, which is no template parameter", row[1], m[1])
			}
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README's source-connector section links to that table instead of keeping its own (the sink's
	// connector table, another fact, lives in the README's sink section).
	_, source, ok := strings.Cut(string(readme), "\n## Coming from the Pulsar IO Kinesis source connector\n")
	if !ok {
		t.Fatal("README has no \"## Coming from the Pulsar IO Kinesis source connector\" section")
	}
	source, _, _ = strings.Cut(source, "\n## ")
	if strings.Contains(source, "| `awsKinesisStreamName`") || !strings.Contains(source, "docs/deploy.md#switching-over-from-the-pulsar-io-kinesis-source") {
		t.Error("README keeps its own source connector table, or does not link to docs/deploy.md's")
	}
}
