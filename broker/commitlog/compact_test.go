package commitlog

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

func compactConfig() Config {
	cfg := testConfig()
	cfg.SegmentBytes = 2 << 10
	cfg.IndexIntervalBytes = 256
	cfg.Compact, cfg.Delete = true, false
	cfg.MinCleanableDirtyRatio = 0
	cfg.DeleteRetention = time.Hour
	return cfg
}

// writeCompactable appends keyed records (20 keys, some tombstones, some
// keyless records, all codecs) with timestamps from the clock and returns
// every record as written.
func writeCompactable(t *testing.T, l *Log, clock *fakeClock, n int) []record {
	t.Helper()
	rng := rand.New(rand.NewPCG(15, 16))
	codecs := []records.Compression{records.CompressionNone, records.CompressionGzip, records.CompressionLZ4, records.CompressionSnappy, records.CompressionZstd}
	var written []record
	for i := 0; i < n; {
		k := 1 + rng.IntN(6)
		recs := make([]rec, 0, k)
		for range k {
			r := rec{key: fmt.Appendf(nil, "key-%02d", rng.IntN(20)), value: fmt.Appendf(nil, "value-%d-%s", i, bytes.Repeat([]byte("x"), rng.IntN(60)))}
			switch {
			case i%23 == 0:
				r.value = nil // tombstone
			case i%31 == 0:
				r.key = nil // keyless: dropped by compaction
			}
			recs = append(recs, r)
			i++
		}
		ts := clock.Now().UnixMilli()
		b := build(t, batchSpec{recs: recs, codec: codecs[i%len(codecs)], pid: -1, firstTS: ts})
		res, err := l.Append([]records.Batch{b})
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range recs {
			written = append(written, record{off: res.BaseOffset + int64(j), ts: ts, key: string(r.key), value: r.value})
		}
		clock.Advance(time.Second)
	}
	if err := l.WaitDurable(context.Background(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	return written
}

// expectCompacted computes what a compaction of the records below end keeps.
func expectCompacted(all []record, end int64, horizon int64) []record {
	latest := map[string]int64{}
	for _, r := range all {
		if r.off < end && r.key != "" {
			latest[r.key] = r.off
		}
	}
	var out []record
	for _, r := range all {
		if r.off >= end {
			out = append(out, r)
			continue
		}
		if r.key == "" || latest[r.key] != r.off {
			continue
		}
		if r.value == nil && r.ts < horizon {
			continue
		}
		out = append(out, r)
	}
	return out
}

func activeBase(l *Log) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.active().base
}

func sameRecords(t *testing.T, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.off != w.off || g.key != w.key || !bytes.Equal(g.value, w.value) || (g.value == nil) != (w.value == nil) {
			t.Fatalf("record %d: %d %q=%q, want %d %q=%q", i, g.off, g.key, g.value, w.off, w.key, w.value)
		}
	}
}

