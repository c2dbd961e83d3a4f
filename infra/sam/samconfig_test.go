package sam

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/BurntSushi/toml"
)

// samEnv is the part of one samconfig.toml environment the checks read.
type samEnv struct {
	Global struct {
		Parameters struct {
			StackName string `toml:"stack_name"`
			Region    string `toml:"region"`
		} `toml:"parameters"`
	} `toml:"global"`
	Build struct {
		Parameters struct {
			UseContainer *bool `toml:"use_container"`
		} `toml:"parameters"`
	} `toml:"build"`
	Validate struct {
		Parameters struct {
			Lint *bool `toml:"lint"`
		} `toml:"parameters"`
	} `toml:"validate"`
	Deploy struct {
		Parameters struct {
			Capabilities       string   `toml:"capabilities"`
			ConfirmChangeset   *bool    `toml:"confirm_changeset"`
			ParameterOverrides []string `toml:"parameter_overrides"`
		} `toml:"parameters"`
	} `toml:"deploy"`
}

type samconfig struct {
	Version float64
	Envs    map[string]samEnv
}

// loadSamconfig decodes samconfig.toml, whose top level mixes the version with environment tables.
func loadSamconfig(t *testing.T) samconfig {
	t.Helper()
	var raw map[string]toml.Primitive
	md, err := toml.DecodeFile(samconfigPath, &raw)
	if err != nil {
		t.Fatal(err)
	}
	c := samconfig{Envs: map[string]samEnv{}}
	for k, prim := range raw {
		if k == "version" {
			if err := md.PrimitiveDecode(prim, &c.Version); err != nil {
				t.Fatalf("version: %v", err)
			}
			continue
		}
		var env samEnv
		if err := md.PrimitiveDecode(prim, &env); err != nil {
			t.Fatalf("environment %s: %v", k, err)
		}
		c.Envs[k] = env
	}
	return c
}

func TestSamconfig(t *testing.T) {
	tp := loadTmpl(t)
	c := loadSamconfig(t)
	if c.Version != 0.1 {
		t.Errorf("version = %v, want 0.1", c.Version)
	}
	stacks := map[string]string{}
	for _, name := range []string{"default", "prod"} {
		env, ok := c.Envs[name]
		if !ok {
			t.Errorf("no %s environment", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			g, d := env.Global.Parameters, env.Deploy.Parameters
			if g.StackName == "" || g.Region == "" {
				t.Errorf("stack_name %q, region %q: both needed", g.StackName, g.Region)
			}
			if other, dup := stacks[g.StackName]; dup {
				t.Errorf("stack_name %q is also %s's", g.StackName, other)
			}
			stacks[g.StackName] = name
			if p := env.Validate.Parameters.Lint; p == nil || !*p {
				t.Error("validate.parameters.lint is not true")
			}
			if p := env.Build.Parameters.UseContainer; p == nil || *p {
				t.Error("build.parameters.use_container is not false: the Makefile build needs no container")
			}
			if p := d.ConfirmChangeset; p == nil || !*p {
				t.Error("deploy.parameters.confirm_changeset is not true")
			}
			if d.Capabilities != "CAPABILITY_IAM" {
				t.Errorf("capabilities = %q, want CAPABILITY_IAM (the stack creates an unnamed role)", d.Capabilities)
			}
			checkOverrides(t, tp, d.ParameterOverrides)
		})
	}
}

// checkOverrides checks that parameter overrides name template parameters with values the template
// allows, that together with the defaults they give every parameter a value, and that the function's
// configuration they produce loads.
func checkOverrides(t *testing.T, tp *tmpl, overrides []string) {
	t.Helper()
	values := map[string]string{}
	for name, p := range tp.params {
		if def, ok := asMap(p)["Default"]; ok {
			values[name] = fmt.Sprint(def)
		}
	}
	for _, o := range overrides {
		k, v, err := parseOverride(o)
		if err != nil {
			t.Error(err)
			continue
		}
		p := asMap(tp.params[k])
		if p == nil {
			t.Errorf("override %s names no template parameter", k)
			continue
		}
		if err := allowed(p, v); err != nil {
			t.Errorf("override %s=%s: %v", k, v, err)
		}
		values[k] = v
	}
	for name := range tp.params {
		if _, ok := values[name]; !ok {
			t.Errorf("parameter %s has no default and no override", name)
		}
	}
	env := map[string]string{}
	for name, v := range envVars(t, tp) {
		if param, _, ok := paramOf(tp, v); ok {
			env[name] = values[param]
		}
	}
	// A secret the stack creates has no value until the operator puts one: a mapping that polls from
	// the first deploy would fail every batch on it and use up the retries.
	if values["PulsarAuthSecret"] == "create" && values["EventSourceEnabled"] != "false" {
		t.Error("PulsarAuthSecret=create with the mapping enabled: the first deploy would fail every batch on the empty " +
			"secret; give the ARN of a secret that holds the credentials, or EventSourceEnabled=false")
	}
	if values["AuditEnabled"] == "true" {
		env["AUDIT_TABLE_NAME"] = "audit-table"
	}
	if _, err := loadEnv(env); err != nil {
		t.Errorf("the function would not start: %v", err)
	}
}

// allowed applies a parameter's AllowedValues, AllowedPattern and MinValue/MaxValue to v.
func allowed(p map[string]any, v string) error {
	if vals := asList(p["AllowedValues"]); len(vals) > 0 {
		if !slices.ContainsFunc(vals, func(a any) bool { return fmt.Sprint(a) == v }) {
			return fmt.Errorf("not one of %v", vals)
		}
	}
	if pat, ok := p["AllowedPattern"].(string); ok {
		re, err := regexp.Compile("^(?:" + pat + ")$")
		if err != nil {
			return fmt.Errorf("pattern %q: %w", pat, err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("does not match %q", pat)
		}
	}
	if p["Type"] == "Number" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if lo, ok := p["MinValue"].(int); ok && n < float64(lo) {
			return fmt.Errorf("below MinValue %d", lo)
		}
		if hi, ok := p["MaxValue"].(int); ok && n > float64(hi) {
			return fmt.Errorf("above MaxValue %d", hi)
		}
	}
	return nil
}
