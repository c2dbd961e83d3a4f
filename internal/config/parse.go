package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Problem is one invalid variable: its name, what it held and what is expected.
type Problem struct {
	Variable string
	Got      string // already quoted or redacted for display; "" when the variable is missing
	Want     string
}

func (p Problem) String() string {
	if p.Got == "" {
		return fmt.Sprintf("%s: %s", p.Variable, p.Want)
	}
	return fmt.Sprintf("%s: got %s, want %s", p.Variable, p.Got, p.Want)
}

// Error lists every invalid variable, so one failed start tells the operator everything to fix.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// parser reads variables and collects problems instead of stopping at the first one.
type parser struct {
	getenv   func(string) string
	problems []Problem
}

func (p *parser) fail(name, got, want string) {
	p.problems = append(p.problems, Problem{Variable: name, Got: got, Want: want})
}

func (p *parser) lookup(name string) (string, bool) {
	v := strings.TrimSpace(p.getenv(name))
	return v, v != ""
}

func (p *parser) str(name, def string) string {
	if v, ok := p.lookup(name); ok {
		return v
	}
	return def
}

func (p *parser) required(name, want string) string {
	v, ok := p.lookup(name)
	if !ok {
		p.fail(name, "", "is required: "+want)
	}
	return v
}

// enum returns the canonical spelling of one of allowed, matched case-insensitively.
func (p *parser) enum(name, def string, allowed ...string) string {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail(name, strconv.Quote(v), "one of "+strings.Join(allowed, ", "))
	return def
}

func (p *parser) boolean(name string, def bool) bool {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
		return false
	}
	p.fail(name, strconv.Quote(v), "true or false")
	return def
}

func (p *parser) integer(name string, def, min, max int) int {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		p.fail(name, strconv.Quote(v), fmt.Sprintf("an integer from %d to %d", min, max))
		return def
	}
	return n
}

func (p *parser) millis(name string, def time.Duration, min, max int) time.Duration {
	n := p.integer(name, int(def/time.Millisecond), min, max)
	return time.Duration(n) * time.Millisecond
}
