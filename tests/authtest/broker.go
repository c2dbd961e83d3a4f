// Package authtest runs what the tests of Pulsar authentication need against real servers: a standalone
// broker with token and mTLS authentication on TLS ports (infra/local/pulsar/auth/broker.conf), keys and
// tokens made with the Pulsar distribution's own tools, certificates made with openssl, secrets in the
// local stack's Secrets Manager (moto), and a moto of its own that enforces IAM.
//
// Everything it generates lives in a t.TempDir(). Nothing it makes is ever printed: tokens and keys are
// the very material the tests check the logs for.
package authtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// Roles the broker sees.
const (
	AdminRole  = "admin"  // super-user; the broker's own client and readiness checks
	ClientRole = "fn-tls" // common name of the mTLS client certificate
)

// Broker is a standalone broker with authentication, and the material to talk to it.
type Broker struct {
	*localenv.Broker
	Dir        string // keys, certificates, tokens and the broker's settings
	ServiceURL string // pulsar+ssl://127.0.0.1:<brokerServicePortTls>
	AdminToken string // a token of AdminRole without expiry

	CAPEM      string // the CA that signed the broker's and the client's certificates
	OtherCAPEM string // a CA that signed nothing the broker presents
	// ClientCertPEM and ClientKeyPEM are an mTLS client certificate of ClientRole, signed by CAPEM's CA.
	ClientCertPEM, ClientKeyPEM string
	// OtherClientCertPEM and OtherClientKeyPEM are a client certificate signed by OtherCAPEM's CA.
	OtherClientCertPEM, OtherClientKeyPEM string

	pulsarHome string
}

// Start generates keys, tokens and certificates, writes the broker's settings from the checked-in
// template and starts the broker (name must start with "auth-"); t.Cleanup stops it. It takes seconds:
// start one per test package.
func Start(t testing.TB, name string) *Broker {
	t.Helper()
	env := localenv.Require(t)
	if !strings.HasPrefix(name, "auth-") {
		t.Fatalf("authtest: broker name %q must start with auth-", name)
	}
	b := &Broker{Dir: t.TempDir(), pulsarHome: env.PulsarHome}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := b.pulsarTool(ctx, "tokens", "create-key-pair", "--signature-algorithm", "RS256",
		"--output-private-key", b.path("token.private.key"), "--output-public-key", b.path("token.public.key")); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	admin, err := b.token(ctx, AdminRole, 0)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	b.AdminToken = admin
	if err := b.write("admin.token", admin); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	if err := b.makeCertificates(ctx); err != nil {
		t.Fatalf("authtest: %v", err)
	}

	// All four ports at once, so that they differ: StartBroker would pick its two on its own.
	ports, err := freePorts(4)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	tlsPort, webTLSPort := ports[2], ports[3]
	confPath, err := localenv.RepoFile("infra/local/pulsar/auth/broker.conf")
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	template, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	conf := strings.NewReplacer("@DIR@", b.Dir, "@TLS_PORT@", strconv.Itoa(tlsPort),
		"@WEB_TLS_PORT@", strconv.Itoa(webTLSPort)).Replace(string(template))
	if err := b.write("broker.conf", conf); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	b.ServiceURL = fmt.Sprintf("pulsar+ssl://127.0.0.1:%d", tlsPort)
	b.Broker = localenv.StartBroker(t, localenv.BrokerOptions{
		Name: name, BrokerPort: ports[0], WebPort: ports[1],
		ConfFiles: []string{b.path("broker.conf")}, TokenFile: b.path("admin.token"),
	})
	return b
}

func (b *Broker) path(name string) string { return filepath.Join(b.Dir, name) }

