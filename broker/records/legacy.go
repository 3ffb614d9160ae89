package records

// Legacy message sets, magic 0 (Kafka 0.8-0.9) and magic 1 (0.10), as old
// producers send them (Produce v0-v2) and old consumers expect them (Fetch
// v0-v3). This file's format version 1. A message set is messages laid end to
// end, without a count; each is (big-endian):
//
//	offset      int64
//	size        int32   bytes after this field
//	crc         int32   CRC-32 (IEEE) of the bytes after this field
//	magic       int8    0 or 1
//	attributes  int8    bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4),
//	                    bit 3 (magic 1 only) timestamp type: 1 = LogAppendTime
//	timestamp   int64   magic 1 only
//	key         int32 length (-1 = null), bytes
//	value       int32 length (-1 = null), bytes
//
// A compressed message (a "wrapper") has a codec in its attributes and, as
// value, a whole compressed message set of uncompressed inner messages of the
// same magic. In magic 1 the inner offsets are relative (0..n-1) and the
// wrapper carries the absolute offset of the last inner message; with a
// LogAppendTime wrapper, the wrapper's timestamp is every inner message's.
// Messages are decoded and encoded with kmsg.MessageV0 and kmsg.MessageV1.
//
// Choices of this package:
//   - Produce (SplitProduce): a message set is converted into ONE v2 batch,
//     re-compressed with the codec of the set's last compressed message (as
//     Kafka picks the source codec), uncompressed if it has none. Offset
//     deltas are 0..n-1 in order (inner offsets are ignored, as Kafka
//     reassigns them); magic 0 messages get timestamp -1 (NO_TIMESTAMP), as in
//     Kafka; producer id, epoch and sequence are -1; the batch is CreateTime.
//   - Fetch (DownConvert): every record becomes one UNCOMPRESSED message with
//     its absolute offset, whatever the batch's codec (so zstd batches are
//     readable too, and magic 0 readers never meet LZ4 frame checksums);
//     headers are dropped; magic 1 messages carry CreateTime timestamps, or
//     the batch's MaxTimestamp with the LogAppendTime bit for LogAppendTime
//     batches.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Legacy message sizes: the fixed part of a message after its size field.
const (
	legacyMinSizeV0              = 4 + 1 + 1 + 4 + 4   // crc, magic, attributes, key and value lengths
	legacyMinSizeV1              = legacyMinSizeV0 + 8 // + timestamp
	legacyAttrLogAppendTime int8 = 0x08                // magic 1 timestamp type bit
	legacyCodecMask         int8 = 0x07
)

// legacyMessage is one decoded magic 0 or 1 message.
type legacyMessage struct {
	magic     int8
	attrs     int8
	timestamp int64
	key       []byte
	value     []byte
}

