package commitlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-data/tributary/broker/records"
)

// buildLog writes a closed log of n batches in dir over several segments and
// returns the batches as stored.
func buildLog(t *testing.T, dir string, cfg Config, n int) []records.Batch {
	t.Helper()
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range n {
		if _, err := l.Append([]records.Batch{simpleBatch(t, 1+rng.IntN(4), 50+rng.IntN(300), baseTS+int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	appendDurable(t, l, simpleBatch(t, 1, 10, baseTS+int64(n)))
	got := readAll(t, l, 0, 1<<20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return got
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	logs := segmentFiles(t, dir, logSuffix)
	slices.Sort(logs)
	return logs[len(logs)-1]
}

func TestRecovery(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.IndexIntervalBytes = 300
	const n = 120
	flip := func(path string, pos int64) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if pos < 0 {
			pos += int64(len(b))
		}
		b[pos] ^= 0x40
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appendBytes := func(path string, extra []byte) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(extra)
		f.Close()
	}
	tests := []struct {
		name    string
		unclean bool
		damage  func(t *testing.T, dir string, all []records.Batch)
		keep    func(all []records.Batch) int // how many batches survive
	}{
		{
			name: "clean", keep: func(all []records.Batch) int { return len(all) },
			damage: func(*testing.T, string, []records.Batch) {},
		},
		{
			name: "truncated tail mid-batch", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				p := lastSegment(t, dir)
				st, _ := os.Stat(p)
				os.Truncate(p, st.Size()-int64(len(all[len(all)-1].Raw)/2))
			},
			keep: func(all []records.Batch) int { return len(all) - 1 },
		},
		{
			name: "truncated inside the length field", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				p := lastSegment(t, dir)
				st, _ := os.Stat(p)
				os.Truncate(p, st.Size()-int64(len(all[len(all)-1].Raw))+10)
			},
			keep: func(all []records.Batch) int { return len(all) - 1 },
		},
		{
			name: "flipped byte in the last batch", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) { flip(lastSegment(t, dir), -5) },
			keep:   func(all []records.Batch) int { return len(all) - 1 },
		},
		{
			name: "flipped byte in the last batch's header", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				flip(lastSegment(t, dir), -int64(len(all[len(all)-1].Raw))+30)
			},
			keep: func(all []records.Batch) int { return len(all) - 1 },
		},
		{
			name: "random garbage appended", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				appendBytes(lastSegment(t, dir), randBytes(7, 1000))
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "zeros appended", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				appendBytes(lastSegment(t, dir), make([]byte, 4096))
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "valid batch with a stale offset appended", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				appendBytes(lastSegment(t, dir), all[len(all)-1].Raw) // same base offset again
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "last segment all garbage", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				p := lastSegment(t, dir)
				st, _ := os.Stat(p)
				os.WriteFile(p, randBytes(9, int(st.Size())), 0o644)
			},
			keep: func(all []records.Batch) int { return len(all) - batchesInLastSegment(all, 8<<10) },
		},
		{
			name: "corruption in an older segment without checkpoint", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				os.Remove(filepath.Join(dir, checkpointName))
				logs := segmentFiles(t, dir, logSuffix)
				slices.Sort(logs)
				flip(logs[2], 100) // inside the first batch of the third segment
			},
			keep: func(all []records.Batch) int { return firstBatchOfSegment(all, 8<<10, 2) },
		},
		{
			name: "deleted index files", unclean: false,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				for _, p := range append(segmentFiles(t, dir, indexSuffix), segmentFiles(t, dir, timeIndexSuffix)...) {
					os.Remove(p)
				}
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "random index contents", unclean: false,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				for i, p := range append(segmentFiles(t, dir, indexSuffix), segmentFiles(t, dir, timeIndexSuffix)...) {
					os.WriteFile(p, randBytes(byte(i), 8+i*13%100), 0o644)
				}
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "index entries shifted", unclean: false,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				for _, p := range segmentFiles(t, dir, indexSuffix) {
					b, _ := os.ReadFile(p)
					for i := indexHeaderSize; i+8 <= len(b); i += 8 {
						binary.BigEndian.PutUint32(b[i+4:], binary.BigEndian.Uint32(b[i+4:])+7)
					}
					os.WriteFile(p, b, 0o644)
				}
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "index with a torn entry", unclean: false,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				for _, p := range segmentFiles(t, dir, indexSuffix) {
					appendBytes(p, []byte{1, 2, 3})
				}
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
		{
			name: "leftover temporary files", unclean: true,
			damage: func(t *testing.T, dir string, all []records.Batch) {
				os.WriteFile(filepath.Join(dir, checkpointName+tmpSuffix), []byte("x"), 0o644)
				os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix+cleanedSuffix), []byte("x"), 0o644)
				os.WriteFile(filepath.Join(dir, segmentName(999999)+indexSuffix), []byte("orphan"), 0o644)
			},
			keep: func(all []records.Batch) int { return len(all) },
		},
	}
	orig := t.TempDir()
	all := buildLog(t, orig, cfg, n)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, orig, dir)
			if segs := len(segmentFiles(t, dir, logSuffix)); segs < 4 {
				t.Fatalf("only %d segments", segs)
			}
			if tt.unclean {
				removeCleanMarker(t, dir)
			}
			tt.damage(t, dir, all)
			want := slices.Clone(all[:tt.keep(all)])
			wantEnd := int64(0)
			if len(want) > 0 {
				wantEnd = want[len(want)-1].Header.LastOffset() + 1
			}
			check := func(l *Log) {
				t.Helper()
				if l.LogEndOffset() != wantEnd || l.HighWatermark() != wantEnd {
					t.Fatalf("LEO %d HW %d, want %d", l.LogEndOffset(), l.HighWatermark(), wantEnd)
				}
				got := readAll(t, l, 0, 1<<20)
				if len(got) != len(want) {
					t.Fatalf("%d batches, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i].Raw, want[i].Raw) {
						t.Fatalf("batch %d differs", i)
					}
				}
				// Every single offset reads through the indexes.
				for i, b := range want {
					chunk, err := l.Read(b.Header.LastOffset(), 0, wantEnd)
					if err != nil || !bytes.Equal(chunk, b.Raw) {
						t.Fatalf("Read(%d) (batch %d): %v", b.Header.LastOffset(), i, err)
					}
				}
			}
			l := openLog(t, dir, cfg, Options{})
			check(l)
			res := appendDurable(t, l, simpleBatch(t, 2, 10, baseTS))
			if res.BaseOffset != wantEnd {
				t.Fatalf("append after recovery at %d, want %d", res.BaseOffset, wantEnd)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, suffix := range []string{tmpSuffix, cleanedSuffix} {
				if left := segmentFiles(t, dir, suffix); len(left) > 0 {
					t.Fatalf("left over: %v", left)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, segmentName(999999)+indexSuffix)); err == nil {
				t.Fatal("orphan index not removed")
			}
			// Reopen (after a crash again): the repaired log is stable.
			removeCleanMarker(t, dir)
			l2 := openLog(t, dir, cfg, Options{})
			if l2.LogEndOffset() != wantEnd+2 {
				t.Fatalf("second reopen: LEO %d, want %d", l2.LogEndOffset(), wantEnd+2)
			}
			want = append(want, readAll(t, l2, wantEnd, 1<<20)...)
			if got := readAll(t, l2, 0, 1<<20); len(got) != len(want) {
				t.Fatalf("second reopen: %d batches, want %d", len(got), len(want))
			}
		})
	}
}

func randBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// segmentOf assigns batches to segments the way Append rolls them.
func segmentOf(all []records.Batch, segBytes int64) []int {
	var seg []int
	cur, size := 0, int64(0)
	for _, b := range all {
		if size > 0 && size+int64(len(b.Raw)) > segBytes {
			cur++
			size = 0
		}
		seg = append(seg, cur)
		size += int64(len(b.Raw))
	}
	return seg
}

func batchesInLastSegment(all []records.Batch, segBytes int64) int {
	seg := segmentOf(all, segBytes)
	last, n := seg[len(seg)-1], 0
	for _, s := range seg {
		if s == last {
			n++
		}
	}
	return n
}

func firstBatchOfSegment(all []records.Batch, segBytes int64, k int) int {
	for i, s := range segmentOf(all, segBytes) {
		if s == k {
			return i
		}
	}
	return len(all)
}

// FuzzRecoverSegment feeds arbitrary bytes as the only segment of a log
// (after an unclean shutdown): Open must not panic, and must keep exactly a
// prefix of valid batches.
func FuzzRecoverSegment(f *testing.F) {
	var valid []byte
	for i := range 3 {
		b := simpleBatch(f, 2, 20, baseTS)
		records.SetBaseOffset(b.Raw, int64(2*i))
		valid = append(valid, b.Raw...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 49))
	f.Add([]byte{})
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ffs := newFaultFS()
		ffs.noSync = true
		l, err := Open(dir, testConfig(), Options{FS: ffs})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		// The kept bytes are a prefix of data made of valid batches.
		kept, err := os.ReadFile(filepath.Join(dir, segmentName(0)+logSuffix))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, kept) {
			t.Fatalf("recovered file is not a prefix of the input")
		}
		next := int64(0)
		for p := kept; len(p) > 0; {
			h, err := records.ParseHeader(p)
			if err != nil {
				t.Fatalf("kept an invalid batch: %v", err)
			}
			if err := records.VerifyCRC(p[:h.Size()]); err != nil {
				t.Fatalf("kept a batch with a bad CRC: %v", err)
			}
			if h.BaseOffset < next {
				t.Fatalf("kept a batch with offset %d below %d", h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
			p = p[h.Size():]
		}
		if l.LogEndOffset() != next {
			t.Fatalf("LEO %d, want %d", l.LogEndOffset(), next)
		}
		// The next valid batch must not have been dropped.
		if rest := data[len(kept):]; len(rest) > 0 {
			if h, err := records.ParseHeader(rest); err == nil && records.VerifyCRC(rest[:h.Size()]) == nil &&
				h.BaseOffset >= next && h.LastOffsetDelta >= 0 && h.NumRecords >= 0 && int64(h.NumRecords) <= int64(h.LastOffsetDelta)+1 &&
				h.LastOffset() <= 1<<32-1 {
				t.Fatalf("dropped a valid batch at %d", len(kept))
			}
		}
		if chunk, err := l.Read(0, 1<<20, l.HighWatermark()); err != nil || (len(kept) > 0 && len(chunk) == 0) {
			t.Fatalf("Read: %d bytes, %v", len(chunk), err)
		}
	})
}

