package transforms

import (
	"testing"

	"github.com/tributary-data/tributary/connect"
)

// Mirrors SetSchemaMetadataTest.schemaNameUpdate, schemaVersionUpdate,
// schemaNameAndVersionUpdate, updateSchemaOfStruct, updateSchemaOfNonStruct.
func TestSetSchemaMetadata(t *testing.T) {
	variants(t, "SetSchemaMetadata", func(t *testing.T, typ string, key bool) {
		tr := newT(t, typ, map[string]string{"schema.name": "foo", "schema.version": "42"})
		in := connect.StructOf("old", connect.F("stringField", connect.StringSchema), connect.F("intField", connect.OptionalInt32Schema))
		v := connect.NewStruct(in).MustPut("stringField", "value").MustPut("intField", int32(1))
		s, got := sideGet(apply(t, tr, sideRec(key, in, v)), key)
		if s.Name != "foo" || *s.Version != 42 || len(s.Fields) != 2 {
			t.Fatalf("schema %+v", s)
		}
		mustValid(t, s, got)
		wantEqual(t, "intField", got.(*connect.Struct).Get("intField"), int32(1))
		if in.Name != "old" || in.Version != nil {
			t.Fatal("input schema mutated")
		}
		// Non-struct values keep their value.
		s, got = sideGet(apply(t, tr, sideRec(key, connect.Int32Schema, int32(42))), key)
		if s.Name != "foo" || got != int32(42) {
			t.Fatalf("non-struct: %+v %v", s, got)
		}
		applyErr(t, tr, sideRec(key, nil, map[string]any{}), "schema required")
	})
	nameOnly := newT(t, "SetSchemaMetadata$Value", map[string]string{"schema.name": "foo"})
	if out := apply(t, nameOnly, valueRec(connect.StructOf(""), nil)); out.ValueSchema.Name != "foo" || out.ValueSchema.Version != nil {
		t.Fatalf("schema %+v", out.ValueSchema)
	}
	if k := configErrKey(t, "SetSchemaMetadata$Value", map[string]string{}); k != "schema.name" {
		t.Fatal(k)
	}
	if k := configErrKey(t, "SetSchemaMetadata$Value", map[string]string{"schema.version": "x"}); k != "schema.version" {
		t.Fatal(k)
	}
}

// Mirrors HeaderFromTest's cases: copy and move, with and without schema.
func TestHeaderFrom(t *testing.T) {
	schema := connect.StructOf("s", connect.F("field1", connect.StringSchema), connect.F("field2", connect.Int32Schema), connect.F("keep", connect.StringSchema))
	for _, op := range []string{"copy", "move"} {
		variants(t, "HeaderFrom", func(t *testing.T, typ string, key bool) {
			tr := newT(t, typ, map[string]string{"fields": "field1,field2", "headers": "inserted1,inserted2", "operation": op})
			v := connect.NewStruct(schema).MustPut("field1", "a").MustPut("field2", int32(2)).MustPut("keep", "k")
			r := sideRec(key, schema, v)
			r.Headers = []connect.Header{{Key: "existing", Value: "e"}}
			out := apply(t, tr, r)
			if got := headerKeys(out); len(got) != 3 || got[1] != "inserted1" || got[2] != "inserted2" {
				t.Fatalf("headers %v", got)
			}
			if h := out.Headers[2]; h.Value != int32(2) || h.Schema != connect.Int32Schema {
				t.Fatalf("header %+v", h)
			}
			s, got := sideGet(out, key)
			mustValid(t, s, got)
			if op == "copy" && s != schema || op == "move" && len(s.Fields) != 1 {
				t.Fatalf("%s: schema %s", op, s)
			}
			if len(r.Headers) != 1 {
				t.Fatal("input headers mutated")
			}
			// Schemaless.
			m := map[string]any{"field1": "a", "field2": int64(2), "keep": "k"}
			out = apply(t, tr, sideRec(key, nil, m))
			_, gotM := sideGet(out, key)
			want := map[string]any{"field1": "a", "field2": int64(2), "keep": "k"}
			if op == "move" {
				want = map[string]any{"keep": "k"}
			}
			wantEqual(t, "schemaless", gotM, want)
			if len(m) != 3 || out.Headers[1].Value != int64(2) {
				t.Fatal("schemaless move/copy")
			}
		})
	}
	for _, c := range []struct {
		cfg map[string]string
		key string
	}{
		{map[string]string{"fields": "a,b", "headers": "h", "operation": "copy"}, "headers"},
		{map[string]string{"fields": "a", "headers": "h", "operation": "delete"}, "operation"},
		{map[string]string{"fields": "a", "headers": "h"}, "operation"},
		{map[string]string{"headers": "h", "operation": "copy"}, "fields"},
	} {
		if k := configErrKey(t, "HeaderFrom$Value", c.cfg); k != c.key {
			t.Fatalf("%v: %q", c.cfg, k)
		}
	}
}
