// Command audit reads the audit table of kinesis-pulsar: where every shard of a stream stands, and what
// the last batches of a shard did. It uses the standard AWS configuration (AWS_REGION, AWS_PROFILE,
// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_KINESIS, ...), so it reads a deployed
// table as well as the local stack's (`set -a; . .cache/run/env; set +a`).
//
//	go run ./infra/cmd/audit checkpoints --table T --stream-arn ARN [--scan] [--json]
//	go run ./infra/cmd/audit batches --table T --stream-arn ARN --shard shardId-… [-n 20] [--until TIME] [--json]
//
// Run it without arguments for the full help.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
)

const usage = `usage: go run ./infra/cmd/audit <command> [flags]

Reads the audit table of kinesis-pulsar (AUDIT_TABLE_NAME of the function; the stack's AuditTable).

commands:
  checkpoints --table T --stream-arn ARN [--scan] [--json]
      The checkpoint of every shard of the stream, closed shards included (shard ids from Kinesis
      ListShards): the highest sequence number that, with every earlier record of its batch, is in
      Pulsar; when and by which invocation it was written; the topic and the Pulsar message id of that
      record. A shard without a checkpoint has had no batch with a delivered first record yet.
      --scan finds the checkpoints by scanning the table instead, without Kinesis (when Kinesis is not
      reachable, or the stream is gone); it reads the whole table and knows nothing of shards without
      a checkpoint.

  batches --table T --stream-arn ARN --shard shardId-000000000000 [-n 20] [--until TIME] [--json]
      The last n batches of one shard, newest first, one line per invocation: when it started, how long
      it took, records, messages published and dead-lettered, its outcome, its first and last sequence
      numbers, the record Lambda retries from (FAILED AT) and the request id. With --until, only the
      batches that started at or before TIME (it reads every newer item of the shard on the way).
      TIME: 2026-11-22T14:03:00Z, 2026-11-22T14:03 (UTC), or 14:03 (today, UTC).

  create-table --table T
      Creates the table with the schema template.yaml deploys (pk, sk, TTL on expiresAt), for a local
      stack (DynamoDB Local: AWS_ENDPOINT_URL_DYNAMODB); an existing table is left as it is. On AWS the
      stack creates the table (AuditEnabled=true).

common flags:
  --table T        the table name; default $AUDIT_TABLE_NAME
  --region R       the AWS region; default the configured one (AWS_REGION, profile), else the ARN's
  --json           JSON instead of a table

What happened to the batch at 14:02?
  1. Take the shard from the function's log line for it (shardId), or run "checkpoints" to list the
     stream's shards and go through each.
  2. batches --shard S --until 14:03 -n 10
     lists the invocations that started by 14:03 (UTC, like the log timestamps), newest first.
  3. OUTCOME says what the invocation reported to Lambda: delivered (every record in Pulsar or the
     dead-letter topic), partial or failed (FAILED AT is the record Lambda retried from; everything
     before it is in Pulsar). A retry of the batch is a later line with FIRST = that FAILED AT (or the
     same FIRST when the whole batch failed), with its own request id.
  4. The request id finds the invocation's logs, its summary line and the cause of a failure. CloudWatch
     Logs Insights on the function's log group:
         fields @timestamp, @message | filter requestId = "<REQUEST ID>"
  5. The checkpoint's LAST MESSAGE ID (ledger:entry:partition[:batch index]) is the message of the
     checkpoint record in TOPIC: pulsar-admin topics get-message-by-id TOPIC -l LEDGER -e ENTRY
  No line at that time although records arrived: the audit write failed (metric AuditWriteErrors, log
  line "audit write failed"; the batch was delivered unless AUDIT_REQUIRED=true), or the item expired
  (AUDIT_RETENTION_DAYS, 7 by default).
`

// exitUsage is the exit code for a wrong command line, as flag uses.
const exitUsage = 2

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "audit: %v (run without arguments for help)\n", err)
		os.Exit(exitUsage)
	case err != nil:
		fmt.Fprintln(os.Stderr, "audit:", err)
		os.Exit(1)
	}
}

// options are the flags of both commands.
type options struct {
	table, streamARN, region string
	json                     bool
	// checkpoints
	scan bool
	// batches
	shard     string
	n         int
	until     string
	untilTime time.Time
}