// TestRecoveryOfUnsyncedRolls: segments rolled while an fsync hangs are not
// known to be durable; after the crash, recovery validates them (from the
// checkpointed recovery point on) even though they are not the last one.
func TestRecoveryOfUnsyncedRolls(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(map[bool]string{false: "intact", true: "corrupt middle segment"}[corrupt], func(t *testing.T) {
			cfg := testConfig()
			cfg.SegmentBytes = 1 << 10
			cfg.RetentionMs = -1
			dir := t.TempDir()
			ffs := newFaultFS()
			l, err := Open(dir, cfg, Options{FS: ffs})
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				appendDurable(t, l, simpleBatch(t, 1, 100, baseTS))
			}
			if err := l.Maintain(context.Background()); err != nil { // persists the recovery point
				t.Fatal(err)
			}
			durable := l.HighWatermark()
			gate := make(chan struct{})
			ffs.mu.Lock()
			ffs.syncGate = gate
			ffs.failSync = func(string) bool { return true }
			ffs.mu.Unlock()
			var all []records.Batch
			for range 60 {
				b := simpleBatch(t, 1, 100, baseTS)
				if _, err := l.Append([]records.Batch{b}); err != nil {
					t.Fatal(err)
				}
				all = append(all, records.Batch{Raw: bytes.Clone(b.Raw)})
			}
			if l.HighWatermark() != durable {
				t.Fatal("HW advanced without fsync")
			}
			close(gate)
			if err := l.WaitDurable(context.Background(), l.LogEndOffset()); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("WaitDurable: %v", err)
			}
			l.Close()
			logs := segmentFiles(t, dir, logSuffix)
			slices.Sort(logs)
			if len(logs) < 6 {
				t.Fatalf("%d segments", len(logs))
			}
			wantEnd := int64(80)
			if corrupt {
				// The fourth-last segment, rolled after the recovery point.
				p := logs[len(logs)-4]
				base, _ := parseBaseName(strings.TrimSuffix(filepath.Base(p), logSuffix))
				if base <= durable {
					t.Fatalf("segment %d is not past the durable end %d", base, durable)
				}
				b, _ := os.ReadFile(p)
				b[len(b)-3] ^= 1 // the segment's last batch
				os.WriteFile(p, b, 0o644)
				h, _ := records.ParseHeader(b[len(b)-len(all[0].Raw):])
				wantEnd = h.BaseOffset
			}
			l2 := openLog(t, dir, cfg, Options{})
			if l2.LogEndOffset() != wantEnd {
				t.Fatalf("LEO %d, want %d", l2.LogEndOffset(), wantEnd)
			}
			if got := readAll(t, l2, 0, 1<<20); int64(len(got)) != wantEnd {
				t.Fatalf("%d batches, want %d", len(got), wantEnd)
			}
		})
	}
}
