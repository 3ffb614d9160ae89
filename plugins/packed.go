package plugins

// The packed batch format: the records of one PollResponse or PutRequest in
// a single bytes field, instead of one protobuf message per record. Integers
// are unsigned (uvarint) or zig-zag signed (varint) varints as
// encoding/binary writes them; "bytes" is a uvarint length then the bytes.
//
// Version 1:
//
//	batch    = version:u8(1) count:uvarint record*
//	produced = flags:uvarint [topic:bytes] [partition:varint] [key:field] [value:field]
//	           [timestamp:varint] headers [source_partition:bytes] [source_offset:bytes] [error:bytes]
//	consumed = flags:uvarint [topic:bytes] partition:varint offset:varint timestamp:varint
//	           timestamp_type:varint [key:field] [value:field] headers
//	headers  = count:uvarint (key:bytes null:u8 [value:bytes])*
//	field    = bytes
//
// Flags say which optional fields follow: a topic is written only when it
// differs from the previous record's, a key or value only when not null.
//
// Version 2 adds shared prefixes, for records that repeat most of the
// previous record's bytes (JsonConverter with schemas embeds the same schema
// in every record):
//
//	batch    = version:u8(2) count:uvarint spill:u32 (little endian) record*
//	field    = bytes                          (flag fKeyShared/fValueShared clear)
//	         | shared:uvarint rest:bytes      (flag set)
//
// A key (value) with its shared flag set is the first `shared` bytes of the
// last non-null key (value) of an earlier record in the batch, followed by
// rest. spill is the summed length of all such fields: the reader sizes the
// buffer it rebuilds them in by it (and checks it). A writer speaks version 2 only
// to a peer that said it reads it (StartSourceTaskRequest.packed_version,
// StartTaskResponse.packed_version); readers read both versions.
//
// Decoded byte fields alias the batch buffer, or for shared fields the spill
// buffer the decoder returns.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// Versions of the packed batch format.
const (
	packedVersion1 = 1
	packedVersion2 = 2
	// PackedVersion is the highest version this build reads and writes.
	PackedVersion = packedVersion2
)

// PackVersion returns the version to write for a peer that reads up to
// peer (0 from a peer that predates the version fields: 1).
func PackVersion(peer int32) int {
	if peer <= packedVersion1 {
		return packedVersion1
	}
	return min(int(peer), PackedVersion)
}

// minShared is the shortest prefix a writer shares: below it, rebuilding
// the field costs the reader more than the bytes it saves.
const minShared = 32

