package cdc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/internal/testpg"
)

// One server for the package's tests; each test has its own database and
// slot.
var srv *testpg.Server

func TestMain(m *testing.M) { os.Exit(testpg.Main(m, &srv)) }

func server(testing.TB) *testpg.Server { return srv }

// newDB creates a database for the test; its name doubles as slot and
// topic prefix.
func newDB(t testing.TB) string { t.Helper(); return srv.NewDatabase(t, "db") }

func baseConfig(db string, kv ...string) map[string]string {
	c := map[string]string{
		"database.hostname": srv.Host,
		"database.port":     strconv.Itoa(srv.Port),
		"database.user":     srv.User,
		"database.dbname":   db,
		"topic.prefix":      db,
		"slot.name":         "slot_" + db,
		"publication.name":  "pub_" + db,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

func exec(t testing.TB, db string, sql ...string) {
	t.Helper()
	server(t).Exec(t, db, sql...)
}

func connect_(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	c, err := server(t).Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// store is a fake worker offset store.
type store struct {
	mu  sync.Mutex
	off map[string]any
}

func (s *store) Offsets(_ context.Context, ps []map[string]any) ([]connect.PartitionOffset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off == nil {
		return nil, nil
	}
	return []connect.PartitionOffset{{Partition: ps[0], Offset: s.off}}, nil
}

func (s *store) set(off map[string]any) {
	s.mu.Lock()
	s.off = off
	s.mu.Unlock()
}

func startTask(t testing.TB, cfg map[string]string, st *store) *SourceTask {
	t.Helper()
	task := NewSource().(*Source).NewTask().(*SourceTask)
	task.lagInterval = 200 * time.Millisecond
	if st == nil {
		st = &store{}
	}
	if err := task.Start(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Stop(context.Background()) })
	return task
}

// event is a decoded record, for assertions.
type event struct {
	topic  string
	op     string // c u d r t, "" for tombstones, "hb" for heartbeats
	key    any
	before map[string]any
	after  map[string]any
	snap   string
	lsn    int64
	rec    connect.SourceRecord
}

func structMap(v any) map[string]any {
	st, ok := v.(*connect.Struct)
	if !ok || st == nil {
		return nil
	}
	m := map[string]any{}
	for i, f := range st.Schema().Fields {
		m[f.Name] = st.GetByIndex(i)
	}
	return m
}

func decode(t testing.TB, r connect.SourceRecord) event {
	t.Helper()
	e := event{topic: r.Topic, rec: r}
	if k, ok := r.Key.(*connect.Struct); ok {
		km := structMap(k)
		if len(km) == 1 {
			for _, v := range km {
				e.key = v
			}
		} else {
			e.key = fmt.Sprint(km)
		}
	}
	if r.Value == nil {
		return e
	}
	v := r.Value.(*connect.Struct)
	if err := v.Validate(); err != nil {
		t.Fatalf("record of %s does not validate: %v", r.Topic, err)
	}
	if v.Schema().Name == heartbeatValName {
		e.op = "hb"
		return e
	}
	e.op = v.Get("op").(string)
	e.before = structMap(v.Get("before"))
	e.after = structMap(v.Get("after"))
	src := v.Get("source").(*connect.Struct)
	e.snap = src.Get("snapshot").(string)
	if l, ok := src.Get("lsn").(int64); ok {
		e.lsn = l
	}
	return e
}

// collector polls a task like a worker: it keeps every record and stores
// the offset of the last record of each batch, committing it when asked.
type collector struct {
	t      testing.TB
	task   *SourceTask
	store  *store
	events []event
	// lastOff is the offset of the last record of the last batch.
	lastOff map[string]any
	commit  bool
	// ends[i] is len(events) after batch i, offs[i] its last offset.
	ends []int
	offs []map[string]any
}

func (c *collector) poll() int {
	c.t.Helper()
	recs, err := c.task.Poll(context.Background())
	if err != nil {
		c.t.Fatalf("poll: %v", err)
	}
	if len(recs) == 0 {
		return 0
	}
	last := recs[len(recs)-1]
	if last.SourceOffset == nil {
		c.t.Fatalf("the last record of a batch of %d has no offset", len(recs))
	}
	for _, r := range recs {
		if r.SourcePartition[partitionKey] != c.task.s.prefix {
			c.t.Fatalf("bad partition %v", r.SourcePartition)
		}
		c.events = append(c.events, decode(c.t, r))
	}
	c.lastOff = last.SourceOffset
	c.ends = append(c.ends, len(c.events))
	c.offs = append(c.offs, last.SourceOffset)
	if c.commit {
		if c.store != nil {
			c.store.set(last.SourceOffset)
		}
		c.task.Commit(context.Background(), []connect.PartitionOffset{{Partition: last.SourcePartition, Offset: last.SourceOffset}})
	}
	return len(recs)
}

// until polls until cond holds or the deadline passes.
func (c *collector) until(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s (%d events so far)", what, len(c.events))
		}
		c.poll()
	}
}

func (c *collector) count(pred func(event) bool) int {
	n := 0
	for _, e := range c.events {
		if pred(e) {
			n++
		}
	}
	return n
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
