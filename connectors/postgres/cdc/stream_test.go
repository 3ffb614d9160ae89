package cdc

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/tributary-data/tributary/connect"
)

type rowKey struct {
	table string
	id    int32
}

// checkHistories checks that every key's events form one unbroken history:
// a snapshot read or an insert first, then updates whose version rises by
// exactly one each, then at most a delete. A gap (an event lost between
// snapshot and stream) or an overlap (one seen twice) breaks it.
func checkHistories(t *testing.T, events []event) map[rowKey]map[string]any {
	t.Helper()
	state := map[rowKey]map[string]any{}
	hist := map[rowKey][]event{}
	truncated := map[string]int{}
	for i, e := range events {
		switch e.op {
		case "hb", "":
			continue
		case "t":
			for k := range state {
				if k.table == e.topic {
					delete(state, k)
				}
			}
			truncated[e.topic] = i
			continue
		}
		row := e.after
		if e.op == "d" {
			row = e.before
		}
		k := rowKey{e.topic, row["id"].(int32)}
		hist[k] = append(hist[k], e)
		if e.op == "d" {
			delete(state, k)
		} else {
			state[k] = e.after
		}
	}
	for k, h := range hist {
		first := h[0]
		if first.op != "r" && first.op != "c" {
			t.Fatalf("%v: history starts with %q (a lost snapshot read or insert): %v", k, first.op, ops(h))
		}
		if first.op == "c" && first.after["ver"].(int32) != 0 {
			t.Fatalf("%v: insert with version %v", k, first.after["ver"])
		}
		ver := first.after["ver"].(int32)
		for i, e := range h[1:] {
			switch e.op {
			case "u":
				if v := e.after["ver"].(int32); v != ver+1 {
					t.Fatalf("%v: version %d after %d (gap or duplicate): %v", k, v, ver, ops(h))
				}
				ver++
			case "d":
				if i != len(h)-2 {
					t.Fatalf("%v: events after a delete: %v", k, ops(h))
				}
			default:
				t.Fatalf("%v: %q in the middle of a history (seen twice?): %v", k, e.op, ops(h))
			}
		}
	}
	return state
}

func ops(h []event) string {
	s := ""
	for _, e := range h {
		v := any(nil)
		if e.after != nil {
			v = e.after["ver"]
		}
		s += fmt.Sprintf("%s%v ", e.op, v)
	}
	return s
}

// tableState reads the tables as rowKey -> row.
func tableState(t *testing.T, db, prefix string, tables ...string) map[rowKey]map[string]any {
	t.Helper()
	c := connect_(t, db)
	out := map[rowKey]map[string]any{}
	for _, tb := range tables {
		rows, err := c.Query(context.Background(), "SELECT id, ver, pad FROM "+tb)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, ver int32
			var pad *string
			if err := rows.Scan(&id, &ver, &pad); err != nil {
				t.Fatal(err)
			}
			m := map[string]any{"id": id, "ver": ver, "pad": nil}
			if pad != nil {
				m["pad"] = *pad
			}
			out[rowKey{prefix + ".public." + tb, id}] = m
		}
		rows.Close()
	}
	return out
}

func compareState(t *testing.T, got, want map[rowKey]map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("reconstructed %d rows, the tables hold %d", len(got), len(want))
	}
	n := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok || g["ver"] != w["ver"] || g["pad"] != w["pad"] {
			t.Errorf("%v: reconstructed %v, table has %v", k, g, w)
			if n++; n > 10 {
				t.FailNow()
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%v reconstructed but not in the table", k)
			if n++; n > 10 {
				t.FailNow()
			}
		}
	}
}