// parseLegacy checks and decodes the legacy message at the start of b (which
// must hold at least LengthOffset+5 bytes) and returns it with its total size.
// It verifies the size, the CRC and that the fields fill the message exactly.
func parseLegacy(b []byte) (legacyMessage, int, error) {
	var m legacyMessage
	size := int32(binary.BigEndian.Uint32(b[8:]))
	magic := int8(b[16])
	minSize := int32(legacyMinSizeV0)
	if magic == 1 {
		minSize = legacyMinSizeV1
	}
	if size < minSize {
		return m, 0, fmt.Errorf("%w: magic %d message size %d", ErrCorrupt, magic, size)
	}
	total := LengthOffset + int(size)
	if total > len(b) {
		return m, 0, fmt.Errorf("%w: message of %d bytes truncated at %d", ErrCorrupt, total, len(b))
	}
	b = b[:total]
	if got, want := crc32.ChecksumIEEE(b[16:]), binary.BigEndian.Uint32(b[12:]); got != want {
		return m, 0, fmt.Errorf("%w: message crc %08x, computed %08x", ErrCorrupt, want, got)
	}
	var err error
	switch magic {
	case 0:
		var v kmsg.MessageV0
		if err = v.ReadFrom(b); err == nil {
			m = legacyMessage{magic: 0, attrs: v.Attributes, timestamp: -1, key: v.Key, value: v.Value}
		}
	case 1:
		var v kmsg.MessageV1
		if err = v.ReadFrom(b); err == nil {
			m = legacyMessage{magic: 1, attrs: v.Attributes, timestamp: v.Timestamp, key: v.Key, value: v.Value}
		}
	default:
		return m, 0, fmt.Errorf("%w: magic %d in a legacy message set", ErrCorrupt, magic)
	}
	if err != nil {
		return m, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if got := int(minSize) + len(m.key) + len(m.value); got != int(size) {
		return m, 0, fmt.Errorf("%w: message size %d but fields take %d", ErrCorrupt, size, got)
	}
	return m, total, nil
}

// convertLegacy converts the legacy message set blob (whole messages only)
// into one v2 batch; see the file comment. Each top-level message larger
// than maxMessageBytes (when > 0) is ErrTooLarge.
func (c *Codecs) convertLegacy(blob []byte, maxMessageBytes int) (Batch, error) {
	var (
		recs    []Record
		codec   = CompressionNone
		scratch []*[]byte // decompressed inner sets, aliased by recs until Build
	)
	defer func() {
		for _, b := range scratch {
			c.putBuf(b)
		}
	}()
	add := func(m legacyMessage) {
		recs = append(recs, Record{OffsetDelta: int32(len(recs)), TimestampDelta: m.timestamp, Key: m.key, Value: m.value})
	}
	for len(blob) > 0 {
		if len(blob) < LengthOffset+5 {
			return Batch{}, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(blob))
		}
		m, n, err := parseLegacy(blob)
		if err != nil {
			return Batch{}, err
		}
		if maxMessageBytes > 0 && n > maxMessageBytes {
			return Batch{}, fmt.Errorf("%w: message of %d bytes, max %d", ErrTooLarge, n, maxMessageBytes)
		}
		blob = blob[n:]
		mc := Compression(m.attrs & legacyCodecMask)
		if mc == CompressionNone {
			add(m)
			continue
		}
		switch mc {
		case CompressionGzip, CompressionSnappy, CompressionLZ4:
		case CompressionZstd:
			return Batch{}, fmt.Errorf("%w: %w: zstd in a magic %d message", ErrInvalid, ErrUnsupportedCompression, m.magic)
		default:
			return Batch{}, fmt.Errorf("%w: %w: %v", ErrCorrupt, ErrUnsupportedCompression, mc)
		}
		if m.value == nil {
			return Batch{}, fmt.Errorf("%w: compressed message with a null value", ErrCorrupt)
		}
		codec = mc
		buf := c.getBuf()
		scratch = append(scratch, buf)
		inner, err := c.Decompress(*buf, mc, m.value)
		*buf = inner
		if err != nil {
			return Batch{}, err
		}
		for len(inner) > 0 {
			if len(inner) < LengthOffset+5 {
				return Batch{}, fmt.Errorf("%w: %d trailing bytes in a compressed message set", ErrCorrupt, len(inner))
			}
			im, in, err := parseLegacy(inner)
			if err != nil {
				return Batch{}, err
			}
			inner = inner[in:]
			if im.magic != m.magic {
				return Batch{}, fmt.Errorf("%w: inner magic %d in a magic %d wrapper", ErrInvalid, im.magic, m.magic)
			}
			if im.attrs&legacyCodecMask != 0 {
				return Batch{}, fmt.Errorf("%w: compressed message inside a compressed message", ErrInvalid)
			}
			if m.magic == 1 && m.attrs&legacyAttrLogAppendTime != 0 {
				im.timestamp = m.timestamp
			}
			add(im)
		}
	}
	if len(recs) == 0 {
		return Batch{}, fmt.Errorf("%w: message set without records", ErrInvalid)
	}
	if len(recs) > 1<<31-1 {
		return Batch{}, fmt.Errorf("%w: %d records in one message set", ErrTooLarge, len(recs))
	}
	base := recs[0].TimestampDelta // absolute timestamps so far
	for i := range recs {
		recs[i].TimestampDelta -= base
	}
	raw, err := c.Build(BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           int16(codec),
		FirstTimestamp:       base,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}, recs)
	if err != nil {
		return Batch{}, err
	}
	h, err := ParseHeader(raw)
	if err != nil {
		return Batch{}, err
	}
	return Batch{Header: h, Raw: raw}, nil
}

// DownConvert turns chunk, whole v2 batches as a log read returns them, into
// a message set of the given magic (0 or 1, else ErrInvalid) for Fetch v0-v3
// clients; see the file comment for the choices made. Control batches are
// dropped, offsets are absolute (the batch's BaseOffset plus the record's
// OffsetDelta), magic 0 drops timestamps, and a partial batch at the end of
// chunk is ignored. CRCs are not verified (the log did at append and
// recovery). A chunk of only control batches gives an empty, non-nil result.
func (c *Codecs) DownConvert(chunk []byte, magic int8) ([]byte, error) {
	if magic != 0 && magic != 1 {
		return nil, fmt.Errorf("%w: down-conversion to magic %d", ErrInvalid, magic)
	}
	out := make([]byte, 0, len(chunk)+len(chunk)/4)
	var recs []Record
	err := ForEachBatch(chunk, func(b Batch) error {
		if b.Header.IsControl() {
			return nil
		}
		var err error
		_, recs, err = c.AppendRecords(recs[:0], b.Raw)
		if err != nil {
			return err
		}
		logAppend := b.Header.Attributes&AttrLogAppendTime != 0
		for i := range recs {
			r := &recs[i]
			offset := b.Header.BaseOffset + int64(r.OffsetDelta)
			start := len(out)
			if magic == 0 {
				m := kmsg.MessageV0{
					Offset:      offset,
					MessageSize: int32(legacyMinSizeV0 + len(r.Key) + len(r.Value)),
					Key:         r.Key,
					Value:       r.Value,
				}
				out = m.AppendTo(out)
			} else {
				m := kmsg.MessageV1{
					Offset:      offset,
					MessageSize: int32(legacyMinSizeV1 + len(r.Key) + len(r.Value)),
					Magic:       1,
					Timestamp:   b.Header.FirstTimestamp + r.TimestampDelta,
					Key:         r.Key,
					Value:       r.Value,
				}
				if logAppend {
					m.Attributes = legacyAttrLogAppendTime
					m.Timestamp = b.Header.MaxTimestamp
				}
				out = m.AppendTo(out)
			}
			binary.BigEndian.PutUint32(out[start+12:], crc32.ChecksumIEEE(out[start+16:]))
		}
		clear(recs) // drop references to this batch's data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
