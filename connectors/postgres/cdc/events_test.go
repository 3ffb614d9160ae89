package cdc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

func slotLag(t *testing.T, db, slot string) int64 {
	t.Helper()
	c := connect_(t, db)
	var lag int64
	if err := c.QueryRow(context.Background(), "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lag); err != nil {
		t.Fatal(err)
	}
	return lag
}

func metric(task *SourceTask, name string) (float64, bool) {
	for _, m := range task.Metrics() {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// With heartbeats, a slot whose tables are idle keeps up while other
// tables (not in the filtered publication) are written: its lag goes back
// near zero once the heartbeat records' offsets are committed.
func TestHeartbeatAdvancesIdleSlot(t *testing.T) {
	db := newDB(t)
	slot := "slot_" + db
	exec(t, db, `CREATE TABLE captured (id int PRIMARY KEY)`, `CREATE TABLE other (id int PRIMARY KEY, pad text)`)
	cfg := baseConfig(db, "publication.autocreate.mode", "filtered", "table.include.list", "public.captured",
		"heartbeat.interval.ms", "200", "snapshot.mode", "never")
	task := startTask(t, cfg, nil)
	waitSlotActive(t, db, slot)
	exec(t, db, "INSERT INTO other SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
	written := slotLag(t, db, slot)
	if written < 2<<20 {
		t.Fatalf("only %d bytes of WAL written", written)
	}
	c := &collector{t: t, task: task, commit: true}
	c.until(30*time.Second, "the lag to shrink", func() bool { return slotLag(t, db, slot) < 64<<10 })
	if n := c.count(func(e event) bool { return e.op == "hb" }); n == 0 {
		t.Fatal("no heartbeat records")
	}
	for _, e := range c.events {
		if e.op != "hb" {
			t.Fatalf("an event of a filtered-out table: %+v", e)
		}
		if e.topic != "__debezium-heartbeat."+db {
			t.Fatalf("heartbeat topic %q", e.topic)
		}
		if k := e.rec.Key.(*connect.Struct).Get("serverName"); k != db {
			t.Fatalf("heartbeat key %v", k)
		}
	}
	// The task reports the lag too (refreshed every 200ms here).
	c.until(10*time.Second, "the lag metric", func() bool {
		v, ok := metric(task, "postgres_slot_lag_bytes")
		return ok && v < 64<<10
	})
	t.Logf("WAL written %d bytes; lag now %d bytes; %d heartbeats", written, slotLag(t, db, slot), len(c.events))
}

// An UPDATE that leaves a TOASTed value unchanged does not carry it: the
// placeholder stands in, unless REPLICA IDENTITY FULL supplies the value.
func TestUnchangedToast(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE doc (id int PRIMARY KEY, body text, blob bytea, tags text[], n int)`,
		// Random text does not compress below the TOAST threshold.
		`INSERT INTO doc SELECT 1, string_agg(md5(g::text), ''), decode(string_agg(md5(g::text), ''), 'hex'),
			ARRAY(SELECT md5(h::text) FROM generate_series(1, 300) h), 0 FROM generate_series(1, 400) g`)
	c := connect_(t, db)
	var body string
	if err := c.QueryRow(context.Background(), "SELECT body FROM doc").Scan(&body); err != nil {
		t.Fatal(err)
	}
	task := startTask(t, baseConfig(db, "unavailable.value.placeholder", "__gone"), nil)
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the snapshot", func() bool { return len(col.events) == 1 })
	if col.events[0].after["body"] != body {
		t.Fatal("the snapshot does not hold the whole body")
	}
	exec(t, db, "UPDATE doc SET n = 1")
	col.until(20*time.Second, "the update", func() bool { return len(col.events) == 2 })
	u := col.events[1]
	if u.op != "u" || u.after["body"] != "__gone" || string(u.after["blob"].([]byte)) != "__gone" ||
		fmt.Sprint(u.after["tags"]) != "[__gone]" || u.after["n"] != int32(1) || u.before != nil {
		t.Fatalf("update with default replica identity: before %v after n=%v body=%.20v blob=%.20v tags=%.40v", u.before, u.after["n"], u.after["body"], u.after["blob"], u.after["tags"])
	}
	exec(t, db, "ALTER TABLE doc REPLICA IDENTITY FULL", "UPDATE doc SET n = 2")
	col.until(20*time.Second, "the second update", func() bool { return len(col.events) == 3 })
	u = col.events[2]
	if u.after["body"] != body || u.before["body"] != body || u.after["n"] != int32(2) || u.before["n"] != int32(1) ||
		len(u.after["tags"].([]any)) != 300 {
		t.Fatalf("update with REPLICA IDENTITY FULL: before n=%v after n=%v, body equal: %v", u.before["n"], u.after["n"], u.after["body"] == body)
	}
	exec(t, db, "DELETE FROM doc")
	col.until(20*time.Second, "the delete", func() bool { return len(col.events) == 5 })
	if d := col.events[3]; d.op != "d" || d.before["body"] != body {
		t.Fatalf("delete with REPLICA IDENTITY FULL: %v", d.op)
	}
	if tomb := col.events[4]; tomb.rec.Value != nil || tomb.key != int32(1) {
		t.Fatalf("want a tombstone for key 1, got %+v", tomb)
	}
}

func fieldType(s *connect.Schema, name string) string {
	f, ok := s.Field(name)
	if !ok {
		return "absent"
	}
	return string(f.Schema.Type)
}

// ALTER TABLE changes the schema of the next record.
func TestSchemaChange(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, a int, c int)`)
	task := startTask(t, baseConfig(db, "snapshot.mode", "never"), nil)
	waitSlotActive(t, db, "slot_"+db)
	exec(t, db, "INSERT INTO t VALUES (1, 1, 1)",
		"ALTER TABLE t ADD COLUMN b text NOT NULL DEFAULT 'x'", "INSERT INTO t VALUES (2, 2, 2, 'y')",
		"ALTER TABLE t DROP COLUMN a", "INSERT INTO t VALUES (3, 3, 'z')",
		"ALTER TABLE t ALTER COLUMN c TYPE bigint", "INSERT INTO t VALUES (4, 4, 'w')",
		"UPDATE t SET b = 'v' WHERE id = 1")
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the inserts", func() bool { return len(col.events) == 5 })
	type want struct{ a, b, c string }
	for i, w := range []want{{"int32", "absent", "int32"}, {"int32", "string", "int32"}, {"absent", "string", "int32"}, {"absent", "string", "int64"}, {"absent", "string", "int64"}} {
		s := col.events[i].rec.Value.(*connect.Struct).Get("after").(*connect.Struct).Schema()
		got := want{fieldType(s, "a"), fieldType(s, "b"), fieldType(s, "c")}
		if got != w {
			t.Errorf("record %d: fields a,b,c are %v, want %v", i, got, w)
		}
	}
	if f, _ := col.events[1].rec.Value.(*connect.Struct).Get("after").(*connect.Struct).Schema().Field("b"); f.Schema.Optional {
		t.Error("b is NOT NULL but optional")
	}
	if v := col.events[3].after["c"]; v != int64(4) {
		t.Errorf("c after ALTER TYPE is %T %v", v, v)
	}
}

// A lost replication connection is reopened, resuming after the last
// record handed over: nothing lost, nothing twice.
func TestReconnectAfterLostConnection(t *testing.T) {
	db := newDB(t)
	slot := "slot_" + db
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, ver int NOT NULL, pad text)`)
	task := startTask(t, baseConfig(db, "snapshot.mode", "never", "max.batch.size", "50"), nil)
	waitSlotActive(t, db, slot)
	c := connect_(t, db)
	col := &collector{t: t, task: task, commit: true}
	ctx := context.Background()
	id := 0
	for round := 0; round < 3; round++ {
		exec(t, db, fmt.Sprintf("INSERT INTO t SELECT g, 0, 'r%d' FROM generate_series(%d, %d) g", round, id+1, id+300))
		id += 300
		for i := 0; i < 20; i++ {
			id++
			exec(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d, 0, 'single')", id))
		}
		col.until(20*time.Second, "some records", func() bool { return len(col.events) > id-200 })
		if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", slot); err != nil {
			t.Fatal(err)
		}
	}
	col.until(30*time.Second, "every row", func() bool {
		return col.count(func(e event) bool { return e.op == "c" }) >= id
	})
	time.Sleep(300 * time.Millisecond)
	col.poll()
	seen := map[int32]int{}
	for _, e := range col.events {
		seen[e.after["id"].(int32)]++
	}
	for i := 1; i <= id; i++ {
		if seen[int32(i)] != 1 {
			t.Fatalf("row %d seen %d times", i, seen[int32(i)])
		}
	}
}

// A task stopped in the middle of the snapshot redoes it at restart, in a
// new exported snapshot of a recreated slot.
func TestRestartDuringSnapshot(t *testing.T) {
	db := newDB(t)
	slot := "slot_" + db
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, ver int NOT NULL, pad text)`,
		"INSERT INTO t SELECT g, 0, 'p' FROM generate_series(1, 20000) g")
	cfg := baseConfig(db, "max.batch.size", "100", "max.queue.size", "200")
	st := &store{}
	task := startTask(t, cfg, st)
	col := &collector{t: t, task: task, store: st, commit: true}
	col.until(20*time.Second, "part of the snapshot", func() bool { return len(col.events) >= 500 })
	if o := decodeOffset(st.off); o.snapshotCompleted || !o.slotCreated {
		t.Fatalf("mid-snapshot offset %v", st.off)
	}
	first := confirmedFlush(t, db, slot)
	task.Stop(context.Background())
	exec(t, db, "UPDATE t SET ver = 1 WHERE id = 1", "INSERT INTO t VALUES (30000, 0, 'new')")

	task2 := startTask(t, cfg, st)
	col2 := &collector{t: t, task: task2, store: st, commit: true}
	col2.until(30*time.Second, "the snapshot again", func() bool { return col2.count(func(e event) bool { return e.snap == "last" }) == 1 })
	if n := col2.count(func(e event) bool { return e.op == "r" }); n != 20001 {
		t.Fatalf("the second snapshot read %d rows, want 20001", n)
	}
	for _, e := range col2.events {
		if e.after["id"] == int32(1) && e.after["ver"] != int32(1) {
			t.Fatal("the second snapshot does not see the update made after the first")
		}
	}
	if second := confirmedFlush(t, db, slot); second <= first {
		t.Fatalf("the slot was not recreated: confirmed flush %d then %d", first, second)
	}
	exec(t, db, "INSERT INTO t VALUES (30001, 0, 'streamed')")
	col2.until(20*time.Second, "streaming", func() bool { return col2.count(func(e event) bool { return e.op == "c" }) == 1 })
	if n := col2.count(func(e event) bool { return e.op == "c" || e.op == "u" }); n != 1 {
		t.Fatalf("%d streamed events, want only the insert made after the snapshot", n)
	}
}

