//go:build unix

package main

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/big"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

// kplMaxAggregateBytes is the KPL's default AggregationMaxSize.
const kplMaxAggregateBytes = 51200

// shardRange is a shard's hash key range.
type shardRange struct {
	id         string
	start, end *big.Int
}

// put is one Kinesis record a producer wrote.
type put struct {
	shard, sequence, partitionKey string
	userRecords                   int  // KPL user records inside; 1 for a plain record
	aggregated                    bool // a KPL aggregate
	bytes                         int
}

// kplProducer does what the Kinesis Producer Library does with user records, in one flush: it predicts
// each record's shard from its hash key (the MD5 of the partition key), packs each shard's records in
// order into aggregates of at most 50 KiB (internal/kpl.Aggregate, the KPL's format), and puts every
// aggregate with the first user record's partition key and hash key, so that it lands on the shard
// predicted. A shard's lone record goes out plain, as the KPL sends it. No retries, no rate limiting,
// no timers: records go out when Flush is called.
type kplProducer struct {
	k       *kinesis.Client
	stream  string
	shards  []shardRange
	pending map[string][]kpl.Record
	order   []string // shards in order of first use
}

func newKPLProducer(ctx context.Context, k *kinesis.Client, stream string) (*kplProducer, error) {
	out, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, fmt.Errorf("KPL producer: list shards of %s: %w", stream, err)
	}
	p := &kplProducer{k: k, stream: stream, pending: make(map[string][]kpl.Record)}
	for _, s := range out.Shards {
		if s.HashKeyRange == nil || s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue // closed shards take no records
		}
		start, ok1 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		end, ok2 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("KPL producer: shard %s has an unreadable hash key range", aws.ToString(s.ShardId))
		}
		p.shards = append(p.shards, shardRange{id: aws.ToString(s.ShardId), start: start, end: end})
	}
	if len(p.shards) == 0 {
		return nil, fmt.Errorf("KPL producer: stream %s has no open shard", stream)
	}
	return p, nil
}

// hashKey is Kinesis's hash of a partition key: its MD5 read as an unsigned 128-bit number.
func hashKey(partitionKey string) *big.Int {
	sum := md5.Sum([]byte(partitionKey))
	return new(big.Int).SetBytes(sum[:])
}

func (p *kplProducer) shardFor(h *big.Int) string {
	for _, s := range p.shards {
		if h.Cmp(s.start) >= 0 && h.Cmp(s.end) <= 0 {
			return s.id
		}
	}
	return p.shards[len(p.shards)-1].id
}

// Add queues a user record, like KinesisProducer.addUserRecord.
func (p *kplProducer) Add(partitionKey string, data []byte) {
	id := p.shardFor(hashKey(partitionKey))
	if _, ok := p.pending[id]; !ok {
		p.order = append(p.order, id)
	}
	p.pending[id] = append(p.pending[id], kpl.Record{PartitionKey: partitionKey, Data: data})
}

// Flush aggregates and puts everything queued, like KinesisProducer.flushSync.
func (p *kplProducer) Flush(ctx context.Context) ([]put, error) {
	var entries []types.PutRecordsRequestEntry
	var puts []put
	for _, id := range p.order {
		for _, group := range splitAggregates(p.pending[id]) {
			first := group[0]
			data := first.Data
			if len(group) > 1 {
				var err error
				if data, err = kpl.Aggregate(group); err != nil {
					return nil, fmt.Errorf("KPL producer: %w", err)
				}
			}
			entries = append(entries, types.PutRecordsRequestEntry{
				Data: data, PartitionKey: aws.String(first.PartitionKey),
				ExplicitHashKey: aws.String(hashKey(first.PartitionKey).String()),
			})
			puts = append(puts, put{partitionKey: first.PartitionKey, userRecords: len(group), aggregated: len(group) > 1, bytes: len(data)})
		}
	}
	p.pending, p.order = make(map[string][]kpl.Record), nil
	if len(entries) == 0 {
		return nil, nil
	}
	out, err := p.k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
	if err != nil {
		return nil, fmt.Errorf("KPL producer: put records: %w", err)
	}
	if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
		return nil, fmt.Errorf("KPL producer: %d of %d records were refused", n, len(entries))
	}
	for i, r := range out.Records {
		puts[i].shard, puts[i].sequence = aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
	}
	return puts, nil
}

// splitAggregates cuts a shard's records, in order, into groups whose aggregate stays within the KPL's
// maximum aggregate size (a record too large for any aggregate forms a group of its own).
func splitAggregates(recs []kpl.Record) [][]kpl.Record {
	var groups [][]kpl.Record
	start := 0
	for i := 1; i <= len(recs); i++ {
		if i == len(recs) {
			groups = append(groups, recs[start:i])
			break
		}
		if agg, err := kpl.Aggregate(recs[start : i+1]); err == nil && len(agg) > kplMaxAggregateBytes {
			groups = append(groups, recs[start:i])
			start = i
		}
	}
	return groups
}

// putPlain writes one record the way a producer without the KPL does (PutRecord).
func putPlain(ctx context.Context, k *kinesis.Client, stream, partitionKey string, data []byte) (put, error) {
	out, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(partitionKey), Data: data})
	if err != nil {
		return put{}, fmt.Errorf("put record with key %s: %w", partitionKey, err)
	}
	return put{shard: aws.ToString(out.ShardId), sequence: aws.ToString(out.SequenceNumber), partitionKey: partitionKey, userRecords: 1, bytes: len(data)}, nil
}
