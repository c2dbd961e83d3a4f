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
)

// Sequence is a shard's state for PROCESSING_GUARANTEE=effectivelyOnce, kept on its checkpoint item
// beside the checkpoint itself. The Pulsar producer of the shard is named after the stream, the shard
// and Epoch, and gives every message a sequence id the broker deduplicates on.
//
//	sk "checkpoint": ... epoch, nextSequenceId, checkpointSequenceId, resumeSequenceNumber,
//	                 resumeSequenceId, version
type Sequence struct {
	// CheckpointSequenceNumber is the checkpoint: it and every earlier record are in Pulsar. "" none.
	CheckpointSequenceNumber string
	// CheckpointID is the sequence id of the checkpoint record's last message; -1 when unknown.
	CheckpointID int64
	// Epoch is part of the producer name. It is drawn when the item is first written in this mode, so
	// a table (or item) created afresh never reuses the ids of a producer the broker still remembers.
	Epoch string
	// NextID is above every id ever handed out for the shard: fresh ids start here.
	NextID int64
	// ResumeSequenceNumber is the record a retry restarts from with the same ids as the attempt that did
	// not finish: it gets ResumeID, the messages after it consecutive ids. "" when none is pending.
	ResumeSequenceNumber string
	ResumeID             int64
	// Version counts the writes in this mode; every write is conditional on the version it read.
	Version int64
}

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
func (s *Sequences) Read(ctx context.Context, streamARN, shardID string) (Sequence, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pk := Key(streamARN, shardID)
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(CheckpointSK)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Sequence{}, fmt.Errorf("reading the sequence state of %s in table %s: %w", pk, s.table, err)
	}
	q := Sequence{CheckpointID: -1, ResumeID: -1}
	item := out.Item
	q.CheckpointSequenceNumber = getS(item, "sequenceNumber")
	q.Epoch = getS(item, "epoch")
	q.ResumeSequenceNumber = getS(item, "resumeSequenceNumber")
	for name, dst := range map[string]*int64{"nextSequenceId": &q.NextID, "checkpointSequenceId": &q.CheckpointID,
		"resumeSequenceId": &q.ResumeID, "version": &q.Version} {
		if v, ok := item[name].(*types.AttributeValueMemberN); ok {
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				return Sequence{}, fmt.Errorf("sequence state of %s: %s %q is not an integer", pk, name, v.Value)
			}
			*dst = n
		}
	}
	if q.Epoch == "" {
		// The checkpoint may exist from the at-least-once mode; the ids start afresh under a new name.
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Sequence{}, fmt.Errorf("drawing an epoch: %w", err)
		}
		q.Epoch, q.NextID, q.Version = hex.EncodeToString(b[:]), 0, 0
	}
	return q, nil
}

// Write stores next if the shard's state is still prev (same version), and bumps the version; it
// returns ErrSequenceConflict otherwise, or when next's checkpoint (sequenceNumber, sequenceKey) is
// not above the stored one: it moves only forwards. A next checkpoint equal to prev's is left alone.
func (s *Sequences) Write(ctx context.Context, streamARN, shardID, requestID string, now time.Time, prev, next Sequence) (Sequence, error) {
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
			return Sequence{}, fmt.Errorf("sequence state of %s: %w", pk, err)
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
		return Sequence{}, fmt.Errorf("sequence state of %s: %w", pk, ErrSequenceConflict)
	}
	if err != nil {
		return Sequence{}, fmt.Errorf("writing the sequence state of %s in table %s: %w", pk, s.table, err)
	}
	return next, nil
}

// Covers reports whether the checkpoint covers seq: seq is at or below it, so already in Pulsar.
func (q Sequence) Covers(seq string) bool {
	if q.CheckpointSequenceNumber == "" {
		return false
	}
	a, err1 := SequenceKey(seq)
	b, err2 := SequenceKey(q.CheckpointSequenceNumber)
	return err1 == nil && err2 == nil && a <= b
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
