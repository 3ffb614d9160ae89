package connect

import "testing"

func TestChangeEvents(t *testing.T) {
	row := StructOf("row", F("id", Int32Schema)).AsOptional()
	env := StructOf("env", F("before", row), F("after", row), F("source", StructOf("src", F("lsn", Int64Schema))), F("op", StringSchema))
	after := NewStruct(row).MustPut("id", int32(7))
	src := NewStruct(env.Fields[2].Schema).MustPut("lsn", int64(42))
	var c ChangeEvents
	for i := 0; i < 2; i++ { // the second time from the cache
		e, ok := c.Of(NewStruct(env).MustPut("after", after).MustPut("source", src).MustPut("op", "c"))
		if !ok || e.Op != "c" || e.After != after || e.Before != nil || e.Source != src {
			t.Fatalf("struct event: %+v %v", e, ok)
		}
	}
	// Schemaless JSON.
	e, ok := c.Of(map[string]any{"op": "d", "before": map[string]any{"id": 7.0}, "after": nil})
	if !ok || e.Op != "d" || e.Before == nil || e.After != nil {
		t.Fatalf("schemaless event: %+v %v", e, ok)
	}
	// Not events: a plain row, an object without before, a struct whose
	// "op" is not a string.
	notOp := StructOf("x", F("before", row), F("after", row), F("op", Int32Schema))
	for _, v := range []any{
		NewStruct(row).MustPut("id", int32(1)),
		map[string]any{"op": "c", "after": map[string]any{}},
		NewStruct(notOp).MustPut("op", int32(1)),
		"c",
	} {
		if e, ok := c.Of(v); ok {
			t.Fatalf("%v taken for an event: %+v", v, e)
		}
	}
}
