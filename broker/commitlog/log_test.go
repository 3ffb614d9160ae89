package commitlog

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tributary-data/tributary/broker/records"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mut    func(*Config)
		field  string
		modify func(c Config) bool // checks the normalized copy
	}{
		{name: "default", mut: func(*Config) {}},
		{name: "segment bytes zero", mut: func(c *Config) { c.SegmentBytes = 0 }, field: "SegmentBytes"},
		{name: "segment bytes too large", mut: func(c *Config) { c.SegmentBytes = 1 << 33 }, field: "SegmentBytes"},
		{name: "segment ms", mut: func(c *Config) { c.SegmentMs = 0 }, field: "SegmentMs"},
		{name: "index interval", mut: func(c *Config) { c.IndexIntervalBytes = -1 }, field: "IndexIntervalBytes"},
		{name: "delete retention", mut: func(c *Config) { c.DeleteRetention = -1 }, field: "DeleteRetention"},
		{name: "lag", mut: func(c *Config) { c.MinCompactionLag = -time.Second }, field: "MinCompactionLag"},
		{name: "ratio", mut: func(c *Config) { c.MinCleanableDirtyRatio = 1.5 }, field: "MinCleanableDirtyRatio"},
		{name: "flush", mut: func(c *Config) { c.FlushInterval = -1 }, field: "FlushInterval"},
		{name: "expiry", mut: func(c *Config) { c.ProducerExpiry = 0 }, field: "ProducerExpiry"},
		{name: "negative retention normalized", mut: func(c *Config) { c.RetentionBytes, c.RetentionMs = -5, -time.Hour },
			modify: func(c Config) bool { return c.RetentionBytes == -1 && c.RetentionMs == -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mut(&c)
			got, err := c.Validate()
			if tt.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !bytes.Contains([]byte(err.Error()), []byte(tt.field)) {
					t.Fatalf("Validate() error = %v, want one naming %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.modify != nil && !tt.modify(got) {
				t.Fatalf("normalized config %+v", got)
			}
		})
	}
}

func TestAppendReadRoundTripAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.IndexIntervalBytes = 256
	l := openLog(t, dir, cfg, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	var want []records.Batch
	next := int64(0)
	for i := range 400 {
		b := simpleBatch(t, 1+rng.IntN(8), rng.IntN(200), baseTS+int64(i))
		if i%3 == 0 {
			b = build(t, batchSpec{recs: []rec{{key: []byte("x"), value: bytes.Repeat([]byte("z"), 300)}}, codec: records.CompressionZstd, pid: -1})
		}
		res, err := l.Append([]records.Batch{b})
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != next || res.Duplicate {
			t.Fatalf("append %d: base %d (dup %v), want %d", i, res.BaseOffset, res.Duplicate, next)
		}
		next = res.LastOffset + 1
		want = append(want, records.Batch{Header: b.Header, Raw: bytes.Clone(b.Raw)})
	}
	if err := l.WaitDurable(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() < 20 {
		t.Fatalf("%d segments, want many rolls", l.NumSegments())
	}
	check := func(l *Log) {
		t.Helper()
		if l.LogEndOffset() != next || l.HighWatermark() != next {
			t.Fatalf("LEO %d HW %d, want %d", l.LogEndOffset(), l.HighWatermark(), next)
		}
		for _, maxBytes := range []int{1, 1000, 1 << 20} {
			got := readAll(t, l, 0, maxBytes)
			if len(got) != len(want) {
				t.Fatalf("maxBytes %d: %d batches, want %d", maxBytes, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i].Raw, want[i].Raw) {
					t.Fatalf("maxBytes %d: batch %d differs", maxBytes, i)
				}
			}
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append([]records.Batch{simpleBatch(t, 1, 1, baseTS)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := l.Read(0, 100, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	l2 := openLog(t, dir, cfg, Options{})
	check(l2)
	// Appends continue after the recovered end.
	res := appendDurable(t, l2, simpleBatch(t, 2, 10, baseTS))
	if res.BaseOffset != next {
		t.Fatalf("append after reopen at %d, want %d", res.BaseOffset, next)
	}
}

func TestReadSemantics(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20 // one segment: a read returns batches of one segment only
	l := openLog(t, t.TempDir(), cfg, Options{})
	var sizes []int
	for i := range 10 {
		b := simpleBatch(t, 3, 100*(i+1), baseTS)
		sizes = append(sizes, len(b.Raw))
		appendDurable(t, l, b) // batch i holds offsets 3i..3i+2
	}
	hw := l.HighWatermark()
	if hw != 30 {
		t.Fatalf("HW %d", hw)
	}
	type want struct {
		first, n int // first batch index and number of batches
		err      error
	}
	tests := []struct {
		name     string
		offset   int64
		maxBytes int
		maxEnd   int64
		want     want
	}{
		{"start", 0, 1 << 20, hw, want{0, 10, nil}},
		{"mid batch", 4, 1 << 20, hw, want{1, 9, nil}},
		{"kip74 first batch whole", 9, 1, hw, want{3, 1, nil}},
		{"max bytes two batches", 0, sizes[0] + sizes[1], hw, want{0, 2, nil}},
		{"max bytes just under two", 0, sizes[0] + sizes[1] - 1, hw, want{0, 1, nil}},
		{"max end", 0, 1 << 20, 12, want{0, 4, nil}},
		{"max end clamps to hw", 27, 1 << 20, 1000, want{9, 1, nil}},
		{"at max end", 12, 1 << 20, 12, want{0, 0, nil}},
		{"at hw", 30, 1 << 20, hw, want{0, 0, nil}},
		{"past hw", 31, 1 << 20, hw, want{0, 0, ErrOffsetOutOfRange}},
		{"negative", -1, 1 << 20, hw, want{0, 0, ErrOffsetOutOfRange}},
	}
	all := readAll(t, l, 0, 1<<20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunk, err := l.Read(tt.offset, tt.maxBytes, tt.maxEnd)
			if tt.want.err != nil {
				if !errors.Is(err, tt.want.err) {
					t.Fatalf("err %v, want %v", err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var exp []byte
			for _, b := range all[tt.want.first : tt.want.first+tt.want.n] {
				exp = append(exp, b.Raw...)
			}
			if !bytes.Equal(chunk, exp) {
				t.Fatalf("got %d bytes, want %d (batches %d..%d)", len(chunk), len(exp), tt.want.first, tt.want.first+tt.want.n)
			}
		})
	}
	// Below the log start offset.
	if _, err := l.DeleteRecordsBefore(6); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(5, 100, hw); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	if chunk, err := l.Read(6, 1, hw); err != nil || len(chunk) != sizes[2] {
		t.Fatalf("read at log start: %d bytes, %v", len(chunk), err)
	}
}

// TestIndexLookupMatchesLinearScan reads every offset of a log of thousands
// of batches and compares the first returned batch with a linear scan.
func TestIndexLookupMatchesLinearScan(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1000
	}
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 256 << 10
	cfg.IndexIntervalBytes = 1024
	l := openLog(t, dir, cfg, Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	type span struct{ base, last int64 }
	var spans []span
	var raws [][]byte
	for i := 0; i < n; i += 10 {
		bs := make([]records.Batch, 10)
		for j := range bs {
			bs[j] = simpleBatch(t, 1+rng.IntN(5), rng.IntN(400), baseTS)
		}
		if _, err := l.Append(bs); err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			h, err := records.ParseHeader(b.Raw)
			if err != nil {
				t.Fatal(err)
			}
			spans = append(spans, span{h.BaseOffset, h.LastOffset()})
			raws = append(raws, bytes.Clone(b.Raw))
		}
	}
	if err := l.WaitDurable(context.Background(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	var entries int
	l.mu.RLock()
	for _, s := range l.segs {
		entries += len(s.ib.index)
	}
	l.mu.RUnlock()
	if entries < 100 {
		t.Fatalf("only %d index entries", entries)
	}
	check := func(l *Log) {
		hw := l.HighWatermark()
		bi := 0
		for off := int64(0); off < hw; off++ {
			for spans[bi].last < off {
				bi++
			}
			chunk, err := l.Read(off, 0, hw)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			if !bytes.Equal(chunk, raws[bi]) {
				t.Fatalf("Read(%d) returned a different batch than the linear scan (batch %d at %d)", off, bi, spans[bi].base)
			}
		}
	}
	check(l)
	l.Close()
	// The same through rebuilt indexes.
	for _, p := range segmentFiles(t, dir, indexSuffix) {
		os.Remove(p)
	}
	check(openLog(t, dir, cfg, Options{}))
}

func TestWaitDurableContext(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.WaitDurable(ctx, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDurable past the end: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- l.WaitDurable(context.Background(), 5) }()
	appendDurable(t, l, simpleBatch(t, 5, 1, baseTS))
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// Close wakes waiters for offsets that will never come.
	go func() { done <- l.WaitDurable(context.Background(), 100) }()
	time.Sleep(5 * time.Millisecond)
	l.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiter after Close: %v", err)
	}
}

func TestOnDurableAndFlushInterval(t *testing.T) {
	var hw atomic.Int64
	cfg := testConfig()
	cfg.FlushInterval = time.Hour // only waiters trigger fsyncs
	l := openLog(t, t.TempDir(), cfg, Options{OnDurable: func(h int64) { hw.Store(h) }})
	if _, err := l.Append([]records.Batch{simpleBatch(t, 3, 1, baseTS)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if l.HighWatermark() != 0 {
		t.Fatalf("HW %d before anyone waited with a 1h flush interval", l.HighWatermark())
	}
	if chunk, err := l.Read(0, 100, 3); err != nil || len(chunk) != 0 {
		t.Fatalf("un-fsynced data visible: %d bytes, %v", len(chunk), err)
	}
	if err := l.WaitDurable(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "OnDurable", func() bool { return hw.Load() == 3 })
	// Lowering the interval makes the flusher pick up data on its own.
	cfg.FlushInterval = time.Millisecond
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]records.Batch{simpleBatch(t, 2, 1, baseTS)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "background flush", func() bool { return l.HighWatermark() == 5 && hw.Load() == 5 })
}

func TestGroupCommit(t *testing.T) {
	ffs := newFaultFS()
	ffs.syncDelay = 2 * time.Millisecond // a disk's fsync latency, also on tmpfs
	l := openLog(t, t.TempDir(), DefaultConfig(), Options{FS: ffs})
	const goroutines, each = 200, 10
	var wg sync.WaitGroup
	errc := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				b := simpleBatch(t, 1, 100, baseTS+int64(g))
				res, err := l.Append([]records.Batch{b})
				if err != nil {
					errc <- err
					return
				}
				if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	appends := int64(goroutines * each)
	syncs := ffs.syncs.Load()
	t.Logf("%d appends, %d fsyncs", appends, syncs)
	if l.HighWatermark() != appends {
		t.Fatalf("HW %d, want %d", l.HighWatermark(), appends)
	}
	if syncs*10 > appends {
		t.Fatalf("%d fsyncs for %d appends: group commit is not grouping", syncs, appends)
	}
}

func TestFsyncFailureFencesLog(t *testing.T) {
	ffs := newFaultFS()
	dir := t.TempDir()
	l := openLog(t, dir, testConfig(), Options{FS: ffs})
	appendDurable(t, l, simpleBatch(t, 2, 10, baseTS))
	var fail atomic.Bool
	fail.Store(true)
	ffs.mu.Lock()
	ffs.failSync = func(name string) bool { return fail.Load() }
	ffs.mu.Unlock()
	res, err := l.Append([]records.Batch{simpleBatch(t, 2, 10, baseTS)})
	if err != nil {
		t.Fatal(err)
	}
	err = l.WaitDurable(context.Background(), res.LastOffset+1)
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("WaitDurable after a failed fsync: %v", err)
	}
	if hw := l.HighWatermark(); hw != 2 {
		t.Fatalf("HW %d advanced past the failed fsync", hw)
	}
	fail.Store(false) // even when the disk recovers, the log stays fenced
	if _, err := l.Append([]records.Batch{simpleBatch(t, 1, 10, baseTS)}); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Append on a failed log: %v", err)
	}
	if err := l.WaitDurable(context.Background(), 3); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("WaitDurable on a failed log: %v", err)
	}
	if chunk, err := l.Read(0, 1<<20, 100); err != nil || len(readChunk(t, chunk)) != 1 {
		t.Fatalf("durable data unreadable on a failed log: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Close of a failed log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarkerName)); err == nil {
		t.Fatal("a failed log wrote the clean-shutdown marker")
	}
	l2 := openLog(t, dir, testConfig(), Options{})
	if l2.LogEndOffset() != 4 { // the write reached the page cache
		t.Fatalf("recovered LEO %d", l2.LogEndOffset())
	}
}

func readChunk(t testing.TB, chunk []byte) []records.Batch {
	t.Helper()
	var out []records.Batch
	if err := records.ForEachBatch(chunk, func(b records.Batch) error { out = append(out, b); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteFailureRollsBack(t *testing.T) {
	tests := []struct {
		name      string
		n         int // bytes written before the failure
		failTrunc bool
		fenced    bool
	}{
		{name: "failed write", n: 0},
		{name: "short write", n: 30},
		{name: "short write, truncate fails", n: 30, failTrunc: true, fenced: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := newFaultFS()
			dir := t.TempDir()
			l := openLog(t, dir, testConfig(), Options{FS: ffs})
			appendDurable(t, l, simpleBatch(t, 2, 10, baseTS))
			ffs.mu.Lock()
			ffs.failWrite = func(name string) (int, bool) { return tt.n, filepath.Ext(name) == logSuffix }
			ffs.failTrunc = func(string) bool { return tt.failTrunc }
			ffs.mu.Unlock()
			_, err := l.Append([]records.Batch{simpleBatch(t, 3, 10, baseTS)})
			if !errors.Is(err, errInjected) {
				t.Fatalf("Append: %v", err)
			}
			ffs.mu.Lock()
			ffs.failWrite, ffs.failTrunc = nil, nil
			ffs.mu.Unlock()
			res, err := l.Append([]records.Batch{simpleBatch(t, 1, 10, baseTS)})
			if tt.fenced {
				if !errors.Is(err, ErrLogFailed) {
					t.Fatalf("Append after a failed rollback: %v", err)
				}
				return
			}
			if err != nil || res.BaseOffset != 2 {
				t.Fatalf("Append after a failed write: base %d, %v (offsets must not be consumed)", res.BaseOffset, err)
			}
			if err := l.WaitDurable(context.Background(), 3); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, l, 0, 1<<20)
			if len(got) != 2 || got[1].Header.BaseOffset != 2 {
				t.Fatalf("read back %d batches", len(got))
			}
			l.Close()
			l2 := openLog(t, dir, testConfig(), Options{})
			if len(readAll(t, l2, 0, 1<<20)) != 2 {
				t.Fatal("reopened log differs")
			}
		})
	}
}

func TestAppendRejectsMalformed(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), Options{})
	b := simpleBatch(t, 2, 10, baseTS)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"trailing bytes", append(bytes.Clone(b.Raw), 0)},
		{"truncated", b.Raw[:len(b.Raw)-1]},
		{"not a batch", []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Append([]records.Batch{{Raw: tt.raw}}); !errors.Is(err, ErrInvalidBatch) {
				t.Fatalf("Append: %v", err)
			}
		})
	}
	if _, err := l.Append(nil); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("empty Append: %v", err)
	}
	if l.LogEndOffset() != 0 {
		t.Fatalf("LEO %d after rejected appends", l.LogEndOffset())
	}
}

