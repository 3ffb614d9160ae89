package transforms

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Mirrors CastTest.testConfigEmpty, testConfigInvalidSchemaType,
// testConfigInvalidTargetType, testUnsupportedTargetType, testConfigInvalidMap,
// testConfigMixWholeAndFieldTransformation.
func TestCastConfigErrors(t *testing.T) {
	for _, spec := range []string{"", "foo:faketype", "foo:array", "array", "foo:bytes", "foo:int8:extra", "foo:int8,int32"} {
		if k := configErrKey(t, "Cast$Value", map[string]string{"spec": spec}); k != "spec" {
			t.Fatalf("spec %q: error names %q", spec, k)
		}
	}
	if k := configErrKey(t, "Cast$Value", map[string]string{}); k != "spec" {
		t.Fatal(k)
	}
	newT(t, "Cast$Value", map[string]string{"spec": "a:INT8, b : Float64"}) // case and spaces as Kafka accepts
}

// Mirrors CastTest.castWholeRecordKeyWithSchema, castWholeRecordValueWithSchema{Int8,...,String},
// castWholeRecordValueWithSchemaBooleanFalse, castWholeRecordValueSchemaless*.
func TestCastWholeValue(t *testing.T) {
	cases := []struct {
		spec   string
		in     any
		schema *connect.Schema
		want   any
	}{
		{"int8", int32(42), connect.Int32Schema, int8(42)},
		{"int16", int32(42), connect.Int32Schema, int16(42)},
		{"int32", int32(42), connect.Int32Schema, int32(42)},
		{"int64", int32(42), connect.Int32Schema, int64(42)},
		{"float32", int32(42), connect.Int32Schema, float32(42)},
		{"float64", int32(42), connect.Int32Schema, float64(42)},
		{"boolean", int32(42), connect.Int32Schema, true},
		{"boolean", int32(0), connect.Int32Schema, false},
		{"string", int32(42), connect.Int32Schema, "42"},
		// Java conversions: wrapping, truncation toward zero, saturation, parsing.
		{"int8", int64(300), connect.Int64Schema, int8(44)},
		{"int32", float64(-3.9), connect.Float64Schema, int32(-3)},
		{"int32", float64(1e20), connect.Float64Schema, int32(math.MaxInt32)},
		{"int8", float64(1e20), connect.Float64Schema, int8(-1)}, // (byte)(int)1e20
		{"int64", math.NaN(), connect.Float64Schema, int64(0)},
		{"boolean", float64(0.5), connect.Float64Schema, false}, // longValue() != 0
		{"int32", "-17", connect.StringSchema, int32(-17)},
		{"boolean", "TRUE", connect.StringSchema, true},
		{"boolean", "yes", connect.StringSchema, false},
		{"float64", " 1.5 ", connect.StringSchema, 1.5},
		{"int8", true, connect.BooleanSchema, int8(1)},
		{"string", float64(1), connect.Float64Schema, "1.0"},
		{"string", float64(1.5e10), connect.Float64Schema, "1.5E10"},
		{"string", float32(0.0001), connect.Float32Schema, "1.0E-4"},
		{"string", []byte("hi"), connect.BytesSchema, "aGk="},
	}
	for _, c := range cases {
		variants(t, "Cast", func(t *testing.T, typ string, key bool) {
			tr := newT(t, typ, map[string]string{"spec": c.spec})
			s, got := sideGet(apply(t, tr, sideRec(key, c.schema, c.in)), key)
			wantEqual(t, c.spec, got, c.want)
			mustValid(t, s, got)
			if s.Optional || s.Type == c.schema.Type && c.spec != "int32" && c.spec != "string" {
				t.Fatalf("schema %s", s)
			}
			// Schemaless, except the inputs whose Go type Kafka infers the same way.
			_, got = sideGet(apply(t, tr, sideRec(key, nil, c.in)), key)
			wantEqual(t, c.spec+" schemaless", got, c.want)
		})
	}
	tr := newT(t, "Cast$Value", map[string]string{"spec": "int8"})
	for _, in := range []any{"300", "x"} {
		applyErr(t, tr, valueRec(connect.StringSchema, in), "out of range")
	}
	applyErr(t, tr, valueRec(connect.BytesSchema, []byte{1}), "unexpected type")
	applyErr(t, tr, valueRec(connect.DecimalSchema(1<<30), connect.Decimal{Unscaled: big.NewInt(1), Scale: 1 << 30}), "scale")
	applyErr(t, tr, valueRec(nil, []any{}), "does not support casting from array")
	applyErr(t, tr, valueRec(nil, time.Now()), "not supported")
	// A null value passes unchanged.
	r := valueRec(connect.OptionalInt32Schema, nil)
	if apply(t, tr, r) != r {
		t.Fatal("null value changed")
	}
}

