package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The oracle is an independent reference decoder for tests: the schema is described at run time and
// the body is parsed by the protobuf module's own reflective decoder (required fields, unknown fields,
// wire-type mismatches and all), then resolved the way the KCL does, plus our stricter rules.
// It shares no decoding code with the package.

var aggregatedRecordDesc = func() protoreflect.MessageDescriptor {
	field := func(name string, num int32, label descriptorpb.FieldDescriptorProto_Label,
		typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(num), Label: label.Enum(), Type: typ.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	const (
		rep = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		req = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED
		opt = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		u64 = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		byt = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("kpl_oracle.proto"),
		Package: proto.String("kploracle"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("AggregatedRecord"), Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_table", 1, rep, str, ""),
				field("explicit_hash_key_table", 2, rep, str, ""),
				field("records", 3, rep, msg, ".kploracle.Record"),
			}},
			{Name: proto.String("Record"), Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_index", 1, req, u64, ""),
				field("explicit_hash_key_index", 2, opt, u64, ""),
				field("data", 3, req, byt, ""),
				field("tags", 4, rep, msg, ".kploracle.Tag"),
			}},
			{Name: proto.String("Tag"), Field: []*descriptorpb.FieldDescriptorProto{
				field("key", 1, req, str, ""),
				field("value", 2, opt, str, ""),
			}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(fmt.Sprintf("oracle schema: %v", err))
	}
	return fd.Messages().ByName("AggregatedRecord")
}()

// oracleDeaggregate decodes data with the reference decoder. Its errors wrap the package's sentinels.
// Unknown groups are skipped without the 100-level limit (the reflective decoder allows 10,000), so
// inputs that Deaggregate rejects with errTooDeep are outside its comparison.
func oracleDeaggregate(data []byte) ([]Record, error) {
	if len(data) < 4 || !bytes.Equal(data[:4], []byte{0xF3, 0x89, 0x9A, 0xC2}) || len(data) <= 4+md5.Size {
		return nil, ErrNotAggregated
	}
	body, trailer := data[4:len(data)-md5.Size], data[len(data)-md5.Size:]
	if sum := md5.Sum(body); !bytes.Equal(sum[:], trailer) {
		return nil, fmt.Errorf("%w: md5", ErrMalformed)
	}
	agg := dynamicpb.NewMessage(aggregatedRecordDesc)
	if err := proto.Unmarshal(body, agg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	fields := aggregatedRecordDesc.Fields()
	pks := agg.Get(fields.ByNumber(1)).List()
	ehks := agg.Get(fields.ByNumber(2)).List()
	list := agg.Get(fields.ByNumber(3)).List()
	if list.Len() == 0 {
		return nil, fmt.Errorf("%w: no records", ErrMalformed)
	}
	recFields := aggregatedRecordDesc.Fields().ByNumber(3).Message().Fields()
	out := make([]Record, 0, list.Len())
	for i := range list.Len() {
		r := list.Get(i).Message()
		pk := r.Get(recFields.ByNumber(1)).Uint()
		if pk >= uint64(pks.Len()) {
			return nil, fmt.Errorf("%w: record %d: pk index", ErrMalformed, i)
		}
		rec := Record{PartitionKey: pks.Get(int(pk)).String(), Data: r.Get(recFields.ByNumber(3)).Bytes()}
		if ehkField := recFields.ByNumber(2); r.Has(ehkField) {
			ehk := r.Get(ehkField).Uint()
			if ehk >= uint64(ehks.Len()) {
				return nil, fmt.Errorf("%w: record %d: ehk index", ErrMalformed, i)
			}
			rec.ExplicitHashKey = ehks.Get(int(ehk)).String()
		}
		out = append(out, rec)
	}
	return out, nil
}

// sameRecords reports how got differs from want, or "" when they hold the same records. Empty and nil
// Data are the same.
func sameRecords(got, want []Record) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) {
			return fmt.Sprintf("record %d: got {pk %q, ehk %q, %d bytes}, want {pk %q, ehk %q, %d bytes}",
				i, g.PartitionKey, g.ExplicitHashKey, len(g.Data), w.PartitionKey, w.ExplicitHashKey, len(w.Data))
		}
	}
	return ""
}

// errorClass names the sentinel an error wraps, for comparing outcomes.
func errorClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotAggregated):
		return "not aggregated"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	default:
		return "unclassified: " + err.Error()
	}
}
