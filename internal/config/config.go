// Package config reads the function's configuration from environment variables. Load reports every
// invalid variable at once, with what it expects, so one failed start tells the operator everything.
package config

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// Config is the whole configuration of the kinesis-to-pulsar function.
type Config struct {
	Producer producer.Options
	Relay    relay.Options
	Auth     Auth
	// Audit configures the DynamoDB audit table; Audit.Table "" turns auditing off.
	Audit audit.Options
	// MetricsNamespace is the CloudWatch namespace of the EMF metrics.
	MetricsNamespace string
}

// Auth says where Pulsar credentials come from.
type Auth struct {
	// SecretID is the ARN or name of the Secrets Manager secret; "" means no authentication.
	SecretID string
}

// Variable names, in the order of the README's configuration table.
const (
	VarServiceURL          = "PULSAR_SERVICE_URL"
	VarTopic               = "PULSAR_TOPIC"
	VarMessageKey          = "PULSAR_MESSAGE_KEY"
	VarProperties          = "PULSAR_PROPERTIES"
	VarCompression         = "PULSAR_COMPRESSION"
	VarHashing             = "PULSAR_HASHING"
	VarBatchingMaxDelay    = "PULSAR_BATCHING_MAX_DELAY_MS"
	VarBatchingMaxMessages = "PULSAR_BATCHING_MAX_MESSAGES"
	VarBatchingMaxBytes    = "PULSAR_BATCHING_MAX_BYTES"
	VarBatchingType        = "PULSAR_BATCHING_TYPE"
	VarMaxPending          = "PULSAR_MAX_PENDING_MESSAGES"
	VarConnectTimeout      = "PULSAR_CONNECT_TIMEOUT_MS"
	VarOperationTimeout    = "PULSAR_OPERATION_TIMEOUT_MS"
	VarKeepAlive           = "PULSAR_KEEPALIVE_INTERVAL_MS"
	VarChunking            = "PULSAR_CHUNKING"
	VarDeadLetterTopic     = "DEAD_LETTER_TOPIC"
	VarDeaggregate         = "KPL_DEAGGREGATE"
	VarDeadlineMargin      = "DEADLINE_MARGIN_MS"
	VarAuthSecret          = "PULSAR_AUTH_SECRET_ARN"
	VarTLSAllowInsecure    = "PULSAR_TLS_ALLOW_INSECURE"
	VarTLSValidateHostname = "PULSAR_TLS_VALIDATE_HOSTNAME"
	VarAuditTable          = "AUDIT_TABLE_NAME"
	VarAuditRetention      = "AUDIT_RETENTION_DAYS"
	VarAuditRequired       = "AUDIT_REQUIRED"
	VarGuarantee           = "PROCESSING_GUARANTEE"
	VarMetricsNamespace    = "METRICS_NAMESPACE"
)

// Names lists every variable Load reads (logging reads LOG_LEVEL and Lambda's own log controls).
func Names() []string {
	return []string{VarServiceURL, VarTopic, VarMessageKey, VarProperties, VarCompression, VarHashing,
		VarBatchingMaxDelay, VarBatchingMaxMessages, VarBatchingMaxBytes, VarBatchingType, VarMaxPending,
		VarConnectTimeout, VarOperationTimeout, VarKeepAlive, VarChunking, VarDeadLetterTopic,
		VarDeaggregate, VarDeadlineMargin, VarAuthSecret, VarTLSAllowInsecure, VarTLSValidateHostname,
		VarAuditTable, VarAuditRetention, VarAuditRequired, VarGuarantee, VarMetricsNamespace}
}

// DefaultMetricsNamespace is the CloudWatch namespace when METRICS_NAMESPACE is unset.
const DefaultMetricsNamespace = "KinesisPulsar"