func TestCompaction(t *testing.T) {
	clock := newFakeClock()
	cfg := compactConfig()
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{Now: clock.Now})
	all := writeCompactable(t, l, clock, 600)
	segsBefore := l.NumSegments()
	end := activeBase(l)
	leo := l.LogEndOffset()
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Tombstones are younger than delete.retention.ms: kept.
	want := expectCompacted(all, end, clock.Now().Add(-cfg.DeleteRetention).UnixMilli())
	got := decodeAll(t, readAll(t, l, 0, 1<<20))
	sameRecords(t, got, want)
	if !slices.ContainsFunc(got, func(r record) bool { return r.value == nil && r.off < end }) {
		t.Fatal("test data has no tombstone in the compacted range")
	}
	if l.NumSegments() >= segsBefore {
		t.Fatalf("%d segments before, %d after: compacted segments were not merged", segsBefore, l.NumSegments())
	}
	if l.LogEndOffset() != leo || l.HighWatermark() != leo {
		t.Fatalf("end offset changed: %d -> %d", leo, l.LogEndOffset())
	}
	// Reading at every offset, gaps included, returns the batch holding it or
	// the next one.
	for off := int64(0); off < leo; off++ {
		chunk, err := l.Read(off, 1, leo)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		bs := readChunk(t, chunk)
		if len(bs) != 1 || bs[0].Header.LastOffset() < off {
			t.Fatalf("Read(%d) in a compacted log: %d batches", off, len(bs))
		}
		if bs[0].Header.BaseOffset > off {
			// a gap: no remaining record between off and the batch
			for _, r := range want {
				if r.off >= off && r.off < bs[0].Header.BaseOffset {
					t.Fatalf("Read(%d) skipped record %d", off, r.off)
				}
			}
		}
	}
	// A second pass without new data changes nothing.
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, decodeAll(t, readAll(t, l, 0, 1<<20)), want)

	// Once delete.retention.ms has passed, the tombstones go.
	clock.Advance(2 * time.Hour)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = expectCompacted(all, end, clock.Now().Add(-cfg.DeleteRetention).UnixMilli())
	got = decodeAll(t, readAll(t, l, 0, 1<<20))
	sameRecords(t, got, want)
	if slices.ContainsFunc(got, func(r record) bool { return r.value == nil && r.off < end }) {
		t.Fatal("an expired tombstone survived")
	}
	// The compacted log survives reopening, clean or not.
	l.Close()
	removeCleanMarker(t, dir)
	l2 := openLog(t, dir, cfg, Options{Now: clock.Now})
	sameRecords(t, decodeAll(t, readAll(t, l2, 0, 1<<20)), want)
	if res := appendDurable(t, l2, simpleBatch(t, 1, 1, clock.Now().UnixMilli())); res.BaseOffset != leo {
		t.Fatalf("append after compaction at %d, want %d", res.BaseOffset, leo)
	}
}

func TestCompactionMinLag(t *testing.T) {
	clock := newFakeClock()
	cfg := compactConfig()
	cfg.MinCompactionLag = time.Hour
	l := openLog(t, t.TempDir(), cfg, Options{Now: clock.Now})
	all := writeCompactable(t, l, clock, 300)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := decodeAll(t, readAll(t, l, 0, 1<<20)); len(got) != len(all) {
		t.Fatalf("compacted records younger than min.compaction.lag.ms: %d of %d left", len(got), len(all))
	}
	clock.Advance(2 * time.Hour)
	end := activeBase(l)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The lag has passed for every closed segment; the tombstones are
	// older than delete.retention.ms by now too.
	sameRecords(t, decodeAll(t, readAll(t, l, 0, 1<<20)), expectCompacted(all, end, clock.Now().Add(-cfg.DeleteRetention).UnixMilli()))
}

// TestCompactionKeepsProducersLastBatch: a producer's latest batch stays
// (empty) when all its records are superseded, so that deduplication works
// even when the state is rebuilt from the log.
func TestCompactionKeepsProducersLastBatch(t *testing.T) {
	clock := newFakeClock()
	cfg := compactConfig()
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{Now: clock.Now})
	res := appendDurable(t, l, build(t, batchSpec{recs: []rec{{key: []byte("a"), value: []byte("1")}}, pid: 42, epoch: 3, seq: 0}))
	for range 40 { // supersede key "a", and fill a few segments
		appendDurable(t, l, build(t, batchSpec{recs: []rec{{key: []byte("a"), value: bytes.Repeat([]byte("2"), 200)}}, pid: -1}))
	}
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	bs := readAll(t, l, 0, 1<<20)
	if bs[0].Header.ProducerID != 42 || bs[0].Header.NumRecords != 0 || bs[0].Header.BaseOffset != res.BaseOffset {
		t.Fatalf("first batch after compaction: %+v", bs[0].Header)
	}
	l.Close()
	for _, p := range segmentFiles(t, dir, snapshotSuffix) {
		os.Remove(p)
	}
	removeCleanMarker(t, dir)
	l2 := openLog(t, dir, cfg, Options{Now: clock.Now})
	runProducerSteps(t, l2, []producerStep{{name: "retry", pid: 42, epoch: 3, seq: 0, n: 1, dupOf: res.BaseOffset}})
}