// maxSpill bounds the spill size a batch may declare (a corrupt header must
// not make the reader allocate without bound).
const maxSpill = 1 << 30

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
	fKeyShared   // version 2: the key shares a prefix with the last key
	fValueShared // version 2: the value shares a prefix with the last value
)

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	i := 0
	// Whole chunks through bytes.Equal (vectorized), then words, then bytes.
	const chunk = 256
	for i+chunk <= n && bytes.Equal(a[i:i+chunk], b[i:i+chunk]) {
		i += chunk
	}
	for i+8 <= n {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// sharer decides which keys (or values) of a version 2 batch to write as
// sharing a prefix with the last one written.
type sharer struct {
	prev []byte // the last non-null field written (a copy when copy is set)
	copy bool   // keep a copy of prev: the caller reuses the bytes it passes
}

// share returns the length of the prefix v shares with the last field, 0
// when it is not worth sharing, and makes v the last field.
func (s *sharer) share(v []byte) int {
	shared := 0
	if len(s.prev) >= minShared && len(v) >= minShared {
		if shared = commonPrefix(s.prev, v); shared < minShared {
			shared = 0
		}
	}
	if s.copy {
		s.prev = append(s.prev[:0], v...)
	} else {
		s.prev = v
	}
	return shared
}

// appendShared appends v as a field sharing its first shared bytes.
func appendShared(b, v []byte, shared int) []byte {
	b = binary.AppendUvarint(b, uint64(shared))
	return appendBytes(b, v[shared:])
}

// appendField appends v as a field of a batch with the given flags: shared
// when flag is set in them.
func appendField(b, v []byte, flags, flag uint64, shared int) []byte {
	if flags&flag != 0 {
		return appendShared(b, v, shared)
	}
	return appendBytes(b, v)
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
	b          []byte
	version    int
	prevTopic  string
	n          int
	key, value sharer // version 2
	spill      int    // version 2: bytes of the shared fields
	spillAt    int    // version 2: where the spill size goes in b
}

// newProducedPacker starts a batch of count records in version (1 or 2) in
// buf (appended to).
func newProducedPacker(buf *[]byte, count, version int) *producedPacker {
	p := &producedPacker{version: version, key: sharer{copy: true}, value: sharer{copy: true}}
	b := append(*buf, byte(version))
	b = binary.AppendUvarint(b, uint64(count))
	if version >= packedVersion2 {
		p.spillAt = len(b)
		b = append(b, 0, 0, 0, 0)
	}
	p.b = b
	return p
}

// bytes returns the batch; call it once, after the last add.
func (p *producedPacker) bytes() []byte {
	if p.version >= packedVersion2 {
		binary.LittleEndian.PutUint32(p.b[p.spillAt:], uint32(p.spill))
	}
	return p.b
}

// add appends r; the batch must receive exactly the count given at creation.
// r's bytes may be reused by the caller once add returns.
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
	var keyShared, valueShared int
	if p.version >= packedVersion2 {
		if f&fKey != 0 {
			if keyShared = p.key.share(r.Key); keyShared > 0 {
				f |= fKeyShared
				p.spill += len(r.Key)
			}
		}
		if f&fValue != 0 {
			if valueShared = p.value.share(r.Value); valueShared > 0 {
				f |= fValueShared
				p.spill += len(r.Value)
			}
		}
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
		b = appendField(b, r.Key, f, fKeyShared, keyShared)
	}
	if f&fValue != 0 {
		b = appendField(b, r.Value, f, fValueShared, valueShared)
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

// PackProduced encodes source records (plugin side of Poll) in version 1.
func PackProduced(recs []*pluginpb.ProducedRecord) []byte {
	return PackProducedVersion(recs, packedVersion1)
}

// PackProducedVersion encodes source records in version (1 or 2).
func PackProducedVersion(recs []*pluginpb.ProducedRecord, version int) []byte {
	size := 0
	for _, r := range recs {
		size += 32 + len(r.Topic) + len(r.Key) + len(r.Value) + len(r.SourcePartitionJson) + len(r.SourceOffsetJson)
	}
	buf := make([]byte, 0, size+16)
	p := newProducedPacker(&buf, len(recs), version)
	for _, r := range recs {
		p.add(r)
	}
	return p.bytes()
}

// reader decodes a packed batch; the first error sticks.
type reader struct {
	b       []byte
	err     error
	version int
	prev    [2][]byte // the last non-null key (0) and value (1) read

	// Version 2: shared fields are rebuilt in the spill, chunks that are
	// never moved once written (records alias them): the first from
	// spillBuffers (returned by finish), later ones, needed only when a
	// batch rebuilds far more than it holds, fresh. spillMax is what the
	// batch declared; chunks are sized by what decoding needs, so a
	// corrupt declaration costs no more than the data it comes with.
	spill     *[]byte
	chunk     []byte
	spillUsed uint64
	spillMax  uint64
	nextChunk int

	// transient: shared fields are rebuilt in scratch instead, two
	// buffers per field used in turn (a field shares from the previous
	// one), valid until the next record is decoded.
	transient bool
	scratch   [2][2][]byte
	turn      [2]int
}

// Spill chunks: the first holds a batch that rebuilds up to this many times
// its own size (and at least firstChunkMin); each further chunk doubles.
const (
	firstChunkRatio = 16
	firstChunkMin   = 64 << 10
)

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
	r.version = int(r.byte1("version"))
	if r.err == nil && (r.version < packedVersion1 || r.version > PackedVersion) {
		r.err = fmt.Errorf("%w: version %d, this build reads %d to %d", ErrPacked, r.version, packedVersion1, PackedVersion)
	}
	n := r.uvarint("record count")
	if r.err != nil || n > uint64(len(r.b)) { // every record takes at least one byte
		r.fail("record count")
		return 0
	}
	if r.version >= packedVersion2 {
		if len(r.b) < 4 {
			r.fail("spill size")
			return 0
		}
		r.spillMax = uint64(binary.LittleEndian.Uint32(r.b))
		r.b = r.b[4:]
		if r.spillMax > maxSpill {
			r.fail("spill size")
			return 0
		}
		r.nextChunk = firstChunkRatio*len(b) + firstChunkMin
	}
	return int(n)
}

// Fields whose last one the reader keeps, to rebuild shared ones.
const (
	keyField   = 0
	valueField = 1
)

// field reads a key or value (present: its flag is set); shared says it
// was written sharing a prefix with the last one read, which it then
// becomes.
func (r *reader) field(what string, which int, shared bool) []byte {
	if !shared {
		v := nonNilBytes(r.bytes(what))
		r.prev[which] = v
		return v
	}
	if r.version < packedVersion2 {
		r.fail(what + " (shared in a version 1 batch)")
		return nil
	}
	n := r.uvarint(what)
	rest := r.bytes(what)
	prev := r.prev[which]
	switch {
	case r.err != nil:
		return nil
	case n > uint64(len(prev)):
		r.fail(what + " (shares more than the last one has)")
		return nil
	case r.spillUsed+n+uint64(len(rest)) > r.spillMax:
		r.fail("spill size")
		return nil
	}
	size := int(n) + len(rest)
	r.spillUsed += uint64(size)
	var v []byte
	if r.transient {
		t := r.turn[which]
		r.turn[which] ^= 1
		v = append(append(r.scratch[which][t][:0], prev[:n]...), rest...)
		r.scratch[which][t] = v
	} else {
		if cap(r.chunk)-len(r.chunk) < size {
			c := int(min(r.spillMax-(r.spillUsed-uint64(size)), uint64(max(size, r.nextChunk))))
			r.nextChunk = 2 * c
			if r.spill == nil {
				r.spill = spillBuffers.Get(c)
				r.chunk = (*r.spill)[:0]
			} else {
				r.chunk = make([]byte, 0, c)
			}
		}
		at := len(r.chunk)
		r.chunk = append(append(r.chunk, prev[:n]...), rest...)
		v = r.chunk[at:len(r.chunk):len(r.chunk)]
	}
	v = nonNilBytes(v)
	r.prev[which] = v
	return v
}

// finish checks the end of the batch and returns the spill's first chunk
// (nil when none, or on an error: records handed out may still alias it).
func (r *reader) finish() (*[]byte, error) {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last record", ErrPacked, len(r.b))
	}
	if r.err == nil && r.spillUsed != r.spillMax {
		r.err = fmt.Errorf("%w: spill of %d bytes declared, %d used", ErrPacked, r.spillMax, r.spillUsed)
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.spill, nil
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
// slices it holds. They alias b, or (shared fields of a version 2 batch)
// spill, a buffer EachProduced took from the spill pool: its owner hands it
// back with ReleaseSpill once nothing refers to it (nil: none).
// It returns the number of records. On a decoding error fn may have seen
// the records before the bad one: the caller discards the batch.
func EachProduced(b []byte, fn func(p *ProducedFields)) (n int, spill *[]byte, err error) {
	var r reader
	n = r.start(b)
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
			p.Key = r.field("key", keyField, f&fKeyShared != 0)
		}
		if f&fValue != 0 {
			p.Value = r.field("value", valueField, f&fValueShared != 0)
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
	if spill, err = r.finish(); err != nil {
		return 0, nil, err
	}
	return n, spill, nil
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
	_, _, err := EachProduced(b, func(f *ProducedFields) {
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

// PackConsumed encodes consumed records (worker side of Put) in version 1;
// fill is called for each index and fills the fields of that record.
func PackConsumed(n int, size int, fill func(i int, c *ConsumedFields)) []byte {
	return AppendConsumed(make([]byte, 0, size+8+n*24), packedVersion1, n, fill)
}

// AppendConsumed is PackConsumed appending to dst (a buffer the caller
// reuses from batch to batch), in version (1, or 2 for a plugin that reads
// it: see PackVersion). The keys and values fill gives must stay unchanged
// until AppendConsumed returns (version 2 compares each with the last).
func AppendConsumed(dst []byte, version, n int, fill func(i int, c *ConsumedFields)) []byte {
	b := append(dst, byte(version))
	b = binary.AppendUvarint(b, uint64(n))
	spillAt, spill := 0, 0
	if version >= packedVersion2 {
		spillAt = len(b)
		b = append(b, 0, 0, 0, 0)
	}
	var key, value sharer
	var c ConsumedFields
	prevTopic := ""
	for i := 0; i < n; i++ {
		c = ConsumedFields{HeaderKeys: c.HeaderKeys[:0], HeaderValues: c.HeaderValues[:0]}
		fill(i, &c)
		var f uint64
		if i == 0 || c.Topic != prevTopic {
			f |= fNewTopic
		}
		var keyShared, valueShared int
		if c.Key != nil {
			f |= fKey
			if version >= packedVersion2 {
				if keyShared = key.share(c.Key); keyShared > 0 {
					f |= fKeyShared
					spill += len(c.Key)
				}
			}
		}
		if c.Value != nil {
			f |= fValue
			if version >= packedVersion2 {
				if valueShared = value.share(c.Value); valueShared > 0 {
					f |= fValueShared
					spill += len(c.Value)
				}
			}
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
			b = appendField(b, c.Key, f, fKeyShared, keyShared)
		}
		if f&fValue != 0 {
			b = appendField(b, c.Value, f, fValueShared, valueShared)
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
	if version >= packedVersion2 {
		binary.LittleEndian.PutUint32(b[spillAt:], uint32(spill))
	}
	return b
}

// EachConsumed decodes a packed batch of consumed records (plugin side of
// Put), calling fn with each in order until fn returns an error; fn must
// not keep c, only the byte slices it holds (a nil key, value or header
// value is null). They alias b, or (shared fields of a version 2 batch)
// spill, a buffer EachConsumed took from the spill pool, returned when all
// records were decoded: its owner hands it back with ReleaseSpill once
// nothing refers to it (nil: none). It returns the number of records. On a
// decoding error fn may have seen the records before the bad one.
func EachConsumed(b []byte, fn func(i int, c *ConsumedFields) error) (n int, spill *[]byte, err error) {
	return eachConsumed(b, false, fn)
}

// eachConsumed is EachConsumed; with transient, shared fields are rebuilt
// in scratch buffers instead of the spill, and are valid only until fn
// returns (for a caller that copies what it keeps).
func eachConsumed(b []byte, transient bool, fn func(i int, c *ConsumedFields) error) (n int, spill *[]byte, err error) {
	r := reader{transient: transient}
	n = r.start(b)
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
			c.Key = r.field("key", keyField, f&fKeyShared != 0)
		}
		if f&fValue != 0 {
			c.Value = r.field("value", valueField, f&fValueShared != 0)
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
				return i, nil, err
			}
		}
	}
	if spill, err = r.finish(); err != nil {
		return 0, nil, err
	}
	return n, spill, nil
}

// UnpackConsumed decodes consumed records into protobuf messages (tests;
// the plugin's Put uses EachConsumed).
func UnpackConsumed(b []byte) ([]*pluginpb.ConsumedRecord, error) {
	out := []*pluginpb.ConsumedRecord{}
	_, _, err := EachConsumed(b, func(_ int, f *ConsumedFields) error {
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
