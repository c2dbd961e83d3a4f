package sink

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// hash128 is a point in Kinesis's 128-bit hash key space.
type hash128 struct{ hi, lo uint64 }

func (a hash128) less(b hash128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

// keyHash is where Kinesis puts a partition key: the MD5 of its UTF-8 bytes as a big-endian number.
func keyHash(key string) hash128 {
	sum := md5.Sum([]byte(key))
	return hash128{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

func parseHash(s string) (hash128, error) {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return hash128{}, fmt.Errorf("hash key %q is not a 128-bit number", s)
	}
	lo := new(big.Int).And(n, new(big.Int).SetUint64(^uint64(0)))
	return hash128{new(big.Int).Rsh(n, 64).Uint64(), lo.Uint64()}, nil
}

// shardMap maps hash keys to the stream's open shards.
type shardMap struct {
	starts []hash128 // sorted starting hash keys
	ids    []string
}

// shardOf returns the open shard whose range holds key's hash.
func (m *shardMap) shardOf(key string) string {
	h := keyHash(key)
	// The last shard starting at or below h; open shards cover the whole space without gaps.
	i, _ := slices.BinarySearchFunc(m.starts, h, func(s, h hash128) int {
		switch {
		case s.less(h):
			return -1
		case h.less(s):
			return 1
		}
		return 0
	})
	if i == len(m.starts) || m.starts[i] != h {
		i--
	}
	return m.ids[max(i, 0)]
}

// listShards reads the open shards of a stream (those without an ending sequence number).
func listShards(ctx context.Context, k Kinesis, streamARN string) (*shardMap, error) {
	type shard struct {
		start hash128
		id    string
	}
	var open []shard
	in := &kinesis.ListShardsInput{StreamARN: aws.String(streamARN)}
	for {
		out, err := k.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing the shards of %s: %w", streamARN, err)
		}
		for _, s := range out.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed by a reshard
			}
			if s.HashKeyRange == nil || s.ShardId == nil {
				return nil, fmt.Errorf("listing the shards of %s: shard without a hash key range", streamARN)
			}
			start, err := parseHash(aws.ToString(s.HashKeyRange.StartingHashKey))
			if err != nil {
				return nil, fmt.Errorf("listing the shards of %s: %w", streamARN, err)
			}
			open = append(open, shard{start, *s.ShardId})
		}
		if out.NextToken == nil {
			break
		}
		// ListShards refuses the stream name or ARN beside a NextToken.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(open) == 0 {
		return nil, errors.New("listing the shards of " + streamARN + ": no open shard")
	}
	slices.SortFunc(open, func(a, b shard) int {
		if a.start.less(b.start) {
			return -1
		}
		if b.start.less(a.start) {
			return 1
		}
		return 0
	})
	m := &shardMap{}
	for _, s := range open {
		m.starts = append(m.starts, s.start)
		m.ids = append(m.ids, s.id)
	}
	return m, nil
}
