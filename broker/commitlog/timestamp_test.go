package commitlog

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tributary-data/tributary/broker/records"
)

func TestOffsetForTimestampMatchesScan(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2 << 10
	cfg.IndexIntervalBytes = 200
	cfg.RetentionMs = -1
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{})
	rng := rand.New(rand.NewPCG(13, 14))
	codecs := []records.Compression{records.CompressionNone, records.CompressionGzip, records.CompressionLZ4, records.CompressionSnappy, records.CompressionZstd}
	ts := baseTS
	for i := range 150 {
		n := 1 + rng.IntN(5)
		recs := make([]rec, n)
		for j := range recs {
			// Mostly increasing timestamps with jitter, so that batches overlap.
			recs[j] = rec{key: fmt.Appendf(nil, "k%d", j), value: []byte("value"), ts: ts + int64(rng.IntN(40)) - 20}
			ts += int64(rng.IntN(10))
		}
		sp := batchSpec{recs: recs, codec: codecs[i%len(codecs)], pid: -1, firstTS: ts - 50}
		if i%17 == 0 {
			sp.logAppnd, sp.firstTS = true, ts
		}
		if _, err := l.Append([]records.Batch{build(t, sp)}); err != nil {
			t.Fatal(err)
		}
	}
	appendDurable(t, l, simpleBatch(t, 1, 1, ts))
	check := func(l *Log) {
		all := decodeAll(t, readAll(t, l, 0, 1<<20))
		minTs, maxTs := all[0].ts, all[0].ts
		var maxOff int64
		for _, r := range all {
			minTs = min(minTs, r.ts)
			if r.ts > maxTs {
				maxTs, maxOff = r.ts, r.off
			}
		}
		for target := minTs - 2; target <= maxTs+2; target++ {
			wantOff, wantTs, wantFound := int64(0), int64(0), false
			for _, r := range all {
				if r.ts >= target {
					wantOff, wantTs, wantFound = r.off, r.ts, true
					break
				}
			}
			off, gotTs, found, err := l.OffsetForTimestamp(target)
			if err != nil {
				t.Fatalf("OffsetForTimestamp(%d): %v", target, err)
			}
			if found != wantFound || off != wantOff || gotTs != wantTs {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", target, off, gotTs, found, wantOff, wantTs, wantFound)
			}
		}
		if off, mts := l.MaxTimestamp(); off != maxOff || mts != maxTs {
			t.Fatalf("MaxTimestamp = %d, %d; want %d, %d", off, mts, maxOff, maxTs)
		}
	}
	check(l)
	l.Close()
	removeCleanMarker(t, dir) // rebuilt time indexes
	check(openLog(t, dir, cfg, Options{}))
}

func TestTimestampsOfEmptyAndTruncatedLog(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), Options{})
	if off, ts := l.MaxTimestamp(); off != -1 || ts != -1 {
		t.Fatalf("MaxTimestamp of an empty log = %d, %d", off, ts)
	}
	if _, _, found, err := l.OffsetForTimestamp(0); found || err != nil {
		t.Fatalf("OffsetForTimestamp on an empty log: %v, %v", found, err)
	}
	for i := range 10 {
		appendDurable(t, l, simpleBatch(t, 2, 10, baseTS+int64(i)*1000))
	}
	if _, err := l.DeleteRecordsBefore(7); err != nil {
		t.Fatal(err)
	}
	// Offsets below the log start are not answered.
	if off, ts, found, err := l.OffsetForTimestamp(0); err != nil || !found || off != 7 || ts != baseTS+3000 {
		t.Fatalf("OffsetForTimestamp below the start = %d, %d, %v, %v", off, ts, found, err)
	}
	if _, _, found, _ := l.OffsetForTimestamp(baseTS + 10000); found {
		t.Fatal("found a timestamp past the max")
	}
}
