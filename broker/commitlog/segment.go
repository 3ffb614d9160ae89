package commitlog

// Partition directory layout, format version 1.
//
//	<base>.log          record batches (Kafka v2, magic 2) exactly as received, back to
//	                    back, with broker-assigned base offsets and partition leader
//	                    epoch 0; no file header. <base> is the base offset of the
//	                    segment's first batch, zero-padded to 20 digits
//	                    (00000000000000000000.log). Offsets increase strictly from
//	                    batch to batch; after compaction they may have gaps, and a batch
//	                    keeps its original base offset and lastOffsetDelta even when
//	                    records were removed from it. A segment is at most 4 GiB
//	                    (positions are uint32 in the index).
//	<base>.index        sparse offset index (see index.go)
//	<base>.timeindex    time index (see index.go)
//	<base>.snapshot     idempotent-producer state as of offset <base> (see producers.go)
//	checkpoint          log start offset, recovery point and cleaner offset (see checkpoint.go)
//	clean-shutdown      present only while the log is closed after a clean Close
//	*.cleaned           compaction output being written; deleted on recovery
//	<base>-<end>.log.swap  a complete compaction output replacing the segments with
//	                    base offsets in [base, end); recovery finishes the swap
//	*.tmp               a checkpoint or snapshot being written; deleted on recovery
//
// A batch read back from a .log is valid when its header parses (magic 2, a
// length covering the header and not running past the end of the file), its
// CRC-32C matches (checked for segments that may hold un-fsynced data after an
// unclean shutdown), its base offset is past the previous batch's last offset
// and no smaller than the segment's base, its record count fits its offset
// span, and its last offset minus the segment base fits in uint32. Recovery
// truncates a segment at its first invalid batch.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	cleanedSuffix   = ".cleaned"
	swapSuffix      = ".log.swap"
	tmpSuffix       = ".tmp"

	// minBatchSize is the size of a batch without records.
	minBatchSize = records.HeaderSize
	// maxSegmentBytes bounds a segment so positions fit the index's uint32.
	maxSegmentBytes = math.MaxUint32
	// minSegmentBytes is Kafka's minimum segment.bytes.
	minSegmentBytes = 14
)

// errCorruptBatch marks the first invalid batch found by a scan.
var errCorruptBatch = errors.New("commitlog: invalid batch in segment")

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseBaseName parses a 20-digit base offset.
func parseBaseName(s string) (int64, bool) {
	if len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// parseSwapName parses "<base>-<end>.log.swap".
func parseSwapName(name string) (base, end int64, ok bool) {
	s, found := strings.CutSuffix(name, swapSuffix)
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	base, ok1 := parseBaseName(a)
	end, ok2 := parseBaseName(b)
	return base, end, ok1 && ok2 && end > base
}

// segment is one <base>.log with its indexes.
//
// Locking: a segment is reached through Log.segs. While it is the active
// segment, its mutable fields are guarded by Log.mu (readers hold it shared,
// appenders exclusively); once rolled they no longer change, except durMaxTs
// and durMaxTsOff (guarded by Log.mu). The file is closed when refs drops to
// zero: Log.segs holds one reference, and each reader holds one while it reads.
type segment struct {
	dir  string
	base int64
	log  File
	refs atomic.Int32

	size    int64 // bytes of valid batches in log
	next    int64 // offset after the last batch's last offset (base when empty)
	created time.Time
	ib      *indexBuilder

	// idxF and tidxF are open while the segment is active, and until its roll
	// has been flushed; nil afterwards.
	idxF, tidxF File

	// durMaxTs/durMaxTsOff: largest timestamp, and the base offset of the
	// first batch carrying it, among the batches below the high watermark.
	durMaxTs, durMaxTsOff int64
}

func (s *segment) logPath() string  { return filepath.Join(s.dir, segmentName(s.base)+logSuffix) }
func (s *segment) idxPath() string  { return filepath.Join(s.dir, segmentName(s.base)+indexSuffix) }
func (s *segment) tidxPath() string { return filepath.Join(s.dir, segmentName(s.base)+timeIndexSuffix) }

// acquire takes a reader's reference; the caller holds Log.mu (shared or not),
// so the segment is still in Log.segs and its count is positive.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and closes the files after the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeFiles()
	}
}