func TestSegmentMsRoll(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig()
	cfg.SegmentMs = time.Hour
	l := openLog(t, t.TempDir(), cfg, Options{Now: clock.Now})
	appendDurable(t, l, simpleBatch(t, 1, 10, clock.Now().UnixMilli()))
	appendDurable(t, l, simpleBatch(t, 1, 10, clock.Now().UnixMilli()))
	if l.NumSegments() != 1 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	clock.Advance(time.Hour)
	appendDurable(t, l, simpleBatch(t, 1, 10, clock.Now().UnixMilli()))
	if l.NumSegments() != 2 {
		t.Fatalf("append after segment.ms: %d segments, want 2", l.NumSegments())
	}
	clock.Advance(time.Hour)
	if err := l.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() != 3 {
		t.Fatalf("Maintain after segment.ms: %d segments, want 3", l.NumSegments())
	}
	if err := l.Maintain(context.Background()); err != nil || l.NumSegments() != 3 {
		t.Fatalf("Maintain rolled an empty segment: %d segments, %v", l.NumSegments(), err)
	}
}

func TestDeleteRemovesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l := openLog(t, dir, testConfig(), Options{})
	appendDurable(t, l, simpleBatch(t, 1, 10, baseTS))
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
}

// TestConcurrentReadAppendMaintain runs readers against appends, retention
// and compaction (run with -race).
func TestConcurrentReadAppendMaintain(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.Compact = true
	cfg.MinCleanableDirtyRatio = 0
	cfg.RetentionBytes = 64 << 10
	l := openLog(t, t.TempDir(), cfg, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(1)
	go func() { // appender
		defer wg.Done()
		defer cancel()
		for i := range 600 {
			b := build(t, batchSpec{recs: []rec{{key: []byte{byte('a' + i%7)}, value: bytes.Repeat([]byte{1}, 50)}}, pid: -1})
			res, err := l.Append([]records.Batch{b})
			if err != nil {
				errc <- err
				return
			}
			if i%20 == 0 {
				if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	wg.Add(1)
	go func() { // maintainer
		defer wg.Done()
		for ctx.Err() == nil {
			if err := l.Maintain(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			for ctx.Err() == nil {
				hw := l.HighWatermark()
				off := l.LogStartOffset()
				for off < hw {
					chunk, err := l.Read(off, 2048, hw)
					if errors.Is(err, ErrOffsetOutOfRange) {
						break // retention moved the start
					}
					if err != nil {
						errc <- err
						return
					}
					if len(chunk) == 0 {
						break
					}
					err = records.ForEachBatch(chunk, func(b records.Batch) error {
						if err := records.VerifyCRC(b.Raw); err != nil {
							return err
						}
						off = b.Header.LastOffset() + 1
						return nil
					})
					if err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// TestTinySegments: with Kafka's smallest segment.bytes every batch gets a
// segment of its own.
func TestTinySegments(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 14
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{})
	for range 10 {
		appendDurable(t, l, simpleBatch(t, 2, 10, baseTS))
	}
	if l.NumSegments() != 10 || len(readAll(t, l, 0, 1<<20)) != 10 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	l.Close()
	if l2 := openLog(t, dir, cfg, Options{}); l2.LogEndOffset() != 20 || len(readAll(t, l2, 0, 1)) != 10 {
		t.Fatalf("reopened: LEO %d", l2.LogEndOffset())
	}
}

// ReadInto returns what Read returns, in the caller's buffer when it is
// large enough, and never depends on the scratch's old content.
func TestReadIntoUsesScratch(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), Options{})
	for i := range 20 {
		appendDurable(t, l, simpleBatch(t, 5, 50*(i+1), baseTS))
	}
	hw := l.HighWatermark()
	for _, off := range []int64{0, 7, 42, 99} {
		want, err := l.Read(off, 4096, hw)
		if err != nil {
			t.Fatal(err)
		}
		scratch := bytes.Repeat([]byte{0xAA}, 64<<10)
		got, err := l.ReadInto(scratch, off, 4096, hw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("offset %d: ReadInto differs from Read", off)
		}
		if len(got) > 0 && !aliases(got, scratch) {
			t.Fatalf("offset %d: result does not use the scratch buffer", off)
		}
		small, err := l.ReadInto(make([]byte, 3), off, 4096, hw)
		if err != nil || !bytes.Equal(small, want) {
			t.Fatalf("offset %d: ReadInto with a small scratch: %v", off, err)
		}
	}
}

func aliases(a, b []byte) bool {
	if len(a) == 0 || cap(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(&b[:cap(b)][0]))
	end := start + uintptr(cap(b))
	p := uintptr(unsafe.Pointer(&a[0]))
	return p >= start && p < end
}
