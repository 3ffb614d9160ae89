// Package connect is Tributary's connector SDK: the records connectors
// produce and consume, Kafka Connect's schema system (primitive types,
// arrays, maps, structs, optional fields, defaults and the logical types
// Decimal, Date, Time and Timestamp), and the source and sink interfaces a
// connector implements. It imports nothing of Tributary: connectors depend on
// it alone (plus plugins.Serve in their main).
//
// Values and their Go types, by schema type:
//
//	INT8 int8, INT16 int16, INT32 int32, INT64 int64, FLOAT32 float32,
//	FLOAT64 float64, BOOLEAN bool, STRING string, BYTES []byte,
//	ARRAY []any, MAP map[any]any (keys of the key schema's Go type),
//	STRUCT *Struct; nil for an absent optional value.
//	Logical types: Decimal (BYTES) Decimal, Date (INT32) time.Time,
//	Time (INT32) time.Time, Timestamp (INT64) time.Time.
//
// A nil *Schema means "schemaless": the value is any of the Go types above,
// with map[string]any for objects, as Kafka Connect's schemaless JSON.
package connect

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ErrSchema is wrapped by every schema and value validation error.
var ErrSchema = errors.New("connect: schema")

// Type is a Kafka Connect schema type.
type Type string

// The schema types, spelled as Kafka Connect spells them in JSON.
const (
	Int8    Type = "int8"
	Int16   Type = "int16"
	Int32   Type = "int32"
	Int64   Type = "int64"
	Float32 Type = "float"
	Float64 Type = "double"
	Boolean Type = "boolean"
	String  Type = "string"
	Bytes   Type = "bytes"
	Array   Type = "array"
	Map     Type = "map"
	StructT Type = "struct"
)

// IsPrimitive reports whether t is neither array, map nor struct.
func (t Type) IsPrimitive() bool { return t != Array && t != Map && t != StructT }

// Logical type names, as Kafka Connect names them.
const (
	DecimalName   = "org.apache.kafka.connect.data.Decimal"
	DateName      = "org.apache.kafka.connect.data.Date"
	TimeName      = "org.apache.kafka.connect.data.Time"
	TimestampName = "org.apache.kafka.connect.data.Timestamp"
	// DecimalScaleParam is the Decimal schema parameter holding the scale.
	DecimalScaleParam = "scale"
)

// Field is one field of a struct schema.
type Field struct {
	Name   string
	Index  int
	Schema *Schema
}

// Schema describes a value. Schemas are immutable once built: build them
// with the constructors and With* methods, which return copies.
type Schema struct {
	Type        Type
	Optional    bool
	Default     any // nil when none
	Name        string
	Version     *int32
	Doc         string
	Parameters  map[string]string
	Fields      []Field // STRUCT
	KeySchema   *Schema // MAP
	ValueSchema *Schema // MAP and ARRAY
}

// Primitive schemas, required unless noted.
var (
	Int8Schema    = &Schema{Type: Int8}
	Int16Schema   = &Schema{Type: Int16}
	Int32Schema   = &Schema{Type: Int32}
	Int64Schema   = &Schema{Type: Int64}
	Float32Schema = &Schema{Type: Float32}
	Float64Schema = &Schema{Type: Float64}
	BooleanSchema = &Schema{Type: Boolean}
	StringSchema  = &Schema{Type: String}
	BytesSchema   = &Schema{Type: Bytes}

	OptionalInt8Schema    = &Schema{Type: Int8, Optional: true}
	OptionalInt16Schema   = &Schema{Type: Int16, Optional: true}
	OptionalInt32Schema   = &Schema{Type: Int32, Optional: true}
	OptionalInt64Schema   = &Schema{Type: Int64, Optional: true}
	OptionalFloat32Schema = &Schema{Type: Float32, Optional: true}
	OptionalFloat64Schema = &Schema{Type: Float64, Optional: true}
	OptionalBooleanSchema = &Schema{Type: Boolean, Optional: true}
	OptionalStringSchema  = &Schema{Type: String, Optional: true}
	OptionalBytesSchema   = &Schema{Type: Bytes, Optional: true}
)

