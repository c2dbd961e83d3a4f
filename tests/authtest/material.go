package authtest

import (
	"slices"
	"strings"
)

// Material is secret material to look for in logs, errors and summaries: for each name, the
// substrings whose presence would be a leak.
type Material map[string][]string

// Add records value under name: a JWT as its payload and its signature (the header is the same in
// every token), a PEM block as each line of its body, anything else whole.
func (m Material) Add(name, value string) {
	value = strings.TrimSpace(value)
	if value == "" {
		return
	}
	switch {
	case strings.Contains(value, "-----BEGIN"):
		for _, line := range strings.Split(value, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				m[name] = append(m[name], line)
			}
		}
	case strings.Count(value, ".") == 2:
		parts := strings.Split(value, ".")
		m[name] = append(m[name], value, parts[1], parts[2])
	default:
		m[name] = append(m[name], value)
	}
}

// Leaks returns the names whose material occurs in text. Print the names, never text.
func (m Material) Leaks(text string) []string {
	var found []string
	for name, parts := range m {
		for _, p := range parts {
			if p != "" && strings.Contains(text, p) {
				found = append(found, name)
				break
			}
		}
	}
	slices.Sort(found)
	return found
}

// Redact replaces every piece of material in text by its name, for test output.
func (m Material) Redact(text string) string {
	for name, parts := range m {
		for _, p := range parts {
			if p != "" {
				text = strings.ReplaceAll(text, p, "<"+name+">")
			}
		}
	}
	return text
}
