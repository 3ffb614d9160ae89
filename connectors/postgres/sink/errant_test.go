package sink

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

// errantReporter stands in for the worker's errant record reporter:
// with tolerate (errors.tolerance=all) it records what was reported,
// otherwise it refuses, as the runtime does.
type errantReporter struct {
	tolerate bool
	reported []string
}

func (e *errantReporter) Assignment() []connect.TopicPartition { return nil }
func (e *errantReporter) Pause(...connect.TopicPartition)      {}
func (e *errantReporter) Resume(...connect.TopicPartition)     {}
func (e *errantReporter) Rewind(connect.TopicPartition, int64) {}
func (e *errantReporter) RequestCommit()                       {}
func (e *errantReporter) Report(rec *connect.SinkRecord, cause error) error {
	if !e.tolerate {
		return fmt.Errorf("record %d: %w", rec.KafkaOffset, cause)
	}
	e.reported = append(e.reported, fmt.Sprintf("%d: %v", rec.KafkaOffset, cause))
	return nil
}

// Records the database refuses (a value out of its column's range, a
// CHECK violation) or that cannot become rows (a value that is no struct)
// are reported as errant with errors.tolerance=all, found by bisecting the
// batch, and every other record of the batch is written, in order. Without
// tolerance the Put fails and nothing of the batch is written.
func TestErrantRecordsIsolated(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TABLE t (id bigint PRIMARY KEY, name text, score smallint CHECK (score >= 0))`)
	batch := func() ([]connect.SinkRecord, map[int64]string) {
		var recs []connect.SinkRecord
		bad := map[int64]string{}
		for id := int64(1); id <= 200; id++ {
			score := float64(id % 50)
			switch id {
			case 17:
				score = 70_000 // out of smallint's range: 22003
			case 101:
				score = -1 // the CHECK: 23514
			}
			r := row(id, fmt.Sprint("n", id), score)
			if id == 150 {
				r = rec("t", keySchema, key(id), connect.StringSchema, "not a struct")
			}
			if id == 17 || id == 101 || id == 150 {
				bad[r.KafkaOffset] = fmt.Sprint(id)
			}
			recs = append(recs, r)
		}
		return recs, bad
	}
	cfg := baseConfig(db, "insert.mode", "insert", "pk.mode", "record_key", "batch.size", "64")

	// Without tolerance: the Put fails and writes nothing.
	strict := NewSink().(*Sink).NewTask().(*Task)
	if err := strict.Start(ctxT(t), &errantReporter{}, cfg); err != nil {
		t.Fatal(err)
	}
	defer strict.Stop(context.Background())
	recs, _ := batch()
	err := strict.Put(ctxT(t), recs)
	mustContain(t, err, "record")
	if !isolatable(err) {
		t.Fatalf("the error of a batch with bad values is not isolatable: %v", err)
	}
	wantRows(t, db, `SELECT count(*) FROM t`, "0")

	// Tolerated: the three bad records are reported, the rest is written.
	rep := &errantReporter{tolerate: true}
	task := NewSink().(*Sink).NewTask().(*Task)
	tolerant := maps.Clone(cfg)
	tolerant["errors.tolerance"] = "all"
	if err := task.Start(ctxT(t), rep, tolerant); err != nil {
		t.Fatal(err)
	}
	defer task.Stop(context.Background())
	recs, bad := batch()
	if err := task.Put(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
	if len(rep.reported) != 3 {
		t.Fatalf("reported %d records, want 3 (ids 17, 101, 150): %q", len(rep.reported), rep.reported)
	}
	for _, r := range rep.reported {
		off, _, _ := strings.Cut(r, ": ")
		var o int64
		fmt.Sscan(off, &o)
		if _, ok := bad[o]; !ok {
			t.Fatalf("reported %q, which is not one of the bad records %v", r, bad)
		}
	}
	t.Logf("reported: %q", rep.reported)
	wantRows(t, db, `SELECT count(*), sum(id)::bigint FROM t`, fmt.Sprintf("197|%d", 200*201/2-17-101-150))
	wantRows(t, db, `SELECT name, score FROM t WHERE id = 3`, "n3|3")
	// The later record for key 3 is a duplicate key in insert mode: in a
	// batch of its own it is reported too, and the row keeps its first value.
	if err := task.Put(ctxT(t), []connect.SinkRecord{row(3, "three again", 33)}); err != nil {
		t.Fatal(err)
	}
	if len(rep.reported) != 4 || !strings.Contains(rep.reported[3], "23505") {
		t.Fatalf("reported %q, want a 4th for the duplicate key", rep.reported)
	}
}
