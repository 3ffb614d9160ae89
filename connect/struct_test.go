package connect

import (
	"errors"
	"strings"
	"testing"
)

func personSchema(t *testing.T) *Schema {
	t.Helper()
	age, err := OptionalInt32Schema.WithDefault(int32(18))
	if err != nil {
		t.Fatal(err)
	}
	return StructOf("Person",
		F("name", StringSchema),
		F("age", age),
		F("nick", OptionalStringSchema),
		F("tags", ArrayOf(StringSchema).AsOptional()),
	)
}

func TestStructPut(t *testing.T) {
	s := personSchema(t)
	tests := []struct {
		name    string
		field   string
		value   any
		wantErr string // "" = accepted
	}{
		{"string", "name", "ann", ""},
		{"wrong type", "name", int32(1), "field name: schema string does not accept a int32"},
		{"null required", "name", nil, "field name is null"},
		{"null optional", "nick", nil, ""},
		{"int", "age", int32(3), ""},
		{"int wrong width", "age", int64(3), "field age"},
		{"array", "tags", []any{"a", "b"}, ""},
		{"array bad element", "tags", []any{"a", int32(2)}, "field tags[1]"},
		{"unknown field", "zzz", "x", `has no field "zzz"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := NewStruct(s)
			got, err := st.Put(tc.field, tc.value)
			if got != st {
				t.Fatal("Put did not return the struct")
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v := st.Get(tc.field); !ValuesEqual(v, tc.value) && tc.value != nil {
					t.Fatalf("Get = %v, want %v", v, tc.value)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want ErrSchema containing %q", err, tc.wantErr)
			}
			if f, ok := s.Field(tc.field); ok && st.values[f.Index] != nil {
				t.Fatal("a refused value was stored")
			}
		})
	}
}

func TestStructGetDefaults(t *testing.T) {
	s := personSchema(t)
	st := NewStruct(s)
	if v := st.Get("age"); v != int32(18) {
		t.Fatalf("unset age = %v, want its default 18", v)
	}
	if v := st.GetByIndex(1); v != int32(18) {
		t.Fatalf("GetByIndex(1) = %v", v)
	}
	if v := st.Get("nick"); v != nil {
		t.Fatalf("unset optional = %v", v)
	}
	if v := st.Get("nope"); v != nil {
		t.Fatalf("unknown field = %v", v)
	}
	st.MustPut("age", int32(40))
	if v := st.Get("age"); v != int32(40) {
		t.Fatalf("age = %v", v)
	}
	if st.Schema() != s {
		t.Fatal("Schema()")
	}
}

func TestStructValidate(t *testing.T) {
	s := personSchema(t)
	st := NewStruct(s)
	err := st.Validate()
	if err == nil || !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "field name") {
		t.Fatalf("missing required field: %v", err)
	}
	st.MustPut("name", "ann")
	if err := st.Validate(); err != nil {
		t.Fatalf("valid struct: %v", err)
	}
	// A field with a default counts as set.
	req, _ := Int32Schema.WithDefault(int32(1))
	if err := NewStruct(StructOf("D", F("n", req))).Validate(); err != nil {
		t.Fatalf("required field with default: %v", err)
	}
}

func TestStructEqualAndString(t *testing.T) {
	s := personSchema(t)
	a := NewStruct(s).MustPut("name", "ann").MustPut("tags", []any{"x"})
	b := NewStruct(s).MustPut("name", "ann").MustPut("tags", []any{"x"})
	if !a.Equal(b) || !b.Equal(a) {
		t.Fatal("equal structs differ")
	}
	// An unset field with a default equals the default set explicitly.
	if !a.Equal(NewStruct(s).MustPut("name", "ann").MustPut("tags", []any{"x"}).MustPut("age", int32(18))) {
		t.Fatal("default vs explicit default")
	}
	if a.Equal(NewStruct(s).MustPut("name", "bob").MustPut("tags", []any{"x"})) {
		t.Fatal("different values equal")
	}
	other := StructOf("Person", F("name", StringSchema))
	if a.Equal(NewStruct(other).MustPut("name", "ann")) {
		t.Fatal("different schemas equal")
	}
	var nilStruct *Struct
	if a.Equal(nil) || !nilStruct.Equal(nil) {
		t.Fatal("nil handling")
	}
	if got, want := a.String(), "Struct{name=ann,tags=[x]}"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	nested := StructOf("N", F("p", s), F("z", OptionalInt8Schema))
	if got, want := NewStruct(nested).MustPut("p", a).String(), "Struct{p=Struct{name=ann,tags=[x]}}"; got != want {
		t.Fatalf("nested String() = %q, want %q", got, want)
	}
}

func TestNewStructPanicsOnNonStruct(t *testing.T) {
	for _, s := range []*Schema{nil, Int32Schema} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("NewStruct(%v) did not panic", s)
				}
			}()
			NewStruct(s)
		}()
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustPut of a bad value did not panic")
		}
	}()
	NewStruct(personSchema(t)).MustPut("name", 5)
}
