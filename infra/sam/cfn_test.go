package sam

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		want    any
		wantErr string
	}{
		{"Ref", "v: !Ref Param", map[string]any{"Ref": "Param"}, ""},
		{"GetAtt scalar", "v: !GetAtt Queue.Arn", map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}}, ""},
		{"GetAtt nested attribute", "v: !GetAtt Db.Endpoint.Address", map[string]any{"Fn::GetAtt": []any{"Db", "Endpoint.Address"}}, ""},
		{"GetAtt list", "v: !GetAtt [Queue, Arn]", map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}}, ""},
		{"Sub block", "v: !Sub |\n  a ${X}\n", map[string]any{"Fn::Sub": "a ${X}\n"}, ""},
		{"nested If and NoValue", "v: !If [C, !Ref A, !Ref AWS::NoValue]",
			map[string]any{"Fn::If": []any{"C", map[string]any{"Ref": "A"}, map[string]any{"Ref": "AWS::NoValue"}}}, ""},
		{"Condition", "v: !And [!Condition A, !Equals [!Ref P, x]]",
			map[string]any{"Fn::And": []any{map[string]any{"Condition": "A"},
				map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "P"}, "x"}}}}, ""},
		{"tagged scalar stays a string", "v: !Ref 123", map[string]any{"Ref": "123"}, ""},
		{"plain scalars keep their YAML types", "v: [1, \"1\", true, \"true\", 1.5, null]", []any{1, "1", true, "true", 1.5, nil}, ""},
		{"mapping under a tag", "v: !Sub [\"${A}\", {A: !Ref B}]",
			map[string]any{"Fn::Sub": []any{"${A}", map[string]any{"A": map[string]any{"Ref": "B"}}}}, ""},
		{"unknown tag", "v: !Reff X", nil, "unknown tag !Reff"},
		{"GetAtt without attribute", "v: !GetAtt Queue", nil, "not Resource.Attribute"},
		{"duplicate key", "v: 1\nv: 2", nil, "duplicate key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTemplate([]byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got["v"], tc.want) {
				t.Errorf("got %#v\nwant %#v", got["v"], tc.want)
			}
		})
	}
}
