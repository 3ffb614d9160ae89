package commitlog

// Index files, format version 1.
//
// Both indexes of a segment are derived data: they are rebuilt from the
// segment's .log whenever they are missing, carry another version, or fail
// the sanity checks below; they are fsynced when their segment is rolled and
// at a clean shutdown, and rebuilt after an unclean one for every segment that
// was not known to be fsynced.
//
// <base>.index, the sparse offset index (all integers big-endian):
//
//	offset  size  field
//	0       4     magic "TRIX"
//	4       4     version (1)
//	8       8*n   entries: relativeOffset uint32, position uint32
//
// An entry (r, p) says that the batch with base offset base+r starts at byte
// p of the .log. An entry is added before appending a batch once at least
// index.interval.bytes of batches were appended since the previous entry
// (the segment's first batch, at position 0, has no entry). Entries are
// strictly increasing in both fields.
//
// <base>.timeindex, the time index:
//
//	offset  size  field
//	0       4     magic "TRTI"
//	4       4     version (1)
//	8       12*n  entries: maxTimestamp int64, relativeOffset uint32
//
// An entry (t, r) says that t is the largest batch max timestamp among the
// batches of the segment before some point, and that the batch with base
// offset base+r is the first one that carries it. Entries are added at the
// same points as offset index entries (when the largest timestamp grew since
// the previous entry) and once more when the segment is closed, so the last
// entry of a closed segment holds its largest timestamp. Timestamps are
// strictly increasing, offsets non-decreasing.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

const (
	indexVersion    = 1
	indexHeaderSize = 8
	idxEntrySize    = 8
	timeEntrySize   = 12
)

var (
	offsetIndexMagic = [4]byte{'T', 'R', 'I', 'X'}
	timeIndexMagic   = [4]byte{'T', 'R', 'T', 'I'}
	errBadIndex      = errors.New("commitlog: bad index")
)

type idxEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

func indexHeader(magic [4]byte) []byte {
	b := make([]byte, indexHeaderSize)
	copy(b, magic[:])
	binary.BigEndian.PutUint32(b[4:], indexVersion)
	return b
}

func appendIdxEntry(b []byte, e idxEntry) []byte {
	b = binary.BigEndian.AppendUint32(b, e.rel)
	return binary.BigEndian.AppendUint32(b, e.pos)
}

func appendTimeEntry(b []byte, e timeEntry) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
	return binary.BigEndian.AppendUint32(b, e.rel)
}

func checkIndexHeader(b []byte, magic [4]byte, entrySize int) ([]byte, error) {
	if len(b) < indexHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", errBadIndex, len(b))
	}
	if [4]byte(b[:4]) != magic {
		return nil, fmt.Errorf("%w: magic %q", errBadIndex, b[:4])
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != indexVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errBadIndex, v, indexVersion)
	}
	b = b[indexHeaderSize:]
	if len(b)%entrySize != 0 {
		return nil, fmt.Errorf("%w: %d entry bytes, not a multiple of %d", errBadIndex, len(b), entrySize)
	}
	return b, nil
}

// decodeOffsetIndex parses and sanity-checks an offset index for a segment
// whose log holds logSize bytes.
func decodeOffsetIndex(b []byte, logSize int64) ([]idxEntry, error) {
	b, err := checkIndexHeader(b, offsetIndexMagic, idxEntrySize)
	if err != nil {
		return nil, err
	}
	out := make([]idxEntry, 0, len(b)/idxEntrySize)
	for i := 0; i < len(b); i += idxEntrySize {
		e := idxEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if e.pos == 0 || int64(e.pos)+minBatchSize > logSize {
			return nil, fmt.Errorf("%w: position %d outside a %d-byte log", errBadIndex, e.pos, logSize)
		}
		if n := len(out); n > 0 && (e.rel <= out[n-1].rel || e.pos <= out[n-1].pos) {
			return nil, fmt.Errorf("%w: entry %d not increasing", errBadIndex, n)
		}
		out = append(out, e)
	}
	return out, nil
}

// decodeTimeIndex parses and sanity-checks a time index.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	b, err := checkIndexHeader(b, timeIndexMagic, timeEntrySize)
	if err != nil {
		return nil, err
	}
	out := make([]timeEntry, 0, len(b)/timeEntrySize)
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		if n := len(out); n > 0 && (e.ts <= out[n-1].ts || e.rel < out[n-1].rel) {
			return nil, fmt.Errorf("%w: time entry %d not increasing", errBadIndex, n)
		}
		out = append(out, e)
	}
	return out, nil
}

// lookupIndex returns the position of the last indexed batch whose base
// offset is <= rel (0 when there is none): the batch holding rel starts at or
// after it.
func lookupIndex(idx []idxEntry, rel uint32) (entryRel uint32, pos int64, ok bool) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > rel })
	if i == 0 {
		return 0, 0, false
	}
	return idx[i-1].rel, int64(idx[i-1].pos), true
}

// lookupTime returns the relative offset of the batch from which a scan for
// the first timestamp >= ts may start: every batch before it has a max
// timestamp < ts.
func lookupTime(tidx []timeEntry, ts int64) uint32 {
	// The entries with t < ts: all batches before entry.rel have max timestamp
	// < t (an entry names the first batch reaching its timestamp).
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return tidx[i-1].rel
}

