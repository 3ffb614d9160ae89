package transforms

import (
	"testing"

	"github.com/tributary-data/tributary/connect"
)

// Mirrors FlattenTest.topLevelStructRequired, topLevelMapRequired.
func TestFlattenTopLevelRequired(t *testing.T) {
	tr := newT(t, "Flatten$Value", nil)
	applyErr(t, tr, valueRec(connect.Int32Schema, int32(42)), "struct")
	applyErr(t, tr, valueRec(nil, int64(42)), "map")
}

// Mirrors FlattenTest.testNestedStruct and testKey (delimiter "#").
func TestFlattenNestedStruct(t *testing.T) {
	supported := connect.StructOf("",
		connect.F("int8", connect.Int8Schema), connect.F("int16", connect.Int16Schema), connect.F("int32", connect.Int32Schema),
		connect.F("int64", connect.Int64Schema), connect.F("float32", connect.Float32Schema), connect.F("float64", connect.Float64Schema),
		connect.F("boolean", connect.BooleanSchema), connect.F("string", connect.StringSchema), connect.F("bytes", connect.BytesSchema))
	b := connect.StructOf("", connect.F("B", supported))
	a := connect.StructOf("", connect.F("A", b))
	sv := connect.NewStruct(supported).MustPut("int8", int8(8)).MustPut("int16", int16(16)).MustPut("int32", int32(32)).
		MustPut("int64", int64(64)).MustPut("float32", float32(32)).MustPut("float64", float64(64)).
		MustPut("boolean", true).MustPut("string", "stringy").MustPut("bytes", []byte("bytes"))
	v := connect.NewStruct(a).MustPut("A", connect.NewStruct(b).MustPut("B", sv))
	variants(t, "Flatten", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"delimiter": "#"})
		s, got := sideGet(apply(t, tr, sideRec(key, a, v)), key)
		mustValid(t, s, got)
		if len(s.Fields) != 9 {
			t.Fatalf("schema %s", s)
		}
		st := got.(*connect.Struct)
		wantEqual(t, "int8", st.Get("A#B#int8"), int8(8))
		wantEqual(t, "bytes", st.Get("A#B#bytes"), []byte("bytes"))
		wantEqual(t, "string", st.Get("A#B#string"), "stringy")
	})
}

// Mirrors FlattenTest.testNestedMapWithDelimiter, testOptionalFieldMap,
// testMapWithNullFields, testSchemalessArray.
func TestFlattenSchemaless(t *testing.T) {
	variants(t, "Flatten", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"delimiter": "#"})
		in := map[string]any{"A": map[string]any{"B": map[string]any{"int8": int8(8), "string": "s", "null": nil,
			"array": []any{int64(1)}}}, "top": int64(1)}
		_, got := sideGet(apply(t, tr, sideRec(key, nil, in)), key)
		wantEqual(t, "flat", got, map[string]any{"A#B#int8": int8(8), "A#B#string": "s", "A#B#null": nil,
			"A#B#array": []any{int64(1)}, "top": int64(1)})
	})
}

// Mirrors FlattenTest.testOptionalStruct, testOptionalNestedStruct,
// testOptionalFieldStruct, testStructWithNullField and the tombstone tests.
func TestFlattenOptional(t *testing.T) {
	tr := newT(t, "Flatten$Value", nil)
	for _, s := range []*connect.Schema{nil, connect.StructOf("s").AsOptional()} {
		r := valueRec(s, nil)
		if apply(t, tr, r) != r {
			t.Fatal("tombstone changed")
		}
	}
	inner := connect.StructOf("", connect.F("opt_int32", connect.OptionalInt32Schema), connect.F("req", connect.StringSchema)).AsOptional()
	outer := connect.StructOf("", connect.F("B", inner), connect.F("x", connect.Int32Schema))
	out := apply(t, tr, valueRec(outer, connect.NewStruct(outer).MustPut("x", int32(1))))
	mustValid(t, out.ValueSchema, out.Value)
	for _, n := range []string{"B.opt_int32", "B.req"} {
		f, ok := out.ValueSchema.Field(n)
		if !ok || !f.Schema.Optional {
			t.Fatalf("%s should be optional (parent optional): %s", n, out.ValueSchema)
		}
		if out.Value.(*connect.Struct).Get(n) != nil {
			t.Fatalf("%s should be null", n)
		}
	}
	// A present nested struct.
	nv := connect.NewStruct(inner).MustPut("req", "r")
	out = apply(t, tr, valueRec(outer, connect.NewStruct(outer).MustPut("x", int32(1)).MustPut("B", nv)))
	wantEqual(t, "B.req", out.Value.(*connect.Struct).Get("B.req"), "r")
}

