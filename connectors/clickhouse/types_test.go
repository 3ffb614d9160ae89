package clickhouse

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

func named(s *connect.Schema, name string) *connect.Schema { return s.WithName(name, nil) }

func TestTypeMapping(t *testing.T) {
	db := newDB(t)
	dec := connect.DecimalSchema(2)
	dec.Parameters[precisionParam] = "10"
	vsd := connect.StructOf(dbzVariableScaleDecimal, connect.F("scale", connect.Int32Schema), connect.F("value", connect.BytesSchema))
	inner := connect.StructOf("inner", connect.F("a", connect.Int32Schema))
	fields := []connect.Field{
		connect.F("id", connect.Int32Schema),
		connect.F("i8", connect.Int8Schema), connect.F("i16", connect.Int16Schema), connect.F("i64", connect.Int64Schema),
		connect.F("f32", connect.Float32Schema), connect.F("f64", connect.Float64Schema),
		connect.F("b", connect.BooleanSchema), connect.F("s", connect.StringSchema), connect.F("raw", connect.BytesSchema),
		connect.F("dec", dec), connect.F("vsd", vsd),
		connect.F("d", connect.DateSchema()), connect.F("dd", named(connect.Int32Schema, dbzDate)),
		connect.F("tm", connect.TimeSchema()), connect.F("ts", connect.TimestampSchema()),
		connect.F("mts", named(connect.Int64Schema, dbzMicroTimestamp)),
		connect.F("zts", named(connect.StringSchema, dbzZonedTimestamp)),
		connect.F("u", named(connect.StringSchema, dbzUUID)), connect.F("j", named(connect.StringSchema, dbzJSON)),
		connect.F("opt", connect.OptionalStringSchema), connect.F("optn", connect.OptionalInt64Schema),
		connect.F("arr", connect.ArrayOf(connect.Int32Schema)),
		connect.F("arrn", connect.ArrayOf(connect.OptionalStringSchema)),
		connect.F("m", connect.MapOf(connect.StringSchema, connect.Int32Schema)),
		connect.F("st", inner),
	}
	sch := connect.StructOf("types", fields...)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	v := connect.NewStruct(sch).
		MustPut("id", int32(1)).MustPut("i8", int8(-8)).MustPut("i16", int16(-16)).MustPut("i64", int64(1)<<40).
		MustPut("f32", float32(1.5)).MustPut("f64", 2.25).MustPut("b", true).MustPut("s", "héllo\ttab").MustPut("raw", []byte{0, 'a', 0xff}).
		MustPut("dec", connect.Decimal{Unscaled: big.NewInt(-12345), Scale: 2}).
		MustPut("vsd", connect.NewStruct(vsd).MustPut("scale", int32(3)).MustPut("value", []byte{0xff, 0x85})). // -123 -> -0.123
		MustPut("d", time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)).MustPut("dd", int32(19849)).
		MustPut("tm", time.Date(1970, 1, 1, 1, 2, 3, 4_000_000, time.UTC)).MustPut("ts", ts).
		MustPut("mts", ts.UnixMicro()+456).MustPut("zts", "2024-05-06T07:08:09.123456Z").
		MustPut("u", "0b8e3b3c-2f5a-4c43-9a4e-2f6f1d3f7c11").MustPut("j", `{"a":1}`).
		MustPut("arr", []any{int32(1), int32(2)}).MustPut("arrn", []any{"x", nil}).
		MustPut("m", map[any]any{"k": int32(1)}).MustPut("st", connect.NewStruct(inner).MustPut("a", int32(5)))
	task := startTask(t, baseConfig(db))
	put(t, task, rec("types", 0, keySchema, key(1), sch, v))

	var got []string
	for _, l := range server.Query(t, "SELECT name, type FROM system.columns WHERE database = '"+db+"' AND table = 'types'") {
		got = append(got, l)
	}
	ver := query(t, "SELECT version()")
	old := !task.caps.dateTime64()
	tsType, mtsType, ztsType := "DateTime64(3, 'UTC')", "DateTime64(6, 'UTC')", "DateTime64(6, 'UTC')"
	if old {
		tsType, mtsType, ztsType = "Int64", "Int64", "String"
	}
	want := []string{"id\tInt32", "i8\tInt8", "i16\tInt16", "i64\tInt64", "f32\tFloat32", "f64\tFloat64", "b\tUInt8", "s\tString", "raw\tString",
		"dec\tDecimal(10, 2)", "vsd\tString", "d\tDate", "dd\tDate", "tm\tInt32", "ts\t" + tsType, "mts\t" + mtsType, "zts\t" + ztsType,
		"u\tUUID", "j\tString", "opt\tNullable(String)", "optn\tNullable(Int64)", "arr\tArray(Int32)", "arrn\tArray(Nullable(String))",
		"m\tString", "st\tString"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("server %s: columns:\n%s\nwant:\n%s", ver, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantVals := []string{"1", "-8", "-16", fmt.Sprint(int64(1) << 40), "1.5", "2.25", "1", `héllo\ttab`, `\0a` + "\xff",
		"-123.45", "-0.123", "2024-05-06", "2024-05-06", "3723004"}
	if old {
		wantVals = append(wantVals, fmt.Sprint(ts.UnixMilli()), fmt.Sprint(ts.UnixMicro()+456), "2024-05-06T07:08:09.123456Z")
	} else {
		wantVals = append(wantVals, "2024-05-06 07:08:09.123", "2024-05-06 07:08:09.123456", "2024-05-06 07:08:09.123456")
	}
	wantVals = append(wantVals, "0b8e3b3c-2f5a-4c43-9a4e-2f6f1d3f7c11", `{"a":1}`, `\N`, `\N`, "[1,2]", `['x',NULL]`, `{"k":1}`, `{"a":5}`)
	cols := []string{"id", "i8", "i16", "i64", "f32", "f64", "b", "s", "raw", "dec", "vsd", "d", "dd", "tm", "ts", "mts", "zts", "u", "j", "opt", "optn", "arr", "arrn", "m", "st"}
	gotVals := strings.Split(query(t, "SELECT "+strings.Join(cols, ", ")+" FROM "+db+".types"), "\t")
	if len(gotVals) != len(wantVals) {
		t.Fatalf("values: %q", gotVals)
	}
	for i := range cols {
		if gotVals[i] != wantVals[i] {
			t.Errorf("column %s = %q, want %q", cols[i], gotVals[i], wantVals[i])
		}
	}
	t.Logf("server %s", ver)
}
