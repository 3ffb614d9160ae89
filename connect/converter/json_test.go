package converter

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

func mustJSON(t testing.TB, cfg map[string]string) *JSON {
	t.Helper()
	c := NewJSON()
	if err := c.Configure(cfg, false); err != nil {
		t.Fatal(err)
	}
	return c
}

func dec(unscaled int64, scale int32) connect.Decimal {
	return connect.Decimal{Unscaled: big.NewInt(unscaled), Scale: scale}
}

func withDefault(t testing.TB, s *connect.Schema, v any) *connect.Schema {
	t.Helper()
	d, err := s.WithDefault(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func i32p(v int32) *int32 { return &v }

// TestJSONGoldenFromConnect checks FromConnect's exact bytes. Expected
// strings are Kafka's JsonConverter output: the cited JsonConverterTest
// tests (connect/json/src/test/java/org/apache/kafka/connect/json/) assert
// the same trees, and the byte order follows asJsonSchema's insertion
// order ("type", items/keys/values/fields, "optional", "name", "version",
// "doc", "parameters", "default", and "field" last in a struct field) and
// Jackson's compact writer.
func TestJSONGoldenFromConnect(t *testing.T) {
	structSchema := connect.StructOf("",
		connect.F("field1", connect.BooleanSchema),
		connect.F("field2", connect.StringSchema),
		connect.F("field3", connect.StringSchema),
		connect.F("field4", connect.BooleanSchema))
	structValue := connect.NewStruct(structSchema).MustPut("field1", true).MustPut("field2", "string2").
		MustPut("field3", "string3").MustPut("field4", false)

	inner := connect.StructOf("com.example.Inner", connect.F("x", connect.Int32Schema), connect.F("y", connect.OptionalStringSchema))
	nested := connect.StructOf("com.example.Outer",
		connect.F("id", connect.Int64Schema),
		connect.F("inner", inner),
		connect.F("tags", connect.ArrayOf(connect.StringSchema)),
		connect.F("attrs", connect.MapOf(connect.StringSchema, connect.OptionalInt32Schema)),
		connect.F("note", connect.OptionalStringSchema))
	nestedValue := connect.NewStruct(nested).
		MustPut("id", int64(7)).
		MustPut("inner", connect.NewStruct(inner).MustPut("x", int32(-3))).
		MustPut("tags", []any{"a", "b"}).
		MustPut("attrs", map[any]any{"k2": nil, "k1": int32(1)})

	date := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 10000)
	tod := time.UnixMilli(14400000).UTC()
	ts := time.UnixMilli(4000000000).UTC()

	boolNamed := &connect.Schema{Type: connect.Boolean, Name: "bool", Version: i32p(3), Doc: "the documentation", Parameters: map[string]string{"foo": "bar"}}

	numeric := map[string]string{"decimal.format": "NUMERIC"}
	noSchemas := map[string]string{"schemas.enable": "false"}

	tests := []struct {
		name   string
		cfg    map[string]string
		schema *connect.Schema
		value  any
		want   string
	}{
		// booleanToJson, byteToJson, shortToJson, intToJson, longToJson, floatToJson, doubleToJson, bytesToJson, stringToJson
		{"boolean", nil, connect.BooleanSchema, true, `{"schema":{"type":"boolean","optional":false},"payload":true}`},
		{"int8", nil, connect.Int8Schema, int8(12), `{"schema":{"type":"int8","optional":false},"payload":12}`},
		{"int16", nil, connect.Int16Schema, int16(12), `{"schema":{"type":"int16","optional":false},"payload":12}`},
		{"int32", nil, connect.Int32Schema, int32(12), `{"schema":{"type":"int32","optional":false},"payload":12}`},
		{"int64", nil, connect.Int64Schema, int64(4398046511104), `{"schema":{"type":"int64","optional":false},"payload":4398046511104}`},
		{"float", nil, connect.Float32Schema, float32(12.34), `{"schema":{"type":"float","optional":false},"payload":12.34}`},
		{"double", nil, connect.Float64Schema, 12.34, `{"schema":{"type":"double","optional":false},"payload":12.34}`},
		{"double integral", nil, connect.Float64Schema, 3.0, `{"schema":{"type":"double","optional":false},"payload":3.0}`},
		{"double large", nil, connect.Float64Schema, 1.2345678e7, `{"schema":{"type":"double","optional":false},"payload":1.2345678E7}`},
		{"double NaN", nil, connect.Float64Schema, math.NaN(), `{"schema":{"type":"double","optional":false},"payload":"NaN"}`},
		{"double -Inf", nil, connect.Float64Schema, math.Inf(-1), `{"schema":{"type":"double","optional":false},"payload":"-Infinity"}`},
		{"bytes", nil, connect.BytesSchema, []byte("test-string"), `{"schema":{"type":"bytes","optional":false},"payload":"dGVzdC1zdHJpbmc="}`},
		{"string", nil, connect.StringSchema, "test-string", `{"schema":{"type":"string","optional":false},"payload":"test-string"}`},
		{"string escapes", nil, connect.StringSchema, "a\"b\\c\n\t\x01<>&/é😀", `{"schema":{"type":"string","optional":false},"payload":"a\"b\\c\n\t\u0001<>&/é😀"}`},
		// testJsonSchemaMetadataTranslation
		{"optional null", nil, connect.OptionalBooleanSchema, nil, `{"schema":{"type":"boolean","optional":true},"payload":null}`},
		{"default", nil, withDefault(t, connect.BooleanSchema, true), true, `{"schema":{"type":"boolean","optional":false,"default":true},"payload":true}`},
		{"null replaced by default", nil, withDefault(t, connect.Int32Schema, int32(5)), nil, `{"schema":{"type":"int32","optional":false,"default":5},"payload":5}`},
		{"metadata", nil, boolNamed, true, `{"schema":{"type":"boolean","optional":false,"name":"bool","version":3,"doc":"the documentation","parameters":{"foo":"bar"}},"payload":true}`},
		// arrayToJson, mapToJsonStringKeys, mapToJsonNonStringKeys, structToJson
		{"array", nil, connect.ArrayOf(connect.Int32Schema), []any{int32(1), int32(2), int32(3)},
			`{"schema":{"type":"array","items":{"type":"int32","optional":false},"optional":false},"payload":[1,2,3]}`},
		{"map string keys", nil, connect.MapOf(connect.StringSchema, connect.Int32Schema), map[any]any{"key2": int32(15), "key1": int32(12)},
			`{"schema":{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int32","optional":false},"optional":false},"payload":{"key1":12,"key2":15}}`},
		{"map non-string keys", nil, connect.MapOf(connect.Int32Schema, connect.Int32Schema), map[any]any{int32(2): int32(15), int32(1): int32(12)},
			`{"schema":{"type":"map","keys":{"type":"int32","optional":false},"values":{"type":"int32","optional":false},"optional":false},"payload":[[1,12],[2,15]]}`},
		{"struct", nil, structSchema, structValue,
			`{"schema":{"type":"struct","fields":[{"type":"boolean","optional":false,"field":"field1"},{"type":"string","optional":false,"field":"field2"},{"type":"string","optional":false,"field":"field3"},{"type":"boolean","optional":false,"field":"field4"}],"optional":false},"payload":{"field1":true,"field2":"string2","field3":"string3","field4":false}}`},
		{"nested struct", nil, nested, nestedValue,
			`{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"struct","fields":[{"type":"int32","optional":false,"field":"x"},{"type":"string","optional":true,"field":"y"}],"optional":false,"name":"com.example.Inner","field":"inner"},{"type":"array","items":{"type":"string","optional":false},"optional":false,"field":"tags"},{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int32","optional":true},"optional":false,"field":"attrs"},{"type":"string","optional":true,"field":"note"}],"optional":false,"name":"com.example.Outer"},"payload":{"id":7,"inner":{"x":-3,"y":null},"tags":["a","b"],"attrs":{"k1":1,"k2":null},"note":null}}`},
		// decimalToJson, decimalToNumericJson, decimalWithTrailingZerosToNumericJson
		{"decimal base64", nil, connect.DecimalSchema(2), dec(156, 2),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":"AJw="}`},
		{"decimal base64 negative", nil, connect.DecimalSchema(2), dec(-1, 2),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":"/w=="}`},
		{"decimal base64 -128", nil, connect.DecimalSchema(0), dec(-128, 0),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"0"}},"payload":"gA=="}`},
		{"decimal numeric", numeric, connect.DecimalSchema(2), dec(156, 2),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":1.56}`},
		{"decimal numeric trailing zeros", numeric, connect.DecimalSchema(4), dec(15600, 4),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"4"}},"payload":1.5600}`},
		{"decimal numeric negative", numeric, connect.DecimalSchema(2), dec(-1, 2),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":-0.01}`},
		// dateToJson, timeToJson, timestampToJson
		{"date", nil, connect.DateSchema(), date,
			`{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Date","version":1},"payload":10000}`},
		{"time", nil, connect.TimeSchema(), tod,
			`{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Time","version":1},"payload":14400000}`},
		{"timestamp", nil, connect.TimestampSchema(), ts,
			`{"schema":{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1},"payload":4000000000}`},
		// nullSchemaAndPrimitiveToJson, nullSchemaAndArrayToJson, nullSchemaAndMapToJson, nullSchemaAndMapNonStringKeysToJson
		{"schemaless primitive", nil, nil, true, `{"schema":null,"payload":true}`},
		{"schemaless array", nil, nil, []any{int32(1), "string", true}, `{"schema":null,"payload":[1,"string",true]}`},
		{"schemaless map", nil, nil, map[string]any{"key3": true, "key1": int32(12), "key2": "string"},
			`{"schema":null,"payload":{"key1":12,"key2":"string","key3":true}}`},
		{"schemaless map non-string keys", nil, nil, map[any]any{"string": int32(12), int32(52): "string", false: true},
			`{"schema":null,"payload":[[false,true],[52,"string"],["string",12]]}`},
		// noSchemaToJson and schemas.enable=false in general
		{"no envelope", noSchemas, nil, true, `true`},
		{"no envelope struct", noSchemas, structSchema, structValue, `{"field1":true,"field2":"string2","field3":"string3","field4":false}`},
		{"no envelope optional null", noSchemas, connect.OptionalStringSchema, nil, `null`},
		{"optional struct field default", nil,
			connect.StructOf("", connect.F("d", withDefault(t, connect.DecimalSchema(1), dec(5, 1)))),
			connect.NewStruct(connect.StructOf("", connect.F("d", withDefault(t, connect.DecimalSchema(1), dec(5, 1))))),
			`{"schema":{"type":"struct","fields":[{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"1"},"default":"BQ==","field":"d"}],"optional":false},"payload":{"d":"BQ=="}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustJSON(t, tt.cfg)
			got, err := c.FromConnect("topic", tt.schema, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
			// A second call hits the schema cache and must be identical.
			again, err := c.FromConnect("topic", tt.schema, tt.value)
			if err != nil || string(again) != tt.want {
				t.Fatalf("cached conversion differs: %s, %v", again, err)
			}
		})
	}
}

// TestJSONNullRecord: nullSchemaAndNullValueToJson and nullValueToJson
// (a null schema and value give null bytes whatever schemas.enable is).
func TestJSONNullRecord(t *testing.T) {
	for _, enable := range []string{"true", "false"} {
		c := mustJSON(t, map[string]string{"schemas.enable": enable})
		got, err := c.FromConnect("topic", nil, nil)
		if err != nil || got != nil {
			t.Fatalf("schemas.enable=%s: got %q, %v; want nil", enable, got, err)
		}
		s, v, err := c.ToConnect("topic", nil)
		if err != nil || s != nil || v != nil {
			t.Fatalf("schemas.enable=%s: ToConnect(nil) = %v, %v, %v", enable, s, v, err)
		}
	}
}

// TestJSONToConnectKafkaInputs decodes the inputs of Kafka's
// JsonConverterTest *ToConnect tests.
func TestJSONToConnectKafkaInputs(t *testing.T) {
	decimalOpt := connect.DecimalSchema(2).AsOptional()
	tests := []struct {
		name       string
		cfg        map[string]string
		in         string
		wantSchema *connect.Schema
		wantValue  any
	}{
		{"booleanToConnect", nil, `{ "schema": { "type": "boolean" }, "payload": true }`, connect.BooleanSchema, true},
		{"byteToConnect", nil, `{ "schema": { "type": "int8" }, "payload": 12 }`, connect.Int8Schema, int8(12)},
		{"shortToConnect", nil, `{ "schema": { "type": "int16" }, "payload": 12 }`, connect.Int16Schema, int16(12)},
		{"intToConnect", nil, `{ "schema": { "type": "int32" }, "payload": 12 }`, connect.Int32Schema, int32(12)},
		{"longToConnect", nil, `{ "schema": { "type": "int64" }, "payload": 4398046511104 }`, connect.Int64Schema, int64(4398046511104)},
		{"floatToConnect", nil, `{ "schema": { "type": "float" }, "payload": 12.34 }`, connect.Float32Schema, float32(12.34)},
		{"doubleToConnect", nil, `{ "schema": { "type": "double" }, "payload": 12.34 }`, connect.Float64Schema, 12.34},
		{"bytesToConnect", nil, `{ "schema": { "type": "bytes" }, "payload": "dGVzdC1zdHJpbmc=" }`, connect.BytesSchema, []byte("test-string")},
		{"stringToConnect", nil, `{ "schema": { "type": "string" }, "payload": "foo-bar-baz" }`, connect.StringSchema, "foo-bar-baz"},
		{"arrayToConnect", nil, `{ "schema": { "type": "array", "items": { "type" : "int32" } }, "payload": [1, 2, 3] }`,
			connect.ArrayOf(connect.Int32Schema), []any{int32(1), int32(2), int32(3)}},
		{"mapToConnectStringKeys", nil, `{ "schema": { "type": "map", "keys": { "type" : "string" }, "values": { "type" : "int32" } }, "payload": { "key1": 12, "key2": 15} }`,
			connect.MapOf(connect.StringSchema, connect.Int32Schema), map[any]any{"key1": int32(12), "key2": int32(15)}},
		{"mapToConnectNonStringKeys", nil, `{ "schema": { "type": "map", "keys": { "type" : "int32" }, "values": { "type" : "int32" } }, "payload": [ [1, 12], [2, 15] ] }`,
			connect.MapOf(connect.Int32Schema, connect.Int32Schema), map[any]any{int32(1): int32(12), int32(2): int32(15)}},
		{"testConnectSchemaMetadataTranslation optional", nil, `{ "schema": { "type": "boolean", "optional": true }, "payload": null }`, connect.OptionalBooleanSchema, nil},
		{"testConnectSchemaMetadataTranslation default", nil, `{ "schema": { "type": "boolean", "default": true }, "payload": null }`, withDefault(t, connect.BooleanSchema, true), true},
		{"testConnectSchemaMetadataTranslation metadata", nil, `{ "schema": { "type": "boolean", "optional": false, "name": "bool", "version": 2, "doc": "the documentation", "parameters": { "foo": "bar" }}, "payload": true }`,
			&connect.Schema{Type: connect.Boolean, Name: "bool", Version: i32p(2), Doc: "the documentation", Parameters: map[string]string{"foo": "bar"}}, true},
		{"decimalToConnect", nil, `{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": { "scale": "2" } }, "payload": "AJw=" }`,
			connect.DecimalSchema(2), dec(156, 2)},
		{"decimalToConnectOptional", nil, `{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "optional": true, "parameters": { "scale": "2" } }, "payload": null }`,
			decimalOpt, nil},
		{"decimalToConnectWithDefaultValue", nil, `{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "default": "AJw=", "parameters": { "scale": "2" } }, "payload": null }`,
			withDefault(t, connect.DecimalSchema(2), dec(156, 2)), dec(156, 2)},
		{"numericDecimalToConnect", nil, `{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": { "scale": "2" } }, "payload": 1.56 }`,
			connect.DecimalSchema(2), dec(156, 2)},
		{"numericDecimalWithTrailingZerosToConnect", nil, `{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": { "scale": "4" } }, "payload": 1.5600 }`,
			connect.DecimalSchema(4), dec(15600, 4)},
		{"highPrecisionNumericDecimalToConnect", nil, `{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": { "scale": "17" } }, "payload": 1.23456789123456789 }`,
			connect.DecimalSchema(17), dec(123456789123456789, 17)},
		{"dateToConnect", nil, `{ "schema": { "type": "int32", "name": "org.apache.kafka.connect.data.Date", "version": 1 }, "payload": 10000 }`,
			connect.DateSchema(), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 10000)},
		{"dateToConnectWithDefaultValue", nil, `{ "schema": { "type": "int32", "name": "org.apache.kafka.connect.data.Date", "version": 1, "default": 0 }, "payload": null }`,
			withDefault(t, connect.DateSchema(), time.Unix(0, 0).UTC()), time.Unix(0, 0).UTC()},
		{"timeToConnect", nil, `{ "schema": { "type": "int32", "name": "org.apache.kafka.connect.data.Time", "version": 1 }, "payload": 14400000 }`,
			connect.TimeSchema(), time.UnixMilli(14400000).UTC()},
		{"timestampToConnect", nil, `{ "schema": { "type": "int64", "name": "org.apache.kafka.connect.data.Timestamp", "version": 1 }, "payload": 4000000000 }`,
			connect.TimestampSchema(), time.UnixMilli(4000000000).UTC()},
		{"timestampToConnectOptionalWithDefaultValue", nil, `{ "schema": { "type": "int64", "name": "org.apache.kafka.connect.data.Timestamp", "version": 1,  "optional": true, "default": 42 }, "payload": null }`,
			withDefault(t, connect.TimestampSchema().AsOptional(), time.UnixMilli(42).UTC()), time.UnixMilli(42).UTC()},
		{"nullSchemaPrimitiveToConnect null", nil, `{ "schema": null, "payload": null }`, nil, nil},
		{"nullSchemaPrimitiveToConnect bool", nil, `{ "schema": null, "payload": true }`, nil, true},
		{"nullSchemaPrimitiveToConnect int", nil, `{ "schema": null, "payload": 12 }`, nil, int64(12)},
		{"nullSchemaPrimitiveToConnect double", nil, `{ "schema": null, "payload": 12.24 }`, nil, 12.24},
		{"nullSchemaPrimitiveToConnect string", nil, `{ "schema": null, "payload": "a string" }`, nil, "a string"},
		{"nullSchemaPrimitiveToConnect array", nil, `{ "schema": null, "payload": [1, "2", 3] }`, nil, []any{int64(1), "2", int64(3)}},
		{"nullSchemaPrimitiveToConnect object", nil, `{ "schema": null, "payload": { "field1": 1, "field2": 2} }`, nil, map[string]any{"field1": int64(1), "field2": int64(2)}},
		{"noSchemaToConnect", map[string]string{"schemas.enable": "false"}, `true`, nil, true},
		{"emptyBytesToConnect", map[string]string{"schemas.enable": "false"}, ``, nil, nil},
		{"schemalessWithEmptyFieldValueToConnect", map[string]string{"schemas.enable": "false"}, `{ "a": "", "b": null}`, nil, map[string]any{"a": "", "b": nil}},
		{"escapes", nil, `{"schema":{"type":"string"},"payload":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, connect.StringSchema, "a\"\\/\b\f\n\r\té😀"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustJSON(t, tt.cfg)
			s, v, err := c.ToConnect("topic", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !s.Equal(tt.wantSchema) {
				t.Fatalf("schema %v, want %v", s, tt.wantSchema)
			}
			if !connect.ValuesEqual(v, tt.wantValue) {
				t.Fatalf("value %#v, want %#v", v, tt.wantValue)
			}
		})
	}
}

// TestJSONStructToConnect: structToConnect and structWithOptionalFieldToConnect.
func TestJSONStructToConnect(t *testing.T) {
	c := NewJSON()
	s, v, err := c.ToConnect("topic", []byte(`{ "schema": { "type": "struct", "fields": [{ "field": "field1", "type": "boolean" }, { "field": "field2", "type": "string" }] }, "payload": { "field1": true, "field2": "string" } }`))
	if err != nil {
		t.Fatal(err)
	}
	want := connect.StructOf("", connect.F("field1", connect.BooleanSchema), connect.F("field2", connect.StringSchema))
	if !s.Equal(want) {
		t.Fatalf("schema %v", s)
	}
	if !connect.ValuesEqual(v, connect.NewStruct(want).MustPut("field1", true).MustPut("field2", "string")) {
		t.Fatalf("value %v", v)
	}

	s, v, err = c.ToConnect("topic", []byte(`{ "schema": { "type": "struct", "fields": [{ "field":"optional", "type": "string", "optional": true }, {  "field": "required", "type": "string" }] }, "payload": { "required": "required" } }`))
	if err != nil {
		t.Fatal(err)
	}
	want = connect.StructOf("", connect.F("optional", connect.OptionalStringSchema), connect.F("required", connect.StringSchema))
	if !s.Equal(want) || !connect.ValuesEqual(v, connect.NewStruct(want).MustPut("required", "required")) {
		t.Fatalf("got %v %v", s, v)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	inner := connect.StructOf("Inner", connect.F("a", connect.OptionalInt16Schema), connect.F("b", connect.BytesSchema))
	innerDefault := connect.NewStruct(inner).MustPut("b", []byte{1, 2})
	innerD := withDefault(t, inner, innerDefault)
	everything := connect.StructOf("com.example.Everything",
		connect.F("i8", connect.Int8Schema),
		connect.F("i16", connect.Int16Schema),
		connect.F("i32", connect.Int32Schema),
		connect.F("i64", connect.Int64Schema),
		connect.F("f32", connect.Float32Schema),
		connect.F("f64", connect.Float64Schema),
		connect.F("bool", connect.BooleanSchema),
		connect.F("str", connect.StringSchema.WithDoc("a \"doc\"")),
		connect.F("bytes", connect.OptionalBytesSchema),
		connect.F("dec", connect.DecimalSchema(3)),
		connect.F("date", connect.DateSchema().AsOptional()),
		connect.F("time", connect.TimeSchema()),
		connect.F("ts", connect.TimestampSchema()),
		connect.F("arr", connect.ArrayOf(connect.OptionalStringSchema)),
		connect.F("mapS", connect.MapOf(connect.StringSchema, connect.Float64Schema)),
		connect.F("mapI", connect.MapOf(connect.Int64Schema, connect.ArrayOf(connect.Int8Schema))),
		connect.F("inner", innerD),
		connect.F("opt", connect.OptionalInt32Schema),
		connect.F("def", withDefault(t, connect.StringSchema, "dflt")),
	)
	full := connect.NewStruct(everything).
		MustPut("i8", int8(-128)).
		MustPut("i16", int16(32767)).
		MustPut("i32", int32(-2147483648)).
		MustPut("i64", int64(math.MaxInt64)).
		MustPut("f32", float32(3.4028235e38)).
		MustPut("f64", 1e-300).
		MustPut("bool", true).
		MustPut("str", "héllo\x00\u2028").
		MustPut("bytes", []byte{0, 255}).
		MustPut("dec", dec(-123456789, 3)).
		MustPut("date", time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC)).
		MustPut("time", time.UnixMilli(86399999).UTC()).
		MustPut("ts", time.UnixMilli(-1).UTC()).
		MustPut("arr", []any{"x", nil}).
		MustPut("mapS", map[any]any{"pi": math.Pi, "": -0.5}).
		MustPut("mapI", map[any]any{int64(-5): []any{int8(1)}, int64(9): []any{}}).
		MustPut("inner", connect.NewStruct(innerD).MustPut("a", int16(4)).MustPut("b", []byte{})).
		MustPut("def", "set")
	sparse := connect.NewStruct(everything).
		MustPut("i8", int8(0)).MustPut("i16", int16(0)).MustPut("i32", int32(0)).MustPut("i64", int64(0)).
		MustPut("f32", float32(0)).MustPut("f64", math.Inf(1)).MustPut("bool", false).MustPut("str", "").
		MustPut("dec", dec(0, 3)).MustPut("time", time.UnixMilli(0).UTC()).MustPut("ts", time.UnixMilli(0).UTC()).
		MustPut("arr", []any{}).MustPut("mapS", map[any]any{}).MustPut("mapI", map[any]any{}).
		// An unset struct field would read back as a struct of the field's
		// schema, not of the default's: set it (Kafka behaves the same).
		MustPut("inner", connect.NewStruct(innerD).MustPut("b", []byte{9}))
	big1 := connect.Decimal{Unscaled: new(big.Int).Lsh(big.NewInt(-3), 100), Scale: 10}

	tests := []struct {
		name   string
		schema *connect.Schema
		value  any
	}{
		{"everything", everything, full},
		{"sparse with defaults", everything, sparse},
		{"optional null", everything.AsOptional(), nil},
		{"big decimal", connect.DecimalSchema(10), big1},
		{"decimal negative scale", connect.DecimalSchema(-2), dec(15, -2)},
		{"array of structs", connect.ArrayOf(inner), []any{connect.NewStruct(inner).MustPut("b", []byte("x"))}},
		{"map of maps", connect.MapOf(connect.StringSchema, connect.MapOf(connect.Int32Schema, connect.BooleanSchema)),
			map[any]any{"a": map[any]any{int32(1): true}}},
		{"float32 small", connect.Float32Schema, float32(1.4e-45)},
		{"float64 NaN-free extremes", connect.ArrayOf(connect.Float64Schema), []any{math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1), 1e7, 9999999.0, 0.001, 0.000999}},
		{"schemaless", nil, map[string]any{"a": []any{int64(1), 2.5, "s", nil, true, map[string]any{}}}},
	}
	for _, format := range []string{"BASE64", "NUMERIC"} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				c := mustJSON(t, map[string]string{"decimal.format": format})
				data, err := c.FromConnect("topic", tt.schema, tt.value)
				if err != nil {
					t.Fatal(err)
				}
				s, v, err := c.ToConnect("topic", data)
				if err != nil {
					t.Fatalf("%v\n%s", err, data)
				}
				if !s.Equal(tt.schema) {
					t.Fatalf("schema %v, want %v\n%s", s, tt.schema, data)
				}
				want := tt.value
				if !connect.ValuesEqual(v, want) {
					t.Fatalf("value %v, want %v\n%s", v, want, data)
				}
				// Re-encoding what we decoded gives the same bytes.
				again, err := c.FromConnect("topic", s, v)
				if err != nil || string(again) != string(data) {
					t.Fatalf("re-encoded differs: %v\n%s\n%s", err, again, data)
				}
			})
		}
	}
}

func TestJSONNaNRoundTrip(t *testing.T) {
	c := NewJSON()
	data, err := c.FromConnect("t", connect.ArrayOf(connect.Float32Schema), []any{float32(math.NaN()), float32(math.Inf(1))})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"schema":{"type":"array","items":{"type":"float","optional":false},"optional":false},"payload":["NaN","Infinity"]}`; string(data) != want {
		t.Fatalf("got %s", data)
	}
	_, v, err := c.ToConnect("t", data)
	if err != nil {
		t.Fatal(err)
	}
	a := v.([]any)
	if !math.IsNaN(float64(a[0].(float32))) || !math.IsInf(float64(a[1].(float32)), 1) {
		t.Fatalf("got %v", a)
	}
}

