package authtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// Secrets creates secrets in the local stack's Secrets Manager (moto) and deletes them when the test
// ends.
type Secrets struct {
	Client *secretsmanager.Client
}

// NewSecrets returns a Secrets Manager client for the local stack.
func NewSecrets(t testing.TB) *Secrets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := localenv.Require(t).AWSConfig(ctx)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return &Secrets{Client: secretsmanager.NewFromConfig(cfg)}
}

// Create stores value under a fresh name starting with prefix and returns the secret's ARN.
func (s *Secrets) Create(t testing.TB, prefix, value string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "kinesis-pulsar-test/" + prefix + "-" + hex.EncodeToString(suffix)
	out, err := s.Client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("authtest: create secret %s: %v", name, err)
	}
	arn := aws.ToString(out.ARN)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.Client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
			SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true),
		}); err != nil {
			t.Errorf("authtest: delete secret %s: %v", name, err)
		}
	})
	return arn
}

// Put stores a new current value of the secret, as a rotation does.
func (s *Secrets) Put(t testing.TB, arn, value string) {
	t.Helper()
	if err := s.PutValue(arn, value); err != nil {
		t.Fatalf("authtest: %v", err)
	}
}

// PutValue is Put for goroutines other than the test's.
func (s *Secrets) PutValue(arn, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(value)}); err != nil {
		return fmt.Errorf("put secret value: %w", err)
	}
	return nil
}

// JSON encodes a secret value of string fields.
func JSON(fields map[string]string) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	return string(b)
}
