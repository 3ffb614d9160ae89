package commitlog

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

// Open opens the log in dir, creating the directory and an empty log when
// needed, and recovers it:
//   - an unfinished compaction swap is completed, temporary files removed;
//   - after an unclean shutdown (no clean-shutdown marker), every segment at
//     or past the checkpointed recovery point, and the last segment, is
//     validated batch by batch (header, length, CRC, offsets): a segment is
//     truncated at its first invalid batch and the segments after it are
//     deleted; their indexes are rebuilt and the result fsynced;
//   - a missing or damaged index is rebuilt in any case;
//   - the idempotent-producer state is loaded from the newest usable
//     snapshot and the batch headers after it.
//
// The flusher goroutine is started; Close stops it.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:         dir,
		fs:          opts.FS,
		log:         opts.Logger,
		codecs:      opts.Codecs,
		onDurable:   opts.OnDurable,
		now:         opts.Now,
		cfg:         cfg,
		producers:   newProducerState(),
		hwCh:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		flusherDone: make(chan struct{}),
	}
	if l.fs == nil {
		l.fs = OSFS()
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.codecs == nil {
		l.codecs = records.NewCodecs()
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.closeFiles()
		}
		return nil, fmt.Errorf("commitlog: open %s: %w", dir, err)
	}
	go l.flushLoop()
	return l, nil
}

