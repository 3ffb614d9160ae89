package transforms

import (
	"math/big"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Mirrors InsertFieldTest.copySchemaAndInsertConfiguredFields.
func TestInsertFieldWithSchema(t *testing.T) {
	variants(t, "InsertField", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{
			"topic.field": "topic_field!", "partition.field": "partition_field",
			"timestamp.field": "timestamp_field?", "static.field": "instance_id", "static.value": "my-instance-id",
		})
		in := connect.StructOf("name", connect.F("magic", connect.Int64Schema)).WithDoc("doc")
		in.Version = i32p(1)
		v := connect.NewStruct(in).MustPut("magic", int64(42))
		r := sideRec(key, in, v)
		r.Topic, r.Partition, r.Timestamp = "test", i32p(0), time.UnixMilli(1234)
		out := apply(t, tr, r)
		s, got := sideGet(out, key)
		if s.Name != "name" || s.Doc != "doc" || *s.Version != 1 {
			t.Fatalf("schema basics not copied: %s", s)
		}
		checks := []struct {
			field    string
			schema   *connect.Schema
			value    any
			optional bool
		}{
			{"magic", connect.Int64Schema, int64(42), false},
			{"topic_field", connect.StringSchema, "test", false},
			{"partition_field", connect.OptionalInt32Schema, int32(0), true},
			{"timestamp_field", connect.TimestampSchema().AsOptional(), time.UnixMilli(1234), true},
			{"instance_id", connect.OptionalStringSchema, "my-instance-id", true},
		}
		st := got.(*connect.Struct)
		for _, c := range checks {
			f, ok := s.Field(c.field)
			if !ok || !f.Schema.Equal(c.schema) {
				t.Fatalf("field %s schema = %v, want %v", c.field, f.Schema, c.schema)
			}
			wantEqual(t, c.field, st.Get(c.field), c.value)
		}
		mustValid(t, s, got)
		// The derived schema is cached: the same input schema gives the same pointer.
		out2 := apply(t, tr, r)
		if s2, _ := sideGet(out2, key); s2 != s {
			t.Fatal("derived schema not cached")
		}
	})
}

// Mirrors InsertFieldTest.schemalessInsertConfiguredFields.
func TestInsertFieldSchemaless(t *testing.T) {
	variants(t, "InsertField", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{
			"topic.field": "topic_field!", "partition.field": "partition_field",
			"timestamp.field": "timestamp_field?", "static.field": "instance_id", "static.value": "my-instance-id",
		})
		r := sideRec(key, nil, map[string]any{"magic": int64(42)})
		r.Timestamp = time.UnixMilli(1234)
		_, got := sideGet(apply(t, tr, r), key)
		wantEqual(t, "value", got, map[string]any{
			"magic": int64(42), "topic_field": "test", "partition_field": int32(0),
			"timestamp_field": int64(1234), "instance_id": "my-instance-id",
		})
	})
}

// Mirrors InsertFieldTest.insertConfiguredFieldsIntoTombstoneEvent*LeavesValueUnchanged
// and insertIntoNullKeyLeavesRecordUnchanged; topLevelStructRequired.
func TestInsertFieldTombstoneAndErrors(t *testing.T) {
	tr := newT(t, "InsertField$Value", map[string]string{"topic.field": "t"})
	for _, s := range []*connect.Schema{nil, connect.StructOf("s").AsOptional()} {
		r := valueRec(s, nil)
		if out := apply(t, tr, r); out != r {
			t.Fatal("tombstone changed")
		}
	}
	applyErr(t, tr, valueRec(connect.Int32Schema, int32(42)), "struct")
	applyErr(t, tr, valueRec(nil, int64(42)), "map")
	// Offset insertion is only supported for sink records.
	off := newT(t, "InsertField$Value", map[string]string{"offset.field": "off"})
	applyErr(t, off, valueRec(nil, map[string]any{}), "sink")
	sink := &connect.SinkRecord{Record: *valueRec(nil, map[string]any{}), KafkaOffset: 77}
	chain, err := NewChain(map[string]string{"transforms": "i", "transforms.i.type": "InsertField$Value", "transforms.i.offset.field": "off!"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := chain.ApplySink(sink)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "offset", got.Value.(map[string]any)["off"], int64(77))
	if got.KafkaOffset != 77 {
		t.Fatal("sink metadata lost")
	}
	// With a schema: the required offset field is filled.
	s := connect.StructOf("v", connect.F("a", connect.Int32Schema))
	sink = &connect.SinkRecord{Record: *valueRec(s, connect.NewStruct(s).MustPut("a", int32(1))), KafkaOffset: 5}
	got, err = chain.ApplySink(sink)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, got.ValueSchema, got.Value)
	wantEqual(t, "offset", got.Value.(*connect.Struct).Get("off"), int64(5))
	if k := configErrKey(t, "InsertField$Value", map[string]string{"topic.feld": "x"}); k != "topic.feld" {
		t.Fatalf("unknown key error names %q", k)
	}
}

