package commitlog

// Idempotent-producer state and its snapshot file, format version 1.
//
// <base>.snapshot holds the producer state as of offset <base> (the state
// after every batch with offsets < base), all integers big-endian:
//
//	offset  size  field
//	0       4     magic "TRPS"
//	4       4     version (1)
//	8       8     offset (equal to <base>)
//	16      4     producer count n
//	20      ...   n producers:
//	                8 producerId, 2 epoch, 8 lastSeen (unix ms), 1 batch count m (<= 5),
//	                m batches, oldest first: 4 firstSeq, 4 lastSeq, 8 baseOffset, 8 lastOffset
//	end-4   4     CRC-32C of everything before it
//
// A snapshot is written only once every offset below it is fsynced; recovery
// loads the newest snapshot not past the recovered log end offset and replays
// the batch headers after it. Without a usable snapshot the state is rebuilt
// from the headers of the whole log.
//
// Sequence rules, per batch with producerId >= 0 and baseSequence >= 0:
//   - a producer with no state must start at sequence 0, else
//     ErrOutOfOrderSequence. (Kafka >= 2.5 accepts any sequence from an
//     unknown producer, and older versions answer UNKNOWN_PRODUCER_ID; a
//     single-node broker that keeps producer state across restarts only
//     loses it through expiry, after which refusing is the safer answer.)
//   - an epoch lower than the producer's -> ErrInvalidProducerEpoch;
//   - a higher epoch must start at sequence 0 (ErrOutOfOrderSequence
//     otherwise) and resets the producer's batches;
//   - same epoch: a batch whose first and last sequence equal those of one of
//     the producer's last 5 batches is a duplicate (acknowledged with the
//     original offsets, not written); otherwise its first sequence must follow
//     the last batch's last sequence (wrapping after MaxInt32), else
//     ErrOutOfOrderSequence.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tributary-data/tributary/broker/records"
)

const (
	producerBatchesKept = 5
	snapshotVersion     = 1
	snapshotsKept       = 3
)

var (
	snapshotMagic = [4]byte{'T', 'R', 'P', 'S'}
	crcTable      = crc32.MakeTable(crc32.Castagnoli)
)

type batchMeta struct {
	firstSeq, lastSeq int32
	baseOff, lastOff  int64
}

type producerEntry struct {
	epoch    int16
	lastSeen int64 // unix ms of the last append (or of recovery)
	batches  []batchMeta
}

func (e *producerEntry) clone() *producerEntry {
	c := *e
	c.batches = slices.Clone(e.batches)
	return &c
}

// producerState maps producer ids to their recent batches. It is guarded by
// Log.mu.
type producerState struct {
	m map[int64]*producerEntry
}

func newProducerState() *producerState { return &producerState{m: make(map[int64]*producerEntry)} }

func (p *producerState) clone() *producerState {
	c := &producerState{m: make(map[int64]*producerEntry, len(p.m))}
	for id, e := range p.m {
		c.m[id] = e.clone()
	}
	return c
}

func tracked(h records.BatchHeader) bool { return h.ProducerID >= 0 && h.BaseSequence >= 0 }

func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// check validates h against the producer entry e (nil for an unknown
// producer). It returns the duplicate's metadata when h repeats a recent
// batch.
func checkSequence(e *producerEntry, h records.BatchHeader) (*batchMeta, error) {
	if e == nil {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: unknown producer %d starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
		}
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := h.LastSequence()
	for i := range e.batches {
		if b := &e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, nil
		}
	}
	if n := len(e.batches); n > 0 {
		if want := nextSeq(e.batches[n-1].lastSeq); h.BaseSequence != want {
			return nil, fmt.Errorf("%w: producer %d epoch %d sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, want)
		}
	} else if h.BaseSequence != 0 {
		return nil, fmt.Errorf("%w: producer %d sequence %d, expected 0", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
	}
	return nil, nil
}

// update records the appended batch h (with its assigned base offset) in e,
// which may be nil; it returns the updated entry.
func updateEntry(e *producerEntry, h records.BatchHeader, nowMs int64) *producerEntry {
	if e == nil {
		e = &producerEntry{epoch: h.ProducerEpoch}
	}
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	e.batches = append(e.batches, batchMeta{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), baseOff: h.BaseOffset, lastOff: h.LastOffset()})
	if n := len(e.batches); n > producerBatchesKept {
		e.batches = append(e.batches[:0], e.batches[n-producerBatchesKept:]...)
	}
	e.lastSeen = nowMs
	return e
}

