// Package commitlog is the durable, segmented log of one partition of the
// broker: record batches appended with broker-assigned offsets, acknowledged
// after fsync (group commit), read back by offset or timestamp, deleted by
// retention or DeleteRecords, and compacted for cleanup.policy=compact.
//
// The on-disk formats are documented in segment.go (directory layout and
// .log files), index.go (.index and .timeindex), producers.go (producer
// snapshots) and checkpoint.go (checkpoint and clean-shutdown marker).
//
// Concurrency: every method of Log is safe for concurrent use. Lock order:
// Log.maintMu (Maintain, DeleteRecordsBefore, Close) before Log.ckMu
// (checkpoint writes) before Log.mu (all in-memory state). No I/O other than
// appends to the active segment, file creation at rolls and index writes
// happens under Log.mu; fsyncs never do. One goroutine, the flusher, is owned
// by each Log and stopped by Close.
package commitlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

// Errors. The broker maps ErrOffsetOutOfRange, ErrOutOfOrderSequence and
// ErrInvalidProducerEpoch to the Kafka error codes of the same names.
var (
	ErrOffsetOutOfRange     = errors.New("commitlog: offset out of range")
	ErrOutOfOrderSequence   = errors.New("commitlog: out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("commitlog: invalid producer epoch")
	ErrClosed               = errors.New("commitlog: log closed")
	// ErrLogFailed wraps an I/O failure (fsync, write, rename) after which the
	// log cannot know what is on disk: it refuses appends and durability
	// waits until it is closed and reopened, which recovers it from disk.
	ErrLogFailed = errors.New("commitlog: log failed")
	// ErrInvalidBatch rejects an Append of bytes that are not exactly one v2
	// batch each.
	ErrInvalidBatch = errors.New("commitlog: invalid batch")
	// ErrInvalidConfig names the bad Config field.
	ErrInvalidConfig = errors.New("commitlog: invalid config")
)

// Config is the per-partition configuration (topic configs).
type Config struct {
	SegmentBytes     int64         // segment.bytes (default 1 GiB, at most 4 GiB - 1)
	SegmentMs        time.Duration // segment.ms: roll the active segment after this age (default 7 days)
	RetentionBytes   int64         // retention.bytes: -1 = unlimited (default -1)
	RetentionMs      time.Duration // retention.ms: < 0 = unlimited (default 7 days)
	Compact          bool          // cleanup.policy contains compact
	Delete           bool          // cleanup.policy contains delete (default true)
	DeleteRetention  time.Duration // delete.retention.ms: how long tombstones survive compaction (default 1 day)
	MinCompactionLag time.Duration // min.compaction.lag.ms (default 0)
	// MinCleanableDirtyRatio (min.cleanable.dirty.ratio, default 0.5): a
	// compaction pass runs when the segments written since the last pass make
	// up at least this fraction of the compactable bytes (0: whenever there is
	// any).
	MinCleanableDirtyRatio float64
	IndexIntervalBytes     int // index.interval.bytes (default 4096; 0 indexes every batch)
	// FlushInterval is how long data appended while nobody waits for its
	// durability may stay un-fsynced (and so invisible to consumers, since
	// the high watermark is the durable end). 0, the default, means the
	// flusher fsyncs as soon as there is new data: appends that arrive during
	// an fsync are covered by the next one (group commit). A WaitDurable call
	// always triggers an fsync at once.
	FlushInterval time.Duration
	// ProducerExpiry drops the state of an idempotent producer not seen for
	// this long (producer.id.expiration.ms, default 1 day); checked by
	// Maintain.
	ProducerExpiry time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentMs:              7 * 24 * time.Hour,
		RetentionBytes:         -1,
		RetentionMs:            7 * 24 * time.Hour,
		Delete:                 true,
		DeleteRetention:        24 * time.Hour,
		IndexIntervalBytes:     4096,
		MinCleanableDirtyRatio: 0.5,
		ProducerExpiry:         24 * time.Hour,
	}
}

