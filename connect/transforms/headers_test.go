package transforms

import (
	"math/big"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

func headerKeys(r *connect.Record) []string {
	var out []string
	for _, h := range r.Headers {
		out = append(out, h.Key)
	}
	return out
}

// Mirrors InsertHeaderTest.insertionWithExistingOtherHeader,
// insertionWithExistingSameHeader, insertionWithByteHeader.
func TestInsertHeader(t *testing.T) {
	tr := newT(t, "InsertHeader", map[string]string{"header": "inserted", "value.literal": "inserted-value"})
	r := valueRec(nil, "v")
	r.Headers = []connect.Header{{Key: "existing", Value: "e"}, {Key: "inserted", Value: "old"}}
	out := apply(t, tr, r)
	if got := headerKeys(out); len(got) != 3 || got[2] != "inserted" {
		t.Fatalf("headers %v", got)
	}
	if h := out.Headers[2]; h.Value != "inserted-value" || h.Schema != connect.StringSchema {
		t.Fatalf("header %+v", h)
	}
	if len(r.Headers) != 2 {
		t.Fatal("input headers mutated")
	}
	literals := []struct {
		lit    string
		schema *connect.Schema
		value  any
	}{
		{"1", connect.Int8Schema, int8(1)},
		{"1.0", connect.Int8Schema, int8(1)},
		{"300", connect.Int16Schema, int16(300)},
		{"-70000", connect.Int32Schema, int32(-70000)},
		{"5000000000", connect.Int64Schema, int64(5000000000)},
		{"1.5", connect.Float32Schema, float32(1.5)},
		{"0.5", connect.Float32Schema, float32(0.5)},
		{"1e3", connect.Int16Schema, int16(1000)},
		{"1e39", connect.Float64Schema, 1e39},
		{"123456789012345678901", connect.DecimalSchema(0), connect.Decimal{Unscaled: mustBig("123456789012345678901")}},
		{"true", connect.BooleanSchema, true},
		{"null", nil, nil},
		{"hello world", connect.StringSchema, "hello world"},
		{".5", connect.StringSchema, ".5"},
		{" 42 ", connect.Int8Schema, int8(42)},
		{" true", connect.StringSchema, " true"},
	}
	for _, c := range literals {
		tr := newT(t, "InsertHeader", map[string]string{"header": "h", "value.literal": c.lit})
		h := apply(t, tr, valueRec(nil, nil)).Headers[0]
		if !h.Schema.Equal(c.schema) || !connect.ValuesEqual(h.Value, c.value) {
			t.Errorf("literal %q: %v %#v, want %v %#v", c.lit, h.Schema, h.Value, c.schema, c.value)
		}
	}
	for _, cfg := range []map[string]string{{"header": "h"}, {"value.literal": "v"}} {
		configErrKey(t, "InsertHeader", cfg)
	}
}

func mustBig(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

// Mirrors DropHeadersTest.dropExistingHeader, dropExistingHeaderWithMultipleValues,
// dropNonExistingHeader, configRejectsEmptyList.
func TestDropHeaders(t *testing.T) {
	tr := newT(t, "DropHeaders", map[string]string{"headers": "dropped, other"})
	r := valueRec(nil, "v")
	r.Headers = []connect.Header{{Key: "dropped", Value: "a"}, {Key: "kept", Value: "b"}, {Key: "dropped", Value: "c"}, {Key: "other"}}
	out := apply(t, tr, r)
	if got := headerKeys(out); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("headers %v", got)
	}
	if len(r.Headers) != 4 || r.Headers[0].Key != "dropped" {
		t.Fatal("input headers mutated")
	}
	r.Headers = []connect.Header{{Key: "kept"}}
	if got := headerKeys(apply(t, tr, r)); len(got) != 1 {
		t.Fatalf("headers %v", got)
	}
	if k := configErrKey(t, "DropHeaders", map[string]string{"headers": ""}); k != "headers" {
		t.Fatal(k)
	}
}

func TestFilter(t *testing.T) {
	if out := apply(t, newT(t, "Filter", nil), valueRec(nil, "v")); out != nil {
		t.Fatal("Filter kept a record")
	}
	if k := configErrKey(t, "Filter", map[string]string{"x": "y"}); k != "x" {
		t.Fatal(k)
	}
}

// Mirrors TopicNameMatchesTest, HasHeaderKeyTest and RecordIsTombstoneTest.
func TestPredicates(t *testing.T) {
	p := NewPredicate("org.apache.kafka.connect.transforms.predicates.TopicNameMatches")
	if err := p.Configure(map[string]string{"pattern": "my-prefix-.*"}); err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{"my-prefix-": true, "my-prefix-foo": true, "x-my-prefix-": false,
		"x-my-prefix-foo": false, "your-prefix-": false, "": false} {
		if got := p.Test(&connect.Record{Topic: topic}); got != want {
			t.Errorf("TopicNameMatches(%q) = %v", topic, got)
		}
	}
	for _, cfg := range []map[string]string{{}, {"pattern": ""}, {"pattern": "["}} {
		if k := configErrKey(t, "TopicNameMatches", cfg); k != "pattern" {
			t.Fatal(k)
		}
	}
	h := NewPredicate("HasHeaderKey")
	if err := h.Configure(map[string]string{"name": "foo"}); err != nil {
		t.Fatal(err)
	}
	if h.Test(&connect.Record{}) || h.Test(&connect.Record{Headers: []connect.Header{{Key: "bar"}}}) ||
		!h.Test(&connect.Record{Headers: []connect.Header{{Key: "bar"}, {Key: "foo"}}}) {
		t.Fatal("HasHeaderKey")
	}
	for _, cfg := range []map[string]string{{}, {"name": ""}} {
		if k := configErrKey(t, "HasHeaderKey", cfg); k != "name" {
			t.Fatal(k)
		}
	}
	ts := NewPredicate("RecordIsTombstone")
	if err := ts.Configure(nil); err != nil {
		t.Fatal(err)
	}
	if !ts.Test(&connect.Record{Key: "k"}) || ts.Test(&connect.Record{Value: "v"}) {
		t.Fatal("RecordIsTombstone")
	}
}
