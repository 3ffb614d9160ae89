package clickhouse

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// TestThroughput writes 200,000 rows of about 100 bytes (an Int64 id and a
// 92-byte string) in Puts of 10,000 records (batch.size 10000: every Put
// sends one batch) and prints rows/s. Skipped with -short.
func TestThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	db := newDB(t)
	sch := connect.StructOf("r", connect.F("id", connect.Int64Schema), connect.F("payload", connect.StringSchema))
	payload := strings.Repeat("x", 92)
	const total, batch = 200_000, 10_000
	batches := make([][]connect.SinkRecord, 0, total/batch)
	for b := 0; b < total/batch; b++ {
		recs := make([]connect.SinkRecord, batch)
		for i := range recs {
			n := int64(b*batch + i)
			recs[i] = rec("perf", n, nil, nil, sch, connect.NewStruct(sch).MustPut("id", n).MustPut("payload", payload))
		}
		batches = append(batches, recs)
	}
	task := startTask(t, baseConfig(db, "batch.size", "10000"))
	put(t, task, batches[0][:1]...) // creates the table outside the timing
	server.Exec(t, "TRUNCATE TABLE "+db+".perf")
	start := time.Now()
	for _, recs := range batches {
		if err := task.Put(ctxT(t), recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := task.Flush(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if got := query(t, "SELECT count() FROM "+db+".perf"); got != "200000" {
		t.Fatalf("count = %s", got)
	}
	rate := float64(total) / el.Seconds()
	t.Logf("%d rows of ~100 bytes in batches of %d: %v, %.0f rows/s", total, batch, el.Round(time.Millisecond), rate)
	if rate < 200_000 {
		t.Logf("below the 200,000 rows/s target")
	}
}
