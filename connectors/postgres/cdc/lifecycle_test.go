package cdc

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func slotExists(t *testing.T, db, slot string) bool {
	t.Helper()
	var n int
	if err := connect_(t, db).QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// A slot that exists without stored offsets (created by hand, or by a task
// that stopped before its first offset was stored): the snapshot is read
// fresh and streaming starts at the slot's position. Rows changed in
// between may come twice, none is missing.
func TestExistingSlotWithoutOffsets(t *testing.T) {
	db := newDB(t)
	cfg := baseConfig(db)
	exec(t, db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t SELECT generate_series(1, 100)",
		"CREATE PUBLICATION "+pgx.Identifier{"pub_" + db}.Sanitize()+" FOR ALL TABLES",
		"SELECT pg_create_logical_replication_slot('slot_"+db+"', 'pgoutput')",
		"INSERT INTO t SELECT generate_series(101, 150)")
	task := startTask(t, cfg, nil)
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the snapshot", func() bool { return col.count(func(e event) bool { return e.snap == "last" }) == 1 })
	exec(t, db, "INSERT INTO t VALUES (1000)")
	col.until(20*time.Second, "the new row", func() bool { return col.count(func(e event) bool { return e.after["id"] == int32(1000) }) == 1 })
	seen := map[int32]int{}
	for _, e := range col.events {
		seen[e.after["id"].(int32)]++
	}
	for i := int32(1); i <= 150; i++ {
		if seen[i] == 0 {
			t.Fatalf("row %d missing", i)
		}
	}
	if seen[1000] != 1 {
		t.Fatalf("a row inserted after the start came %d times", seen[1000])
	}
}

// initial_only reads the snapshot, creates no slot and then produces
// nothing, also after a restart.
func TestInitialOnly(t *testing.T) {
	db := newDB(t)
	cfg := baseConfig(db, "snapshot.mode", "initial_only", "poll.interval.ms", "100")
	exec(t, db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t SELECT generate_series(1, 10)")
	st := &store{}
	task := startTask(t, cfg, st)
	col := &collector{t: t, task: task, store: st, commit: true}
	col.until(20*time.Second, "the snapshot", func() bool { return len(col.events) == 10 })
	exec(t, db, "INSERT INTO t VALUES (11)")
	for i := 0; i < 5; i++ {
		col.poll()
	}
	if len(col.events) != 10 || slotExists(t, db, "slot_"+db) {
		t.Fatalf("%d events, slot exists %v", len(col.events), slotExists(t, db, "slot_"+db))
	}
	task.Stop(context.Background())
	task2 := startTask(t, cfg, st)
	col2 := &collector{t: t, task: task2}
	for i := 0; i < 5; i++ {
		col2.poll()
	}
	if len(col2.events) != 0 {
		t.Fatalf("initial_only after a finished snapshot emitted %d events", len(col2.events))
	}
}

// An empty snapshot still stores its completion (in a heartbeat record), so
// a restart does not snapshot again; slot.drop.on.stop drops the slot; Stop
// is idempotent; an idle Poll returns within poll.interval.ms.
func TestEmptySnapshotDropSlotAndIdlePoll(t *testing.T) {
	db := newDB(t)
	slot := "slot_" + db
	cfg := baseConfig(db, "slot.drop.on.stop", "true", "poll.interval.ms", "200")
	exec(t, db, "CREATE TABLE t (id int PRIMARY KEY)")
	st := &store{}
	task := startTask(t, cfg, st)
	col := &collector{t: t, task: task, store: st, commit: true}
	col.until(20*time.Second, "the completion record", func() bool { return len(col.events) == 1 })
	if e := col.events[0]; e.op != "hb" || !decodeOffset(e.rec.SourceOffset).snapshotCompleted {
		t.Fatalf("first record %+v", e)
	}
	start := time.Now()
	if recs, err := task.Poll(context.Background()); err != nil || len(recs) != 0 {
		t.Fatalf("idle poll: %d records, %v", len(recs), err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 2*time.Second {
		t.Fatalf("an idle poll took %s with poll.interval.ms=200", el)
	}
	if !slotExists(t, db, slot) {
		t.Fatal("no slot")
	}
	if v, ok := metric(task, "postgres_last_event_lag_ms"); !ok || v < 0 {
		t.Fatal("no event lag metric")
	}
	if err := task.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := task.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slotExists(t, db, slot) {
		t.Fatal("slot.drop.on.stop left the slot")
	}
	// The restart finds the completion stored: no snapshot; the slot was
	// dropped on purpose, so it is recreated.
	exec(t, db, "INSERT INTO t VALUES (1)")
	task2 := startTask(t, cfg, st)
	waitSlotActive(t, db, slot)
	exec(t, db, "INSERT INTO t VALUES (2)")
	col2 := &collector{t: t, task: task2}
	col2.until(20*time.Second, "the insert", func() bool { return len(col2.events) == 1 })
	if e := col2.events[0]; e.op != "c" || e.after["id"] != int32(2) {
		t.Fatalf("after restart: %+v", e)
	}
}

func TestDecodeOffsets(t *testing.T) {
	// Debezium's offsets resume from their lsn; an unfinished Debezium
	// snapshot is redone.
	dbz := decodeOffset(map[string]any{"lsn_proc": float64(100), "lsn_commit": float64(90), "lsn": float64(100), "txId": float64(5), "ts_usec": float64(1)})
	if dbz.ours || dbz.resumeLSN() != 100 || !dbz.snapshotCompleted || flushLSN(map[string]any{"lsn": int64(100)}) != 100 {
		t.Fatalf("debezium offset: %+v", dbz)
	}
	if o := decodeOffset(map[string]any{"snapshot": true, "last_snapshot_record": false, "lsn": float64(7)}); o.snapshotCompleted {
		t.Fatal("an unfinished Debezium snapshot counted as complete")
	}
	// Ours, inside a transaction: resume at its commit LSN.
	p := position{lsn: 50, proc: 40, ord: 2, commit: 50, prevCommit: 30}
	o := decodeOffset(p.offset())
	if !o.ours || o.complete || o.resumeLSN() != 50 || o.proc != 40 || o.ord != 2 || o.prevCommit != 30 {
		t.Fatalf("mid-transaction offset: %+v", o)
	}
	// Through JSON numbers (float64) too.
	if o := decodeOffset(map[string]any{"tributary_offset": float64(1), "lsn": float64(60), "tx_complete": true, "snapshot_completed": true}); o.resumeLSN() != 60 {
		t.Fatalf("float offset: %+v", o)
	}
	if flushLSN(snapshotOffset(70, true, false)) != 0 || flushLSN(snapshotOffset(70, true, true)) != 70 {
		t.Fatal("snapshot offsets must not confirm before the snapshot completes")
	}
}

// A publication that publishes a partitioned table through its root:
// the snapshot reads the root (with its partitions) and the stream names
// it, so both land on the root's topic.
func TestPartitionRoot(t *testing.T) {
	db := newDB(t)
	exec(t, db, "CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)",
		"CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (100)",
		"CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (100) TO (200)",
		"INSERT INTO parted VALUES (1, 'a'), (150, 'b')",
		"CREATE PUBLICATION "+pgx.Identifier{"pub_" + db}.Sanitize()+" FOR TABLE parted WITH (publish_via_partition_root = true)")
	task := startTask(t, baseConfig(db, "publication.autocreate.mode", "disabled"), nil)
	col := &collector{t: t, task: task, commit: true}
	col.until(20*time.Second, "the snapshot", func() bool { return len(col.events) == 2 })
	exec(t, db, "INSERT INTO parted VALUES (2, 'c'), (151, 'd')")
	col.until(20*time.Second, "the stream", func() bool { return len(col.events) == 4 })
	for _, e := range col.events {
		if e.topic != db+".public.parted" {
			t.Fatalf("event on %s", e.topic)
		}
	}
}

// filtered keeps the publication's table list equal to what the filters
// select, at every start.
func TestFilteredPublicationSync(t *testing.T) {
	db := newDB(t)
	exec(t, db, "CREATE TABLE a (id int PRIMARY KEY)", "CREATE TABLE b (id int PRIMARY KEY)", "CREATE TABLE c (id int PRIMARY KEY)",
		"CREATE SCHEMA other", "CREATE TABLE other.a (id int PRIMARY KEY)")
	c := connect_(t, db)
	ctx := context.Background()
	published := func() string {
		var s string
		if err := c.QueryRow(ctx, "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_publication_tables WHERE pubname = $1", "pub_"+db).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct{ include, want string }{
		{"public\\.(a|b)", "public.a,public.b"},
		{"public\\.[bc],other\\..*", "other.a,public.b,public.c"},
		{"PUBLIC.A", "public.a"},
	} {
		s, errs := parseSettings(baseConfig(db, "publication.autocreate.mode", "filtered", "table.include.list", tc.include))
		if errs != nil {
			t.Fatal(errs)
		}
		if err := ensurePublication(ctx, c, s); err != nil {
			t.Fatal(err)
		}
		if got := published(); got != tc.want {
			t.Fatalf("include %q: publication has %s, want %s", tc.include, got, tc.want)
		}
	}
}
