package sink

import (
	"encoding/binary"
	"math/big"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Debezium's PostgreSQL change event schemas, as the CDC source emits them.
var (
	cdcKey   = connect.StructOf("dbserver1.public.t.Key", connect.F("id", connect.Int32Schema))
	cdcRow   = connect.StructOf("dbserver1.public.t.Value", connect.F("id", connect.Int32Schema), connect.F("name", connect.OptionalStringSchema)).AsOptional()
	cdcEnum  = &connect.Schema{Type: connect.String, Name: "io.debezium.data.Enum", Optional: true, Parameters: map[string]string{"allowed": "true,false,last,incremental"}}
	cdcSrc   = connect.StructOf("io.debezium.connector.postgresql.Source", connect.F("version", connect.StringSchema), connect.F("connector", connect.StringSchema), connect.F("name", connect.StringSchema), connect.F("ts_ms", connect.Int64Schema), connect.F("snapshot", cdcEnum), connect.F("db", connect.StringSchema), connect.F("schema", connect.StringSchema), connect.F("table", connect.StringSchema), connect.F("txId", connect.OptionalInt64Schema), connect.F("lsn", connect.OptionalInt64Schema))
	cdcValue = envelopeSchema(cdcRow)
)

func envelopeSchema(row *connect.Schema) *connect.Schema {
	return connect.StructOf(row.Name[:len(row.Name)-len("Value")]+"Envelope",
		connect.F("before", row), connect.F("after", row), connect.F("source", cdcSrc),
		connect.F("op", connect.StringSchema), connect.F("ts_ms", connect.OptionalInt64Schema))
}

func source(snapshot string) *connect.Struct {
	return connect.NewStruct(cdcSrc).MustPut("version", "2.7").MustPut("connector", "postgresql").MustPut("name", "dbserver1").
		MustPut("ts_ms", int64(1714979289000)).MustPut("snapshot", snapshot).MustPut("db", "src").MustPut("schema", "public").
		MustPut("table", "t").MustPut("txId", int64(777)).MustPut("lsn", int64(123456))
}

func cdcRowOf(id int32, name string) *connect.Struct {
	return connect.NewStruct(cdcRow).MustPut("id", id).MustPut("name", name)
}

// change builds a change event of table t; before/after may be nil.
func change(op string, id int32, before, after *connect.Struct) connect.SinkRecord {
	v := connect.NewStruct(cdcValue).MustPut("source", source("false")).MustPut("op", op).MustPut("ts_ms", int64(1714979289001))
	if before != nil {
		v.MustPut("before", before)
	}
	if after != nil {
		v.MustPut("after", after)
	}
	var k any
	var ks *connect.Schema
	if op != "t" {
		k, ks = connect.NewStruct(cdcKey).MustPut("id", id), cdcKey
	}
	return rec("dbserver1.public.t", ks, k, cdcValue, v)
}

func cdcTombstone(id int32) connect.SinkRecord {
	return rec("dbserver1.public.t", cdcKey, connect.NewStruct(cdcKey).MustPut("id", id), nil, nil)
}

func TestCDCEnvelope(t *testing.T) {
	mirror := []string{"auto.create", "true", "insert.mode", "upsert", "pk.mode", "record_key", "delete.enabled", "true", "truncate.enabled", "true"}
	const sel = `SELECT * FROM "dbserver1.public.t" ORDER BY id`
	for _, tc := range []struct {
		name    string
		config  []string
		batches [][]connect.SinkRecord
		want    []string
	}{
		{"snapshot, create, update, delete and its tombstone", mirror, [][]connect.SinkRecord{
			{change("r", 1, nil, cdcRowOf(1, "one")), change("r", 2, nil, cdcRowOf(2, "two"))},
			{change("c", 3, nil, cdcRowOf(3, "three")), change("u", 1, cdcRowOf(1, "one"), cdcRowOf(1, "uno")),
				change("d", 2, cdcRowOf(2, "two"), nil), cdcTombstone(2)},
			{cdcTombstone(2), change("u", 3, nil, cdcRowOf(3, "tres"))},
		}, []string{"1|uno", "3|tres"}},
		{"delete and re-create in one batch", mirror, [][]connect.SinkRecord{
			{change("c", 1, nil, cdcRowOf(1, "a")), change("d", 1, cdcRowOf(1, "a"), nil), cdcTombstone(1), change("c", 1, nil, cdcRowOf(1, "b"))},
		}, []string{"1|b"}},
		{"truncate then rows after it", mirror, [][]connect.SinkRecord{
			{change("c", 1, nil, cdcRowOf(1, "a")), change("c", 2, nil, cdcRowOf(2, "b"))},
			{change("u", 1, nil, cdcRowOf(1, "a2")), change("t", 0, nil, nil), change("c", 5, nil, cdcRowOf(5, "e"))},
		}, []string{"5|e"}},
		{"truncate and deletes are skipped unless enabled", []string{"auto.create", "true", "insert.mode", "upsert", "pk.mode", "record_key"}, [][]connect.SinkRecord{
			{change("c", 1, nil, cdcRowOf(1, "a")), change("c", 2, nil, cdcRowOf(2, "b"))},
			{change("d", 1, cdcRowOf(1, "a"), nil), change("t", 0, nil, nil)},
		}, []string{"1|a", "2|b"}},
		{"delete by the before row when the record has no key", mirror, [][]connect.SinkRecord{
			{change("c", 1, nil, cdcRowOf(1, "a")), change("c", 2, nil, cdcRowOf(2, "b"))},
			{noKey(change("d", 1, cdcRowOf(1, "a"), nil)), noKey(change("u", 2, nil, cdcRowOf(2, "b2")))},
		}, []string{"2|b2"}},
		{"pk.mode none appends the after rows", []string{"auto.create", "true"}, [][]connect.SinkRecord{
			{change("c", 1, nil, cdcRowOf(1, "a")), change("u", 1, nil, cdcRowOf(1, "b"))},
		}, []string{"1|a", "1|b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			task := startTask(t, baseConfig(db, tc.config...))
			for _, b := range tc.batches {
				put(t, task, b...)
			}
			wantRows(t, db, sel+", name", tc.want...)
			// Replaying everything leaves the mirror as it is.
			if tc.config[len(tc.config)-1] == "true" && len(tc.config) == len(mirror) {
				for _, b := range tc.batches {
					put(t, task, b...)
				}
				wantRows(t, db, sel+", name", tc.want...)
			}
		})
	}
}

func noKey(r connect.SinkRecord) connect.SinkRecord {
	r.Key, r.KeySchema = nil, nil
	return r
}

func named(s *connect.Schema, name string) *connect.Schema { return s.WithName(name, nil) }

func TestDebeziumTypesRoundTrip(t *testing.T) {
	vsd := connect.StructOf("io.debezium.data.VariableScaleDecimal", connect.F("scale", connect.Int32Schema), connect.F("value", connect.BytesSchema)).AsOptional()
	fields := []struct {
		name   string
		schema *connect.Schema
		value  any
		typ    string
		text   string
	}{
		{"i16", connect.OptionalInt16Schema, int16(-7), "smallint", "-7"},
		{"i32", connect.OptionalInt32Schema, int32(2147483647), "integer", "2147483647"},
		{"i64", connect.OptionalInt64Schema, int64(-9007199254740993), "bigint", "-9007199254740993"},
		{"f32", connect.OptionalFloat32Schema, float32(1.25), "real", "1.25"},
		{"f64", connect.OptionalFloat64Schema, 3.141592653589793, "double precision", "3.141592653589793"},
		{"b", connect.OptionalBooleanSchema, true, "boolean", "true"},
		{"s", connect.OptionalStringSchema, "héllo\t'\"\\", "text", "héllo\t'\"\\"},
		{"by", connect.OptionalBytesSchema, []byte{0, 1, 0xfe, '\\'}, "bytea", `\x0001fe5c`},
		{"dec", connect.DecimalSchema(2).AsOptional(), connect.Decimal{Unscaled: big.NewInt(-12345), Scale: 2}, "numeric", "-123.45"},
		{"decp", withParam(connect.DecimalSchema(2).AsOptional(), "connect.decimal.precision", "7"), connect.Decimal{Unscaled: big.NewInt(12345), Scale: 2}, "numeric(7,2)", "123.45"},
		{"dinf", named(connect.OptionalInt32Schema, "io.debezium.time.Date"), int32(2147483647), "date", "infinity"},
		{"tsinf", named(connect.OptionalInt64Schema, "io.debezium.time.MicroTimestamp"), int64(-9223372036854775807), "timestamp without time zone", "-infinity"},
		{"ztsinf", named(connect.OptionalStringSchema, "io.debezium.time.ZonedTimestamp"), "infinity", "timestamp with time zone", "infinity"},
		{"vsd", vsd, connect.NewStruct(vsd).MustPut("scale", int32(3)).MustPut("value", twos(-1234567)), "numeric", "-1234.567"},
		{"uid", named(connect.OptionalStringSchema, "io.debezium.data.Uuid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"js", named(connect.OptionalStringSchema, "io.debezium.data.Json"), `{"b": [1, 2], "a": "x"}`, "jsonb", `{"a": "x", "b": [1, 2]}`},
		{"mts", named(connect.OptionalInt64Schema, "io.debezium.time.MicroTimestamp"), int64(1714979289123456), "timestamp without time zone", "2024-05-06 07:08:09.123456"},
		{"zts", named(connect.OptionalStringSchema, "io.debezium.time.ZonedTimestamp"), "2024-05-06T07:08:09.123456Z", "timestamp with time zone", "2024-05-06 07:08:09.123456+00"},
		{"d", named(connect.OptionalInt32Schema, "io.debezium.time.Date"), int32(19849), "date", "2024-05-06"},
		{"mt", named(connect.OptionalInt64Schema, "io.debezium.time.MicroTime"), int64(((10*60+15)*60+30)*1e6 + 123456), "time without time zone", "10:15:30.123456"},
		{"zt", named(connect.OptionalStringSchema, "io.debezium.time.ZonedTime"), "10:15:30.123456Z", "time with time zone", "10:15:30.123456+00"},
		{"dur", named(connect.OptionalInt64Schema, "io.debezium.time.MicroDuration"), int64((26*3600+3*60+4)*1e6 + 500000), "interval", "26:03:04.5"},
		{"en", cdcEnum, "last", "text", "last"},
		{"arr", connect.ArrayOf(connect.OptionalInt32Schema).AsOptional(), []any{int32(1), nil, int32(3)}, "integer[]", "{1,NULL,3}"},
		{"sarr", connect.ArrayOf(connect.StringSchema).AsOptional(), []any{"a b", `q"\`, "{x}"}, "text[]", `{"a b","q\"\\","{x}"}`},
		{"cdate", connect.DateSchema().AsOptional(), time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "date", "1999-12-31"},
		{"ctime", connect.TimeSchema().AsOptional(), time.Date(1970, 1, 1, 23, 59, 58, 125e6, time.UTC), "time without time zone", "23:59:58.125"},
		{"cts", connect.TimestampSchema().AsOptional(), time.Date(2001, 2, 3, 4, 5, 6, 789e6, time.UTC), "timestamp without time zone", "2001-02-03 05:05:06.789"}, // db.timezone,
		{"req", connect.Int32Schema, int32(5), "integer", "5"},
	}
	var fs []connect.Field
	fs = append(fs, connect.F("id", connect.Int32Schema))
	for _, f := range fields {
		fs = append(fs, connect.F(f.name, f.schema))
	}
	row := connect.StructOf("dbserver1.public.t.Value", fs...).AsOptional()
	env := envelopeSchema(row)
	full := connect.NewStruct(row).MustPut("id", int32(1))
	empty := connect.NewStruct(row).MustPut("id", int32(2)).MustPut("req", int32(0))
	for _, f := range fields {
		full.MustPut(f.name, f.value)
	}
	ev := func(id int32, after *connect.Struct) connect.SinkRecord {
		v := connect.NewStruct(env).MustPut("source", source("true")).MustPut("op", "r").MustPut("after", after)
		return rec("dbserver1.public.t", cdcKey, connect.NewStruct(cdcKey).MustPut("id", id), env, v)
	}

	db := newDB(t)
	task := startTask(t, baseConfig(db, "auto.create", "true", "insert.mode", "upsert", "pk.mode", "record_key", "db.timezone", "Europe/Paris"))
	put(t, task, ev(1, full), ev(2, empty))
	for _, f := range fields {
		wantRows(t, db, `SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = '"dbserver1.public.t"'::regclass AND attname = '`+f.name+`'`,
			f.typ+"|"+map[bool]string{true: "true", false: "false"}[f.name == "req"])
		// Values as PostgreSQL prints them, in a UTC session.
		wantRows(t, db, `SELECT "`+f.name+`"::text FROM "dbserver1.public.t" ORDER BY id`, f.text, map[bool]string{true: "0", false: "NULL"}[f.name == "req"])
	}
}

// twos encodes n in 4 bytes of big-endian two's complement.
func twos(n int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// TestUnavailableToastValue: a CDC update carrying Debezium's placeholder
// for an unchanged TOASTed value keeps the mirror's value.
func TestUnavailableToastValue(t *testing.T) {
	row := connect.StructOf("dbserver1.public.t.Value", connect.F("id", connect.Int32Schema), connect.F("body", connect.OptionalStringSchema),
		connect.F("doc", named(connect.OptionalStringSchema, "io.debezium.data.Json")), connect.F("blob", connect.OptionalBytesSchema),
		connect.F("n", connect.OptionalInt32Schema)).AsOptional()
	env := envelopeSchema(row)
	ev := func(op string, body, doc string, blob []byte, n int32) connect.SinkRecord {
		after := connect.NewStruct(row).MustPut("id", int32(1)).MustPut("body", body).MustPut("doc", doc).MustPut("blob", blob).MustPut("n", n)
		if op == "plain" { // not an envelope: written per insert.mode (the update test)
			return rec("dbserver1.public.t", cdcKey, connect.NewStruct(cdcKey).MustPut("id", int32(1)), row, after)
		}
		v := connect.NewStruct(env).MustPut("source", source("false")).MustPut("op", op).MustPut("after", after)
		return rec("dbserver1.public.t", cdcKey, connect.NewStruct(cdcKey).MustPut("id", int32(1)), env, v)
	}
	const ph = "__debezium_unavailable_value"
	for _, mode := range []string{"upsert", "update"} {
		t.Run(mode, func(t *testing.T) {
			db := newDB(t)
			server.Exec(t, db, `CREATE TABLE "dbserver1.public.t" (id int PRIMARY KEY, body text, doc jsonb, blob bytea, n int)`)
			task := startTask(t, baseConfig(db, "insert.mode", mode, "pk.mode", "record_key"))
			put(t, task, ev("c", "long text", `{"a": 1}`, []byte("bin"), 1))
			op := "u"
			if mode == "update" {
				op = "plain"
			}
			put(t, task, ev(op, ph, ph, []byte(ph), 2))
			wantRows(t, db, `SELECT body, doc::text, encode(blob, 'escape'), n FROM "dbserver1.public.t"`, `long text|{"a": 1}|bin|2`)
			put(t, task, ev(op, "new", `{"b": 2}`, []byte("new"), 3))
			wantRows(t, db, `SELECT body, doc::text, encode(blob, 'escape'), n FROM "dbserver1.public.t"`, `new|{"b": 2}|new|3`)
		})
	}
}

func withParam(s *connect.Schema, k, v string) *connect.Schema {
	c := *s
	c.Parameters = map[string]string{k: v}
	for pk, pv := range s.Parameters {
		c.Parameters[pk] = pv
	}
	return &c
}
