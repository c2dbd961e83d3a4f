// Package auth reads Pulsar credentials from an AWS Secrets Manager secret and applies them to the
// Pulsar client. The secret is fetched once per execution environment and cached; it is fetched again
// when a broker refuses it at a handshake, when the pool replaces its client after a failure (Refresh),
// and when a cached token has expired.
//
// The secret's value is JSON, one of
//
//	{"type":"token","token":"<JWT>"}                          (a bare JWT string works too)
//	{"type":"oauth2","issuerUrl":"…","audience":"…","privateKey":"<client credentials JSON>","scope":"…"}
//	{"type":"tls","certPem":"…","keyPem":"…"}                 (mTLS client certificate)
//
// each with an optional "caPem" to trust a private CA on pulsar+ssl://. Errors name the secret and
// the problem, never any part of its value.
package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretsClient is the part of the Secrets Manager client the package uses.
type SecretsClient interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Error is a problem with the secret: which one, and what is wrong. It never holds the value.
type Error struct {
	SecretID string
	Problem  string
	Err      error // the AWS SDK error for fetch failures; nil for content problems
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("pulsar auth secret %q: %s: %v", e.SecretID, e.Problem, e.Err)
	}
	return fmt.Sprintf("pulsar auth secret %q: %s", e.SecretID, e.Problem)
}

func (e *Error) Unwrap() error { return e.Err }

// Secret supplies credentials from one secret. It implements producer.Credentials and is safe for
// concurrent use.
type Secret struct {
	client SecretsClient
	id     string
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	cached    *material
	fetchedAt time.Time
	// rejection says why the cached copy did not work at a handshake (see rejection.go); "" when it
	// did not fail, or not since the last fetch.
	rejection string
	mustFetch bool // Refresh was called: the next Apply fetches
}

// New returns credentials read from the secret id (an ARN or a name). Nothing is fetched yet.
func New(client SecretsClient, id string, log *slog.Logger) *Secret {
	if log == nil {
		log = slog.Default()
	}
	return &Secret{client: client, id: id, log: log, now: time.Now}
}

// fetchTimeout bounds a fetch made outside an invocation's context (a token refresh on reconnect).
const fetchTimeout = 5 * time.Second

// minRefetchInterval keeps an expired or refused token from making the client fetch on every reconnect
// attempt (the client retries every 100 ms to 2 s). It also bounds how long a rotated secret takes to
// be picked up by a client whose token the broker refuses.
const minRefetchInterval = 5 * time.Second

// expirySlack refetches a token this long before it expires, so no connection starts with one
// about to lapse.
const expirySlack = 30 * time.Second

// Apply sets the client's authentication and adds TLS material to opts.TLSConfig. It also wraps
// opts.Logger, to learn when a broker refuses the credentials (see rejection.go).
func (s *Secret) Apply(ctx context.Context, opts *pulsar.ClientOptions) error {
	m, err := s.material(ctx)
	if err != nil {
		return err
	}
	opts.Logger = s.watchRejections(opts.Logger)
	if m.ca != nil || m.cert != nil {
		if opts.TLSConfig == nil {
			return &Error{SecretID: s.id, Problem: "holds TLS material (caPem, certPem) but PULSAR_SERVICE_URL is not pulsar+ssl://"}
		}
		if m.ca != nil {
			opts.TLSConfig.RootCAs = m.ca
		}
	}
	switch m.Type {
	case typeToken:
		opts.Authentication = pulsar.NewAuthenticationTokenFromSupplier(s.token)
	case typeOAuth2:
		provider, err := s.newOAuth2Provider(m)
		if err != nil {
			return err
		}
		opts.Authentication = provider
	case typeTLS:
		// With TLSConfig set the client ignores the provider's certificate for the handshake, so the
		// certificate goes in both: the config for TLS, the provider for the "tls" auth method.
		cert := m.cert
		opts.TLSConfig.Certificates = []tls.Certificate{*cert}
		opts.Authentication = pulsar.NewAuthenticationFromTLSCertSupplier(func() (*tls.Certificate, error) { return cert, nil })
	}
	return nil
}

