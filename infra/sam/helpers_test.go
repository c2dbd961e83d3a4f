package sam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// Paths from this package's directory, where go test runs.
const (
	templatePath  = "../../template.yaml"
	samconfigPath = "../../samconfig.toml"
	makefilePath  = "../../Makefile"
	functionID    = "KinesisToPulsarFunction"
)

// tmpl is template.yaml in long form, split by section.
type tmpl struct {
	params, conds, resources, outputs, rules map[string]any
}

func loadTmpl(t *testing.T) *tmpl {
	t.Helper()
	raw, err := LoadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	return &tmpl{
		params:    asMap(raw["Parameters"]),
		conds:     asMap(raw["Conditions"]),
		resources: asMap(raw["Resources"]),
		outputs:   asMap(raw["Outputs"]),
		rules:     asMap(raw["Rules"]),
	}
}

func (tp *tmpl) resource(t *testing.T, id string) map[string]any {
	t.Helper()
	r := asMap(tp.resources[id])
	if r == nil {
		t.Fatalf("template has no resource %s", id)
	}
	return r
}

func (tp *tmpl) props(t *testing.T, id string) map[string]any {
	t.Helper()
	return asMap(tp.resource(t, id)["Properties"])
}

// resourcesOfType returns the logical ids of every resource of a type, sorted.
func (tp *tmpl) resourcesOfType(typ string) []string {
	var ids []string
	for id, r := range tp.resources {
		if asMap(r)["Type"] == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

var pseudoParameters = []string{"AWS::AccountId", "AWS::NoValue", "AWS::NotificationARNs", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}

// kind says what a name in a Ref, GetAtt or ${} denotes: "parameter", "resource", "pseudo" or "".
func (tp *tmpl) kind(name string) string {
	switch {
	case tp.params[name] != nil:
		return "parameter"
	case tp.resources[name] != nil:
		return "resource"
	case slices.Contains(pseudoParameters, name):
		return "pseudo"
	}
	return ""
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asList(v any) []any         { l, _ := v.([]any); return l }

// at follows keys through nested mappings; nil when a key is missing.
func at(v any, keys ...string) any {
	for _, k := range keys {
		v = asMap(v)[k]
	}
	return v
}

// intrinsic returns the function name and argument of an intrinsic function object.
func intrinsic(v any) (fn string, arg any, ok bool) {
	m := asMap(v)
	if len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

func refName(v any) (string, bool) {
	fn, arg, ok := intrinsic(v)
	s, isString := arg.(string)
	return s, ok && fn == "Ref" && isString
}

func getAtt(v any) (resource, attr string, ok bool) {
	fn, arg, ok := intrinsic(v)
	l := asList(arg)
	if !ok || fn != "Fn::GetAtt" || len(l) != 2 {
		return "", "", false
	}
	r, ok1 := l[0].(string)
	a, ok2 := l[1].(string)
	return r, a, ok1 && ok2
}

// ifArgs returns the condition and branches of an Fn::If.
func ifArgs(v any) (cond string, yes, no any, ok bool) {
	fn, arg, ok := intrinsic(v)
	l := asList(arg)
	if !ok || fn != "Fn::If" || len(l) != 3 {
		return "", nil, nil, false
	}
	c, isString := l[0].(string)
	return c, l[1], l[2], isString
}

func isNoValue(v any) bool { n, ok := refName(v); return ok && n == "AWS::NoValue" }

// subVar matches ${Name} and ${Resource.Attr} in an Fn::Sub string; ${!Literal} is an escape.
var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// subString returns the string of an Fn::Sub and its local variables.
func subString(v any) (s string, locals map[string]any, ok bool) {
	fn, arg, isIntrinsic := intrinsic(v)
	if !isIntrinsic || fn != "Fn::Sub" {
		return "", nil, false
	}
	if s, ok := arg.(string); ok {
		return s, nil, true
	}
	if l := asList(arg); len(l) == 2 {
		s, ok := l[0].(string)
		return s, asMap(l[1]), ok
	}
	return "", nil, false
}

// reference is one use of a parameter, resource or pseudo parameter.
type reference struct {
	name   string
	where  string
	active []string // conditions known to hold where the reference sits ("!C" for a false branch)
}

// walk collects the references in v and the conditions named in it. active are the conditions that
// hold at v: the enclosing resource's or output's Condition and the branches of enclosing Fn::Ifs.
func (tp *tmpl) walk(v any, where string, active []string, refs *[]reference, conds map[string]bool) {
	if fn, arg, ok := intrinsic(v); ok {
		switch fn {
		case "Ref":
			if s, ok := arg.(string); ok {
				*refs = append(*refs, reference{s, where, active})
			}
			return
		case "Fn::GetAtt":
			if r, _, ok := getAtt(v); ok {
				*refs = append(*refs, reference{r, where, active})
			}
			return
		case "Condition":
			if s, ok := arg.(string); ok {
				conds[s] = true
			}
			return
		case "Fn::Sub":
			s, locals, _ := subString(v)
			for _, m := range subVar.FindAllStringSubmatch(s, -1) {
				name, _, _ := strings.Cut(m[1], ".")
				if _, local := locals[name]; !local {
					*refs = append(*refs, reference{name, where, active})
				}
			}
			for k, lv := range locals {
				tp.walk(lv, where+"."+k, active, refs, conds)
			}
			return
		case "Fn::If":
			if c, yes, no, ok := ifArgs(v); ok {
				conds[c] = true
				tp.walk(yes, where, append(slices.Clone(active), c), refs, conds)
				tp.walk(no, where, append(slices.Clone(active), "!"+c), refs, conds)
				return
			}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			tp.walk(e, where+"."+k, active, refs, conds)
		}
	case []any:
		for i, e := range x {
			tp.walk(e, fmt.Sprintf("%s[%d]", where, i), active, refs, conds)
		}
	}
}

// implied returns c and the conditions that c implies through Fn::And.
func (tp *tmpl) implied(c string) []string {
	out := []string{c}
	fn, arg, ok := intrinsic(tp.conds[c])
	if ok && fn == "Fn::And" {
		for _, e := range asList(arg) {
			if efn, earg, ok := intrinsic(e); ok && efn == "Condition" {
				if s, ok := earg.(string); ok {
					out = append(out, tp.implied(s)...)
				}
			}
		}
	}
	return out
}

// usage walks every section that makes up the stack (not Rules or Metadata, which only check or
// describe it).
func (tp *tmpl) usage() ([]reference, map[string]bool) {
	var refs []reference
	conds := map[string]bool{}
	for id, r := range tp.resources {
		var active []string
		if c, ok := asMap(r)["Condition"].(string); ok {
			conds[c] = true
			active = []string{c}
		}
		tp.walk(asMap(r)["Properties"], "Resources."+id, active, &refs, conds)
		tp.walk(asMap(r)["DependsOn"], "Resources."+id+".DependsOn", active, &refs, conds)
	}
	for id, o := range tp.outputs {
		var active []string
		if c, ok := asMap(o)["Condition"].(string); ok {
			conds[c] = true
			active = []string{c}
		}
		tp.walk(asMap(o)["Value"], "Outputs."+id, active, &refs, conds)
	}
	for id, c := range tp.conds {
		tp.walk(c, "Conditions."+id, nil, &refs, conds)
	}
	return refs, conds
}

func newJSONDecoder(data []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec
}

// metricsMetrics lists the names of relay.MetricSchema.Metrics.
func metricsMetrics() []string {
	names := make([]string, len(relay.MetricSchema.Metrics))
	for i, m := range relay.MetricSchema.Metrics {
		names[i] = m.Name
	}
	return names
}

// dimensionSets returns relay.MetricSchema.DimensionSets with each set sorted.
func dimensionSets() [][]string {
	out := make([][]string, len(relay.MetricSchema.DimensionSets))
	for i, set := range relay.MetricSchema.DimensionSets {
		out[i] = slices.Sorted(slices.Values(set))
	}
	return out
}
