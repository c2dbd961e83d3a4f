// Package eventjson decodes the Kinesis event Lambda sends, fast, with exactly the result
// encoding/json gives (which aws-lambda-go would use).
//
// encoding/json spends most of an invocation's time on a large batch: reflection per field, a copy per
// string, an allocation per record's data. This decoder reads the event Lambda actually sends in one
// pass: strings are substrings of one copy of the payload, and every record's data is base64-decoded
// into one shared buffer. Anything outside that shape — an escaped string, a null, a duplicated or
// differently cased key, a non-canonical number, invalid UTF-8 — makes it hand the whole payload to
// encoding/json instead, so the result is always encoding/json's. A differential fuzz test holds the
// two to the same answers.
package eventjson

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Decode decodes a Kinesis event. Like aws-lambda-go, it reads the first JSON value of payload and
// ignores what follows it.
func Decode(payload []byte) (events.KinesisEvent, error) {
	if ev, ok := decodeFast(payload); ok {
		return ev, nil
	}
	return decodeStd(payload)
}

// decodeStd is what aws-lambda-go does with a payload.
func decodeStd(payload []byte) (events.KinesisEvent, error) {
	var ev events.KinesisEvent
	err := json.NewDecoder(bytes.NewReader(payload)).Decode(&ev)
	return ev, err
}

// Handler adapts a Kinesis handler to aws-lambda-go's raw handler interface (Invoke), so the event is
// decoded here rather than by reflection and encoding/json.
type Handler func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error)

// Invoke decodes the event, runs the handler and encodes its response.
func (h Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev, err := Decode(payload)
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// parser walks one payload. Any method returning false means "not the canonical shape": the caller
// falls back to encoding/json.
type parser struct {
	b     []byte // the payload
	s     string // one copy of it, for zero-copy substrings
	i     int
	arena []byte // decoded data of every record
}

func decodeFast(payload []byte) (ev events.KinesisEvent, ok bool) {
	p := &parser{b: payload, s: string(payload)}
	p.ws()
	seen := false
	ok = p.object(func(key string) bool {
		if key != "Records" {
			return p.other(key, "Records")
		}
		if seen {
			return false
		}
		seen = true
		return p.records(&ev)
	})
	return ev, ok
}

// object reads {"key": value, ...}, calling field with each key when the parser stands on its value.
func (p *parser) object(field func(key string) bool) bool {
	if !p.consume('{') {
		return false
	}
	p.ws()
	if p.consume('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if !p.consume(':') {
			return false
		}
		p.ws()
		if !field(key) {
			return false
		}
		p.ws()
		if p.consume('}') {
			return true
		}
		if !p.consume(',') {
			return false
		}
		p.ws()
	}
}

// other skips the value of an unknown key. encoding/json matches keys case-insensitively, so a key
// that folds to a known one is left to it.
func (p *parser) other(key string, known ...string) bool {
	for _, k := range known {
		if equalFold(key, k) {
			return false
		}
	}
	return p.skip()
}

func (p *parser) records(ev *events.KinesisEvent) bool {
	if !p.consume('[') {
		return false // null and other types: left to encoding/json
	}
	ev.Records = []events.KinesisEventRecord{}
	p.ws()
	if p.consume(']') {
		return true
	}
	// Decoded data is at most 3/4 of the payload: one buffer holds every record's.
	p.arena = make([]byte, 0, len(p.b)/4*3+3)
	for {
		var rec events.KinesisEventRecord
		if !p.record(&rec) {
			return false
		}
		ev.Records = append(ev.Records, rec)
		p.ws()
		if p.consume(']') {
			return true
		}
		if !p.consume(',') {
			return false
		}
		p.ws()
	}
}

var recordKeys = []string{"awsRegion", "eventID", "eventName", "eventSource", "eventSourceARN",
	"eventVersion", "invokeIdentityArn", "kinesis"}

func (p *parser) record(r *events.KinesisEventRecord) bool {
	var seen uint16
	return p.object(func(key string) bool {
		idx := index(recordKeys, key)
		if idx < 0 {
			return p.other(key, recordKeys...)
		}
		if seen&(1<<idx) != 0 {
			return false // a repeated key: encoding/json merges, which is its business
		}
		seen |= 1 << idx
		switch key {
		case "kinesis":
			return p.kinesis(&r.Kinesis)
		case "awsRegion":
			return p.text(&r.AwsRegion)
		case "eventID":
			return p.text(&r.EventID)
		case "eventName":
			return p.text(&r.EventName)
		case "eventSource":
			return p.text(&r.EventSource)
		case "eventSourceARN":
			return p.text(&r.EventSourceArn)
		case "eventVersion":
			return p.text(&r.EventVersion)
		default: // invokeIdentityArn
			return p.text(&r.InvokeIdentityArn)
		}
	})
}

var kinesisKeys = []string{"approximateArrivalTimestamp", "data", "encryptionType", "partitionKey",
	"sequenceNumber", "kinesisSchemaVersion"}