// Validate returns a normalized copy of c (negative retentions become -1), or
// an error wrapping ErrInvalidConfig that names the bad field.
func (c Config) Validate() (Config, error) {
	bad := func(field string, v any, want string) (Config, error) {
		return c, fmt.Errorf("%w: %s = %v, must be %s", ErrInvalidConfig, field, v, want)
	}
	switch {
	case c.SegmentBytes < minSegmentBytes || c.SegmentBytes > maxSegmentBytes:
		return bad("SegmentBytes", c.SegmentBytes, fmt.Sprintf("in [%d, %d]", minSegmentBytes, int64(maxSegmentBytes)))
	case c.SegmentMs <= 0:
		return bad("SegmentMs", c.SegmentMs, "positive")
	case c.IndexIntervalBytes < 0:
		return bad("IndexIntervalBytes", c.IndexIntervalBytes, ">= 0")
	case c.DeleteRetention < 0:
		return bad("DeleteRetention", c.DeleteRetention, ">= 0")
	case c.MinCompactionLag < 0:
		return bad("MinCompactionLag", c.MinCompactionLag, ">= 0")
	case !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1):
		return bad("MinCleanableDirtyRatio", c.MinCleanableDirtyRatio, "in [0, 1]")
	case c.FlushInterval < 0:
		return bad("FlushInterval", c.FlushInterval, ">= 0")
	case c.ProducerExpiry <= 0:
		return bad("ProducerExpiry", c.ProducerExpiry, "positive")
	}
	if c.RetentionBytes < 0 {
		c.RetentionBytes = -1
	}
	if c.RetentionMs < 0 {
		c.RetentionMs = -1
	}
	return c, nil
}

// Options are the collaborators of a Log.
type Options struct {
	FS     FS           // default OSFS()
	Logger *slog.Logger // default: discard
	// Codecs decodes and re-encodes records (compaction, OffsetForTimestamp,
	// MaxTimestamp); default records.NewCodecs().
	Codecs *records.Codecs
	// OnDurable is called, not under any lock of the Log and from its
	// flusher goroutine, each time the high watermark advances, with the
	// new value. It must not block for long (it delays the next fsync) and
	// must not call Close or Delete (they wait for the flusher).
	OnDurable func(hw int64)
	Now       func() time.Time // default time.Now
}

// AppendResult describes an Append.
type AppendResult struct {
	BaseOffset     int64 // base offset of the first batch
	LastOffset     int64 // last offset of the last batch
	LogStartOffset int64
	// Duplicate is true when every batch was a retry of an already
	// appended batch: the offsets are the original ones, nothing was written.
	Duplicate bool
}

// Log is the log of one partition. Create it with Open.
type Log struct {
	dir       string
	fs        FS
	log       *slog.Logger
	codecs    *records.Codecs
	onDurable func(int64)
	now       func() time.Time

	maintMu sync.Mutex // serializes Maintain, DeleteRecordsBefore and Close
	ckMu    sync.Mutex // serializes checkpoint writes

	mu            sync.RWMutex
	cfg           Config
	segs          []*segment // ascending base offsets; the last one is active
	leo           int64
	hw            int64
	logStart      int64
	recoveryPoint int64
	cleanerOffset int64
	written       checkpoint // last checkpoint written
	unsynced      []*segment // rolled, not yet fsynced
	dirDirty      bool       // files were created since the last directory fsync
	producers     *producerState
	pendingSnaps  []pendingSnapshot
	failed        error
	closing       bool          // Close has begun: no more appends or maintenance
	closed        bool          // Close has finished the last flush
	hwCh          chan struct{} // closed and replaced when hw advances or the log fails/closes
	// tombstoneExpiry is the earliest time at which a tombstone kept by the
	// last compaction pass may be removed (zero: none known).
	tombstoneExpiry time.Time

	kick        chan struct{} // wakes the flusher; capacity 1
	stop        chan struct{} // closed by Close
	flusherDone chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

type pendingSnapshot struct {
	off   int64
	state *producerState
}

// maxPendingSnapshots bounds the snapshots taken at rolls that wait for
// Maintain to write them.
const maxPendingSnapshots = 2

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// SetConfig changes the configuration of a live log (AlterConfigs). It takes
// effect for the next appends and Maintain calls.
func (l *Log) SetConfig(cfg Config) error {
	cfg, err := cfg.Validate()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.cfg = cfg
	l.mu.Unlock()
	l.kickFlusher()
	return nil
}

// Config returns the current configuration.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// HighWatermark returns the end offset of the fsynced data: consumers may
// read the offsets below it.
func (l *Log) HighWatermark() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hw
}

