package authtest

import (
	"slices"
	"strings"
	"testing"
)

// Every leak assertion of the auth tests rests on Material: it must find pieces of a token or a key,
// not only the whole value, and Redact must leave none behind.
func TestMaterial(t *testing.T) {
	const (
		token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmbiJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
		key   = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	)
	m := Material{}
	m.Add("token", token)
	m.Add("key", key)
	m.Add("client secret", "cs-0123456789")
	m.Add("empty", "  ")
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"nothing here", nil},
		{"Bearer " + token, []string{"token"}},
		{"signature c2lnbmF0dXJlLW9mLXRoZS10b2tlbg only", []string{"token"}},
		{"header eyJhbGciOiJSUzI1NiJ9 is the same in every token", nil},
		{"a line of the key: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", []string{"key"}},
		{"-----BEGIN PRIVATE KEY----- alone", nil},
		{`{"client_secret":"cs-0123456789"} and ` + token, []string{"client secret", "token"}},
	} {
		if got := m.Leaks(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("Leaks(%q) = %v, want %v", tc.text, got, tc.want)
		}
		if got := m.Leaks(m.Redact(tc.text)); len(got) != 0 {
			t.Errorf("Redact(%q) left %v", tc.text, got)
		}
	}
	if r := m.Redact("x " + token + " y"); r != "x <token> y" || strings.Contains(r, "c2ln") {
		t.Errorf("Redact = %q", r)
	}
}