// TestCompactionCrash interrupts a compaction pass at every mutating file
// operation in turn ("crash": every later operation fails), reopens the
// directory, and checks that the log is readable, that it lost no latest
// value, and that it holds only records of the original log at their
// original offsets; a compaction after the reopen gives the expected result.
func TestCompactionCrash(t *testing.T) {
	clock := newFakeClock()
	cfg := compactConfig()
	orig := t.TempDir()
	l, err := Open(orig, cfg, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	all := writeCompactable(t, l, clock, 300)
	end := activeBase(l)
	leo := l.LogEndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	byOff := map[int64]record{}
	latest := map[string]int64{}
	for _, r := range all {
		byOff[r.off] = r
		if r.key != "" {
			latest[r.key] = r.off
		}
	}
	want := expectCompacted(all, end, clock.Now().Add(-cfg.DeleteRetention).UnixMilli())

	completed := false
	crashes := 0
	for k := int64(0); !completed && k < 500; k++ {
		dir := t.TempDir()
		copyDir(t, orig, dir)
		ffs := newFaultFS()
		l, err := Open(dir, cfg, Options{FS: ffs, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		ffs.setCrashAfter(k)
		err = l.Maintain(context.Background())
		crashed := ffs.hasCrashed()
		if crashed && err == nil {
			t.Fatalf("crash point %d: Maintain hid the failure", k)
		}
		if !crashed {
			if err != nil {
				t.Fatalf("crash point %d: Maintain: %v", k, err)
			}
			completed = true
		} else {
			crashes++
		}
		l.Close()

		l2, err := Open(dir, cfg, Options{Now: clock.Now})
		if err != nil {
			t.Fatalf("crash point %d: reopen: %v", k, err)
		}
		if l2.LogEndOffset() != leo {
			t.Fatalf("crash point %d: end offset %d, want %d", k, l2.LogEndOffset(), leo)
		}
		got := decodeAll(t, readAll(t, l2, 0, 1<<20))
		present := map[string]int64{}
		for _, r := range got {
			o, ok := byOff[r.off]
			if !ok || o.key != r.key || !bytes.Equal(o.value, r.value) {
				t.Fatalf("crash point %d: record at %d is not the original one", k, r.off)
			}
			if r.key != "" {
				present[r.key] = r.off
			}
		}
		for key, off := range latest {
			if present[key] != off {
				t.Fatalf("crash point %d: latest record of %q (offset %d) lost", k, key, off)
			}
		}
		if completed {
			sameRecords(t, got, want)
		} else if err := l2.Maintain(context.Background()); err != nil {
			t.Fatalf("crash point %d: compaction after reopen: %v", k, err)
		} else {
			sameRecords(t, decodeAll(t, readAll(t, l2, 0, 1<<20)), want)
		}
		l2.Close()
	}
	if !completed || crashes < 10 {
		t.Fatalf("completed %v after %d crash points", completed, crashes)
	}
	t.Logf("%d crash points", crashes)
}

// TestCompactionReaderProgress: when compaction removes every record at the
// end of the closed segments and the active segment is empty, a reader at
// any offset below the high watermark still gets a batch to move past.
func TestCompactionReaderProgress(t *testing.T) {
	clock := newFakeClock()
	cfg := compactConfig()
	cfg.SegmentMs = time.Hour
	l := openLog(t, t.TempDir(), cfg, Options{Now: clock.Now})
	for i := range 30 {
		appendDurable(t, l, build(t, batchSpec{recs: []rec{{key: []byte("a"), value: bytes.Repeat([]byte{byte(i)}, 150)}}, pid: -1, firstTS: clock.Now().UnixMilli()}))
	}
	for range 3 { // keyless records: all dropped by compaction
		appendDurable(t, l, build(t, batchSpec{recs: []rec{{value: []byte("no key")}, {value: []byte("none")}}, pid: -1, firstTS: clock.Now().UnixMilli()}))
	}
	clock.Advance(2 * time.Hour) // Maintain rolls the active segment, then compacts everything
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	hw := l.HighWatermark()
	if l.Size() > 2<<10 {
		t.Fatalf("log of %d bytes after compaction", l.Size())
	}
	for off := l.LogStartOffset(); off < hw; off++ {
		chunk, err := l.Read(off, 1<<20, hw)
		if err != nil {
			t.Fatal(err)
		}
		bs := readChunk(t, chunk)
		if len(bs) == 0 || bs[len(bs)-1].Header.LastOffset() < off {
			t.Fatalf("Read(%d) below HW %d gives no batch to move past", off, hw)
		}
	}
	got := decodeAll(t, readAll(t, l, 0, 1<<20))
	if len(got) != 1 || got[0].key != "a" || got[0].off != 29 {
		t.Fatalf("compacted log: %+v", got)
	}
}
