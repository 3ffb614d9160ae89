package transforms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

func TestNewChainErrors(t *testing.T) {
	cases := []struct {
		name    string
		cfg     map[string]string
		key     string
		message string
	}{
		{"unknown type", map[string]string{"transforms": "route", "transforms.route.type": "Foo"},
			"transforms.route.type", `unknown transformation "Foo"; known: Cast$Key`},
		{"missing type", map[string]string{"transforms": "a"}, "transforms.a.type", "missing"},
		{"predicate as transform", map[string]string{"transforms": "a", "transforms.a.type": "RecordIsTombstone"},
			"transforms.a.type", "is a predicate"},
		{"duplicate alias", map[string]string{"transforms": "a,a", "transforms.a.type": "Filter"}, "transforms", "duplicate"},
		{"option error prefixed", map[string]string{"transforms": "c", "transforms.c.type": "Cast$Value", "transforms.c.spec": "x:nope"},
			"transforms.c.spec", "invalid type"},
		{"missing required option", map[string]string{"transforms": "c", "transforms.c.type": "Cast$Value"},
			"transforms.c.spec", "missing required"},
		{"unknown option", map[string]string{"transforms": "c", "transforms.c.type": "Filter", "transforms.c.foo": "1"},
			"transforms.c.foo", "unknown option"},
		{"undefined predicate", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "p"},
			"transforms.f.predicate", `predicate "p" is not defined`},
		{"predicate not listed", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "p",
			"predicates.p.type": "RecordIsTombstone"}, "transforms.f.predicate", "not defined"},
		{"predicate missing type", map[string]string{"predicates": "p"}, "predicates.p.type", "missing"},
		{"unknown predicate", map[string]string{"predicates": "p", "predicates.p.type": "IsFoo"}, "predicates.p.type", `unknown predicate "IsFoo"`},
		{"predicate option error", map[string]string{"predicates": "p", "predicates.p.type": "TopicNameMatches"},
			"predicates.p.pattern", "missing required"},
		{"bad negate", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.negate": "maybe",
			"transforms.f.predicate": "p", "predicates": "p", "predicates.p.type": "RecordIsTombstone"}, "transforms.f.negate", "true or false"},
		{"negate without predicate", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.negate": "true"},
			"transforms.f.negate", "predicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewChain(c.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Key != c.key || !strings.Contains(err.Error(), c.message) || !strings.HasPrefix(err.Error(), c.key+": ") {
				t.Fatalf("err = %q, want key %q and %q", err, c.key, c.message)
			}
		})
	}
}

