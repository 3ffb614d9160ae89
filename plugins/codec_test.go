package plugins

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// The codec's bytes are plain protobuf: what proto.Marshal writes, and
// readable by it, for the batch messages and for every other one.
func TestBatchCodecIsProtobuf(t *testing.T) {
	c := newBatchCodec()
	big := bytes.Repeat([]byte("0123456789"), 50_000) // over gRPC's pooling threshold
	msgs := []proto.Message{
		&pluginpb.PollResponse{Packed: big},
		&pluginpb.PollResponse{Packed: []byte{1, 0}},
		&pluginpb.PutRequest{Packed: big},
		&pluginpb.PollResponse{Records: []*pluginpb.ProducedRecord{{Topic: "t", Value: []byte("v")}}},
		&pluginpb.PollResponse{},
		&pluginpb.PollRequest{MaxRecords: 5},
	}
	for i, m := range msgs {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("message %d: codec wrote %d bytes, protobuf %d", i, len(got), len(want))
		}
		back := m.ProtoReflect().New().Interface()
		// Split the input into pieces, as gRPC hands over frames.
		var split mem.BufferSlice
		for len(want) > 0 {
			n := min(len(want), 16<<10)
			split = append(split, mem.SliceBuffer(want[:n]))
			want = want[n:]
		}
		if err := c.Unmarshal(split, back); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !proto.Equal(back, m) {
			t.Fatalf("message %d: decoded %v", i, back)
		}
	}
}

// A batch message carrying more than the packed field (a newer peer's
// extra field) is decoded fully, not cut to the packed field.
func TestBatchCodecFallsBackOnOtherFields(t *testing.T) {
	b := protowire.AppendTag(nil, packedFieldNumber, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{1, 0})
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	var m pluginpb.PollResponse
	if err := newBatchCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Packed, []byte{1, 0}) || len(m.ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("decoded %v, unknown %x", m.Packed, m.ProtoReflect().GetUnknown())
	}
	// Truncated input is an error, not a short batch.
	if err := newBatchCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:3])}, &m); err == nil {
		t.Fatal("a truncated message decoded")
	}
}
