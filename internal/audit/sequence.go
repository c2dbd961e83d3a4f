package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// The state of relay.Sequence lives on the shard's checkpoint item, beside the checkpoint itself:
//
//	sk "checkpoint": ... epoch, nextSequenceId, checkpointSequenceId, resumeSequenceNumber,
//	                 resumeSequenceId, version

// SequenceDB is the part of the DynamoDB client Sequences uses.
type SequenceDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// ErrSequenceConflict means another invocation wrote the shard's sequence state since it was read:
// two invocations work on one shard at once (ParallelizationFactor above 1, or an overlap), and the
// later writer must not publish.
var ErrSequenceConflict = errors.New("the shard's sequence state changed since it was read")

// Sequences reads and writes the sequence state of shards. It is safe for concurrent use.
type Sequences struct {
	db      SequenceDB
	table   string
	timeout time.Duration
}

// NewSequences returns the sequence store of the audit table; timeout bounds each call (default
// DefaultTimeout).
func NewSequences(db SequenceDB, table string, timeout time.Duration) *Sequences {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Sequences{db: db, table: table, timeout: timeout}
}

// Read returns the shard's state with a strongly consistent read. A shard never written in this mode
// gets a new epoch, ids from 0 and version 0.
func (s *Sequences) Read(ctx context.Context, streamARN, shardID string) (relay.Sequence, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pk := Key(streamARN, shardID)
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(CheckpointSK)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return relay.Sequence{}, fmt.Errorf("reading the sequence state of %s in table %s: %w", pk, s.table, err)
	}
	q := relay.Sequence{CheckpointID: -1, ResumeID: -1}
	item := out.Item
	q.CheckpointSequenceNumber = getS(item, "sequenceNumber")
	q.Epoch = getS(item, "epoch")
	q.ResumeSequenceNumber = getS(item, "resumeSequenceNumber")
	for name, dst := range map[string]*int64{"nextSequenceId": &q.NextID, "checkpointSequenceId": &q.CheckpointID,
		"resumeSequenceId": &q.ResumeID, "version": &q.Version} {
		if v, ok := item[name].(*types.AttributeValueMemberN); ok {
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				return relay.Sequence{}, fmt.Errorf("sequence state of %s: %s %q is not an integer", pk, name, v.Value)
			}
			*dst = n
		}
	}
	if q.Epoch == "" {
		// The checkpoint may exist from the at-least-once mode; the ids start afresh under a new name.
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return relay.Sequence{}, fmt.Errorf("drawing an epoch: %w", err)
		}
		q.Epoch, q.NextID, q.Version = hex.EncodeToString(b[:]), 0, 0
	}
	return q, nil
}

// Write stores next if the shard's state is still prev (same version), and bumps the version; it
// returns ErrSequenceConflict otherwise, or when next's checkpoint (sequenceNumber, sequenceKey) is
// not above the stored one: it moves only forwards. A next checkpoint equal to prev's is left alone.
func (s *Sequences) Write(ctx context.Context, streamARN, shardID, requestID string, now time.Time, prev, next relay.Sequence) (relay.Sequence, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pk := Key(streamARN, shardID)
	next.Version = prev.Version + 1
	set := []string{"epoch = :epoch", "nextSequenceId = :next", "version = :version", "updatedAt = :now", "requestId = :req"}
	var remove []string
	values := map[string]types.AttributeValue{
		":epoch": str(next.Epoch), ":next": num(next.NextID), ":version": num(next.Version),
		":now": str(iso(now)), ":req": str(orNone(requestID)),
	}
	if next.ResumeSequenceNumber != "" {
		set = append(set, "resumeSequenceNumber = :resume", "resumeSequenceId = :resumeId")
		values[":resume"], values[":resumeId"] = str(next.ResumeSequenceNumber), num(next.ResumeID)
	} else {
		remove = append(remove, "resumeSequenceNumber", "resumeSequenceId")
		next.ResumeID = -1
	}
	if next.CheckpointSequenceNumber != "" && next.CheckpointSequenceNumber != prev.CheckpointSequenceNumber {
		key, err := SequenceKey(next.CheckpointSequenceNumber)
		if err != nil {
			return relay.Sequence{}, fmt.Errorf("sequence state of %s: %w", pk, err)
		}
		set = append(set, "sequenceNumber = :seq", "sequenceKey = :key", "checkpointSequenceId = :cid")
		values[":seq"], values[":key"], values[":cid"] = str(next.CheckpointSequenceNumber), str(key), num(next.CheckpointID)
	} else {
		next.CheckpointSequenceNumber, next.CheckpointID = prev.CheckpointSequenceNumber, prev.CheckpointID
	}
	cond := "version = :prev"
	if prev.Version == 0 {
		cond = "attribute_not_exists(version)"
	} else {
		values[":prev"] = num(prev.Version)
	}
	if _, ok := values[":key"]; ok {
		cond += " AND (attribute_not_exists(sequenceKey) OR sequenceKey < :key)"
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(CheckpointSK)},
		UpdateExpression:          &expr,
		ConditionExpression:       &cond,
		ExpressionAttributeValues: values,
	})
	var stale *types.ConditionalCheckFailedException
	if errors.As(err, &stale) {
		return relay.Sequence{}, fmt.Errorf("sequence state of %s: %w", pk, ErrSequenceConflict)
	}
	if err != nil {
		return relay.Sequence{}, fmt.Errorf("writing the sequence state of %s in table %s: %w", pk, s.table, err)
	}
	return next, nil
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
