package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-data/tributary/broker/records"
)

var testCodecs = records.NewCodecs()

const baseTS = int64(1_700_000_000_000)

// rec is a record to build a test batch from.
type rec struct {
	key, value []byte
	ts         int64 // absolute timestamp; 0 = the batch's first timestamp
}

// batchSpec describes a test batch.
type batchSpec struct {
	recs     []rec
	codec    records.Compression
	pid      int64 // -1 for none
	epoch    int16
	seq      int32
	firstTS  int64
	logAppnd bool
}

// build encodes a v2 batch (base offset 0, as a producer sends it).
func build(t testing.TB, sp batchSpec) records.Batch {
	t.Helper()
	if sp.firstTS == 0 {
		sp.firstTS = baseTS
	}
	h := records.BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           int16(sp.codec),
		FirstTimestamp:       sp.firstTS,
		ProducerID:           sp.pid,
		ProducerEpoch:        sp.epoch,
		BaseSequence:         sp.seq,
	}
	if sp.pid < 0 {
		h.ProducerEpoch, h.BaseSequence = -1, -1
	}
	if sp.logAppnd {
		h.Attributes |= records.AttrLogAppendTime
		h.MaxTimestamp = sp.firstTS
	}
	recs := make([]records.Record, len(sp.recs))
	for i, r := range sp.recs {
		ts := r.ts
		if ts == 0 {
			ts = sp.firstTS
		}
		recs[i] = records.Record{OffsetDelta: int32(i), TimestampDelta: ts - sp.firstTS, Key: r.key, Value: r.value}
	}
	raw, err := testCodecs.Build(h, recs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	hdr, err := records.ParseHeader(raw)
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	return records.Batch{Header: hdr, Raw: raw}
}

// simpleBatch is a batch of n records with values of size bytes, keyed
// "k<i>", without producer id.
func simpleBatch(t testing.TB, n, size int, ts int64) records.Batch {
	t.Helper()
	recs := make([]rec, n)
	for i := range recs {
		recs[i] = rec{key: fmt.Appendf(nil, "k%d", i), value: bytes.Repeat([]byte{byte('a' + i%26)}, size)}
	}
	return build(t, batchSpec{recs: recs, pid: -1, firstTS: ts})
}

func testConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 16 << 10
	c.IndexIntervalBytes = 512
	return c
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.UnixMilli(baseTS)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openLog(t testing.TB, dir string, cfg Config, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendDurable appends and waits for durability.
func appendDurable(t testing.TB, l *Log, bs ...records.Batch) AppendResult {
	t.Helper()
	res, err := l.Append(bs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitDurable(ctx, res.LastOffset+1); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}
	return res
}

// readAll reads every batch from offset from to the high watermark with
// the given maxBytes, checking each chunk.
func readAll(t testing.TB, l *Log, from int64, maxBytes int) []records.Batch {
	t.Helper()
	var out []records.Batch
	hw := l.HighWatermark()
	off := from
	for off < hw {
		chunk, err := l.Read(off, maxBytes, hw)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(chunk) == 0 {
			break
		}
		n := 0
		err = records.ForEachBatch(chunk, func(b records.Batch) error {
			if err := records.VerifyCRC(b.Raw); err != nil {
				return err
			}
			if b.Header.LastOffset() < off {
				return fmt.Errorf("batch ending at %d before the requested offset %d", b.Header.LastOffset(), off)
			}
			out = append(out, records.Batch{Header: b.Header, Raw: bytes.Clone(b.Raw)})
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("chunk at %d: %v", off, err)
		}
		off = out[len(out)-1].Header.LastOffset() + 1
	}
	return out
}

// record is a decoded record with its absolute offset.
type record struct {
	off   int64
	ts    int64
	key   string
	value []byte // nil: tombstone
}

func decodeAll(t testing.TB, bs []records.Batch) []record {
	t.Helper()
	var out []record
	for _, b := range bs {
		h, recs, err := testCodecs.Records(b.Raw)
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		for _, r := range recs {
			ts := h.FirstTimestamp + r.TimestampDelta
			if h.Attributes&records.AttrLogAppendTime != 0 {
				ts = h.MaxTimestamp
			}
			out = append(out, record{off: h.BaseOffset + int64(r.OffsetDelta), ts: ts, key: string(r.Key), value: bytes.Clone(r.Value)})
		}
	}
	return out
}

// removeCleanMarker makes the next Open treat the last shutdown as a crash.
func removeCleanMarker(t testing.TB, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, cleanMarkerName)); err != nil {
		t.Fatalf("removing clean marker: %v", err)
	}
}