// Mirrors ReplaceFieldTest.schemaless, withSchema, tombstone*, and the
// backwards-compatibility tests for blacklist/whitelist.
func TestReplaceField(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]string
		want map[string]any
	}{
		{"exclude+renames", map[string]string{"exclude": "dont", "renames": "abc:xyz,foo:bar"},
			map[string]any{"xyz": int64(42), "bar": true, "etc": "etc"}},
		{"include", map[string]string{"include": "abc,foo", "renames": "abc:xyz,foo:bar"},
			map[string]any{"xyz": int64(42), "bar": true}},
		{"blacklist (deprecated)", map[string]string{"blacklist": "dont"},
			map[string]any{"abc": int64(42), "foo": true, "etc": "etc"}},
		{"whitelist (deprecated)", map[string]string{"whitelist": "abc"},
			map[string]any{"abc": int64(42)}},
		{"exclude wins over blacklist", map[string]string{"exclude": "etc", "blacklist": "abc"},
			map[string]any{"abc": int64(42), "foo": true, "dont": "whatever"}},
	}
	schema := connect.StructOf("", connect.F("dont", connect.StringSchema), connect.F("abc", connect.Int64Schema),
		connect.F("foo", connect.BooleanSchema), connect.F("etc", connect.StringSchema))
	for _, c := range cases {
		variants(t, "ReplaceField", func(t *testing.T, typ string, key bool) {
			t.Run(c.name, func(t *testing.T) {
				tr := newT(t, typ, c.cfg)
				m := map[string]any{"dont": "whatever", "abc": int64(42), "foo": true, "etc": "etc"}
				_, got := sideGet(apply(t, tr, sideRec(key, nil, m)), key)
				wantEqual(t, "schemaless", got, c.want)
				st := connect.NewStruct(schema).MustPut("dont", "whatever").MustPut("abc", int64(42)).MustPut("foo", true).MustPut("etc", "etc")
				s, gotSt := sideGet(apply(t, tr, sideRec(key, schema, st)), key)
				mustValid(t, s, gotSt)
				if len(s.Fields) != len(c.want) {
					t.Fatalf("schema %s, want %d fields", s, len(c.want))
				}
				for f, v := range c.want {
					wantEqual(t, f, gotSt.(*connect.Struct).Get(f), v)
				}
			})
		})
	}
	tr := newT(t, "ReplaceField$Value", map[string]string{"exclude": "a"})
	for _, s := range []*connect.Schema{nil, schema.AsOptional()} {
		r := valueRec(s, nil)
		if apply(t, tr, r) != r {
			t.Fatal("tombstone changed")
		}
	}
	if k := configErrKey(t, "ReplaceField$Value", map[string]string{"renames": "a:b:c"}); k != "renames" {
		t.Fatalf("bad renames error names %q", k)
	}
}