func (b *Broker) write(name, content string) error {
	if err := os.WriteFile(b.path(name), []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (b *Broker) read(name string) (string, error) {
	data, err := os.ReadFile(b.path(name))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return string(data), nil
}

// Token returns a token for subject signed with the broker's key by `pulsar tokens create`; expiry 0
// means none. Expiries are whole seconds.
func (b *Broker) Token(t testing.TB, subject string, expiry time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := b.token(ctx, subject, expiry)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return tok
}

func (b *Broker) token(ctx context.Context, subject string, expiry time.Duration) (string, error) {
	args := []string{"tokens", "create", "--private-key", "file://" + b.path("token.private.key"), "--subject", subject}
	if expiry > 0 {
		args = append(args, "--expiry-time", fmt.Sprintf("%ds", int(expiry.Seconds())))
	}
	return b.pulsarToolOutput(ctx, args...)
}

// ForeignToken returns a well-formed token for subject signed with a key the broker does not know.
func (b *Broker) ForeignToken(t testing.TB, subject string) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := b.pulsarToolOutput(ctx, "tokens", "create", "--secret-key",
		"data:;base64,"+base64.StdEncoding.EncodeToString(key), "--subject", subject)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return tok
}

// SigningKey returns the private key the broker's tokens are signed with (PKCS#8 DER, as the tool
// writes it), for a local OAuth2 issuer that mints tokens the broker accepts.
func (b *Broker) SigningKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	der, err := os.ReadFile(b.path("token.private.key"))
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("authtest: token signing key: %v", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("authtest: token signing key is a %T, want RSA", key)
	}
	return rsaKey
}

// pulsarTool runs bin/pulsar with a small heap: the default pre-touches gigabytes for a one-second job.
func (b *Broker) pulsarTool(ctx context.Context, args ...string) error {
	_, err := b.pulsarToolOutput(ctx, args...)
	return err
}

