//go:build integration && unix

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

var sinkBootstrap, sourceBootstrap string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "roundtrip-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, b := range []struct {
		pkg string
		out *string
	}{{"../../../functions/pulsar-to-kinesis", &sinkBootstrap}, {"../../../functions/kinesis-to-pulsar", &sourceBootstrap}} {
		sub, _ := os.MkdirTemp(dir, "fn-")
		if *b.out, err = runtimeapi.Build(context.Background(), b.pkg, sub); err != nil {
			fmt.Fprintln(os.Stderr, err)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func TestRoundTrip(t *testing.T) {
	localenv.Require(t)
	for _, agg := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregation=%v", agg), func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(context.Background(), config{sinkBootstrap: sinkBootstrap, sourceBootstrap: sourceBootstrap,
				messages: 40, keys: 4, shards: 2, aggregation: agg, timeout: 60 * time.Second, wait: 30 * time.Second}, &out, &errOut)
			if err != nil {
				t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), "40 messages came back byte for byte") {
				t.Errorf("output:\n%s", out.String())
			}
		})
	}
}
