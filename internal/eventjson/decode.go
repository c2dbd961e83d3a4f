// Package eventjson decodes the Kinesis event Lambda sends, fast, with exactly the result
// encoding/json gives (which aws-lambda-go would use).
//
// encoding/json spends most of an invocation's time on a large batch: reflection per field, a copy per
// string, an allocation per record's data. This decoder reads the event Lambda actually sends in one
// pass: every record's data is base64-decoded into one shared buffer, and the text fields end up as
// substrings of one compact string, values repeated from record to record (stream ARN, region, event
// name) stored once. Anything outside that shape — an escaped string, a null, a duplicated or
// differently cased key, a non-canonical number, invalid UTF-8, nesting deeper than encoding/json
// allows — makes it hand the whole payload to
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
	i     int
	arena []byte    // decoded data of every record
	texts []textRef // text fields, turned into strings once parsing succeeded
	depth int       // objects and arrays open around the parser
}

// maxDepth is encoding/json's nesting limit. The parser recurses once per level; deeper input goes to
// encoding/json, which rejects it. Without the limit 6 MB of '[' would grow the stack past 256 MiB.
const maxDepth = 10000

// enter opens a nesting level; false past maxDepth. Each enter that succeeds is paired with leave.
func (p *parser) enter() bool {
	p.depth++
	return p.depth <= maxDepth
}

func (p *parser) leave() { p.depth-- }

// textRef is where a text field's value lies in the payload, and which record and field it belongs to.
type textRef struct {
	record     int32 // a 6 MB event holds far fewer than 2^31 of anything
	start, end int32
	field      field
}

// field names a string field of a record.
type field uint8

const (
	fAwsRegion field = iota
	fEventID
	fEventName
	fEventSource
	fEventSourceArn
	fEventVersion
	fInvokeIdentityArn
	fEncryptionType
	fPartitionKey
	fSequenceNumber
	fKinesisSchemaVersion
	fieldCount
)

func (f field) of(r *events.KinesisEventRecord) *string {
	switch f {
	case fAwsRegion:
		return &r.AwsRegion
	case fEventID:
		return &r.EventID
	case fEventName:
		return &r.EventName
	case fEventSource:
		return &r.EventSource
	case fEventSourceArn:
		return &r.EventSourceArn
	case fEventVersion:
		return &r.EventVersion
	case fInvokeIdentityArn:
		return &r.InvokeIdentityArn
	case fEncryptionType:
		return &r.Kinesis.EncryptionType
	case fPartitionKey:
		return &r.Kinesis.PartitionKey
	case fSequenceNumber:
		return &r.Kinesis.SequenceNumber
	}
	return &r.Kinesis.KinesisSchemaVersion
}

func decodeFast(payload []byte) (ev events.KinesisEvent, ok bool) {
	p := &parser{b: payload}
	p.ws()
	seen := false
	ok = p.object(func(key []byte) bool {
		if string(key) != "Records" {
			return p.other(key, "Records")
		}
		if seen {
			return false
		}
		seen = true
		return p.records(&ev)
	})
	if ok {
		p.setTexts(ev.Records)
	}
	return ev, ok
}

// setTexts copies the text fields into one string and points the records at its substrings. A value
// equal to the same field's in the previous record is not copied again.
func (p *parser) setTexts(records []events.KinesisEventRecord) {
	type span struct{ start, end int }
	var last [fieldCount][]byte
	var lastSpan [fieldCount]span
	buf := make([]byte, 0, 64*len(records)+256)
	spans := make([]span, len(p.texts))
	for i, t := range p.texts {
		v := p.b[t.start:t.end]
		if last[t.field] != nil && bytes.Equal(v, last[t.field]) {
			spans[i] = lastSpan[t.field]
			continue
		}
		spans[i] = span{len(buf), len(buf) + len(v)}
		buf = append(buf, v...)
		last[t.field], lastSpan[t.field] = v, spans[i]
	}
	all := string(buf)
	for i, t := range p.texts {
		*t.field.of(&records[t.record]) = all[spans[i].start:spans[i].end]
	}
}