// relOffset converts an absolute offset to one relative to base, clamped to
// the uint32 range.
func relOffset(base, off int64) uint32 {
	d := off - base
	if d < 0 {
		return 0
	}
	if d > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(d)
}

// indexBuilder accumulates the index entries of a segment as its batches go
// by, by the rule described at the top of this file.
type indexBuilder struct {
	base        int64
	interval    int64
	sinceIndex  int64
	index       []idxEntry
	tindex      []timeEntry
	maxTs       int64
	maxTsOff    int64 // base offset of the first batch carrying maxTs
	newIdx      []idxEntry
	newTime     []timeEntry
	hasBatch    bool
	lastTimeIdx int64
}

func newIndexBuilder(base int64, interval int) *indexBuilder {
	return &indexBuilder{base: base, interval: int64(interval), maxTs: -1, maxTsOff: -1, lastTimeIdx: math.MinInt64}
}

// add records a batch of size bytes with the given base offset and max
// timestamp, appended at position pos.
func (b *indexBuilder) add(base int64, maxTs int64, pos int64, size int) {
	if b.hasBatch && b.sinceIndex >= b.interval {
		e := idxEntry{rel: relOffset(b.base, base), pos: uint32(pos)}
		b.index = append(b.index, e)
		b.newIdx = append(b.newIdx, e)
		b.sinceIndex = 0
		b.addTimeEntry()
	}
	b.hasBatch = true
	b.sinceIndex += int64(size)
	if maxTs > b.maxTs {
		b.maxTs, b.maxTsOff = maxTs, base
	}
}

// addTimeEntry appends the current largest timestamp to the time index when
// it grew since the last entry.
func (b *indexBuilder) addTimeEntry() {
	if b.maxTsOff < 0 || b.maxTs <= b.lastTimeIdx {
		return
	}
	e := timeEntry{ts: b.maxTs, rel: relOffset(b.base, b.maxTsOff)}
	b.tindex = append(b.tindex, e)
	b.newTime = append(b.newTime, e)
	b.lastTimeIdx = b.maxTs
}

// takeNew returns the entries added since the last call, encoded.
func (b *indexBuilder) takeNew() (idx, tidx []byte) {
	for _, e := range b.newIdx {
		idx = appendIdxEntry(idx, e)
	}
	for _, e := range b.newTime {
		tidx = appendTimeEntry(tidx, e)
	}
	b.newIdx, b.newTime = b.newIdx[:0], b.newTime[:0]
	return idx, tidx
}

// restore resumes building after loaded entries: the builder continues a
// segment whose last batch ended at size and whose batches after the last
// index entry took sinceIndex bytes.
func (b *indexBuilder) restore(idx []idxEntry, tidx []timeEntry, sinceIndex int64, maxTs, maxTsOff int64, hasBatch bool) {
	b.index, b.tindex = idx, tidx
	b.sinceIndex = sinceIndex
	b.maxTs, b.maxTsOff = maxTs, maxTsOff
	b.hasBatch = hasBatch
	if n := len(tidx); n > 0 {
		b.lastTimeIdx = tidx[n-1].ts
	}
}

// state is a copy of the builder's scalar state, for rollback.
type indexBuilderState struct {
	sinceIndex, maxTs, maxTsOff, lastTimeIdx int64
	nIdx, nTime                              int
	hasBatch                                 bool
}

func (b *indexBuilder) save() indexBuilderState {
	return indexBuilderState{b.sinceIndex, b.maxTs, b.maxTsOff, b.lastTimeIdx, len(b.index), len(b.tindex), b.hasBatch}
}

func (b *indexBuilder) rollback(s indexBuilderState) {
	b.sinceIndex, b.maxTs, b.maxTsOff, b.lastTimeIdx = s.sinceIndex, s.maxTs, s.maxTsOff, s.lastTimeIdx
	b.index, b.tindex = b.index[:s.nIdx], b.tindex[:s.nTime]
	b.newIdx, b.newTime = b.newIdx[:0], b.newTime[:0]
	b.hasBatch = s.hasBatch
}

// writeIndexFiles writes complete index files for the given entries
// (truncating what was there) and returns them open for appending.
func writeIndexFiles(fsys FS, idxPath, tidxPath string, idx []idxEntry, tidx []timeEntry, sync bool) (File, File, error) {
	ib := indexHeader(offsetIndexMagic)
	for _, e := range idx {
		ib = appendIdxEntry(ib, e)
	}
	tb := indexHeader(timeIndexMagic)
	for _, e := range tidx {
		tb = appendTimeEntry(tb, e)
	}
	fi, err := createWith(fsys, idxPath, ib, sync)
	if err != nil {
		return nil, nil, err
	}
	ft, err := createWith(fsys, tidxPath, tb, sync)
	if err != nil {
		fi.Close()
		return nil, nil, err
	}
	return fi, ft, nil
}

// createWith creates (or truncates) name, writes data and leaves the file
// open for appending.
func createWith(fsys FS, name string, data []byte, sync bool) (File, error) {
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}
