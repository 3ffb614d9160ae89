package converter

// The JSON writer: an append-style encoder producing the bytes Kafka
// Connect's JsonConverter produces with Jackson's default ObjectMapper
// (compact output, fields in insertion order). Format details it matches:
//
//   - strings: '"' and '\' escaped with a backslash; \b \t \n \f \r short
//     escapes; other control characters as \u00XX (upper-case hex); '/',
//     '<', '>', '&', DEL and non-ASCII are written as they are (UTF-8).
//     Invalid UTF-8 in a Go string is written as U+FFFD.
//   - int8..int64: decimal. float32/float64: Java's Float.toString and
//     Double.toString ("1.0", "12.34", "1.0E10", "1.0E-5"), shortest
//     digits as JDK 19+ prints them; NaN and infinities as the strings
//     "NaN", "Infinity", "-Infinity" (Jackson's QUOTE_NON_NUMERIC_NUMBERS).
//   - bytes: standard base64 with padding, as a string.
//   - Decimal: base64 of the unscaled value's big-endian two's complement
//     (Java's BigInteger.toByteArray), or with decimal.format=NUMERIC a
//     number written as Java's BigDecimal.toString ("1.56", "1E+2").
//   - maps: a JSON object when the key schema is STRING (schemaless: when
//     every key is a string), else an array of [key, value] pairs. Kafka
//     writes them in Java HashMap order, which is unspecified; we sort keys
//     so that our output is deterministic.
//   - schema parameters: Kafka writes them in insertion order; a Go map has
//     none, so we sort them by key.

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tributary-data/tributary/connect"
)

const hexUpper = "0123456789ABCDEF"

// appendJSONString appends s as a JSON string, escaped as Jackson escapes.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\t':
				b = append(b, '\\', 't')
			case '\n':
				b = append(b, '\\', 'n')
			case '\f':
				b = append(b, '\\', 'f')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJavaFloat appends f as Java's Double.toString (bitSize 64) or
