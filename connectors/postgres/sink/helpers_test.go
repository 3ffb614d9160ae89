package sink

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/internal/testpg"
)

// One private server for the package; every test gets its own database.
var server *testpg.Server

func TestMain(m *testing.M) { os.Exit(testpg.Main(m, &server)) }

// newDB creates a fresh database and returns its name.
func newDB(t testing.TB) string { t.Helper(); return server.NewDatabase(t, "sink") }

func baseConfig(db string, kv ...string) map[string]string {
	c := map[string]string{
		"name": "pg-sink", "connector.class": SinkClass, "topics": "t",
		"connection.url":        fmt.Sprintf("jdbc:postgresql://%s:%d/%s?user=%s", server.Host, server.Port, db, server.User),
		"connection.backoff.ms": "100", "retry.backoff.ms": "50",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

func startTask(t testing.TB, config map[string]string) *Task {
	t.Helper()
	task := NewSink().(*Sink).NewTask().(*Task)
	if err := task.Start(context.Background(), nil, config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Stop(context.Background()) })
	return task
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t testing.TB, task *Task, recs ...connect.SinkRecord) {
	t.Helper()
	if err := task.Put(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
	if err := task.Flush(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
}

// query returns the rows of sql as lines of tab-separated text values.
func query(t testing.TB, db, sql string) []string {
	t.Helper()
	ctx := ctxT(t)
	c, err := server.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if v == nil {
				parts = append(parts, "NULL")
			} else {
				parts = append(parts, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantRows(t testing.TB, db, sql string, want ...string) {
	t.Helper()
	got := query(t, db, sql)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n got  %q\n want %q", sql, got, want)
	}
}

var offset atomic.Int64

// rec builds a sink record on topic t.
func rec(topic string, ks *connect.Schema, key any, vs *connect.Schema, val any) connect.SinkRecord {
	return connect.SinkRecord{Record: connect.Record{Topic: topic, KeySchema: ks, Key: key, ValueSchema: vs, Value: val},
		KafkaOffset: offset.Add(1)}
}

var (
	keySchema   = connect.StructOf("k", connect.F("id", connect.Int64Schema))
	valueSchema = connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("name", connect.OptionalStringSchema),
		connect.F("score", connect.OptionalFloat64Schema))
)

func key(id int64) *connect.Struct { return connect.NewStruct(keySchema).MustPut("id", id) }

func val(id int64, name string, score float64) *connect.Struct {
	return connect.NewStruct(valueSchema).MustPut("id", id).MustPut("name", name).MustPut("score", score)
}

// row is a keyed record of topic t.
func row(id int64, name string, score float64) connect.SinkRecord {
	return rec("t", keySchema, key(id), valueSchema, val(id, name, score))
}

func tombstone(id int64) connect.SinkRecord { return rec("t", keySchema, key(id), nil, nil) }

func putErr(t testing.TB, task *Task, recs ...connect.SinkRecord) error {
	t.Helper()
	return task.Put(ctxT(t), recs)
}

func mustContain(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}