// Mirrors CastTest.castWholeRecordDefaultValue: optionality and the default are cast too.
func TestCastWholeRecordDefaultValue(t *testing.T) {
	in, err := connect.OptionalInt32Schema.WithDefault(int32(42))
	if err != nil {
		t.Fatal(err)
	}
	in = in.WithName("my.int", nil)
	out := apply(t, newT(t, "Cast$Value", map[string]string{"spec": "int8"}), valueRec(in, int32(42)))
	if out.ValueSchema.Type != connect.Int8 || !out.ValueSchema.Optional || out.ValueSchema.Default != int8(42) || out.ValueSchema.Name != "my.int" {
		t.Fatalf("schema %+v", out.ValueSchema)
	}
}

// Mirrors CastTest.castFieldsWithSchema and castFieldsSchemaless, plus
// Decimal and logical types (castLogicalToPrimitive, castLogicalToString).
func TestCastFields(t *testing.T) {
	spec := "int8:int16,int16:int32,int32:int64,int64:boolean,float32:float64,float64:boolean,boolean:int8,string:int32,bigdecimal:string,bigdecimal2:int32,bigdecimal3:float64,timestamp:string,date:int32,time:string,optional:int32"
	optDefault, _ := connect.OptionalInt32Schema.WithDefault(int32(7))
	schema := connect.StructOf("x",
		connect.F("int8", connect.Int8Schema), connect.F("int16", connect.Int16Schema), connect.F("int32", connect.Int32Schema),
		connect.F("int64", connect.Int64Schema), connect.F("float32", connect.Float32Schema), connect.F("float64", connect.Float64Schema),
		connect.F("boolean", connect.BooleanSchema), connect.F("string", connect.StringSchema),
		connect.F("bigdecimal", connect.DecimalSchema(2)), connect.F("bigdecimal2", connect.DecimalSchema(2)),
		connect.F("bigdecimal3", connect.DecimalSchema(2)),
		connect.F("timestamp", connect.TimestampSchema()), connect.F("date", connect.DateSchema()),
		connect.F("time", connect.TimeSchema()), connect.F("optional", connect.OptionalFloat32Schema),
		connect.F("withdefault", optDefault), connect.F("untouched", connect.StringSchema))
	d := func(u int64) connect.Decimal { return connect.Decimal{Unscaled: big.NewInt(u), Scale: 2} }
	v := connect.NewStruct(schema).MustPut("int8", int8(8)).MustPut("int16", int16(16)).MustPut("int32", int32(32)).
		MustPut("int64", int64(64)).MustPut("float32", float32(32)).MustPut("float64", float64(-64)).
		MustPut("boolean", true).MustPut("string", "42").MustPut("bigdecimal", d(4200)).
		MustPut("bigdecimal2", d(-1275)).MustPut("bigdecimal3", d(1275)).
		MustPut("timestamp", time.UnixMilli(86400000+1500)).MustPut("date", time.UnixMilli(2*86400000)).
		MustPut("time", time.UnixMilli(3723004)).MustPut("untouched", "u")
	variants(t, "Cast", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"spec": spec})
		s, got := sideGet(apply(t, tr, sideRec(key, schema, v)), key)
		mustValid(t, s, got)
		want := map[string]any{"int8": int16(8), "int16": int32(16), "int32": int64(32), "int64": true,
			"float32": float64(32), "float64": true, "boolean": int8(1), "string": int32(42),
			"bigdecimal": "42.00", "bigdecimal2": int32(-12), "bigdecimal3": 12.75,
			"timestamp": "1970-01-02T00:00:01.500Z", "date": int32(2), "time": "01:02:03.004",
			"optional": nil, "withdefault": int32(7), "untouched": "u"}
		st := got.(*connect.Struct)
		for f, w := range want {
			wantEqual(t, f, st.Get(f), w)
		}
		if f, _ := s.Field("optional"); !f.Schema.Optional || f.Schema.Type != connect.Int32 {
			t.Fatalf("optional field schema %s", f.Schema)
		}
		if s.Name != "x" {
			t.Fatal("struct name not kept")
		}
	})
	// Schemaless: missing fields are put as null, as Kafka does.
	tr := newT(t, "Cast$Value", map[string]string{"spec": "int8:int16,int16:int32,int32:int64,int64:boolean,float32:float64,float64:boolean,boolean:int8,string:int32,missing:int8"})
	out := apply(t, tr, valueRec(nil, map[string]any{"int8": int8(8), "int16": int16(16), "int32": int32(32),
		"int64": int64(64), "float32": float32(32), "float64": float64(-64), "boolean": true, "string": "42", "other": "o"}))
	wantEqual(t, "schemaless", out.Value, map[string]any{"int8": int16(8), "int16": int32(16), "int32": int64(32),
		"int64": true, "float32": float64(32), "float64": true, "boolean": int8(1), "string": int32(42), "other": "o", "missing": nil})
}

func TestJavaDecimalString(t *testing.T) {
	for _, c := range []struct {
		u     int64
		scale int32
		want  string
	}{{123, 2, "1.23"}, {-123, 0, "-123"}, {1, 7, "1E-7"}, {123, -2, "1.23E+4"}, {1, 6, "0.000001"}, {0, 2, "0.00"}} {
		if got := javaBigDecimalString(connect.Decimal{Unscaled: big.NewInt(c.u), Scale: c.scale}); got != c.want {
			t.Errorf("%d scale %d = %q, want %q", c.u, c.scale, got, c.want)
		}
	}
}
