package query

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

const tableDDL = `CREATE TABLE t (id serial PRIMARY KEY, name text, updated timestamptz NOT NULL DEFAULT clock_timestamp())`

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode       string
		config     []string
		first      string // ids after the first 3 inserts
		second     string // ids after 2 more inserts and an update of row 1
		offsetKeys string
	}{
		{"bulk", nil, "1,2,3", "1,2,3,4,5", ""},
		{"incrementing", []string{"incrementing.column.name", "id"}, "1,2,3", "4,5", "incrementing"},
		{"incrementing", nil, "1,2,3", "4,5", "incrementing"}, // the serial column is found
		{"timestamp", []string{"timestamp.column.name", "updated"}, "1,2,3", "4,5,1", "timestamp,timestamp_nanos"},
		{"timestamp+incrementing", []string{"timestamp.column.name", "updated", "incrementing.column.name", "id"}, "1,2,3", "4,5,1", "incrementing,timestamp,timestamp_nanos"},
		{"timestamp+incrementing", []string{"timestamp.column.name", "nothing,updated", "incrementing.column.name", "id"}, "1,2,3", "4,5,1", "incrementing,timestamp,timestamp_nanos"},
	} {
		t.Run(tc.mode+strings.Join(tc.config, ","), func(t *testing.T) {
			db := newDB(t)
			server.Exec(t, db, tableDDL, `ALTER TABLE t ADD COLUMN nothing timestamptz`, `INSERT INTO t (name) VALUES ('a'), ('b'), ('c')`)
			st := newStore()
			task := startOne(t, config(db, append(tc.config, "mode", tc.mode)...), st)
			recs := pollN(t, task, st, 3, 10*time.Second)
			if got := strings.Join(ids(recs), ","); got != tc.first {
				t.Fatalf("first poll: ids %s, want %s", got, tc.first)
			}
			r := recs[0]
			if r.Topic != "pg-t" || r.Key != nil || r.ValueSchema.Name != "t" || field(r, "name") != "a" {
				t.Fatalf("record %+v", r)
			}
			want := map[string]any{"protocol": "1", "table": db + ".public.t"}
			if pkey(r.SourcePartition) != pkey(want) {
				t.Fatalf("partition %v, want %v", r.SourcePartition, want)
			}
			var keys []string
			for k := range recs[2].SourceOffset {
				keys = append(keys, k)
			}
			if got := strings.Join(sorted(keys), ","); got != tc.offsetKeys {
				t.Fatalf("offset %v, want keys %s", recs[2].SourceOffset, tc.offsetKeys)
			}
			if tc.mode != "bulk" {
				pollQuiet(t, task, 300*time.Millisecond)
			}
			server.Exec(t, db, `INSERT INTO t (name) VALUES ('d'), ('e')`, `UPDATE t SET name = 'a2', updated = clock_timestamp() WHERE id = 1`)
			n := len(strings.Split(tc.second, ","))
			recs = pollN(t, task, st, n, 10*time.Second)
			got := strings.Join(ids(recs), ",")
			if tc.mode == "bulk" {
				got = sortedIDs(recs) // heap order changes with the update
			}
			if got != tc.second {
				t.Fatalf("second poll: ids %s, want %s", got, tc.second)
			}
			if tc.mode != "bulk" {
				pollQuiet(t, task, 300*time.Millisecond)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestConcurrentInserts polls while writers commit rows, one of them late:
// its rows carry the timestamp of its start (now()) but commit a second
// later, after younger rows were read. With timestamp.delay.interval.ms
// above that, every row arrives exactly once.
func TestConcurrentInserts(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		config []string
		late   bool
	}{
		{"timestamp+incrementing", []string{"timestamp.column.name", "updated", "incrementing.column.name", "id", "timestamp.delay.interval.ms", "2500"}, true},
		{"incrementing", []string{"incrementing.column.name", "id"}, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			db := newDB(t)
			server.Exec(t, db, `CREATE TABLE t (id bigserial PRIMARY KEY, name text, updated timestamptz NOT NULL DEFAULT now())`)
			st := newStore()
			task := startOne(t, config(db, append(tc.config, "mode", tc.mode, "batch.max.rows", "7")...), st)
			const writers, perWriter = 3, 60
			var wg sync.WaitGroup
			errs := make(chan error, writers+1)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					ctx := context.Background()
					c, err := server.Connect(ctx, db)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close(ctx)
					r := rand.New(rand.NewSource(int64(w)))
					for i := 0; i < perWriter; i++ {
						if tc.mode == "incrementing" && w > 0 {
							return // incrementing mode needs ids committed in order: one writer
						}
						if _, err := c.Exec(ctx, `INSERT INTO t (name) VALUES ($1)`, fmt.Sprintf("w%d-%d", w, i)); err != nil {
							errs <- err
							return
						}
						time.Sleep(time.Duration(r.Intn(8)) * time.Millisecond)
					}
				}(w)
			}
			if tc.late {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					c, err := server.Connect(ctx, db)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close(ctx)
					if _, err := c.Exec(ctx, `BEGIN; INSERT INTO t (name) VALUES ('late'); SELECT pg_sleep(1); COMMIT`); err != nil {
						errs <- err
					}
				}()
			}
			want := writers * perWriter
			if tc.mode == "incrementing" {
				want = perWriter
			}
			if tc.late {
				want++
			}
			recs := pollN(t, task, st, want, 30*time.Second)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, r := range recs {
				name := field(r, "name").(string)
				if seen[name] {
					t.Fatalf("row %s read twice", name)
				}
				seen[name] = true
			}
			if tc.late && !seen["late"] {
				t.Fatal("the late transaction's row was skipped")
			}
			pollQuiet(t, task, 300*time.Millisecond)
		})
	}
}