// Float.toString (bitSize 32) prints it. Non-finite values are written as
// JSON strings when quoteNonFinite (Jackson's default), bare otherwise.
func appendJavaFloat(b []byte, f float64, bitSize int, quoteNonFinite bool) []byte {
	var special string
	switch {
	case math.IsNaN(f):
		special = "NaN"
	case math.IsInf(f, 1):
		special = "Infinity"
	case math.IsInf(f, -1):
		special = "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if special != "" {
		if quoteNonFinite {
			b = append(b, '"')
			b = append(b, special...)
			return append(b, '"')
		}
		return append(b, special...)
	}
	var tmp [40]byte
	d := strconv.AppendFloat(tmp[:0], f, 'e', -1, bitSize) // [-]d[.ddd]e±XX
	if d[1] == 'e' || (d[0] == '-' && d[2] == 'e') {
		// One shortest digit: Java (JDK 19+) then picks the 2-digit decimal
		// closest to the value (4.9E-324 rather than 5.0E-324).
		d = strconv.AppendFloat(tmp[:0], f, 'e', 1, bitSize)
	}
	if d[0] == '-' {
		b = append(b, '-')
		d = d[1:]
	}
	var digits [24]byte
	n := 0
	i := 0
	for ; d[i] != 'e'; i++ {
		if d[i] != '.' {
			digits[n] = d[i]
			n++
		}
	}
	exp := 0
	neg := d[i+1] == '-'
	for _, c := range d[i+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	for n > 1 && digits[n-1] == '0' {
		n--
	}
	ds := digits[:n]
	if exp >= -3 && exp < 7 {
		if exp >= 0 {
			if n <= exp+1 {
				b = append(b, ds...)
				for k := n; k < exp+1; k++ {
					b = append(b, '0')
				}
				return append(b, '.', '0')
			}
			b = append(b, ds[:exp+1]...)
			b = append(b, '.')
			return append(b, ds[exp+1:]...)
		}
		b = append(b, '0', '.')
		for k := 0; k < -exp-1; k++ {
			b = append(b, '0')
		}
		return append(b, ds...)
	}
	b = append(b, ds[0], '.')
	if n > 1 {
		b = append(b, ds[1:]...)
	} else {
		b = append(b, '0')
	}
	b = append(b, 'E')
	return strconv.AppendInt(b, int64(exp), 10)
}

// appendBigDecimal appends d as Java's BigDecimal.toString prints it.
func appendBigDecimal(b []byte, d connect.Decimal) []byte {
	var coeff []byte
	var tmp [24]byte
	negative := false
	if d.Unscaled == nil {
		coeff = append(tmp[:0], '0')
	} else if d.Unscaled.IsInt64() {
		v := d.Unscaled.Int64()
		if v < 0 {
			negative = true
			coeff = strconv.AppendUint(tmp[:0], uint64(-v), 10) // -MinInt64 wraps to its own magnitude as uint64
		} else {
			coeff = strconv.AppendInt(tmp[:0], v, 10)
		}
	} else {
		negative = d.Unscaled.Sign() < 0
		coeff = new(big.Int).Abs(d.Unscaled).Append(nil, 10)
	}
	if negative {
		b = append(b, '-')
	}
	scale := int64(d.Scale)
	adjusted := -scale + int64(len(coeff)-1)
	if scale >= 0 && adjusted >= -6 {
		if scale == 0 {
			return append(b, coeff...)
		}
		if int64(len(coeff)) > scale {
			p := len(coeff) - int(scale)
			b = append(b, coeff[:p]...)
			b = append(b, '.')
			return append(b, coeff[p:]...)
		}
		b = append(b, '0', '.')
		for k := int64(len(coeff)); k < scale; k++ {
			b = append(b, '0')
		}
		return append(b, coeff...)
	}
	b = append(b, coeff[0])
	if len(coeff) > 1 {
		b = append(b, '.')
		b = append(b, coeff[1:]...)
	}
	b = append(b, 'E')
	if adjusted > 0 {
		b = append(b, '+')
	}
	return strconv.AppendInt(b, adjusted, 10)
}

// twosComplement returns x as Java's BigInteger.toByteArray does: the
// minimal big-endian two's complement, at least one byte.
func twosComplement(x *big.Int) []byte {
	if x == nil || x.Sign() == 0 {
		return []byte{0}
	}
	if x.Sign() > 0 {
		raw := x.Bytes()
		if raw[0]&0x80 != 0 {
			return append([]byte{0}, raw...)
		}
		return raw
	}
	// -x-1 is non-negative; its bitwise complement is x.
	y := new(big.Int).Neg(x)
	y.Sub(y, big.NewInt(1))
	raw := y.Bytes()
	for i := range raw {
		raw[i] = ^raw[i]
	}
	if len(raw) == 0 || raw[0]&0x80 == 0 {
		return append([]byte{0xFF}, raw...)
	}
	return raw
}

// fromTwosComplement is the inverse of twosComplement.
func fromTwosComplement(raw []byte) *big.Int {
	x := new(big.Int)
	if len(raw) == 0 || raw[0]&0x80 == 0 {
		return x.SetBytes(raw)
	}
	inv := make([]byte, len(raw))
	for i, c := range raw {
		inv[i] = ^c
	}
	x.SetBytes(inv)
	x.Add(x, big.NewInt(1))
	return x.Neg(x)
}

func appendBase64(b []byte, raw []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}

// kafkaTypeName spells a schema type as Kafka's Schema.Type enum does.
func kafkaTypeName(t connect.Type) string {
	switch t {
	case connect.Int8:
		return "INT8"
	case connect.Int16:
		return "INT16"
	case connect.Int32:
		return "INT32"
	case connect.Int64:
		return "INT64"
	case connect.Float32:
		return "FLOAT32"
	case connect.Float64:
		return "FLOAT64"
	case connect.Boolean:
		return "BOOLEAN"
	case connect.String:
		return "STRING"
	case connect.Bytes:
		return "BYTES"
	case connect.Array:
		return "ARRAY"
	case connect.Map:
		return "MAP"
	case connect.StructT:
		return "STRUCT"
	}
	return string(t)
}

func sortedStringKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedAnyKeys orders map keys deterministically: by kind (nil, bool,
// numbers, strings, others), then by value.
func sortedAnyKeys(m map[any]any) []any {
	keys := make([]any, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessKey(keys[i], keys[j]) })
	return keys
}

func keyRank(k any) (int, float64, string) {
	switch v := k.(type) {
	case nil:
		return 0, 0, ""
	case bool:
		if v {
			return 1, 1, ""
		}
		return 1, 0, ""
	case int8:
		return 2, float64(v), ""
	case int16:
		return 2, float64(v), ""
	case int32:
		return 2, float64(v), ""
	case int64:
		return 2, float64(v), ""
	case int:
		return 2, float64(v), ""
	case float32:
		return 2, float64(v), ""
	case float64:
		return 2, v, ""
	case string:
		return 3, 0, v
	}
	return 4, 0, fmt.Sprint(k)
}

func lessKey(a, b any) bool {
	ra, na, sa := keyRank(a)
	rb, nb, sb := keyRank(b)
	if ra != rb {
		return ra < rb
	}
	if na != nb {
		return na < nb
	}
	if ia, ok := a.(int64); ok { // exact order for int64 keys beyond 2^53
		if ib, ok := b.(int64); ok {
			return ia < ib
		}
	}
	return sa < sb
}

// decimalScale reads a Decimal schema's scale parameter as Kafka's
// Decimal.scale does.
func decimalScale(s *connect.Schema) (int32, error) {
	p, ok := s.Parameters[connect.DecimalScaleParam]
	if !ok {
		return 0, dataErrorf("Invalid Decimal schema: scale parameter not found.")
	}
	v, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return 0, dataErrorf("Invalid Decimal schema: scale parameter %q is not an int32", p)
	}
	if v < -maxDecimalScale || v > maxDecimalScale {
		return 0, dataErrorf("Invalid Decimal schema: scale %d is beyond ±%d", v, maxDecimalScale)
	}
	return int32(v), nil
}

