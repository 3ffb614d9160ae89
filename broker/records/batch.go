package records

// Records inside a v2 batch (format: Kafka's record v2, magic 2; this file's
// format version 1). After the 61-byte header (see header.go) come
// recordCount records, compressed as a whole when the codec is not none:
//
//	length          varint   bytes of the record after this field
//	attributes      int8     unused, written as 0
//	timestampDelta  varlong  from the batch's baseTimestamp
//	offsetDelta     varint   from the batch's baseOffset
//	keyLength       varint   -1 = null key
//	key             bytes
//	valueLength     varint   -1 = null value (a tombstone)
//	value           bytes
//	headerCount     varint
//	headers         headerCount x (keyLength varint >= 0, key, valueLength varint (-1 = null), value)
//
// varint/varlong are zigzag-encoded base-128 varints of at most 5/10 bytes.
// Records are decoded and encoded with kmsg.Record; the scanner below only
// checks structure, without allocating, for the produce path.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Batch is one v2 record batch.
type Batch struct {
	Header BatchHeader
	Raw    []byte // exactly Header.Size() bytes
}

// Record is one decoded record of a batch. A nil Key is a null key; a nil
// Value is a null value (a tombstone); an empty non-nil slice is an empty
// key or value.
type Record struct {
	OffsetDelta    int32
	TimestampDelta int64
	Key            []byte
	Value          []byte
	Headers        []kmsg.Header
}

// ForEachBatch calls fn for each whole v2 batch at the start of chunk, in
// order, and stops cleanly (returning nil) at a partial batch at the end,
// such as the torn tail of a segment or the cut-off end of a read. It checks
// headers only (ParseHeader), not CRCs (see VerifyCRC). It returns the first
// error of ParseHeader other than ErrShort (ErrCorrupt, or ErrInvalid for a
// magic other than 2), or the first error of fn, unchanged, which lets fn stop
// the iteration early with an error of its own.
func ForEachBatch(chunk []byte, fn func(Batch) error) error {
	for len(chunk) > 0 {
		h, err := ParseHeader(chunk)
		if errors.Is(err, ErrShort) {
			return nil
		}
		if err != nil {
			return err
		}
		n := h.Size()
		if err := fn(Batch{Header: h, Raw: chunk[:n:n]}); err != nil {
			return err
		}
		chunk = chunk[n:]
	}
	return nil
}

// Records decodes the records of the whole v2 batch b, decompressing as
// needed; control batches decode like any other (their keys and values are
// the control record encodings). It does not verify the CRC (see VerifyCRC).
//
// For an uncompressed batch, the returned Keys and Values alias b, so b must
// stay unchanged while they are in use; for a compressed batch they alias a
// fresh buffer owned by the records. Header keys are copied.
//
// Errors: ErrCorrupt (joined with ErrShort if b is shorter than the batch)
// for a malformed batch or record, ErrInvalid for a magic other than 2,
// ErrTooLarge when the records decompress past MaxDecompressedBytes.
func (c *Codecs) Records(b []byte) (BatchHeader, []Record, error) {
	return c.AppendRecords(nil, b)
}

// AppendRecords is Records appending to dst, for callers that reuse a slice.
func (c *Codecs) AppendRecords(dst []Record, b []byte) (BatchHeader, []Record, error) {
	h, err := ParseHeader(b)
	if err != nil {
		if errors.Is(err, ErrShort) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return h, dst, err
	}
	payload := b[HeaderSize:h.Size()]
	if codec := h.Compression(); codec != CompressionNone {
		buf := c.getBuf()
		out, err := c.Decompress(*buf, codec, payload)
		*buf = out[:0]
		if err != nil {
			c.putBuf(buf)
			return h, dst, err
		}
		payload = append([]byte(nil), out...)
		c.putBuf(buf)
	}
	if h.NumRecords < 0 {
		return h, dst, fmt.Errorf("%w: record count %d", ErrCorrupt, h.NumRecords)
	}
	// A record takes at least 7 bytes: never trust the count for the
	// allocation.
	dst = growRecords(dst, min(int(h.NumRecords), len(payload)/7))
	for i := int32(0); i < h.NumRecords; i++ {
		n, _, err := scanRecord(payload)
		if err != nil {
			return h, dst, fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, err)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(payload[:n]); err != nil {
			return h, dst, fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, err)
		}
		dst = append(dst, Record{
			OffsetDelta:    kr.OffsetDelta,
			TimestampDelta: kr.TimestampDelta64,
			Key:            kr.Key,
			Value:          kr.Value,
			Headers:        kr.Headers,
		})
		payload = payload[n:]
	}
	if len(payload) != 0 {
		return h, dst, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(payload), h.NumRecords)
	}
	return h, dst, nil
}