// Mirrors FlattenTest.testOptionalAndDefaultValuesNested and testArrayWithSchema.
func TestFlattenDefaultsAndArrays(t *testing.T) {
	innerOpt := connect.StructOf("", connect.F("req_field", connect.StringSchema), connect.F("opt_field", connect.OptionalStringSchema)).AsOptional()
	defVal := connect.NewStruct(innerOpt).MustPut("req_field", "req_default").MustPut("opt_field", "opt_default")
	inner, err := innerOpt.WithDefault(defVal)
	if err != nil {
		t.Fatal(err)
	}
	outer := connect.StructOf("", connect.F("struct", inner), connect.F("arr", connect.ArrayOf(connect.Int32Schema)),
		connect.F("map", connect.MapOf(connect.StringSchema, connect.Int32Schema)))
	tr := newT(t, "Flatten$Value", nil)
	v := connect.NewStruct(outer).MustPut("arr", []any{int32(1)}).MustPut("map", map[any]any{"a": int32(1)})
	out := apply(t, tr, valueRec(outer, v))
	mustValid(t, out.ValueSchema, out.Value)
	f, _ := out.ValueSchema.Field("struct.req_field")
	if !f.Schema.Optional || f.Schema.Default != "req_default" {
		t.Fatalf("struct.req_field schema %+v", f.Schema)
	}
	f, _ = out.ValueSchema.Field("struct.opt_field")
	if !f.Schema.Optional || f.Schema.Default != "opt_default" {
		t.Fatalf("struct.opt_field schema %+v", f.Schema)
	}
	st := out.Value.(*connect.Struct)
	wantEqual(t, "default via schema", st.Get("struct.req_field"), "req_default")
	wantEqual(t, "arr", st.Get("arr"), []any{int32(1)})
	wantEqual(t, "map", st.Get("map"), map[any]any{"a": int32(1)})
}

func TestFlattenNameCollision(t *testing.T) {
	inner := connect.StructOf("", connect.F("b", connect.Int32Schema))
	s := connect.StructOf("", connect.F("a", inner), connect.F("a.b", connect.Int32Schema))
	v := connect.NewStruct(s).MustPut("a", connect.NewStruct(inner).MustPut("b", int32(1))).MustPut("a.b", int32(2))
	applyErr(t, newT(t, "Flatten$Value", nil), valueRec(s, v), "duplication")
}

// Mirrors FlattenTest.testOptionalAndDefaultValuesNested (top-level optional
// struct with a default), testStructWithNullFields and testArrayWithSchema.
func TestFlattenKafkaDefaultsCase(t *testing.T) {
	optDef, err := connect.OptionalStringSchema.WithDefault("child_default")
	if err != nil {
		t.Fatal(err)
	}
	base := connect.StructOf("", connect.F("req_field", connect.StringSchema), connect.F("opt_field", optDef)).AsOptional()
	def := connect.NewStruct(base).MustPut("req_field", "req_default")
	schema, err := base.WithDefault(def)
	if err != nil {
		t.Fatal(err)
	}
	tr := newT(t, "Flatten$Value", nil)
	out := apply(t, tr, valueRec(schema, connect.NewStruct(schema))) // intentionally empty
	reqWant, _ := connect.OptionalStringSchema.WithDefault("req_default")
	if f, _ := out.ValueSchema.Field("req_field"); !f.Schema.Equal(reqWant) {
		t.Fatalf("req_field schema %+v", f.Schema)
	}
	if f, _ := out.ValueSchema.Field("opt_field"); !f.Schema.Equal(optDef) {
		t.Fatalf("opt_field schema %+v", f.Schema)
	}
	mustValid(t, out.ValueSchema, out.Value)

	nulls := connect.StructOf("", connect.F("firstNull", connect.OptionalStringSchema), connect.F("firstNonNull", connect.OptionalStringSchema))
	v := connect.NewStruct(nulls).MustPut("firstNonNull", "nonNull")
	out = apply(t, tr, valueRec(nulls, v))
	wantEqual(t, "struct with null fields", out.Value, v)

	nested := connect.StructOf("", connect.F("lfg", connect.StringSchema))
	inner := connect.StructOf("", connect.F("baz", nested))
	arr := connect.ArrayOf(inner).WithDoc("durk")
	withArr := connect.StructOf("", connect.F("foo", arr))
	av := connect.NewStruct(withArr).MustPut("foo", []any{connect.NewStruct(inner).MustPut("baz", connect.NewStruct(nested).MustPut("lfg", "lfg"))})
	out = apply(t, tr, valueRec(withArr, av))
	if !out.ValueSchema.Equal(withArr) {
		t.Fatalf("schema %s", out.ValueSchema)
	}
	wantEqual(t, "array value", out.Value, av)
}