// maxDecimalScale bounds the scales we decode. Java allows any int32, but
// a value like 1E-999999999 would cost gigabytes wherever it is printed
// in plain notation; no database type comes close (PostgreSQL's numeric
// stops at a scale of 16383).
const maxDecimalScale = 1 << 15

const millisPerDay = 24 * 60 * 60 * 1000

// appendSchema appends the JSON form of a schema, as JsonConverter's
// asJsonSchema builds it: "type", then "items" | "keys","values" |
// "fields", then "optional", "name", "version", "doc", "parameters",
// "default"; a struct field's schema object ends with "field": name.
func (c *JSON) appendSchema(b []byte, s *connect.Schema, fieldName string, isField bool) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, `{"type":`...)
	switch s.Type {
	case connect.Int8, connect.Int16, connect.Int32, connect.Int64, connect.Float32, connect.Float64,
		connect.Boolean, connect.String, connect.Bytes:
		b = appendJSONString(b, string(s.Type))
	case connect.Array:
		b = append(b, `"array","items":`...)
		if b, err = c.appendSchema(b, s.ValueSchema, "", false); err != nil {
			return b, err
		}
	case connect.Map:
		b = append(b, `"map","keys":`...)
		if b, err = c.appendSchema(b, s.KeySchema, "", false); err != nil {
			return b, err
		}
		b = append(b, `,"values":`...)
		if b, err = c.appendSchema(b, s.ValueSchema, "", false); err != nil {
			return b, err
		}
	case connect.StructT:
		b = append(b, `"struct","fields":[`...)
		for i, f := range s.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			if f.Schema == nil {
				return b, dataErrorf("struct field %q has no schema", f.Name)
			}
			if b, err = c.appendSchema(b, f.Schema, f.Name, true); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	default:
		return b, dataErrorf("Couldn't translate unsupported schema type %s.", s)
	}
	b = append(b, `,"optional":`...)
	b = strconv.AppendBool(b, s.Optional)
	if s.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, s.Name)
	}
	if s.Version != nil {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(*s.Version), 10)
	}
	if s.Doc != "" {
		b = append(b, `,"doc":`...)
		b = appendJSONString(b, s.Doc)
	}
	if s.Parameters != nil {
		b = append(b, `,"parameters":{`...)
		keys := make([]string, 0, len(s.Parameters))
		for k := range s.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, s.Parameters[k])
		}
		b = append(b, '}')
	}
	if s.Default != nil {
		b = append(b, `,"default":`...)
		base := *s // a struct default's schema is s without its default
		base.Default = nil
		if b, err = c.appendValue(b, &base, s.Default); err != nil {
			return b, fmt.Errorf("default value: %w", err)
		}
	}
	if isField {
		b = append(b, `,"field":`...)
		b = appendJSONString(b, fieldName)
	}
	return append(b, '}'), nil
}

func typeError(s *connect.Schema, v any) error {
	return dataErrorf("Invalid type for %s: %T", kafkaTypeName(s.Type), v)
}

