package commitlog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

// segmentsOf returns the base offset and byte size of each segment.
func segmentsOf(l *Log) (bases []int64, sizes []int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segs {
		bases = append(bases, s.base)
		sizes = append(sizes, s.size)
	}
	return bases, sizes
}

func TestRetentionByTime(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 10
	cfg.RetentionMs = 30 * time.Minute
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{Now: clock.Now})
	// Batch i has timestamp baseTS + i minutes.
	var stored []records.Batch
	for i := range 100 {
		b := simpleBatch(t, 1, 100, baseTS+int64(i)*time.Minute.Milliseconds())
		appendDurable(t, l, b)
		stored = append(stored, b)
	}
	clock.Advance(100 * time.Minute) // cutoff: batches older than minute 70
	segsBefore := l.NumSegments()
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	bases, _ := segmentsOf(l)
	if len(bases) >= segsBefore {
		t.Fatalf("no segment deleted (%d segments)", len(bases))
	}
	if l.LogStartOffset() != bases[0] {
		t.Fatalf("log start %d, first segment %d", l.LogStartOffset(), bases[0])
	}
	cutoff := clock.Now().Add(-cfg.RetentionMs).UnixMilli()
	// Every batch at or after the cutoff survives; the first remaining
	// segment holds one (or it would have been deleted).
	firstKept := -1
	for i, b := range stored {
		if b.Header.MaxTimestamp >= cutoff {
			firstKept = i
			break
		}
	}
	if start := l.LogStartOffset(); start > int64(firstKept) || start <= 0 {
		t.Fatalf("log start %d, first batch to keep %d", start, firstKept)
	}
	got := readAll(t, l, l.LogStartOffset(), 1<<20)
	if got[0].Header.BaseOffset != l.LogStartOffset() || len(got) != 100-int(l.LogStartOffset()) {
		t.Fatalf("read %d batches from %d", len(got), l.LogStartOffset())
	}
	if len(segmentFiles(t, dir, logSuffix)) != len(bases) {
		t.Fatal("segment files not removed")
	}
	if _, err := l.Read(l.LogStartOffset()-1, 100, l.HighWatermark()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}

	// Everything expires: the active segment is rolled and deleted too.
	clock.Advance(24 * time.Hour)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() != 1 || l.Size() != 0 || l.LogStartOffset() != 100 || l.LogEndOffset() != 100 {
		t.Fatalf("after full expiry: %d segments, %d bytes, start %d, end %d", l.NumSegments(), l.Size(), l.LogStartOffset(), l.LogEndOffset())
	}
	if chunk, err := l.Read(100, 100, 100); err != nil || len(chunk) != 0 {
		t.Fatalf("read at the end: %v", err)
	}
	l.Close()
	l2 := openLog(t, dir, cfg, Options{Now: clock.Now})
	if l2.LogStartOffset() != 100 || l2.LogEndOffset() != 100 {
		t.Fatalf("reopened: start %d end %d", l2.LogStartOffset(), l2.LogEndOffset())
	}
	if res := appendDurable(t, l2, simpleBatch(t, 1, 1, clock.Now().UnixMilli())); res.BaseOffset != 100 {
		t.Fatalf("append at %d", res.BaseOffset)
	}
}

func TestRetentionBySize(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 10
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 5 << 10
	l := openLog(t, t.TempDir(), cfg, Options{})
	for range 100 {
		appendDurable(t, l, simpleBatch(t, 1, 200, baseTS))
	}
	before := l.Size()
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	bases, sizes := segmentsOf(l)
	total := l.Size()
	if total >= before || total < cfg.RetentionBytes-cfg.SegmentBytes {
		t.Fatalf("size %d -> %d with retention %d", before, total, cfg.RetentionBytes)
	}
	if total-sizes[0] >= cfg.RetentionBytes {
		t.Fatalf("size %d: the first segment (%d bytes) should have gone", total, sizes[0])
	}
	if l.LogStartOffset() != bases[0] {
		t.Fatalf("log start %d, first segment %d", l.LogStartOffset(), bases[0])
	}
	// Cleanup policy without delete: no retention.
	cfg.Delete, cfg.RetentionBytes = false, 1
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Size() != total {
		t.Fatal("retention ran without cleanup.policy=delete")
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 10
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{})
	for range 40 {
		appendDurable(t, l, simpleBatch(t, 2, 100, baseTS)) // batch i: offsets 2i, 2i+1
	}
	hw := l.HighWatermark()
	segs := l.NumSegments()
	if _, err := l.DeleteRecordsBefore(hw + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past HW: %v", err)
	}
	start, err := l.DeleteRecordsBefore(31)
	if err != nil || start != 31 || l.LogStartOffset() != 31 {
		t.Fatalf("DeleteRecordsBefore(31) = %d, %v", start, err)
	}
	if l.NumSegments() >= segs {
		t.Fatal("no segment dropped")
	}
	bases, _ := segmentsOf(l)
	if bases[0] > 30 {
		t.Fatalf("dropped the segment holding offset 31 (first base %d)", bases[0])
	}
	if _, err := l.Read(30, 100, hw); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	if chunk, err := l.Read(31, 1, hw); err != nil || readChunk(t, chunk)[0].Header.BaseOffset != 30 {
		t.Fatalf("read at the new start: %v", err)
	}
	if start, err := l.DeleteRecordsBefore(10); err != nil || start != 31 {
		t.Fatalf("moving the start back: %d, %v", start, err)
	}
	// Persisted across a clean and an unclean restart.
	l.Close()
	l = openLog(t, dir, cfg, Options{})
	if l.LogStartOffset() != 31 {
		t.Fatalf("after reopen: start %d", l.LogStartOffset())
	}
	l.Close()
	removeCleanMarker(t, dir)
	l = openLog(t, dir, cfg, Options{})
	if l.LogStartOffset() != 31 {
		t.Fatalf("after crash: start %d", l.LogStartOffset())
	}
	// -1: up to the high watermark; the active segment goes too.
	if start, err := l.DeleteRecordsBefore(-1); err != nil || start != hw {
		t.Fatalf("DeleteRecordsBefore(-1) = %d, %v", start, err)
	}
	if l.NumSegments() != 1 || l.Size() != 0 {
		t.Fatalf("%d segments, %d bytes left", l.NumSegments(), l.Size())
	}
	l.Close()
	removeCleanMarker(t, dir)
	l = openLog(t, dir, cfg, Options{})
	if l.LogStartOffset() != hw || l.LogEndOffset() != hw {
		t.Fatalf("after crash: start %d end %d, want %d", l.LogStartOffset(), l.LogEndOffset(), hw)
	}
}

// TestDeleteRecordsPersistFailure: the new start is not reported when it
// could not be persisted.
func TestDeleteRecordsPersistFailure(t *testing.T) {
	ffs := newFaultFS()
	l := openLog(t, t.TempDir(), testConfig(), Options{FS: ffs})
	appendDurable(t, l, simpleBatch(t, 10, 10, baseTS))
	ffs.mu.Lock()
	ffs.failSync = func(name string) bool { return true }
	ffs.mu.Unlock()
	if _, err := l.DeleteRecordsBefore(5); !errors.Is(err, errInjected) {
		t.Fatalf("DeleteRecordsBefore with failing fsync: %v", err)
	}
	if l.LogStartOffset() != 0 {
		t.Fatalf("start moved to %d without being persisted", l.LogStartOffset())
	}
}
