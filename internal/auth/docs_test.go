package auth

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// docs/deploy.md is the one description of the secret's value. Each documented form decodes without an
// unknown field, the forms cover every type the parser takes, and every field the parser reads is
// documented (caPem in the sentence after the block).
func TestDeployDocDescribesTheSecretFormat(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "The value is JSON, one of\n\n```json\n")
	block, after, ok2 := strings.Cut(block, "```\n")
	if !ok || !ok2 {
		t.Fatal("docs/deploy.md has no block after \"The value is JSON, one of\"")
	}
	documented := map[string]bool{}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		var fields map[string]string
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("documented form %s is not a JSON object of strings: %v", line, err)
		}
		if p := decodeJSON([]byte(line), &material{}); p != "" {
			t.Errorf("documented form %s: the parser says it %s", line, p)
		}
		types = append(types, fields["type"])
		for name := range fields {
			documented[name] = true
		}
	}
	if want := []string{typeOAuth2, typeTLS, typeToken}; !slices.Equal(slices.Sorted(slices.Values(types)), want) {
		t.Errorf("documented types %v, the parser takes %v", types, want)
	}
	if strings.Contains(after[:min(len(after), 300)], "`\"caPem\"`") {
		documented["caPem"] = true
	}
	mt := reflect.TypeFor[material]()
	for i := range mt.NumField() {
		if tag := mt.Field(i).Tag.Get("json"); tag != "" && !documented[tag] {
			t.Errorf("the parser reads field %q, docs/deploy.md does not document it", tag)
		}
	}
}