// ArrayOf returns a required array schema.
func ArrayOf(elem *Schema) *Schema { return &Schema{Type: Array, ValueSchema: elem} }

// MapOf returns a required map schema.
func MapOf(key, value *Schema) *Schema { return &Schema{Type: Map, KeySchema: key, ValueSchema: value} }

// StructOf returns a required struct schema with the fields in order.
// Field names must be unique.
func StructOf(name string, fields ...Field) *Schema {
	s := &Schema{Type: StructT, Name: name}
	for i, f := range fields {
		f.Index = i
		s.Fields = append(s.Fields, f)
	}
	return s
}

// F is shorthand for a Field in StructOf.
func F(name string, s *Schema) Field { return Field{Name: name, Schema: s} }

// DecimalSchema returns a required Decimal schema with the given scale.
func DecimalSchema(scale int32) *Schema {
	return &Schema{Type: Bytes, Name: DecimalName, Version: ptr(int32(1)), Parameters: map[string]string{DecimalScaleParam: fmt.Sprint(scale)}}
}

// DateSchema returns a required Date schema (days since the epoch).
func DateSchema() *Schema { return &Schema{Type: Int32, Name: DateName, Version: ptr(int32(1))} }

// TimeSchema returns a required Time schema (milliseconds since midnight).
func TimeSchema() *Schema { return &Schema{Type: Int32, Name: TimeName, Version: ptr(int32(1))} }

// TimestampSchema returns a required Timestamp schema (milliseconds since the epoch).
func TimestampSchema() *Schema {
	return &Schema{Type: Int64, Name: TimestampName, Version: ptr(int32(1))}
}

func ptr[T any](v T) *T { return &v }

func (s *Schema) clone() *Schema {
	c := *s
	if s.Parameters != nil {
		c.Parameters = make(map[string]string, len(s.Parameters))
		for k, v := range s.Parameters {
			c.Parameters[k] = v
		}
	}
	c.Fields = append([]Field(nil), s.Fields...)
	return &c
}

// AsOptional returns an optional copy of s.
func (s *Schema) AsOptional() *Schema { c := s.clone(); c.Optional = true; return c }

// WithDefault returns a copy of s with a default value (validated).
func (s *Schema) WithDefault(v any) (*Schema, error) {
	if err := Validate(s, v); err != nil {
		return nil, fmt.Errorf("%w: default value: %v", ErrSchema, err)
	}
	c := s.clone()
	c.Default = v
	return c, nil
}

// WithDoc returns a copy of s with documentation.
func (s *Schema) WithDoc(doc string) *Schema { c := s.clone(); c.Doc = doc; return c }

// WithName returns a copy of s with a name (and optional version).
func (s *Schema) WithName(name string, version *int32) *Schema {
	c := s.clone()
	c.Name, c.Version = name, version
	return c
}

