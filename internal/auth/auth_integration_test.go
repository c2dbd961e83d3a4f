//go:build integration

package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/auth"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/authtest"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

type summaries struct {
	mu  sync.Mutex
	all []*relay.Summary
}

func (s *summaries) Observe(_ context.Context, sum *relay.Summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, sum)
}

// countingSecrets counts the fetches that reach the real Secrets Manager.
type countingSecrets struct {
	auth.SecretsClient
	fetches atomic.Int32
}

func (c *countingSecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.fetches.Add(1)
	return c.SecretsClient.GetSecretValue(ctx, in, opts...)
}

// countingCredentials counts the clients the pool builds: it calls Apply once per client. A recovery
// with one client throughout was the credentials' own doing (the token supplier, the OAuth2 provider);
// a second client means the relay had the pool rebuild it.
type countingCredentials struct {
	producer.Credentials
	clients atomic.Int32
}

func (c *countingCredentials) Apply(ctx context.Context, opts *pulsar.ClientOptions) error {
	c.clients.Add(1)
	return c.Credentials.Apply(ctx, opts)
}

// suite is what every test shares: one broker per package run, the local Secrets Manager, and every
// piece of secret material made so far, which no log, error or test output may contain.
type suite struct {
	broker   *authtest.Broker
	secrets  *authtest.Secrets
	material authtest.Material
	mu       sync.Mutex // guards material
}

func (s *suite) secret(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.material.Add(name, value)
	return value
}

func (s *suite) redact(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.material.Redact(text)
}

// checkNoLeak fails the test when text holds secret material, naming what leaked, never the text.
func (s *suite) checkNoLeak(t *testing.T, what, text string) {
	t.Helper()
	s.mu.Lock()
	leaks := s.material.Leaks(text)
	s.mu.Unlock()
	if len(leaks) > 0 {
		t.Errorf("%s contains secret material: %v", what, leaks)
	}
}

// tokenSecret is the JSON of a token secret that trusts the test CA.
func (s *suite) tokenSecret(token string) string {
	return authtest.JSON(map[string]string{"type": "token", "token": token, "caPem": s.broker.CAPEM})
}

// function is one execution environment: credentials from a secret, a warm pool, the relay, and
// everything they logged.
type function struct {
	s       *suite
	creds   *auth.Secret
	counted *countingCredentials // what the pool calls: f.creds, counted
	secrets *countingSecrets
	pool    *producer.Pool
	relay   *relay.Relay
	logs    *runtimeapi.Output
	sums    *summaries
	topic   string
	shard   *kinesistest.Shard
}

type fnOptions struct {
	client   auth.SecretsClient // default: the local stack's Secrets Manager
	producer producer.Options   // ServiceURL defaults to the auth broker's TLS URL
	// noHostnameCheck is PULSAR_TLS_VALIDATE_HOSTNAME=false; the function's default is true.
	noHostnameCheck bool
}

func (s *suite) newFunction(t *testing.T, secretID string, o fnOptions) *function {
	t.Helper()
	logs := &runtimeapi.Output{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	popts := o.producer
	if popts.ServiceURL == "" {
		popts.ServiceURL = s.broker.ServiceURL
	}
	popts.Logger = log
	popts.TLSValidateHostname = !o.noHostnameCheck
	if o.client == nil {
		o.client = s.secrets.Client
	}
	f := &function{s: s, secrets: &countingSecrets{SecretsClient: o.client}, logs: logs, sums: &summaries{},
		topic: pulsartest.Topic(t, "auth"), shard: kinesistest.NewShard("auth", 0)}
	f.creds = auth.New(f.secrets, secretID, log)
	f.counted = &countingCredentials{Credentials: f.creds}
	popts.Credentials = f.counted
	f.pool = producer.NewPool(popts)
	t.Cleanup(func() { f.pool.Close(context.Background()) })
	f.relay = relay.New(relay.Options{Topic: streamtopic.MustParse(f.topic), Properties: relay.AllProperties, Deaggregate: true,
		DeadlineMargin: 500 * time.Millisecond}, senders.FromPool(f.pool), nil, f.sums, log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function logs (secret material redacted):\n%s", s.redact(logs.String()))
		}
	})
	return f
}