// run executes one command; main only maps its error to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var o options
	fs.StringVar(&o.table, "table", os.Getenv("AUDIT_TABLE_NAME"), "the audit table")
	fs.StringVar(&o.streamARN, "stream-arn", "", "the Kinesis stream ARN")
	fs.StringVar(&o.region, "region", "", "the AWS region")
	fs.BoolVar(&o.json, "json", false, "JSON output")
	switch cmd {
	case "checkpoints":
		fs.BoolVar(&o.scan, "scan", false, "scan the table instead of listing the shards")
	case "create-table":
	case "batches":
		fs.StringVar(&o.shard, "shard", "", "the shard id")
		fs.IntVar(&o.n, "n", 20, "how many batches")
		fs.StringVar(&o.until, "until", "", "only batches that started at or before this time")
	default:
		return fmt.Errorf("%w: unknown command %q; run without arguments for help", errUsage, cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	region, err := checkFlags(cmd, &o, time.Now())
	if err != nil {
		return err
	}

	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	if o.region != "" {
		cfg.Region = o.region
	} else if cfg.Region == "" {
		cfg.Region = region
	}
	db := dynamodb.NewFromConfig(cfg)
	switch cmd {
	case "create-table":
		if err := audit.CreateTable(ctx, db, o.table); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "table %s ready\n", o.table)
		return nil
	case "checkpoints":
		return checkpoints(ctx, cfg, db, o, stdout)
	}
	return batches(ctx, db, o, stdout)
}

// checkFlags validates the flags of cmd and returns the stream ARN's region.
func checkFlags(cmd string, o *options, now time.Time) (string, error) {
	var missing []string
	if o.table == "" {
		missing = append(missing, "--table (or AUDIT_TABLE_NAME)")
	}
	if o.streamARN == "" && cmd != "create-table" {
		missing = append(missing, "--stream-arn")
	}
	if cmd == "batches" && o.shard == "" {
		missing = append(missing, "--shard")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s: missing %s", errUsage, cmd, strings.Join(missing, ", "))
	}
	if cmd == "create-table" {
		return "", nil
	}
	region, err := streamRegion(o.streamARN)
	if err != nil {
		return "", fmt.Errorf("%w: --stream-arn: %v", errUsage, err)
	}
	if cmd == "batches" && o.n <= 0 {
		return "", fmt.Errorf("%w: -n must be positive", errUsage)
	}
	if o.until != "" {
		if o.untilTime, err = parseTime(o.until, now); err != nil {
			return "", fmt.Errorf("%w: --until: %v", errUsage, err)
		}
	}
	return region, nil
}

// streamRegion returns the region of a Kinesis stream ARN, arn:<partition>:kinesis:<region>:<account>:stream/<name>.
func streamRegion(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" || parts[3] == "" || !strings.HasPrefix(parts[5], "stream/") {
		return "", fmt.Errorf("%q is not a Kinesis stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)", arn)
	}
	return parts[3], nil
}

// shardRow is one line of the checkpoints command.
type shardRow struct {
	ShardID       string `json:"shardId"`
	State         string `json:"state,omitempty"` // open or closed; empty with --scan
	ParentShardID string `json:"parentShardId,omitempty"`
	// The checkpoint; all empty when the shard has none.
	SequenceNumber string `json:"sequenceNumber,omitempty"`
	UpdatedAt      string `json:"updatedAt,omitempty"`
	RequestID      string `json:"requestId,omitempty"`
	Topic          string `json:"topic,omitempty"`
	LastMessageID  string `json:"lastMessageId,omitempty"`
}

