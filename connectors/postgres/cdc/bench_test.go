package cdc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// throughputRows is the table size of TestThroughput (CDC_BENCH_ROWS).
func throughputRows() int {
	if n, err := strconv.Atoi(os.Getenv("CDC_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// drain polls until n records arrived, without decoding them, committing
// each batch as a worker would.
func drain(t *testing.T, task *SourceTask, n int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	got := 0
	ctx := context.Background()
	for got < n {
		if time.Since(start) > timeout {
			t.Fatalf("%d of %d records after %s", got, n, timeout)
		}
		recs, err := task.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(recs)
	}
	return time.Since(start)
}

// TestThroughput measures snapshot and streaming rows per second on a
// 5-column table (int, int8, text, timestamptz, numeric). It prints the
// figures; it fails only below a floor far under the targets (the machine
// is shared).
func TestThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput measurement")
	}
	n := throughputRows()
	db := newDB(t)
	exec(t, db, `CREATE TABLE bench (id int PRIMARY KEY, a int8 NOT NULL, b text, c timestamptz, d numeric(12,2))`,
		fmt.Sprintf(`INSERT INTO bench SELECT g, g * 7, 'row number ' || g, '2024-01-01'::timestamptz + g * interval '1 second', g / 100.0 FROM generate_series(1, %d) g`, n),
		"ANALYZE bench")
	var ms runtime.MemStats
	runtime.GC()
	task := startTask(t, baseConfig(db), nil)
	el := drain(t, task, n, 2*time.Minute)
	runtime.ReadMemStats(&ms)
	snapRate := float64(n) / el.Seconds()
	t.Logf("snapshot: %d rows in %.2fs = %.0f rows/s (heap in use %d MB)", n, el.Seconds(), snapRate, ms.HeapInuse>>20)

	// Streaming: the task is not polled while the rows are written, so
	// the measurement covers decoding the backlog from the slot.
	exec(t, db, fmt.Sprintf(`INSERT INTO bench SELECT g, g * 7, 'row number ' || g, '2024-01-01'::timestamptz + g * interval '1 second', g / 100.0 FROM generate_series(%d, %d) g`, n+1, 2*n))
	el = drain(t, task, n, 2*time.Minute)
	streamRate := float64(n) / el.Seconds()
	runtime.ReadMemStats(&ms)
	t.Logf("streaming (one %d-row transaction): %.2fs = %.0f rows/s (heap in use %d MB)", n, el.Seconds(), streamRate, ms.HeapInuse>>20)

	// Many small transactions: 100 rows each.
	c := connect_(t, db)
	for i := 0; i < n/100; i++ {
		lo := 2*n + i*100 + 1
		if _, err := c.Exec(context.Background(), fmt.Sprintf(`INSERT INTO bench SELECT g, g, 'x', now(), 1 FROM generate_series(%d, %d) g`, lo, lo+99)); err != nil {
			t.Fatal(err)
		}
	}
	el = drain(t, task, n/100*100, 2*time.Minute)
	t.Logf("streaming (%d transactions of 100 rows): %.2fs = %.0f rows/s", n/100, el.Seconds(), float64(n/100*100)/el.Seconds())
	if snapRate < 10_000 || streamRate < 10_000 {
		t.Errorf("far below the targets: snapshot %.0f rows/s, streaming %.0f rows/s", snapRate, streamRate)
	}
}