// Mirrors MaskFieldTest.testSchemaless, testWithSchema, testSchemalessWithReplacement,
// testWithSchemaAndReplacement, testSchemalessUnsupportedReplacementType,
// testReplacementTypeMismatch, testEmptyStringReplacementValue.
func TestMaskField(t *testing.T) {
	dec := connect.Decimal{Unscaled: big.NewInt(42), Scale: 0}
	schema := connect.StructOf("",
		connect.F("magic", connect.Int32Schema), connect.F("bool", connect.BooleanSchema),
		connect.F("byte", connect.Int8Schema), connect.F("short", connect.Int16Schema),
		connect.F("int", connect.Int32Schema), connect.F("long", connect.Int64Schema),
		connect.F("float", connect.Float32Schema), connect.F("double", connect.Float64Schema),
		connect.F("string", connect.StringSchema), connect.F("date", connect.DateSchema()),
		connect.F("decimal", connect.DecimalSchema(0)), connect.F("array", connect.ArrayOf(connect.Int32Schema)),
		connect.F("map", connect.MapOf(connect.StringSchema, connect.StringSchema)),
		connect.F("opt", connect.OptionalStringSchema))
	date := time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)
	vals := map[string]any{"magic": int32(42), "bool": true, "byte": int8(42), "short": int16(42), "int": int32(42),
		"long": int64(42), "float": float32(42), "double": float64(42), "string": "55.121.20.20", "date": date,
		"decimal": dec, "array": []any{int32(1), int32(2)}, "map": map[any]any{"k": "v"}}
	masked := map[string]any{"magic": int32(42), "bool": false, "byte": int8(0), "short": int16(0), "int": int32(0),
		"long": int64(0), "float": float32(0), "double": float64(0), "string": "", "date": time.UnixMilli(0),
		"decimal": connect.Decimal{Unscaled: big.NewInt(0)}, "array": []any{}, "map": map[any]any{}}
	fields := "bool,byte,short,int,long,float,double,string,date,decimal,array,map,opt"
	variants(t, "MaskField", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"fields": fields})
		st := connect.NewStruct(schema)
		for k, v := range vals {
			st.MustPut(k, v)
		}
		s, got := sideGet(apply(t, tr, sideRec(key, schema, st)), key)
		if s != schema {
			t.Fatal("schema changed")
		}
		mustValid(t, s, got)
		for k, v := range masked {
			wantEqual(t, k, got.(*connect.Struct).Get(k), v)
		}
		if got.(*connect.Struct).Get("opt") != nil {
			t.Fatal("null field not left null")
		}
		// Schemaless: the Java map types are []any / map[string]any.
		m := map[string]any{}
		for k, v := range vals {
			m[k] = v
		}
		m["map"] = map[string]any{"k": "v"}
		_, gotM := sideGet(apply(t, tr, sideRec(key, nil, m)), key)
		for k, v := range masked {
			if k == "map" {
				v = map[string]any{}
			}
			wantEqual(t, k, gotM.(map[string]any)[k], v)
		}
	})
	// Replacement values.
	repl := newT(t, "MaskField$Value", map[string]string{"fields": "int,long,double,string,decimal", "replacement": "123"})
	out := apply(t, repl, valueRec(nil, map[string]any{"int": int32(1), "long": int64(2), "double": 1.5, "string": "x", "decimal": dec}))
	wantEqual(t, "replaced", out.Value, map[string]any{"int": int32(123), "long": int64(123), "double": float64(123),
		"string": "123", "decimal": connect.Decimal{Unscaled: big.NewInt(123)}})
	// Decimal fields keep their schema's scale.
	ds := connect.StructOf("", connect.F("d", connect.DecimalSchema(2)))
	dv := connect.NewStruct(ds).MustPut("d", connect.Decimal{Unscaled: big.NewInt(1234), Scale: 2})
	for _, c := range []struct {
		repl string
		want connect.Decimal
	}{{"", connect.Decimal{Unscaled: big.NewInt(0), Scale: 2}}, {"5", connect.Decimal{Unscaled: big.NewInt(500), Scale: 2}},
		{"1.500", connect.Decimal{Unscaled: big.NewInt(150), Scale: 2}}} {
		cfg := map[string]string{"fields": "d"}
		if c.repl != "" {
			cfg["replacement"] = c.repl
		}
		got := apply(t, newT(t, "MaskField$Value", cfg), valueRec(ds, dv)).Value.(*connect.Struct).Get("d").(connect.Decimal)
		if got.Scale != 2 || got.Unscaled.Cmp(c.want.Unscaled) != 0 {
			t.Fatalf("replacement %q: %v (scale %d)", c.repl, got, got.Scale)
		}
	}
	applyErr(t, newT(t, "MaskField$Value", map[string]string{"fields": "d", "replacement": "1.555"}), valueRec(ds, dv), "scale")
	// testSchemalessUnsupportedReplacementType
	applyErr(t, newT(t, "MaskField$Value", map[string]string{"fields": "b", "replacement": "123"}),
		valueRec(nil, map[string]any{"b": true}), "cannot mask")
	applyErr(t, newT(t, "MaskField$Value", map[string]string{"fields": "a", "replacement": "123"}),
		valueRec(nil, map[string]any{"a": []any{int64(1)}}), "cannot mask")
	// testReplacementTypeMismatch
	applyErr(t, newT(t, "MaskField$Value", map[string]string{"fields": "i", "replacement": "foo"}),
		valueRec(nil, map[string]any{"i": int32(1)}), "unable to convert")
	applyErr(t, newT(t, "MaskField$Value", map[string]string{"fields": "i", "replacement": "300"}),
		valueRec(nil, map[string]any{"i": int8(1)}), "unable to convert")
	// testEmptyStringReplacementValue, and the required non-empty fields list.
	if k := configErrKey(t, "MaskField$Value", map[string]string{"fields": "a", "replacement": ""}); k != "replacement" {
		t.Fatal(k)
	}
	if k := configErrKey(t, "MaskField$Value", map[string]string{"fields": ""}); k != "fields" {
		t.Fatal(k)
	}
	if k := configErrKey(t, "MaskField$Value", map[string]string{}); k != "fields" {
		t.Fatal(k)
	}
}