// Field returns a struct schema's field by name.
func (s *Schema) Field(name string) (Field, bool) {
	if s == nil {
		return Field{}, false
	}
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// DecimalScale returns a Decimal schema's scale.
func (s *Schema) DecimalScale() (int32, error) {
	if s == nil || s.Name != DecimalName {
		return 0, fmt.Errorf("%w: not a Decimal schema", ErrSchema)
	}
	scale, err := strconv.ParseInt(s.Parameters[DecimalScaleParam], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: Decimal schema without a valid %q parameter", ErrSchema, DecimalScaleParam)
	}
	return int32(scale), nil
}

// Equal reports whether two schemas are the same (type, optionality,
// default, name, version, doc, parameters, fields, key and value schemas).
func (s *Schema) Equal(o *Schema) bool {
	if s == o {
		return true // the common case: the same schema value, record after record
	}
	if s == nil || o == nil {
		return s == o
	}
	if s.Type != o.Type || s.Optional != o.Optional || s.Name != o.Name || s.Doc != o.Doc ||
		(s.Version == nil) != (o.Version == nil) || (s.Version != nil && *s.Version != *o.Version) ||
		len(s.Parameters) != len(o.Parameters) || len(s.Fields) != len(o.Fields) ||
		!s.KeySchema.Equal(o.KeySchema) || !s.ValueSchema.Equal(o.ValueSchema) ||
		!ValuesEqual(s.Default, o.Default) {
		return false
	}
	for k, v := range s.Parameters {
		if ov, ok := o.Parameters[k]; !ok || ov != v {
			return false
		}
	}
	for i := range s.Fields {
		if s.Fields[i].Name != o.Fields[i].Name || !s.Fields[i].Schema.Equal(o.Fields[i].Schema) {
			return false
		}
	}
	return true
}

// String renders a schema compactly, for error messages and logs.
func (s *Schema) String() string {
	if s == nil {
		return "<schemaless>"
	}
	var b strings.Builder
	b.WriteString(string(s.Type))
	if s.Name != "" {
		b.WriteString("(" + s.Name + ")")
	}
	switch s.Type {
	case Array:
		b.WriteString("<" + s.ValueSchema.String() + ">")
	case Map:
		b.WriteString("<" + s.KeySchema.String() + "," + s.ValueSchema.String() + ">")
	case StructT:
		b.WriteString("{")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(f.Name + ":" + f.Schema.String())
		}
		b.WriteString("}")
	}
	if s.Optional {
		b.WriteString("?")
	}
	return b.String()
}

// Decimal is an arbitrary-precision decimal: Unscaled * 10^-Scale, as Kafka
// Connect's Decimal logical type (a BigDecimal) carries it.
type Decimal struct {
	Unscaled *big.Int
	Scale    int32
}

// String renders the decimal in plain notation (e.g. "-12.340").
func (d Decimal) String() string {
	if d.Unscaled == nil {
		return "0"
	}
	if d.Scale <= 0 {
		return new(big.Int).Mul(d.Unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.Scale)), nil)).String()
	}
	digits := new(big.Int).Abs(d.Unscaled).String()
	if pad := int(d.Scale) + 1 - len(digits); pad > 0 {
		digits = strings.Repeat("0", pad) + digits
	}
	out := digits[:len(digits)-int(d.Scale)] + "." + digits[len(digits)-int(d.Scale):]
	if d.Unscaled.Sign() < 0 {
		out = "-" + out
	}
	return out
}

// ParseDecimal parses plain decimal notation ("-12.340") into a Decimal
// whose scale is the number of digits after the point.
func ParseDecimal(s string) (Decimal, error) {
	s = strings.TrimSpace(s)
	digits, neg := strings.CutPrefix(s, "-")
	if !neg {
		digits = strings.TrimPrefix(digits, "+")
	}
	intPart, frac, _ := strings.Cut(digits, ".")
	if strings.Trim(intPart+frac, "0123456789") != "" {
		return Decimal{}, fmt.Errorf("%w: %q is not a decimal number", ErrSchema, s)
	}
	u, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok || intPart+frac == "" {
		return Decimal{}, fmt.Errorf("%w: %q is not a decimal number", ErrSchema, s)
	}
	if neg {
		u.Neg(u)
	}
	return Decimal{Unscaled: u, Scale: int32(len(frac))}, nil
}

// Validate checks that v is a valid value of schema s (nil s: anything).
// Errors name the offending field path.
func Validate(s *Schema, v any) error { return validate(s, v, "") }