// Truncates emit one record per table; skipped.operations drops
// operations; tables without a key get a null key and no tombstones.
func TestTruncateSkipAndKeyless(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE a (id int PRIMARY KEY)`, `CREATE TABLE b (id int PRIMARY KEY)`,
		`CREATE TABLE nokey (v int)`, `ALTER TABLE nokey REPLICA IDENTITY FULL`)
	task := startTask(t, baseConfig(db, "snapshot.mode", "never", "skipped.operations", "u"), nil)
	waitSlotActive(t, db, "slot_"+db)
	exec(t, db, "INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (1)", "UPDATE a SET id = id",
		"INSERT INTO nokey VALUES (7)", "DELETE FROM nokey", "TRUNCATE a, b", "INSERT INTO a VALUES (9)")
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the events", func() bool { return len(col.events) == 7 })
	var got []string
	for _, e := range col.events {
		got = append(got, fmt.Sprintf("%s:%s:%v", strings.TrimPrefix(e.topic, db+".public."), e.op, e.key))
	}
	want := "a:c:1 b:c:1 nokey:c:<nil> nokey:d:<nil> a:t:<nil> b:t:<nil> a:c:9"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %v, want %v", got, want)
	}
	tr := col.events[4].rec
	if tr.Key != nil || tr.KeySchema != nil {
		t.Fatalf("truncate key %v", tr.Key)
	}
	v := tr.Value.(*connect.Struct)
	if v.Get("before") != nil || v.Get("after") != nil || v.Get("source") == nil {
		t.Fatalf("truncate value %v", v)
	}
}

// An update of the key is a delete of the old key, its tombstone and a
// create of the new key.
func TestKeyChange(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, n int NOT NULL)`, "INSERT INTO t VALUES (1, 'a', 5)")
	task := startTask(t, baseConfig(db, "snapshot.mode", "never"), nil)
	waitSlotActive(t, db, "slot_"+db)
	exec(t, db, "UPDATE t SET id = 2 WHERE id = 1", "DELETE FROM t")
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the events", func() bool { return len(col.events) == 5 })
	var got []string
	for _, e := range col.events {
		got = append(got, fmt.Sprintf("%s:%v", e.op, e.key))
	}
	if s := strings.Join(got, " "); s != "d:1 :1 c:2 d:2 :2" {
		t.Fatalf("events %s", s)
	}
	d := col.events[0]
	// Default replica identity: before holds the key; NOT NULL columns
	// get Debezium's fallback values.
	if d.before["id"] != int32(1) || d.before["name"] != "" || d.before["n"] != int32(0) {
		t.Fatalf("before of the key change: %v", d.before)
	}
	if h := d.rec.Headers; len(h) != 1 || h[0].Key != "__debezium.newkey" {
		t.Fatalf("headers %v", h)
	}
}

