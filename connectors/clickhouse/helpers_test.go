package clickhouse

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/internal/testclickhouse"
)

// One private server for the package; every test gets its own database.
var server *testclickhouse.Server

func TestMain(m *testing.M) { os.Exit(testclickhouse.Main(m, &server)) }

func newDB(t testing.TB) string { t.Helper(); return server.NewDatabase(t, "sink") }

func baseConfig(db string, kv ...string) map[string]string {
	c := map[string]string{
		"name": "ch-sink", "connector.class": SinkClass, "topics": "t",
		"hostname": server.Host, "port": fmt.Sprint(server.TCPPort), "database": db,
		"retry.backoff.ms": "50", "max.retries": "2",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startTask(t testing.TB, config map[string]string) *Task {
	t.Helper()
	task := NewSink().(*Sink).NewTask().(*Task)
	if err := task.Start(ctxT(t), nil, config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Stop(context.Background()) })
	return task
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

// putErr returns the error of Put, or else of Flush.
func putErr(t testing.TB, task *Task, recs ...connect.SinkRecord) error {
	t.Helper()
	if err := task.Put(ctxT(t), recs); err != nil {
		return err
	}
	return task.Flush(ctxT(t), nil)
}

func rec(topic string, offset int64, ks *connect.Schema, k any, vs *connect.Schema, v any) connect.SinkRecord {
	return connect.SinkRecord{Record: connect.Record{Topic: topic, KeySchema: ks, Key: k, ValueSchema: vs, Value: v}, KafkaOffset: offset}
}

func query(t testing.TB, sql string) string {
	t.Helper()
	return strings.Join(server.Query(t, sql), "\n")
}

func wantRows(t testing.TB, sql, want string) {
	t.Helper()
	want = strings.TrimSpace(want)
	if got := query(t, sql); got != want {
		t.Fatalf("%s:\ngot:\n%s\nwant:\n%s", sql, got, want)
	}
}

func wantErr(t testing.TB, err error, parts ...string) {
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
