package plugins

// The packed batch format, version 1: the records of one PollResponse or
// PutRequest in a single bytes field, instead of one protobuf message per
// record. Integers are unsigned (uvarint) or zig-zag signed (varint) varints
// as encoding/binary writes them; "bytes" is a uvarint length then the bytes.
//
//	batch    = version:u8(1) count:uvarint record*
//	produced = flags:uvarint [topic:bytes] [partition:varint] [key:bytes] [value:bytes]
//	           [timestamp:varint] headers [source_partition:bytes] [source_offset:bytes] [error:bytes]
//	consumed = flags:uvarint [topic:bytes] partition:varint offset:varint timestamp:varint
//	           timestamp_type:varint [key:bytes] [value:bytes] headers
//	headers  = count:uvarint (key:bytes null:u8 [value:bytes])*
//
// Flags say which optional fields follow: a topic is written only when it
// differs from the previous record's, a key or value only when not null.
// Decoded byte fields alias the batch buffer.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

const packedVersion = 1

// ErrPacked is wrapped by every packed-batch decoding error.
var ErrPacked = errors.New("plugins: bad packed batch")

const (
	fNewTopic = 1 << iota
	fPartition
	fKey
	fValue
	fTimestamp
	fSourcePartition
	fSourceOffset
	fError
	fDropped
)

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendHeaders(b []byte, hs []*pluginpb.Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = appendBytes(b, []byte(h.Key))
		if h.ValueNull {
			b = append(b, 1)
			continue
		}
		b = append(b, 0)
		b = appendBytes(b, h.Value)
	}
	return b
}

// producedPacker appends source records to a packed batch one at a time,
// so the plugin never holds a batch of per-record messages.
type producedPacker struct {
	b         []byte
	prevTopic string
	n         int
}

// newProducedPacker starts a batch of count records in buf (appended to).
func newProducedPacker(buf *[]byte, count int) *producedPacker {
	b := append(*buf, packedVersion)
	b = binary.AppendUvarint(b, uint64(count))
	return &producedPacker{b: b}
}

// add appends r; the batch must receive exactly the count given at creation.
func (p *producedPacker) add(r *pluginpb.ProducedRecord) {
	var f uint64
	if p.n == 0 || r.Topic != p.prevTopic {
		f |= fNewTopic
	}
	if r.HasPartition {
		f |= fPartition
	}
	if !r.KeyNull {
		f |= fKey
	}
	if !r.ValueNull {
		f |= fValue
	}
	if r.TimestampMs != 0 {
		f |= fTimestamp
	}
	if len(r.SourcePartitionJson) > 0 {
		f |= fSourcePartition
	}
	if len(r.SourceOffsetJson) > 0 {
		f |= fSourceOffset
	}
	if r.Error != "" {
		f |= fError
	}
	if r.Dropped {
		f |= fDropped
	}
	b := binary.AppendUvarint(p.b, f)
	if f&fNewTopic != 0 {
		b = appendBytes(b, []byte(r.Topic))
		p.prevTopic = r.Topic
	}
	if f&fPartition != 0 {
		b = binary.AppendVarint(b, int64(r.Partition))
	}
	if f&fKey != 0 {
		b = appendBytes(b, r.Key)
	}
	if f&fValue != 0 {
		b = appendBytes(b, r.Value)
	}
	if f&fTimestamp != 0 {
		b = binary.AppendVarint(b, r.TimestampMs)
	}
	b = appendHeaders(b, r.Headers)
	if f&fSourcePartition != 0 {
		b = appendBytes(b, r.SourcePartitionJson)
	}
	if f&fSourceOffset != 0 {
		b = appendBytes(b, r.SourceOffsetJson)
	}
	if f&fError != 0 {
		b = appendBytes(b, []byte(r.Error))
	}
	p.b = b
	p.n++
}

// PackProduced encodes source records (plugin side of Poll).
func PackProduced(recs []*pluginpb.ProducedRecord) []byte {
	size := 0
	for _, r := range recs {
		size += 32 + len(r.Topic) + len(r.Key) + len(r.Value) + len(r.SourcePartitionJson) + len(r.SourceOffsetJson)
	}
	buf := make([]byte, 0, size+16)
	p := newProducedPacker(&buf, len(recs))
	for _, r := range recs {
		p.add(r)
	}
	return p.b
}

// reader decodes a packed batch; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or corrupt %s", ErrPacked, what)
	}
	r.b = nil
}

func (r *reader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(what string) []byte {
	l := r.uvarint(what)
	if r.err != nil || l > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:l:l]
	r.b = r.b[l:]
	return v
}

func (r *reader) byte1(what string) byte {
	if len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) start(b []byte) int {
	r.b = b
	if r.byte1("version") != packedVersion && r.err == nil {
		r.err = fmt.Errorf("%w: version %d, this build reads %d", ErrPacked, b[0], packedVersion)
	}
	n := r.uvarint("record count")
	if r.err != nil || n > uint64(len(r.b)) { // every record takes at least one byte
		r.fail("record count")
		return 0
	}
	return int(n)
}

