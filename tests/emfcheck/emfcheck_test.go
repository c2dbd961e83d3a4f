package emfcheck

import (
	"strings"
	"testing"
)

func TestValidateRejects(t *testing.T) {
	good := `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"F":"f","M":1}`
	if err := Validate([]byte(good)); err != nil {
		t.Fatalf("good document rejected: %v", err)
	}
	for name, doc := range map[string]string{
		"no _aws":          `{"M":1}`,
		"no timestamp":     `{"_aws":{"CloudWatchMetrics":[]}}`,
		"bad unit":         strings.Replace(good, `"Count"`, `"Things"`, 1),
		"missing value":    strings.Replace(good, `,"M":1`, ``, 1),
		"missing dim":      strings.Replace(good, `"F":"f",`, ``, 1),
		"string value":     strings.Replace(good, `"M":1`, `"M":"1"`, 1),
		"empty array":      strings.Replace(good, `"M":1`, `"M":[]`, 1),
		"no namespace":     strings.Replace(good, `"Namespace":"N",`, ``, 1),
		"numeric dim":      strings.Replace(good, `"F":"f"`, `"F":3`, 1),
		"bad resolution":   strings.Replace(good, `"Unit":"Count"`, `"Unit":"Count","StorageResolution":5`, 1),
		"not json":         `{`,
		"too many values":  strings.Replace(good, `"M":1`, `"M":[`+strings.Repeat("1,", 100)+`1]`, 1),
		"metrics missing":  strings.Replace(good, `,"Metrics":[{"Name":"M","Unit":"Count"}]`, ``, 1),
		"dimensions nil":   strings.Replace(good, `"Dimensions":[["F"]],`, ``, 1),
		"timestamp string": strings.Replace(good, `"Timestamp":1`, `"Timestamp":"1"`, 1),
	} {
		if err := Validate([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
