package authtest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// DeniedSecret is a secret that exists but that the credentials may not read: a moto server of its
// own with IAM enforced (INITIAL_NO_AUTH_ACTION_COUNT), which the shared one must not have, and a user
// whose policy allows secretsmanager:DescribeSecret only.
type DeniedSecret struct {
	Endpoint        string // http://127.0.0.1:<port>
	ARN             string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
}

// unauthenticatedActions are the set-up calls moto accepts before it enforces IAM: CreateUser,
// CreateAccessKey, PutUserPolicy, CreateSecret.
const unauthenticatedActions = 4

// StartDeniedSecret starts the moto server and creates the user and the secret; t.Cleanup stops it.
func StartDeniedSecret(t testing.TB, value string) *DeniedSecret {
	t.Helper()
	env := localenv.Require(t)
	port := localenv.FreePort(t)
	d := &DeniedSecret{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Region: env.AWSRegion}
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "moto.log"))
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	cmd := exec.Command(filepath.Join(env.Venv, "bin", "python"), filepath.Join(env.Venv, "bin", "moto_server"),
		"-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", unauthenticatedActions))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("authtest: start moto: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitHTTP(ctx, d.Endpoint+"/moto-api/data.json"); err != nil {
		t.Fatalf("authtest: moto with IAM at %s: %v (log %s)", d.Endpoint, err, logFile.Name())
	}
	const user = "kinesis-to-pulsar"
	if _, err := d.iam(ctx, "CreateUser", url.Values{"UserName": {user}}); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	body, err := d.iam(ctx, "CreateAccessKey", url.Values{"UserName": {user}})
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	var key struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(body, &key); err != nil || key.ID == "" {
		t.Fatalf("authtest: CreateAccessKey answer not understood: %v", err)
	}
	d.AccessKeyID, d.SecretAccessKey = key.ID, key.Secret
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}]}`
	if _, err := d.iam(ctx, "PutUserPolicy", url.Values{"UserName": {user}, "PolicyName": {"describe-only"}, "PolicyDocument": {policy}}); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	sm := secretsmanager.New(secretsmanager.Options{
		Region: d.Region, BaseEndpoint: aws.String(d.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(env.AWSAccessKeyID, env.AWSSecretAccessKey, ""),
	})
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("kinesis-pulsar-test/denied"), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("authtest: create secret on moto with IAM: %v", err)
	}
	d.ARN = aws.ToString(out.ARN)
	return d
}

// Client returns a Secrets Manager client with the user's credentials.
func (d *DeniedSecret) Client() *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region: d.Region, BaseEndpoint: aws.String(d.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(d.AccessKeyID, d.SecretAccessKey, ""),
	})
}

// iam calls an action of moto's IAM query API. moto reads the service from the credential scope and
// does not check the signature.
func (d *DeniedSecret) iam(ctx context.Context, action string, params url.Values) ([]byte, error) {
	params.Set("Action", action)
	params.Set("Version", "2010-05-08")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint+"/", strings.NewReader(params.Encode()))
	if err != nil {
		return nil, fmt.Errorf("IAM %s: %w", action, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IAM %s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("IAM %s: %w", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("IAM %s: HTTP %d", action, resp.StatusCode)
	}
	return body, nil
}

func waitHTTP(ctx context.Context, u string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w", context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