// Load reads the configuration through getenv (os.Getenv in production). The error, when not nil, is
// an *Error naming every invalid variable.
func Load(getenv func(string) string) (Config, error) {
	p := &parser{getenv: getenv}
	var c Config

	c.Producer.ServiceURL = serviceURL(p)
	c.Relay.Topic = topic(p, VarTopic, p.required(VarTopic, streamtopic.Want))
	c.Relay.DeadLetterTopic = topic(p, VarDeadLetterTopic, p.str(VarDeadLetterTopic, ""))
	switch p.enum(VarMessageKey, "partitionKey", "partitionKey", "shardId", "none") {
	case "shardId":
		c.Relay.Key = relay.KeyShardID
	case "none":
		c.Relay.Key = relay.KeyNone
	default:
		c.Relay.Key = relay.KeyPartitionKey
	}
	c.Relay.Properties = relay.AllProperties
	if v, ok := p.lookup(VarProperties); ok {
		set, err := relay.ParseProperties(v)
		if err != nil {
			p.fail(VarProperties, strconv.Quote(v), "a comma list of "+strings.Join(relay.PropertyNames(), ", ")+", or none")
		}
		c.Relay.Properties = set
	}
	c.Producer.Compression = map[string]pulsar.CompressionType{
		"none": pulsar.NoCompression, "lz4": pulsar.LZ4, "zlib": pulsar.ZLib, "zstd": pulsar.ZSTD,
	}[p.enum(VarCompression, "none", "none", "lz4", "zlib", "zstd")]
	if p.enum(VarHashing, "javaStringHash", "javaStringHash", "murmur3") == "murmur3" {
		c.Producer.Hashing = pulsar.Murmur3_32Hash
	}
	c.Producer.BatchingMaxDelay = p.millis(VarBatchingMaxDelay, producer.DefaultBatchingMaxDelay, 1, 60_000)
	c.Producer.BatchingMaxMessages = uint(p.integer(VarBatchingMaxMessages, producer.DefaultBatchingMaxMessages, 1, 100_000))
	// A batch must fit in a message: Pulsar's default maximum message size is 5 MiB.
	maxBytes := p.integer(VarBatchingMaxBytes, producer.DefaultBatchingMaxBytes, 1024, 5*1024*1024)
	c.Producer.BatchingMaxBytes = uint(maxBytes)
	c.Relay.LargeRecordBytes = maxBytes
	c.Producer.KeyBasedBatching = p.enum(VarBatchingType, "default", "default", "keyBased") == "keyBased"
	c.Producer.MaxPendingMessages = p.integer(VarMaxPending, producer.DefaultMaxPendingMessages, 1, 1_000_000)
	c.Producer.ConnectionTimeout = p.millis(VarConnectTimeout, producer.DefaultConnectionTimeout, 100, 600_000)
	c.Producer.OperationTimeout = p.millis(VarOperationTimeout, producer.DefaultOperationTimeout, 100, 600_000)
	c.Producer.KeepAliveInterval = p.millis(VarKeepAlive, producer.DefaultKeepAliveInterval, 1000, 600_000)
	c.Producer.Chunking = p.boolean(VarChunking, true)

	c.Relay.Deaggregate = p.boolean(VarDeaggregate, true)
	c.Relay.DeadlineMargin = p.millis(VarDeadlineMargin, relay.DefaultDeadlineMargin, 100, 600_000)
	c.Relay.AuditRequired = p.boolean(VarAuditRequired, false)

	c.Auth.SecretID = p.str(VarAuthSecret, "")
	c.Producer.TLSAllowInsecure = p.boolean(VarTLSAllowInsecure, false)
	c.Producer.TLSValidateHostname = p.boolean(VarTLSValidateHostname, true)

	c.Audit.Table = p.str(VarAuditTable, "")
	if c.Audit.Table != "" && !tableName.MatchString(c.Audit.Table) {
		p.fail(VarAuditTable, strconv.Quote(c.Audit.Table), "a DynamoDB table name: 3 to 255 of a-z A-Z 0-9 _ - .")
	}
	const day = 24 * time.Hour
	c.Audit.Retention = time.Duration(p.integer(VarAuditRetention, int(audit.DefaultRetention/day), 1, 3650)) * day
	if c.Relay.AuditRequired && c.Audit.Table == "" {
		p.fail(VarAuditRequired, `"true"`, "AUDIT_TABLE_NAME to be set as well")
	}

	if p.enum(VarGuarantee, "atLeastOnce", "atLeastOnce", "effectivelyOnce") == "effectivelyOnce" {
		c.Relay.Guarantee = relay.EffectivelyOnce
		// The shard's sequence ids live in the audit table.
		if c.Audit.Table == "" {
			p.fail(VarGuarantee, `"effectivelyOnce"`, "AUDIT_TABLE_NAME to be set as well (the sequence ids are kept there)")
		}
		// Keyless messages are spread round-robin from a starting partition a retry does not repeat, and
		// each partition deduplicates on its own.
		if c.Relay.Key == relay.KeyNone {
			p.fail(VarGuarantee, `"effectivelyOnce"`, "PULSAR_MESSAGE_KEY partitionKey or shardId (keyless messages may land on another partition when retried)")
		}
	}

	c.MetricsNamespace = metricsNamespace(p)

	refuseUnsafe(p, &c)
	if len(p.problems) > 0 {
		return Config{}, &Error{Problems: p.problems}
	}
	return c, nil
}

var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

func serviceURL(p *parser) string {
	const want = "pulsar://host:6650 or pulsar+ssl://host:6651"
	v := p.required(VarServiceURL, want)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl") || u.Host == "" {
		// Show the scheme only: a URL may carry credentials.
		got := "an unparsable URL"
		if err == nil {
			got = "a URL with scheme " + strconv.Quote(u.Scheme)
		}
		p.fail(VarServiceURL, got, want)
		return ""
	}
	if u.User != nil {
		p.fail(VarServiceURL, "a URL with user information", want+", with credentials in PULSAR_AUTH_SECRET_ARN")
		return ""
	}
	return v
}

func topic(p *parser, name, v string) streamtopic.Template {
	t, err := streamtopic.Parse(v)
	if err != nil {
		p.fail(name, strconv.Quote(v), streamtopic.Want)
	}
	return t
}