// Snapshot of existing rows while 3 writers change 3 tables, then
// streaming: every row change arrives exactly once, and replaying the
// events rebuilds the tables.
func TestSnapshotAndStreamWithConcurrentWriters(t *testing.T) {
	db := newDB(t)
	const pre = 20000
	for _, tb := range []string{"t1", "t2", "t3"} {
		exec(t, db, fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, ver int NOT NULL, pad text)`, tb),
			fmt.Sprintf(`INSERT INTO %s SELECT g, 0, 'p'||g FROM generate_series(1, %d) g`, tb, pre),
			"ANALYZE "+tb)
	}
	cfg := baseConfig(db, "snapshot.fetch.size", "3000", "snapshot.max.threads", "3", "max.batch.size", "500")
	const writers, opsPer = 3, 2500
	var wg sync.WaitGroup
	var done sync.WaitGroup
	progress := make(chan struct{}, writers*opsPer)
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		done.Add(1)
		go func(w int) {
			defer wg.Done()
			defer done.Done()
			ctx := context.Background()
			c, err := server(t).Connect(ctx, db)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			rnd := rand.New(rand.NewSource(int64(w)))
			next := int32(1_000_000 * (w + 1))
			var mine []int32
			for i := 0; i < opsPer; i++ {
				tb := fmt.Sprintf("t%d", 1+rnd.Intn(3))
				var q []string
				switch r := rnd.Intn(10); {
				case r < 4:
					next++
					mine = append(mine, next)
					q = append(q, fmt.Sprintf("INSERT INTO t%d VALUES (%d, 0, 'w%d')", 1+int(next)%3, next, w))
				case r < 8:
					q = append(q, fmt.Sprintf("UPDATE %s SET ver = ver + 1, pad = 'u%d' WHERE id = %d", tb, i, 1+rnd.Intn(pre)))
				case r < 9 && len(mine) > 0:
					j := rnd.Intn(len(mine))
					id := mine[j]
					mine = append(mine[:j], mine[j+1:]...)
					q = append(q, fmt.Sprintf("DELETE FROM t%d WHERE id = %d", 1+int(id)%3, id))
				default: // a transaction over several tables
					q = append(q, "BEGIN")
					for k := 0; k < 5; k++ {
						q = append(q, fmt.Sprintf("UPDATE t%d SET ver = ver + 1 WHERE id = %d", 1+rnd.Intn(3), 1+rnd.Intn(pre)))
					}
					next++
					mine = append(mine, next)
					q = append(q, fmt.Sprintf("INSERT INTO t%d VALUES (%d, 0, NULL)", 1+int(next)%3, next), "COMMIT")
				}
				for _, s := range q {
					if _, err := c.Exec(ctx, s); err != nil {
						errs <- fmt.Errorf("%s: %w", s, err)
						return
					}
				}
				progress <- struct{}{}
			}
		}(w)
	}
	// Start the task while the writers run, and read nothing until they
	// have done more: the snapshot spans their writes.
	for i := 0; i < 300; i++ {
		<-progress
	}
	task := startTask(t, cfg, nil)
	for i := 0; i < 1500; i++ {
		select {
		case <-progress:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	c := &collector{t: t, task: task, commit: true}
	c.until(30*time.Second, "the snapshot", func() bool { return c.count(func(e event) bool { return e.snap == "last" }) == 1 })
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	exec(t, db, "TRUNCATE t3", "INSERT INTO t3 VALUES (-1, 0, 'after truncate'), (-2, 0, NULL)", "INSERT INTO t1 VALUES (-3, 0, 'marker')")
	c.until(30*time.Second, "the marker", func() bool {
		return c.count(func(e event) bool { return e.op == "c" && e.after["id"] == int32(-3) }) == 1
	})
	snap := c.count(func(e event) bool { return e.op == "r" })
	if snap < 3*pre {
		t.Fatalf("%d snapshot records, want at least %d", snap, 3*pre)
	}
	if n := c.count(func(e event) bool { return e.op == "t" }); n != 1 {
		t.Fatalf("%d truncate records, want 1", n)
	}
	// Snapshot records come first, all of them, then the stream.
	lastSnap := -1
	for i, e := range c.events {
		if e.op == "r" {
			lastSnap = i
		}
		if e.snap == "last" && i != lastSnap {
			t.Fatalf("the snapshot record marked last is not the last one")
		}
	}
	for _, e := range c.events[:lastSnap] {
		if e.op != "r" {
			t.Fatalf("a %q record before the end of the snapshot", e.op)
		}
	}
	got := checkHistories(t, c.events)
	want := tableState(t, db, db, "t1", "t2", "t3")
	compareState(t, got, want)
	t.Logf("%d events: %d snapshot reads, %d streamed", len(c.events), snap, len(c.events)-snap)
}

// A restart resumes after the last stored offset, even inside a
// transaction: nothing is lost and only what was not stored comes again.
func TestRestartResumesAfterStoredOffset(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, ver int NOT NULL, pad text)`)
	cfg := baseConfig(db, "snapshot.mode", "never", "max.batch.size", "100")
	st := &store{}
	task := startTask(t, cfg, st)
	waitSlotActive(t, db, "slot_"+db)
	exec(t, db,
		"INSERT INTO t SELECT g, 0, 'big' FROM generate_series(1, 1000) g", // one transaction of 1000
		"BEGIN", "INSERT INTO t VALUES (5001, 0, 'a')", "DELETE FROM t WHERE id = 5001", "COMMIT",
	)
	for i := 0; i < 30; i++ {
		exec(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d, 0, 'small')", 2000+i))
	}
	exec(t, db, "UPDATE t SET ver = ver + 1 WHERE id <= 450")
	const total = 1000 + 3 + 30 + 450
	c := &collector{t: t, task: task, store: st}
	c.until(30*time.Second, "all changes", func() bool { return len(c.events) >= total })
	time.Sleep(200 * time.Millisecond)
	c.poll()
	if len(c.events) != total {
		t.Fatalf("%d events, want %d", len(c.events), total)
	}
	task.Stop(context.Background())

	// Restart from the offset of every kind of batch end: inside the big
	// transaction, at a transaction end, inside the update. In that order,
	// as the slot only moves forward.
	type restartCase struct {
		name  string
		batch int
	}
	var cases []restartCase
	found := map[string]bool{}
	for i, end := range c.ends {
		off := decodeOffset(c.offs[i])
		name := ""
		switch {
		case end > 100 && end < 900 && !off.complete:
			name = "inside a transaction"
		case end > 1003 && end <= 1033 && off.complete:
			name = "after a transaction"
		case end > 1100 && end < total-50 && !off.complete:
			name = "inside the last transaction"
		}
		if name != "" && !found[name] {
			found[name] = true
			cases = append(cases, restartCase{name, i})
		}
	}
	if len(cases) != 3 {
		var desc []string
		for i, end := range c.ends {
			desc = append(desc, fmt.Sprintf("%d:%v", end, decodeOffset(c.offs[i]).complete))
		}
		t.Fatalf("batch ends %v do not cover the cases: %v", desc, cases)
	}
	for _, rc := range cases {
		t.Run(rc.name, func(t *testing.T) {
			off := c.offs[rc.batch]
			want := c.events[c.ends[rc.batch]:]
			// Twice: the first run also commits the offset, so the second
			// restarts from a slot whose confirmed_flush_lsn is there.
			for round := 0; round < 2; round++ {
				task2 := startTask(t, cfg, &store{off: off})
				if round == 0 {
					task2.Commit(context.Background(), []connect.PartitionOffset{{Partition: map[string]any{"server": db}, Offset: off}})
				}
				c2 := &collector{t: t, task: task2}
				c2.until(30*time.Second, "the replay", func() bool { return len(c2.events) >= len(want) })
				if round == 0 {
					waitFor(t, 10*time.Second, "the slot to confirm the offset", func() bool { return confirmedFlush(t, db, "slot_"+db) == flushLSN(off) })
				}
				time.Sleep(200 * time.Millisecond)
				c2.poll()
				task2.Stop(context.Background())
				if len(c2.events) != len(want) {
					t.Fatalf("round %d: replayed %d events, want the %d after the stored offset", round, len(c2.events), len(want))
				}
				for j := range want {
					a, b := c2.events[j], want[j]
					if a.op != b.op || a.topic != b.topic || fmt.Sprint(a.key) != fmt.Sprint(b.key) || fmt.Sprint(a.after) != fmt.Sprint(b.after) || a.lsn != b.lsn {
						t.Fatalf("round %d: replayed event %d is %s %v %v, want %s %v %v", round, j, a.op, a.key, a.after, b.op, b.key, b.after)
					}
				}
			}
		})
	}
}