// LogEndOffset returns the next offset to assign.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo
}

// LogStartOffset returns the first readable offset.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// Size returns the bytes of all segment .log files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// NumSegments returns the number of segments (for tests and metrics).
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segs)
}

func (l *Log) usable() error {
	if l.closing || l.closed {
		return ErrClosed
	}
	return l.failed
}

// fail fences the log after an I/O error; the caller holds l.mu.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %w", ErrLogFailed, err)
		l.log.Error("commitlog: log failed; reopen to recover", "dir", l.dir, "err", err)
		l.broadcast()
	}
	return l.failed
}

// broadcast wakes WaitDurable callers; the caller holds l.mu.
func (l *Log) broadcast() {
	close(l.hwCh)
	l.hwCh = make(chan struct{})
}

func (l *Log) kickFlusher() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Append takes ownership of already-validated v2 batches (each Raw exactly
// one batch, CRC verified by the caller), checks the idempotent-producer
// state of each (see producers.go), assigns consecutive offsets (setting the
// base offset in place, and partition leader epoch 0), and writes them to the
// active segment, rolling it first when segment.bytes or segment.ms say so.
// All batches of one call are appended atomically with respect to other
// Appends, and either all are written or none (a sequence or epoch error in
// any batch rejects the call). A batch that repeats one of the last 5 batches
// of its producer is not written again: it is acknowledged with its original
// offsets. Append sets the base offset and leader epoch of each batch in
// place and keeps no reference to the batches once it returns. It does not
// wait for fsync: see WaitDurable.
func (l *Log) Append(batches []records.Batch) (AppendResult, error) {
	if len(batches) == 0 {
		return AppendResult{}, fmt.Errorf("%w: no batches", ErrInvalidBatch)
	}
	type planned struct {
		h   records.BatchHeader
		dup *batchMeta
	}
	plan := make([]planned, len(batches))

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return AppendResult{}, err
	}
	now := l.now()
	nowMs := now.UnixMilli()
	next := l.leo
	var total int64
	var overlay map[int64]*producerEntry
	for i, b := range batches {
		h, err := records.ParseHeader(b.Raw)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: batch %d: %w", ErrInvalidBatch, i, err)
		}
		if h.Size() != len(b.Raw) {
			return AppendResult{}, fmt.Errorf("%w: batch %d: %d bytes hold a %d-byte batch", ErrInvalidBatch, i, len(b.Raw), h.Size())
		}
		if h.LastOffsetDelta < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 || h.NumRecords < 0 {
			return AppendResult{}, fmt.Errorf("%w: batch %d: %d records, last offset delta %d", ErrInvalidBatch, i, h.NumRecords, h.LastOffsetDelta)
		}
		if tracked(h) {
			e, ok := overlay[h.ProducerID]
			if !ok {
				e = l.producers.m[h.ProducerID]
			}
			dup, err := checkSequence(e, h)
			if err != nil {
				return AppendResult{}, err
			}
			if dup != nil {
				plan[i] = planned{h: h, dup: dup}
				continue
			}
			h.BaseOffset = next
			if e != nil {
				e = e.clone()
			}
			if overlay == nil {
				overlay = make(map[int64]*producerEntry)
			}
			overlay[h.ProducerID] = updateEntry(e, h, nowMs)
		}
		h.BaseOffset = next
		plan[i] = planned{h: h}
		next = h.LastOffset() + 1
		total += int64(h.Size())
	}

	res := AppendResult{BaseOffset: -1, Duplicate: true}
	for _, p := range plan {
		base, last := p.h.BaseOffset, p.h.LastOffset()
		if p.dup != nil {
			base, last = p.dup.baseOff, p.dup.lastOff
		} else {
			res.Duplicate = false
		}
		if res.BaseOffset < 0 {
			res.BaseOffset = base
		}
		res.LastOffset = last
	}
	res.LogStartOffset = l.logStart
	if res.Duplicate {
		return res, nil
	}

	act := l.active()
	if act.size > 0 && (act.size+total > l.cfg.SegmentBytes ||
		now.Sub(act.created) >= l.cfg.SegmentMs ||
		next-1-act.base > math.MaxUint32) {
		if err := l.rollLocked(); err != nil {
			return AppendResult{}, err
		}
		act = l.active()
	}
	if act.size == 0 {
		act.created = now
	}
	saved, oldSize := act.ib.save(), act.size
	for i, p := range plan {
		if p.dup != nil {
			continue
		}
		raw := batches[i].Raw
		records.SetBaseOffset(raw, p.h.BaseOffset)
		records.SetPartitionLeaderEpoch(raw, 0)
		if _, err := act.log.Write(raw); err != nil {
			return AppendResult{}, l.undoAppend(act, oldSize, saved, err)
		}
		act.ib.add(p.h.BaseOffset, p.h.MaxTimestamp, act.size, len(raw))
		act.size += int64(len(raw))
	}
	if err := act.writeNewIndexEntries(); err != nil {
		return AppendResult{}, l.undoAppend(act, oldSize, saved, err)
	}
	for id, e := range overlay {
		l.producers.m[id] = e
	}
	l.leo = next
	act.next = next
	if l.cfg.FlushInterval == 0 {
		l.kickFlusher()
	}
	return res, nil
}

