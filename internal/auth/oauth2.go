package auth

import (
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"sync"

	pulsarauth "github.com/apache/pulsar-client-go/pulsar/auth"
)

// oauth2Provider is the client's OAuth2 authentication. The library's provider keeps the client
// credentials it was built with, and its access token until that expires, whatever the issuer or the
// broker answer; this one builds a new library provider from a fresh copy of the secret when the
// current one failed at a handshake (see rejection.go), so that rotated client credentials, or a token
// the broker no longer accepts, are replaced by the client's own reconnect attempts.
type oauth2Provider struct {
	s *Secret

	mu        sync.Mutex
	inner     pulsarauth.Provider
	transport http.RoundTripper // from WithTransport, for the providers built later
}

func (s *Secret) newOAuth2Provider(m *material) (*oauth2Provider, error) {
	inner, err := s.libraryOAuth2(m)
	if err != nil {
		return nil, err
	}
	return &oauth2Provider{s: s, inner: inner}, nil
}

// libraryOAuth2 builds pulsar-client-go's client_credentials provider. pulsar.NewAuthenticationOAuth2
// would drop the error and return nil, which the client takes for "no authentication".
func (s *Secret) libraryOAuth2(m *material) (pulsarauth.Provider, error) {
	params := map[string]string{
		"type":      "client_credentials",
		"issuerUrl": m.IssuerURL,
		"audience":  m.Audience,
		// Passed as data, never written to a file.
		"privateKey": "data:application/json;base64," + base64.StdEncoding.EncodeToString([]byte(m.PrivateKey)),
	}
	if m.Scope != "" {
		params["scope"] = m.Scope
	}
	p, err := pulsarauth.NewAuthenticationOAuth2WithParams(params)
	if err != nil {
		// The library's message may quote a parameter; say only which step failed.
		return nil, &Error{SecretID: s.id, Problem: "oauth2 settings are not accepted by the Pulsar client"}
	}
	return p, nil
}

func (p *oauth2Provider) Init() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inner.Init()
}

func (p *oauth2Provider) Name() string { return "token" }

func (p *oauth2Provider) GetTLSCertificate() (*tls.Certificate, error) { return nil, nil }

// GetData returns an access token for a handshake or an auth challenge.
func (p *oauth2Provider) GetData() ([]byte, error) {
	m, fresh, err := p.s.current(typeOAuth2)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if fresh {
		if err := p.rebuildLocked(m); err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
	inner := p.inner
	p.mu.Unlock()
	return inner.GetData()
}

// rebuildLocked replaces the library provider by one built from m, with an empty token cache.
func (p *oauth2Provider) rebuildLocked(m *material) error {
	inner, err := p.s.libraryOAuth2(m)
	if err != nil {
		return err
	}
	if err := inner.Init(); err != nil {
		return &Error{SecretID: p.s.id, Problem: "oauth2 settings are not accepted by the Pulsar client"}
	}
	if p.transport != nil {
		if err := inner.WithTransport(p.transport); err != nil {
			return &Error{SecretID: p.s.id, Problem: "oauth2 settings are not accepted by the Pulsar client"}
		}
	}
	old := p.inner
	p.inner = inner
	// The library's Close does nothing today; the old provider is not used any more either way.
	_ = old.Close()
	return nil
}

func (p *oauth2Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inner.Close()
}

// The HTTP methods serve lookups over http(s):// service URLs, which the function does not use; they
// go to the current library provider.

func (p *oauth2Provider) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	inner := p.inner
	p.mu.Unlock()
	return inner.RoundTrip(req)
}

func (p *oauth2Provider) Transport() http.RoundTripper {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inner.Transport()
}

func (p *oauth2Provider) WithTransport(t http.RoundTripper) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.transport = t
	return p.inner.WithTransport(t)
}