func (p *parser) kinesis(k *events.KinesisRecord) bool {
	var seen uint16
	return p.object(func(key string) bool {
		idx := index(kinesisKeys, key)
		if idx < 0 {
			return p.other(key, kinesisKeys...)
		}
		if seen&(1<<idx) != 0 {
			return false
		}
		seen |= 1 << idx
		switch key {
		case "approximateArrivalTimestamp":
			return p.seconds(&k.ApproximateArrivalTimestamp)
		case "data":
			return p.data(&k.Data)
		case "encryptionType":
			return p.text(&k.EncryptionType)
		case "partitionKey":
			return p.text(&k.PartitionKey)
		case "sequenceNumber":
			return p.text(&k.SequenceNumber)
		default: // kinesisSchemaVersion
			return p.text(&k.KinesisSchemaVersion)
		}
	})
}

// text reads a string value that needs no unescaping and is valid UTF-8 (encoding/json would replace
// invalid bytes).
func (p *parser) text(dst *string) bool {
	start := p.i + 1
	v, ok := p.str()
	if !ok {
		return false
	}
	for j := start; j < p.i-1; j++ {
		if p.b[j] >= utf8.RuneSelf {
			if !utf8.ValidString(v) {
				return false
			}
			break
		}
	}
	*dst = v
	return true
}

// data base64-decodes a string value into the arena, as encoding/json does for []byte. The bytes are
// not checked one by one: a backslash or a control character is not base64 and fails the decoding,
// except CR and LF, which the decoder skips (and JSON forbids raw): padded base64 has a length that is
// a multiple of 4, so with them in it the decoded length falls short of what the length implies.
func (p *parser) data(dst *[]byte) bool {
	start, end, ok := p.span()
	if !ok {
		return false
	}
	src := p.b[start:end]
	off := len(p.arena)
	need := base64.StdEncoding.DecodedLen(len(src))
	if cap(p.arena)-off < need {
		return false // cannot happen: the arena holds 3/4 of the whole payload
	}
	n, err := base64.StdEncoding.Decode(p.arena[off:off+need], src)
	if err != nil || len(src)%4 != 0 || n != need-padding(src) {
		return false // encoding/json reports the error
	}
	p.arena = p.arena[:off+n]
	*dst = p.arena[off : off+n : off+n]
	return true
}

// padding counts the trailing '=' of a base64 string.
func padding(src []byte) int {
	n := 0
	for i := len(src) - 1; i >= 0 && n < 2 && src[i] == '='; i-- {
		n++
	}
	return n
}

// seconds reads a JSON number of epoch seconds, converted exactly as aws-lambda-go's
// SecondsEpochTime.UnmarshalJSON does.
func (p *parser) seconds(dst *events.SecondsEpochTime) bool {
	start := p.i
	if !p.number() {
		return false
	}
	epoch, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil {
		return false
	}
	sec := int64(epoch)
	nsec := int64((epoch - float64(sec)) * float64(time.Second))
	*dst = events.SecondsEpochTime{Time: time.Unix(sec, nsec)}
	return true
}

// str reads a string without escapes or control characters and returns it as a substring.
func (p *parser) str() (string, bool) {
	start, end, ok := p.span()
	if !ok {
		return "", false
	}
	for _, c := range p.b[start:end] {
		if c == '\\' || c < 0x20 {
			return "", false // an escaped quote ends the span early, and has its backslash in it
		}
	}
	return p.s[start:end], true
}

// span moves past a string value and returns the bounds of its content, unchecked.
func (p *parser) span() (start, end int, ok bool) {
	if !p.consume('"') {
		return 0, 0, false
	}
	start = p.i
	j := bytes.IndexByte(p.b[start:], '"')
	if j < 0 {
		return 0, 0, false
	}
	p.i = start + j + 1
	return start, start + j, true
}

// number reads a number in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() bool {
	p.consume('-')
	switch {
	case p.consume('0'):
	case p.digit19():
		p.digits()
	default:
		return false
	}
	if p.consume('.') {
		if !p.digits() {
			return false
		}
	}
	if p.consume('e') || p.consume('E') {
		if !p.consume('+') {
			p.consume('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

func (p *parser) digit19() bool {
	if p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9' {
		p.i++
		return true
	}
	return false
}

// digits reads one or more digits.
func (p *parser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// skip reads any JSON value whose strings need no unescaping.
func (p *parser) skip() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(func(string) bool { return p.skip() })
	case c == '[':
		p.i++
		p.ws()
		if p.consume(']') {
			return true
		}
		for {
			if !p.skip() {
				return false
			}
			p.ws()
			if p.consume(']') {
				return true
			}
			if !p.consume(',') {
				return false
			}
			p.ws()
		}
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return p.literal("true") || p.literal("false") || p.literal("null")
}

func (p *parser) literal(word string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

func (p *parser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func index(keys []string, key string) int {
	for i, k := range keys {
		if k == key {
			return i
		}
	}
	return -1
}

// equalFold is the key folding encoding/json applies (Unicode simple folding, as bytes.EqualFold).
func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }
