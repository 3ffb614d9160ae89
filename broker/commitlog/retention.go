package commitlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Maintain runs the periodic work of the log, in this order:
//   - rolls the active segment when it is older than segment.ms (so that
//     retention and compaction can reach its data);
//   - when cleanup.policy has delete: time retention (segments whose largest
//     timestamp is older than retention.ms) and size retention (oldest
//     segments while the log exceeds retention.bytes). Segments go from the
//     oldest on, only whole, only below the high watermark; the active
//     segment is rolled first when it must go too. The log start offset
//     advances to the first remaining segment;
//   - when cleanup.policy has compact: one compaction pass (see compact.go);
//   - expires idempotent producers not seen for ProducerExpiry;
//   - writes producer snapshots taken at rolls (once their offset is
//     durable) and the checkpoint.
//
// It is called periodically by the broker; calls are serialized. ctx
// cancels a running compaction (so does Close). It returns ErrClosed on a
// closed log and the compaction or I/O error otherwise.
func (l *Log) Maintain(ctx context.Context) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return err
	}
	cfg := l.cfg
	act := l.active()
	var err error
	if act.size > 0 && l.now().Sub(act.created) >= cfg.SegmentMs {
		err = l.rollLocked()
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}

	var errs []error
	if cfg.Delete {
		if err := l.applyRetention(cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Compact {
		// Compaction only takes fsynced segments: let the flusher finish
		// with the rolled ones first.
		if err := l.waitRolledSynced(ctx); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if _, err := l.compact(ctx, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	if n := l.producers.expire(l.now().Add(-cfg.ProducerExpiry).UnixMilli()); n > 0 {
		l.log.Info("commitlog: expired idempotent producers", "dir", l.dir, "count", n)
	}
	l.mu.Unlock()
	if err := l.writePendingSnapshots(); err != nil {
		errs = append(errs, err)
	}
	if err := l.persistCheckpoint(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// applyRetention deletes segments by time and size; the caller holds
// maintMu.
func (l *Log) applyRetention(cfg Config) error {
	if cfg.RetentionMs < 0 && cfg.RetentionBytes < 0 {
		return nil
	}
	cutoff := l.now().Add(-cfg.RetentionMs).UnixMilli()
	l.mu.Lock()
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	n := 0
	for i, s := range l.segs {
		if (i == len(l.segs)-1 && s.size == 0) || s.next > l.hw {
			break
		}
		byTime := cfg.RetentionMs >= 0 && l.segmentMaxTime(s) < cutoff
		bySize := cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size
		n++
	}
	if n == len(l.segs) {
		if err := l.rollLocked(); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	dropped := l.dropFrontLocked(n)
	l.mu.Unlock()
	return l.removeDropped(dropped, "retention")
}

// segmentMaxTime is a segment's largest timestamp, or its file's
// modification time when it has none.
func (l *Log) segmentMaxTime(s *segment) int64 {
	if ts, _ := s.maxTimestamp(); ts >= 0 {
		return ts
	}
	if st, err := s.log.Stat(); err == nil {
		return st.ModTime().UnixMilli()
	}
	return l.now().UnixMilli()
}

// dropFrontLocked removes the first n segments (never the last one) from
// the list and advances the log start offset; the caller holds l.mu and
// removes the files with removeDropped.
func (l *Log) dropFrontLocked(n int) []*segment {
	n = min(n, len(l.segs)-1)
	if n <= 0 {
		return nil
	}
	dropped := slices.Clone(l.segs[:n])
	l.segs = slices.Delete(l.segs, 0, n)
	l.logStart = max(l.logStart, l.segs[0].base)
	for _, s := range dropped {
		if i := slices.Index(l.unsynced, s); i >= 0 {
			l.unsynced = slices.Delete(l.unsynced, i, i+1)
		}
	}
	return dropped
}

func (l *Log) removeDropped(dropped []*segment, why string) error {
	var errs []error
	for _, s := range dropped {
		l.log.Info("commitlog: deleting segment", "reason", why, "segment", s.logPath(), "bytes", s.size)
		s.release()
		if err := l.removeSegmentFiles(s.base); err != nil {
			errs = append(errs, err)
		}
	}
	if len(dropped) > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeleteRecordsBefore makes offset the new log start offset (DeleteRecords):
// offset -1 means the high watermark; an offset above the high watermark is
// ErrOffsetOutOfRange; one at or below the current start changes nothing.
// The new start is fsynced before DeleteRecordsBefore returns; the segments
// wholly below it are deleted (the active one is rolled first when needed).
// It returns the log start offset.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	if offset == -1 {
		offset = l.hw
	}
	if offset < 0 || offset > l.hw {
		hw := l.hw
		l.mu.Unlock()
		return 0, fmt.Errorf("%w: delete records before %d, high watermark %d", ErrOffsetOutOfRange, offset, hw)
	}
	if offset <= l.logStart {
		start := l.logStart
		l.mu.Unlock()
		return start, nil
	}
	ck := checkpoint{logStart: offset, recoveryPoint: l.recoveryPoint, cleanerOffset: l.cleanerOffset}
	l.mu.Unlock()

	if err := writeCheckpoint(l.fs, l.dir, ck); err != nil {
		return 0, fmt.Errorf("commitlog: persisting log start offset: %w", err)
	}

	l.mu.Lock()
	l.written = ck
	l.logStart = max(l.logStart, offset)
	n := 0
	for i, s := range l.segs {
		if (i == len(l.segs)-1 && s.size == 0) || s.next > offset {
			break
		}
		n++
	}
	var err error
	if n == len(l.segs) {
		err = l.rollLocked()
	}
	dropped := l.dropFrontLocked(n)
	start := l.logStart
	l.mu.Unlock()
	return start, errors.Join(err, l.removeDropped(dropped, "delete records"))
}

// persistCheckpoint writes the checkpoint when it changed; the caller holds
// maintMu.
func (l *Log) persistCheckpoint() error {
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	l.mu.RLock()
	ck := checkpoint{logStart: l.logStart, recoveryPoint: l.recoveryPoint, cleanerOffset: l.cleanerOffset}
	same := ck == l.written
	l.mu.RUnlock()
	if same {
		return nil
	}
	if err := writeCheckpoint(l.fs, l.dir, ck); err != nil {
		return fmt.Errorf("commitlog: checkpoint: %w", err)
	}
	l.mu.Lock()
	l.written = ck
	l.mu.Unlock()
	return nil
}

// writePendingSnapshots writes the producer snapshots taken at rolls whose
// offset is durable; the caller holds maintMu.
func (l *Log) writePendingSnapshots() error {
	l.mu.Lock()
	var ready []pendingSnapshot
	for len(l.pendingSnaps) > 0 && l.pendingSnaps[0].off <= l.hw {
		ready = append(ready, l.pendingSnaps[0])
		l.pendingSnaps = l.pendingSnaps[1:]
	}
	l.mu.Unlock()
	for _, p := range ready {
		if err := writeSnapshot(l.fs, l.dir, p.state, p.off); err != nil {
			return fmt.Errorf("commitlog: producer snapshot: %w", err)
		}
	}
	return nil
}

// waitRolledSynced waits until the flusher has fsynced every rolled segment.
func (l *Log) waitRolledSynced(ctx context.Context) error {
	for {
		l.mu.RLock()
		n, failed, ch := len(l.unsynced), l.failed, l.hwCh
		l.mu.RUnlock()
		if failed != nil {
			return failed
		}
		if n == 0 {
			return nil
		}
		l.kickFlusher()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.stop:
			return ErrClosed
		}
	}
}