// Refresh makes the next Apply fetch the secret again. The cached copy stays for the token supplier
// of clients still alive: a client being replaced keeps reconnecting until it is closed, and its fetch
// must not count as the new client's (the secret may be rotated in between).
func (s *Secret) Refresh() {
	s.mu.Lock()
	s.mustFetch = true
	s.mu.Unlock()
}

// Rejected returns an *Error when the cached credentials failed at a handshake since they were
// fetched (a broker refused them, or the client could not get a token from them), nil otherwise. The
// client itself reports such failures to its callers only as "connection error".
func (s *Secret) Rejected() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejection == "" {
		return nil
	}
	return &Error{SecretID: s.id, Problem: s.rejection}
}

// rejected records that the cached credentials failed at a handshake. The token supplier then fetches
// the secret again (at most every minRefetchInterval), so that a rotated token is picked up by the
// client's own reconnect attempts, and so does the next Apply. Logged once per fetched copy.
func (s *Secret) rejected(problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejection != "" {
		return
	}
	s.rejection = problem
	s.log.Warn("the Pulsar credentials from the secret do not work; it will be fetched again",
		"secret", s.id, "problem", problem)
}

func (s *Secret) material(ctx context.Context) (*material, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A new client does not start with a copy that failed, or that the pool distrusts, if a fresh
	// one can be had.
	if s.cached != nil && !s.mustFetch && s.rejection == "" {
		return s.cached, nil
	}
	m, err := s.fetch(ctx)
	if err != nil {
		if s.cached == nil {
			return nil, err
		}
		// The broker decides whether the old copy still works; failing for sure would not help.
		s.log.Warn("could not fetch the Pulsar credentials again; using the cached copy", "secret", s.id, "error", err)
		return s.cached, nil
	}
	s.cached, s.fetchedAt, s.rejection, s.mustFetch = m, s.now(), "", false
	return m, nil
}

// token is the client's token supplier, called for every connection and every auth challenge.
func (s *Secret) token() (string, error) {
	m, _, err := s.current(typeToken)
	if err != nil {
		return "", err
	}
	return m.Token, nil
}

// current returns the cached copy for a handshake of a client built for credentials of type typ. A
// copy that failed at a handshake, or a token about to expire, is replaced by a fresh fetch first (at
// most every minRefetchInterval): the secret may have been rotated. fresh reports a new copy.
func (s *Secret) current(typ string) (m *material, fresh bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m = s.cached
	now := s.now()
	stale := m == nil || s.rejection != "" || (!m.tokenExpiry.IsZero() && now.Add(expirySlack).After(m.tokenExpiry))
	if !stale || (m != nil && now.Sub(s.fetchedAt) < minRefetchInterval) {
		return m, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	got, err := s.fetch(ctx)
	// A failed attempt counts too: a Secrets Manager outage must not cost a fetch per reconnect.
	s.fetchedAt = now
	if err == nil && got.Type != typ {
		// A client is built for one type; the next client (after the pool replaced this one) uses it.
		err = &Error{SecretID: s.id, Problem: fmt.Sprintf("now holds type %q, the client was created for %q", got.Type, typ)}
	}
	switch {
	case err == nil:
		s.cached, s.rejection = got, ""
		return got, true, nil
	case m == nil:
		return nil, false, err
	default:
		// Keep the old copy: the broker decides whether it still works.
		s.log.Warn("could not fetch the Pulsar credentials again", "secret", s.id, "error", err)
		return m, false, nil
	}
}

func (s *Secret) fetch(ctx context.Context) (*material, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &s.id})
	if err != nil {
		return nil, &Error{SecretID: s.id, Problem: "cannot be read", Err: err}
	}
	var raw []byte
	switch {
	case out.SecretString != nil:
		raw = []byte(*out.SecretString)
	default:
		raw = out.SecretBinary
	}
	m, problem := parse(raw)
	if problem != "" {
		return nil, &Error{SecretID: s.id, Problem: problem}
	}
	return m, nil
}

const (
	typeToken  = "token"
	typeOAuth2 = "oauth2"
	typeTLS    = "tls"
)

