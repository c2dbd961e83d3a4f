package config

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/sink"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// SinkConfig is the whole configuration of the pulsar-to-kinesis function.
type SinkConfig struct {
	Client           producer.Options
	Sink             sink.Options
	Auth             Auth
	MetricsNamespace string
	// Region is the target stream's region, from its ARN.
	Region string
}

// Variable names of the sink, in the order of the README's sink configuration table (the shared
// PULSAR_SERVICE_URL, PULSAR_AUTH_SECRET_ARN, TLS, METRICS_NAMESPACE and DEADLINE_MARGIN_MS come first).
const (
	VarSinkTopics          = "SINK_TOPICS"
	VarSinkTopicsPattern   = "SINK_TOPICS_PATTERN"
	VarSinkSubscription    = "SINK_SUBSCRIPTION"
	VarSinkInitialPosition = "SINK_INITIAL_POSITION"
	VarKinesisStreamARN    = "KINESIS_STREAM_ARN"
	VarKinesisPartitionKey = "KINESIS_PARTITION_KEY"
	VarKinesisFormat       = "KINESIS_MESSAGE_FORMAT"
	VarKinesisOrdering     = "KINESIS_ORDERING"
	VarKinesisAggregation  = "KINESIS_AGGREGATION"
	VarSinkDeadLetterTopic = "SINK_DEAD_LETTER_TOPIC"
	VarSinkMaxRedeliveries = "SINK_MAX_REDELIVERIES"
)

// SinkNames lists every variable LoadSink reads (logging reads LOG_LEVEL and Lambda's own log controls).
func SinkNames() []string {
	return []string{VarServiceURL, VarAuthSecret, VarTLSAllowInsecure, VarTLSValidateHostname,
		VarMetricsNamespace, VarDeadlineMargin, VarSinkTopics, VarSinkTopicsPattern, VarSinkSubscription,
		VarSinkInitialPosition, VarKinesisStreamARN, VarKinesisPartitionKey, VarKinesisFormat,
		VarKinesisOrdering, VarKinesisAggregation, VarSinkDeadLetterTopic, VarSinkMaxRedeliveries}
}

// streamARN is a Kinesis stream ARN; the groups are the region and the stream name.
var streamARN = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):\d{12}:stream/([a-zA-Z0-9_.-]{1,128})$`)

// subscriptionName is what Pulsar accepts in a subscription name, conservatively.
var subscriptionName = regexp.MustCompile(`^[\w.=:-]{1,256}$`)

// LoadSink reads the sink's configuration through getenv. The error, when not nil, is an *Error
// naming every invalid variable.
func LoadSink(getenv func(string) string) (SinkConfig, error) {
	p := &parser{getenv: getenv}
	var c SinkConfig

	c.Client.ServiceURL = serviceURL(p)
	c.Auth.SecretID = p.str(VarAuthSecret, "")
	c.Client.TLSAllowInsecure = p.boolean(VarTLSAllowInsecure, false)
	c.Client.TLSValidateHostname = p.boolean(VarTLSValidateHostname, true)
	c.MetricsNamespace = metricsNamespace(p)
	c.Sink.DeadlineMargin = p.millis(VarDeadlineMargin, sink.DefaultDeadlineMargin, 100, 600_000)

	s := &c.Sink
	topics, hasTopics := p.lookup(VarSinkTopics)
	pattern, hasPattern := p.lookup(VarSinkTopicsPattern)
	switch {
	case hasTopics && hasPattern:
		p.fail(VarSinkTopicsPattern, strconv.Quote(pattern), "unset when SINK_TOPICS is set: one or the other")
	case hasTopics:
		for _, t := range strings.Split(topics, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !streamtopic.IsName(t) {
				p.fail(VarSinkTopics, strconv.Quote(t), "a comma list of Pulsar topics such as persistent://public/default/events")
				continue
			}
			s.Topics = append(s.Topics, t)
		}
	case hasPattern:
		if _, err := regexp.Compile(pattern); err != nil {
			p.fail(VarSinkTopicsPattern, strconv.Quote(pattern), "a regular expression of topics such as persistent://public/default/orders-.*")
		}
		s.TopicsPattern = pattern
	default:
		p.fail(VarSinkTopics, "", "is required unless SINK_TOPICS_PATTERN is set: a comma list of Pulsar topics")
	}
	s.Subscription = p.str(VarSinkSubscription, sink.DefaultSubscription)
	if !subscriptionName.MatchString(s.Subscription) {
		p.fail(VarSinkSubscription, strconv.Quote(s.Subscription), "a subscription name: 1 to 256 of a-z A-Z 0-9 _ - . = :")
	}
	if p.enum(VarSinkInitialPosition, "latest", "latest", "earliest") == "earliest" {
		s.InitialPosition = sink.PositionEarliest
	}

	s.StreamARN = p.required(VarKinesisStreamARN, "the target stream's ARN, arn:aws:kinesis:<region>:<account>:stream/<name>")
	if m := streamARN.FindStringSubmatch(s.StreamARN); m != nil {
		c.Region = m[1]
	} else if s.StreamARN != "" {
		p.fail(VarKinesisStreamARN, strconv.Quote(s.StreamARN), "a stream ARN, arn:aws:kinesis:<region>:<account>:stream/<name>")
	}
	s.PartitionKey = partitionKey(p)
	if v, ok := p.lookup(VarKinesisFormat); ok {
		f, known := sink.ParseFormat(v)
		if !known {
			p.fail(VarKinesisFormat, strconv.Quote(v), "one of "+strings.Join(sink.FormatNames(), ", "))
		}
		s.Format = f
	}
	if p.enum(VarKinesisOrdering, "perKey", "perKey", "none") == "none" {
		s.Ordering = sink.OrderNone
	}
	s.Aggregation = p.boolean(VarKinesisAggregation, false)
	s.DeadLetterTopic = p.str(VarSinkDeadLetterTopic, "")
	if t := s.DeadLetterTopic; t != "" && !streamtopic.IsName(t) {
		p.fail(VarSinkDeadLetterTopic, strconv.Quote(t), "a Pulsar topic such as persistent://public/default/sink-dead-letters")
	}
	s.MaxRedeliveries = p.integer(VarSinkMaxRedeliveries, sink.DefaultMaxRedeliveries, 1, 1000)

	if len(p.problems) > 0 {
		return SinkConfig{}, &Error{Problems: p.problems}
	}
	return c, nil
}

func partitionKey(p *parser) sink.PartitionKey {
	v, ok := p.lookup(VarKinesisPartitionKey)
	switch {
	case !ok || strings.EqualFold(v, "key"):
		return sink.PartitionKey{Source: sink.KeyMessageKey}
	case strings.EqualFold(v, "random"):
		return sink.PartitionKey{Source: sink.KeyRandom}
	case strings.HasPrefix(v, "property:") && len(v) > len("property:"):
		return sink.PartitionKey{Source: sink.KeyProperty, Property: strings.TrimPrefix(v, "property:")}
	}
	p.fail(VarKinesisPartitionKey, strconv.Quote(v), "key, property:<name> or random")
	return sink.PartitionKey{}
}

func metricsNamespace(p *parser) string {
	ns := p.str(VarMetricsNamespace, DefaultMetricsNamespace)
	if len(ns) > 255 || strings.ContainsAny(ns, ":") {
		p.fail(VarMetricsNamespace, strconv.Quote(ns), "a CloudWatch namespace: at most 255 characters, no colon")
	}
	return ns
}
