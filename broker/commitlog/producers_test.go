package commitlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

func producerBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) records.Batch {
	t.Helper()
	recs := make([]rec, n)
	for i := range recs {
		recs[i] = rec{key: fmt.Appendf(nil, "p%d-%d", pid, int(seq)+i), value: []byte("v")}
	}
	return build(t, batchSpec{recs: recs, pid: pid, epoch: epoch, seq: seq})
}

type producerStep struct {
	name     string
	pid      int64
	epoch    int16
	seq      int32
	n        int
	err      error
	dupOf    int64 // expected original base offset of a duplicate; -1: not a duplicate
	wantBase int64 // for new batches, -1: don't check
}

func runProducerSteps(t *testing.T, l *Log, steps []producerStep) {
	t.Helper()
	for _, st := range steps {
		res, err := l.Append([]records.Batch{producerBatch(t, st.pid, st.epoch, st.seq, st.n)})
		if st.err != nil {
			if !errors.Is(err, st.err) {
				t.Fatalf("%s: err %v, want %v", st.name, err, st.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.dupOf >= 0 {
			if !res.Duplicate || res.BaseOffset != st.dupOf || res.LastOffset != st.dupOf+int64(st.n)-1 {
				t.Fatalf("%s: result %+v, want a duplicate of %d", st.name, res, st.dupOf)
			}
			continue
		}
		if res.Duplicate || (st.wantBase >= 0 && res.BaseOffset != st.wantBase) {
			t.Fatalf("%s: result %+v, want new base %d", st.name, res, st.wantBase)
		}
	}
}

func TestProducerSequences(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), Options{})
	steps := []producerStep{
		{name: "first batch", pid: 1, epoch: 0, seq: 0, n: 3, dupOf: -1, wantBase: 0},
		{name: "next", pid: 1, epoch: 0, seq: 3, n: 2, dupOf: -1, wantBase: 3},
		{name: "retry of the last", pid: 1, epoch: 0, seq: 3, n: 2, dupOf: 3},
		{name: "retry of an earlier one", pid: 1, epoch: 0, seq: 0, n: 3, dupOf: 0},
		{name: "gap", pid: 1, epoch: 0, seq: 7, n: 1, err: ErrOutOfOrderSequence},
		{name: "overlap that is not a retry", pid: 1, epoch: 0, seq: 4, n: 2, err: ErrOutOfOrderSequence},
		{name: "unknown producer not at 0", pid: 2, epoch: 0, seq: 5, n: 1, err: ErrOutOfOrderSequence},
		{name: "other producer", pid: 2, epoch: 0, seq: 0, n: 1, dupOf: -1, wantBase: 5},
		{name: "in sequence after errors", pid: 1, epoch: 0, seq: 5, n: 1, dupOf: -1, wantBase: 6},
		{name: "new epoch not at 0", pid: 1, epoch: 1, seq: 6, n: 1, err: ErrOutOfOrderSequence},
		{name: "new epoch", pid: 1, epoch: 1, seq: 0, n: 1, dupOf: -1, wantBase: 7},
		{name: "old epoch", pid: 1, epoch: 0, seq: 6, n: 1, err: ErrInvalidProducerEpoch},
		{name: "no producer id", pid: -1, n: 2, dupOf: -1, wantBase: 8},
	}
	runProducerSteps(t, l, steps)

	// Only the last 5 batches are remembered.
	for i := range 6 {
		runProducerSteps(t, l, []producerStep{{name: fmt.Sprint("batch ", i), pid: 3, seq: int32(i), n: 1, dupOf: -1, wantBase: -1}})
	}
	runProducerSteps(t, l, []producerStep{
		{name: "retry of the 5th last", pid: 3, seq: 1, n: 1, dupOf: 11},
		{name: "retry of the 6th last", pid: 3, seq: 0, n: 1, err: ErrOutOfOrderSequence},
	})

	// A multi-batch append with a bad batch writes nothing.
	leo := l.LogEndOffset()
	_, err := l.Append([]records.Batch{producerBatch(t, 4, 0, 0, 1), producerBatch(t, 4, 0, 5, 1)})
	if !errors.Is(err, ErrOutOfOrderSequence) || l.LogEndOffset() != leo {
		t.Fatalf("partial multi-batch append: %v, LEO %d -> %d", err, leo, l.LogEndOffset())
	}
	// Batches of one append see each other's sequence numbers.
	res, err := l.Append([]records.Batch{producerBatch(t, 4, 0, 0, 1), producerBatch(t, 4, 0, 1, 2)})
	if err != nil || res.BaseOffset != leo || res.LastOffset != leo+2 {
		t.Fatalf("multi-batch append: %+v, %v", res, err)
	}
}

// TestSequenceWrap checks that sequence numbers wrap after MaxInt32.
func TestSequenceWrap(t *testing.T) {
	e := &producerEntry{epoch: 0, batches: []batchMeta{{firstSeq: 1<<31 - 3, lastSeq: 1<<31 - 1}}}
	h := records.BatchHeader{ProducerID: 1, BaseSequence: 0, LastOffsetDelta: 0}
	if _, err := checkSequence(e, h); err != nil {
		t.Fatalf("wrapped sequence: %v", err)
	}
	h.BaseSequence = 1
	if _, err := checkSequence(e, h); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after wrap: %v", err)
	}
}