func checkpoints(ctx context.Context, cfg aws.Config, db *dynamodb.Client, o options, stdout io.Writer) error {
	var rows []shardRow
	if o.scan {
		cps, err := audit.ScanCheckpoints(ctx, db, o.table, o.streamARN)
		if err != nil {
			return err
		}
		for _, cp := range cps {
			rows = append(rows, withCheckpoint(shardRow{ShardID: cp.ShardID}, cp))
		}
	} else {
		shards, err := listShards(ctx, kinesis.NewFromConfig(cfg), o.streamARN)
		if err != nil {
			return err
		}
		ids := make([]string, len(shards))
		for i, s := range shards {
			ids[i] = s.ShardID
		}
		cps, err := audit.Checkpoints(ctx, db, o.table, o.streamARN, ids)
		if err != nil {
			return err
		}
		byShard := map[string]audit.Checkpoint{}
		for _, cp := range cps {
			byShard[cp.ShardID] = cp
		}
		for _, s := range shards {
			if cp, ok := byShard[s.ShardID]; ok {
				s = withCheckpoint(s, cp)
			}
			rows = append(rows, s)
		}
	}
	if o.json {
		return writeJSON(stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(stdout, "no checkpoint of %s in %s\n", o.streamARN, o.table)
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SHARD\tSTATE\tCHECKPOINT SEQUENCE NUMBER\tUPDATED AT\tREQUEST ID\tLAST MESSAGE ID\tTOPIC")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ShardID, dash(r.State), dash(r.SequenceNumber),
			dash(r.UpdatedAt), dash(r.RequestID), dash(r.LastMessageID), dash(r.Topic))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

func withCheckpoint(r shardRow, cp audit.Checkpoint) shardRow {
	r.SequenceNumber, r.UpdatedAt, r.RequestID, r.Topic, r.LastMessageID =
		cp.SequenceNumber, cp.UpdatedAt, cp.RequestID, cp.Topic, cp.LastMessageID
	return r
}

// listShards returns every shard of the stream, closed ones included (ListShards without a filter).
func listShards(ctx context.Context, kc *kinesis.Client, streamARN string) ([]shardRow, error) {
	var out []shardRow
	in := &kinesis.ListShardsInput{StreamARN: aws.String(streamARN)}
	for {
		res, err := kc.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing the shards of %s (use --scan without Kinesis): %w", streamARN, err)
		}
		for _, s := range res.Shards {
			r := shardRow{ShardID: aws.ToString(s.ShardId), State: "open", ParentShardID: aws.ToString(s.ParentShardId)}
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				r.State = "closed"
			}
			out = append(out, r)
		}
		if res.NextToken == nil {
			return out, nil
		}
		// The stream must not be named together with a token.
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// batchRow is one line of the batches command.
type batchRow struct {
	audit.BatchItem
	Outcome string `json:"outcome"`
}

func batches(ctx context.Context, db *dynamodb.Client, o options, stdout io.Writer) error {
	var items []audit.BatchItem
	var err error
	if o.untilTime.IsZero() {
		items, err = audit.RecentBatches(ctx, db, o.table, o.streamARN, o.shard, o.n)
	} else {
		items, err = audit.BatchesUntil(ctx, db, o.table, o.streamARN, o.shard, o.untilTime, o.n)
	}
	if err != nil {
		return err
	}
	rows := make([]batchRow, len(items))
	for i, b := range items {
		rows[i] = batchRow{BatchItem: b, Outcome: outcome(b)}
	}
	if o.json {
		return writeJSON(stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(stdout, "no batch of %s in %s\n", o.shard, o.table)
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED AT\tMS\tRECORDS\tPUBLISHED\tDEAD-LETTERED\tOUTCOME\tFIRST SEQUENCE NUMBER\tLAST SEQUENCE NUMBER\tFAILED AT\tREQUEST ID")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.StartedAt, r.DurationMs, r.Records, r.Published,
			r.DeadLettered, r.Outcome, r.FirstSequenceNumber, r.LastSequenceNumber, dash(r.FailedSequenceNumber), r.RequestID)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

// outcome is what the invocation reported to Lambda, in the words of its summary log line.
func outcome(b audit.BatchItem) string {
	switch b.FailedSequenceNumber {
	case "":
		return "delivered"
	case b.FirstSequenceNumber:
		return "failed"
	default:
		return "partial"
	}
}

// parseTime reads a full RFC 3339 time, or a UTC date and time to the minute or second, or a UTC time
// of day (today's, as of now).
func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			y, m, d := now.UTC().Date()
			return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.UTC), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use 2026-11-22T14:03:00Z, 2026-11-22T14:03 (UTC) or 14:03 (today, UTC)", s)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