// object reads {"key": value, ...}, calling field with each key when the parser stands on its value.
func (p *parser) object(field func(key []byte) bool) bool {
	if !p.consume('{') {
		return false
	}
	if !p.enter() {
		return false
	}
	defer p.leave()
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
func (p *parser) other(key []byte, known ...string) bool {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	return p.skip()
}

func (p *parser) records(ev *events.KinesisEvent) bool {
	if !p.consume('[') {
		return false // null and other types: left to encoding/json
	}
	if !p.enter() {
		return false
	}
	defer p.leave()
	ev.Records = []events.KinesisEventRecord{}
	p.ws()
	if p.consume(']') {
		return true
	}
	// Decoded data is at most 3/4 of the payload: one buffer holds every record's.
	p.arena = make([]byte, 0, len(p.b)/4*3+3)
	for {
		var rec events.KinesisEventRecord
		if !p.record(&rec, len(ev.Records)) {
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

// The keys of a record and of its kinesis object, in the order of their fields.
var (
	recordKeys = []string{"awsRegion", "eventID", "eventName", "eventSource", "eventSourceARN",
		"eventVersion", "invokeIdentityArn", "kinesis"}
	recordFields = []field{fAwsRegion, fEventID, fEventName, fEventSource, fEventSourceArn,
		fEventVersion, fInvokeIdentityArn}
	kinesisKeys = []string{"encryptionType", "partitionKey", "sequenceNumber", "kinesisSchemaVersion",
		"approximateArrivalTimestamp", "data"}
	kinesisFields = []field{fEncryptionType, fPartitionKey, fSequenceNumber, fKinesisSchemaVersion}
)

func (p *parser) record(r *events.KinesisEventRecord, n int) bool {
	var seen uint16
	return p.object(func(key []byte) bool {
		idx := index(recordKeys, key)
		if idx < 0 {
			return p.other(key, recordKeys...)
		}
		if seen&(1<<idx) != 0 {
			return false // a repeated key: encoding/json merges, which is its business
		}
		seen |= 1 << idx
		if idx < len(recordFields) {
			return p.text(n, recordFields[idx])
		}
		return p.kinesis(&r.Kinesis, n)
	})
}

func (p *parser) kinesis(k *events.KinesisRecord, n int) bool {
	var seen uint16
	return p.object(func(key []byte) bool {
		idx := index(kinesisKeys, key)
		if idx < 0 {
			return p.other(key, kinesisKeys...)
		}
		if seen&(1<<idx) != 0 {
			return false
		}
		seen |= 1 << idx
		switch {
		case idx < len(kinesisFields):
			return p.text(n, kinesisFields[idx])
		case kinesisKeys[idx] == "data":
			return p.data(&k.Data)
		default: // approximateArrivalTimestamp
			return p.seconds(&k.ApproximateArrivalTimestamp)
		}
	})
}

// text reads a string value that needs no unescaping and is valid UTF-8 (encoding/json would replace
// invalid bytes), for field f of record n.
func (p *parser) text(n int, f field) bool {
	v, ok := p.str()
	if !ok {
		return false
	}
	for _, c := range v {
		if c >= utf8.RuneSelf {
			if !utf8.Valid(v) {
				return false
			}
			break
		}
	}
	p.texts = append(p.texts, textRef{record: int32(n), field: f, start: int32(p.i - 1 - len(v)), end: int32(p.i - 1)})
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
	epoch, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return false
	}
	sec := int64(epoch)
	nsec := int64((epoch - float64(sec)) * float64(time.Second))
	*dst = events.SecondsEpochTime{Time: time.Unix(sec, nsec)}
	return true
}

// str reads a string without escapes or control characters and returns its content.
func (p *parser) str() ([]byte, bool) {
	start, end, ok := p.span()
	if !ok {
		return nil, false
	}
	v := p.b[start:end]
	for _, c := range v {
		if c == '\\' || c < 0x20 {
			return nil, false // an escaped quote ends the span early, and has its backslash in it
		}
	}
	return v, true
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
		return p.object(func([]byte) bool { return p.skip() })
	case c == '[':
		p.i++
		if !p.enter() {
			return false
		}
		defer p.leave()
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

func index(keys []string, key []byte) int {
	for i, k := range keys {
		if k == string(key) {
			return i
		}
	}
	return -1
}