func TestRestartFromStoredOffsets(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, name text, updated timestamp NOT NULL)`,
		`INSERT INTO t VALUES (1, 'a', '2024-01-01 10:00:00.123456'), (2, 'b', '2024-01-01 10:00:00.123456'), (3, 'c', '2024-01-01 10:00:00.123457')`)
	cfg := config(db, "mode", "timestamp+incrementing", "timestamp.column.name", "updated", "incrementing.column.name", "id", "batch.max.rows", "2")
	st := newStore()
	task := startOne(t, cfg, st)
	recs := pollN(t, task, st, 2, 10*time.Second)
	if got := strings.Join(ids(recs), ","); got != "1,2" {
		t.Fatalf("ids %s", got)
	}
	task.Stop(context.Background())
	off := st.m[pkey(recs[1].SourcePartition)].Offset
	wantTS := time.Date(2024, 1, 1, 10, 0, 0, 123456000, time.UTC)
	if off["incrementing"] != int64(2) || off["timestamp"] != wantTS.UnixMilli() || off["timestamp_nanos"] != int64(123456000) {
		t.Fatalf("offset %v", off)
	}

	// A new task resumes after row 2: row 3 (same millisecond, a microsecond later) and a new row.
	server.Exec(t, db, `INSERT INTO t VALUES (4, 'd', '2024-01-01 10:00:00.123456')`, `INSERT INTO t VALUES (5, 'e', '2024-01-02 00:00:00')`)
	task2 := startOne(t, cfg, st)
	if got := strings.Join(ids(pollN(t, task2, st, 3, 10*time.Second)), ","); got != "4,3,5" {
		t.Fatalf("after restart: ids %s, want 4,3,5", got)
	}
	pollQuiet(t, task2, 300*time.Millisecond)

	// Confluent's older partition {"table": name} is honoured.
	legacy := newStore()
	legacy.put(map[string]any{"table": "t"}, map[string]any{"incrementing": 3})
	task3 := startOne(t, config(db, "mode", "incrementing", "incrementing.column.name", "id"), legacy)
	if got := strings.Join(ids(pollN(t, task3, legacy, 2, 10*time.Second)), ","); got != "4,5" {
		t.Fatalf("from a legacy offset: ids %s, want 4,5", got)
	}
}

func TestCustomQuery(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, amount numeric(10,2))`,
		`CREATE TABLE customers (id int PRIMARY KEY, name text)`,
		`INSERT INTO customers VALUES (1, 'ann'), (2, 'bob')`,
		`INSERT INTO orders VALUES (10, 1, 9.99), (11, 2, 100), (12, 1, 0.5)`)
	st := newStore()
	cfg := config(db, "mode", "incrementing", "incrementing.column.name", "id", "topic.prefix", "orders-enriched",
		"query", "SELECT o.id, c.name AS customer, o.amount FROM orders o JOIN customers c ON c.id = o.customer WHERE o.amount > 0.1;")
	task := startOne(t, cfg, st)
	recs := pollN(t, task, st, 3, 10*time.Second)
	r := recs[1]
	if r.Topic != "orders-enriched" || pkey(r.SourcePartition) != `{"query":"query"}` || r.ValueSchema.Name != "" {
		t.Fatalf("record %+v", r)
	}
	if field(r, "customer") != "bob" || field(r, "amount").(connect.Decimal).String() != "100.00" {
		t.Fatalf("row %v", r.Value)
	}
	server.Exec(t, db, `INSERT INTO orders VALUES (13, 2, 1)`)
	if got := ids(pollN(t, task, st, 1, 10*time.Second)); got[0] != "13" {
		t.Fatalf("ids %v", got)
	}
}

