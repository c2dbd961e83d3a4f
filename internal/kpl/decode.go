package kpl

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// minRecordSize is the smallest encoded Record: a one-byte tag and one-byte varint for the partition
// key index, a one-byte tag and zero length for the data.
const minRecordSize = 4

// errTooDeep reports groups nested beyond maxDepth.
var errTooDeep = fmt.Errorf("nesting deeper than %d levels", maxDepth)

// bodyLayout is what the first walk over a body finds.
type bodyLayout struct {
	partitionKeys, explicitHashKeys, records int
	keyBytes                                 int // total length of all table entries
}

// decodeBody decodes an AggregatedRecord body and appends its records to dst.
//
// The first walk over the top-level fields validates them (skipping record contents) and sizes every
// allocation exactly. The second fills the key tables and decodes the records. Protobuf allows the
// tables to come after the records; records met before the tables are complete are decoded by a third
// walk. The KPL writes the tables first, so real aggregates take two walks and each record's bytes are
// decoded once.
func decodeBody(dst []Record, body []byte) ([]Record, error) {
	layout, err := scanBody(body)
	if err != nil {
		return nil, err
	}
	if layout.records == 0 {
		return nil, errors.New("aggregate holds no records")
	}
	if layout.partitionKeys == 0 {
		// Every record needs a partition key, so none could resolve.
		return nil, fmt.Errorf("partition key table is empty but there are %d records", layout.records)
	}

	// All keys live in one string; the tables hold substrings of it. Grow sizes the builder exactly, so
	// writing never moves the bytes that earlier substrings point to.
	var keys strings.Builder
	keys.Grow(layout.keyBytes)
	tables := make([]string, 0, layout.partitionKeys+layout.explicitHashKeys)
	pkTable := tables[:0:layout.partitionKeys]
	ehkTable := tables[layout.partitionKeys:layout.partitionKeys]

	base := len(dst)
	out := dst
	if cap(dst)-base < layout.records {
		// Exact for a fresh slice; amortised growth when a caller appends many aggregates to one.
		// (Not slices.Grow: under -race it allocates a temporary of the same size.)
		size := base + layout.records
		if base > 0 {
			size = max(size, 2*cap(dst))
		}
		out = make([]Record, base, size)
		copy(out, dst)
	}
	out = out[:base+layout.records]
	if err := fillRecords(out[base:], body, layout, &keys, pkTable, ehkTable); err != nil {
		clear(out[base:]) // drop references into data from the spare capacity of dst
		return nil, err
	}
	return out, nil
}

// fillRecords is the second and, if needed, third walk of decodeBody: it fills the tables (whose
// capacity is exact) and decodes the records into out.
func fillRecords(out []Record, body []byte, layout bodyLayout, keys *strings.Builder,
	pkTable, ehkTable []string) error {
	deferred := 0 // records met before the tables were complete; they are the first ones
	i := 0
	for b := body; len(b) > 0; {
		num, v, rest, err := nextTopField(b)
		if err != nil {
			return err
		}
		b = rest
		switch num {
		case fieldPartitionKeyTable, fieldExplicitHashKeyTable:
			keys.Write(v)
			all := keys.String()
			key := all[len(all)-len(v):]
			if num == fieldPartitionKeyTable {
				pkTable = append(pkTable, key)
			} else {
				ehkTable = append(ehkTable, key)
			}
		case fieldRecords:
			if len(pkTable) < layout.partitionKeys || len(ehkTable) < layout.explicitHashKeys {
				deferred++
			} else if out[i], err = decodeRecord(v, pkTable, ehkTable); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			i++
		}
	}
	for b, j := body, 0; j < deferred; {
		num, v, rest, err := nextTopField(b)
		if err != nil {
			return err
		}
		b = rest
		if num != fieldRecords {
			continue
		}
		if out[j], err = decodeRecord(v, pkTable, ehkTable); err != nil {
			return fmt.Errorf("record %d: %w", j, err)
		}
		j++
	}
	return nil
}

// scanBody validates the top-level fields of a body and counts the table entries and records.
func scanBody(body []byte) (bodyLayout, error) {
	var l bodyLayout
	for b := body; len(b) > 0; {
		num, v, rest, err := nextTopField(b)
		if err != nil {
			return l, err
		}
		b = rest
		switch num {
		case fieldPartitionKeyTable:
			l.partitionKeys++
			l.keyBytes += len(v)
		case fieldExplicitHashKeyTable:
			l.explicitHashKeys++
			l.keyBytes += len(v)
		case fieldRecords:
			// Rejected here, before anything is allocated for the records: a record needs at least
			// 4 bytes for its required fields, which bounds the result slice by the input length.
			if len(v) < minRecordSize {
				return l, fmt.Errorf("record %d: %d bytes cannot hold its required fields", l.records, len(v))
			}
			l.records++
		}
	}
	return l, nil
}