func segmentFiles(t testing.TB, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// errInjected is the error of injected faults.
var errInjected = errors.New("injected fault")

// faultFS wraps an FS: it counts fsyncs, can delay them, fail them, fail or
// shorten writes, and "crash": after a number of mutating operations every
// further one fails.
type faultFS struct {
	FS
	syncs      atomic.Int64 // file fsyncs of .log files
	syncDelay  time.Duration
	mu         sync.Mutex
	failSync   func(name string) bool
	failWrite  func(name string) (n int, fail bool) // n bytes are written before failing
	failTrunc  func(name string) bool
	syncGate   chan struct{} // when set, file fsyncs wait for it to be closed
	noSync     bool          // fsyncs do nothing (fast tests that need no durability)
	crashAfter int64         // mutating operations left before the crash; <0: never
	ops        int64
	crashed    bool
}

func newFaultFS() *faultFS { return &faultFS{FS: OSFS(), crashAfter: -1} }

func (f *faultFS) setCrashAfter(n int64) {
	f.mu.Lock()
	f.crashAfter, f.ops, f.crashed = n, 0, false
	f.mu.Unlock()
}

func (f *faultFS) hasCrashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// mutate accounts for one mutating operation and reports whether it fails.
func (f *faultFS) mutate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashAfter < 0 {
		return nil
	}
	if f.ops >= f.crashAfter {
		f.crashed = true
		return fmt.Errorf("%w: crashed", errInjected)
	}
	f.ops++
	return nil
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := f.mutate(); err != nil {
			return nil, err
		}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.mutate(); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.mutate(); err != nil {
		return err
	}
	return f.FS.Rename(o, n)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.mutate(); err != nil {
		return err
	}
	if f.noSync {
		return nil
	}
	return f.FS.SyncDir(dir)
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f *faultFile) Write(b []byte) (int, error) {
	if err := f.fs.mutate(); err != nil {
		return 0, err
	}
	f.fs.mu.Lock()
	fw := f.fs.failWrite
	f.fs.mu.Unlock()
	if fw != nil {
		if n, fail := fw(f.name); fail {
			n = min(n, len(b))
			m, _ := f.File.Write(b[:n])
			return m, fmt.Errorf("%w: short write", errInjected)
		}
	}
	return f.File.Write(b)
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.mutate(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.mutate(); err != nil {
		return err
	}
	f.fs.mu.Lock()
	ft := f.fs.failTrunc
	f.fs.mu.Unlock()
	if ft != nil && ft(f.name) {
		return fmt.Errorf("%w: truncate", errInjected)
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Sync() error {
	if err := f.fs.mutate(); err != nil {
		return err
	}
	f.fs.mu.Lock()
	gate := f.fs.syncGate
	f.fs.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.fs.mu.Lock()
	fs := f.fs.failSync
	f.fs.mu.Unlock()
	if fs != nil && fs(f.name) {
		return fmt.Errorf("%w: fsync", errInjected)
	}
	if strings.HasSuffix(f.name, logSuffix) {
		f.fs.syncs.Add(1)
	}
	if f.fs.syncDelay > 0 {
		time.Sleep(f.fs.syncDelay)
	}
	if f.fs.noSync {
		return nil
	}
	return f.File.Sync()
}

var _ io.Writer = (*faultFile)(nil)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
