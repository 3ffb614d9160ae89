package connect

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestValidatePrimitives(t *testing.T) {
	all := []any{int8(1), int16(1), int32(1), int64(1), float32(1), float64(1), true, "s", []byte("b"),
		[]any{}, map[any]any{}, 1, uint8(1)}
	tests := []struct {
		schema *Schema
		ok     any
	}{
		{Int8Schema, int8(1)},
		{Int16Schema, int16(1)},
		{Int32Schema, int32(1)},
		{Int64Schema, int64(1)},
		{Float32Schema, float32(1)},
		{Float64Schema, float64(1)},
		{BooleanSchema, true},
		{StringSchema, "s"},
		{BytesSchema, []byte("b")},
		{ArrayOf(Int32Schema), []any{}},
		{MapOf(StringSchema, Int32Schema), map[any]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.schema.String(), func(t *testing.T) {
			if err := Validate(tc.schema, tc.ok); err != nil {
				t.Fatalf("Validate(%v) = %v", tc.ok, err)
			}
			for _, v := range all {
				if ValuesEqual(v, tc.ok) {
					continue
				}
				if _, same := v.([]byte); same && tc.schema.Type == Bytes {
					continue
				}
				err := Validate(tc.schema, v)
				if err == nil {
					t.Fatalf("%s accepted a %T", tc.schema, v)
				}
				if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "value:") {
					t.Fatalf("error %q: want ErrSchema naming the value", err)
				}
			}
			// Required: nil is refused; optional: accepted.
			if err := Validate(tc.schema, nil); err == nil || !strings.Contains(err.Error(), "is null") {
				t.Fatalf("required %s accepted nil: %v", tc.schema, err)
			}
			if err := Validate(tc.schema.AsOptional(), nil); err != nil {
				t.Fatalf("optional %s refused nil: %v", tc.schema, err)
			}
		})
	}
	for _, typ := range []Type{Int8, Int16, Int32, Int64, Float32, Float64, Boolean, String, Bytes} {
		if !typ.IsPrimitive() {
			t.Errorf("%s is not primitive", typ)
		}
	}
	for _, typ := range []Type{Array, Map, StructT} {
		if typ.IsPrimitive() {
			t.Errorf("%s is primitive", typ)
		}
	}
	if err := Validate(nil, struct{}{}); err != nil {
		t.Fatalf("schemaless refused a value: %v", err)
	}
}

