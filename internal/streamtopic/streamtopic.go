// Package streamtopic holds the Pulsar topic template: a topic name in which {stream} stands for the name of
// the Kinesis stream a record comes from. Configuration parses it, the relay resolves it per record,
// and the local tools resolve it the same way to know where to read the messages back.
package streamtopic

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// StreamPlaceholder is replaced by the stream name of the record's eventSourceARN.
const StreamPlaceholder = "{stream}"

// Template is a topic name that may contain {stream}. The zero Template is no topic.
type Template struct {
	s string
}

// pattern accepts what Pulsar accepts: a full name {persistent|non-persistent}://tenant/ns/topic,
// tenant/ns/topic, or a bare topic in public/default. {stream} may appear in the topic part.
var pattern = regexp.MustCompile(`^((persistent|non-persistent)://[\w.=:-]+/[\w.=:-]+/|[\w.=:-]+/[\w.=:-]+/)?[\w.=:{}-]+$`)

// Want says what Parse accepts, for configuration errors.
const Want = "a Pulsar topic such as persistent://public/default/events, where the topic part may contain " + StreamPlaceholder

// Parse checks s; "" gives the zero Template.
func Parse(s string) (Template, error) {
	if s == "" {
		return Template{}, nil
	}
	if !pattern.MatchString(s) || strings.ContainsAny(strings.ReplaceAll(s, StreamPlaceholder, ""), "{}") {
		return Template{}, fmt.Errorf("topic %q: want %s", s, Want)
	}
	return Template{s: s}, nil
}

// IsName reports whether s is a plain topic name Pulsar accepts, without {stream} (the sink's topics).
func IsName(s string) bool {
	return pattern.MatchString(s) && !strings.ContainsAny(s, "{}")
}

// MustParse is Parse for names known to be valid (tests, tools); it panics on an invalid one.
func MustParse(s string) Template {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template as written.
func (t Template) String() string { return t.s }

// FullName completes a short name as Pulsar does: tenant/ns/topic and a bare topic (in public/default)
// are persistent.
func (t Template) FullName() string {
	switch {
	case strings.Contains(t.s, "://"):
		return t.s
	case strings.Count(t.s, "/") == 2:
		return "persistent://" + t.s
	}
	return "persistent://public/default/" + t.s
}

// IsZero reports whether t is no topic.
func (t Template) IsZero() bool { return t.s == "" }

// PerStream reports whether the topic depends on the stream (contains {stream}).
func (t Template) PerStream() bool { return strings.Contains(t.s, StreamPlaceholder) }

// ErrNoStream: the template needs a stream name and the record's eventSourceARN names none.
var ErrNoStream = errors.New("names no Kinesis stream")

// Resolve returns the topic for a record of the stream arn (its eventSourceARN).
func (t Template) Resolve(arn string) (string, error) {
	return t.ForStream(StreamName(arn), arn)
}

// ForStream returns the topic for stream, already read from arn (the relay reads it once per batch).
func (t Template) ForStream(stream, arn string) (string, error) {
	if !t.PerStream() {
		return t.s, nil
	}
	if stream == "" {
		return "", fmt.Errorf("eventSourceARN %q %w", arn, ErrNoStream)
	}
	return strings.ReplaceAll(t.s, StreamPlaceholder, stream), nil
}

// StreamName reads the stream name from a stream ARN (arn:aws:kinesis:r:a:stream/NAME) or a consumer
// ARN (…:stream/NAME/consumer/C:123); "" when arn is neither.
func StreamName(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
		return ""
	}
	res, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(res, "/")
	return name
}
