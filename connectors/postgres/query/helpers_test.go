package query

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/internal/testpg"
)

// One private server for the package; every test gets its own database.
var server *testpg.Server

func TestMain(m *testing.M) { os.Exit(testpg.Main(m, &server)) }

func newDB(t testing.TB) string { t.Helper(); return server.NewDatabase(t, "src") }

func config(db string, kv ...string) map[string]string {
	c := map[string]string{
		"name": "pg-source", "connector.class": SourceClass, "topic.prefix": "pg-",
		"connection.url":        fmt.Sprintf("jdbc:postgresql://%s:%d/%s?user=%s", server.Host, server.Port, db, server.User),
		"connection.backoff.ms": "100", "poll.interval.ms": "100", "table.poll.interval.ms": "0",
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

// store is the worker's offset store: the last offset of each partition.
type store struct {
	mu sync.Mutex
	m  map[string]connect.PartitionOffset
}

func newStore() *store { return &store{m: map[string]connect.PartitionOffset{}} }

func pkey(p map[string]any) string { b, _ := json.Marshal(p); return string(b) }

func (s *store) Offsets(_ context.Context, ps []map[string]any) ([]connect.PartitionOffset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []connect.PartitionOffset
	for _, p := range ps {
		if po, ok := s.m[pkey(p)]; ok {
			// Through JSON, as the worker stores them.
			b, _ := json.Marshal(po.Offset)
			var off map[string]any
			json.Unmarshal(b, &off)
			out = append(out, connect.PartitionOffset{Partition: p, Offset: off})
		}
	}
	return out, nil
}

func (s *store) put(p, off map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[pkey(p)] = connect.PartitionOffset{Partition: p, Offset: off}
}

// ccFake records reconfiguration requests.
type ccFake struct{ reconf chan struct{} }

func (c *ccFake) RequestTaskReconfiguration() {
	select {
	case c.reconf <- struct{}{}:
	default:
	}
}
func (c *ccFake) RaiseError(error) {}

// startAll starts the connector and its tasks (tasks.max = max).
func startAll(t testing.TB, cfg map[string]string, st *store, max int) (*Source, []*SourceTask) {
	t.Helper()
	c := NewSource().(*Source)
	if err := c.Start(ctxT(t), &ccFake{reconf: make(chan struct{}, 1)}, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	tcs, err := c.TaskConfigs(ctxT(t), max)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []*SourceTask
	for _, tc := range tcs {
		task := c.NewTask().(*SourceTask)
		if err := task.Start(ctxT(t), st, tc); err != nil {
			t.Fatal(err)
		}
		task.maxWait = 200 * time.Millisecond // tests poll often
		t.Cleanup(func() { task.Stop(context.Background()) })
		tasks = append(tasks, task)
	}
	return c, tasks
}

func startOne(t testing.TB, cfg map[string]string, st *store) *SourceTask {
	t.Helper()
	_, tasks := startAll(t, cfg, st, 1)
	if len(tasks) != 1 {
		t.Fatalf("%d tasks, want 1", len(tasks))
	}
	return tasks[0]
}

// pollN polls until n records arrived (or fails at the deadline), storing
// offsets as the worker would.
func pollN(t testing.TB, task *SourceTask, st *store, n int, within time.Duration) []connect.SourceRecord {
	t.Helper()
	var out []connect.SourceRecord
	deadline := time.Now().Add(within)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d records within %v, want %d: %v", len(out), within, n, ids(out))
		}
		recs, err := task.Poll(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.SourceOffset != nil {
				if i != len(recs)-1 {
					t.Fatalf("record %d of %d carries an offset", i, len(recs))
				}
				if st != nil {
					st.put(r.SourcePartition, r.SourceOffset)
				}
			}
		}
		out = append(out, recs...)
	}
	if len(out) > n {
		t.Fatalf("got %d records, want %d: %v", len(out), n, ids(out))
	}
	return out
}

// pollQuiet polls for d and fails on any record.
func pollQuiet(t testing.TB, task *SourceTask, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		recs, err := task.Poll(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			t.Fatalf("unexpected records %v", ids(recs))
		}
	}
}

func field(r connect.SourceRecord, name string) any { return r.Value.(*connect.Struct).Get(name) }

// ids renders the records' "id" fields (or their values).
func ids(recs []connect.SourceRecord) []string {
	var out []string
	for _, r := range recs {
		st := r.Value.(*connect.Struct)
		if _, ok := st.Schema().Field("id"); ok {
			out = append(out, fmt.Sprint(st.Get("id")))
		} else {
			out = append(out, st.String())
		}
	}
	return out
}

func sortedIDs(recs []connect.SourceRecord) string {
	s := ids(recs)
	sort.Slice(s, func(i, j int) bool { return len(s[i]) < len(s[j]) || len(s[i]) == len(s[j]) && s[i] < s[j] })
	return strings.Join(s, ",")
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