func TestTasksSpreadTables(t *testing.T) {
	db := newDB(t)
	for i := 1; i <= 5; i++ {
		server.Exec(t, db, fmt.Sprintf(`CREATE TABLE t%d (id serial PRIMARY KEY, v text)`, i), fmt.Sprintf(`INSERT INTO t%d (v) VALUES ('x')`, i))
	}
	server.Exec(t, db, `CREATE SCHEMA other`, `CREATE TABLE other.skipme (id serial PRIMARY KEY)`, `CREATE VIEW v1 AS SELECT 1 AS id`)
	cfg := config(db, "mode", "incrementing", "table.exclude.list", `other\..*`, "table.poll.interval.ms", "100")
	c, tasks := startAll(t, cfg, newStore(), 2)
	if len(tasks) != 2 {
		t.Fatalf("%d tasks", len(tasks))
	}
	tcs, _ := c.TaskConfigs(ctxT(t), 2)
	if tcs[0]["tables"] != `[["public","t1"],["public","t3"],["public","t5"]]` || tcs[1]["tables"] != `[["public","t2"],["public","t4"]]` {
		t.Fatalf("task tables %s / %s", tcs[0]["tables"], tcs[1]["tables"])
	}
	for i, want := range []string{"pg-t1,pg-t3,pg-t5", "pg-t2,pg-t4"} {
		var topics []string
		for _, r := range pollN(t, tasks[i], nil, strings.Count(want, ",")+1, 10*time.Second) {
			topics = append(topics, r.Topic)
		}
		if got := strings.Join(sorted(topics), ","); got != want {
			t.Fatalf("task %d read %s, want %s", i, got, want)
		}
	}
	if tcs, _ := c.TaskConfigs(ctxT(t), 10); len(tcs) != 5 {
		t.Fatalf("tasks.max=10 gave %d tasks for 5 tables", len(tcs))
	}
	// A new table makes the connector ask for new task configs.
	cc := &ccFake{reconf: make(chan struct{}, 1)}
	c2 := NewSource().(*Source)
	if err := c2.Start(ctxT(t), cc, cfg); err != nil {
		t.Fatal(err)
	}
	defer c2.Stop(context.Background())
	server.Exec(t, db, `CREATE TABLE t6 (id serial PRIMARY KEY)`)
	select {
	case <-cc.reconf:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconfiguration request after a table was added")
	}
	if tcs, _ := c2.TaskConfigs(ctxT(t), 1); !strings.Contains(tcs[0]["tables"], "t6") {
		t.Fatalf("t6 missing from %s", tcs[0]["tables"])
	}
	c2.Stop(context.Background())
	c2.Stop(context.Background())

	// Whitelists and blacklists.
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"table.whitelist", "t2,public.t4"}, `[["public","t2"],["public","t4"]]`},
		{[]string{"table.blacklist", "t1,t2,t3,t4,t6,other.skipme"}, `[["public","t5"]]`},
		{[]string{"table.include.list", `public\.t[45]`}, `[["public","t4"],["public","t5"]]`},
		{[]string{"table.whitelist", "v1", "table.types", "VIEW"}, `[["public","v1"]]`},
	} {
		c := NewSource().(*Source)
		if err := c.Start(ctxT(t), nil, config(db, append(tc.kv, "mode", "bulk")...)); err != nil {
			t.Fatal(err)
		}
		tcs, _ := c.TaskConfigs(ctxT(t), 1)
		if tcs[0]["tables"] != tc.want {
			t.Fatalf("%v: tables %s, want %s", tc.kv, tcs[0]["tables"], tc.want)
		}
		c.Stop(context.Background())
	}
}