func growRecords(s []Record, n int) []Record {
	if n > cap(s)-len(s) {
		ns := make([]Record, len(s), len(s)+n)
		copy(ns, s)
		return ns
	}
	return s
}

// Build encodes a v2 batch from the header template h and recs, compressed
// with h's codec (h.Attributes), and returns it with its CRC set. From h it
// takes BaseOffset, PartitionLeaderEpoch, Attributes, FirstTimestamp (the base
// the records' TimestampDeltas are relative to), ProducerID, ProducerEpoch and
// BaseSequence; it computes Length, Magic (2), CRC and NumRecords
// (len(recs)), and:
//
//   - LastOffsetDelta = the last record's OffsetDelta, unless h.LastOffsetDelta
//     is larger, in which case it is kept: log compaction passes the original
//     header so that a batch keeps its offset span even when its last
//     records were removed (offsets must never be reused). A caller building
//     a fresh batch passes LastOffsetDelta 0 (or -1 for an empty batch).
//   - MaxTimestamp = the largest record timestamp (FirstTimestamp +
//     TimestampDelta), except with the LogAppendTime attribute, or when recs
//     is empty, where h.MaxTimestamp is kept.
//
// Record attributes are written as 0. OffsetDeltas must be >= 0 and strictly
// increasing (ErrInvalid otherwise); a record's encoded size must fit in an
// int32. Empty batches (no records) are allowed: compaction keeps them when a
// producer's last batch must survive.
func (c *Codecs) Build(h BatchHeader, recs []Record) ([]byte, error) {
	codec := h.Compression()
	if codec > CompressionZstd {
		return nil, fmt.Errorf("%w: %w: %v", ErrInvalid, ErrUnsupportedCompression, codec)
	}
	last := int32(-1)
	maxTS := h.MaxTimestamp
	for i := range recs {
		r := &recs[i]
		if r.OffsetDelta <= last {
			return nil, fmt.Errorf("%w: record %d has offset delta %d after %d", ErrInvalid, i, r.OffsetDelta, last)
		}
		last = r.OffsetDelta
		if ts := h.FirstTimestamp + r.TimestampDelta; i == 0 || ts > maxTS {
			maxTS = ts
		}
	}
	if len(recs) == 0 || h.Attributes&AttrLogAppendTime != 0 {
		maxTS = h.MaxTimestamp
	}
	lastDelta := h.LastOffsetDelta
	if len(recs) > 0 && last > lastDelta {
		lastDelta = last
	}

	var out []byte
	if codec == CompressionNone {
		out = make([]byte, HeaderSize, HeaderSize+estimateRecords(recs))
		var err error
		if out, err = appendRecords(out, recs); err != nil {
			return nil, err
		}
	} else {
		buf := c.getBuf()
		raw, err := appendRecords(*buf, recs)
		*buf = raw[:0]
		if err != nil {
			c.putBuf(buf)
			return nil, err
		}
		out = make([]byte, HeaderSize, HeaderSize+len(raw)/2+64)
		out, err = c.Compress(out, codec, raw)
		c.putBuf(buf)
		if err != nil {
			return nil, err
		}
	}
	if len(out)-LengthOffset > 1<<31-1 {
		return nil, fmt.Errorf("%w: batch of %d bytes", ErrTooLarge, len(out))
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          h.BaseOffset,
		Length:               int32(len(out) - LengthOffset),
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           h.Attributes,
		LastOffsetDelta:      lastDelta,
		FirstTimestamp:       h.FirstTimestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		FirstSequence:        h.BaseSequence,
		NumRecords:           int32(len(recs)),
	}
	rb.AppendTo(out[:0]) // overwrites the header in place: Records is empty
	SetCRC(out)
	return out, nil
}

// estimateRecords is a capacity hint for the encoded size of recs.
func estimateRecords(recs []Record) int {
	n := 0
	for i := range recs {
		n += 16 + len(recs[i].Key) + len(recs[i].Value)
		for _, hd := range recs[i].Headers {
			n += 10 + len(hd.Key) + len(hd.Value)
		}
	}
	return n
}

// appendRecords appends the encodings of recs to dst with kmsg.Record.
func appendRecords(dst []byte, recs []Record) ([]byte, error) {
	for i := range recs {
		r := &recs[i]
		size := 1 + varlongLen(r.TimestampDelta) + varintLen(r.OffsetDelta) +
			bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int32(len(r.Headers)))
		for _, hd := range r.Headers {
			size += varintLen(int32(len(hd.Key))) + len(hd.Key) + bytesLen(hd.Value)
		}
		if size > 1<<31-1-binary.MaxVarintLen32 {
			return dst, fmt.Errorf("%w: record %d of %d bytes", ErrTooLarge, i, size)
		}
		kr := kmsg.Record{
			Length:           int32(size),
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      r.OffsetDelta,
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		dst = kr.AppendTo(dst)
	}
	return dst, nil
}