// replay applies a batch read back from the log (recovery), without checks:
// what is in the log was accepted.
func (p *producerState) replay(h records.BatchHeader, nowMs int64) {
	if !tracked(h) {
		return
	}
	e := p.m[h.ProducerID]
	if e != nil && h.ProducerEpoch < e.epoch {
		return
	}
	p.m[h.ProducerID] = updateEntry(e, h, nowMs)
}

// expire drops producers not seen since before cutoffMs.
func (p *producerState) expire(cutoffMs int64) int {
	n := 0
	for id, e := range p.m {
		if e.lastSeen < cutoffMs {
			delete(p.m, id)
			n++
		}
	}
	return n
}

// isLastBatch reports whether the batch at baseOff is the latest batch of
// producer id (compaction keeps such batches, emptied, so that the state can
// be rebuilt from the log).
func (p *producerState) isLastBatch(id int64, baseOff int64) bool {
	e := p.m[id]
	return e != nil && len(e.batches) > 0 && e.batches[len(e.batches)-1].baseOff == baseOff
}

func snapshotName(off int64) string { return segmentName(off) + snapshotSuffix }

func encodeSnapshot(p *producerState, off int64) []byte {
	b := make([]byte, 0, 24+len(p.m)*(19+producerBatchesKept*24))
	b = append(b, snapshotMagic[:]...)
	b = binary.BigEndian.AppendUint32(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(off))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.m)))
	ids := make([]int64, 0, len(p.m))
	for id := range p.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := p.m[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastSeen))
		b = append(b, byte(len(e.batches)))
		for _, m := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.baseOff))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOff))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeSnapshot(b []byte) (*producerState, int64, error) {
	bad := func(why string) (*producerState, int64, error) {
		return nil, 0, fmt.Errorf("commitlog: bad producer snapshot: %s", why)
	}
	if len(b) < 24 {
		return bad("short")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return bad("crc mismatch")
	}
	if [4]byte(body[:4]) != snapshotMagic {
		return bad("magic")
	}
	if v := binary.BigEndian.Uint32(body[4:]); v != snapshotVersion {
		return bad(fmt.Sprintf("version %d", v))
	}
	off := int64(binary.BigEndian.Uint64(body[8:]))
	n := binary.BigEndian.Uint32(body[16:])
	body = body[20:]
	p := newProducerState()
	for range n {
		if len(body) < 19 {
			return bad("truncated producer")
		}
		id := int64(binary.BigEndian.Uint64(body))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(body[8:])), lastSeen: int64(binary.BigEndian.Uint64(body[10:]))}
		m := int(body[18])
		body = body[19:]
		if m > producerBatchesKept || len(body) < m*24 {
			return bad("truncated batches")
		}
		for range m {
			e.batches = append(e.batches, batchMeta{
				firstSeq: int32(binary.BigEndian.Uint32(body)),
				lastSeq:  int32(binary.BigEndian.Uint32(body[4:])),
				baseOff:  int64(binary.BigEndian.Uint64(body[8:])),
				lastOff:  int64(binary.BigEndian.Uint64(body[16:])),
			})
			body = body[24:]
		}
		p.m[id] = e
	}
	if len(body) != 0 {
		return bad("trailing bytes")
	}
	return p, off, nil
}

// listSnapshots returns the offsets of the snapshot files in dir, ascending.
func listSnapshots(fsys FS, dir string) ([]int64, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range ents {
		if s, ok := strings.CutSuffix(e.Name(), snapshotSuffix); ok {
			if off, ok := parseBaseName(s); ok {
				offs = append(offs, off)
			}
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// writeSnapshot writes the snapshot at off atomically and removes all but the
// newest snapshotsKept snapshots.
func writeSnapshot(fsys FS, dir string, p *producerState, off int64) error {
	final := filepath.Join(dir, snapshotName(off))
	if err := writeFileAtomic(fsys, dir, final+tmpSuffix, final, encodeSnapshot(p, off)); err != nil {
		return err
	}
	offs, err := listSnapshots(fsys, dir)
	if err != nil {
		return err
	}
	for len(offs) > snapshotsKept {
		if err := fsys.Remove(filepath.Join(dir, snapshotName(offs[0]))); err != nil {
			return err
		}
		offs = offs[1:]
	}
	return nil
}
