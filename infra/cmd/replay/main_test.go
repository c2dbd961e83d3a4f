package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // a part of the error; "" for none
	}{
		{[]string{"--queue", "https://q"}, ""},
		{[]string{"--bucket", "b", "--dry-run", "--attempts", "5"}, ""},
		{[]string{"--dry-run"}, "exactly one of --queue and --bucket"},
		{[]string{"--queue", "q", "--bucket", "b"}, "exactly one of --queue and --bucket"},
		// Every problem at once.
		{[]string{"--attempts", "0", "--batch-timeout", "0s", "extra"}, "--attempts must be at least 1"},
		{[]string{"--attempts", "0", "--batch-timeout", "0s", "extra"}, "--batch-timeout must be positive"},
		{[]string{"--attempts", "0", "--batch-timeout", "0s", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--no-such-flag"}, "not defined"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}