func TestValidateLogical(t *testing.T) {
	now := time.Now()
	dec := Decimal{Unscaled: big.NewInt(5), Scale: 2}
	tests := []struct {
		schema *Schema
		good   any
		bad    []any
	}{
		{DecimalSchema(2), dec, []any{[]byte{5}, "0.05", 5}},
		{DateSchema(), now, []any{int32(1), "2020-01-01"}},
		{TimeSchema(), now, []any{int32(1)}},
		{TimestampSchema(), now, []any{int64(1), now.Unix()}},
	}
	for _, tc := range tests {
		t.Run(tc.schema.Name, func(t *testing.T) {
			if err := Validate(tc.schema, tc.good); err != nil {
				t.Fatal(err)
			}
			for _, b := range tc.bad {
				if err := Validate(tc.schema, b); err == nil {
					t.Fatalf("accepted %#v", b)
				}
			}
			if err := Validate(tc.schema.AsOptional(), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := Int32Schema.WithDefault(int32(7))
	if err != nil {
		t.Fatal(err)
	}
	if s == Int32Schema || Int32Schema.Default != nil {
		t.Fatal("WithDefault changed the shared schema")
	}
	if err := Validate(s, nil); err != nil {
		t.Fatalf("required schema with default refused nil: %v", err)
	}
	if _, err := Int32Schema.WithDefault("x"); err == nil || !errors.Is(err, ErrSchema) {
		t.Fatalf("bad default accepted: %v", err)
	}
	if _, err := Int32Schema.WithDefault(nil); err == nil {
		t.Fatal("nil default accepted for a required schema")
	}
	if o, err := OptionalInt32Schema.WithDefault(nil); err != nil || o.Default != nil {
		t.Fatalf("nil default of an optional schema: %v", err)
	}
}

func TestValidateNestedPaths(t *testing.T) {
	addr := StructOf("Address", F("city", StringSchema), F("zip", OptionalStringSchema))
	person := StructOf("Person",
		F("name", StringSchema),
		F("address", addr),
		F("tags", ArrayOf(StringSchema)),
		F("scores", MapOf(StringSchema, Int32Schema)),
		F("history", ArrayOf(addr)),
	)
	good := func() *Struct {
		return NewStruct(person).
			MustPut("name", "ann").
			MustPut("address", NewStruct(addr).MustPut("city", "Oslo")).
			MustPut("tags", []any{"a"}).
			MustPut("scores", map[any]any{"x": int32(1)}).
			MustPut("history", []any{NewStruct(addr).MustPut("city", "Rome")})
	}
	if err := Validate(person, good()); err != nil {
		t.Fatalf("valid struct refused: %v", err)
	}
	tests := []struct {
		name     string
		value    func() *Struct
		wantPath string
	}{
		{"missing nested field", func() *Struct {
			st := good()
			st.values[1] = NewStruct(addr) // bypass Put: city unset
			return st
		}, "field address.city"},
		{"array element", func() *Struct {
			st := good()
			st.values[2] = []any{"a", int32(3)}
			return st
		}, "field tags[1]"},
		{"map value", func() *Struct {
			st := good()
			st.values[3] = map[any]any{"k": "notint"}
			return st
		}, "field scores[k]"},
		{"map key", func() *Struct {
			st := good()
			st.values[3] = map[any]any{int32(1): int32(1)}
			return st
		}, "field scores{key}"},
		{"struct in array", func() *Struct {
			st := good()
			st.values[4] = []any{NewStruct(addr).MustPut("city", "a"), NewStruct(addr)}
			return st
		}, "field history[1].city"},
		{"required top-level field", func() *Struct {
			st := good()
			st.values[0] = nil
			return st
		}, "field name is null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(person, tc.value())
			if err == nil || !strings.Contains(err.Error(), tc.wantPath) {
				t.Fatalf("error = %v, want one naming %q", err, tc.wantPath)
			}
		})
	}
	other := StructOf("Other", F("name", StringSchema))
	if err := Validate(person, NewStruct(other).MustPut("name", "x")); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("struct of another schema accepted: %v", err)
	}
}

func TestSchemaEqual(t *testing.T) {
	v1, v2 := int32(1), int32(2)
	withDef, _ := Int32Schema.WithDefault(int32(1))
	withDef2, _ := Int32Schema.WithDefault(int32(2))
	base := StructOf("S", F("a", Int32Schema), F("b", OptionalStringSchema))
	tests := []struct {
		name string
		a, b *Schema
		want bool
	}{
		{"same pointer", Int32Schema, Int32Schema, true},
		{"equal copies", &Schema{Type: Int32}, &Schema{Type: Int32}, true},
		{"nil nil", nil, nil, true},
		{"nil vs schema", nil, Int32Schema, false},
		{"type", Int32Schema, Int64Schema, false},
		{"optional", Int32Schema, OptionalInt32Schema, false},
		{"default", withDef, withDef2, false},
		{"default equal", withDef, func() *Schema { s, _ := Int32Schema.WithDefault(int32(1)); return s }(), true},
		{"name", Int32Schema.WithName("a", nil), Int32Schema.WithName("b", nil), false},
		{"version", Int32Schema.WithName("a", &v1), Int32Schema.WithName("a", &v2), false},
		{"version nil", Int32Schema.WithName("a", &v1), Int32Schema.WithName("a", nil), false},
		{"version equal", Int32Schema.WithName("a", &v1), Int32Schema.WithName("a", ptr(int32(1))), true},
		{"doc", Int32Schema.WithDoc("x"), Int32Schema.WithDoc("y"), false},
		{"decimal scale", DecimalSchema(2), DecimalSchema(3), false},
		{"decimal same", DecimalSchema(2), DecimalSchema(2), true},
		{"array elem", ArrayOf(Int32Schema), ArrayOf(Int64Schema), false},
		{"map key", MapOf(StringSchema, Int32Schema), MapOf(Int32Schema, Int32Schema), false},
		{"struct same", base, StructOf("S", F("a", Int32Schema), F("b", OptionalStringSchema)), true},
		{"struct field name", base, StructOf("S", F("a", Int32Schema), F("c", OptionalStringSchema)), false},
		{"struct field schema", base, StructOf("S", F("a", Int32Schema), F("b", StringSchema)), false},
		{"struct field count", base, StructOf("S", F("a", Int32Schema)), false},
		{"struct name", base, StructOf("T", F("a", Int32Schema), F("b", OptionalStringSchema)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Equal(tc.b); got != tc.want {
				t.Fatalf("%s.Equal(%s) = %v", tc.a, tc.b, got)
			}
			if got := tc.b.Equal(tc.a); got != tc.want {
				t.Fatalf("not symmetric")
			}
		})
	}
}

func TestSchemaString(t *testing.T) {
	tests := []struct {
		s    *Schema
		want string
	}{
		{nil, "<schemaless>"},
		{Int32Schema, "int32"},
		{OptionalStringSchema, "string?"},
		{ArrayOf(OptionalInt64Schema), "array<int64?>"},
		{MapOf(StringSchema, Float64Schema).AsOptional(), "map<string,double>?"},
		{StructOf("P", F("a", Int8Schema), F("b", BooleanSchema)), "struct(P){a:int8,b:boolean}"},
		{DecimalSchema(2), "bytes(" + DecimalName + ")"},
	}
	for _, tc := range tests {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestSchemaCopiesAreIndependent(t *testing.T) {
	d := DecimalSchema(2)
	c := d.WithDoc("x")
	c.Parameters[DecimalScaleParam] = "5"
	if d.Parameters[DecimalScaleParam] != "2" || d.Doc != "" {
		t.Fatal("With* copy shares parameters with the original")
	}
	if !OptionalInt32Schema.Equal(Int32Schema.AsOptional()) || Int32Schema.Optional {
		t.Fatal("AsOptional")
	}
	s := StructOf("S", F("a", Int32Schema), F("b", StringSchema))
	if f, ok := s.Field("b"); !ok || f.Index != 1 || f.Schema != StringSchema {
		t.Fatalf("Field(b) = %+v %v", f, ok)
	}
	if _, ok := s.Field("z"); ok {
		t.Fatal("Field(z) found")
	}
	if _, ok := (*Schema)(nil).Field("a"); ok {
		t.Fatal("nil schema has a field")
	}
}

func TestDecimalScale(t *testing.T) {
	if s, err := DecimalSchema(-3).DecimalScale(); err != nil || s != -3 {
		t.Fatalf("scale = %d, %v", s, err)
	}
	for _, bad := range []*Schema{nil, Int32Schema, {Type: Bytes, Name: DecimalName}, {Type: Bytes, Name: DecimalName, Parameters: map[string]string{"scale": "2abc"}}} {
		if _, err := bad.DecimalScale(); err == nil || !errors.Is(err, ErrSchema) {
			t.Errorf("DecimalScale(%v) = %v, want an error", bad, err)
		}
	}
}

func TestDecimalStringAndParse(t *testing.T) {
	tests := []struct {
		in       string
		unscaled int64
		scale    int32
		out      string // String() of the parsed value
	}{
		{"0", 0, 0, "0"},
		{"12.340", 12340, 3, "12.340"},
		{"-12.340", -12340, 3, "-12.340"},
		{"0.05", 5, 2, "0.05"},
		{"-0.05", -5, 2, "-0.05"},
		{"0.00", 0, 2, "0.00"},
		{"007", 7, 0, "7"},
		{"123", 123, 0, "123"},
		{"-123", -123, 0, "-123"},
		{"+1.5", 15, 1, "1.5"},
		{".5", 5, 1, "0.5"},
		{"5.", 5, 0, "5"},
		{" 3.14 ", 314, 2, "3.14"},
		{"-0.001", -1, 3, "-0.001"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseDecimal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Unscaled.Int64() != tc.unscaled || d.Scale != tc.scale {
				t.Fatalf("ParseDecimal = %s scale %d, want %d scale %d", d.Unscaled, d.Scale, tc.unscaled, tc.scale)
			}
			if got := d.String(); got != tc.out {
				t.Fatalf("String() = %q, want %q", got, tc.out)
			}
			back, err := ParseDecimal(d.String())
			if err != nil || !ValuesEqual(back, d) {
				t.Fatalf("round trip %q -> %v (%v)", d.String(), back, err)
			}
		})
	}
	for _, bad := range []string{"", "-", "+", ".", "abc", "1.2.3", "1e5", "--5", "+-5", ".+5", "1.-5", "1 2", "0x10", "1_000"} {
		if d, err := ParseDecimal(bad); err == nil || !errors.Is(err, ErrSchema) {
			t.Errorf("ParseDecimal(%q) = %v, %v; want an error", bad, d, err)
		}
	}
}

func TestDecimalStringScales(t *testing.T) {
	big1e30, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	tests := []struct {
		d    Decimal
		want string
	}{
		{Decimal{}, "0"},
		{Decimal{Unscaled: big.NewInt(12), Scale: -3}, "12000"},
		{Decimal{Unscaled: big.NewInt(-12), Scale: -1}, "-120"},
		{Decimal{Unscaled: big.NewInt(0), Scale: -2}, "0"},
		{Decimal{Unscaled: big.NewInt(7), Scale: 0}, "7"},
		{Decimal{Unscaled: big.NewInt(-7), Scale: 4}, "-0.0007"},
		{Decimal{Unscaled: big1e30, Scale: 10}, "-12345678901234567890.1234567890"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%v scale %d: String() = %q, want %q", tc.d.Unscaled, tc.d.Scale, got, tc.want)
		}
	}
}

func TestValuesEqual(t *testing.T) {
	ts := time.Unix(100, 0)
	s := StructOf("S", F("a", Int32Schema))
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"nil", nil, nil, true},
		{"nil vs value", nil, int32(0), false},
		{"bytes", []byte("ab"), []byte("ab"), true},
		{"bytes differ", []byte("ab"), []byte("ac"), false},
		{"bytes vs string", []byte("ab"), "ab", false},
		{"decimal", Decimal{big.NewInt(5), 2}, Decimal{big.NewInt(5), 2}, true},
		{"decimal scale", Decimal{big.NewInt(5), 2}, Decimal{big.NewInt(50), 3}, false},
		{"decimal zero values", Decimal{}, Decimal{}, true},
		{"time same instant", ts, ts.In(time.FixedZone("x", 3600)), true},
		{"time differs", ts, ts.Add(time.Millisecond), false},
		{"array", []any{int32(1), []byte("x")}, []any{int32(1), []byte("x")}, true},
		{"array len", []any{int32(1)}, []any{int32(1), int32(2)}, false},
		{"map", map[any]any{"a": []byte("x")}, map[any]any{"a": []byte("x")}, true},
		{"map differs", map[any]any{"a": int32(1)}, map[any]any{"b": int32(1)}, false},
		{"schemaless map", map[string]any{"a": []any{1.5}}, map[string]any{"a": []any{1.5}}, true},
		{"schemaless map differs", map[string]any{"a": 1.5}, map[string]any{"a": 2.5}, false},
		{"struct", NewStruct(s).MustPut("a", int32(1)), NewStruct(s).MustPut("a", int32(1)), true},
		{"struct differs", NewStruct(s).MustPut("a", int32(1)), NewStruct(s).MustPut("a", int32(2)), false},
		{"int types differ", int32(1), int64(1), false},
		{"uncomparable same type", []string{"a"}, []string{"a"}, true},
		{"uncomparable differ", []string{"a"}, []string{"b"}, false},
		{"uncomparable map", map[string]string{"a": "b"}, map[string]string{"a": "b"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValuesEqual(tc.a, tc.b); got != tc.want {
				t.Fatalf("ValuesEqual = %v, want %v", got, tc.want)
			}
			if got := ValuesEqual(tc.b, tc.a); got != tc.want {
				t.Fatalf("not symmetric")
			}
		})
	}
}
