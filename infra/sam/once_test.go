package sam

import (
	"fmt"
	"testing"
)

// evalRule evaluates a Rules condition or assertion made of Fn::Equals, Fn::Not and Ref to parameters,
// with the parameters' defaults overridden by values.
func evalRule(t *testing.T, tp *tmpl, v any, values map[string]string) bool {
	t.Helper()
	fn, arg, ok := intrinsic(v)
	if !ok {
		t.Fatalf("not an intrinsic function: %#v", v)
	}
	switch fn {
	case "Fn::Not":
		return !evalRule(t, tp, asList(arg)[0], values)
	case "Fn::Equals":
		l := asList(arg)
		return ruleValue(t, tp, l[0], values) == ruleValue(t, tp, l[1], values)
	}
	t.Fatalf("unsupported function %s in a rule", fn)
	return false
}

func ruleValue(t *testing.T, tp *tmpl, v any, values map[string]string) string {
	if name, ok := refName(v); ok {
		if s, ok := values[name]; ok {
			return s
		}
		p := asMap(tp.params[name])
		if p == nil {
			t.Fatalf("rule refers to unknown parameter %s", name)
		}
		return fmt.Sprint(p["Default"])
	}
	return fmt.Sprint(v)
}

// TestEffectivelyOnceRule: the template refuses effectivelyOnce with more than one batch per shard,
// without the audit table, with bisecting or without a message key; at-least-once is not constrained.
func TestEffectivelyOnceRule(t *testing.T) {
	tp := loadTmpl(t)
	rule := asMap(tp.rules["EffectivelyOnceNeedsOneBatchPerShard"])
	if rule == nil {
		t.Fatal("no rule EffectivelyOnceNeedsOneBatchPerShard")
	}
	for _, tc := range []struct {
		values map[string]string
		ok     bool
	}{
		{map[string]string{"ProcessingGuarantee": "effectivelyOnce"}, true},
		{map[string]string{"ProcessingGuarantee": "effectivelyOnce", "PulsarMessageKey": "shardId"}, true},
		{map[string]string{"ProcessingGuarantee": "effectivelyOnce", "ParallelizationFactor": "2"}, false},
		{map[string]string{"ProcessingGuarantee": "effectivelyOnce", "AuditEnabled": "false"}, false},
		{map[string]string{"ProcessingGuarantee": "effectivelyOnce", "BisectBatchOnFunctionError": "true"}, false},
		{map[string]string{"ProcessingGuarantee": "effectivelyOnce", "PulsarMessageKey": "none"}, false},
		{map[string]string{"ParallelizationFactor": "10", "AuditEnabled": "false", "BisectBatchOnFunctionError": "true"}, true},
	} {
		ok := true
		if evalRule(t, tp, rule["RuleCondition"], tc.values) {
			for _, a := range asList(rule["Assertions"]) {
				if !evalRule(t, tp, asMap(a)["Assert"], tc.values) {
					ok = false
				}
			}
		}
		if ok != tc.ok {
			t.Errorf("%v: accepted %v, want %v", tc.values, ok, tc.ok)
		}
	}
}