func TestTypes(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TYPE mood AS ENUM ('happy', 'sad')`,
		`CREATE TABLE t (id int NOT NULL, i2 smallint, i8 bigint, f4 real, f8 double precision, b boolean, s varchar(10), c char(3),
			by bytea, n52 numeric(5,2), n10 numeric(10,0), n30 numeric(30,4), nu numeric, d date, tm time, ts timestamp, tz timestamptz,
			u uuid, j json, jb jsonb, iv interval, arr int[], m mood, ttz timetz)`,
		`INSERT INTO t VALUES (1, -2, 9007199254740993, 1.5, 2.25, true, 'hi', 'ab', '\x00ff', 123.45, 1234567890, 12345678901234567890.1234,
			3.14159, '2024-02-29', '13:14:15.678', '2024-02-29 13:14:15.678', '2024-02-29 13:14:15.678+02',
			'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": 2}', '1 day 02:00:00', '{1,2}', 'sad', '10:00:00+01')`,
		`INSERT INTO t (id) VALUES (2)`)
	type want struct {
		schema string
		value  string
	}
	for _, tc := range []struct {
		mapping string
		tz      string
		want    map[string]want
	}{
		{"none", "UTC", map[string]want{
			"id": {"int32", "1"}, "i2": {"int16?", "-2"}, "i8": {"int64?", "9007199254740993"}, "f4": {"float?", "1.5"}, "f8": {"double?", "2.25"},
			"b": {"boolean?", "true"}, "s": {"string?", "hi"}, "c": {"string?", "ab "}, "by": {"bytes?", "[0 255]"},
			"n52": {"bytes(org.apache.kafka.connect.data.Decimal)?", "123.45"}, "n10": {"bytes(org.apache.kafka.connect.data.Decimal)?", "1234567890"},
			"n30": {"bytes(org.apache.kafka.connect.data.Decimal)?", "12345678901234567890.1234"}, "nu": {"string?", "3.14159"},
			"d": {"int32(org.apache.kafka.connect.data.Date)?", "2024-02-29T00:00:00Z"}, "tm": {"int32(org.apache.kafka.connect.data.Time)?", "1970-01-01T13:14:15.678Z"},
			"ts": {"int64(org.apache.kafka.connect.data.Timestamp)?", "2024-02-29T13:14:15.678Z"}, "tz": {"int64(org.apache.kafka.connect.data.Timestamp)?", "2024-02-29T11:14:15.678Z"},
			"u": {"string?", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, "j": {"string?", `{"a": 1}`}, "jb": {"string?", `{"b": 2}`},
			"iv": {"string?", "1 day 02:00:00"}, "arr": {"string?", "{1,2}"}, "m": {"string?", "sad"}, "ttz": {"string?", "10:00:00+01"},
		}},
		{"best_fit", "Asia/Tokyo", map[string]want{
			"n52": {"double?", "123.45"}, "n10": {"int64?", "1234567890"}, "n30": {"bytes(org.apache.kafka.connect.data.Decimal)?", "12345678901234567890.1234"},
			"nu": {"double?", "3.14159"}, "ts": {"int64(org.apache.kafka.connect.data.Timestamp)?", "2024-02-29T04:14:15.678Z"},
			"tz": {"int64(org.apache.kafka.connect.data.Timestamp)?", "2024-02-29T11:14:15.678Z"},
		}},
	} {
		t.Run(tc.mapping, func(t *testing.T) {
			task := startOne(t, config(db, "mode", "bulk", "numeric.mapping", tc.mapping, "db.timezone", tc.tz), nil)
			recs := pollN(t, task, nil, 2, 10*time.Second)
			st := recs[0].Value.(*connect.Struct)
			for name, w := range tc.want {
				f, ok := st.Schema().Field(name)
				if !ok {
					t.Fatalf("no field %s", name)
				}
				v := st.Get(name)
				var s string
				switch x := v.(type) {
				case time.Time:
					s = x.UTC().Format("2006-01-02T15:04:05.999Z07:00")
				case connect.Decimal:
					s = x.String()
				default:
					s = fmt.Sprint(x)
				}
				if f.Schema.String() != w.schema || s != w.value {
					t.Errorf("%s: %s %q, want %s %q", name, f.Schema, s, w.schema, w.value)
				}
				if name != "id" && recs[1].Value.(*connect.Struct).Get(name) != nil {
					t.Errorf("%s: NULL read as %v", name, recs[1].Value.(*connect.Struct).Get(name))
				}
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TABLE t (id int PRIMARY KEY, maybe int, name text, at timestamptz NOT NULL DEFAULT now())`, `CREATE TABLE nokey (v text)`)
	for _, tc := range []struct {
		name    string
		kv      []string
		wantKey string
		want    string
	}{
		{"ok", []string{"mode", "timestamp+incrementing", "table.whitelist", "t", "incrementing.column.name", "id", "timestamp.column.name", "at"}, "", ""},
		{"missing table", []string{"mode", "bulk", "table.whitelist", "t,nope"}, "table.whitelist", `"nope" does not exist`},
		{"missing column", []string{"mode", "incrementing", "table.whitelist", "t", "incrementing.column.name", "idd"}, "incrementing.column.name", `column "idd" does not exist in table public.t (its columns: id, maybe, name, at)`},
		{"timestamp column of the wrong type", []string{"mode", "timestamp", "table.whitelist", "t", "timestamp.column.name", "name"}, "timestamp.column.name", `"name" of table public.t is text`},
		{"incrementing column of the wrong type", []string{"mode", "incrementing", "table.whitelist", "t", "incrementing.column.name", "at"}, "incrementing.column.name", "needs an integer column"},
		{"nullable incrementing column", []string{"mode", "incrementing", "table.whitelist", "t", "incrementing.column.name", "maybe"}, "incrementing.column.name", "validate.non.null=false"},
		{"no serial column to detect", []string{"mode", "incrementing", "table.whitelist", "nokey"}, "incrementing.column.name", "set incrementing.column.name"},
		{"timestamp mode without column", []string{"mode", "timestamp"}, "timestamp.column.name", "needs timestamp.column.name"},
		{"bad query", []string{"mode", "bulk", "query", "SELEC 1"}, "query", "does not run"},
		{"query and whitelist", []string{"mode", "bulk", "query", "SELECT 1", "table.whitelist", "t"}, "table.whitelist", "cannot be used with query"},
		{"whitelist and blacklist", []string{"mode", "bulk", "table.whitelist", "t", "table.blacklist", "nokey"}, "table.blacklist", "cannot both"},
		{"a MySQL URL", []string{"mode", "bulk", "connection.url", "jdbc:mysql://h/db?user=u&password=secret"}, "connection.url", "only PostgreSQL is supported"},
		{"unsupported catalog.pattern", []string{"mode", "bulk", "catalog.pattern", "x"}, "catalog.pattern", "not supported"},
		{"unsupported timestamp.granularity", []string{"mode", "bulk", "timestamp.granularity", "nanos_long"}, "timestamp.granularity", "not supported"},
		{"unsupported dialect", []string{"mode", "bulk", "dialect.name", "OracleDatabaseDialect"}, "dialect.name", "not supported"},
		{"no mode", nil, "mode", "Missing required configuration"},
		{"bad mode", []string{"mode", "everything"}, "mode", "String must be one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewSource()
			cfg := config(db, tc.kv...)
			_, errs := c.ConfigDef().Parse(cfg)
			if len(errs) == 0 {
				var err error
				if errs, err = c.Validate(ctxT(t), cfg); err != nil {
					t.Fatal(err)
				}
			}
			if tc.wantKey == "" {
				if len(errs) > 0 {
					t.Fatalf("errors %v", errs)
				}
				return
			}
			msgs := strings.Join(errs[tc.wantKey], " | ")
			if !strings.Contains(msgs, tc.want) || strings.Contains(msgs, "secret") {
				t.Fatalf("errors of %s: %q, want %q (all %v)", tc.wantKey, msgs, tc.want, errs)
			}
		})
	}

	// A task whose table lost a column it needs fails at Start, saying what to change.
	cfg := config(db, "mode", "incrementing", "incrementing.column.name", "maybe", "validate.non.null", "false")
	b, _ := json.Marshal([][2]string{{"public", "t"}})
	cfg["tables"] = string(b)
	server.Exec(t, db, `ALTER TABLE t DROP COLUMN maybe`)
	task := NewSource().(*Source).NewTask()
	err := task.Start(ctxT(t), newStore(), cfg)
	task.Stop(context.Background())
	mustContain(t, err, `column "maybe" does not exist`, "incrementing.column.name")
}