// undoAppend cuts the active segment back after a failed write; the caller
// holds l.mu. The log is fenced if that fails too.
func (l *Log) undoAppend(act *segment, oldSize int64, saved indexBuilderState, werr error) error {
	act.ib.rollback(saved)
	act.size = oldSize
	if err := act.log.Truncate(oldSize); err != nil {
		return l.fail(fmt.Errorf("write: %w; truncate: %w", werr, err))
	}
	if err := act.truncateIndexFiles(); err != nil {
		return l.fail(fmt.Errorf("write: %w; truncate index: %w", werr, err))
	}
	return fmt.Errorf("commitlog: append: %w", werr)
}

// rollLocked closes the active segment and starts a new one at the log end
// offset; the flusher fsyncs the closed one. The caller holds l.mu.
func (l *Log) rollLocked() error {
	old := l.active()
	if old.size == 0 {
		return nil
	}
	ns, err := createSegment(l.fs, l.dir, l.leo, l.cfg.IndexIntervalBytes)
	if err != nil {
		return fmt.Errorf("commitlog: roll: %w", err)
	}
	ns.created = l.now()
	old.ib.addTimeEntry()
	if err := old.writeNewIndexEntries(); err != nil {
		ns.closeFiles()
		l.fs.Remove(ns.logPath())
		return l.fail(fmt.Errorf("roll: index: %w", err))
	}
	ns.refs.Store(1)
	l.segs = append(l.segs, ns)
	l.unsynced = append(l.unsynced, old)
	l.dirDirty = true
	l.pendingSnaps = append(l.pendingSnaps, pendingSnapshot{off: l.leo, state: l.producers.clone()})
	if n := len(l.pendingSnaps); n > maxPendingSnapshots {
		l.pendingSnaps = slices.Delete(l.pendingSnaps, 0, n-maxPendingSnapshots)
	}
	l.kickFlusher()
	return nil
}