func TestChainApply(t *testing.T) {
	empty, err := NewChain(map[string]string{"connector.class": "x"})
	if err != nil || empty.Len() != 0 {
		t.Fatal(err)
	}
	r := valueRec(nil, "v")
	if out, err := empty.Apply(r); err != nil || out != r {
		t.Fatal("empty chain changed the record")
	}
	chain, err := NewChain(map[string]string{
		"transforms":                          "dropTombstones, onlyOrders ,hoist,route",
		"transforms.dropTombstones.type":      "org.apache.kafka.connect.transforms.Filter",
		"transforms.dropTombstones.predicate": "isTombstone",
		"transforms.onlyOrders.type":          "Filter",
		"transforms.onlyOrders.predicate":     "isOrders",
		"transforms.onlyOrders.negate":        "true",
		"transforms.hoist.type":               "HoistField$Value",
		"transforms.hoist.field":              "payload",
		"transforms.route.type":               "RegexRouter",
		"transforms.route.regex":              "orders-(.*)",
		"transforms.route.replacement":        "o-$1",
		"predicates":                          "isTombstone,isOrders",
		"predicates.isTombstone.type":         "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
		"predicates.isOrders.type":            "TopicNameMatches",
		"predicates.isOrders.pattern":         "orders-.*",
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic string
		value any
		want  *connect.Record
	}{
		{"orders-eu", nil, nil}, // tombstone dropped
		{"users", "u", nil},     // negated predicate: not orders, dropped
		{"orders-eu", "x", &connect.Record{Topic: "o-eu", Value: map[string]any{"payload": "x"}}},
	}
	for _, c := range cases {
		r := &connect.Record{Topic: c.topic, Value: c.value}
		out, err := chain.Apply(r)
		if err != nil {
			t.Fatal(err)
		}
		if (out == nil) != (c.want == nil) || out != nil && (out.Topic != c.want.Topic || !connect.ValuesEqual(out.Value, c.want.Value)) {
			t.Fatalf("%s/%v: got %+v, want %+v", c.topic, c.value, out, c.want)
		}
	}
	// Errors name the alias.
	bad, err := NewChain(map[string]string{"transforms": "ts", "transforms.ts.type": "TimestampRouter"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Apply(valueRec(nil, "v")); err == nil || !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "transforms.ts (TimestampRouter)") {
		t.Fatalf("err = %v", err)
	}
	if len(Known()) != len(transformationNames())+len(predicateNames()) {
		t.Fatal("Known")
	}
	for _, n := range Known() {
		if NewTransformation(n) == nil && NewPredicate(n) == nil {
			t.Fatalf("Known name %q not constructible", n)
		}
	}
}

// Aliases that extend one another ("a" and "a.b") keep their keys apart,
// and ApplySink fills the partition from the Kafka partition.
func TestChainAliasPrefixesAndSinkPartition(t *testing.T) {
	chain, err := NewChain(map[string]string{
		"transforms":                   "a,a.b",
		"transforms.a.type":            "InsertField$Value",
		"transforms.a.partition.field": "p",
		"transforms.a.offset.field":    "o",
		"transforms.a.b.type":          "HoistField$Value",
		"transforms.a.b.field":         "wrapped",
	})
	if err != nil {
		t.Fatal(err)
	}
	in := &connect.SinkRecord{Record: connect.Record{Topic: "t", Value: map[string]any{}}, KafkaPartition: 4, KafkaOffset: 9, TimestampType: connect.LogAppendTime}
	out, err := chain.ApplySink(in)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "value", out.Value, map[string]any{"wrapped": map[string]any{"p": int32(4), "o": int64(9)}})
	if out.KafkaPartition != 4 || out.KafkaOffset != 9 || out.TimestampType != connect.LogAppendTime || in.Partition != nil {
		t.Fatalf("sink metadata: %+v", out)
	}
}

// testRecord builds a fresh record with schema'd or schemaless key and
// value; calling it twice gives equal but unshared records.
func testRecord(schemaless bool) *connect.Record {
	r := &connect.Record{Topic: "orders-1", Partition: i32p(3), Timestamp: time.UnixMilli(1700000000123),
		Headers: []connect.Header{{Key: "h1", Schema: connect.StringSchema, Value: "a"}, {Key: "h2", Value: "b"}}}
	if schemaless {
		r.Key = map[string]any{"id": int64(1)}
		r.Value = map[string]any{"id": int64(1), "name": "n", "nested": map[string]any{"x": int64(2)}, "amount": "12"}
		return r
	}
	ks := connect.StructOf("k", connect.F("id", connect.Int64Schema))
	nested := connect.StructOf("n", connect.F("x", connect.Int32Schema))
	vs := connect.StructOf("v", connect.F("id", connect.Int64Schema), connect.F("name", connect.StringSchema),
		connect.F("nested", nested), connect.F("amount", connect.StringSchema))
	r.KeySchema, r.Key = ks, connect.NewStruct(ks).MustPut("id", int64(1))
	r.ValueSchema = vs
	r.Value = connect.NewStruct(vs).MustPut("id", int64(1)).MustPut("name", "n").
		MustPut("nested", connect.NewStruct(nested).MustPut("x", int32(2))).MustPut("amount", "12")
	return r
}

func recordsEqual(a, b *connect.Record) bool {
	if a.Topic != b.Topic || *a.Partition != *b.Partition || !a.Timestamp.Equal(b.Timestamp) ||
		!a.KeySchema.Equal(b.KeySchema) || !a.ValueSchema.Equal(b.ValueSchema) ||
		!connect.ValuesEqual(a.Key, b.Key) || !connect.ValuesEqual(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !connect.ValuesEqual(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// TestApplyDoesNotMutate applies every transformation to schema'd and
// schemaless records and checks the input is unchanged.
func TestApplyDoesNotMutate(t *testing.T) {
	configs := map[string]map[string]string{
		"InsertField":        {"topic.field": "t", "partition.field": "p", "timestamp.field": "ts", "static.field": "s", "static.value": "v"},
		"ReplaceField":       {"exclude": "name", "renames": "id:ident"},
		"MaskField":          {"fields": "name,id"},
		"ExtractField":       {"field": "id"},
		"HoistField":         {"field": "wrapped"},
		"Cast":               {"spec": "id:string"},
		"Flatten":            {"delimiter": "_"},
		"ValueToKey":         {"fields": "id,name"},
		"TimestampRouter":    {},
		"RegexRouter":        {"regex": "orders-(.*)", "replacement": "$1"},
		"InsertHeader":       {"header": "new", "value.literal": "1"},
		"DropHeaders":        {"headers": "h1"},
		"SetSchemaMetadata":  {"schema.name": "renamed", "schema.version": "3"},
		"TimestampConverter": {"field": "id", "target.type": "string", "format": "yyyy-MM-dd"},
		"HeaderFrom":         {"fields": "id", "headers": "id_header", "operation": "move"},
	}
	for _, name := range transformationNames() {
		base, _, _ := strings.Cut(name, "$")
		cfg, ok := configs[base]
		if !ok {
			if base == "Filter" {
				continue
			}
			t.Fatalf("no config for %s", name)
		}
		for _, schemaless := range []bool{false, true} {
			if schemaless && strings.HasPrefix(name, "SetSchemaMetadata") {
				continue // needs a schema
			}
			t.Run(fmt.Sprintf("%s/schemaless=%v", name, schemaless), func(t *testing.T) {
				tr := newT(t, name, cfg)
				in := testRecord(schemaless)
				out := apply(t, tr, in)
				if !recordsEqual(in, testRecord(schemaless)) {
					t.Fatal("input record mutated")
				}
				if out == nil {
					t.Fatal("dropped")
				}
				mustValid(t, out.KeySchema, out.Key)
				mustValid(t, out.ValueSchema, out.Value)
			})
		}
	}
}

// TestChainConcurrent runs one chain from several goroutines (run with -race).
func TestChainConcurrent(t *testing.T) {
	chain, err := NewChain(benchChainConfig())
	if err != nil {
		t.Fatal(err)
	}
	in := benchRecord()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				out, err := chain.Apply(in)
				if err == nil && out != nil {
					err = connect.Validate(out.ValueSchema, out.Value)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func benchChainConfig() map[string]string {
	return map[string]string{
		"transforms":                    "insert,replace,cast",
		"transforms.insert.type":        "org.apache.kafka.connect.transforms.InsertField$Value",
		"transforms.insert.topic.field": "source_topic",
		"transforms.replace.type":       "ReplaceField$Value",
		"transforms.replace.exclude":    "f9",
		"transforms.replace.renames":    "f0:id",
		"transforms.cast.type":          "Cast$Value",
		"transforms.cast.spec":          "f1:string,f2:float64",
	}
}

// benchRecord is a record whose value is a 10-field struct.
func benchRecord() *connect.Record {
	var fields []connect.Field
	for i := 0; i < 10; i++ {
		s := connect.Int64Schema
		if i%2 == 1 {
			s = connect.StringSchema
		}
		fields = append(fields, connect.F(fmt.Sprintf("f%d", i), s))
	}
	vs := connect.StructOf("bench", fields...)
	v := connect.NewStruct(vs)
	for i := 0; i < 10; i++ {
		if i%2 == 1 {
			v.MustPut(fmt.Sprintf("f%d", i), fmt.Sprintf("value-%d", i))
		} else {
			v.MustPut(fmt.Sprintf("f%d", i), int64(i))
		}
	}
	return &connect.Record{Topic: "bench", ValueSchema: vs, Value: v, Timestamp: time.UnixMilli(1)}
}

// BenchmarkChain3Transforms measures InsertField + ReplaceField + Cast on a
// 10-field struct value.
func BenchmarkChain3Transforms(b *testing.B) {
	chain, err := NewChain(benchChainConfig())
	if err != nil {
		b.Fatal(err)
	}
	in := benchRecord()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := chain.Apply(in); err != nil {
			b.Fatal(err)
		}
	}
}

// The derived-schema cache is bounded even when every record brings a new
// *Schema (a producer that rebuilds schemas per record).
func TestSchemaCacheBounded(t *testing.T) {
	tr := newT(t, "HoistField$Value", map[string]string{"field": "f"}).(*HoistField)
	for i := 0; i < 3*schemaCacheSize; i++ {
		s := &connect.Schema{Type: connect.Int32}
		out := apply(t, tr, valueRec(s, int32(i)))
		mustValid(t, out.ValueSchema, out.Value)
	}
	tr.cache.mu.RLock()
	n := len(tr.cache.m)
	tr.cache.mu.RUnlock()
	if n == 0 || n > schemaCacheSize {
		t.Fatalf("cache holds %d schemas, bound %d", n, schemaCacheSize)
	}
}
