package config

import (
	"strconv"
	"strings"
)

// refuseUnsafe reports settings that parse but can only go wrong.
func refuseUnsafe(p *parser, c *Config) {
	for _, v := range []struct{ name, topic string }{{VarTopic, c.Relay.Topic}, {VarDeadLetterTopic, c.Relay.DeadLetterTopic}} {
		if strings.HasPrefix(v.topic, "non-persistent://") {
			// The broker answers a non-persistent send without storing it: a receipt proves nothing.
			p.fail(v.name, strconv.Quote(v.topic), "a persistent topic (persistent://...): a non-persistent topic's receipts are not durable")
		}
	}
	if c.Relay.DeadLetterTopic != "" && fullTopic(c.Relay.DeadLetterTopic) == fullTopic(c.Relay.Topic) {
		p.fail(VarDeadLetterTopic, strconv.Quote(c.Relay.DeadLetterTopic), "a topic other than "+VarTopic+": the records it receives are those that cannot reach that topic")
	}
}

// fullTopic completes a short topic name as Pulsar does: tenant/ns/topic and a bare topic (in
// public/default) are persistent.
func fullTopic(topic string) string {
	switch {
	case strings.Contains(topic, "://"):
		return topic
	case strings.Count(topic, "/") == 2:
		return "persistent://" + topic
	}
	return "persistent://public/default/" + topic
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
