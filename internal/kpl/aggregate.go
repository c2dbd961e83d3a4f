package kpl

import (
	"crypto/md5"
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// Aggregate encodes records as one KPL aggregate, the way the KPL and awslabs' aggregation libraries
// do: each distinct partition key and explicit hash key is stored once, in order of first use; an
// explicit hash key index is written only for a record whose ExplicitHashKey is not ""; fields are in
// field-number order; the MD5 trailer covers the protobuf body. It always produces the aggregate
// format, even for one record (the KPL sends a lone record unaggregated).
//
// Aggregate does not check Kinesis limits (record size, key length, explicit hash key syntax): the
// caller splits records so that each aggregate fits the stream's maximum record size. It accepts
// every record Deaggregate can return, so decoding and re-encoding round-trips. The sink writes its
// aggregates with it (internal/sink checks the limits); tests, the demo and benchmarks use it too. The
// only error is an empty records slice, whose aggregate Deaggregate would reject.
func Aggregate(records []Record) ([]byte, error) {
	if len(records) == 0 {
		return nil, errors.New("kpl: aggregate needs at least one record")
	}
	pkIndex := make(map[string]uint64)
	ehkIndex := make(map[string]uint64)
	var pkTable, ehkTable []string
	bodySize := 0
	for _, r := range records {
		if _, ok := pkIndex[r.PartitionKey]; !ok {
			pkIndex[r.PartitionKey] = uint64(len(pkTable))
			pkTable = append(pkTable, r.PartitionKey)
			bodySize += protowire.SizeTag(fieldPartitionKeyTable) + protowire.SizeBytes(len(r.PartitionKey))
		}
		if _, ok := ehkIndex[r.ExplicitHashKey]; !ok && r.ExplicitHashKey != "" {
			ehkIndex[r.ExplicitHashKey] = uint64(len(ehkTable))
			ehkTable = append(ehkTable, r.ExplicitHashKey)
			bodySize += protowire.SizeTag(fieldExplicitHashKeyTable) + protowire.SizeBytes(len(r.ExplicitHashKey))
		}
		n := recordSize(r, pkIndex, ehkIndex)
		bodySize += protowire.SizeTag(fieldRecords) + protowire.SizeBytes(n)
	}

	out := make([]byte, 0, len(Magic)+bodySize+digestSize)
	out = append(out, Magic[:]...)
	for _, k := range pkTable {
		out = protowire.AppendTag(out, fieldPartitionKeyTable, protowire.BytesType)
		out = protowire.AppendString(out, k)
	}
	for _, k := range ehkTable {
		out = protowire.AppendTag(out, fieldExplicitHashKeyTable, protowire.BytesType)
		out = protowire.AppendString(out, k)
	}
	for _, r := range records {
		out = protowire.AppendTag(out, fieldRecords, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(recordSize(r, pkIndex, ehkIndex)))
		out = protowire.AppendTag(out, fieldPartitionKeyIndex, protowire.VarintType)
		out = protowire.AppendVarint(out, pkIndex[r.PartitionKey])
		if r.ExplicitHashKey != "" {
			out = protowire.AppendTag(out, fieldExplicitHashKeyIndex, protowire.VarintType)
			out = protowire.AppendVarint(out, ehkIndex[r.ExplicitHashKey])
		}
		out = protowire.AppendTag(out, fieldData, protowire.BytesType)
		out = protowire.AppendBytes(out, r.Data)
	}
	sum := md5.Sum(out[len(Magic):])
	return append(out, sum[:]...), nil
}

// recordSize is the encoded size of one Record message, given the key tables of its aggregate.
func recordSize(r Record, pkIndex, ehkIndex map[string]uint64) int {
	n := protowire.SizeTag(fieldPartitionKeyIndex) + protowire.SizeVarint(pkIndex[r.PartitionKey])
	if r.ExplicitHashKey != "" {
		n += protowire.SizeTag(fieldExplicitHashKeyIndex) + protowire.SizeVarint(ehkIndex[r.ExplicitHashKey])
	}
	return n + protowire.SizeTag(fieldData) + protowire.SizeBytes(len(r.Data))
}
