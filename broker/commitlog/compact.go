package commitlog

// Compaction (cleanup.policy=compact).
//
// A pass considers the closed, fsynced segments below the high watermark, up
// to the first one whose largest timestamp is younger than
// min.compaction.lag.ms (the "cleanable range"). It runs when the segments
// not yet cleaned (at or past the cleaner offset) make up at least
// MinCleanableDirtyRatio of the range's bytes, or when a tombstone kept by an
// earlier pass has become old enough to remove. It:
//
//  1. maps every key of the range to the offset of its latest record;
//  2. rewrites consecutive segments, grouped while they fit segment.bytes,
//     keeping a record only if it has a key, is the latest for its key, and
//     is not a tombstone (null value) older than delete.retention.ms (by its
//     record timestamp). Batches keep their base offset, producer fields and
//     offset span (lastOffsetDelta); a batch left without records is dropped,
//     except that it is kept empty when it is the latest batch of a known
//     idempotent producer (so that producer state can be rebuilt from the
//     log) or the last batch of the cleanable range (so that a reader at any
//     offset below the high watermark finds a batch to move past, even when
//     the active segment is empty). Control batches are kept unchanged;
//  3. swaps each rewritten group in crash-safely:
//     write <base>.log.cleaned and its indexes (.index.cleaned,
//     .timeindex.cleaned), fsync them; rename the log to
//     <base>-<end>.log.swap and fsync the directory (from here on, recovery
//     completes the swap); remove the group's other segments; rename the
//     indexes and then the log to their final names; fsync the directory.
//     Open deletes *.cleaned files and completes any *.log.swap: it removes
//     the segments with base offsets in [base, end) and renames the swap file
//     to <base>.log, rebuilding its indexes.
//
// Memory: the key map holds every distinct key of the cleanable range.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

// errStopped aborts a compaction pass when the log is closing.
var errStopped = errors.New("commitlog: compaction stopped")

// compactionStats describes one pass, for logs and tests.
type compactionStats struct {
	segmentsIn, segmentsOut int
	recordsIn, recordsOut   int
	bytesIn, bytesOut       int64
}

// compact runs one compaction pass; the caller holds l.maintMu.
func (l *Log) compact(ctx context.Context, cfg Config) (compactionStats, error) {
	var st compactionStats
	now := l.now()
	l.mu.RLock()
	var cands []segmentRef
	for _, s := range l.segs[:len(l.segs)-1] {
		if slices.Contains(l.unsynced, s) || s.next > l.hw {
			break
		}
		if cfg.MinCompactionLag > 0 && s.durMaxTs > now.Add(-cfg.MinCompactionLag).UnixMilli() {
			break
		}
		cands = append(cands, segmentRef{s: s, size: s.size})
	}
	cleaned, tombDue := l.cleanerOffset, l.tombstoneExpiry
	l.mu.RUnlock()
	if len(cands) == 0 {
		return st, nil
	}
	var dirty, total int64
	for _, r := range cands {
		total += r.size
		if r.s.next > cleaned {
			dirty += r.size
		}
	}
	due := !tombDue.IsZero() && !now.Before(tombDue)
	if !due && (dirty == 0 || float64(dirty) < cfg.MinCleanableDirtyRatio*float64(total)) {
		return st, nil
	}
	// The candidates stay referenced by l.segs: only this goroutine (holding
	// maintMu) removes closed segments.
	end := cands[len(cands)-1].s.next

	latest, err := l.mapKeys(ctx, cands)
	if err != nil {
		return st, err
	}
	horizon := now.Add(-cfg.DeleteRetention).UnixMilli()
	var nextTomb int64 = math.MaxInt64

	var w *groupWriter
	finish := func() error {
		gs, err := w.finish(ctx)
		w = nil
		st.segmentsIn += gs.segmentsIn
		st.segmentsOut += gs.segmentsOut
		st.recordsIn += gs.recordsIn
		st.recordsOut += gs.recordsOut
		st.bytesIn += gs.bytesIn
		st.bytesOut += gs.bytesOut
		return err
	}
	for _, r := range cands {
		if w != nil && !w.fits(r) {
			if err := finish(); err != nil {
				return st, err
			}
		}
		if w == nil {
			if w, err = l.newGroupWriter(cfg, r.s.base, latest, horizon, end-1); err != nil {
				return st, err
			}
		}
		if err := w.add(ctx, r); err != nil {
			w.abort()
			return st, compactionError(err)
		}
		nextTomb = min(nextTomb, w.nextTomb)
	}
	if err := finish(); err != nil {
		return st, err
	}
	l.mu.Lock()
	l.cleanerOffset = max(l.cleanerOffset, end)
	l.tombstoneExpiry = time.Time{}
	if nextTomb != math.MaxInt64 {
		l.tombstoneExpiry = time.UnixMilli(nextTomb).Add(cfg.DeleteRetention)
	}
	l.mu.Unlock()
	l.log.Info("commitlog: compacted", "dir", l.dir, "segmentsIn", st.segmentsIn, "segmentsOut", st.segmentsOut,
		"recordsIn", st.recordsIn, "recordsOut", st.recordsOut, "bytesIn", st.bytesIn, "bytesOut", st.bytesOut)
	return st, nil
}