// createSegment creates the files of an empty segment.
func createSegment(fsys FS, dir string, base int64, interval int) (*segment, error) {
	s := &segment{dir: dir, base: base, next: base, ib: newIndexBuilder(base, interval), durMaxTs: -1, durMaxTsOff: -1}
	f, err := fsys.OpenFile(s.logPath(), os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	s.log = f
	s.idxF, s.tidxF, err = writeIndexFiles(fsys, s.idxPath(), s.tidxPath(), nil, nil, false)
	if err != nil {
		f.Close()
		fsys.Remove(s.logPath())
		return nil, err
	}
	return s, nil
}

// WaitDurable blocks until every offset < end is fsynced (the high
// watermark reaches end), the log fails (the error wraps ErrLogFailed), it is
// closed (ErrClosed), or ctx is done (ctx.Err()). It triggers an fsync at
// once; concurrent waiters share fsyncs. Waiting for an end beyond the log
// end offset waits for appends that reach it.
func (l *Log) WaitDurable(ctx context.Context, end int64) error {
	for {
		l.mu.RLock()
		hw, failed, closed, ch := l.hw, l.failed, l.closed, l.hwCh
		l.mu.RUnlock()
		switch {
		case hw >= end:
			return nil
		case failed != nil:
			return failed
		case closed:
			return ErrClosed
		}
		l.kickFlusher()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// flushLoop is the flusher goroutine: it fsyncs the data appended since the
// last round (group commit), advances the high watermark and calls
// OnDurable, until Close stops it after a last round.
func (l *Log) flushLoop() {
	defer close(l.flusherDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.RLock()
		interval := l.cfg.FlushInterval
		l.mu.RUnlock()
		var tick <-chan time.Time
		if interval > 0 {
			timer.Reset(interval)
			tick = timer.C
		}
		select {
		case <-l.kick:
		case <-tick:
		case <-l.stop:
			l.flushOnce()
			return
		}
		l.flushOnce()
	}
}

// flushOnce fsyncs the rolled segments not yet synced and the active one up
// to the current log end offset, then publishes the new high watermark.
func (l *Log) flushOnce() {
	l.mu.Lock()
	if l.failed != nil || l.closed {
		l.mu.Unlock()
		return
	}
	target := l.leo
	act := l.active()
	rolled := slices.Clone(l.unsynced)
	dirDirty := l.dirDirty
	l.dirDirty = false
	if target == l.hw && len(rolled) == 0 && !dirDirty {
		l.mu.Unlock()
		return
	}
	actMax, actMaxOff := act.ib.maxTs, act.ib.maxTsOff
	actHasData := act.size > 0
	// Hold references: retention may drop a segment while it is synced.
	for _, s := range rolled {
		s.acquire()
	}
	act.acquire()
	defer func() {
		for _, s := range rolled {
			s.release()
		}
		act.release()
	}()
	l.mu.Unlock()

	var err error
	for _, s := range rolled {
		if err = s.log.Sync(); err != nil {
			break
		}
		if s.idxF != nil {
			if err = s.idxF.Sync(); err != nil {
				break
			}
		}
		if s.tidxF != nil {
			if err = s.tidxF.Sync(); err != nil {
				break
			}
		}
	}
	if err == nil && actHasData && !slices.Contains(rolled, act) {
		err = act.log.Sync()
	}
	if err == nil && dirDirty {
		err = l.fs.SyncDir(l.dir)
	}

	l.mu.Lock()
	if err != nil {
		l.fail(fmt.Errorf("fsync: %w", err))
		l.mu.Unlock()
		return
	}
	advanced := target > l.hw
	l.hw = max(l.hw, target)
	for _, s := range rolled {
		s.durMaxTs, s.durMaxTsOff = s.ib.maxTs, s.ib.maxTsOff
		if err := s.closeIndexFiles(); err != nil {
			l.log.Warn("commitlog: closing index files", "dir", l.dir, "err", err)
		}
		if i := slices.Index(l.unsynced, s); i >= 0 {
			l.unsynced = slices.Delete(l.unsynced, i, i+1)
		}
	}
	if !slices.Contains(l.unsynced, act) {
		act.durMaxTs, act.durMaxTsOff = actMax, actMaxOff
	}
	if len(l.unsynced) > 0 {
		l.recoveryPoint = l.unsynced[0].base
	} else {
		l.recoveryPoint = l.active().base
	}
	l.broadcast()
	l.mu.Unlock()
	if advanced && l.onDurable != nil {
		l.onDurable(target)
	}
}

// Read returns whole batches starting with the one containing offset: the
// batches of one segment whose last offset is below maxEnd (clamped to the
// high watermark; pass HighWatermark()), at most maxBytes in total, except
// that the first batch is returned whole even if larger (KIP-74). An offset
// below the log start offset or above the high watermark is
// ErrOffsetOutOfRange; at the high watermark (or maxEnd) the result is empty.
// An offset in a gap left by compaction reads from the next batch. The
// returned bytes are the caller's. Read is safe concurrently with Append,
// Maintain and Close.
func (l *Log) Read(offset int64, maxBytes int, maxEnd int64) ([]byte, error) {
	return l.ReadInto(nil, offset, maxBytes, maxEnd)
}

// ReadInto is Read reading into scratch when its capacity suffices (else
// into a new buffer): the result may alias scratch, so the caller must not
// reuse scratch while it uses the result. It lets the broker recycle fetch
// buffers instead of allocating (and zeroing) one per fetch.
func (l *Log) ReadInto(scratch []byte, offset int64, maxBytes int, maxEnd int64) ([]byte, error) {
	l.mu.RLock()
	if err := l.usableForRead(); err != nil {
		l.mu.RUnlock()
		return nil, err
	}
	if offset < l.logStart || offset > l.hw {
		start, hw := l.logStart, l.hw
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: offset %d, log start %d, high watermark %d", ErrOffsetOutOfRange, offset, start, hw)
	}
	maxEnd = min(maxEnd, l.hw)
	interval := l.cfg.IndexIntervalBytes
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
	i = max(i, 0)
	l.mu.RUnlock()
	if offset >= maxEnd {
		return nil, nil
	}
	// cur is where the search starts: offset, then past each segment that
	// held nothing at or after offset (compaction can empty a segment's
	// tail, and may replace segments while we read).
	cur := offset
	var prev *segment
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return nil, ErrClosed
		}
		if prev != nil {
			i = max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > cur })-1, 0)
			if l.segs[i] == prev {
				i++
			}
		}
		if i >= len(l.segs) {
			l.mu.RUnlock()
			return nil, nil
		}
		s := l.segs[i]
		size, next := s.size, s.next
		pos, expect := int64(0), s.base
		if cur > s.base {
			if rel, p, ok := lookupIndex(s.ib.index, relOffset(s.base, cur)); ok {
				pos, expect = p, s.base+int64(rel)
			}
		}
		s.acquire()
		l.mu.RUnlock()
		out, found, err := l.readSegment(scratch, s, size, pos, expect, offset, maxBytes, maxEnd, interval)
		s.release()
		if err != nil || found {
			return out, err
		}
		prev, cur = s, max(cur, next)
	}
}