// PackedHeader is one header of a record decoded by EachProduced.
type PackedHeader struct {
	Key   string
	Value []byte // nil: null
}

// ProducedFields is one source record of a packed batch as EachProduced
// decodes it, without a protobuf message per record. Byte fields alias the
// batch; Headers is reused from one record to the next.
type ProducedFields struct {
	Topic               string
	HasPartition        bool
	Partition           int32
	Key, Value          []byte // nil: null
	TimestampMs         int64
	Headers             []PackedHeader
	SourcePartitionJSON []byte
	SourceOffsetJSON    []byte
	Error               string
	Dropped             bool
}

// EachProduced decodes a packed batch of source records (worker side of
// Poll), calling fn with each in order; fn must not keep p, only the byte
// slices it holds (they alias b). It returns the number of records. On a
// decoding error fn may have seen the records before the bad one: the
// caller discards the batch.
func EachProduced(b []byte, fn func(p *ProducedFields)) (int, error) {
	var r reader
	n := r.start(b)
	var p ProducedFields
	topic := ""
	for i := 0; i < n && r.err == nil; i++ {
		p = ProducedFields{Headers: p.Headers[:0]}
		f := r.uvarint("flags")
		if f&fNewTopic != 0 {
			topic = string(r.bytes("topic"))
		} else if i == 0 {
			r.fail("first record without a topic")
		}
		p.Topic = topic
		if f&fPartition != 0 {
			p.HasPartition, p.Partition = true, int32(r.varint("partition"))
		}
		if f&fKey != 0 {
			p.Key = nonNilBytes(r.bytes("key"))
		}
		if f&fValue != 0 {
			p.Value = nonNilBytes(r.bytes("value"))
		}
		if f&fTimestamp != 0 {
			p.TimestampMs = r.varint("timestamp")
		}
		p.Headers = r.appendHeaders(p.Headers)
		if f&fSourcePartition != 0 {
			p.SourcePartitionJSON = r.bytes("source partition")
		}
		if f&fSourceOffset != 0 {
			p.SourceOffsetJSON = r.bytes("source offset")
		}
		if f&fError != 0 {
			p.Error = string(r.bytes("error"))
		}
		p.Dropped = f&fDropped != 0
		if r.err == nil {
			fn(&p)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last record", ErrPacked, len(r.b))
	}
	if r.err != nil {
		return 0, r.err
	}
	return n, nil
}

// nonNilBytes keeps an empty (not null) field distinct from null.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// appendHeaders decodes a record's headers, appending them to hs.
func (r *reader) appendHeaders(hs []PackedHeader) []PackedHeader {
	n := r.uvarint("header count")
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail("header count")
		return hs
	}
	for range n {
		k := string(r.bytes("header key"))
		if r.byte1("header null flag") == 1 {
			hs = append(hs, PackedHeader{Key: k})
		} else {
			hs = append(hs, PackedHeader{Key: k, Value: nonNilBytes(r.bytes("header value"))})
		}
	}
	return hs
}

