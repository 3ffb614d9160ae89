package connect

import (
	"fmt"
	"strings"
)

// Struct is a value of a STRUCT schema: one slot per field, in field order.
// Put validates; Get returns nil for unset optional fields (or the field's
// default). A Struct is not safe for concurrent mutation.
type Struct struct {
	schema *Schema
	values []any
}

// NewStruct returns an empty struct of a STRUCT schema.
func NewStruct(s *Schema) *Struct {
	if s == nil || s.Type != StructT {
		panic(fmt.Sprintf("connect: NewStruct with a non-struct schema %s", s))
	}
	return &Struct{schema: s, values: make([]any, len(s.Fields))}
}

// Schema returns the struct's schema.
func (st *Struct) Schema() *Schema { return st.schema }

// Put sets a field, validating the value against the field's schema.
// It returns the struct, so that puts can be chained with Must.
func (st *Struct) Put(field string, v any) (*Struct, error) {
	f, ok := st.schema.Field(field)
	if !ok {
		return st, fmt.Errorf("%w: struct %s has no field %q", ErrSchema, st.schema, field)
	}
	if err := validate(f.Schema, v, field); err != nil {
		return st, err
	}
	st.values[f.Index] = v
	return st, nil
}

// MustPut is Put that panics on error, for building fixed test values and
// values whose schema the caller built itself.
func (st *Struct) MustPut(field string, v any) *Struct {
	if _, err := st.Put(field, v); err != nil {
		panic(err)
	}
	return st
}

// Get returns a field's value, its default when unset, or nil.
func (st *Struct) Get(field string) any {
	f, ok := st.schema.Field(field)
	if !ok {
		return nil
	}
	if v := st.values[f.Index]; v != nil {
		return v
	}
	return f.Schema.Default
}

// GetByIndex returns the value of the i-th field (its default when unset).
func (st *Struct) GetByIndex(i int) any {
	if v := st.values[i]; v != nil {
		return v
	}
	return st.schema.Fields[i].Schema.Default
}

// Validate checks that every required field is set.
func (st *Struct) Validate() error { return st.validate("") }

func (st *Struct) validate(prefix string) error {
	for i, f := range st.schema.Fields {
		// The field's path is built only when there is an error to report:
		// this runs for every nested struct put, per record.
		if validate(f.Schema, st.values[i], "") == nil {
			continue
		}
		path := f.Name
		if prefix != "" {
			path = prefix + "." + f.Name
		}
		return validate(f.Schema, st.values[i], path)
	}
	return nil
}

// Equal reports whether two structs have equal schemas and field values.
func (st *Struct) Equal(o *Struct) bool {
	if st == nil || o == nil {
		return st == o
	}
	if !st.schema.Equal(o.schema) {
		return false
	}
	for i := range st.values {
		if !ValuesEqual(st.GetByIndex(i), o.GetByIndex(i)) {
			return false
		}
	}
	return true
}

// String renders the struct as Struct{a=1,b=x}, as Kafka Connect does.
func (st *Struct) String() string {
	var b strings.Builder
	b.WriteString("Struct{")
	first := true
	for i, f := range st.schema.Fields {
		v := st.values[i]
		if v == nil {
			continue
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%s=%v", f.Name, v)
	}
	b.WriteString("}")
	return b.String()
}
