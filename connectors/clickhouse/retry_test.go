package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/internal/testclickhouse"
)

// TestRetriesThroughServerCrash kills the ClickHouse server (SIGKILL)
// between batches of an upsert sink and brings it back a little later: the
// flush that meets the dead server retries with backoff on new connections
// until the server answers, and the table ends exactly as the records say.
// With too few retries the flush fails with an error that names the retries.
func TestRetriesThroughServerCrash(t *testing.T) {
	ch := testclickhouse.Start(t) // a private server: this test kills it
	ch.Exec(t, "CREATE DATABASE r")
	cfg := map[string]string{
		"name": "ch-retry", "connector.class": SinkClass, "topics": "t", "insert.mode": "upsert",
		"hostname": ch.Host, "port": fmt.Sprint(ch.TCPPort), "database": "r",
		"retry.backoff.ms": "200", "max.retries": "100",
	}
	task := startTask(t, cfg)
	batch := func(from, to int32, offset int64) []connect.SinkRecord {
		var out []connect.SinkRecord
		for id := from; id < to; id++ {
			out = append(out, rec("t", offset+int64(id-from), keySchema, key(id%700), rowSchema, row(id%700, fmt.Sprint("v", id), int64(id))))
		}
		return out
	}
	put(t, task, batch(0, 1000, 0)...)

	ch.Kill()
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		restarted <- ch.Restart(context.Background())
	}()
	start := time.Now()
	put(t, task, batch(1000, 2000, 1000)...) // retries until the server is back
	took := time.Since(start)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if took < time.Second {
		t.Fatalf("the put across the crash took %v: it cannot have waited for the restart", took)
	}
	t.Logf("put across a server crash succeeded after %v", took.Round(time.Millisecond))
	// The newest version of each of the 700 keys is from the second batch.
	out, err := ch.Do(ctxT(t), "SELECT count(), sum(qty), min(qty) FROM r.t FINAL")
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for id := int64(1300); id < 2000; id++ {
		want += id
	}
	if got := strings.TrimSpace(out); got != fmt.Sprintf("700\t%d\t1300", want) {
		t.Fatalf("FINAL after the crash: %q, want 700 rows, sum %d, min 1300", got, want)
	}

	// Few retries and a server that stays down: a clear failure.
	shortCfg := maps.Clone(cfg)
	shortCfg["max.retries"], shortCfg["retry.backoff.ms"] = "2", "50"
	short := startTask(t, shortCfg)
	put(t, short, batch(0, 10, 5000)...)
	ch.Kill()
	err = putErr(t, short, batch(10, 20, 5010)...)
	wantErr(t, err, "failed 3 times", "max.retries=2")
	if err := ch.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Rows left in the buffer after a burst are sent once flush.interval.ms
// passed, without another Put or a Flush.
func TestBufferedTailSentOnTime(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "batch.size", "100000", "flush.interval.ms", "200"))
	start := time.Now()
	if err := task.Put(ctxT(t), []connect.SinkRecord{
		rec("t", 0, keySchema, key(1), rowSchema, row(1, "one", 1)),
		rec("t", 1, keySchema, key(2), rowSchema, row(2, "two", 2)),
	}); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := server.Do(ctxT(t), "SELECT count() FROM "+db+".t")
		if err == nil && strings.TrimSpace(out) == "2" {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("rows not in ClickHouse 3 s after Put with flush.interval.ms=200 (count %q, %v)", out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if took < 150*time.Millisecond {
		t.Fatalf("rows visible after %v: sent before flush.interval.ms", took)
	}
	t.Logf("buffered rows visible %v after Put", took.Round(time.Millisecond))
}