// appendValue appends the JSON form of v under schema s (nil: schemaless),
// as JsonConverter.convertToJson does.
func (c *JSON) appendValue(b []byte, s *connect.Schema, v any) ([]byte, error) {
	if v == nil {
		switch {
		case s == nil:
			return append(b, "null"...), nil
		case s.Default != nil:
			return c.appendValue(b, s, s.Default)
		case s.Optional:
			return append(b, "null"...), nil
		}
		return b, dataErrorf("Conversion error: null value for field that is required and has no default value")
	}
	if s == nil {
		return c.appendSchemaless(b, v)
	}
	switch s.Name {
	case connect.DecimalName:
		d, ok := v.(connect.Decimal)
		if !ok {
			return b, dataErrorf("Invalid type for Decimal, expected connect.Decimal but was %T", v)
		}
		if c.decimalNumeric {
			return appendBigDecimal(b, d), nil
		}
		scale, err := decimalScale(s)
		if err != nil {
			return b, err
		}
		if d.Scale != scale {
			return b, dataErrorf("BigDecimal has mismatching scale value for given Decimal schema")
		}
		return appendBase64(b, twosComplement(d.Unscaled)), nil
	case connect.DateName:
		t, ok := v.(time.Time)
		if !ok {
			return b, dataErrorf("Invalid type for Date, expected time.Time but was %T", v)
		}
		ms := t.UnixMilli()
		if ms%millisPerDay != 0 {
			return b, dataErrorf("Kafka Connect Date type should not have any time fields set to non-zero values.")
		}
		return strconv.AppendInt(b, ms/millisPerDay, 10), nil
	case connect.TimeName:
		t, ok := v.(time.Time)
		if !ok {
			return b, dataErrorf("Invalid type for Time, expected time.Time but was %T", v)
		}
		ms := t.UnixMilli()
		if ms < 0 || ms >= millisPerDay {
			return b, dataErrorf("Kafka Connect Time type should not have any date fields set to non-zero values.")
		}
		return strconv.AppendInt(b, ms, 10), nil
	case connect.TimestampName:
		t, ok := v.(time.Time)
		if !ok {
			return b, dataErrorf("Invalid type for Timestamp, expected time.Time but was %T", v)
		}
		return strconv.AppendInt(b, t.UnixMilli(), 10), nil
	}
	switch s.Type {
	case connect.Int8:
		if x, ok := v.(int8); ok {
			return strconv.AppendInt(b, int64(x), 10), nil
		}
	case connect.Int16:
		if x, ok := v.(int16); ok {
			return strconv.AppendInt(b, int64(x), 10), nil
		}
	case connect.Int32:
		if x, ok := v.(int32); ok {
			return strconv.AppendInt(b, int64(x), 10), nil
		}
	case connect.Int64:
		if x, ok := v.(int64); ok {
			return strconv.AppendInt(b, x, 10), nil
		}
	case connect.Float32:
		if x, ok := v.(float32); ok {
			return appendJavaFloat(b, float64(x), 32, true), nil
		}
	case connect.Float64:
		if x, ok := v.(float64); ok {
			return appendJavaFloat(b, x, 64, true), nil
		}
	case connect.Boolean:
		if x, ok := v.(bool); ok {
			return strconv.AppendBool(b, x), nil
		}
	case connect.String:
		if x, ok := v.(string); ok {
			return appendJSONString(b, x), nil
		}
	case connect.Bytes:
		if x, ok := v.([]byte); ok {
			return appendBase64(b, x), nil
		}
	case connect.Array:
		if x, ok := v.([]any); ok {
			b = append(b, '[')
			for i, e := range x {
				if i > 0 {
					b = append(b, ',')
				}
				var err error
				if b, err = c.appendValue(b, s.ValueSchema, e); err != nil {
					return b, fmt.Errorf("array element %d: %w", i, err)
				}
			}
			return append(b, ']'), nil
		}
	case connect.Map:
		if x, ok := v.(map[any]any); ok {
			return c.appendMap(b, s, x)
		}
	case connect.StructT:
		st, ok := v.(*connect.Struct)
		if !ok {
			return b, dataErrorf("Mismatching schema: STRUCT schema needs a *connect.Struct, got %T", v)
		}
		if !structSchemaMatches(st.Schema(), s) {
			return b, dataErrorf("Mismatching schema.")
		}
		b = append(b, '{')
		for i, f := range s.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.Name)
			b = append(b, ':')
			var err error
			if b, err = c.appendValue(b, f.Schema, st.GetByIndex(i)); err != nil {
				return b, fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
		return append(b, '}'), nil
	default:
		return b, dataErrorf("Couldn't convert %T: unsupported schema type %q", v, s.Type)
	}
	return b, typeError(s, v)
}

