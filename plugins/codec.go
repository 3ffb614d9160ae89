package plugins

// The gRPC codec both sides of the boundary use. The bytes on the wire are
// plain protobuf, identical to what grpc-go's default codec writes, so a
// plugin or worker built without this codec interoperates unchanged; the
// codec only avoids copies for the two messages that carry record batches
// (PollResponse and PutRequest with their packed field set):
//
//   - Marshal writes the field's tag and length into a small buffer and hands
//     gRPC the packed batch itself (no copy into a marshal buffer). A poll
//     response's batch buffer goes back to batchBuffers once gRPC has
//     written it.
//   - Unmarshal copies the packed field once, straight out of gRPC's receive
//     buffers (the default codec first gathers them into one buffer, then
//     copies the field out of it), into a batchBuffers buffer: the plugin
//     hands a put request's buffer back once nothing refers to it
//     (server.Put).
//
// Every other message goes through grpc-go's protobuf codec.

import (
	"encoding/binary"
	"io"
	"math/bits"
	"sync"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// packedFieldNumber is the field number of PollResponse.packed and
// PutRequest.packed (plugin.proto).
const packedFieldNumber = 2

// batchCodec is the boundary's gRPC codec.
type batchCodec struct{ fallback encoding.CodecV2 }

func newBatchCodec() batchCodec {
	return batchCodec{fallback: encoding.GetCodecV2(grpcproto.Name)}
}

// Name keeps the content subtype of the default codec ("proto").
func (batchCodec) Name() string { return grpcproto.Name }

// packedOnly returns the packed field of m when it is the message's only
// set field.
func packedOnly(v any) ([]byte, bool) {
	switch m := v.(type) {
	case *pluginpb.PollResponse:
		return m.Packed, len(m.Records) == 0 && len(m.Packed) > 0 && len(m.ProtoReflect().GetUnknown()) == 0
	case *pluginpb.PutRequest:
		return m.Packed, len(m.Records) == 0 && len(m.Packed) > 0 && len(m.ProtoReflect().GetUnknown()) == 0
	}
	return nil, false
}

func (c batchCodec) Marshal(v any) (mem.BufferSlice, error) {
	packed, ok := packedOnly(v)
	if !ok {
		return c.fallback.Marshal(v)
	}
	head := protowire.AppendTag(make([]byte, 0, 16), packedFieldNumber, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(packed)))
	body := mem.Buffer(mem.SliceBuffer(packed))
	if _, poll := v.(*pluginpb.PollResponse); poll {
		// The plugin built it in a batchBuffers buffer and drops the
		// response once sent (a retried poll is a new response).
		body = mem.NewBuffer(&packed, batchBuffers)
	}
	return mem.BufferSlice{mem.SliceBuffer(head), body}, nil
}

func (c batchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var packed *[]byte
	switch m := v.(type) {
	case *pluginpb.PollResponse:
		packed = &m.Packed
	case *pluginpb.PutRequest:
		packed = &m.Packed
	}
	if packed != nil {
		if b, ok := readPackedOnly(data); ok {
			*packed = b
			return nil
		}
	}
	return c.fallback.Unmarshal(data, v)
}

// readPackedOnly reads a message made of the packed field alone; false
// means the message holds something else too (the caller decodes it fully).
func readPackedOnly(data mem.BufferSlice) ([]byte, bool) {
	r := data.Reader()
	defer r.Close()
	tag, err := binary.ReadUvarint(r)
	if err != nil || tag != uint64(protowire.EncodeTag(packedFieldNumber, protowire.BytesType)) {
		return nil, false
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n != uint64(r.Remaining()) {
		return nil, false
	}
	bp := batchBuffers.Get(int(n))
	b := (*bp)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, false
	}
	return b, true
}

// batchBuffers recycles the buffers packed batches are built in, once gRPC
// has sent them (mem.BufferPool, so the codec can hand them to gRPC).
var batchBuffers = &batchPool{}

// maxPooledBatch is the largest buffer kept for reuse; bigger ones (rare
// huge batches) are left to the garbage collector.
const maxPooledBatch = 8 << 20

type batchPool struct{ p sync.Pool }

// Get returns a buffer of length 0 and capacity at least size.
func (bp *batchPool) Get(size int) *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok && cap(*b) >= size {
		*b = (*b)[:0]
		return b
	}
	// Batches vary in size: rounded up to a power of two, a buffer serves
	// the next batches too (those too big to be kept get a little room).
	c := size + size/8
	if p2 := 1 << bits.Len(uint(size)); p2 <= maxPooledBatch {
		c = max(c, p2)
	}
	b := make([]byte, 0, c)
	return &b
}

func (bp *batchPool) Put(b *[]byte) {
	if cap(*b) > maxPooledBatch || cap(*b) == 0 {
		return
	}
	*b = (*b)[:0]
	bp.p.Put(b)
}

var _ mem.BufferPool = (*batchPool)(nil)

// spillBuffers recycles the buffers shared fields of packed batches are
// rebuilt in (EachProduced, EachConsumed).
var spillBuffers = &batchPool{}

// ReleaseSpill hands back the spill of EachProduced or EachConsumed once
// nothing refers to its bytes any more, so a later batch is rebuilt in it.
// Release a spill once: its owner must not use it afterwards.
func ReleaseSpill(b *[]byte) { spillBuffers.Put(b) }

// ReleaseBatch hands back the packed batch of a PollResponse once nothing
// refers to its bytes any more (the worker's source runner, after the
// producer acknowledged every record of it), so the next batch is decoded
// into it instead of a fresh buffer. Any packed field may be released, and
// released once: its owner must not use it afterwards.
func ReleaseBatch(b *[]byte) { batchBuffers.Put(b) }