func (l *Log) recover() error {
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	markerPath := filepath.Join(l.dir, cleanMarkerName)
	clean := false
	if _, err := l.fs.Stat(markerPath); err == nil {
		clean = true
		if err := l.fs.Remove(markerPath); err != nil {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	ck, err := readCheckpoint(l.fs, l.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.log.Warn("commitlog: ignoring checkpoint", "dir", l.dir, "err", err)
		}
		ck = checkpoint{}
	}

	bases, err := l.prepareDir()
	if err != nil {
		return err
	}

	var touched []*segment // segments whose log or indexes recovery rewrote
	for i := 0; i < len(bases); i++ {
		base := bases[i]
		last := i == len(bases)-1
		full := !clean && (base >= ck.recoveryPoint || last)
		s, truncated, rewrote, err := l.openSegment(base, full)
		if err != nil {
			return err
		}
		s.refs.Store(1)
		l.segs = append(l.segs, s)
		if rewrote {
			touched = append(touched, s)
		}
		if truncated && full && !last {
			for _, b := range bases[i+1:] {
				l.log.Warn("commitlog: deleting segment after a truncated one", "dir", l.dir, "base", b)
				if err := l.removeSegmentFiles(b); err != nil {
					return err
				}
			}
			bases = bases[:i+1]
		}
	}
	if len(l.segs) == 0 {
		s, err := createSegment(l.fs, l.dir, ck.logStart, l.cfg.IndexIntervalBytes)
		if err != nil {
			return err
		}
		s.refs.Store(1)
		s.created = l.now()
		l.segs = append(l.segs, s)
		touched = append(touched, s)
	}

	// Closed segments keep no index file open; the active one appends.
	for _, s := range l.segs[:len(l.segs)-1] {
		if err := s.closeIndexFiles(); err != nil {
			return err
		}
		s.durMaxTs, s.durMaxTsOff = s.ib.maxTs, s.ib.maxTsOff
	}
	act := l.active()
	if act.idxF == nil {
		act.idxF, act.tidxF, err = writeIndexFiles(l.fs, act.idxPath(), act.tidxPath(), act.ib.index, act.ib.tindex, false)
		if err != nil {
			return err
		}
	}
	act.durMaxTs, act.durMaxTsOff = act.ib.maxTs, act.ib.maxTsOff
	act.created = l.firstBatchTime(act)

	for _, s := range touched {
		for _, f := range []File{s.log, s.idxF, s.tidxF} {
			if f != nil {
				if err := f.Sync(); err != nil {
					return err
				}
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}

	l.leo = act.next
	l.hw = l.leo
	l.logStart = max(ck.logStart, l.segs[0].base)
	if l.logStart > l.leo {
		l.log.Warn("commitlog: log start offset past the recovered end; using the end", "dir", l.dir, "logStart", l.logStart, "end", l.leo)
		l.logStart = l.leo
	}
	l.cleanerOffset = ck.cleanerOffset
	l.recoveryPoint = act.base
	if err := l.recoverProducers(); err != nil {
		return err
	}
	l.written = checkpoint{logStart: l.logStart, recoveryPoint: l.recoveryPoint, cleanerOffset: l.cleanerOffset}
	if l.written != ck {
		if err := writeCheckpoint(l.fs, l.dir, l.written); err != nil {
			return err
		}
	}
	// The ages of the tombstones kept by earlier compactions are not
	// persisted: let the first compaction pass look at them.
	l.tombstoneExpiry = l.now()
	return nil
}

// prepareDir finishes compaction swaps, removes temporary and orphan files,
// and returns the base offsets of the segments, ascending.
func (l *Log) prepareDir() ([]int64, error) {
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	logs := map[int64]bool{}
	type swap struct{ base, end int64 }
	var swaps []swap
	var indexes []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix), strings.HasSuffix(name, cleanedSuffix):
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, err
			}
		case strings.HasSuffix(name, swapSuffix):
			if b, end, ok := parseSwapName(name); ok {
				swaps = append(swaps, swap{b, end})
			}
		case strings.HasSuffix(name, logSuffix):
			if b, ok := parseBaseName(strings.TrimSuffix(name, logSuffix)); ok {
				logs[b] = true
			}
		case strings.HasSuffix(name, indexSuffix), strings.HasSuffix(name, timeIndexSuffix):
			indexes = append(indexes, name)
		}
	}
	slices.SortFunc(swaps, func(a, b swap) int { return cmp.Compare(a.base, b.base) })
	for _, sw := range swaps {
		l.log.Warn("commitlog: completing an interrupted compaction swap", "dir", l.dir, "base", sw.base, "end", sw.end)
		for b := range logs {
			if b >= sw.base && b < sw.end {
				if err := l.removeSegmentFiles(b); err != nil {
					return nil, err
				}
				delete(logs, b)
			}
		}
		if err := l.removeIndexFiles(sw.base); err != nil {
			return nil, err
		}
		swapPath := filepath.Join(l.dir, segmentName(sw.base)+"-"+segmentName(sw.end)+swapSuffix)
		if err := l.fs.Rename(swapPath, filepath.Join(l.dir, segmentName(sw.base)+logSuffix)); err != nil {
			return nil, err
		}
		logs[sw.base] = true
	}
	for _, name := range indexes {
		b, ok := parseBaseName(strings.TrimSuffix(strings.TrimSuffix(name, timeIndexSuffix), indexSuffix))
		if !ok || !logs[b] {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
	}
	bases := make([]int64, 0, len(logs))
	for b := range logs {
		bases = append(bases, b)
	}
	slices.Sort(bases)
	return bases, nil
}