func (l *Log) usableForRead() error {
	if l.closed {
		return ErrClosed
	}
	return nil
}

// readSegment reads from segment s (size valid bytes) starting the search at
// pos, where a batch with base offset expect starts.
func (l *Log) readSegment(scratch []byte, s *segment, size, pos, expect, offset int64, maxBytes int, maxEnd int64, interval int) ([]byte, bool, error) {
	readAhead := int64(interval) + int64(max(maxBytes, 0)) + records.HeaderSize
	readAhead = max(readAhead, 4096)
	var buf []byte
	var bufPos int64
	fill := func(at int64, n int64) error {
		n = min(n, size-at)
		if int64(cap(scratch)) >= n {
			buf = scratch[:n] // a refill overwrites the window: nothing of the old one is kept
		} else {
			buf = make([]byte, n)
		}
		bufPos = at
		if err := readFull(s.log, buf, at); err != nil {
			return fmt.Errorf("commitlog: read %s at %d: %w", s.logPath(), at, err)
		}
		return nil
	}
	if pos >= size {
		return nil, false, nil
	}
	if err := fill(pos, readAhead); err != nil {
		return nil, false, err
	}
	if b0, _, _, ok := peekBatch(buf); pos > 0 && (!ok || b0 != expect) {
		l.log.Warn("commitlog: index entry does not match the log; scanning the segment", "segment", s.logPath(), "position", pos)
		pos = 0
		if err := fill(0, readAhead); err != nil {
			return nil, false, err
		}
	}
	// Find the first batch whose last offset is >= offset.
	var bsize int64
	for {
		if pos >= size {
			return nil, false, nil
		}
		if pos+27 > bufPos+int64(len(buf)) {
			if err := fill(pos, readAhead); err != nil {
				return nil, false, err
			}
		}
		_, last, n, ok := peekBatch(buf[pos-bufPos:])
		if !ok || pos+n > size {
			return nil, false, fmt.Errorf("%w: %s at position %d", errCorruptBatch, s.logPath(), pos)
		}
		if last >= offset {
			if last >= maxEnd {
				return nil, true, nil
			}
			bsize = n
			break
		}
		pos += n
	}
	// Make sure the window holds the first batch and what maxBytes allows.
	want := max(bsize, int64(max(maxBytes, 0)))
	if pos+min(want, size-pos) > bufPos+int64(len(buf)) {
		if err := fill(pos, want); err != nil {
			return nil, false, err
		}
	}
	start := pos - bufPos
	end := start + bsize
	for {
		rest := buf[end:]
		_, last, n, ok := peekBatch(rest)
		if !ok || n > int64(len(rest)) || last >= maxEnd || end-start+n > int64(maxBytes) {
			break
		}
		end += n
	}
	return buf[start:end:end], true, nil
}