func TestProducerDedupAcrossRestart(t *testing.T) {
	tests := []struct {
		name  string
		prep  func(t *testing.T, dir string)
		crash bool // no Close before reopening
	}{
		{name: "clean shutdown (snapshot)", prep: func(*testing.T, string) {}},
		{name: "unclean, no snapshot", prep: func(t *testing.T, dir string) {
			for _, p := range segmentFiles(t, dir, snapshotSuffix) {
				os.Remove(p)
			}
			removeCleanMarker(t, dir)
		}},
		{name: "corrupt snapshot", prep: func(t *testing.T, dir string) {
			for _, p := range segmentFiles(t, dir, snapshotSuffix) {
				os.WriteFile(p, []byte("garbage garbage garbage"), 0o644)
			}
		}},
		{name: "crash (rolled snapshots only)", crash: true, prep: func(*testing.T, string) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.SegmentBytes = 1 << 10 // several rolls, so that Maintain writes snapshots
			cfg.RetentionMs = -1       // the test batches carry old timestamps
			ffs := newFaultFS()
			l, err := Open(dir, cfg, Options{FS: ffs})
			if err != nil {
				t.Fatal(err)
			}
			var bases []int64
			for i := range 30 {
				res := appendDurable(t, l, producerBatch(t, 7, 2, int32(i*2), 2))
				bases = append(bases, res.BaseOffset)
				appendDurable(t, l, simpleBatch(t, 1, 30, baseTS)) // interleaved non-idempotent data
				if i%10 == 9 {
					if err := l.Maintain(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.crash {
				ffs.setCrashAfter(0) // nothing more reaches the disk
			}
			l.Close()
			tt.prep(t, dir)
			l2 := openLog(t, dir, cfg, Options{})
			runProducerSteps(t, l2, []producerStep{
				{name: "retry of the last batch", pid: 7, epoch: 2, seq: 58, n: 2, dupOf: bases[29]},
				{name: "retry of the 5th last", pid: 7, epoch: 2, seq: 50, n: 2, dupOf: bases[25]},
				{name: "gap", pid: 7, epoch: 2, seq: 61, n: 1, err: ErrOutOfOrderSequence},
				{name: "old epoch", pid: 7, epoch: 1, seq: 0, n: 1, err: ErrInvalidProducerEpoch},
				{name: "next", pid: 7, epoch: 2, seq: 60, n: 1, dupOf: -1, wantBase: l2.LogEndOffset()},
			})
		})
	}
}

func TestProducerExpiry(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig()
	cfg.ProducerExpiry = time.Hour
	l := openLog(t, t.TempDir(), cfg, Options{Now: clock.Now})
	appendDurable(t, l, producerBatch(t, 9, 0, 0, 1))
	clock.Advance(30 * time.Minute)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	runProducerSteps(t, l, []producerStep{{name: "still known", pid: 9, seq: 0, n: 1, dupOf: 0}})
	clock.Advance(2 * time.Hour)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	runProducerSteps(t, l, []producerStep{{name: "expired", pid: 9, seq: 1, n: 1, err: ErrOutOfOrderSequence}})
}

func TestSnapshotRoundTrip(t *testing.T) {
	p := newProducerState()
	for id := range int64(4) {
		var e *producerEntry
		for i := range 7 {
			e = updateEntry(e, records.BatchHeader{ProducerID: id, ProducerEpoch: int16(id), BaseSequence: int32(i * 3), LastOffsetDelta: 2, BaseOffset: id*100 + int64(i*3)}, 1234)
		}
		p.m[id] = e
	}
	b := encodeSnapshot(p, 42)
	got, off, err := decodeSnapshot(b)
	if err != nil || off != 42 || len(got.m) != 4 {
		t.Fatalf("decode: %v, off %d, %d producers", err, off, len(got.m))
	}
	for id, e := range p.m {
		g := got.m[id]
		if g.epoch != e.epoch || g.lastSeen != e.lastSeen || len(g.batches) != producerBatchesKept || g.batches[4] != e.batches[4] {
			t.Fatalf("producer %d: %+v, want %+v", id, g, e)
		}
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		if _, _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("flipped byte %d not detected", i)
		}
	}
}
