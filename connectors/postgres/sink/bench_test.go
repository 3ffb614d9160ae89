package sink

import (
	"fmt"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

var benchValue = connect.StructOf("bench", connect.F("id", connect.Int64Schema), connect.F("name", connect.StringSchema),
	connect.F("score", connect.Float64Schema), connect.F("at", connect.TimestampSchema()), connect.F("flag", connect.BooleanSchema),
	connect.F("note", connect.OptionalStringSchema))

// benchRecords builds n keyed records (ids from first), or CDC events.
func benchRecords(n int, first int64, cdc bool) []connect.SinkRecord {
	out := make([]connect.SinkRecord, n)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	env := envelopeSchema(benchValue.WithName("bench.Value", nil).AsOptional())
	row := env.Fields[1].Schema
	for i := range out {
		id := first + int64(i)
		var v *connect.Struct
		if cdc {
			v = connect.NewStruct(row)
		} else {
			v = connect.NewStruct(benchValue)
		}
		v.MustPut("id", id).MustPut("name", fmt.Sprintf("name-%d", id)).MustPut("score", float64(id)/3).
			MustPut("at", at.Add(time.Duration(id)*time.Millisecond)).MustPut("flag", id%2 == 0)
		if id%3 == 0 {
			v.MustPut("note", "a note with\ttab")
		}
		var r connect.SinkRecord
		if cdc {
			e := connect.NewStruct(env).MustPut("source", source("false")).MustPut("op", "c").MustPut("after", v)
			r = rec("bench", keySchema, key(id), env, e)
		} else {
			r = rec("bench", keySchema, key(id), benchValue, v)
		}
		r.KafkaOffset = int64(i)
		out[i] = r
	}
	return out
}

// putAll writes recs in Put batches of 10,000 (the worker's max.poll.records
// default) and returns rows/s.
func putAll(tb testing.TB, task *Task, recs []connect.SinkRecord) float64 {
	start := time.Now()
	for off := 0; off < len(recs); off += 10000 {
		put(tb, task, recs[off:min(off+10000, len(recs))]...)
	}
	return float64(len(recs)) / time.Since(start).Seconds()
}

// TestThroughput measures 100,000 rows per mode (go test -v -run Throughput).
func TestThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("measures throughput")
	}
	const n = 100000
	plain, events := benchRecords(n, 0, false), benchRecords(n, 0, true)
	for _, tc := range []struct {
		name   string
		config []string
		recs   []connect.SinkRecord
		again  bool // write twice: the second pass updates every row
	}{
		{"insert (COPY into the table)", []string{"pk.mode", "record_key"}, plain, false},
		{"upsert of new rows", []string{"pk.mode", "record_key", "insert.mode", "upsert"}, plain, false},
		{"upsert of existing rows (replay)", []string{"pk.mode", "record_key", "insert.mode", "upsert"}, plain, true},
		{"CDC events, upsert", []string{"pk.mode", "record_key", "insert.mode", "upsert", "delete.enabled", "true"}, events, false},
	} {
		db := newDB(t)
		task := startTask(t, baseConfig(db, append(tc.config, "auto.create", "true")...))
		put(t, task, benchRecords(1, -1, tc.recs[0].ValueSchema != benchValue)...) // create the table outside the measure
		if tc.again {
			putAll(t, task, tc.recs)
		}
		rate := putAll(t, task, tc.recs)
		if got := query(t, db, `SELECT count(*) FROM bench`); got[0] != fmt.Sprint(n+1) {
			t.Fatalf("%s: %s rows, want %d", tc.name, got[0], n)
		}
		t.Logf("%-34s %8.0f rows/s (%d rows, Put batches of 10000, batch.size 3000)", tc.name, rate, n)
	}
}

func BenchmarkUpsert(b *testing.B) {
	db := newDB(b)
	task := startTask(b, baseConfig(db, "pk.mode", "record_key", "insert.mode", "upsert", "auto.create", "true"))
	recs := benchRecords(10000, 0, false)
	put(b, task, recs...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		put(b, task, recs...)
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "rows/s")
}
