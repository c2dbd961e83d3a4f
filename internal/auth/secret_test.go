package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// jwt builds an unsigned-looking token with the given claims; the broker, not this package, checks
// signatures.
func jwt(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256"}) + "." + enc(claims) + ".c2lnbmF0dXJlLXNlY3JldA"
}

func certPair(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func js(v map[string]string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParse(t *testing.T) {
	token := jwt(map[string]any{"sub": "fn", "exp": time.Now().Add(time.Hour).Unix()})
	certPEM, keyPEM := certPair(t)
	otherCert, _ := certPair(t)
	creds := `{"client_id":"id-1","client_secret":"s3cr3t-value","issuer_url":"https://auth.example.com"}`
	for _, tc := range []struct {
		name    string
		value   string
		typ     string
		problem string // substring; "" = valid
	}{
		{"bare JWT", token, typeToken, ""},
		{"token JSON", js(map[string]string{"type": "token", "token": token}), typeToken, ""},
		{"token with CA", js(map[string]string{"type": "token", "token": token, "caPem": certPEM}), typeToken, ""},
		{"oauth2", js(map[string]string{"type": "oauth2", "issuerUrl": "https://auth.example.com", "audience": "urn:sn:pulsar:o:i", "privateKey": creds, "scope": "x"}), typeOAuth2, ""},
		{"tls", js(map[string]string{"type": "tls", "certPem": certPEM, "keyPem": keyPEM}), typeTLS, ""},
		{"empty", "  ", "", "is empty"},
		{"garbage", "hunter2-not-a-token", "", "neither JSON nor a JWT"},
		{"malformed JSON", `{"type":"token","token":"hunter2`, "", "not valid JSON"},
		{"two objects", js(map[string]string{"type": "token", "token": "t"}) + "{}", "", "single JSON object"},
		{"no type", js(map[string]string{"token": "hunter2"}), "", `"type" is missing`},
		{"unknown type", js(map[string]string{"type": "basic", "token": "hunter2"}), "", `"type" is "basic"`},
		{"typo", js(map[string]string{"type": "token", "tokn": "hunter2"}), "", `unknown field "tokn"`},
		{"token missing", js(map[string]string{"type": "token"}), "", `needs the field "token"`},
		{"number", `{"type":"token","token":12345}`, "", `"token" must be a string`},
		{"oauth2 missing", js(map[string]string{"type": "oauth2", "privateKey": creds}), "", `"issuerUrl", "audience"`},
		{"oauth2 bad url", js(map[string]string{"type": "oauth2", "issuerUrl": "ftp://x", "audience": "a", "privateKey": creds}), "", "not an http(s) URL"},
		{"oauth2 cleartext issuer", js(map[string]string{"type": "oauth2", "issuerUrl": "http://auth.example.com", "audience": "a", "privateKey": creds}), "", "cleartext"},
		{"oauth2 loopback issuer", js(map[string]string{"type": "oauth2", "issuerUrl": "http://127.0.0.1:8081", "audience": "a", "privateKey": creds}), typeOAuth2, ""},
		{"oauth2 bad key", js(map[string]string{"type": "oauth2", "issuerUrl": "https://x", "audience": "a", "privateKey": "hunter2"}), "", "client credentials JSON"},
		{"tls missing key", js(map[string]string{"type": "tls", "certPem": certPEM}), "", `needs the fields "keyPem"`},
		{"tls mismatched", js(map[string]string{"type": "tls", "certPem": otherCert, "keyPem": keyPEM}), "", "do not form"},
		{"bad CA", js(map[string]string{"type": "token", "token": token, "caPem": "hunter2"}), "", `"caPem" holds no PEM`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, problem := parse([]byte(tc.value))
			if tc.problem == "" {
				if problem != "" || m.Type != tc.typ {
					t.Fatalf("problem %q, type %v; want a valid %s secret", problem, m, tc.typ)
				}
				return
			}
			if !strings.Contains(problem, tc.problem) {
				t.Errorf("problem %q, want it to mention %q", problem, tc.problem)
			}
			for _, secret := range []string{"hunter2", "s3cr3t-value", "c2lnbmF0dXJlLXNlY3JldA", "12345"} {
				if strings.Contains(problem, secret) {
					t.Errorf("problem %q leaks secret material", problem)
				}
			}
		})
	}
}

func TestJWTExpiry(t *testing.T) {
	if got := jwtExpiry(jwt(map[string]any{"exp": 1700000000})); !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("exp = %v", got)
	}
	if got := jwtExpiry(jwt(map[string]any{"sub": "x"})); !got.IsZero() {
		t.Errorf("no exp: %v", got)
	}
	if got := jwtExpiry("a.!!!.c"); !got.IsZero() {
		t.Errorf("garbage: %v", got)
	}
}

