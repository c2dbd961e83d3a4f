package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
)

// fakeShard is a hand-written Kinesis for what moto cannot do: trim a shard after its retention, expire
// iterators, throttle. Records have sequence numbers trimmed+1 .. last; iterators are positions.
type fakeShard struct {
	trimmed, last int  // records 1..trimmed are gone
	closed        bool // the shard was closed by resharding: the end has no next iterator
	perCall       int
	expireEvery   int // every n-th GetRecords call fails with ExpiredIteratorException
	throttleFirst bool
	calls         int
	iterators     []string
}

func (f *fakeShard) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	seq, _ := strconv.Atoi(aws.ToString(in.StartingSequenceNumber))
	f.iterators = append(f.iterators, fmt.Sprintf("%s %d", in.ShardIteratorType, seq))
	pos := seq
	if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
		pos++
	}
	// Kinesis hands out an iterator at the trim horizon for a trimmed position.
	pos = max(pos, f.trimmed+1)
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(strconv.Itoa(pos))}, nil
}

func (f *fakeShard) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.calls++
	if f.throttleFirst && f.calls == 1 {
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	}
	if f.expireEvery > 0 && f.calls%f.expireEvery == 0 {
		return nil, &types.ExpiredIteratorException{Message: aws.String("expired")}
	}
	pos, _ := strconv.Atoi(aws.ToString(in.ShardIterator))
	out := &kinesis.GetRecordsOutput{MillisBehindLatest: aws.Int64(0)}
	for i := pos; i <= f.last && i < pos+f.perCall; i++ {
		out.Records = append(out.Records, types.Record{SequenceNumber: aws.String(strconv.Itoa(i)), PartitionKey: aws.String("k"), Data: []byte("d")})
	}
	next := pos + len(out.Records)
	if !(f.closed && next > f.last) {
		out.NextShardIterator = aws.String(strconv.Itoa(next))
	}
	return out, nil
}

func seqs(recs []types.Record) []string {
	var s []string
	for _, r := range recs {
		s = append(s, aws.ToString(r.SequenceNumber))
	}
	return s
}

func span(from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

func TestReadRange(t *testing.T) {
	for _, tc := range []struct {
		name       string
		shard      fakeShard
		start, end int
		want       []string
		lost       string
	}{
		{name: "whole range", shard: fakeShard{last: 20, perCall: 3}, start: 5, end: 12, want: span(5, 12)},
		{name: "throttled, iterators expiring", shard: fakeShard{last: 20, perCall: 2, expireEvery: 3, throttleFirst: true},
			start: 5, end: 12, want: span(5, 12)},
		{name: "closed shard read to its end", shard: fakeShard{last: 12, perCall: 5, closed: true}, start: 5, end: 12, want: span(5, 12)},
		{name: "start trimmed", shard: fakeShard{trimmed: 7, last: 20, perCall: 4}, start: 5, end: 12, want: span(8, 12),
			lost: "from 5 up to (not including) 8: expired from the stream"},
		{name: "all trimmed", shard: fakeShard{trimmed: 15, last: 20, perCall: 4}, start: 5, end: 12,
			lost: "from 5 to 12: expired from the stream"},
		{name: "closed shard without the end", shard: fakeShard{trimmed: 20, last: 20, perCall: 4, closed: true}, start: 5, end: 12,
			lost: "from 5 to 12: expired from the stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &shardReader{k: &tc.shard, streamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s", shard: "shardId-000000000000"}
			recs, lost, err := r.readRange(context.Background(), onfailure.BatchInfo{
				StartSequenceNumber: strconv.Itoa(tc.start), EndSequenceNumber: strconv.Itoa(tc.end)})
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(recs); !slices.Equal(got, tc.want) {
				t.Errorf("records %v, want %v", got, tc.want)
			}
			got := ""
			if lost != nil {
				got = lost.String()
			}
			if got != tc.lost {
				t.Errorf("lost %q, want %q", got, tc.lost)
			}
			for i, it := range tc.shard.iterators[1:] {
				if it[:len("AFTER_SEQUENCE_NUMBER")] != "AFTER_SEQUENCE_NUMBER" {
					t.Errorf("iterator %d: %s, want AFTER_SEQUENCE_NUMBER the last record read", i+1, it)
				}
			}
		})
	}
}
