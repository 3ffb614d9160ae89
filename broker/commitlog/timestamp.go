package commitlog

import (
	"errors"
	"fmt"
	"io"

	"github.com/tributary-data/tributary/broker/records"
)

// recordTime returns the timestamp of record r of a batch with header h.
func recordTime(h records.BatchHeader, r *records.Record) int64 {
	if h.Attributes&records.AttrLogAppendTime != 0 {
		return h.MaxTimestamp
	}
	return h.FirstTimestamp + r.TimestampDelta
}

// segmentRef is a segment acquired for reading, with the state read under
// the lock.
type segmentRef struct {
	s    *segment
	size int64
}

// acquireAll takes a reader's reference on every segment; the caller
// releases them.
func (l *Log) acquireAll() ([]segmentRef, int64, int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, 0, 0, ErrClosed
	}
	refs := make([]segmentRef, len(l.segs))
	for i, s := range l.segs {
		s.acquire()
		refs[i] = segmentRef{s: s, size: s.size}
	}
	return refs, l.hw, l.logStart, nil
}

func releaseAll(refs []segmentRef) {
	for _, r := range refs {
		r.s.release()
	}
}

// OffsetForTimestamp returns the first offset at or after the log start
// whose record timestamp is >= ts, with that record's timestamp, among the
// offsets below the high watermark (ListOffsets by timestamp). found is
// false when there is none. It uses the time index to skip to the right
// batch and decodes that batch's records.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	refs, hw, start, err := l.acquireAll()
	if err != nil {
		return 0, 0, false, err
	}
	defer releaseAll(refs)
	for _, r := range refs {
		s := r.s
		l.mu.RLock()
		durMax, next := s.durMaxTs, s.next
		rel := lookupTime(s.ib.tindex, ts)
		pos, minNext := int64(0), s.base
		if erel, p, ok := lookupIndex(s.ib.index, rel); ok {
			pos, minNext = p, s.base+int64(erel)
		}
		l.mu.RUnlock()
		if durMax < ts || next <= start {
			continue
		}
		from := s.base + int64(rel)
		sc := newScanner(s.log, r.size, s.base, pos, minNext, scanRaw)
		for {
			h, _, raw, err := sc.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, 0, false, fmt.Errorf("commitlog: %s: %w", s.logPath(), err)
			}
			if h.BaseOffset >= hw {
				return 0, 0, false, nil
			}
			if h.LastOffset() < from || h.LastOffset() < start || h.MaxTimestamp < ts || h.NumRecords == 0 {
				continue
			}
			if h.IsControl() {
				continue
			}
			_, recs, err := l.codecs.Records(raw)
			if err != nil {
				return 0, 0, false, fmt.Errorf("commitlog: decoding batch at offset %d: %w", h.BaseOffset, err)
			}
			for i := range recs {
				off := h.BaseOffset + int64(recs[i].OffsetDelta)
				if t := recordTime(h, &recs[i]); t >= ts && off >= start {
					return off, t, true, nil
				}
			}
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the largest record timestamp below the high
// watermark and the offset of the first record carrying it (ListOffsets
// timestamp -3), or (-1, -1) for a log without records.
func (l *Log) MaxTimestamp() (offset, timestamp int64) {
	refs, _, _, err := l.acquireAll()
	if err != nil {
		return -1, -1
	}
	defer releaseAll(refs)
	var best *segmentRef
	bestTs, bestOff := int64(-1), int64(-1)
	l.mu.RLock()
	for i := range refs {
		if s := refs[i].s; s.durMaxTsOff >= 0 && s.durMaxTs > bestTs {
			best, bestTs, bestOff = &refs[i], s.durMaxTs, s.durMaxTsOff
		}
	}
	l.mu.RUnlock()
	if best == nil {
		return -1, -1
	}
	off, err := l.firstRecordWithTime(best.s, best.size, bestOff, bestTs)
	if err != nil {
		l.log.Warn("commitlog: max timestamp lookup", "segment", best.s.logPath(), "err", err)
		return bestOff, bestTs
	}
	return off, bestTs
}

var errNoSuchBatch = errors.New("commitlog: batch not found")

// firstRecordWithTime finds the batch with base offset base in s and returns
// the offset of its first record with timestamp ts (the batch's base offset
// if none matches).
func (l *Log) firstRecordWithTime(s *segment, size, base, ts int64) (int64, error) {
	l.mu.RLock()
	pos, minNext := int64(0), s.base
	if erel, p, ok := lookupIndex(s.ib.index, relOffset(s.base, base)); ok {
		pos, minNext = p, s.base+int64(erel)
	}
	l.mu.RUnlock()
	sc := newScanner(s.log, size, s.base, pos, minNext, scanRaw)
	for {
		h, _, raw, err := sc.next()
		if err == io.EOF {
			return base, errNoSuchBatch
		}
		if err != nil {
			return base, err
		}
		if h.BaseOffset < base {
			continue
		}
		if h.BaseOffset > base {
			return base, errNoSuchBatch
		}
		_, recs, err := l.codecs.Records(raw)
		if err != nil {
			return base, err
		}
		for i := range recs {
			if recordTime(h, &recs[i]) == ts {
				return h.BaseOffset + int64(recs[i].OffsetDelta), nil
			}
		}
		return base, nil
	}
}