// fakeSecrets fails or answers with the current value; it counts fetches.
type fakeSecrets struct {
	mu      sync.Mutex
	value   string
	err     error
	fetches int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if f.err != nil {
		return nil, f.err
	}
	v := f.value
	return &secretsmanager.GetSecretValueOutput{SecretString: &v, Name: in.SecretId}, nil
}

func (f *fakeSecrets) set(v string) {
	f.mu.Lock()
	f.value = v
	f.mu.Unlock()
}

func TestApply(t *testing.T) {
	certPEM, keyPEM := certPair(t)
	creds := `{"client_id":"id","client_secret":"s"}`
	for _, tc := range []struct {
		name     string
		value    string
		tls      bool
		wantName string // the provider's auth method
		wantErr  string
	}{
		{"token", jwt(map[string]any{"sub": "a"}), false, "token", ""},
		{"oauth2", js(map[string]string{"type": "oauth2", "issuerUrl": "https://auth.example.com/", "audience": "aud", "privateKey": creds}), true, "token", ""},
		{"tls", js(map[string]string{"type": "tls", "certPem": certPEM, "keyPem": keyPEM, "caPem": certPEM}), true, "tls", ""},
		{"tls on plain URL", js(map[string]string{"type": "tls", "certPem": certPEM, "keyPem": keyPEM}), false, "", "not pulsar+ssl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(&fakeSecrets{value: tc.value}, "arn:aws:secretsmanager:us-east-1:1:secret:pulsar", nil)
			opts := pulsar.ClientOptions{}
			if tc.tls {
				opts.TLSConfig = &tls.Config{}
			}
			err := s.Apply(context.Background(), &opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			provider, ok := opts.Authentication.(interface{ Name() string })
			if !ok || provider.Name() != tc.wantName {
				t.Fatalf("authentication %T, want the %q method", opts.Authentication, tc.wantName)
			}
			if tc.name == "tls" && (len(opts.TLSConfig.Certificates) != 1 || opts.TLSConfig.RootCAs == nil) {
				t.Error("TLS config lacks the client certificate or the CA")
			}
		})
	}
}

func TestFetchedOnceAndRefreshed(t *testing.T) {
	f := &fakeSecrets{value: jwt(map[string]any{"sub": "a"})}
	s := New(f, "pulsar", nil)
	for i := 0; i < 3; i++ {
		if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if f.fetches != 1 {
		t.Errorf("fetched %d times, want once", f.fetches)
	}
	s.Refresh()
	if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil || f.fetches != 2 {
		t.Errorf("after Refresh: err %v, fetches %d", err, f.fetches)
	}
}

func TestExpiredTokenIsFetchedAgain(t *testing.T) {
	now := time.Now()
	old := jwt(map[string]any{"exp": now.Add(time.Minute).Unix()})
	rotated := jwt(map[string]any{"exp": now.Add(time.Hour).Unix()})
	f := &fakeSecrets{value: old}
	s := New(f, "pulsar", nil)
	s.now = func() time.Time { return now }
	if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	if tok, _ := s.token(); tok != old {
		t.Fatal("valid cached token not used")
	}
	f.set(rotated)
	now = now.Add(2 * time.Minute) // the old token expired
	if tok, err := s.token(); err != nil || tok != rotated {
		t.Fatalf("after expiry: err %v, rotated token used = %v", err, tok == rotated)
	}
	if f.fetches != 2 {
		t.Errorf("fetches %d, want 2", f.fetches)
	}
}

func TestFetchErrorNamesSecret(t *testing.T) {
	s := New(&fakeSecrets{err: errors.New("AccessDeniedException: not authorized")}, "arn:aws:secretsmanager:us-east-1:1:secret:pulsar", nil)
	err := s.Apply(context.Background(), &pulsar.ClientOptions{})
	var aerr *Error
	if !errors.As(err, &aerr) || !strings.Contains(err.Error(), "secret:pulsar") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("err %v", err)
	}
}
