package sink

import (
	"context"
	"strings"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

func TestWriteModes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config []string
		setup  []string
		batch  [][]connect.SinkRecord
		want   []string
	}{
		{
			name:   "insert auto.create",
			config: []string{"auto.create", "true"},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1.5), row(2, "b", 2)}, {row(3, "c\t\\x\n", 3)}},
			want:   []string{"1|a|1.5", "2|b|2", "3|c\t\\x\n|3"},
		},
		{
			name:   "insert record_key creates a primary key",
			config: []string{"auto.create", "true", "pk.mode", "record_key"},
			batch:  [][]connect.SinkRecord{{row(2, "b", 2), row(1, "a", 1)}},
			want:   []string{"1|a|1", "2|b|2"},
		},
		{
			name:   "upsert overwrites and the last record of a key wins",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "insert.mode", "upsert"},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1), row(2, "b", 2), row(1, "a2", 10)}, {row(2, "b2", 20), row(3, "c", 3)}},
			want:   []string{"1|a2|10", "2|b2|20", "3|c|3"},
		},
		{
			name:   "update changes existing rows only",
			config: []string{"pk.mode", "record_value", "pk.fields", "id", "insert.mode", "update"},
			setup:  []string{`CREATE TABLE t (id bigint PRIMARY KEY, name text, score double precision)`, `INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2)`},
			batch:  [][]connect.SinkRecord{{row(1, "a1", 11), row(3, "c", 3), row(1, "a2", 12)}},
			want:   []string{"1|a2|12", "2|b|2"},
		},
		{
			name:   "tombstones delete by key",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "insert.mode", "upsert", "delete.enabled", "true"},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1), row(2, "b", 2), row(3, "c", 3)}, {tombstone(2), tombstone(2), tombstone(9)}},
			want:   []string{"1|a|1", "3|c|3"},
		},
		{
			name:   "tombstones are skipped without delete.enabled",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "insert.mode", "upsert"},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1), tombstone(1)}},
			want:   []string{"1|a|1"},
		},
		{
			name:   "order per key in one batch: upsert, delete, upsert",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "insert.mode", "upsert", "delete.enabled", "true"},
			batch: [][]connect.SinkRecord{{row(1, "a", 1), tombstone(1), row(2, "b", 2), tombstone(2), row(2, "b2", 22),
				row(3, "c", 3), row(4, "d", 4), tombstone(4)}},
			want: []string{"2|b2|22", "3|c|3"},
		},
		{
			name:   "insert then delete then insert, in insert mode",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "delete.enabled", "true"},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1), tombstone(1), row(1, "a2", 2)}},
			want:   []string{"1|a2|2"},
		},
		{
			name:   "update mode: a deleted row stays deleted",
			config: []string{"pk.mode", "record_key", "insert.mode", "update", "delete.enabled", "true"},
			setup:  []string{`CREATE TABLE t (id bigint PRIMARY KEY, name text, score double precision)`, `INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2)`},
			batch:  [][]connect.SinkRecord{{row(1, "a1", 11), tombstone(1), row(1, "a2", 12), row(2, "b2", 22)}},
			want:   []string{"2|b2|22"},
		},
		{
			name:   "fields.whitelist",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "fields.whitelist", "name"},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1)}},
			want:   []string{"1|a"},
		},
		{
			name:   "pk.mode kafka",
			config: []string{"auto.create", "true", "pk.mode", "kafka", "insert.mode", "upsert", "pk.fields", "tp,part,off"},
			batch:  [][]connect.SinkRecord{{withOffset(row(1, "a", 1), 7), withOffset(row(1, "b", 2), 8)}, {withOffset(row(1, "c", 3), 7)}},
			want:   []string{"t|0|7|1|c|3", "t|0|8|1|b|2"},
		},
		{
			name:   "pk.mode record_key with a primitive key",
			config: []string{"auto.create", "true", "pk.mode", "record_key", "pk.fields", "k", "insert.mode", "upsert"},
			batch: [][]connect.SinkRecord{{rec("t", connect.StringSchema, "x", valueSchema, val(1, "a", 1)),
				rec("t", connect.StringSchema, "x", valueSchema, val(2, "b", 2)), rec("t", connect.StringSchema, "y", valueSchema, val(3, "c", 3))}},
			want: []string{"x|2|b|2", "y|3|c|3"},
		},
		{
			name:   "table.name.format with a schema",
			config: []string{"auto.create", "true", "table.name.format", "other.${topic}_copy"},
			setup:  []string{`CREATE SCHEMA other`},
			batch:  [][]connect.SinkRecord{{row(1, "a", 1)}},
			want:   []string{"1|a|1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			if len(tc.setup) > 0 {
				server.Exec(t, db, tc.setup...)
			}
			task := startTask(t, baseConfig(db, tc.config...))
			for _, b := range tc.batch {
				put(t, task, b...)
			}
			table := `t`
			if strings.Contains(strings.Join(tc.config, " "), "other.") {
				table = `other.t_copy`
			}
			wantRows(t, db, "SELECT * FROM "+table+" AS r ORDER BY r::text", tc.want...)
		})
	}
}