type material struct {
	Type       string `json:"type"`
	Token      string `json:"token"`
	IssuerURL  string `json:"issuerUrl"`
	Audience   string `json:"audience"`
	PrivateKey string `json:"privateKey"`
	Scope      string `json:"scope"`
	CertPEM    string `json:"certPem"`
	KeyPEM     string `json:"keyPem"`
	CAPEM      string `json:"caPem"`

	cert        *tls.Certificate
	ca          *x509.CertPool
	tokenExpiry time.Time // zero when the token has no exp claim
}

// loopback reports a host that is this machine: traffic to it never crosses a network.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parse checks the secret's value; problem is "" when it is usable. Problems describe the value's
// shape, never its content.
func parse(raw []byte) (m *material, problem string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, "is empty"
	}
	m = &material{}
	if raw[0] != '{' {
		if !looksLikeJWT(string(raw)) {
			return nil, "is neither JSON nor a JWT"
		}
		m.Type, m.Token = typeToken, string(raw)
	} else if p := decodeJSON(raw, m); p != "" {
		return nil, p
	}

	switch m.Type {
	case typeToken:
		if m.Token == "" {
			return nil, `type "token" needs the field "token"`
		}
		m.tokenExpiry = jwtExpiry(m.Token)
	case typeOAuth2:
		if missing := missingFields(map[string]string{"issuerUrl": m.IssuerURL, "audience": m.Audience, "privateKey": m.PrivateKey}); missing != "" {
			return nil, `type "oauth2" needs the fields ` + missing
		}
		if u, err := url.Parse(m.IssuerURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, `field "issuerUrl" is not an http(s) URL`
		} else if u.Scheme == "http" && !loopback(u.Hostname()) {
			// The client secret goes to the issuer with every token request.
			return nil, `field "issuerUrl" is http://: the client secret would travel in cleartext; use https://`
		}
		var creds struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if json.Unmarshal([]byte(m.PrivateKey), &creds) != nil || creds.ClientID == "" || creds.ClientSecret == "" {
			return nil, `field "privateKey" must hold the client credentials JSON, with client_id and client_secret`
		}
	case typeTLS:
		if missing := missingFields(map[string]string{"certPem": m.CertPEM, "keyPem": m.KeyPEM}); missing != "" {
			return nil, `type "tls" needs the fields ` + missing
		}
		cert, err := tls.X509KeyPair([]byte(m.CertPEM), []byte(m.KeyPEM))
		if err != nil {
			return nil, `fields "certPem" and "keyPem" do not form a PEM certificate and matching private key`
		}
		m.cert = &cert
	case "":
		return nil, `field "type" is missing: want "token", "oauth2" or "tls"`
	default:
		return nil, fmt.Sprintf(`field "type" is %q: want "token", "oauth2" or "tls"`, m.Type)
	}
	if m.CAPEM != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(m.CAPEM)) {
			return nil, `field "caPem" holds no PEM certificate`
		}
		m.ca = pool
	}
	return m, ""
}

// decodeJSON decodes strictly: an unknown field is most likely a typo. Problems name fields and
// offsets only; encoding/json's own messages can quote a character of the value.
func decodeJSON(raw []byte, m *material) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(m)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return "is not a single JSON object"
		}
		return ""
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("is not valid JSON (error at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a string", typ.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "has an unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "is not valid JSON"
}

func missingFields(fields map[string]string) string {
	var missing []string
	for _, name := range []string{"issuerUrl", "audience", "privateKey", "certPem", "keyPem"} {
		if v, ok := fields[name]; ok && v == "" {
			missing = append(missing, `"`+name+`"`)
		}
	}
	return strings.Join(missing, ", ")
}

// looksLikeJWT reports three non-empty base64url parts, without checking anything else.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.ContainsFunc(p, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=')
		}) {
			return false
		}
	}
	return true
}

// jwtExpiry reads the exp claim without verifying the token (the broker verifies it); zero when
// absent or unreadable.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	exp, err := claims.Exp.Int64()
	if err != nil || exp <= 0 {
		return time.Time{}
	}
	return time.Unix(exp, 0)
}