func (l *Log) removeIndexFiles(base int64) error {
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := l.fs.Remove(filepath.Join(l.dir, segmentName(base)+suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// removeSegmentFiles removes a segment's .log, then its indexes (an index
// without its log is an orphan that Open removes).
func (l *Log) removeSegmentFiles(base int64) error {
	if err := l.fs.Remove(filepath.Join(l.dir, segmentName(base)+logSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return l.removeIndexFiles(base)
}

// openSegment opens the segment at base. In full mode every batch is
// validated (CRC included) and the indexes rebuilt; otherwise the indexes are
// loaded and checked, the batches after the last index entry scanned, and the
// indexes rebuilt from headers only when damaged. truncated reports that the
// log was cut at an invalid batch; rewrote that files were rewritten.
func (l *Log) openSegment(base int64, full bool) (s *segment, truncated, rewrote bool, err error) {
	s = &segment{dir: l.dir, base: base, next: base, ib: newIndexBuilder(base, l.cfg.IndexIntervalBytes), durMaxTs: -1, durMaxTsOff: -1}
	s.log, err = l.fs.OpenFile(s.logPath(), os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, false, false, err
	}
	defer func() {
		if err != nil {
			s.closeFiles()
		}
	}()
	st, err := s.log.Stat()
	if err != nil {
		return nil, false, false, err
	}
	fileSize := st.Size()
	if !full {
		ok, err := l.loadIndexes(s, fileSize)
		if err != nil {
			return nil, false, false, err
		}
		if ok {
			return s, s.size < fileSize, s.size < fileSize, l.truncateTail(s, fileSize)
		}
		l.log.Info("commitlog: rebuilding indexes", "segment", s.logPath())
	}
	// Scan the whole segment, rebuilding both indexes.
	mode := scanHeaders
	if full {
		mode = scanVerify
	}
	sc := newScanner(s.log, fileSize, base, 0, base, mode)
	for {
		h, pos, _, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, errCorruptBatch) {
				return nil, false, false, err
			}
			l.log.Warn("commitlog: truncating segment at an invalid batch", "segment", s.logPath(), "err", err)
			break
		}
		s.ib.add(h.BaseOffset, h.MaxTimestamp, pos, h.Size())
		s.next = h.LastOffset() + 1
	}
	s.size = sc.pos
	if err := l.truncateTail(s, fileSize); err != nil {
		return nil, false, false, err
	}
	s.ib.addTimeEntry()
	s.ib.takeNew()
	s.idxF, s.tidxF, err = writeIndexFiles(l.fs, s.idxPath(), s.tidxPath(), s.ib.index, s.ib.tindex, false)
	if err != nil {
		return nil, false, false, err
	}
	return s, s.size < fileSize, true, nil
}

// truncateTail cuts the log file to s.size when it is longer.
func (l *Log) truncateTail(s *segment, fileSize int64) error {
	if s.size >= fileSize {
		return nil
	}
	l.log.Warn("commitlog: truncating segment", "segment", s.logPath(), "from", fileSize, "to", s.size)
	return s.log.Truncate(s.size)
}

// loadIndexes loads and checks a segment's index files, then scans the
// batches after the last offset index entry (headers only) to find the
// segment's end. ok is false when the indexes must be rebuilt.
func (l *Log) loadIndexes(s *segment, fileSize int64) (ok bool, err error) {
	ib, err := readWholeFile(l.fs, s.idxPath())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	tb, err := readWholeFile(l.fs, s.tidxPath())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	idx, err := decodeOffsetIndex(ib, fileSize)
	if err != nil {
		l.log.Warn("commitlog: damaged offset index", "segment", s.logPath(), "err", err)
		return false, nil
	}
	tidx, err := decodeTimeIndex(tb)
	if err != nil {
		l.log.Warn("commitlog: damaged time index", "segment", s.logPath(), "err", err)
		return false, nil
	}
	// Scan from the last index entry, whose batch must start there.
	pos, minNext := int64(0), s.base
	if n := len(idx); n > 0 {
		pos, minNext = int64(idx[n-1].pos), s.base+int64(idx[n-1].rel)
	}
	sc := newScanner(s.log, fileSize, s.base, pos, minNext, scanHeaders)
	var since int64
	maxTs, maxTsOff := int64(-1), int64(-1)
	if n := len(tidx); n > 0 {
		maxTs, maxTsOff = tidx[n-1].ts, s.base+int64(tidx[n-1].rel)
	}
	first := true
	next := minNext
	for {
		h, _, _, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, errCorruptBatch) {
				return false, err
			}
			if first && pos > 0 {
				l.log.Warn("commitlog: offset index does not match the log", "segment", s.logPath(), "err", err)
				return false, nil
			}
			l.log.Warn("commitlog: invalid batch in a segment that was fsynced", "segment", s.logPath(), "err", err)
			break
		}
		if first && pos > 0 && h.BaseOffset != minNext {
			l.log.Warn("commitlog: offset index does not match the log", "segment", s.logPath())
			return false, nil
		}
		first = false
		since += int64(h.Size())
		if h.MaxTimestamp > maxTs {
			maxTs, maxTsOff = h.MaxTimestamp, h.BaseOffset
		}
		next = h.LastOffset() + 1
	}
	if n := len(tidx); n > 0 && s.base+int64(tidx[n-1].rel) >= next {
		l.log.Warn("commitlog: time index past the end of the log", "segment", s.logPath())
		return false, nil
	}
	s.size = sc.pos
	s.next = next
	if s.size == 0 {
		s.next = s.base
	}
	s.ib.restore(idx, tidx, since, maxTs, maxTsOff, s.size > 0)
	s.idxF, err = l.fs.OpenFile(s.idxPath(), os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	s.tidxF, err = l.fs.OpenFile(s.tidxPath(), os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	return true, nil
}

// firstBatchTime is the creation time used for segment.ms: the first batch's
// max timestamp when it is not in the future, else now.
func (l *Log) firstBatchTime(s *segment) time.Time {
	now := l.now()
	if s.size < records.HeaderSize {
		return now
	}
	b := make([]byte, records.HeaderSize)
	if err := readFull(s.log, b, 0); err != nil {
		return now
	}
	h, err := parseHeaderOnly(b)
	if err != nil || h.MaxTimestamp <= 0 {
		return now
	}
	if t := time.UnixMilli(h.MaxTimestamp); t.Before(now) {
		return t
	}
	return now
}

// recoverProducers loads the newest usable snapshot not past the log end and
// replays the batch headers after it.
func (l *Log) recoverProducers() error {
	offs, err := listSnapshots(l.fs, l.dir)
	if err != nil {
		return err
	}
	from := l.segs[0].base
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		path := filepath.Join(l.dir, snapshotName(off))
		if off > l.leo {
			l.log.Warn("commitlog: removing producer snapshot past the log end", "snapshot", path)
			if err := l.fs.Remove(path); err != nil {
				return err
			}
			continue
		}
		b, err := readWholeFile(l.fs, path)
		if err != nil {
			return err
		}
		p, got, err := decodeSnapshot(b)
		if err != nil || got != off {
			l.log.Warn("commitlog: ignoring producer snapshot", "snapshot", path, "err", err)
			continue
		}
		l.producers = p
		from = off
		break
	}
	nowMs := l.now().UnixMilli()
	return l.scanHeaders(from, func(h records.BatchHeader) { l.producers.replay(h, nowMs) })
}

// scanHeaders calls fn for the header of every batch with a last offset >=
// from, in order. Used while the log is being opened (no locking).
func (l *Log) scanHeaders(from int64, fn func(records.BatchHeader)) error {
	for _, s := range l.segs {
		if s.next <= from || s.size == 0 {
			continue
		}
		pos, minNext := int64(0), s.base
		if rel, p, ok := lookupIndex(s.ib.index, relOffset(s.base, from)); ok && from > s.base {
			pos, minNext = p, s.base+int64(rel)
		}
		sc := newScanner(s.log, s.size, s.base, pos, minNext, scanHeaders)
		for {
			h, _, _, err := sc.next()
			if err == io.EOF {
				break
			}
			if errors.Is(err, errCorruptBatch) {
				l.log.Warn("commitlog: invalid batch while rebuilding producer state; skipping the rest of the segment", "segment", s.logPath(), "err", err)
				break
			}
			if err != nil {
				return fmt.Errorf("scanning %s: %w", s.logPath(), err)
			}
			if h.LastOffset() >= from {
				fn(h)
			}
		}
	}
	return nil
}