func validate(s *Schema, v any, path string) error {
	if s == nil {
		return nil
	}
	at := func() string {
		if path == "" {
			return "value"
		}
		return "field " + path
	}
	if v == nil {
		if s.Optional || s.Default != nil {
			return nil
		}
		return fmt.Errorf("%w: %s is null but its schema %s is required", ErrSchema, at(), s)
	}
	switch s.Name {
	case DecimalName:
		if _, ok := v.(Decimal); !ok {
			return fmt.Errorf("%w: %s: Decimal schema needs a connect.Decimal, got %T", ErrSchema, at(), v)
		}
		return nil
	case DateName, TimeName, TimestampName:
		if _, ok := v.(time.Time); !ok {
			return fmt.Errorf("%w: %s: %s schema needs a time.Time, got %T", ErrSchema, at(), s.Name, v)
		}
		return nil
	}
	ok := false
	switch s.Type {
	case Int8:
		_, ok = v.(int8)
	case Int16:
		_, ok = v.(int16)
	case Int32:
		_, ok = v.(int32)
	case Int64:
		_, ok = v.(int64)
	case Float32:
		_, ok = v.(float32)
	case Float64:
		_, ok = v.(float64)
	case Boolean:
		_, ok = v.(bool)
	case String:
		_, ok = v.(string)
	case Bytes:
		_, ok = v.([]byte)
	case Array:
		a, isArr := v.([]any)
		if !isArr {
			break
		}
		for i, e := range a {
			// The element's path is built only when there is an error to report.
			if validate(s.ValueSchema, e, "") != nil {
				return validate(s.ValueSchema, e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
		return nil
	case Map:
		m, isMap := v.(map[any]any)
		if !isMap {
			break
		}
		for k, e := range m {
			if validate(s.KeySchema, k, "") != nil {
				return validate(s.KeySchema, k, path+"{key}")
			}
			if validate(s.ValueSchema, e, "") != nil {
				return validate(s.ValueSchema, e, fmt.Sprintf("%s[%v]", path, k))
			}
		}
		return nil
	case StructT:
		st, isStruct := v.(*Struct)
		if !isStruct {
			break
		}
		if !st.Schema().Equal(s) {
			return fmt.Errorf("%w: %s: struct schema %s differs from %s", ErrSchema, at(), st.Schema(), s)
		}
		return st.validate(path)
	}
	if !ok {
		return fmt.Errorf("%w: %s: schema %s does not accept a %T", ErrSchema, at(), s, v)
	}
	return nil
}

// ValuesEqual compares two values deeply ([]byte by content, *Struct by
// schema and fields, Decimal by value, time.Time by instant).
func ValuesEqual(a, b any) bool {
	switch av := a.(type) {
	case nil:
		return b == nil
	case []byte:
		bv, ok := b.([]byte)
		return ok && string(av) == string(bv)
	case Decimal:
		bv, ok := b.(Decimal)
		if !ok || av.Unscaled == nil || bv.Unscaled == nil {
			return ok && av.Unscaled == nil && bv.Unscaled == nil
		}
		return av.Scale == bv.Scale && av.Unscaled.Cmp(bv.Unscaled) == 0
	case time.Time:
		bv, ok := b.(time.Time)
		return ok && av.Equal(bv)
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !ValuesEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	case map[any]any:
		return mapValuesEqual(av, b)
	case map[string]any:
		return mapValuesEqual(av, b)
	case *Struct:
		bv, ok := b.(*Struct)
		return ok && av.Equal(bv)
	}
	if ta := reflect.TypeOf(a); !ta.Comparable() {
		return reflect.DeepEqual(a, b) // == would panic
	}
	return a == b
}

// mapValuesEqual compares a map with b deeply (b must be a map of the same type).
func mapValuesEqual[K comparable](a map[K]any, b any) bool {
	bv, ok := b.(map[K]any)
	if !ok || len(a) != len(bv) {
		return false
	}
	for k, v := range a {
		if w, ok := bv[k]; !ok || !ValuesEqual(v, w) {
			return false
		}
	}
	return true
}
