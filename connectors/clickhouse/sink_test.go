package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

var (
	keySchema = connect.StructOf("k", connect.F("id", connect.Int32Schema))
	rowSchema = connect.StructOf("row",
		connect.F("id", connect.Int32Schema),
		connect.F("name", connect.OptionalStringSchema),
		connect.F("qty", connect.OptionalInt64Schema))
	optRowSchema = rowSchema.AsOptional() // Debezium's before/after schema
	sourceSchema = connect.StructOf("source",
		connect.F("db", connect.StringSchema),
		connect.F("lsn", connect.OptionalInt64Schema))
	envSchema = connect.StructOf("envelope",
		connect.F("before", optRowSchema),
		connect.F("after", optRowSchema),
		connect.F("source", sourceSchema),
		connect.F("op", connect.StringSchema),
		connect.F("ts_ms", connect.OptionalInt64Schema))
)

func key(id int32) *connect.Struct { return connect.NewStruct(keySchema).MustPut("id", id) }

func row(id int32, name string, qty int64) *connect.Struct {
	return connect.NewStruct(rowSchema).MustPut("id", id).MustPut("name", name).MustPut("qty", qty)
}

// crow is a row of a change event.
func crow(id int32, name string, qty int64) *connect.Struct {
	return connect.NewStruct(optRowSchema).MustPut("id", id).MustPut("name", name).MustPut("qty", qty)
}

// cdc builds a Debezium change event record for table t.
func cdc(offset int64, op string, before, after *connect.Struct, lsn int64) connect.SinkRecord {
	env := connect.NewStruct(envSchema).MustPut("op", op).
		MustPut("source", connect.NewStruct(sourceSchema).MustPut("db", "shop").MustPut("lsn", lsn))
	if before != nil {
		env.MustPut("before", before)
	}
	if after != nil {
		env.MustPut("after", after)
	}
	var id int32
	if after != nil {
		id = after.Get("id").(int32)
	} else {
		id = before.Get("id").(int32)
	}
	return rec("pg.public.items", offset, keySchema, key(id), envSchema, env)
}

func TestAppendPlain(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "topic2TableMap", "mapped=m1"))
	put(t, task,
		rec("a.b.c", 0, keySchema, key(1), rowSchema, row(1, "one", 10)),
		rec("a.b.c", 1, keySchema, key(2), rowSchema, row(2, "two", 20)),
		rec("a.b.c", 2, keySchema, key(1), rowSchema, row(1, "one again", 11)),
		rec("mapped", 3, nil, nil, rowSchema, row(7, "seven", 70)),
		rec("a.b.c", 4, keySchema, key(9), nil, nil), // a tombstone: skipped
	)
	wantRows(t, "SELECT id, name, qty FROM "+db+".a_b_c ORDER BY id, qty", "1\tone\t10\n1\tone again\t11\n2\ttwo\t20")
	wantRows(t, "SELECT id, name, qty FROM "+db+".m1", "7\tseven\t70")
	ddl := query(t, "SHOW CREATE TABLE "+db+".a_b_c")
	if !strings.Contains(ddl, "MergeTree") || strings.Contains(ddl, "Replacing") || !strings.Contains(ddl, "ORDER BY id") {
		t.Fatalf("DDL: %s", ddl)
	}
	if ddl := query(t, "SHOW CREATE TABLE "+db+".m1"); !strings.Contains(ddl, "ORDER BY tuple()") {
		t.Fatalf("keyless DDL: %s", ddl)
	}
}

func cdcEvents() []connect.SinkRecord {
	return []connect.SinkRecord{
		cdc(0, "r", nil, crow(1, "apple", 5), 100),
		cdc(1, "c", nil, crow(2, "pear", 7), 200),
		cdc(2, "c", nil, crow(3, "plum", 9), 300),
		cdc(3, "u", crow(2, "pear", 7), crow(2, "pear", 8), 400),
		cdc(4, "d", crow(3, "plum", 9), nil, 500),
		rec("pg.public.items", 5, keySchema, key(3), envSchema, nil), // Debezium's tombstone after a delete
		cdc(6, "u", crow(1, "apple", 5), crow(1, "green apple", 6), 600),
		cdc(7, "c", nil, crow(4, "fig", 1), 700),
		cdc(8, "d", crow(4, "fig", 1), nil, 800),
		cdc(9, "c", nil, crow(4, "fig", 2), 900), // re-inserted after its delete
	}
}