// Close fsyncs everything, writes the producer snapshot, the checkpoint and
// the clean-shutdown marker, closes the files and stops the flusher. It
// blocks until a running Maintain returns (Maintain notices Close) and
// until the flusher is done. It is idempotent: later calls return the first
// call's result. A log that failed is closed without the clean marker, so
// the next Open recovers it.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Log) close() error {
	l.mu.Lock()
	l.closing = true // no append from now on: the flusher's last round covers them all
	l.mu.Unlock()
	close(l.stop) // before maintMu: a running compaction checks it
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	<-l.flusherDone

	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	l.mu.Lock()
	failed := l.failed
	var errs []error
	if failed == nil {
		act := l.active()
		act.ib.addTimeEntry()
		if err := act.writeNewIndexEntries(); err != nil {
			errs = append(errs, err)
		}
		for _, f := range []File{act.idxF, act.tidxF} {
			if f != nil {
				if err := f.Sync(); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	l.closed = true
	l.broadcast()
	snap := l.producers
	leo := l.leo
	ck := checkpoint{logStart: l.logStart, recoveryPoint: l.active().base, cleanerOffset: l.cleanerOffset}
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()

	if failed == nil && len(errs) == 0 {
		if err := writeSnapshot(l.fs, l.dir, snap, leo); err != nil {
			errs = append(errs, fmt.Errorf("producer snapshot: %w", err))
		}
		if ck != l.written {
			if err := writeCheckpoint(l.fs, l.dir, ck); err != nil {
				errs = append(errs, fmt.Errorf("checkpoint: %w", err))
			}
		}
		if len(errs) == 0 {
			if err := l.writeCleanMarker(); err != nil {
				errs = append(errs, fmt.Errorf("clean-shutdown marker: %w", err))
			}
		}
	}
	for _, s := range segs {
		if err := s.closeIndexFiles(); err != nil {
			errs = append(errs, err)
		}
		s.release()
	}
	if failed != nil {
		errs = append(errs, failed)
	}
	return errors.Join(errs...)
}

func (l *Log) writeCleanMarker() error {
	f, err := l.fs.OpenFile(filepath.Join(l.dir, cleanMarkerName), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// Delete closes the log and removes its directory (DeleteTopics).
func (l *Log) Delete() error {
	cerr := l.Close()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return err
	}
	if cerr != nil && !errors.Is(cerr, ErrLogFailed) {
		return cerr
	}
	return nil
}
