package transforms

import (
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// The constants of Kafka's TimestampConverterTest.
const (
	datePlusTimeUnix       = int64(86401234) // 1970-01-02T00:00:01.234Z
	datePlusTimeUnixMicros = int64(86401234123)
	datePlusTimeUnixNanos  = int64(86401234123456)
	datePlusTimeUnixSecs   = int64(86401)
	stringDateFmt          = "yyyy MM dd HH mm ss SSS z"
	datePlusTimeString     = "1970 01 02 00 00 01 234 UTC"
)

// Mirrors TimestampConverterTest.testConfigNoTargetType, testConfigInvalidTargetType,
// testConfigInvalidUnixPrecision, testConfigMissingFormat, testConfigInvalidFormat.
func TestTimestampConverterConfig(t *testing.T) {
	for _, c := range []struct {
		cfg map[string]string
		key string
	}{
		{map[string]string{}, "target.type"},
		{map[string]string{"target.type": "invalid"}, "target.type"},
		{map[string]string{"target.type": "unix", "unix.precision": "invalid"}, "unix.precision"},
		{map[string]string{"target.type": "string"}, "format"},
		{map[string]string{"target.type": "string", "format": "bad-format-GGG"}, "format"},
	} {
		if k := configErrKey(t, "TimestampConverter$Value", c.cfg); k != c.key {
			t.Fatalf("%v: %q", c.cfg, k)
		}
	}
}

// Mirrors TimestampConverterTest.testSchemaless{Identity,TimestampToDate,TimestampToTime,
// TimestampToUnix,TimestampToString,DateToTimestamp,TimeToTimestamp,UnixToTimestamp,
// StringToTimestamp} and testWithSchema* counterparts, plus the unix.precision tests.
func TestTimestampConverterWholeValue(t *testing.T) {
	datePlusTime := time.UnixMilli(datePlusTimeUnix).UTC()
	date := time.UnixMilli(86400000).UTC()
	timeOnly := time.UnixMilli(1234).UTC()
	cases := []struct {
		name   string
		cfg    map[string]string
		schema *connect.Schema
		in     any
		want   any
		outS   *connect.Schema
	}{
		{"identity", map[string]string{"target.type": "Timestamp"}, connect.TimestampSchema(), datePlusTime, datePlusTime, connect.TimestampSchema()},
		{"timestamp to date", map[string]string{"target.type": "Date"}, connect.TimestampSchema(), datePlusTime, date, connect.DateSchema()},
		{"timestamp to time", map[string]string{"target.type": "Time"}, connect.TimestampSchema(), datePlusTime, timeOnly, connect.TimeSchema()},
		{"timestamp to unix", map[string]string{"target.type": "unix"}, connect.TimestampSchema(), datePlusTime, datePlusTimeUnix, connect.Int64Schema},
		{"timestamp to string", map[string]string{"target.type": "string", "format": stringDateFmt}, connect.TimestampSchema(), datePlusTime, datePlusTimeString, connect.StringSchema},
		{"date to timestamp", map[string]string{"target.type": "Timestamp"}, connect.DateSchema(), date, date, connect.TimestampSchema()},
		{"time to timestamp", map[string]string{"target.type": "Timestamp"}, connect.TimeSchema(), timeOnly, timeOnly, connect.TimestampSchema()},
		{"unix to timestamp", map[string]string{"target.type": "Timestamp"}, connect.Int64Schema, datePlusTimeUnix, datePlusTime, connect.TimestampSchema()},
		{"string to timestamp", map[string]string{"target.type": "Timestamp", "format": stringDateFmt}, connect.StringSchema, datePlusTimeString, datePlusTime, connect.TimestampSchema()},
		{"unix micros to timestamp", map[string]string{"target.type": "Timestamp", "unix.precision": "microseconds"}, connect.Int64Schema, datePlusTimeUnixMicros, datePlusTime, connect.TimestampSchema()},
		{"unix nanos to timestamp", map[string]string{"target.type": "Timestamp", "unix.precision": "nanoseconds"}, connect.Int64Schema, datePlusTimeUnixNanos, datePlusTime, connect.TimestampSchema()},
		{"unix seconds to timestamp", map[string]string{"target.type": "Timestamp", "unix.precision": "seconds"}, connect.Int64Schema, datePlusTimeUnixSecs, time.UnixMilli(86401000), connect.TimestampSchema()},
		{"timestamp to unix seconds", map[string]string{"target.type": "unix", "unix.precision": "seconds"}, connect.TimestampSchema(), datePlusTime, datePlusTimeUnixSecs, connect.Int64Schema},
		{"timestamp to unix micros", map[string]string{"target.type": "unix", "unix.precision": "microseconds"}, connect.TimestampSchema(), datePlusTime, int64(86401234000), connect.Int64Schema},
		{"string iso to unix", map[string]string{"target.type": "unix", "format": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"}, connect.StringSchema, "1970-01-02T02:00:01.234+02:00", datePlusTimeUnix, connect.Int64Schema},
		{"string 12h to string", map[string]string{"target.type": "string", "format": "dd-MMM-yy hh:mm a"}, connect.StringSchema, "02-Jan-70 01:05 PM", "02-Jan-70 01:05 PM", connect.StringSchema},
	}
	for _, c := range cases {
		variants(t, "TimestampConverter", func(t *testing.T, typ string, key bool) {
			t.Run(c.name, func(t *testing.T) {
				tr := newT(t, typ, c.cfg)
				s, got := sideGet(apply(t, tr, sideRec(key, c.schema, c.in)), key)
				wantEqual(t, "with schema", got, c.want)
				if !s.Equal(c.outS) {
					t.Fatalf("schema %s, want %s", s, c.outS)
				}
				mustValid(t, s, got)
				if c.schema.Name == "" || c.schema.Name == connect.TimestampName {
					// Schemaless infers the input type from the Go value.
					_, got = sideGet(apply(t, tr, sideRec(key, nil, c.in)), key)
					wantEqual(t, "schemaless", got, c.want)
				}
			})
		})
	}
	// Two-digit years: SimpleDateFormat's 80/20 window.
	tr := newT(t, "TimestampConverter$Value", map[string]string{"target.type": "unix", "format": "yy"})
	want := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	if time.Now().Year()-80 > 1970 {
		want = time.Date(2070, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	wantEqual(t, "yy", apply(t, tr, valueRec(nil, "70")).Value, want.UnixMilli())
	applyErr(t, newT(t, "TimestampConverter$Value", map[string]string{"target.type": "unix", "format": "yyyy-MM-dd"}),
		valueRec(nil, "not a date"), "does not match pattern")
	applyErr(t, newT(t, "TimestampConverter$Value", map[string]string{"target.type": "unix"}),
		valueRec(nil, true), "does not support")
	applyErr(t, newT(t, "TimestampConverter$Value", map[string]string{"target.type": "unix"}),
		valueRec(connect.Int32Schema, int32(1)), "does not correspond")
}

// Mirrors TimestampConverterTest.testWithSchemaFieldConversion,
// testWithSchemaNullFieldConversion, testSchemalessFieldConversion,
// testSchemalessNullFieldConversion, testWithSchemaNullValueConversion.
func TestTimestampConverterField(t *testing.T) {
	schema := connect.StructOf("s", connect.F("ts", connect.TimestampSchema().AsOptional()), connect.F("other", connect.StringSchema))
	variants(t, "TimestampConverter", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"field": "ts", "target.type": "unix"})
		v := connect.NewStruct(schema).MustPut("ts", time.UnixMilli(datePlusTimeUnix)).MustPut("other", "o")
		s, got := sideGet(apply(t, tr, sideRec(key, schema, v)), key)
		mustValid(t, s, got)
		if f, _ := s.Field("ts"); !f.Schema.Equal(connect.OptionalInt64Schema) || s.Name != "s" {
			t.Fatalf("schema %s", s)
		}
		wantEqual(t, "ts", got.(*connect.Struct).Get("ts"), datePlusTimeUnix)
		wantEqual(t, "other", got.(*connect.Struct).Get("other"), "o")
		// Null field, null struct.
		_, got = sideGet(apply(t, tr, sideRec(key, schema, connect.NewStruct(schema).MustPut("other", "o"))), key)
		if got.(*connect.Struct).Get("ts") != nil {
			t.Fatal("null field converted")
		}
		s, got = sideGet(apply(t, tr, sideRec(key, schema.AsOptional(), nil)), key)
		if got != nil || !s.Optional {
			t.Fatal("null value")
		}
		// Schemaless.
		_, got = sideGet(apply(t, tr, sideRec(key, nil, map[string]any{"ts": time.UnixMilli(datePlusTimeUnix), "other": "o"})), key)
		wantEqual(t, "schemaless", got, map[string]any{"ts": datePlusTimeUnix, "other": "o"})
		_, got = sideGet(apply(t, tr, sideRec(key, nil, map[string]any{"other": "o"})), key)
		wantEqual(t, "schemaless null", got, map[string]any{"ts": nil, "other": "o"})
	})
}
