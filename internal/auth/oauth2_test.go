package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/tests/authtest"
)

// The OAuth2 provider gets its tokens from a real (local) issuer; after a failure it is rebuilt from a
// fresh copy of the secret, at most every minRefetchInterval. The whole flow with a broker is in
// auth_integration_test.go.
func TestOAuth2ProviderRebuilds(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issuer := authtest.StartIssuer(t, key, "fn", "cs-right", "aud")
	value := func(clientSecret string) string {
		return js(map[string]string{"type": "oauth2", "issuerUrl": issuer.URL, "audience": "aud",
			"privateKey": js(map[string]string{"client_id": "fn", "client_secret": clientSecret})})
	}
	now := time.Now()
	f := &fakeSecrets{value: value("cs-wrong")}
	s := New(f, "pulsar", slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return now }
	opts := pulsar.ClientOptions{}
	if err := s.Apply(context.Background(), &opts); err != nil {
		t.Fatal(err)
	}
	p := opts.Authentication.(*oauth2Provider)
	if err := p.Init(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetData(); err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "cs-wrong") {
		t.Fatalf("GetData with a wrong client secret: %v; want the issuer's refusal, without the secret", err)
	}
	s.rejected("gives the client no credentials: invalid_client") // what the client's log tells
	f.set(value("cs-right"))

	now = now.Add(minRefetchInterval / 2)
	if _, err := p.GetData(); err == nil || f.fetches != 1 {
		t.Fatalf("within minRefetchInterval: err %v, fetches %d; want the old provider, no fetch", err, f.fetches)
	}
	now = now.Add(minRefetchInterval)
	tok, err := p.GetData()
	if err != nil || f.fetches != 2 || strings.Count(string(tok), ".") != 2 {
		t.Fatalf("after the interval: err %v, fetches %d, token is a JWT = %v", err, f.fetches, strings.Count(string(tok), ".") == 2)
	}
	if _, err := p.GetData(); err != nil || issuer.Granted() != 1 {
		t.Errorf("err %v, %d tokens granted; want the access token cached", err, issuer.Granted())
	}
}