func (b *Broker) pulsarToolOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.pulsarHome, "bin", "pulsar"), args...)
	cmd.Env = append(os.Environ(), "PULSAR_MEM=-Xms32m -Xmx128m", "PULSAR_GC=-XX:+UseSerialGC",
		"PULSAR_GC_LOG=-Xlog:disable", "PULSAR_LOG_DIR="+b.path("tool-logs"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		// The tool's output holds no key material on failure (a stack trace); stdout may hold a token.
		return "", fmt.Errorf("pulsar %s: %w\n%s", strings.Join(args[:2], " "), err, lastLines(stderr.String(), 5))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// makeCertificates writes, with openssl: a CA; the broker's certificate (SAN 127.0.0.1 and localhost);
// a certificate with the broker's key but other names (for the host name tests); an mTLS client
// certificate; and an unrelated CA with a client certificate of its own.
func (b *Broker) makeCertificates(ctx context.Context) error {
	steps := [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kinesis-pulsar test CA",
			"-keyout", b.path("ca.key.pem"), "-out", b.path("ca.cert.pem"),
			"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kinesis-pulsar other CA",
			"-keyout", b.path("other-ca.key.pem"), "-out", b.path("other-ca.cert.pem"),
			"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
		{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", b.path("broker.key.pem")},
		b.leaf("ca", "broker.key.pem", "broker.cert.pem", "/CN=broker", "subjectAltName=IP:127.0.0.1,DNS:localhost", "serverAuth"),
		b.leaf("ca", "broker.key.pem", "wrong-san.cert.pem", "/CN=broker.example.invalid", "subjectAltName=DNS:broker.example.invalid,IP:192.0.2.1", "serverAuth"),
		{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", b.path("client.key.pem")},
		b.leaf("ca", "client.key.pem", "client.cert.pem", "/CN="+ClientRole, "subjectAltName=DNS:"+ClientRole, "clientAuth"),
		{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", b.path("other-client.key.pem")},
		b.leaf("other-ca", "other-client.key.pem", "other-client.cert.pem", "/CN="+ClientRole, "subjectAltName=DNS:"+ClientRole, "clientAuth"),
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, "openssl", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("openssl %s: %w\n%s", args[0], err, lastLines(string(out), 5))
		}
	}
	// The certificate the broker presents now; PresentCertificate swaps it.
	if err := copyFile(b.path("broker.cert.pem"), b.path("broker-main.cert.pem")); err != nil {
		return err
	}
	for name, field := range map[string]*string{
		"ca.cert.pem": &b.CAPEM, "other-ca.cert.pem": &b.OtherCAPEM,
		"client.cert.pem": &b.ClientCertPEM, "client.key.pem": &b.ClientKeyPEM,
		"other-client.cert.pem": &b.OtherClientCertPEM, "other-client.key.pem": &b.OtherClientKeyPEM,
	} {
		v, err := b.read(name)
		if err != nil {
			return err
		}
		*field = v
	}
	return nil
}

// leaf is the openssl command for a certificate of an existing key, signed by the CA ca ("ca" or
// "other-ca").
func (b *Broker) leaf(ca, key, out, subject, san, usage string) []string {
	return []string{"req", "-new", "-x509", "-key", b.path(key), "-out", b.path(out), "-days", "2", "-subj", subject,
		"-CA", b.path(ca + ".cert.pem"), "-CAkey", b.path(ca + ".key.pem"),
		"-addext", san, "-addext", "extendedKeyUsage=" + usage, "-addext", "basicConstraints=critical,CA:FALSE"}
}

// Certificates the broker can present.
const (
	MainCertificate     = "broker-main.cert.pem" // SAN 127.0.0.1 and localhost
	WrongSANCertificate = "wrong-san.cert.pem"   // SAN broker.example.invalid and 192.0.2.1; same CA and key
)

// PresentCertificate makes the broker present one of its certificates to new TLS connections: it
// replaces the certificate file (the key stays) and waits until the broker reloaded it
// (tlsCertRefreshCheckDurationSec). t.Cleanup restores the main certificate.
func (b *Broker) PresentCertificate(t testing.TB, which string) {
	t.Helper()
	if err := b.presentCertificate(which); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	if which != MainCertificate {
		t.Cleanup(func() {
			if err := b.presentCertificate(MainCertificate); err != nil {
				t.Errorf("authtest: %v", err)
			}
		})
	}
}

func (b *Broker) presentCertificate(which string) error {
	want, err := os.ReadFile(b.path(which))
	if err != nil {
		return fmt.Errorf("certificate %s: %w", which, err)
	}
	tmp := b.path("broker.cert.pem.tmp")
	if err := os.WriteFile(tmp, want, 0o600); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	// A rename: the broker never reads a half-written file.
	if err := os.Rename(tmp, b.path("broker.cert.pem")); err != nil {
		return fmt.Errorf("replace certificate: %w", err)
	}
	block, _ := pem.Decode(want)
	if block == nil {
		return fmt.Errorf("certificate %s holds no PEM block", which)
	}
	addr := strings.TrimPrefix(b.ServiceURL, "pulsar+ssl://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaf, err := presentedLeaf(addr)
		if err == nil && bytes.Equal(leaf.Raw, block.Bytes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker still presents its old certificate 30 s after %s was put in place (dial error: %v)", which, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// presentedLeaf returns the certificate the broker presents, without checking it.
func presentedLeaf(addr string) (*x509.Certificate, error) {
	// Only reads the certificate: nothing is sent over this connection.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate presented")
	}
	return certs[0], nil
}

// Client returns a client of AdminRole that trusts the test CA, closed when the test ends.
func (b *Broker) Client(t testing.TB) pulsar.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(b.CAPEM))
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: b.ServiceURL, OperationTimeout: 30 * time.Second, Logger: pulsartest.QuietLogger(),
		TLSConfig:      &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Authentication: pulsar.NewAuthenticationToken(b.AdminToken),
	})
	if err != nil {
		t.Fatalf("authtest: admin client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copy %s: %w", filepath.Base(from), err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		return fmt.Errorf("copy to %s: %w", filepath.Base(to), err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		// Closed on return: while open, the kernel hands out other ports.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