func waitSlotActive(t *testing.T, db, slot string) {
	t.Helper()
	c := connect_(t, db)
	waitFor(t, 30*time.Second, "the slot to stream", func() bool {
		var active bool
		err := c.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		return err == nil && active
	})
}

func confirmedFlush(t *testing.T, db, slot string) uint64 {
	t.Helper()
	c := connect_(t, db)
	var s string
	if err := c.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(l)
}

// The slot's confirmed_flush_lsn moves only when Commit says the worker
// stored an offset, and exactly to it.
func TestConfirmedFlushAdvancesOnlyOnCommit(t *testing.T) {
	db := newDB(t)
	exec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`)
	slot := "slot_" + db
	cfg := baseConfig(db, "snapshot.mode", "never", "status.update.interval.ms", "100")
	task := startTask(t, cfg, nil)
	waitSlotActive(t, db, slot)
	before := confirmedFlush(t, db, slot)
	exec(t, db, "INSERT INTO t SELECT generate_series(1, 100)")
	c := &collector{t: t, task: task}
	c.until(20*time.Second, "the inserts", func() bool { return len(c.events) >= 100 })
	// Status updates go out every 100ms: give them time to (wrongly) move it.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		c.poll()
		if got := confirmedFlush(t, db, slot); got != before {
			t.Fatalf("confirmed_flush_lsn moved from %s to %s without a Commit", pglogrepl.LSN(before), pglogrepl.LSN(got))
		}
	}
	mid := c.offs[0]
	task.Commit(context.Background(), []connect.PartitionOffset{{Partition: map[string]any{"server": db}, Offset: mid}})
	want := flushLSN(mid)
	waitFor(t, 10*time.Second, "confirmed_flush_lsn to reach the committed LSN", func() bool { return confirmedFlush(t, db, slot) == want })
	// An older offset does not move it back.
	task.Commit(context.Background(), []connect.PartitionOffset{{Partition: map[string]any{"server": db}, Offset: map[string]any{"tributary_offset": int64(1), "lsn": int64(before), "snapshot_completed": true, "tx_complete": true}}})
	time.Sleep(300 * time.Millisecond)
	if got := confirmedFlush(t, db, slot); got != want {
		t.Fatalf("confirmed_flush_lsn %s after committing an older offset, want %s", pglogrepl.LSN(got), pglogrepl.LSN(want))
	}
}

func sortedKeys(m map[rowKey]map[string]any) []rowKey {
	out := make([]rowKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