// nextTopField reads the next field of an AggregatedRecord body. For a table entry or a record it
// returns the field number and the value; any other field (unknown, or a known number with another
// wire type, which protobuf treats as unknown) is skipped and reported as number 0.
func nextTopField(b []byte) (protowire.Number, []byte, []byte, error) {
	off := 0
	num, typ, n, err := consumeTag(b)
	if err != nil {
		return 0, nil, nil, err
	}
	off += n
	if typ == protowire.BytesType &&
		(num == fieldPartitionKeyTable || num == fieldExplicitHashKeyTable || num == fieldRecords) {
		v, n := protowire.ConsumeBytes(b[off:])
		if n < 0 {
			return 0, nil, nil, fieldError(num, protowire.ParseError(n))
		}
		return num, v, b[off+n:], nil
	}
	n, err = skipFieldValue(num, typ, b[off:], 1)
	if err != nil {
		return 0, nil, nil, err
	}
	return 0, nil, b[off+n:], nil
}

// decodeRecord decodes one Record message and resolves its keys.
func decodeRecord(b []byte, pkTable, ehkTable []string) (Record, error) {
	var (
		r                      Record
		pkIndex, ehkIndex      uint64
		hasPK, hasEHK, hasData bool
	)
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return Record{}, err
		}
		b = b[n:]
		switch {
		case num == fieldPartitionKeyIndex && typ == protowire.VarintType:
			pkIndex, n = protowire.ConsumeVarint(b)
			hasPK = true
		case num == fieldExplicitHashKeyIndex && typ == protowire.VarintType:
			ehkIndex, n = protowire.ConsumeVarint(b)
			hasEHK = true
		case num == fieldData && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			r.Data = v[:len(v):len(v)] // capped: appending to Data must not write into the input
			hasData = true
		case num == fieldTags && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				if err := checkTag(v); err != nil {
					return Record{}, fmt.Errorf("tag: %w", err)
				}
			}
		default:
			if n, err = skipFieldValue(num, typ, b, 2); err != nil {
				return Record{}, err
			}
		}
		if n < 0 {
			return Record{}, fieldError(num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if !hasPK {
		return Record{}, errors.New("required partition_key_index is missing")
	}
	if !hasData {
		return Record{}, errors.New("required data is missing")
	}
	if pkIndex >= uint64(len(pkTable)) {
		return Record{}, fmt.Errorf("partition key index %d out of range, the table has %d entries",
			pkIndex, len(pkTable))
	}
	r.PartitionKey = pkTable[pkIndex]
	if hasEHK {
		if ehkIndex >= uint64(len(ehkTable)) {
			return Record{}, fmt.Errorf("explicit hash key index %d out of range, the table has %d entries",
				ehkIndex, len(ehkTable))
		}
		r.ExplicitHashKey = ehkTable[ehkIndex]
	}
	return r, nil
}

// checkTag validates a Tag message, which is otherwise ignored: protobuf rejects a record whose tag
// does not parse or lacks its required key, so the KCL would not treat the aggregate as one.
func checkTag(b []byte) error {
	hasKey := false
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == fieldTagKey || num == fieldTagValue) {
			_, n = protowire.ConsumeBytes(b)
			if n < 0 {
				return fieldError(num, protowire.ParseError(n))
			}
			hasKey = hasKey || num == fieldTagKey
		} else if n, err = skipFieldValue(num, typ, b, 3); err != nil {
			return err
		}
		b = b[n:]
	}
	if !hasKey {
		return errors.New("required key is missing")
	}
	return nil
}

// consumeTag reads a field tag, rejecting field numbers protobuf does not allow.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, fmt.Errorf("field tag: %w", protowire.ParseError(n))
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, 0, fmt.Errorf("field number %d is out of range", num)
	}
	return num, typ, n, nil
}

// skipFieldValue returns the length of a field value to be skipped. depth is the nesting level a
// group value would have; protowire's own group skipping allows 10,000 levels, so groups are walked
// here to enforce maxDepth.
func skipFieldValue(num protowire.Number, typ protowire.Type, b []byte, depth int) (int, error) {
	if typ != protowire.StartGroupType {
		n := protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, fieldError(num, protowire.ParseError(n))
		}
		return n, nil
	}
	if depth > maxDepth {
		return 0, fmt.Errorf("field %d: %w", num, errTooDeep)
	}
	off := 0
	for {
		num2, typ2, n, err := consumeTag(b[off:])
		if err != nil {
			return 0, fmt.Errorf("group %d: %w", num, err)
		}
		off += n
		if typ2 == protowire.EndGroupType {
			if num2 != num {
				return 0, fmt.Errorf("group %d closed by end-group marker %d", num, num2)
			}
			return off, nil
		}
		n, err = skipFieldValue(num2, typ2, b[off:], depth+1)
		if err != nil {
			return 0, err
		}
		off += n
	}
}

// fieldError describes a wire-format error in field num.
func fieldError(num protowire.Number, err error) error {
	return fmt.Errorf("field %d: %w", num, err)
}