func TestUpsertCDC(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "insert.mode", "upsert"))
	events := cdcEvents()
	// Split over several Put/Flush rounds, as the worker would.
	put(t, task, events[:3]...)
	put(t, task, events[3:7]...)
	put(t, task, events[7:]...)
	const current = "1\tgreen apple\t6\n2\tpear\t8\n4\tfig\t2"
	sql := "SELECT id, name, qty FROM " + db + ".pg_public_items FINAL WHERE NOT _is_deleted ORDER BY id"
	wantRows(t, sql, current)
	wantRows(t, "SELECT id, _version, _is_deleted FROM "+db+".pg_public_items FINAL WHERE id = 3", "3\t500\t1")
	ddl := query(t, "SHOW CREATE TABLE "+db+".pg_public_items")
	if !strings.Contains(ddl, "ReplacingMergeTree(_version)") || !strings.Contains(ddl, "ORDER BY id") ||
		!strings.Contains(ddl, "_version UInt64") || !strings.Contains(ddl, "_is_deleted UInt8") {
		t.Fatalf("DDL: %s", ddl)
	}

	// A replay (after a crash before the offsets were committed) changes
	// nothing, in one batch or in others, with a fresh task.
	task2 := startTask(t, baseConfig(db, "insert.mode", "upsert"))
	put(t, task2, events...)
	put(t, task2, events[2:5]...)
	wantRows(t, sql, current)
	server.Exec(t, "OPTIMIZE TABLE "+db+".pg_public_items FINAL")
	wantRows(t, sql, current)
	wantRows(t, "SELECT id, name, qty FROM "+db+".pg_public_items WHERE NOT _is_deleted ORDER BY id", current)
}

func TestUpsertWithoutLSNUsesOffsets(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "insert.mode", "upsert"))
	put(t, task,
		rec("t", 10, keySchema, key(1), rowSchema, row(1, "a", 1)),
		rec("t", 11, keySchema, key(1), rowSchema, row(1, "b", 2)),
		rec("t", 12, keySchema, key(2), rowSchema, row(2, "c", 3)))
	put(t, task, rec("t", 10, keySchema, key(1), rowSchema, row(1, "a", 1))) // an old record again: loses to offset 11
	wantRows(t, "SELECT id, name, _version FROM "+db+".t FINAL WHERE NOT _is_deleted ORDER BY id", "1\tb\t11\n2\tc\t12")
}

func TestInsertModeCDCKeepsHistory(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db))
	put(t, task, cdcEvents()...)
	wantRows(t, "SELECT count(), sum(_is_deleted) FROM "+db+".pg_public_items", "9\t2")
	// The latest version per key is the current state.
	wantRows(t, "SELECT id, argMax(name, _version), argMax(qty, _version) FROM "+db+".pg_public_items GROUP BY id HAVING argMax(_is_deleted, _version) = 0 ORDER BY id",
		"1\tgreen apple\t6\n2\tpear\t8\n4\tfig\t2")
	if ddl := query(t, "SHOW CREATE TABLE "+db+".pg_public_items"); strings.Contains(ddl, "Replacing") {
		t.Fatalf("insert mode made a ReplacingMergeTree: %s", ddl)
	}
}

func TestAutoEvolve(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "insert.mode", "upsert"))
	put(t, task, rec("t", 0, keySchema, key(1), rowSchema, row(1, "a", 1)))
	v2 := connect.StructOf("row",
		connect.F("id", connect.Int32Schema),
		connect.F("name", connect.OptionalStringSchema),
		connect.F("qty", connect.OptionalInt64Schema),
		connect.F("price", connect.OptionalFloat64Schema),
		connect.F("tags", connect.ArrayOf(connect.StringSchema).AsOptional()))
	r2 := connect.NewStruct(v2).MustPut("id", int32(2)).MustPut("name", "b").MustPut("price", 2.5).MustPut("tags", []any{"x", "y"})
	// Both shapes in one Put: the rows of each go in their own batch.
	put(t, task, rec("t", 1, keySchema, key(3), rowSchema, row(3, "c", 3)), rec("t", 2, keySchema, key(2), v2, r2))
	wantRows(t, "SELECT name, type FROM system.columns WHERE database = '"+db+"' AND table = 't' AND name IN ('price', 'tags') ORDER BY name",
		"price\tNullable(Float64)\ntags\tArray(String)")
	wantRows(t, "SELECT id, name, qty, price, tags FROM "+db+".t FINAL ORDER BY id",
		"1\ta\t1\t\\N\t[]\n2\tb\t\\N\t2.5\t['x','y']\n3\tc\t3\t\\N\t[]")

	// With auto.evolve=false a new field is an error naming the column.
	task2 := startTask(t, baseConfig(db, "insert.mode", "upsert", "auto.evolve", "false"))
	v3 := connect.StructOf("row", connect.F("id", connect.Int32Schema), connect.F("extra", connect.OptionalStringSchema))
	err := putErr(t, task2, rec("t", 3, keySchema, key(4), v3, connect.NewStruct(v3).MustPut("id", int32(4))))
	wantErr(t, err, `no column "extra"`, "auto.evolve=true")
}

