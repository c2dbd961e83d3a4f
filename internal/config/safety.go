package config

import (
	"strconv"
	"strings"

	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// refuseUnsafe reports settings that parse but can only go wrong.
func refuseUnsafe(p *parser, c *Config) {
	for _, v := range []struct {
		name  string
		topic streamtopic.Template
	}{{VarTopic, c.Relay.Topic}, {VarDeadLetterTopic, c.Relay.DeadLetterTopic}} {
		if strings.HasPrefix(v.topic.String(), "non-persistent://") {
			// The broker answers a non-persistent send without storing it: a receipt proves nothing.
			p.fail(v.name, strconv.Quote(v.topic.String()), "a persistent topic (persistent://...): a non-persistent topic's receipts are not durable")
		}
	}
	if !c.Relay.DeadLetterTopic.IsZero() && c.Relay.DeadLetterTopic.FullName() == c.Relay.Topic.FullName() {
		p.fail(VarDeadLetterTopic, strconv.Quote(c.Relay.DeadLetterTopic.String()), "a topic other than "+VarTopic+": the records it receives are those that cannot reach that topic")
	}
}

// Warnings lists settings that work but weaken security, for the function to log at init.
func Warnings(c Config) []string {
	var w []string
	if c.Auth.SecretID != "" && strings.HasPrefix(c.Producer.ServiceURL, "pulsar://") {
		// TLS client certificates need pulsar+ssl://: over pulsar:// the secret holds a token or OAuth2
		// credentials, and the token the broker receives crosses the network unencrypted.
		w = append(w, VarAuthSecret+" is set and "+VarServiceURL+" is pulsar://: the token or OAuth2 access token is sent in cleartext; use pulsar+ssl://")
	}
	if c.Producer.TLSAllowInsecure {
		w = append(w, VarTLSAllowInsecure+" is on: any broker certificate is accepted, so the connection can be intercepted")
	}
	return w
}
