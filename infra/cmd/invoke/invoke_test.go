//go:build unix

package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCompleteSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    bool
	}{
		{"", true},
		{"null", true},
		{"{}", true},
		{`{"batchItemFailures":null}`, true},
		{`{"batchItemFailures":[]}`, true},
		{`{"batchItemFailures":[{"itemIdentifier":"1"}]}`, false},
		{"not json", false},
	}
	for _, tt := range tests {
		if got := completeSuccess([]byte(tt.payload)); got != tt.want {
			t.Errorf("completeSuccess(%q) = %v, want %v", tt.payload, got, tt.want)
		}
	}
}

// Usage mistakes are found before anything starts, and exit with status 2.
func TestRunRefusesBadUsage(t *testing.T) {
	t.Parallel()
	notEvent := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(notEvent, []byte(`{"Records":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		event string
	}{
		{"no event", ""},
		{"missing file", filepath.Join(t.TempDir(), "nope.json")},
		{"not a Kinesis event", notEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), config{event: tt.event}, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) {
				t.Errorf("run = %v, want a usage error", err)
			}
		})
	}
}