func TestConfig(t *testing.T) {
	s, errs := parse(map[string]string{"hostname": "h", "topic2TableMap": "a.b=x, c = y", "table.name.format": "kafka_${topic}"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for topic, want := range map[string]string{"a.b": "x", "c": "y", "d.e.f": "kafka_d_e_f"} {
		if got := s.tableName(topic); got != want {
			t.Errorf("tableName(%q) = %q, want %q", topic, got, want)
		}
	}
	if s.addr != "h:9000" || s.database != "default" || s.username != "default" || s.batchSize != 10000 || !s.autoCreate || s.upsert {
		t.Errorf("defaults: %+v", s)
	}
	for _, bad := range []map[string]string{
		{},
		{"hostname": "h", "topic2TableMap": "a"},
		{"hostname": "h", "insert.mode": "merge"},
		{"hostname": "h", "ssl": "true"},
		{"hostname": "h", "exactlyOnce": "true"},
		{"hostname": "h", "table.name.format": "${foo}"},
	} {
		if _, errs := parse(bad); len(errs) == 0 {
			t.Errorf("%v: no error", bad)
		}
	}
	if d := NewSink().ConfigDef(); d == nil {
		t.Fatal("no ConfigDef")
	} else if k, ok := d.Key("password"); !ok || k.Type != connect.TypePassword {
		t.Errorf("password key: %+v", k)
	}
}

func TestBadInputs(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()

	// Unknown database: Start fails saying what to do; Validate names the key.
	task := NewSink().(*Sink).NewTask()
	err := task.Start(ctx, nil, baseConfig("nosuchdb"))
	wantErr(t, err, `database "nosuchdb" does not exist`, "CREATE DATABASE")
	errs, verr := NewSink().Validate(ctx, baseConfig("nosuchdb"))
	if verr != nil || len(errs["database"]) == 0 {
		t.Fatalf("Validate: %v %v", errs, verr)
	}

	// Wrong password.
	err = NewSink().(*Sink).NewTask().Start(ctx, nil, baseConfig(db, "username", "tributary", "password", "wrong"))
	wantErr(t, err, `refused user "tributary"`, "password")
	if errs, _ := NewSink().Validate(ctx, baseConfig(db, "username", "tributary", "password", "wrong")); len(errs["password"]) == 0 {
		t.Fatalf("Validate with a wrong password: %v", errs)
	}
	if errs, _ := NewSink().Validate(ctx, baseConfig(db, "username", "tributary", "password", "secret")); len(errs) > 0 {
		t.Fatalf("Validate with the right password: %v", errs)
	}

	// A value that does not fit its column.
	server.Exec(t, "CREATE TABLE "+db+".typed (id Int32, name Int32, qty Int8) ENGINE = MergeTree ORDER BY id")
	ok := startTask(t, baseConfig(db))
	err = putErr(t, ok, rec("typed", 0, keySchema, key(1), rowSchema, row(1, "abc", 1)))
	wantErr(t, err, "typed-0@0", `field "name" into column "name"`, "string value cannot be written into a Int32 column", "Cast transform")
	err = putErr(t, startTask(t, baseConfig(db)), rec("typed", 0, keySchema, key(1), rowSchema,
		connect.NewStruct(rowSchema).MustPut("id", int32(1)).MustPut("qty", int64(300))))
	wantErr(t, err, `field "qty"`, "300 does not fit a Int8 column")

	// A missing table without auto.create; upsert without keys.
	err = putErr(t, startTask(t, baseConfig(db, "auto.create", "false")), rec("absent", 0, nil, nil, rowSchema, row(1, "a", 1)))
	wantErr(t, err, "does not exist", "auto.create=true")
	err = putErr(t, startTask(t, baseConfig(db, "insert.mode", "upsert")), rec("nokey", 0, nil, nil, rowSchema, row(1, "a", 1)))
	wantErr(t, err, "insert.mode=upsert needs struct record keys")

	// Upsert into a table that lacks the meta columns.
	err = putErr(t, startTask(t, baseConfig(db, "insert.mode", "upsert")), rec("typed", 0, keySchema, key(1), rowSchema,
		connect.NewStruct(rowSchema).MustPut("id", int32(1))))
	wantErr(t, err, "lacks the _version UInt64 and _is_deleted UInt8 columns")

	// The server going away: transient, retried, then reported.
	if got := fmt.Sprint(transient(fmt.Errorf("x: %w", ErrPermanent))); got != "false" {
		t.Fatal("ErrPermanent is transient")
	}
}

// errantReporter stands in for the worker's errant record reporter with
// errors.tolerance=all (connect.ErrantRecordReporter).
type errantReporter struct{ reported []string }

func (e *errantReporter) Assignment() []connect.TopicPartition { return nil }
func (e *errantReporter) Pause(...connect.TopicPartition)      {}
func (e *errantReporter) Resume(...connect.TopicPartition)     {}
func (e *errantReporter) Rewind(connect.TopicPartition, int64) {}
func (e *errantReporter) RequestCommit()                       {}
func (e *errantReporter) Report(rec *connect.SinkRecord, cause error) error {
	e.reported = append(e.reported, fmt.Sprintf("%d: %v", rec.KafkaOffset, cause))
	return nil
}

// A record whose value does not fit its column is reported as errant (the
// worker sends it to the dead letter queue) and the others are written.
func TestErrantRecordsReported(t *testing.T) {
	db := server.NewDatabase(t, "errant")
	server.Exec(t, "CREATE TABLE "+db+".typed (id Int32, name Int32, qty Int8) ENGINE = MergeTree ORDER BY id")
	task := NewSink().(*Sink).NewTask().(*Task)
	rep := &errantReporter{}
	if err := task.Start(ctxT(t), rep, baseConfig(db)); err != nil {
		t.Fatal(err)
	}
	defer task.Stop(context.Background())
	good := func(id int32, off int64) connect.SinkRecord {
		r := rec("typed", off, keySchema, key(id), rowSchema, connect.NewStruct(rowSchema).MustPut("id", id).MustPut("qty", int64(1)))
		return r
	}
	bad := rec("typed", 1, keySchema, key(2), rowSchema, row(2, "abc", 1))
	if err := task.Put(ctxT(t), []connect.SinkRecord{good(1, 0), bad, good(3, 2)}); err != nil {
		t.Fatal(err)
	}
	if err := task.Flush(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	if len(rep.reported) != 1 || !strings.HasPrefix(rep.reported[0], "1: ") || !strings.Contains(rep.reported[0], "Int32 column") {
		t.Fatalf("reported %v, want the record at offset 1", rep.reported)
	}
	if got := server.Query(t, "SELECT id FROM "+db+".typed ORDER BY id"); strings.Join(got, ",") != "1,3" {
		t.Fatalf("rows %v, want 1,3", got)
	}
}

// The value slices of sent segments are reused for later ones: rows of
// later batches come out whole, with nothing left of earlier rows.
func TestSegmentValuesReused(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "batch.size", "4"))
	var want []string
	off := int64(0)
	for b := range 5 {
		var recs []connect.SinkRecord
		for i := range 4 - b%2 { // full batches (sent by Put) and partial ones (by Flush)
			id := int32(b*10 + i)
			name := fmt.Sprintf("row %d", id)
			v := row(id, name, int64(id)*3)
			if i == 1 {
				v = connect.NewStruct(rowSchema).MustPut("id", id) // null name and qty
				name = `\N`
				want = append(want, fmt.Sprintf("%d\t%s\t%s", id, name, `\N`))
			} else {
				want = append(want, fmt.Sprintf("%d\t%s\t%d", id, name, int64(id)*3))
			}
			recs = append(recs, rec("t", off, keySchema, key(id), rowSchema, v))
			off++
		}
		put(t, task, recs...)
	}
	task.mu.Lock()
	spare := len(task.spareVals)
	task.mu.Unlock()
	if spare == 0 {
		t.Error("no value slice was kept for reuse")
	}
	wantRows(t, "SELECT id, name, qty FROM "+db+".t ORDER BY id", strings.Join(want, "\n"))
}