// invoke hands a batch of n records to the relay as one invocation with the given timeout, and
// checks that nothing it returned or logged holds secret material.
func (f *function) invoke(t *testing.T, n int, timeout time.Duration) (events.KinesisEventResponse, *relay.Summary) {
	t.Helper()
	recs := make([]events.KinesisEventRecord, n)
	for i := range recs {
		recs[i] = f.shard.Record(fmt.Sprintf("key-%d", i%3), []byte("auth-payload"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := f.relay.Handle(ctx, kinesistest.Event(recs...))
	if err != nil {
		t.Fatalf("Handle: %s", f.s.redact(err.Error()))
	}
	f.sums.mu.Lock()
	sum := f.sums.all[len(f.sums.all)-1]
	f.sums.mu.Unlock()
	f.s.checkNoLeak(t, "response", fmt.Sprint(resp))
	f.s.checkNoLeak(t, "summary cause", fmt.Sprint(sum.Cause))
	f.s.checkNoLeak(t, "logs", f.logs.String())
	if sum.Duration >= timeout {
		t.Errorf("invocation took %v, its timeout is %v", sum.Duration, timeout)
	}
	return resp, sum
}

// delivered asserts that every record of the invocation reached Pulsar.
func (f *function) delivered(t *testing.T, resp events.KinesisEventResponse, sum *relay.Summary) {
	t.Helper()
	if len(resp.BatchItemFailures) != 0 || sum.Outcome != relay.OutcomeDelivered || sum.Published != sum.Messages {
		t.Fatalf("outcome %s, %d of %d published, failures %v, cause: %s", sum.Outcome, sum.Published, sum.Messages,
			resp.BatchItemFailures, f.s.redact(fmt.Sprint(sum.Cause)))
	}
}

// failed asserts that the whole batch is reported for retry and returns the cause.
func (f *function) failed(t *testing.T, resp events.KinesisEventResponse, sum *relay.Summary) error {
	t.Helper()
	if sum.Outcome != relay.OutcomeFailed || sum.Published != 0 || len(resp.BatchItemFailures) != 1 ||
		resp.BatchItemFailures[0].ItemIdentifier != sum.FirstSequence || sum.Cause == nil {
		t.Fatalf("outcome %s, %d published, failures %v, cause %s; want the whole batch failed", sum.Outcome,
			sum.Published, resp.BatchItemFailures, f.s.redact(fmt.Sprint(sum.Cause)))
	}
	return sum.Cause
}

// invokeRotating invokes with the given timeout and, one second into the invocation, puts value into
// the secret; it returns when both are done, with the moment of the rotation.
func (f *function) invokeRotating(t *testing.T, arn, value string, timeout time.Duration) (events.KinesisEventResponse, *relay.Summary, time.Time) {
	t.Helper()
	type put struct {
		at  time.Time
		err error
	}
	rotation := make(chan put, 1)
	go func() {
		time.Sleep(time.Second)
		err := f.s.secrets.PutValue(arn, value)
		rotation <- put{time.Now(), err}
	}()
	resp, sum := f.invoke(t, 3, timeout)
	r := <-rotation
	if r.err != nil {
		t.Fatal(r.err)
	}
	return resp, sum, r.at
}

// sameClient asserts that the pool built one client only and the relay never asked for another: the
// credentials recovered by themselves.
func (f *function) sameClient(t *testing.T) {
	t.Helper()
	if n := f.counted.clients.Load(); n != 1 {
		t.Errorf("the pool built %d clients, want 1: the recovery was not the credentials' own", n)
	}
	if f.logged("replacing the Pulsar client") {
		t.Error("the relay replaced the client")
	}
}

// logged reports whether a log line has all the given substrings.
func (f *function) logged(parts ...string) bool {
	for _, line := range strings.Split(f.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// One broker for the whole package (a start costs seconds): every test is a subtest of this one.
func TestWithBroker(t *testing.T) {
	s := &suite{broker: authtest.Start(t, "auth-internal-auth"), secrets: authtest.NewSecrets(t), material: authtest.Material{}}
	s.secret("admin token", s.broker.AdminToken)
	s.secret("client key", s.broker.ClientKeyPEM)
	s.secret("other client key", s.broker.OtherClientKeyPEM)
	reader := s.broker.Client(t)

	t.Run("token over TLS", func(t *testing.T) {
		arn := s.secrets.Create(t, "token", s.tokenSecret(s.secret("fn token", s.broker.Token(t, "fn", 0))))
		f := s.newFunction(t, arn, fnOptions{})
		for i := range 2 {
			resp, sum := f.invoke(t, 5, 20*time.Second)
			f.delivered(t, resp, sum)
			if want := 1 - i; sum.ProducersCreated != want {
				t.Errorf("invocation %d created %d producers, want %d (warm pool)", i, sum.ProducersCreated, want)
			}
		}
		if n := f.secrets.fetches.Load(); n != 1 {
			t.Errorf("secret fetched %d times, want once per execution environment", n)
		}
		msgs := pulsartest.ReadAll(t, reader, f.topic, 30*time.Second)
		if len(msgs) != 10 || string(msgs[0].Payload()) != "auth-payload" {
			t.Errorf("read %d messages back, want 10 with the payload", len(msgs))
		}
	})

	t.Run("secret problems", func(t *testing.T) {
		tok := s.secret("fn token", s.broker.Token(t, "fn", 0))
		certPEM, keyPEM := s.broker.ClientCertPEM, s.broker.ClientKeyPEM
		clientSecret := s.secret("client secret", "cs-0123456789abcdef")
		for _, tc := range []struct {
			name    string
			value   string // "" = the secret does not exist
			problem string
		}{
			{"not found", "", "cannot be read"},
			{"malformed JSON", `{"type":"token","token":"` + tok + `"`, "is not valid JSON"},
			{"unknown type", authtest.JSON(map[string]string{"type": "basic", "token": tok}), `field "type" is "basic"`},
			{"token missing", authtest.JSON(map[string]string{"type": "token", "caPem": s.broker.CAPEM}), `needs the field "token"`},
			{"key missing", authtest.JSON(map[string]string{"type": "tls", "certPem": certPEM}), `needs the fields "keyPem"`},
			{"cert and key mismatch", authtest.JSON(map[string]string{"type": "tls", "certPem": s.broker.OtherClientCertPEM, "keyPem": keyPEM}), "do not form"},
			{"oauth2 audience missing", authtest.JSON(map[string]string{"type": "oauth2", "issuerUrl": "http://127.0.0.1:1",
				"privateKey": `{"client_id":"fn","client_secret":"` + clientSecret + `"}`}), `needs the fields "audience"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := "kinesis-pulsar-test/never-created-" + strings.ReplaceAll(tc.name, " ", "-")
				if tc.value != "" {
					id = s.secrets.Create(t, "problem", tc.value)
				}
				f := s.newFunction(t, id, fnOptions{})
				resp, sum := f.invoke(t, 3, 5*time.Second)
				cause := f.failed(t, resp, sum)
				var aerr *auth.Error
				if !errors.As(cause, &aerr) || aerr.SecretID != id || !strings.Contains(aerr.Problem, tc.problem) {
					t.Fatalf("cause %q; want an auth.Error naming the secret and %q", s.redact(cause.Error()), tc.problem)
				}
				if tc.value == "" {
					var notFound *smtypes.ResourceNotFoundException
					if !errors.As(cause, &notFound) {
						t.Errorf("cause %q, want Secrets Manager's ResourceNotFoundException", s.redact(cause.Error()))
					}
				}
				if sum.Duration > 2*time.Second {
					t.Errorf("a secret that cannot work took %v to fail", sum.Duration)
				}
			})
		}
	})

	t.Run("access denied", func(t *testing.T) {
		tok := s.secret("fn token", s.broker.Token(t, "fn", 0))
		denied := authtest.StartDeniedSecret(t, s.tokenSecret(tok))
		f := s.newFunction(t, denied.ARN, fnOptions{client: denied.Client()})
		resp, sum := f.invoke(t, 3, 5*time.Second)
		cause := f.failed(t, resp, sum)
		var aerr *auth.Error
		// moto (5.2.5) answers an IAM denial with an XML body even for JSON services like Secrets
		// Manager, so the SDK sees the status but not the code AccessDeniedException that AWS sends.
		var httpErr *smithyhttp.ResponseError
		if !errors.As(cause, &aerr) || aerr.SecretID != denied.ARN || aerr.Problem != "cannot be read" ||
			!errors.As(cause, &httpErr) || httpErr.HTTPStatusCode() != http.StatusForbidden {
			t.Fatalf("cause %q; want an auth.Error naming the secret, unreadable, HTTP 403", s.redact(cause.Error()))
		}
		if sum.Duration > 2*time.Second {
			t.Errorf("an unreadable secret took %v to fail", sum.Duration)
		}
	})

	t.Run("refused credentials", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			token func(t *testing.T) string
		}{
			{"foreign key", func(t *testing.T) string { return s.broker.ForeignToken(t, "fn") }},
			{"expired", func(t *testing.T) string {
				tok := s.broker.Token(t, "fn", time.Second)
				time.Sleep(1500 * time.Millisecond)
				return tok
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				arn := s.secrets.Create(t, "refused", s.tokenSecret(s.secret("refused token", tc.token(t))))
				f := s.newFunction(t, arn, fnOptions{})
				const timeout = 3 * time.Second
				resp, sum := f.invoke(t, 3, timeout)
				f.failed(t, resp, sum)
				if !f.logged(`"level":"WARN"`, "do not work", arn, "is refused by the broker") {
					t.Error("no log line says that the broker refused the credentials of the secret")
				}
				if err := f.creds.Rejected(); err == nil || !strings.Contains(err.Error(), arn) {
					t.Errorf("Rejected() = %v, want an error naming the secret", err)
				}
			})
		}
	})

	t.Run("mTLS", func(t *testing.T) {
		for _, tc := range []struct {
			name, certPEM, keyPEM string
			ok                    bool
		}{
			{"client certificate of the broker's CA", s.broker.ClientCertPEM, s.broker.ClientKeyPEM, true},
			{"client certificate of another CA", s.broker.OtherClientCertPEM, s.broker.OtherClientKeyPEM, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// No token: only the broker's TLS provider can have authenticated the client.
				arn := s.secrets.Create(t, "tls", authtest.JSON(map[string]string{"type": "tls",
					"certPem": tc.certPEM, "keyPem": tc.keyPEM, "caPem": s.broker.CAPEM}))
				f := s.newFunction(t, arn, fnOptions{})
				if !tc.ok {
					resp, sum := f.invoke(t, 3, 3*time.Second)
					f.failed(t, resp, sum)
					return
				}
				resp, sum := f.invoke(t, 3, 20*time.Second)
				f.delivered(t, resp, sum)
				if msgs := pulsartest.ReadAll(t, reader, f.topic, 30*time.Second); len(msgs) != 3 {
					t.Errorf("read %d messages back, want 3", len(msgs))
				}
			})
		}
	})

	t.Run("host names", func(t *testing.T) {
		// From now on the broker presents a certificate of its own CA, for other names than 127.0.0.1.
		s.broker.PresentCertificate(t, authtest.WrongSANCertificate)
		tok := s.secret("fn token", s.broker.Token(t, "fn", 0))
		withCA := func(ca string) string {
			return authtest.JSON(map[string]string{"type": "token", "token": tok, "caPem": ca})
		}
		for _, tc := range []struct {
			name   string
			secret string
			o      fnOptions
			fails  string // "" = delivered; else what the client logged
		}{
			{"checked by default", withCA(s.broker.CAPEM), fnOptions{},
				"x509: certificate is valid for 192.0.2.1, not 127.0.0.1"},
			{"not checked, chain verified", withCA(s.broker.CAPEM), fnOptions{noHostnameCheck: true}, ""},
			{"not checked, unknown CA", withCA(s.broker.OtherCAPEM), fnOptions{noHostnameCheck: true},
				"x509: certificate signed by unknown authority"},
			{"insecure, unknown CA", withCA(s.broker.OtherCAPEM), fnOptions{producer: producer.Options{TLSAllowInsecure: true}}, ""},
			{"insecure, bare token without CA", tok, fnOptions{producer: producer.Options{TLSAllowInsecure: true}}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := s.newFunction(t, s.secrets.Create(t, "hostname", tc.secret), tc.o)
				if tc.fails != "" {
					resp, sum := f.invoke(t, 3, 3*time.Second)
					f.failed(t, resp, sum)
					if !f.logged(tc.fails) {
						t.Errorf("no log line says %q", tc.fails)
					}
					return
				}
				resp, sum := f.invoke(t, 3, 20*time.Second)
				f.delivered(t, resp, sum)
			})
		}
	})

	t.Run("oauth2", func(t *testing.T) {
		clientSecret := s.secret("oauth2 client secret", "cs-"+strings.Repeat("7f3a", 8))
		issuer := authtest.StartIssuer(t, s.broker.SigningKey(t), "fn-oauth2", clientSecret, "urn:kinesis-pulsar:test")
		secretFor := func(clientSecret string) string {
			return authtest.JSON(map[string]string{"type": "oauth2", "issuerUrl": issuer.URL, "audience": issuer.Audience,
				"privateKey": authtest.JSON(map[string]string{"client_id": issuer.ClientID, "client_secret": clientSecret}),
				"caPem":      s.broker.CAPEM})
		}

		t.Run("client credentials", func(t *testing.T) {
			f := s.newFunction(t, s.secrets.Create(t, "oauth2", secretFor(clientSecret)), fnOptions{})
			for range 2 {
				resp, sum := f.invoke(t, 3, 20*time.Second)
				f.delivered(t, resp, sum)
			}
			// The access token is cached until it is about to expire.
			if issuer.Granted() != 1 {
				t.Errorf("issuer granted %d tokens for two invocations, want 1", issuer.Granted())
			}
			if msgs := pulsartest.ReadAll(t, reader, f.topic, 30*time.Second); len(msgs) != 6 {
				t.Errorf("read %d messages back, want 6", len(msgs))
			}
		})

		t.Run("wrong client secret", func(t *testing.T) {
			wrong := s.secret("wrong oauth2 client secret", "cs-"+strings.Repeat("0bad", 8))
			granted := issuer.Granted()
			arn := s.secrets.Create(t, "oauth2", secretFor(wrong))
			f := s.newFunction(t, arn, fnOptions{})
			resp, sum := f.invoke(t, 3, 3*time.Second)
			f.failed(t, resp, sum)
			if issuer.Granted() != granted || issuer.Requests() == 0 {
				t.Errorf("issuer granted %d new tokens to a wrong client secret", issuer.Granted()-granted)
			}
			if !f.logged("do not work", arn, "gives the client no credentials", "invalid_client") {
				t.Error("no log line names the secret and says that the issuer refused the client")
			}
		})

		// The client credentials are rotated in the secret while an invocation's producer creation keeps
		// failing on the old ones (the issuer refuses them). The OAuth2 provider itself must rebuild from
		// the new value: the same invocation delivers, on the one client the pool built (the relay's
		// rebuild after an invocation without receipts never runs).
		t.Run("client secret rotated", func(t *testing.T) {
			wrong := s.secret("wrong oauth2 client secret", "cs-"+strings.Repeat("0bad", 8))
			arn := s.secrets.Create(t, "oauth2", secretFor(wrong))
			// The operation timeout outlasts the provider's refetch interval (5 s) after the rotation, so
			// producer creation does not give up (and the pool rebuild) before the provider recovers.
			f := s.newFunction(t, arn, fnOptions{producer: producer.Options{OperationTimeout: 15 * time.Second}})
			resp, sum, rotatedAt := f.invokeRotating(t, arn, secretFor(clientSecret), 25*time.Second)
			f.delivered(t, resp, sum)
			f.sameClient(t)
			t.Logf("delivered %v after the rotation, in the invocation that started before it (%d fetches)",
				time.Since(rotatedAt).Round(time.Millisecond), f.secrets.fetches.Load())
		})
	})

	t.Run("rotation", func(t *testing.T) {
		// A token with an expiry is rotated in the secret before it expires: the broker, which checks
		// every second, challenges the connection when the token expires, and the client answers with
		// the rotated token. No invocation may fail.
		t.Run("before expiry", func(t *testing.T) {
			old := s.secret("expiring token", s.broker.Token(t, "fn", 10*time.Second))
			arn := s.secrets.Create(t, "rotation", s.tokenSecret(old))
			f := s.newFunction(t, arn, fnOptions{})
			resp, sum := f.invoke(t, 3, 10*time.Second)
			f.delivered(t, resp, sum)
			s.secrets.Put(t, arn, s.tokenSecret(s.secret("rotated token", s.broker.Token(t, "fn", 0))))

			var invocations, failures int
			var slowest time.Duration
			for time.Now().Before(expiry(t, old).Add(4 * time.Second)) {
				resp, sum := f.invoke(t, 3, 10*time.Second)
				invocations++
				if len(resp.BatchItemFailures) > 0 {
					failures++
				}
				slowest = max(slowest, sum.Duration)
				time.Sleep(time.Second)
			}
			t.Logf("%d invocations from the rotation until 4 s after the old token expired: %d failed, slowest %v, %d fetches",
				invocations, failures, slowest, f.secrets.fetches.Load())
			if failures > 0 {
				t.Errorf("%d of %d invocations failed across the rotation", failures, invocations)
			}
			if f.secrets.fetches.Load() < 2 {
				t.Error("the secret was never fetched again, yet the old token expired")
			}
			f.sameClient(t) // the token supplier answered the broker's challenge
		})

		// The token expired before the secret was rotated: the broker dropped the connection and
		// refuses the old token. The secret is rotated while an invocation waits for its receipts;
		// that same invocation delivers.
		t.Run("after expiry", func(t *testing.T) {
			old := s.secret("expiring token", s.broker.Token(t, "fn", 6*time.Second))
			arn := s.secrets.Create(t, "rotation", s.tokenSecret(old))
			f := s.newFunction(t, arn, fnOptions{})
			resp, sum := f.invoke(t, 3, 10*time.Second)
			f.delivered(t, resp, sum)
			time.Sleep(time.Until(expiry(t, old).Add(2 * time.Second)))

			rotated := s.secret("rotated token", s.broker.Token(t, "fn", 0))
			started := time.Now()
			resp, sum, rotatedAt := f.invokeRotating(t, arn, s.tokenSecret(rotated), 20*time.Second)
			f.delivered(t, resp, sum)
			f.sameClient(t) // the client's reconnects took the rotated token from the supplier
			t.Logf("invocation started 2 s after the old token expired; secret rotated 1 s into it; delivered %v after the rotation (invocation took %v)",
				started.Add(sum.Duration).Sub(rotatedAt).Round(time.Millisecond), sum.Duration.Round(time.Millisecond))
		})

		// A token without expiry is refused by the broker (its key was rotated, or the token revoked or
		// simply wrong), and the secret is updated while an invocation's producer creation keeps failing.
		// The token supplier must fetch the secret again by itself: the same invocation delivers, on the
		// one client the pool built.
		t.Run("refused token replaced by the token supplier", func(t *testing.T) {
			arn := s.secrets.Create(t, "rotation", s.tokenSecret(s.secret("refused token", s.broker.ForeignToken(t, "fn"))))
			// As above: producer creation outlasts the supplier's refetch interval after the rotation.
			f := s.newFunction(t, arn, fnOptions{producer: producer.Options{OperationTimeout: 15 * time.Second}})
			rotated := s.tokenSecret(s.secret("rotated token", s.broker.Token(t, "fn", 0)))
			resp, sum, rotatedAt := f.invokeRotating(t, arn, rotated, 25*time.Second)
			f.delivered(t, resp, sum)
			f.sameClient(t)
			if !f.logged("do not work", arn, "is refused by the broker") {
				t.Error("the refused token was never noticed; the test did not exercise the supplier's refetch")
			}
			t.Logf("delivered %v after the rotation, in the invocation that started before it (%d fetches)",
				time.Since(rotatedAt).Round(time.Millisecond), f.secrets.fetches.Load())
		})

		// A client certificate the broker refuses is replaced in the secret after an invocation that got
		// no receipt. A certificate is fixed in the client's TLS configuration, so nothing but a new
		// client can use the new one: the relay must have the pool rebuild it (and fetch the secret),
		// and the very next invocation delivers.
		t.Run("refused certificate replaced by the relay rebuilding the client", func(t *testing.T) {
			tlsSecret := func(cert, key string) string {
				return authtest.JSON(map[string]string{"type": "tls", "certPem": cert, "keyPem": key, "caPem": s.broker.CAPEM})
			}
			arn := s.secrets.Create(t, "rotation", tlsSecret(s.broker.OtherClientCertPEM, s.broker.OtherClientKeyPEM))
			f := s.newFunction(t, arn, fnOptions{})
			resp, sum := f.invoke(t, 3, 3*time.Second)
			f.failed(t, resp, sum)
			if !f.logged("no message confirmed: replacing the Pulsar client") {
				t.Fatal("the relay did not replace the client after an invocation without receipts")
			}
			s.secrets.Put(t, arn, tlsSecret(s.broker.ClientCertPEM, s.broker.ClientKeyPEM))
			resp, sum = f.invoke(t, 3, 20*time.Second)
			f.delivered(t, resp, sum)
			if n := f.counted.clients.Load(); n != 2 {
				t.Errorf("the pool built %d clients, want 2: the one refused, and the one the relay asked for", n)
			}
			if n := f.secrets.fetches.Load(); n != 2 {
				t.Errorf("the secret was fetched %d times, want 2 (once per client)", n)
			}
		})
	})
}

// expiry reads a JWT's exp claim.
func expiry(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal("token payload is not base64url")
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		t.Fatal("token has no exp claim")
	}
	return time.Unix(claims.Exp, 0)
}