func TestJSONErrors(t *testing.T) {
	s := connect.StructOf("", connect.F("a", connect.Int32Schema))
	fromTests := []struct {
		name   string
		cfg    map[string]string
		schema *connect.Schema
		value  any
		want   string
	}{
		// mismatchSchemaJson
		{"mismatch", nil, connect.Float64Schema, true, "Invalid type for FLOAT64: bool"},
		{"required null", nil, connect.Int32Schema, nil, "null value for field that is required"},
		{"struct missing required field", nil, s, connect.NewStruct(s), `field "a"`},
		{"struct schema mismatch", nil, connect.StructOf("", connect.F("a", connect.Int64Schema)), connect.NewStruct(s), "Mismatching schema"},
		{"decimal scale mismatch", nil, connect.DecimalSchema(2), dec(1, 3), "mismatching scale"},
		// decimalToJsonWithoutSchema
		{"decimal without schema", nil, nil, dec(156, 2), "does not have corresponding schema type"},
		{"date with time of day", nil, connect.DateSchema(), time.UnixMilli(5), "should not have any time fields"},
		{"time with a date", nil, connect.TimeSchema(), time.UnixMilli(millisPerDay), "should not have any date fields"},
		{"int for int32", nil, connect.Int32Schema, 5, "Invalid type for INT32: int"},
		{"struct without schema", nil, nil, connect.NewStruct(s).MustPut("a", int32(1)), "needs its schema"},
	}
	for _, tt := range fromTests {
		t.Run("FromConnect/"+tt.name, func(t *testing.T) {
			_, err := mustJSON(t, tt.cfg).FromConnect("topic", tt.schema, tt.value)
			if err == nil || !errors.Is(err, ErrData) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrData containing %q", err, tt.want)
			}
		})
	}

	toTests := []struct {
		name string
		cfg  map[string]string
		in   string
		want string
	}{
		{"invalid JSON", nil, `{"schema":`, "invalid JSON"},
		{"invalid JSON schemaless", map[string]string{"schemas.enable": "false"}, `{"a":tru}`, "invalid JSON"},
		{"trailing garbage", map[string]string{"schemas.enable": "false"}, `{} x`, "unexpected data after"},
		{"extra field", nil, `{"schema":null,"payload":1,"extra":2}`, envelopeError},
		{"missing payload", nil, `{"schema":null}`, envelopeError},
		{"plain JSON with schemas", nil, `{"a":1}`, envelopeError},
		{"not an object", nil, `[1]`, envelopeError},
		{"empty with schemas", nil, ``, envelopeError},
		{"schema without type", nil, `{"schema":{},"payload":1}`, "Schema must contain 'type' field"},
		{"unknown type", nil, `{"schema":{"type":"uuid"},"payload":1}`, "Unknown schema type: uuid"},
		{"array without items", nil, `{"schema":{"type":"array"},"payload":[]}`, "did not specify the element type"},
		{"bad params", nil, `{"schema":{"type":"int32","parameters":{"a":1}},"payload":1}`, "Schema parameters must have string values."},
		{"duplicate field", nil, `{"schema":{"type":"struct","fields":[{"field":"a","type":"int8"},{"field":"a","type":"int8"}]},"payload":{}}`, "duplication"},
		{"string for int", nil, `{"schema":{"type":"int32"},"payload":"1"}`, "payload does not match the schema"},
		{"fraction for int", nil, `{"schema":{"type":"int32"},"payload":1.5}`, "not an integer"},
		{"int8 overflow", nil, `{"schema":{"type":"int8"},"payload":128}`, "out of range"},
		{"required null", nil, `{"schema":{"type":"string"},"payload":null}`, "Invalid null value for required STRING field"},
		{"missing required field", nil, `{"schema":{"type":"struct","fields":[{"field":"a","type":"int8"}]},"payload":{}}`, "Invalid null value for required INT8 field"},
		{"struct payload not an object", nil, `{"schema":{"type":"struct","fields":[]},"payload":[]}`, "payload does not match the schema"},
		{"map entry not a pair", nil, `{"schema":{"type":"map","keys":{"type":"int8"},"values":{"type":"int8"}},"payload":[[1,2,3]]}`, "expected length 2"},
		{"string map not an object", nil, `{"schema":{"type":"map","keys":{"type":"string"},"values":{"type":"int8"}},"payload":[]}`, "should be encoded as JSON objects"},
		{"bad base64", nil, `{"schema":{"type":"bytes"},"payload":"!!"}`, "Invalid bytes field"},
		{"date not int", nil, `{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Date"},"payload":1.5}`, "should be integer"},
		{"decimal without scale", nil, `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal"},"payload":"AA=="}`, "scale parameter not found"},
		{"invalid utf8", nil, "{\"schema\":null,\"payload\":\"\xff\"}", "invalid UTF-8"},
		{"control char", nil, "{\"schema\":null,\"payload\":\"\x01\"}", "control character"},
		{"leading zero", nil, `{"schema":null,"payload":01}`, "invalid number"},
		{"too deep", map[string]string{"schemas.enable": "false"}, strings.Repeat("[", 2000) + strings.Repeat("]", 2000), "nesting deeper"},
	}
	for _, tt := range toTests {
		t.Run("ToConnect/"+tt.name, func(t *testing.T) {
			_, _, err := mustJSON(t, tt.cfg).ToConnect("topic", []byte(tt.in))
			if err == nil || !errors.Is(err, ErrData) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrData containing %q", err, tt.want)
			}
		})
	}
}

