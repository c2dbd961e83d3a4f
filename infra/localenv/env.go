// Package localenv gives tests the endpoints of the local stack (infra/local/stack.sh: Pulsar standalone,
// DynamoDB Local, moto) and starts extra Pulsar brokers for tests that need their own (auth, small
// limits, crash and restart).
//
// The stack writes .cache/run/env; `make test` exports it into the environment of `go test`, which is
// where Load reads it from. Tests against servers call Require, which fails the test (never skips) when
// the stack is missing.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Env holds the variables of .cache/run/env.
type Env struct {
	PulsarServiceURL    string // PULSAR_SERVICE_URL, e.g. pulsar://127.0.0.1:6650
	PulsarAdminURL      string // PULSAR_ADMIN_URL, e.g. http://127.0.0.1:8080
	AWSEndpointURL      string // AWS_ENDPOINT_URL: moto (Secrets Manager, SQS, Kinesis)
	DynamoDBEndpointURL string // AWS_ENDPOINT_URL_DYNAMODB: DynamoDB Local
	AWSRegion           string // AWS_REGION
	AWSAccessKeyID      string // AWS_ACCESS_KEY_ID
	AWSSecretAccessKey  string // AWS_SECRET_ACCESS_KEY
	PulsarHome          string // PULSAR_HOME: the unpacked Pulsar distribution (bin/, conf/, lib/)
	Venv                string // KP_VENV: the Python venv with moto, sam, cfn-lint, aws_kinesis_agg
}

// variable ties an environment variable to its field and to the server it names.
type variable struct {
	name   string
	server string // for endpoints: what must be reachable there
	field  func(*Env) *string
}

var variables = []variable{
	{"PULSAR_SERVICE_URL", "Pulsar broker", func(e *Env) *string { return &e.PulsarServiceURL }},
	{"PULSAR_ADMIN_URL", "Pulsar admin API", func(e *Env) *string { return &e.PulsarAdminURL }},
	{"AWS_ENDPOINT_URL", "moto", func(e *Env) *string { return &e.AWSEndpointURL }},
	{"AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB Local", func(e *Env) *string { return &e.DynamoDBEndpointURL }},
	{"AWS_REGION", "", func(e *Env) *string { return &e.AWSRegion }},
	{"AWS_ACCESS_KEY_ID", "", func(e *Env) *string { return &e.AWSAccessKeyID }},
	{"AWS_SECRET_ACCESS_KEY", "", func(e *Env) *string { return &e.AWSSecretAccessKey }},
	{"PULSAR_HOME", "", func(e *Env) *string { return &e.PulsarHome }},
	{"KP_VENV", "", func(e *Env) *string { return &e.Venv }},
}

const hint = "run `make local-up` and export .cache/run/env (`set -a; . .cache/run/env; set +a`), or use `make test`, which does both"

// Load reads the local stack's variables from the process environment. A missing variable is an error;
// all missing ones are named at once.
func Load() (Env, error) {
	var env Env
	var missing []string
	for _, v := range variables {
		value := strings.TrimSpace(os.Getenv(v.name))
		if value == "" {
			missing = append(missing, v.name)
			continue
		}
		*v.field(&env) = value
	}
	if len(missing) > 0 {
		return Env{}, fmt.Errorf("local stack environment incomplete: %s not set; %s", strings.Join(missing, ", "), hint)
	}
	return env, nil
}

// Require loads the environment and checks that every server of the stack accepts connections. It fails
// the test with a message naming the variable or the server when not; it never skips.
func Require(t testing.TB) Env {
	t.Helper()
	env, err := Load()
	if err != nil {
		t.Fatalf("localenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.Reachable(ctx); err != nil {
		t.Fatalf("localenv: %v", err)
	}
	return env
}

// Reachable dials every endpoint of the environment (in parallel) and reports all that do not answer.
func (e Env) Reachable(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, v := range variables {
		if v.server == "" {
			continue
		}
		raw := *v.field(&e)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := dial(ctx, raw); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s at %s=%s unreachable: %w; %s", v.server, v.name, raw, err, hint))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dial opens and closes a TCP connection to the host and port of an endpoint URL.
func dial(ctx context.Context, raw string) error {
	addr, err := hostPort(raw)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn.Close()
}

// hostPort returns host:port of an endpoint URL, with the scheme's default port when none is given.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse endpoint URL: %w", err)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("endpoint URL %q has no host", raw)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	defaults := map[string]string{"http": "80", "https": "443", "pulsar": "6650", "pulsar+ssl": "6651"}
	port, ok := defaults[u.Scheme]
	if !ok {
		return "", fmt.Errorf("endpoint URL %q has no port and an unknown scheme", raw)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// AWSConfig returns an aws-sdk-go-v2 configuration for the stack: its region and static credentials,
// AWS_ENDPOINT_URL (moto) as the base endpoint and AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local) for DynamoDB
// clients. It is built directly rather than by config.LoadDefaultConfig, so nothing of the developer's
// ~/.aws files or AWS_PROFILE can break or redirect tests.
//
// How a client picks its endpoint (aws-sdk-go-v2 service packages, e.g. dynamodb v1.73.1
// resolveBaseEndpoint): the base endpoint, unless the process has AWS_ENDPOINT_URL_<SERVICE> set or lacks
// AWS_ENDPOINT_URL, in which case the per-service endpoint from the config sources wins. With the env file
// exported (as Load requires) both are set, so DynamoDB clients use DynamoDBEndpointURL.
func (e Env) AWSConfig(ctx context.Context) (aws.Config, error) {
	if e.AWSRegion == "" || e.AWSEndpointURL == "" || e.DynamoDBEndpointURL == "" {
		return aws.Config{}, fmt.Errorf("AWS config for the local stack: region and endpoints must be set (use Load); %s", hint)
	}
	creds := credentials.NewStaticCredentialsProvider(e.AWSAccessKeyID, e.AWSSecretAccessKey, "")
	if _, err := creds.Retrieve(ctx); err != nil {
		return aws.Config{}, fmt.Errorf("AWS config for the local stack: %w", err)
	}
	return aws.Config{
		Region:        e.AWSRegion,
		Credentials:   aws.NewCredentialsCache(creds),
		BaseEndpoint:  aws.String(e.AWSEndpointURL),
		ConfigSources: []any{serviceEndpoints{"DynamoDB": e.DynamoDBEndpointURL}},
	}, nil
}

// serviceEndpoints answers the SDK's per-service endpoint lookups (keyed by the service's SDK ID), as
// AWS_ENDPOINT_URL_<SERVICE> does for config.LoadDefaultConfig.
type serviceEndpoints map[string]string

func (s serviceEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	v, ok := s[sdkID]
	return v, ok, nil
}

// AWSConfig loads the environment and returns Env.AWSConfig.
func AWSConfig(ctx context.Context) (aws.Config, error) {
	env, err := Load()
	if err != nil {
		return aws.Config{}, err
	}
	return env.AWSConfig(ctx)
}

// Admin returns a client for the admin API of the stack's broker.
func (e Env) Admin() *Admin { return NewAdmin(e.PulsarAdminURL) }