func (l *Log) stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-l.stop:
		return errStopped
	default:
		return nil
	}
}

// forEachBatch calls fn for every batch of the segment, whole.
func forEachSegmentBatch(r segmentRef, fn func(h records.BatchHeader, raw []byte) error) error {
	sc := newScanner(r.s.log, r.size, r.s.base, 0, r.s.base, scanRaw)
	for {
		h, _, raw, err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r.s.logPath(), err)
		}
		if err := fn(h, raw); err != nil {
			return err
		}
	}
}

// mapKeys returns, for every key of the segments, the offset of its latest
// record.
func (l *Log) mapKeys(ctx context.Context, cands []segmentRef) (map[string]int64, error) {
	latest := make(map[string]int64)
	var recs []records.Record
	for _, r := range cands {
		if err := l.stopped(ctx); err != nil {
			return nil, err
		}
		err := forEachSegmentBatch(r, func(h records.BatchHeader, raw []byte) error {
			if h.IsControl() || h.NumRecords == 0 {
				return nil
			}
			var err error
			_, recs, err = l.codecs.AppendRecords(recs[:0], raw)
			if err != nil {
				return fmt.Errorf("decoding batch at offset %d: %w", h.BaseOffset, err)
			}
			for i := range recs {
				if recs[i].Key != nil {
					latest[string(recs[i].Key)] = h.BaseOffset + int64(recs[i].OffsetDelta)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("commitlog: compaction: %w", err)
		}
	}
	return latest, nil
}

func compactionError(err error) error {
	if errors.Is(err, errStopped) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrLogFailed) {
		return err
	}
	return fmt.Errorf("commitlog: compaction: %w", err)
}

// groupWriter rewrites a group of consecutive segments into one new
// segment (with the base offset of the first) and swaps it in.
type groupWriter struct {
	l        *Log
	cfg      Config
	latest   map[string]int64
	horizon  int64
	lastOff  int64 // last offset of the cleanable range
	nextTomb int64 // smallest timestamp of the tombstones kept
	group    []segmentRef
	ns       *segment
	changed  bool // the output differs from the input
	st       compactionStats
	recs     []records.Record
	keep     []records.Record

	cleanedLog, cleanedIdx, cleanedTidx string
}

func (l *Log) newGroupWriter(cfg Config, base int64, latest map[string]int64, horizon, lastOff int64) (*groupWriter, error) {
	ns := &segment{dir: l.dir, base: base, next: base, ib: newIndexBuilder(base, cfg.IndexIntervalBytes)}
	w := &groupWriter{l: l, cfg: cfg, latest: latest, horizon: horizon, lastOff: lastOff, nextTomb: math.MaxInt64, ns: ns,
		cleanedLog: ns.logPath() + cleanedSuffix, cleanedIdx: ns.idxPath() + cleanedSuffix, cleanedTidx: ns.tidxPath() + cleanedSuffix}
	f, err := l.fs.OpenFile(w.cleanedLog, os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, compactionError(err)
	}
	ns.log = f
	return w, nil
}

// fits reports whether segment r may join the group: the output so far and
// r's current size fit segment.bytes, and the offsets fit the index.
func (w *groupWriter) fits(r segmentRef) bool {
	return w.ns.size+r.size <= w.cfg.SegmentBytes && r.s.next-1-w.ns.base <= math.MaxUint32
}

// abort closes and removes the temporary files.
func (w *groupWriter) abort() {
	w.ns.closeFiles()
	for _, p := range []string{w.cleanedLog, w.cleanedIdx, w.cleanedTidx} {
		w.l.fs.Remove(p)
	}
}

// add writes the records of segment r that survive.
func (w *groupWriter) add(ctx context.Context, r segmentRef) error {
	if err := w.l.stopped(ctx); err != nil {
		return err
	}
	w.group = append(w.group, r)
	if len(w.group) > 1 {
		w.changed = true
	}
	w.st.segmentsIn++
	w.st.bytesIn += r.size
	ns := w.ns
	return forEachSegmentBatch(r, func(h records.BatchHeader, raw []byte) error {
		out, err := w.filter(h, raw)
		if err != nil || out == nil {
			return err
		}
		if ns.size+int64(len(out)) > maxSegmentBytes {
			return fmt.Errorf("compacted segment at %d would exceed 4 GiB", ns.base)
		}
		if _, err := ns.log.Write(out); err != nil {
			return err
		}
		ns.ib.add(h.BaseOffset, parsedMaxTs(out, h), ns.size, len(out))
		ns.size += int64(len(out))
		ns.next = h.LastOffset() + 1
		return nil
	})
}

// filter returns the batch to write for the input batch raw (raw itself
// when nothing changes), or nil to drop it.
func (w *groupWriter) filter(h records.BatchHeader, raw []byte) ([]byte, error) {
	if h.IsControl() || h.NumRecords == 0 {
		return raw, nil
	}
	var err error
	_, w.recs, err = w.l.codecs.AppendRecords(w.recs[:0], raw)
	if err != nil {
		return nil, fmt.Errorf("decoding batch at offset %d: %w", h.BaseOffset, err)
	}
	w.st.recordsIn += len(w.recs)
	w.keep = w.keep[:0]
	for i := range w.recs {
		rec := &w.recs[i]
		if rec.Key == nil || w.latest[string(rec.Key)] != h.BaseOffset+int64(rec.OffsetDelta) {
			continue
		}
		if rec.Value == nil {
			t := recordTime(h, rec)
			if t < w.horizon {
				continue
			}
			w.nextTomb = min(w.nextTomb, t)
		}
		w.keep = append(w.keep, *rec)
	}
	w.st.recordsOut += len(w.keep)
	if len(w.keep) == len(w.recs) {
		return raw, nil
	}
	w.changed = true
	if len(w.keep) == 0 && h.LastOffset() != w.lastOff && !w.l.isProducersLastBatch(h) {
		return nil, nil
	}
	out, err := w.l.codecs.Build(h, w.keep)
	if err != nil {
		return nil, fmt.Errorf("rebuilding batch at offset %d: %w", h.BaseOffset, err)
	}
	return out, nil
}

// finish swaps the new segment in for the group (see the top of this
// file), or just removes the temporary files when nothing changed.
func (w *groupWriter) finish(ctx context.Context) (compactionStats, error) {
	l, ns, st := w.l, w.ns, w.st
	if !w.changed {
		w.abort()
		st.segmentsOut, st.bytesOut = len(w.group), st.bytesIn
		return st, nil
	}
	st.segmentsOut, st.bytesOut = 1, ns.size
	fail := func(err error) (compactionStats, error) {
		w.abort()
		return st, compactionError(err)
	}
	ns.ib.addTimeEntry()
	ns.ib.takeNew()
	var err error
	ns.idxF, ns.tidxF, err = writeIndexFiles(l.fs, w.cleanedIdx, w.cleanedTidx, ns.ib.index, ns.ib.tindex, true)
	if err != nil {
		return fail(err)
	}
	if err := ns.closeIndexFiles(); err != nil {
		return fail(err)
	}
	if err := ns.log.Sync(); err != nil {
		return fail(err)
	}
	if err := l.stopped(ctx); err != nil {
		return fail(err)
	}
	end := w.group[len(w.group)-1].s.next
	swapPath := filepath.Join(l.dir, segmentName(ns.base)+"-"+segmentName(end)+swapSuffix)
	if err := l.fs.Rename(w.cleanedLog, swapPath); err != nil {
		return fail(err)
	}

	// Past this point the swap is decided: a failure fences the log and
	// the next Open completes the swap.
	failSwap := func(err error) (compactionStats, error) {
		ns.closeFiles()
		l.mu.Lock()
		err = l.fail(fmt.Errorf("compaction swap at %d: %w", ns.base, err))
		l.mu.Unlock()
		return st, err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return failSwap(err)
	}
	for _, r := range w.group[1:] {
		if err := l.removeSegmentFiles(r.s.base); err != nil {
			return failSwap(err)
		}
	}
	if err := l.fs.Rename(w.cleanedIdx, ns.idxPath()); err != nil {
		return failSwap(err)
	}
	if err := l.fs.Rename(w.cleanedTidx, ns.tidxPath()); err != nil {
		return failSwap(err)
	}
	if err := l.fs.Rename(swapPath, ns.logPath()); err != nil {
		return failSwap(err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return failSwap(err)
	}

	ns.durMaxTs, ns.durMaxTsOff = ns.ib.maxTs, ns.ib.maxTsOff
	ns.refs.Store(1)
	l.mu.Lock()
	first := slices.Index(l.segs, w.group[0].s)
	n := len(w.group)
	if first < 0 || first+n > len(l.segs) || l.segs[first+n-1] != w.group[n-1].s {
		l.mu.Unlock()
		return failSwap(errors.New("segment list changed during compaction"))
	}
	l.segs = slices.Replace(l.segs, first, first+n, ns)
	l.mu.Unlock()
	for _, r := range w.group {
		r.s.release()
	}
	return st, nil
}

// parsedMaxTs returns the max timestamp of the batch out (rebuilt batches
// may carry a smaller one than the original header h).
func parsedMaxTs(out []byte, h records.BatchHeader) int64 {
	if nh, err := parseHeaderOnly(out); err == nil {
		return nh.MaxTimestamp
	}
	return h.MaxTimestamp
}

func (l *Log) isProducersLastBatch(h records.BatchHeader) bool {
	if !tracked(h) {
		return false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.producers.isLastBatch(h.ProducerID, h.BaseOffset)
}
