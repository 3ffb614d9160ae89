// Package records understands the bytes of Kafka record batches: the v2 batch
// header, CRC validation, the legacy message sets (magic 0 and 1) that old
// producers send and old fetchers expect, compression codecs, and the decoding
// and re-encoding of the records inside a batch (for compaction and indexes).
//
// Record batch v2 header (all integers big-endian), as stored on disk and sent
// on the wire unchanged:
//
//	offset  size  field
//	0       8     baseOffset            (assigned by the broker; not covered by the CRC)
//	8       4     batchLength           (bytes after this field)
//	12      4     partitionLeaderEpoch  (set by the broker; not covered by the CRC)
//	16      1     magic (2)
//	17      4     crc                   (CRC-32C of bytes 21..end)
//	21      2     attributes            (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
//	23      4     lastOffsetDelta
//	27      8     baseTimestamp
//	35      8     maxTimestamp
//	43      8     producerId
//	51      2     producerEpoch
//	53      4     baseSequence
//	57      4     recordCount
//	61      ...   records (compressed as a whole when the codec is not none)
package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a v2 record batch header.
const HeaderSize = 61

// LengthOffset is the number of bytes before a batch's length field ends;
// a batch occupies LengthOffset + batchLength bytes. 12 for every magic
// (offset int64 + length/size int32).
const LengthOffset = 12

// Errors returned by the parsers. The broker maps them to Kafka error codes:
// ErrCorrupt -> CORRUPT_MESSAGE, ErrTooLarge -> MESSAGE_TOO_LARGE,
// ErrInvalid -> INVALID_RECORD.
var (
	ErrCorrupt  = errors.New("records: corrupt batch")
	ErrTooLarge = errors.New("records: batch too large")
	ErrInvalid  = errors.New("records: invalid batch")
	// ErrShort means the buffer ends before the batch does (a torn tail).
	ErrShort = errors.New("records: short buffer")
)

// Compression is a batch's codec, the low three bits of its attributes.
type Compression int8

// Codecs, as numbered by Kafka.
const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLZ4    Compression = 3
	CompressionZstd   Compression = 4
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Attribute bits.
const (
	AttrCompressionMask int16 = 0x07
	AttrLogAppendTime   int16 = 0x08
	AttrTransactional   int16 = 0x10
	AttrControl         int16 = 0x20
)

// BatchHeader is the decoded fixed-size header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the number of bytes the whole batch occupies.
func (h BatchHeader) Size() int { return LengthOffset + int(h.Length) }

// LastOffset is the offset of the batch's last record slot.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression returns the batch's codec.
func (h BatchHeader) Compression() Compression {
	return Compression(h.Attributes & AttrCompressionMask)
}

// IsTransactional reports the transactional attribute bit.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports the control attribute bit.
func (h BatchHeader) IsControl() bool { return h.Attributes&AttrControl != 0 }

// LastSequence is the sequence number of the batch's last record, wrapping
// at MaxInt32 as Kafka does.
func (h BatchHeader) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 0x7fffffff {
		s -= 0x80000000
	}
	return int32(s)
}

// ParseHeader decodes the header of the v2 batch at the start of b. It checks
// only what the header itself can tell: magic 2, a length that covers the
// header, and that b holds the whole batch (ErrShort otherwise). It does not
// check the CRC (see VerifyCRC).
func ParseHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < LengthOffset+5 {
		return h, ErrShort
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[0:]))
	h.Length = int32(binary.BigEndian.Uint32(b[8:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[12:]))
	h.Magic = int8(b[16])
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, want 2", ErrInvalid, h.Magic)
	}
	if h.Length < HeaderSize-LengthOffset {
		return h, fmt.Errorf("%w: batch length %d shorter than a header", ErrCorrupt, h.Length)
	}
	if len(b) < HeaderSize {
		return h, ErrShort
	}
	h.CRC = binary.BigEndian.Uint32(b[17:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[21:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[23:]))
	h.FirstTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[51:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[53:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[57:]))
	if len(b) < h.Size() {
		return h, ErrShort
	}
	return h, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// VerifyCRC checks the CRC-32C of the whole batch b (b[:h.Size()]).
func VerifyCRC(b []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if got := crc32.Checksum(b[21:h.Size()], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: crc %08x, computed %08x", ErrCorrupt, h.CRC, got)
	}
	return nil
}

// SetCRC recomputes and stores the CRC of the batch b after its covered bytes
// (attributes onward) changed.
func SetCRC(b []byte) {
	n := LengthOffset + int(int32(binary.BigEndian.Uint32(b[8:])))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:n], castagnoli))
}

// SetBaseOffset stores the base offset in place. The CRC does not cover it.
func SetBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[0:], uint64(off)) }

// SetPartitionLeaderEpoch stores the leader epoch in place. The CRC does not cover it.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
}

// SetLogAppendTime stores the max timestamp and the LogAppendTime attribute,
// then recomputes the CRC (used for message.timestamp.type=LogAppendTime).
func SetLogAppendTime(b []byte, ts int64) {
	attrs := int16(binary.BigEndian.Uint16(b[21:])) | AttrLogAppendTime
	binary.BigEndian.PutUint16(b[21:], uint16(attrs))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	SetCRC(b)
}