func (s *segment) closeFiles() error {
	var errs []error
	if s.log != nil {
		errs = append(errs, s.log.Close())
	}
	errs = append(errs, s.closeIndexFiles())
	return errors.Join(errs...)
}

func (s *segment) closeIndexFiles() error {
	var errs []error
	if s.idxF != nil {
		errs = append(errs, s.idxF.Close())
		s.idxF = nil
	}
	if s.tidxF != nil {
		errs = append(errs, s.tidxF.Close())
		s.tidxF = nil
	}
	return errors.Join(errs...)
}

// writeNewIndexEntries appends the index entries the builder added since the
// last call to the index files.
func (s *segment) writeNewIndexEntries() error {
	ib, tb := s.ib.takeNew()
	if len(ib) > 0 && s.idxF != nil {
		if _, err := s.idxF.Write(ib); err != nil {
			return err
		}
	}
	if len(tb) > 0 && s.tidxF != nil {
		if _, err := s.tidxF.Write(tb); err != nil {
			return err
		}
	}
	return nil
}

// truncateIndexFiles cuts the index files back to the builder's entries.
func (s *segment) truncateIndexFiles() error {
	var errs []error
	if s.idxF != nil {
		errs = append(errs, s.idxF.Truncate(int64(indexHeaderSize+idxEntrySize*len(s.ib.index))))
	}
	if s.tidxF != nil {
		errs = append(errs, s.tidxF.Truncate(int64(indexHeaderSize+timeEntrySize*len(s.ib.tindex))))
	}
	return errors.Join(errs...)
}

// maxTimestamp returns the segment's largest batch timestamp and the base
// offset of the first batch carrying it (-1, -1 when it has no batch).
func (s *segment) maxTimestamp() (int64, int64) { return s.ib.maxTs, s.ib.maxTsOff }

// scanner walks the batches of a segment file from a position.
//
// In mode scanVerify each batch is read whole and its CRC verified, in
// scanRaw it is read whole, in scanHeaders only headers are read and large
// batches are skipped over.
type scanner struct {
	f        File
	fileSize int64
	segBase  int64
	mode     scanMode

	pos     int64 // position of the next batch
	minNext int64 // the next batch's base offset must be >= minNext

	buf    []byte
	bufPos int64 // file position of buf[0]
}

type scanMode int

const (
	scanHeaders scanMode = iota
	scanRaw
	scanVerify
)

const scanChunk = 256 << 10

func newScanner(f File, fileSize, segBase, pos, minNext int64, mode scanMode) *scanner {
	return &scanner{f: f, fileSize: fileSize, segBase: segBase, mode: mode, pos: pos, minNext: minNext}
}

// window returns the bytes [pos, pos+n) of the file, reading as needed; it
// returns fewer when the file ends first.
func (s *scanner) window(pos int64, n int) ([]byte, error) {
	if end := s.fileSize - pos; int64(n) > end {
		n = int(end)
	}
	if pos >= s.bufPos && pos+int64(n) <= s.bufPos+int64(len(s.buf)) {
		off := pos - s.bufPos
		return s.buf[off : off+int64(n)], nil
	}
	want := max(n, scanChunk)
	if end := s.fileSize - pos; int64(want) > end {
		want = int(end)
	}
	if cap(s.buf) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	if err := readFull(s.f, s.buf, pos); err != nil {
		s.buf = s.buf[:0]
		return nil, err
	}
	s.bufPos = pos
	return s.buf[:n], nil
}

