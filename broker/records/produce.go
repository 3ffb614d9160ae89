package records

import (
	"encoding/binary"
	"fmt"
)

// entrySize is the total size of the batch or legacy message at the start of
// b (len(b) >= LengthOffset), from its length field; negative when the field
// is negative.
func entrySize(b []byte) int64 {
	return int64(LengthOffset) + int64(int32(binary.BigEndian.Uint32(b[8:])))
}

// SplitProduce validates the records blob of one partition of a Produce
// request and returns its batches, ready to be given offsets and appended.
// The returned Raw slices of v2 batches alias blob; converted legacy batches
// are fresh allocations.
//
// The magic of the first entry (byte 16, the same place in every format)
// decides how the blob is read; mixing v2 batches with legacy messages in one
// blob is ErrInvalid (Kafka converts a blob as one format). A nil or empty
// blob returns no batches and no error: the broker decides whether that is
// allowed for the request version (Produce v3+ requires exactly one batch,
// which the broker also checks, since it knows the version).
//
// Magic 2: every batch must be whole (a truncated batch or trailing bytes are
// ErrCorrupt), no larger than maxMessageBytes when that is > 0 (ErrTooLarge),
// and have a correct CRC-32C (ErrCorrupt). It must have NumRecords > 0 and
// LastOffsetDelta == NumRecords-1, must not be a control batch (clients may
// not write those), a transactional batch must have a producer id, and a
// batch with a producer id a base sequence >= 0 (all ErrInvalid). Its records
// are then scanned: their structure must be sound and fill the batch exactly
// (ErrCorrupt), and their offset deltas must be 0..n-1 (ErrInvalid).
// Compressed batches are decompressed into a pooled buffer for that scan,
// unless c.ShallowProduceValidation is set; an unknown codec is ErrCorrupt
// (joined with ErrUnsupportedCompression) and records decompressing past
// MaxDecompressedBytes are ErrTooLarge.
//
// Magic 0 and 1 (legacy message sets, in any mix of the two): every message
// and every inner message of a compressed wrapper is checked (size, CRC-32,
// fields; ErrCorrupt), each top-level message must fit maxMessageBytes
// (ErrTooLarge), inner messages must be uncompressed and of the wrapper's
// magic (ErrInvalid), zstd is ErrInvalid joined with
// ErrUnsupportedCompression. The whole set becomes one v2 batch: see the
// comment at the top of legacy.go for offsets, timestamps and codec.
//
// Any other magic is ErrCorrupt.
func (c *Codecs) SplitProduce(blob []byte, maxMessageBytes int) ([]Batch, error) {
	if len(blob) == 0 {
		return nil, nil
	}
	if len(blob) < LengthOffset+5 {
		return nil, fmt.Errorf("%w: %d bytes of records", ErrCorrupt, len(blob))
	}
	switch magic := int8(blob[16]); magic {
	case 2:
	case 0, 1:
		for rest := blob; len(rest) > 0; {
			// Check that no v2 batch follows before converting.
			if len(rest) < LengthOffset+5 {
				return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
			}
			size := entrySize(rest)
			if m := int8(rest[16]); m == 2 && size >= HeaderSize && size <= int64(len(rest)) {
				return nil, fmt.Errorf("%w: v2 batch after a magic %d message", ErrInvalid, magic)
			}
			if size < LengthOffset || size > int64(len(rest)) {
				break // convertLegacy reports it
			}
			rest = rest[size:]
		}
		b, err := c.convertLegacy(blob, maxMessageBytes)
		if err != nil {
			return nil, err
		}
		return []Batch{b}, nil
	default:
		return nil, fmt.Errorf("%w: magic %d", ErrCorrupt, magic)
	}

	n := 1 // count the batches first: one allocation for the result
	for rest := blob; len(rest) >= LengthOffset; n++ {
		size := entrySize(rest)
		if size < HeaderSize || size > int64(len(rest)) {
			break
		}
		rest = rest[size:]
	}
	batches := make([]Batch, 0, n)
	for len(blob) > 0 {
		if len(blob) < LengthOffset+5 {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(blob))
		}
		if m := int8(blob[16]); m != 2 {
			if (m == 0 || m == 1) && entrySize(blob) >= LengthOffset+legacyMinSizeV0 && entrySize(blob) <= int64(len(blob)) {
				return nil, fmt.Errorf("%w: magic %d message after a v2 batch", ErrInvalid, m)
			}
			return nil, fmt.Errorf("%w: %d bytes of garbage after a v2 batch", ErrCorrupt, len(blob))
		}
		h, err := ParseHeader(blob)
		if err != nil {
			// ErrShort (truncated) or a short length: both corrupt.
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		size := h.Size()
		if maxMessageBytes > 0 && size > maxMessageBytes {
			return nil, fmt.Errorf("%w: batch of %d bytes, max %d", ErrTooLarge, size, maxMessageBytes)
		}
		raw := blob[:size:size]
		if err := VerifyCRC(raw); err != nil {
			return nil, err
		}
		if err := c.checkProduced(h, raw); err != nil {
			return nil, err
		}
		batches = append(batches, Batch{Header: h, Raw: raw})
		blob = blob[size:]
	}
	return batches, nil
}

// checkProduced applies the rules of SplitProduce for a v2 batch beyond its
// header and CRC.
func (c *Codecs) checkProduced(h BatchHeader, raw []byte) error {
	switch {
	case h.NumRecords <= 0:
		return fmt.Errorf("%w: batch with %d records", ErrInvalid, h.NumRecords)
	case h.LastOffsetDelta != h.NumRecords-1:
		return fmt.Errorf("%w: last offset delta %d for %d records", ErrInvalid, h.LastOffsetDelta, h.NumRecords)
	case h.IsControl():
		return fmt.Errorf("%w: clients may not write control batches", ErrInvalid)
	case h.IsTransactional() && h.ProducerID < 0:
		return fmt.Errorf("%w: transactional batch without a producer id", ErrInvalid)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return fmt.Errorf("%w: producer id %d with base sequence %d", ErrInvalid, h.ProducerID, h.BaseSequence)
	}
	payload := raw[HeaderSize:]
	codec := h.Compression()
	if codec == CompressionNone {
		return scanRecords(payload, h.NumRecords, true)
	}
	if codec > CompressionZstd {
		return fmt.Errorf("%w: %w: %v", ErrCorrupt, ErrUnsupportedCompression, codec)
	}
	if c.ShallowProduceValidation {
		return nil
	}
	buf := c.getBuf()
	defer c.putBuf(buf)
	out, err := c.Decompress(*buf, codec, payload)
	*buf = out[:0]
	if err != nil {
		return err
	}
	return scanRecords(out, h.NumRecords, true)
}
