//go:build integration

package sam

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// TestTemplateDeploysInMoto translates template.yaml with the SAM translator and creates it in moto's
// CloudFormation, one stack per parameter combination (deploycheck.py lists them: enhanced fan-out on
// and off, stream given or created, secret none, created or given by ARN, audit on and off, VPC, KMS
// keys; and samconfig.toml's environments), then checks what moto kept: the function's configuration and environment, the role's policy,
// the event source mapping's settings and destination, the alarms' dimensions and actions, the
// dashboard and the outputs. The types moto's CloudFormation lacks (Lambda alias, stream consumer,
// secret, alarms) are created through their own APIs.
//
// What an emulator cannot prove (deploycheck.py's EMULATOR_LIMITS, logged at the end; docs/deploy.md):
// that Lambda accepts the mapping update when StartingPosition changes (moto enforces no mapping
// uniqueness and does not replace resources as CloudFormation does), a mapping on an enhanced fan-out
// consumer (moto's Lambda takes stream ARNs only: resolved and checked, not created), that IAM and
// KMS allow exactly what the function needs, how the alarms evaluate, parameter constraints and Rules,
// and anything at run time.
func TestTemplateDeploysInMoto(t *testing.T) {
	env := localenv.Require(t)
	python := filepath.Join(env.Venv, "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the project venv (SAM translator, boto3) is missing: %v; run infra/local/stack.sh install", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// Unique names: moto is shared with every other test of the run.
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	cmd := exec.CommandContext(ctx, python, "deploycheck.py", templatePath, run)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+env.AWSEndpointURL, "AWS_REGION="+env.AWSRegion)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("deploycheck.py: %v\nstderr:\n%s", err, stderr.String())
	}

	var combinations int
	var limits []string
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Name       string            `json:"name"`
			Parameters map[string]string `json:"parameters"`
			Errors     []string          `json:"errors"`
			Facts      []string          `json:"facts"`
			Limits     []string          `json:"limits"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("deploycheck.py printed %q: %v", sc.Text(), err)
		}
		if line.Limits != nil {
			limits = line.Limits
			continue
		}
		combinations++
		t.Run(line.Name, func(t *testing.T) {
			t.Logf("parameters (besides the required ones): %v", line.Parameters)
			for _, f := range line.Facts {
				t.Log(f)
			}
			for _, e := range line.Errors {
				t.Error(e)
			}
		})
	}
	if combinations < 6 || limits == nil {
		t.Fatalf("deploycheck.py reported %d combinations and no limits; stderr:\n%s", combinations, stderr.String())
	}
	for _, l := range limits {
		t.Logf("not proven by the emulator: %s", l)
	}
}