// UnpackProduced decodes source records into protobuf messages (tests and
// callers that want them; the task runner uses EachProduced).
func UnpackProduced(b []byte) ([]*pluginpb.ProducedRecord, error) {
	var out []*pluginpb.ProducedRecord
	_, err := EachProduced(b, func(f *ProducedFields) {
		p := &pluginpb.ProducedRecord{Topic: f.Topic, HasPartition: f.HasPartition, Partition: f.Partition,
			Key: f.Key, KeyNull: f.Key == nil, Value: f.Value, ValueNull: f.Value == nil, TimestampMs: f.TimestampMs,
			SourcePartitionJson: f.SourcePartitionJSON, SourceOffsetJson: f.SourceOffsetJSON, Error: f.Error, Dropped: f.Dropped}
		for _, h := range f.Headers {
			p.Headers = append(p.Headers, &pluginpb.Header{Key: h.Key, Value: h.Value, ValueNull: h.Value == nil})
		}
		out = append(out, p)
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []*pluginpb.ProducedRecord{}
	}
	return out, nil
}

// ConsumedFields is one consumed record for PackConsumed, as the worker
// has it from its consumer (no protobuf message per record).
type ConsumedFields struct {
	Topic         string
	Partition     int32
	Offset        int64
	TimestampMs   int64
	TimestampType int32
	Key, Value    []byte // nil: null
	HeaderKeys    []string
	HeaderValues  [][]byte // nil: null
}

// PackConsumed encodes consumed records (worker side of Put); fill is
// called for each index and fills the fields of that record.
func PackConsumed(n int, size int, fill func(i int, c *ConsumedFields)) []byte {
	return AppendConsumed(make([]byte, 0, size+8+n*24), n, fill)
}

// AppendConsumed is PackConsumed appending to dst (a buffer the caller
// reuses from batch to batch).
func AppendConsumed(dst []byte, n int, fill func(i int, c *ConsumedFields)) []byte {
	b := append(dst, packedVersion)
	b = binary.AppendUvarint(b, uint64(n))
	var c ConsumedFields
	prevTopic := ""
	for i := 0; i < n; i++ {
		c = ConsumedFields{HeaderKeys: c.HeaderKeys[:0], HeaderValues: c.HeaderValues[:0]}
		fill(i, &c)
		var f uint64
		if i == 0 || c.Topic != prevTopic {
			f |= fNewTopic
		}
		if c.Key != nil {
			f |= fKey
		}
		if c.Value != nil {
			f |= fValue
		}
		b = binary.AppendUvarint(b, f)
		if f&fNewTopic != 0 {
			b = appendBytes(b, []byte(c.Topic))
			prevTopic = c.Topic
		}
		b = binary.AppendVarint(b, int64(c.Partition))
		b = binary.AppendVarint(b, c.Offset)
		b = binary.AppendVarint(b, c.TimestampMs)
		b = binary.AppendVarint(b, int64(c.TimestampType))
		if f&fKey != 0 {
			b = appendBytes(b, c.Key)
		}
		if f&fValue != 0 {
			b = appendBytes(b, c.Value)
		}
		b = binary.AppendUvarint(b, uint64(len(c.HeaderKeys)))
		for j, k := range c.HeaderKeys {
			b = appendBytes(b, []byte(k))
			if c.HeaderValues[j] == nil {
				b = append(b, 1)
				continue
			}
			b = append(b, 0)
			b = appendBytes(b, c.HeaderValues[j])
		}
	}
	return b
}

// EachConsumed decodes a packed batch of consumed records (plugin side of
// Put), calling fn with each in order until fn returns an error; fn must
// not keep c, only the byte slices it holds (they alias b; a nil key,
// value or header value is null). It returns the number of records. On a
// decoding error fn may have seen the records before the bad one.
func EachConsumed(b []byte, fn func(i int, c *ConsumedFields) error) (int, error) {
	var r reader
	n := r.start(b)
	var c ConsumedFields
	topic := ""
	for i := 0; i < n && r.err == nil; i++ {
		c = ConsumedFields{HeaderKeys: c.HeaderKeys[:0], HeaderValues: c.HeaderValues[:0]}
		f := r.uvarint("flags")
		if f&fNewTopic != 0 {
			topic = string(r.bytes("topic"))
		} else if i == 0 {
			r.fail("first record without a topic")
		}
		c.Topic = topic
		c.Partition = int32(r.varint("partition"))
		c.Offset = r.varint("offset")
		c.TimestampMs = r.varint("timestamp")
		c.TimestampType = int32(r.varint("timestamp type"))
		if f&fKey != 0 {
			c.Key = nonNilBytes(r.bytes("key"))
		}
		if f&fValue != 0 {
			c.Value = nonNilBytes(r.bytes("value"))
		}
		nh := r.uvarint("header count")
		if r.err != nil || nh > uint64(len(r.b)) {
			r.fail("header count")
		}
		for j := uint64(0); j < nh && r.err == nil; j++ {
			c.HeaderKeys = append(c.HeaderKeys, string(r.bytes("header key")))
			var v []byte
			if r.byte1("header null flag") != 1 {
				v = nonNilBytes(r.bytes("header value"))
			}
			c.HeaderValues = append(c.HeaderValues, v)
		}
		if r.err == nil {
			if err := fn(i, &c); err != nil {
				return i, err
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last record", ErrPacked, len(r.b))
	}
	if r.err != nil {
		return 0, r.err
	}
	return n, nil
}

// UnpackConsumed decodes consumed records into protobuf messages (tests;
// the plugin's Put uses EachConsumed).
func UnpackConsumed(b []byte) ([]*pluginpb.ConsumedRecord, error) {
	out := []*pluginpb.ConsumedRecord{}
	_, err := EachConsumed(b, func(_ int, f *ConsumedFields) error {
		c := &pluginpb.ConsumedRecord{Topic: f.Topic, Partition: f.Partition, Offset: f.Offset, TimestampMs: f.TimestampMs,
			TimestampType: f.TimestampType, Key: f.Key, KeyNull: f.Key == nil, Value: f.Value, ValueNull: f.Value == nil}
		for j, k := range f.HeaderKeys {
			v := f.HeaderValues[j]
			c.Headers = append(c.Headers, &pluginpb.Header{Key: k, Value: v, ValueNull: v == nil})
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PackedCount returns the number of records in a packed batch without
// decoding them.
func PackedCount(b []byte) (int, error) {
	var r reader
	n := r.start(b)
	return n, r.err
}