// next returns the next batch's header, its position, and, in full mode, its
// bytes (valid until the following call) unless the mode is scanHeaders. It returns io.EOF at the end of the
// file, and an error wrapping errCorruptBatch at the first invalid batch (the
// valid prefix then ends at s.pos); other errors are I/O errors.
func (s *scanner) next() (h records.BatchHeader, pos int64, raw []byte, err error) {
	pos = s.pos
	if pos >= s.fileSize {
		return h, pos, nil, io.EOF
	}
	hb, err := s.window(pos, records.HeaderSize)
	if err != nil {
		return h, pos, nil, err
	}
	if len(hb) < records.HeaderSize {
		return h, pos, nil, fmt.Errorf("%w at position %d: %d bytes left, shorter than a header", errCorruptBatch, pos, len(hb))
	}
	size := int64(records.LengthOffset) + int64(int32(binary.BigEndian.Uint32(hb[8:])))
	if size < minBatchSize || pos+size > s.fileSize {
		return h, pos, nil, fmt.Errorf("%w at position %d: batch of %d bytes in a %d-byte file", errCorruptBatch, pos, size, s.fileSize)
	}
	if pos+size > maxSegmentBytes {
		return h, pos, nil, fmt.Errorf("%w at position %d: segment larger than 4 GiB", errCorruptBatch, pos)
	}
	if s.mode != scanHeaders {
		raw, err = s.window(pos, int(size))
		if err != nil {
			return h, pos, nil, err
		}
		if s.mode == scanVerify {
			if err := records.VerifyCRC(raw); err != nil {
				return h, pos, nil, fmt.Errorf("%w at position %d: %w", errCorruptBatch, pos, err)
			}
		}
		h, err = records.ParseHeader(raw)
	} else {
		h, err = parseHeaderOnly(hb)
	}
	if err != nil {
		return h, pos, nil, fmt.Errorf("%w at position %d: %w", errCorruptBatch, pos, err)
	}
	if err := s.checkOffsets(h); err != nil {
		return h, pos, nil, fmt.Errorf("%w at position %d: %w", errCorruptBatch, pos, err)
	}
	s.pos = pos + size
	s.minNext = h.LastOffset() + 1
	return h, pos, raw, nil
}

func (s *scanner) checkOffsets(h records.BatchHeader) error {
	switch {
	case h.BaseOffset < s.minNext || h.BaseOffset < s.segBase:
		return fmt.Errorf("base offset %d, want >= %d", h.BaseOffset, max(s.minNext, s.segBase))
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("negative last offset delta %d", h.LastOffsetDelta)
	case h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1:
		return fmt.Errorf("%d records in an offset span of %d", h.NumRecords, int64(h.LastOffsetDelta)+1)
	case h.LastOffset()-s.segBase > math.MaxUint32:
		return fmt.Errorf("last offset %d too far from segment base %d", h.LastOffset(), s.segBase)
	}
	return nil
}

// parseHeaderOnly decodes a batch header when only its first HeaderSize bytes
// are at hand (the caller checked that the whole batch lies in the file).
// records.ParseHeader decodes every field before reporting ErrShort for the
// missing record bytes.
func parseHeaderOnly(b []byte) (records.BatchHeader, error) {
	h, err := records.ParseHeader(b)
	if errors.Is(err, records.ErrShort) && len(b) >= records.HeaderSize && h.Magic == 2 {
		return h, nil
	}
	return h, err
}

// peekBatch reads the offsets and size of the batch at the start of b without
// checking it (the read path only meets batches that recovery validated).
// ok is false when b is shorter than the fields needed.
func peekBatch(b []byte) (base, last int64, size int64, ok bool) {
	if len(b) < 27 {
		return 0, 0, 0, false
	}
	base = int64(binary.BigEndian.Uint64(b))
	size = int64(records.LengthOffset) + int64(int32(binary.BigEndian.Uint32(b[8:])))
	last = base + int64(int32(binary.BigEndian.Uint32(b[23:])))
	return base, last, size, size >= minBatchSize
}