func TestJSONConfigure(t *testing.T) {
	tests := []struct {
		cfg     map[string]string
		wantErr bool
	}{
		{map[string]string{"schemas.enable": " FALSE "}, false},
		{map[string]string{"schemas.enable": "yes"}, true},
		{map[string]string{"decimal.format": "numeric"}, false},
		{map[string]string{"decimal.format": "hex"}, true},
		{map[string]string{"schemas.cache.size": "10"}, false},
		{map[string]string{"schemas.cache.size": "ten"}, true},
		{map[string]string{"replace.null.with.default": "true"}, false},
		{map[string]string{"replace.null.with.default": "false"}, true},
		{map[string]string{"schema.content": "{}"}, true},
		{map[string]string{"some.unknown.key": "x"}, false},
	}
	for _, tt := range tests {
		err := NewJSON().Configure(tt.cfg, true)
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("Configure(%v) = %v, wantErr %v", tt.cfg, err, tt.wantErr)
		}
	}
}

// TestJSONSchemaCacheBounded: the caches never grow past schemas.cache.size.
func TestJSONSchemaCacheBounded(t *testing.T) {
	c := mustJSON(t, map[string]string{"schemas.cache.size": "3"})
	for i := 0; i < 10; i++ {
		s := connect.StructOf("", connect.F(strings.Repeat("f", i+1), connect.Int8Schema))
		data, err := c.FromConnect("t", s, connect.NewStruct(s).MustPut(strings.Repeat("f", i+1), int8(1)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ToConnect("t", data); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.toJSONCache) > 3 || len(c.toConnectCache) > 3 {
		t.Fatalf("caches grew to %d and %d entries", len(c.toJSONCache), len(c.toConnectCache))
	}
}

// TestJSONConcurrent runs conversions from many goroutines (run with -race).
func TestJSONConcurrent(t *testing.T) {
	c := mustJSON(t, map[string]string{"schemas.cache.size": "4"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				name := string(rune('a' + (i+g)%6))
				s := connect.StructOf("", connect.F(name, connect.Int32Schema))
				data, err := c.FromConnect("t", s, connect.NewStruct(s).MustPut(name, int32(i)))
				if err != nil {
					errs <- err
					return
				}
				gs, v, err := c.ToConnect("t", data)
				if err != nil {
					errs <- err
					return
				}
				if !gs.Equal(s) || v.(*connect.Struct).Get(name) != int32(i) {
					errs <- errors.New("round trip mismatch")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestJavaFloatFormat(t *testing.T) {
	tests := []struct {
		f    float64
		bits int
		want string
	}{
		{1, 64, "1.0"}, {12.34, 64, "12.34"}, {math.Copysign(0, -1), 64, "-0.0"}, {0, 64, "0.0"},
		{100, 64, "100.0"}, {1e7, 64, "1.0E7"}, {1.2345678e7, 64, "1.2345678E7"}, {9999999, 64, "9999999.0"},
		{0.001, 64, "0.001"}, {0.0001, 64, "1.0E-4"}, {1e21, 64, "1.0E21"}, {123456.789, 64, "123456.789"},
		{math.MaxFloat64, 64, "1.7976931348623157E308"}, {math.SmallestNonzeroFloat64, 64, "4.9E-324"},
		{-1.5e-10, 64, "-1.5E-10"}, {0.1, 64, "0.1"},
		{float64(float32(12.34)), 32, "12.34"}, {float64(float32(math.MaxFloat32)), 32, "3.4028235E38"},
		{float64(float32(1.4e-45)), 32, "1.4E-45"}, {float64(float32(0.1)), 32, "0.1"}, {float64(float32(1e10)), 32, "1.0E10"},
	}
	for _, tt := range tests {
		if got := string(appendJavaFloat(nil, tt.f, tt.bits, true)); got != tt.want {
			t.Errorf("appendJavaFloat(%v, %d) = %s, want %s", tt.f, tt.bits, got, tt.want)
		}
	}
}

func TestBigDecimalString(t *testing.T) {
	tests := []struct {
		d    connect.Decimal
		want string
	}{
		{dec(156, 2), "1.56"}, {dec(15600, 4), "1.5600"}, {dec(-1, 2), "-0.01"}, {dec(0, 0), "0"},
		{dec(0, 3), "0.000"}, {dec(1, -2), "1E+2"}, {dec(123, 10), "1.23E-8"}, {dec(123, 8), "0.00000123"},
		{dec(-123, -3), "-1.23E+5"}, {dec(math.MinInt64, 0), "-9223372036854775808"},
		{connect.Decimal{Unscaled: new(big.Int).Lsh(big.NewInt(1), 70), Scale: 5}, "11805916207174113.03424"},
	}
	for _, tt := range tests {
		if got := string(appendBigDecimal(nil, tt.d)); got != tt.want {
			t.Errorf("appendBigDecimal(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

func TestTwosComplement(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, -256, math.MaxInt64, math.MinInt64} {
		raw := twosComplement(big.NewInt(n))
		if got := fromTwosComplement(raw); got.Int64() != n {
			t.Errorf("%d -> %x -> %v", n, raw, got)
		}
	}
	if got := twosComplement(big.NewInt(156)); string(got) != "\x00\x9c" {
		t.Errorf("156 -> %x, want 009c", got)
	}
}

// FuzzJSONToConnect: decoding arbitrary bytes never panics, and whatever
// decodes re-encodes and decodes to an equal value.
func FuzzJSONToConnect(f *testing.F) {
	for _, s := range []string{
		`{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"field":"a"},{"type":"map","keys":{"type":"int8"},"values":{"type":"string"},"optional":false,"field":"m"}],"optional":false},"payload":{"a":1,"m":[[1,"x"]]}}`,
		`{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},"payload":1.5E3}`,
		`{"schema":null,"payload":{"a":[1,2.5,"\u00e9",null,true]}}`,
		`{"schema":{"type":"array","items":{"type":"double"}},"payload":["NaN",1e308]}`,
	} {
		f.Add([]byte(s))
	}
	c := NewJSON()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, v, err := c.ToConnect("t", data)
		if err != nil {
			return
		}
		out, err := c.FromConnect("t", s, v)
		if err != nil {
			return // e.g. a Date whose default is out of range: Kafka fails too
		}
		s2, v2, err := c.ToConnect("t", out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if !s2.Equal(s) {
			t.Fatalf("schema changed: %v vs %v", s2, s)
		}
		if !floatsAwareEqual(v, v2) {
			t.Fatalf("value changed: %v vs %v (%s)", v, v2, out)
		}
	})
}

// floatsAwareEqual is connect.ValuesEqual with NaN equal to NaN.
func floatsAwareEqual(a, b any) bool {
	switch av := a.(type) {
	case float64:
		bv, ok := b.(float64)
		return ok && (av == bv || (math.IsNaN(av) && math.IsNaN(bv)))
	case float32:
		bv, ok := b.(float32)
		return ok && (av == bv || (av != av && bv != bv))
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !floatsAwareEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			if !floatsAwareEqual(v, bv[k]) {
				return false
			}
		}
		return true
	case map[any]any:
		bv, ok := b.(map[any]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			w, ok := bv[k]
			if !ok || !floatsAwareEqual(v, w) {
				return false
			}
		}
		return true
	case *connect.Struct:
		bv, ok := b.(*connect.Struct)
		if !ok || !av.Schema().Equal(bv.Schema()) {
			return false
		}
		for i := range av.Schema().Fields {
			if !floatsAwareEqual(av.GetByIndex(i), bv.GetByIndex(i)) {
				return false
			}
		}
		return true
	}
	return connect.ValuesEqual(a, b)
}

// TestJSONEnvelopeFieldOrder: the envelope's fields may come in any order,
// duplicates resolve as Jackson resolves them (the last wins), and errors
// come in Kafka's order (an extra field before a bad payload).
func TestJSONEnvelopeFieldOrder(t *testing.T) {
	c := NewJSON()
	tests := []struct {
		in         string
		wantSchema *connect.Schema
		wantValue  any
		wantErr    string
	}{
		{`{"payload":{"a":1},"schema":{"type":"struct","fields":[{"field":"a","type":"int8"}]}}`,
			connect.StructOf("", connect.F("a", connect.Int8Schema)),
			connect.NewStruct(connect.StructOf("", connect.F("a", connect.Int8Schema))).MustPut("a", int8(1)), ""},
		{`{"schema":{"type":"int8"},"payload":1,"payload":2}`, connect.Int8Schema, int8(2), ""},
		{`{"schema":{"type":"string"},"payload":1,"schema":{"type":"int8"}}`, connect.Int8Schema, int8(1), ""},
		{`{"schema":{"type":"int8"},"payload":"x","extra":1}`, nil, nil, envelopeError},
		{`{"schema":{"type":"int8"},"payload":"x"}`, nil, nil, "payload does not match the schema"},
		{`{"schema":{"type":"int8"},"payload":"x",}`, nil, nil, "invalid JSON"},
		{`{"schema":{"type":"nope"},"payload":1,"x":1}`, nil, nil, envelopeError},
		{`{"schema":{"type":"struct","fields":[{"field":"a","type":"int8","optional":true}]},"payload":{"a":1,"a":null,"zzz":[1,{"b":2}]}}`,
			connect.StructOf("", connect.F("a", connect.OptionalInt8Schema)),
			connect.NewStruct(connect.StructOf("", connect.F("a", connect.OptionalInt8Schema))), ""},
	}
	for _, tt := range tests {
		// Twice: the second time the schema comes from the last-schema fast path.
		for range 2 {
			s, v, err := c.ToConnect("t", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%s: err = %v, want %q", tt.in, err, tt.wantErr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", tt.in, err)
			}
			if !s.Equal(tt.wantSchema) || !connect.ValuesEqual(v, tt.wantValue) {
				t.Fatalf("%s: got %v %v", tt.in, s, v)
			}
		}
	}
}