func TestStopWhilePolling(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, tableDDL, `INSERT INTO t (name) SELECT 'x' FROM generate_series(1, 5)`)
	task := startOne(t, config(db, "mode", "bulk", "poll.interval.ms", "600000"), nil)
	task.maxWait = time.Minute // Poll waits for the next bulk copy, ten minutes away
	pollN(t, task, nil, 5, 10*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := task.Poll(context.Background())
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := task.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Poll did not return after Stop")
	}
	if err := task.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReconnectsAfterTransientFailure(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, tableDDL, `INSERT INTO t (name) VALUES ('a')`)
	st := newStore()
	task := startOne(t, config(db, "mode", "incrementing", "incrementing.column.name", "id"), st)
	pollN(t, task, st, 1, 10*time.Second)
	server.Exec(t, db, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
		`INSERT INTO t (name) VALUES ('b'), ('c')`)
	if got := strings.Join(ids(pollN(t, task, st, 2, 15*time.Second)), ","); got != "2,3" {
		t.Fatalf("ids %s", got)
	}
}

// TestDroppedTable: a dropped table leaves the task's other tables going
// (the table monitor reconfigures the tasks); without the monitor the
// task fails saying what happened.
func TestDroppedTable(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TABLE a (id serial PRIMARY KEY)`, `CREATE TABLE b (id serial PRIMARY KEY)`,
		`INSERT INTO a DEFAULT VALUES`, `INSERT INTO b DEFAULT VALUES`)
	task := startOne(t, config(db, "mode", "incrementing", "table.poll.interval.ms", "60000"), newStore())
	pollN(t, task, nil, 2, 10*time.Second)
	server.Exec(t, db, `DROP TABLE a`, `INSERT INTO b DEFAULT VALUES`)
	if recs := pollN(t, task, nil, 1, 10*time.Second); recs[0].Topic != "pg-b" {
		t.Fatalf("record of %s", recs[0].Topic)
	}

	server.Exec(t, db, `CREATE TABLE a (id serial PRIMARY KEY)`)
	task2 := startOne(t, config(db, "mode", "incrementing"), newStore())
	server.Exec(t, db, `DROP TABLE a`)
	var err error
	for deadline := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(deadline); {
		_, err = task2.Poll(ctxT(t))
	}
	mustContain(t, err, "public.a", "does not exist")
}