// Mirrors ValueToKeyTest.schemaless, withSchema, nonExistingField.
func TestValueToKey(t *testing.T) {
	tr := newT(t, "org.apache.kafka.connect.transforms.ValueToKey", map[string]string{"fields": "a,b"})
	out := apply(t, tr, valueRec(nil, map[string]any{"a": int64(1), "b": int64(2), "c": int64(3)}))
	wantEqual(t, "key", out.Key, map[string]any{"a": int64(1), "b": int64(2)})
	if out.KeySchema != nil {
		t.Fatal("schemaless key got a schema")
	}
	vs := connect.StructOf("", connect.F("a", connect.Int32Schema), connect.F("b", connect.Int32Schema), connect.F("c", connect.Int32Schema))
	v := connect.NewStruct(vs).MustPut("a", int32(1)).MustPut("b", int32(2)).MustPut("c", int32(3))
	out = apply(t, tr, valueRec(vs, v))
	wantKS := connect.StructOf("", connect.F("a", connect.Int32Schema), connect.F("b", connect.Int32Schema))
	if !out.KeySchema.Equal(wantKS) {
		t.Fatalf("key schema %s", out.KeySchema)
	}
	wantEqual(t, "key", out.Key, connect.NewStruct(wantKS).MustPut("a", int32(1)).MustPut("b", int32(2)))
	if out.Value != v || out.ValueSchema != vs {
		t.Fatal("value changed")
	}
	mustValid(t, out.KeySchema, out.Key)
	bad := newT(t, "ValueToKey", map[string]string{"fields": "not_exist"})
	applyErr(t, bad, valueRec(vs, v), "field does not exist")
	if k := configErrKey(t, "ValueToKey", map[string]string{}); k != "fields" {
		t.Fatal(k)
	}
}

// Mirrors ExtractFieldTest.schemaless, testNullSchemaless, withSchema,
// testNullWithSchema, nonExistentFieldSchemalessShouldReturnNull,
// nonExistentFieldWithSchemaShouldFail.
func TestExtractField(t *testing.T) {
	variants(t, "ExtractField", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"field": "magic"})
		s, got := sideGet(apply(t, tr, sideRec(key, nil, map[string]any{"magic": int64(42)})), key)
		if s != nil || got != int64(42) {
			t.Fatalf("schemaless: %v %v", s, got)
		}
		_, got = sideGet(apply(t, tr, sideRec(key, nil, nil)), key)
		if got != nil {
			t.Fatal("null schemaless")
		}
		_, got = sideGet(apply(t, tr, sideRec(key, nil, map[string]any{"other": int64(1)})), key)
		if got != nil {
			t.Fatal("missing schemaless field should give null")
		}
		in := connect.StructOf("", connect.F("magic", connect.Int32Schema))
		s, got = sideGet(apply(t, tr, sideRec(key, in, connect.NewStruct(in).MustPut("magic", int32(42)))), key)
		if s != connect.Int32Schema || got != int32(42) {
			t.Fatalf("with schema: %v %v", s, got)
		}
		s, got = sideGet(apply(t, tr, sideRec(key, in.AsOptional(), nil)), key)
		if s != connect.Int32Schema || got != nil {
			t.Fatalf("null with schema: %v %v", s, got)
		}
		other := connect.StructOf("", connect.F("x", connect.Int32Schema))
		applyErr(t, tr, sideRec(key, other, connect.NewStruct(other).MustPut("x", int32(1))), "unknown field")
	})
	if k := configErrKey(t, "ExtractField$Value", map[string]string{"field": "a.b", "field.syntax.version": "V2"}); k != "field.syntax.version" {
		t.Fatal(k)
	}
	newT(t, "ExtractField$Value", map[string]string{"field": "a", "field.syntax.version": "V1"})
	if k := configErrKey(t, "ExtractField$Key", map[string]string{}); k != "field" {
		t.Fatal(k)
	}
}

// Mirrors HoistFieldTest.schemaless, withSchema.
func TestHoistField(t *testing.T) {
	variants(t, "HoistField", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"field": "magic"})
		_, got := sideGet(apply(t, tr, sideRec(key, nil, int64(42))), key)
		wantEqual(t, "schemaless", got, map[string]any{"magic": int64(42)})
		s, got := sideGet(apply(t, tr, sideRec(key, connect.Int32Schema, int32(42))), key)
		want := connect.StructOf("", connect.F("magic", connect.Int32Schema))
		if !s.Equal(want) {
			t.Fatalf("schema %s", s)
		}
		wantEqual(t, "with schema", got, connect.NewStruct(want).MustPut("magic", int32(42)))
		mustValid(t, s, got)
	})
}
