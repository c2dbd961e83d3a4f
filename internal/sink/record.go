package sink

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/apache/pulsar-client-go/pulsar"
)

// maxKeyRunes is Kinesis's partition key limit (Unicode characters).
const maxKeyRunes = 256

// partitionKey chooses the Kinesis partition key of m.
func (k PartitionKey) of(m pulsar.Message) string {
	var key string
	switch k.Source {
	case KeyMessageKey:
		key = m.Key()
	case KeyProperty:
		key = m.Properties()[k.Property]
	case KeyRandom:
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	if key == "" {
		// The connector's rule: the topic name stands in for a missing key.
		key = m.Topic()
	}
	if key == "" {
		key = "default"
	}
	return truncateRunes(key, maxKeyRunes)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// envelope is the JSON form of a message (FormatJSON, FormatJSONExpand).
type envelope struct {
	Topic         string            `json:"topic"`
	Key           string            `json:"key,omitempty"`
	MessageID     string            `json:"messageId"`
	Properties    map[string]string `json:"properties,omitempty"`
	PublishTime   string            `json:"publishTime"`
	EventTime     string            `json:"eventTime,omitempty"`
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadBase64 *string           `json:"payloadBase64,omitempty"`
}

// timeLayout is ISO-8601 UTC with milliseconds, as the source writes kinesis.arrival.timestamp.
const timeLayout = "2006-01-02T15:04:05.000Z"

// data renders m as the data of a Kinesis record.
func (f Format) data(m pulsar.Message) []byte {
	if f == FormatRaw {
		return m.Payload()
	}
	e := envelope{
		Topic: m.Topic(), Key: m.Key(), MessageID: m.ID().String(), Properties: m.Properties(),
		PublishTime: m.PublishTime().UTC().Format(timeLayout),
	}
	if et := m.EventTime(); !et.IsZero() {
		e.EventTime = et.UTC().Format(timeLayout)
	}
	payload := m.Payload()
	if f == FormatJSONExpand && json.Valid(payload) {
		e.Payload = payload
	} else {
		b64 := base64.StdEncoding.EncodeToString(payload)
		e.PayloadBase64 = &b64
	}
	b, err := json.Marshal(e)
	if err != nil {
		// Cannot happen: strings, a map of strings and bytes already checked to be valid JSON.
		panic(err)
	}
	return b
}

// lag is the time from publishing to now.
func lag(m pulsar.Message, now time.Time) time.Duration {
	if pt := m.PublishTime(); !pt.IsZero() {
		return now.Sub(pt)
	}
	return 0
}