// ----- structural scanning (no allocation) -----

var (
	errVarint    = errors.New("bad varint")
	errTruncated = errors.New("truncated record")
	errTrailing  = errors.New("bytes after the record's fields")
	errNegative  = errors.New("negative length")
)

// scanRecord checks the structure of the record at the start of p (length
// prefix included) and returns its total size and its offset delta. It is at
// least as strict as kmsg.Record's decoder, so a record it accepts decodes.
func scanRecord(p []byte) (size int, offsetDelta int32, err error) {
	l, n := uvarint32(p)
	if n <= 0 {
		return 0, 0, errVarint
	}
	length := zigzag32(l)
	if length < 0 {
		return 0, 0, errNegative
	}
	if int(length) > len(p)-n {
		return 0, 0, errTruncated
	}
	size = n + int(length)
	body := p[n:size]
	if len(body) < 1 {
		return 0, 0, errTruncated
	}
	body = body[1:] // attributes
	if _, n = uvarint64(body); n <= 0 {
		return 0, 0, errVarint
	}
	body = body[n:]
	od, n := uvarint32(body)
	if n <= 0 {
		return 0, 0, errVarint
	}
	body = body[n:]
	for range 2 { // key, value
		if body, err = skipBytes(body, true); err != nil {
			return 0, 0, err
		}
	}
	hc, n := uvarint32(body)
	if n <= 0 {
		return 0, 0, errVarint
	}
	body = body[n:]
	count := zigzag32(hc)
	if count < 0 {
		return 0, 0, errNegative
	}
	for range count {
		if body, err = skipBytes(body, false); err != nil {
			return 0, 0, err
		}
		if body, err = skipBytes(body, true); err != nil {
			return 0, 0, err
		}
	}
	if len(body) != 0 {
		return 0, 0, errTrailing
	}
	return size, zigzag32(od), nil
}

// skipBytes skips a varint-length-prefixed byte string; a negative length is
// a null, allowed only if nullable.
func skipBytes(p []byte, nullable bool) ([]byte, error) {
	u, n := uvarint32(p)
	if n <= 0 {
		return nil, errVarint
	}
	p = p[n:]
	l := zigzag32(u)
	if l < 0 {
		if !nullable {
			return nil, errNegative
		}
		return p, nil
	}
	if int(l) > len(p) {
		return nil, errTruncated
	}
	return p[l:], nil
}

// scanRecords checks the structure of count records filling p exactly. With
// sequential, the offset deltas must be 0, 1, 2... (ErrInvalid otherwise),
// as Kafka requires of produced batches; other failures are ErrCorrupt.
func scanRecords(p []byte, count int32, sequential bool) error {
	for i := int32(0); i < count; i++ {
		n, od, err := scanRecord(p)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, err)
		}
		if sequential && od != i {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalid, i, od)
		}
		p = p[n:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(p), count)
	}
	return nil
}

// uvarint32 decodes a base-128 varint of at most 5 bytes whose value fits in
// 32 bits, exactly as kmsg does; n <= 0 means malformed or truncated.
func uvarint32(p []byte) (uint32, int) {
	var x uint32
	for i := 0; i < 5; i++ {
		if i >= len(p) {
			return 0, 0
		}
		b := p[i]
		if i == 4 {
			if b > 0x0f {
				return 0, -1
			}
			return x | uint32(b)<<28, 5
		}
		x |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, i + 1
		}
	}
	return 0, -1 // unreachable
}

// uvarint64 decodes a base-128 varint of at most 10 bytes whose value fits in
// 64 bits, exactly as kmsg does; n <= 0 means malformed or truncated.
func uvarint64(p []byte) (uint64, int) {
	var x uint64
	for i := 0; i < 10; i++ {
		if i >= len(p) {
			return 0, 0
		}
		b := p[i]
		if i == 9 {
			if b > 0x01 {
				return 0, -1
			}
			return x | uint64(b)<<63, 10
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, i + 1
		}
	}
	return 0, -1 // unreachable
}

func zigzag32(u uint32) int32 { return int32(u>>1) ^ -int32(u&1) }

func varintLen(v int32) int {
	u := uint32(v<<1) ^ uint32(v>>31)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func varlongLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// bytesLen is the encoded size of a nullable varint-prefixed byte string.
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int32(len(b))) + len(b)
}