func withOffset(r connect.SinkRecord, off int64) connect.SinkRecord {
	r.KafkaOffset = off
	return r
}

func TestAutoCreateDDLAndAutoEvolve(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "auto.create", "true", "auto.evolve", "true", "pk.mode", "record_key", "insert.mode", "upsert"))
	put(t, task, row(1, "a", 1))
	wantRows(t, db, `SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum`,
		"id|bigint|true", "name|text|false", "score|double precision|false")
	wantRows(t, db, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 't'::regclass AND i.indisprimary`, "id")

	// A new optional field appears, with a default: the column is added.
	withDefault, err := connect.OptionalInt32Schema.WithDefault(int32(7))
	if err != nil {
		t.Fatal(err)
	}
	v2 := connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("name", connect.OptionalStringSchema),
		connect.F("score", connect.OptionalFloat64Schema), connect.F("tags", connect.ArrayOf(connect.StringSchema).AsOptional()),
		connect.F("level", withDefault))
	r := rec("t", keySchema, key(2), v2, connect.NewStruct(v2).MustPut("id", int64(2)).MustPut("name", "b").MustPut("tags", []any{"x", "y,\"z"}))
	put(t, task, r, row(3, "c", 3))
	wantRows(t, db, `SELECT id, name, tags, level FROM t ORDER BY id`, "1|a|NULL|7", "2|b|[x y,\"z]|7", "3|c|NULL|7")

	// A required field without default cannot be added to existing rows.
	v3 := connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("must", connect.Int32Schema))
	err = putErr(t, task, rec("t", keySchema, key(4), v3, connect.NewStruct(v3).MustPut("id", int64(4)).MustPut("must", int32(1))))
	mustContain(t, err, `no column "must"`, "make the field optional")

	// Without auto.evolve a missing column is an error naming it.
	task2 := startTask(t, baseConfig(db, "pk.mode", "record_key", "insert.mode", "upsert"))
	v4 := connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("extra", connect.OptionalStringSchema))
	err = putErr(t, task2, rec("t", keySchema, key(5), v4, connect.NewStruct(v4).MustPut("id", int64(5))))
	mustContain(t, err, `"extra"`, "auto.evolve=true")
}

func TestReplayIsIdempotent(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "auto.create", "true", "pk.mode", "record_key", "insert.mode", "upsert", "delete.enabled", "true"))
	batch := []connect.SinkRecord{row(1, "a", 1), row(2, "b", 2), tombstone(1), row(3, "c", 3), row(2, "b2", 22)}
	put(t, task, batch...)
	before := query(t, db, `SELECT * FROM t ORDER BY id`)
	put(t, task, batch...)
	put(t, task, batch[2:]...)
	after := query(t, db, `SELECT * FROM t ORDER BY id`)
	if strings.Join(before, ",") != strings.Join(after, ",") || strings.Join(after, ",") != "2|b2|22,3|c|3" {
		t.Fatalf("replay changed the table: %q then %q", before, after)
	}
}

func TestSchemalessIntoExistingTable(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db, `CREATE TABLE t (id bigint PRIMARY KEY, name text, price numeric(10,2), ok boolean, doc jsonb, tags text[], at timestamptz)`)
	task := startTask(t, baseConfig(db, "pk.mode", "record_value", "pk.fields", "id", "insert.mode", "upsert"))
	put(t, task,
		rec("t", nil, nil, nil, map[string]any{"id": int64(1), "name": "a", "price": 12.5, "ok": true, "doc": map[string]any{"x": int64(1)},
			"tags": []any{"p", "q"}, "at": "2024-05-06T07:08:09Z"}),
		rec("t", nil, nil, nil, map[string]any{"id": int64(2), "name": nil}),
		rec("t", nil, nil, nil, map[string]any{"id": int64(1), "name": "a2", "price": 12.5, "ok": false, "doc": []any{int64(1)}, "tags": []any{}, "at": "2024-05-06T07:08:09Z"}),
	)
	wantRows(t, db, `SELECT id, name, price::text, ok, doc::text, tags::text, at AT TIME ZONE 'UTC' FROM t ORDER BY id`,
		"1|a2|12.50|false|[1]|{}|2024-05-06 07:08:09 +0000 UTC", "2|NULL|NULL|NULL|NULL|NULL|NULL")

	// Schemaless records cannot create a table.
	task2 := startTask(t, baseConfig(db, "auto.create", "true", "table.name.format", "missing"))
	mustContain(t, putErr(t, task2, rec("t", nil, nil, nil, map[string]any{"id": int64(1)})), "schemaless", "create the table")
}

func TestBadInputs(t *testing.T) {
	db := newDB(t)
	server.Exec(t, db,
		`CREATE TABLE nopk (id bigint, name text, score double precision)`,
		`CREATE TABLE typed (id bigint PRIMARY KEY, name integer, score double precision)`,
		`CREATE TABLE flags (id bigint PRIMARY KEY, name boolean, score double precision)`)
	for _, tc := range []struct {
		name   string
		config []string
		recs   []connect.SinkRecord
		want   []string
	}{
		{"upsert into a table without primary key", []string{"table.name.format", "nopk", "pk.mode", "record_key", "insert.mode", "upsert"},
			[]connect.SinkRecord{row(1, "a", 1)}, []string{"needs a primary key or unique index", "ADD PRIMARY KEY", "insert.mode=insert"}},
		{"a value the column cannot hold", []string{"table.name.format", "typed", "pk.mode", "record_key", "insert.mode", "upsert"},
			[]connect.SinkRecord{row(1, "abc", 1)}, []string{"invalid input syntax for type integer", "name", "change the column's type"}},
		{"a field type the column cannot hold", []string{"table.name.format", "flags", "pk.mode", "record_key"},
			[]connect.SinkRecord{rec("t", keySchema, key(1), connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("name", connect.Int32Schema)),
				connect.NewStruct(connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("name", connect.Int32Schema))).MustPut("id", int64(1)).MustPut("name", int32(3)))},
			[]string{`field "name" (int32)`, `column "name"`, "boolean", "Cast"}},
		{"missing table without auto.create", []string{"table.name.format", "nothere"},
			[]connect.SinkRecord{row(1, "a", 1)}, []string{`table "public"."nothere" does not exist`, "auto.create=true"}},
		{"duplicate key in insert mode", []string{"table.name.format", "typed", "pk.mode", "record_key", "fields.whitelist", "score"},
			[]connect.SinkRecord{row(1, "a", 1), row(1, "a", 1)}, []string{"duplicate key", "insert.mode=upsert"}},
		{"a primitive key without pk.fields", []string{"table.name.format", "typed", "pk.mode", "record_key", "insert.mode", "upsert"},
			[]connect.SinkRecord{rec("t", connect.Int64Schema, int64(1), valueSchema, val(1, "a", 1))}, []string{"single value", "pk.fields"}},
		{"a struct field", []string{"auto.create", "true", "table.name.format", "nested"},
			[]connect.SinkRecord{func() connect.SinkRecord {
				inner := connect.StructOf("in", connect.F("x", connect.Int32Schema))
				vs := connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("in", inner))
				return rec("t", nil, nil, vs, connect.NewStruct(vs).MustPut("id", int64(1)).MustPut("in", connect.NewStruct(inner).MustPut("x", int32(1))))
			}()}, []string{`field "in"`, "Flatten"}},
		{"a string value", []string{"auto.create", "true"}, []connect.SinkRecord{rec("t", nil, nil, connect.StringSchema, "hello")}, []string{"struct values"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := startTask(t, baseConfig(db, append(tc.config, "max.retries", "0")...))
			err := putErr(t, task, tc.recs...)
			t.Log(err)
			mustContain(t, err, tc.want...)
		})
	}
}

func TestValidate(t *testing.T) {
	db := newDB(t)
	for _, tc := range []struct {
		name    string
		config  []string
		wantKey string
		want    string
	}{
		{"ok", nil, "", ""},
		{"a MySQL URL", []string{"connection.url", "jdbc:mysql://localhost:3306/db?password=secret"}, "connection.url", "only PostgreSQL is supported"},
		{"another dialect", []string{"dialect.name", "MySqlDatabaseDialect"}, "dialect.name", "not supported"},
		{"delete without record_key", []string{"delete.enabled", "true", "pk.mode", "record_value"}, "delete.enabled", "pk.mode=record_key"},
		{"upsert without key", []string{"insert.mode", "upsert"}, "pk.mode", "record_key"},
		{"kafka with two pk.fields", []string{"pk.mode", "kafka", "pk.fields", "a,b"}, "pk.fields", "three"},
		{"pk.fields with pk.mode none", []string{"pk.fields", "a"}, "pk.fields", "pk.mode"},
		{"unsupported quoting", []string{"quote.sql.identifiers", "never"}, "quote.sql.identifiers", "not supported"},
		{"unsupported timestamp list", []string{"timestamp.fields.list", "a"}, "timestamp.fields.list", "not supported"},
		{"unknown placeholder", []string{"table.name.format", "${schema}.x"}, "table.name.format", "only ${topic}"},
		{"bad time zone", []string{"db.timezone", "Mars/Base"}, "db.timezone", "time zone"},
		{"unreachable", []string{"connection.url", "postgres://127.0.0.1:1/x"}, "connection.url", "connecting"},
		{"bad JDBC parameter", []string{"connection.url", "jdbc:postgresql://h/db?frobnicate=1"}, "connection.url", `"frobnicate"`},
		{"bad driver parameter key", []string{"connection.frobnicate", "1"}, "connection.frobnicate", "not supported"},
		{"driver parameter keys", []string{"connection.loginTimeout", "10", "connection.ApplicationName", "x"}, "", ""},
		{"Debezium's user key", []string{"connection.username", "postgres"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewSink()
			cfg := baseConfig(db, tc.config...)
			_, defErrs := c.ConfigDef().Parse(cfg)
			errs, err := c.Validate(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for k, m := range defErrs {
				errs[k] = append(errs[k], m...)
			}
			if tc.wantKey == "" {
				if len(errs) > 0 {
					t.Fatalf("errors: %v", errs)
				}
				return
			}
			msgs := strings.Join(errs[tc.wantKey], " | ")
			if !strings.Contains(msgs, tc.want) {
				t.Fatalf("errors of %s = %q, want %q (all: %v)", tc.wantKey, msgs, tc.want, errs)
			}
			if strings.Contains(msgs, "secret") {
				t.Fatalf("an error shows the password: %q", msgs)
			}
		})
	}
}

func TestTransientErrorIsRetried(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "auto.create", "true", "pk.mode", "record_key", "insert.mode", "upsert"))
	put(t, task, row(1, "a", 1))
	// Kill the task's session: the next Put fails on it, reconnects and succeeds.
	server.Exec(t, db, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	put(t, task, row(2, "b", 2), row(1, "a2", 2))
	wantRows(t, db, `SELECT * FROM t ORDER BY id`, "1|a2|2", "2|b|2")

	// A server that stays away exhausts the retries with a clear message.
	task2 := startTask(t, baseConfig(db, "connection.url", "postgres://127.0.0.1:1/x", "max.retries", "2", "connection.attempts", "1"))
	mustContain(t, putErr(t, task2, row(3, "c", 3)), "failed 3 times", "max.retries=2")
}

func TestStopIsIdempotent(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "auto.create", "true"))
	put(t, task, row(1, "a", 1))
	for i := 0; i < 2; i++ {
		if err := task.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := putErr(t, task, row(2, "b", 2)); err == nil {
		t.Fatal("Put after Stop succeeded")
	}
}

// TestTableChangedBehindTheSink: the sink caches table definitions; a
// table dropped and created again differently is read afresh.
func TestTableChangedBehindTheSink(t *testing.T) {
	db := newDB(t)
	task := startTask(t, baseConfig(db, "auto.create", "true", "auto.evolve", "true", "pk.mode", "record_key", "insert.mode", "upsert"))
	put(t, task, row(1, "a", 1))
	server.Exec(t, db, `DROP TABLE t`, `CREATE TABLE t (name text, id bigint PRIMARY KEY)`)
	put(t, task, row(2, "b", 2)) // fails on the cached definition, then evolves the new table
	wantRows(t, db, `SELECT id, name, score FROM t`, "2|b|2")
}
