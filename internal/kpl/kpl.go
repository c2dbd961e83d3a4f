// Package kpl decodes and encodes the Kinesis Producer Library (KPL) aggregated-record format.
//
// Lambda hands a KPL aggregate to the function as one Kinesis record; this package splits it into the
// user records it carries, the way the Kinesis Client Library (KCL) does.
//
// # Wire format
//
//	[4-byte Magic F3 89 9A C2][protobuf AggregatedRecord][16-byte MD5 of the protobuf bytes]
//
// The protobuf body uses proto2 syntax:
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
//
// Each record takes its partition key (and optional explicit hash key) from a table by zero-based
// index, so keys may be shared by many records or repeated.
//
// # Decoding, compared with the KCL
//
// Like the KCL (AggregatorUtil.deaggregate), a record counts as aggregated only when it starts with
// Magic, more than 16 bytes follow the magic, the MD5 trailer matches and the body parses as protobuf
// (protobuf-java checks required fields, so this package does too; the Python aws_kinesis_agg does
// not). The body is parsed as protobuf does: fields may come in any order, unknown fields and fields
// with an unexpected wire type are skipped, a singular field that appears twice keeps its last value,
// nesting deeper than 100 levels is an error (protobuf-java's and upb's limit) and strings are not
// checked for UTF-8 (proto2). Tags are ignored, but parsed and checked like any message.
//
// Every failure is reported as an error and no records, and the caller publishes the Kinesis record as
// one plain record with its bytes unchanged, so a Kinesis record is never lost. That is also why this
// package deviates from the KCL and from awslabs' Go deaggregator (kinesis-aggregation/go/v2):
//
//   - A key index out of range is an error (ErrMalformed). The Go deaggregator panics (no bounds
//     check); the KCL logs the exception and keeps only the user records emitted before it, losing the
//     rest of the aggregate.
//   - An aggregate with no records is an error. The KCL and the Go deaggregator emit nothing for it, so
//     the Kinesis record would vanish.
//   - Decoding is all or nothing: a partially decodable aggregate yields an error, never a prefix, for
//     the same reason (and a retried batch must produce the same messages again).
//   - A protobuf error after a good MD5 fails only that record, where the Go deaggregator fails the
//     whole batch.
//   - Explicit hash keys are passed on as opaque strings, and no shard hash-range check is made: Lambda
//     does not tell the function its shard's range, and the KCL's check would lose records (it drops
//     every user record of an aggregate when one falls outside the range, and stops at an explicit
//     hash key that is not a number).
//   - Index values are compared as uint64; the KCL truncates them to a Java int first.
//
// # Performance
//
// Decoding reads each record's bytes once (a first walk over the top-level field headers sizes every
// allocation exactly). Record.Data aliases the input and all keys share one string, so an aggregate
// costs at most three allocations whatever its record count, and its time is mostly the MD5 over its
// bytes. A plain record costs no allocation. Allocations are bounded by the input length (at most
// about ten times it), never by a length or count the input declares.
package kpl

import (
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic is the 4-byte prefix of a KPL aggregated record.
var Magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

// digestSize is the length of the MD5 trailer.
const digestSize = md5.Size

// maxDepth bounds message and group nesting: protobuf-java's and upb's default recursion limit, so an
// aggregate they reject as too deep is rejected here too. The top-level message is depth 0.
const maxDepth = 100

// Field numbers of the aggregate's protobuf messages.
const (
	fieldPartitionKeyTable    protowire.Number = 1 // AggregatedRecord
	fieldExplicitHashKeyTable protowire.Number = 2
	fieldRecords              protowire.Number = 3

	fieldPartitionKeyIndex    protowire.Number = 1 // Record
	fieldExplicitHashKeyIndex protowire.Number = 2
	fieldData                 protowire.Number = 3
	fieldTags                 protowire.Number = 4

	fieldTagKey   protowire.Number = 1 // Tag
	fieldTagValue protowire.Number = 2
)

var (
	// ErrNotAggregated reports a record that is not a KPL aggregate: it does not start with Magic, or no
	// more than 16 bytes follow the magic. Deaggregate returns it unwrapped in the first case, the common
	// one for plain streams, so that case costs no allocation.
	ErrNotAggregated = errors.New("kpl: not an aggregated record")
	// ErrMalformed reports a record that starts with Magic but is not a valid aggregate: the MD5 trailer
	// does not match, the protobuf does not decode, a key index is out of range, a required field is
	// missing, or it holds no records. The KCL passes such a record on unchanged; so must the caller.
	ErrMalformed = errors.New("kpl: malformed aggregated record")
)

// Record is one user record of an aggregate.
type Record struct {
	PartitionKey    string
	ExplicitHashKey string // "" when absent
	// Data aliases the input buffer after decoding (no copy); its capacity is capped at its length, so
	// appending to it never writes into the input. It may be empty.
	Data []byte
}

// Deaggregate returns the user records of a KPL aggregate, in order.
//
// It returns ErrNotAggregated when data does not start with Magic (or is too short to hold an
// aggregate), and an error wrapping ErrMalformed when the magic is present but the MD5 trailer does
// not match, the protobuf does not decode, a key index is out of range, a required field is missing,
// or the aggregate holds no records. On error it returns no records; the caller then publishes the
// record as one plain record with its bytes unchanged, as the KCL does. On success it returns at least
// one record. The Data of each record aliases data, which must therefore stay unchanged while the
// records are in use.
func Deaggregate(data []byte) ([]Record, error) {
	return AppendDeaggregate(nil, data)
}

// AppendDeaggregate is Deaggregate appending the records to dst, so a caller can collect a batch's
// records in one slice. On error it returns dst with its length and contents unchanged (all or
// nothing); its spare capacity may have been written and zeroed again.
func AppendDeaggregate(dst []Record, data []byte) ([]Record, error) {
	if len(data) < len(Magic) || [4]byte(data[:len(Magic)]) != Magic {
		return dst, ErrNotAggregated
	}
	rest := data[len(Magic):]
	if len(rest) <= digestSize {
		// The KCL's rule: no room for a body and the trailer, so this is a plain record that merely
		// starts with the magic bytes.
		return dst, fmt.Errorf("%w: only %d bytes follow the magic, an aggregate needs more than %d",
			ErrNotAggregated, len(rest), digestSize)
	}
	body, trailer := rest[:len(rest)-digestSize], rest[len(rest)-digestSize:]
	if md5.Sum(body) != [digestSize]byte(trailer) {
		return dst, fmt.Errorf("%w: MD5 trailer does not match the %d-byte body", ErrMalformed, len(body))
	}
	out, err := decodeBody(dst, body)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out, nil
}