func (c *JSON) appendMap(b []byte, s *connect.Schema, m map[any]any) ([]byte, error) {
	if s.KeySchema == nil {
		return b, dataErrorf("map schema without a key schema")
	}
	keys := sortedAnyKeys(m)
	var err error
	if s.KeySchema.Type == connect.String {
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			switch kv := k.(type) {
			case string:
				b = appendJSONString(b, kv)
			case nil:
				if !s.KeySchema.Optional && s.KeySchema.Default == nil {
					return b, dataErrorf("Conversion error: null map key for a required key schema")
				}
				if s.KeySchema.Default != nil {
					ks, ok := s.KeySchema.Default.(string)
					if !ok {
						return b, typeError(s.KeySchema, s.KeySchema.Default)
					}
					b = appendJSONString(b, ks)
				} else {
					b = append(b, `"null"`...) // Jackson's NullNode.asText()
				}
			default:
				return b, fmt.Errorf("map key: %w", typeError(s.KeySchema, k))
			}
			b = append(b, ':')
			if b, err = c.appendValue(b, s.ValueSchema, m[k]); err != nil {
				return b, fmt.Errorf("map value for key %v: %w", k, err)
			}
		}
		return append(b, '}'), nil
	}
	b = append(b, '[')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		if b, err = c.appendValue(b, s.KeySchema, k); err != nil {
			return b, fmt.Errorf("map key %v: %w", k, err)
		}
		b = append(b, ',')
		if b, err = c.appendValue(b, s.ValueSchema, m[k]); err != nil {
			return b, fmt.Errorf("map value for key %v: %w", k, err)
		}
		b = append(b, ']')
	}
	return append(b, ']'), nil
}

// appendSchemaless writes a value without a schema, inferring the type
// from the Go type as Kafka infers it from the Java class. Decimal,
// time.Time and *connect.Struct have no schemaless form (Kafka fails on
// them too).
func (c *JSON) appendSchemaless(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case float32:
		return appendJavaFloat(b, float64(x), 32, true), nil
	case float64:
		return appendJavaFloat(b, x, 64, true), nil
	case string:
		return appendJSONString(b, x), nil
	case []byte:
		return appendBase64(b, x), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = c.appendSchemaless(b, e); err != nil {
				return b, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		b = append(b, '{')
		for i, k := range sortedStringKeys(x) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = c.appendSchemaless(b, x[k]); err != nil {
				return b, fmt.Errorf("map value for key %q: %w", k, err)
			}
		}
		return append(b, '}'), nil
	case map[any]any:
		keys := sortedAnyKeys(x)
		objectMode := true
		for _, k := range keys {
			if _, ok := k.(string); !ok {
				objectMode = false
				break
			}
		}
		if objectMode {
			b = append(b, '{')
		} else {
			b = append(b, '[')
		}
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			if objectMode {
				b = appendJSONString(b, k.(string))
				b = append(b, ':')
			} else {
				b = append(b, '[')
				if b, err = c.appendSchemaless(b, k); err != nil {
					return b, fmt.Errorf("map key %v: %w", k, err)
				}
				b = append(b, ',')
			}
			if b, err = c.appendSchemaless(b, x[k]); err != nil {
				return b, fmt.Errorf("map value for key %v: %w", k, err)
			}
			if !objectMode {
				b = append(b, ']')
			}
		}
		if objectMode {
			return append(b, '}'), nil
		}
		return append(b, ']'), nil
	case *connect.Struct:
		return b, dataErrorf("Mismatching schema: a struct value needs its schema (got a nil schema)")
	}
	return b, dataErrorf("Go type %T does not have corresponding schema type.", v)
}

// structSchemaMatches reports whether a struct value of schema have may be
// written under schema want: the same schema, or (for a struct default
// value) want without its default.
func structSchemaMatches(have, want *connect.Schema) bool {
	if have == want || have.Equal(want) {
		return true
	}
	if want.Default == nil {
		return false
	}
	base := *want
	base.Default = nil
	return have.Equal(&base)
}