// column.exclude.list leaves columns out of values (not out of keys).
func TestColumnFilter(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, secret text, v int)`, "INSERT INTO t VALUES (1, 's', 1)")
	task := startTask(t, baseConfig(db, "column.exclude.list", `public\.t\.(secret|id)`), nil)
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the snapshot", func() bool { return len(col.events) == 1 })
	exec(t, db, "INSERT INTO t VALUES (2, 's', 2)")
	col.until(20*time.Second, "the insert", func() bool { return len(col.events) == 2 })
	for i, e := range col.events {
		if _, ok := e.after["secret"]; ok || e.after["v"] != int32(i+1) || e.key != int32(i+1) {
			t.Fatalf("event %d: key %v after %v", i, e.key, e.after)
		}
		if _, ok := e.after["id"]; ok {
			t.Fatalf("excluded key column in the value: %v", e.after)
		}
	}
}

func TestFilter(t *testing.T) {
	f, err := newFilter([]string{"inv.*"}, nil, nil, []string{`inventory\.audit_.*`}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		schema, table string
		want          bool
	}{
		{"inventory", "orders", true}, {"INVENTORY", "Orders", true}, {"inventory", "audit_log", false},
		{"public", "orders", false}, {"pg_catalog", "pg_class", false}, {"xinventory", "t", false},
	} {
		if got := f.table(c.schema, c.table); got != c.want {
			t.Errorf("table(%s.%s) = %v, want %v", c.schema, c.table, got, c.want)
		}
	}
}
