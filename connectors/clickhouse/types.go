package clickhouse

// Type mapping, Connect -> ClickHouse (version 1).
//
// Columns auto.create and auto.evolve add get these types. Optional fields
// get Nullable(T), except arrays (ClickHouse has no Nullable(Array): a null
// array is written as []) and key columns (ORDER BY columns cannot be
// Nullable: a null key part is written as the type's zero value). "old"
// means a server older than 20.1 (Debian's 18.16 is one), which has no
// DateTime64; the server's version comes from the connection handshake
// (the same numbers SELECT version() shows).
//
//	Connect schema (name or type)             column type                  value written
//	int8 / int16 / int32 / int64              Int8 / Int16 / Int32 / Int64
//	float32 / float64                         Float32 / Float64
//	boolean                                   UInt8                        0 / 1
//	string                                    String
//	bytes                                     String                       the bytes as they are
//	org.apache.kafka.connect.data.Decimal     Decimal(P,S), P from the schema parameter
//	                                          connect.decimal.precision, else 38
//	io.debezium.data.VariableScaleDecimal     String                       the exact decimal text (the scale
//	                                                                       varies per value: no fixed S fits)
//	org.apache.kafka.connect.data.Date,       Date
//	io.debezium.time.Date (int32 days)
//	org.apache.kafka.connect.data.Time        Int32                        milliseconds since midnight
//	io.debezium.time.Time / MicroTime /       Int32 / Int64 / Int64        ms / µs / ns since midnight, as sent
//	NanoTime
//	org.apache.kafka.connect.data.Timestamp,  DateTime64(3, 'UTC');        old: Int64 milliseconds since the epoch
//	io.debezium.time.Timestamp (ms)
//	io.debezium.time.MicroTimestamp (µs)      DateTime64(6, 'UTC');        old: Int64 microseconds since the epoch
//	io.debezium.time.NanoTimestamp (ns)       DateTime64(9, 'UTC');        old: Int64 nanoseconds since the epoch
//	io.debezium.time.ZonedTimestamp (ISO)     DateTime64(6, 'UTC') parsed; old: String as sent
//	io.debezium.data.Uuid (string)            UUID
//	io.debezium.data.Json, Xml, Enum, EnumSet String
//	array<T>                                  Array(T) (Array(Nullable(T)) for optional elements)
//	map<K,V>, struct (not a CDC envelope)     String                       JSON text (Map(K,V) is not used yet,
//	                                                                       on any server version)
//
// On old servers the Int64 fallback is exact and reversible
// (fromUnixTimestamp64Milli does not exist there: use toDateTime(x / 1000)),
// where DateTime would truncate to seconds and fail before 1970.
//
// Writing into an existing column converts by the column's type: integers
// and booleans into any integer column (range-checked), numbers into
// Float and Decimal columns, temporal values into Date, DateTime,
// DateTime64 or Int64 (in the unit above) columns, strings into String,
// UUID, Decimal or DateTime columns (parsed), and anything into String
// columns (numbers in decimal, times in RFC 3339, nested values as JSON).
// A value that does not fit (a string into an Int32 column, 300 into
// Int8, "abc" into UUID) is a permanent error naming the record, field,
// column and what to change. Schemaless values (map[string]any from JSON
// without schemas) are written into existing tables the same way;
// auto.create needs schemas.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tributary-data/tributary/connect"
)

// Debezium's semantic type names.
const (
	dbzVariableScaleDecimal = "io.debezium.data.VariableScaleDecimal"
	dbzUUID                 = "io.debezium.data.Uuid"
	dbzJSON                 = "io.debezium.data.Json"
	dbzXML                  = "io.debezium.data.Xml"
	dbzEnum                 = "io.debezium.data.Enum"
	dbzEnumSet              = "io.debezium.data.EnumSet"
	dbzDate                 = "io.debezium.time.Date"
	dbzTimestamp            = "io.debezium.time.Timestamp"
	dbzMicroTimestamp       = "io.debezium.time.MicroTimestamp"
	dbzNanoTimestamp        = "io.debezium.time.NanoTimestamp"
	dbzZonedTimestamp       = "io.debezium.time.ZonedTimestamp"
	dbzTime                 = "io.debezium.time.Time"
	dbzMicroTime            = "io.debezium.time.MicroTime"
	dbzNanoTime             = "io.debezium.time.NanoTime"
	precisionParam          = "connect.decimal.precision"
)

// caps are what the server's version supports.
type caps struct {
	major, minor uint64
}

func (c caps) atLeast(major, minor uint64) bool {
	return c.major > major || (c.major == major && c.minor >= minor)
}
func (c caps) dateTime64() bool { return c.atLeast(20, 1) }
func (c caps) isDeleted() bool  { return c.atLeast(23, 2) }

// columnType returns the column type for a field schema (see the file doc).
func columnType(s *connect.Schema, c caps, key bool) (string, error) {
	t, err := baseType(s, c)
	if err != nil {
		return "", err
	}
	if s.Optional && !key && s.Type != connect.Array && !strings.HasPrefix(t, "Array(") {
		t = "Nullable(" + t + ")"
	}
	return t, nil
}

func baseType(s *connect.Schema, c caps) (string, error) {
	switch s.Name {
	case connect.DecimalName:
		scale, err := s.DecimalScale()
		if err != nil {
			return "", err
		}
		p := int64(38)
		if v, err := strconv.ParseInt(s.Parameters[precisionParam], 10, 32); err == nil && v > 0 && v <= 76 {
			p = v
		}
		if int64(scale) > p {
			p = int64(scale)
		}
		if !c.atLeast(20, 1) && p > 38 {
			p = 38
		}
		return fmt.Sprintf("Decimal(%d, %d)", p, scale), nil
	case dbzVariableScaleDecimal, dbzJSON, dbzXML, dbzEnum, dbzEnumSet:
		return "String", nil
	case connect.DateName, dbzDate:
		return "Date", nil
	case connect.TimeName, dbzTime:
		return "Int32", nil
	case dbzMicroTime, dbzNanoTime:
		return "Int64", nil
	case connect.TimestampName, dbzTimestamp:
		if c.dateTime64() {
			return "DateTime64(3, 'UTC')", nil
		}
		return "Int64", nil
	case dbzMicroTimestamp:
		if c.dateTime64() {
			return "DateTime64(6, 'UTC')", nil
		}
		return "Int64", nil
	case dbzNanoTimestamp:
		if c.dateTime64() {
			return "DateTime64(9, 'UTC')", nil
		}
		return "Int64", nil
	case dbzZonedTimestamp:
		if c.dateTime64() {
			return "DateTime64(6, 'UTC')", nil
		}
		return "String", nil
	case dbzUUID:
		return "UUID", nil
	}
	switch s.Type {
	case connect.Int8:
		return "Int8", nil
	case connect.Int16:
		return "Int16", nil
	case connect.Int32:
		return "Int32", nil
	case connect.Int64:
		return "Int64", nil
	case connect.Float32:
		return "Float32", nil
	case connect.Float64:
		return "Float64", nil
	case connect.Boolean:
		return "UInt8", nil
	case connect.String, connect.Bytes, connect.Map, connect.StructT:
		return "String", nil
	case connect.Array:
		if s.ValueSchema == nil {
			return "", fmt.Errorf("array schema without an element schema")
		}
		if s.ValueSchema.Type == connect.Array {
			inner, err := baseType(s.ValueSchema, c)
			if err != nil {
				return "", err
			}
			return "Array(" + inner + ")", nil
		}
		inner, err := columnType(s.ValueSchema, c, false)
		if err != nil {
			return "", err
		}
		return "Array(" + inner + ")", nil
	}
	return "", fmt.Errorf("schema %s has no ClickHouse type", s)
}

// chType is a parsed ClickHouse column type.
type chType struct {
	raw      string
	base     string // Int32, String, Decimal, DateTime64, Array, ...
	nullable bool
	elem     *chType // Array
	scale    int     // Decimal, DateTime64
}

// parseType parses a type as DESCRIBE TABLE shows it.
func parseType(raw string) *chType {
	raw = strings.TrimSpace(raw)
	t := &chType{raw: raw}
	name, args, hasArgs := strings.Cut(raw, "(")
	args = strings.TrimSuffix(args, ")")
	t.base = strings.TrimSpace(name)
	if !hasArgs {
		return t
	}
	switch t.base {
	case "Nullable", "LowCardinality":
		inner := parseType(args)
		inner.raw = raw
		inner.nullable = inner.nullable || t.base == "Nullable"
		return inner
	case "Array":
		t.elem = parseType(args)
	case "Decimal":
		parts := strings.Split(args, ",")
		if len(parts) == 2 {
			t.scale, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
		}
	case "Decimal32", "Decimal64", "Decimal128", "Decimal256":
		t.scale, _ = strconv.Atoi(strings.TrimSpace(args))
		t.base = "Decimal"
	case "DateTime64":
		p, _, _ := strings.Cut(args, ",")
		t.scale, _ = strconv.Atoi(strings.TrimSpace(p))
	}
	return t
}

// converter turns a field's value into what clickhouse-go appends to a
// column; nil values are handled by the caller.
type converter func(v any) (any, error)

// errMismatch is a value that cannot be written into its column.
type errMismatch struct{ msg string }

func (e *errMismatch) Error() string { return e.msg }

func mismatch(format string, a ...any) error { return &errMismatch{msg: fmt.Sprintf(format, a...)} }

// convertFor returns the converter of values of schema s (nil: schemaless)
// into a column of type t.
func convertFor(s *connect.Schema, t *chType) converter {
	name := ""
	if s != nil {
		name = s.Name
	}
	conv := convertBase(name, s, t)
	if t.nullable {
		return conv
	}
	return func(v any) (any, error) {
		if v == nil {
			return zeroOf(t), nil
		}
		return conv(v)
	}
}

// zeroOf is what a null is written as in a non-Nullable column.
func zeroOf(t *chType) any {
	if t.base == "Array" {
		return []any{}
	}
	return nil // clickhouse-go appends the type's zero value for nil
}

func convertBase(name string, s *connect.Schema, t *chType) converter {
	switch t.base {
	case "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64":
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			var n int64
			switch x := v.(type) {
			case time.Time:
				n = timeToInt(name, x)
			default:
				var ok bool
				if n, ok = toInt64(v); !ok {
					return nil, mismatch("a %s value cannot be written into a %s column", kindOf(v), t.raw)
				}
			}
			return intAs(n, t)
		}
	case "Float32", "Float64":
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			var f float64
			switch x := v.(type) {
			case float32:
				f = float64(x)
			case float64:
				f = x
			default:
				n, ok := toInt64(v)
				if !ok {
					return nil, mismatch("a %s value cannot be written into a %s column", kindOf(v), t.raw)
				}
				f = float64(n)
			}
			if t.base == "Float32" {
				return float32(f), nil
			}
			return f, nil
		}
	case "String", "FixedString", "Enum8", "Enum16":
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			return toText(name, v)
		}
	case "UUID":
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			str, ok := v.(string)
			if !ok || !isUUID(str) {
				return nil, mismatch("%s is not a UUID (column type %s)", describeValue(v), t.raw)
			}
			return str, nil
		}
	case "Decimal":
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			d, err := toDecimal(name, v)
			if err != nil {
				return nil, mismatch("%v (column type %s)", err, t.raw)
			}
			if d.Exponent() < -int32(t.scale) && !d.Equal(d.Truncate(int32(t.scale))) {
				return nil, mismatch("%s has more than %d decimal places (column type %s)", d, t.scale, t.raw)
			}
			return d, nil
		}
	case "Date", "DateTime", "DateTime64":
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			tm, err := toTime(name, v)
			if err != nil {
				return nil, mismatch("%v (column type %s)", err, t.raw)
			}
			return tm, nil
		}
	case "Array":
		var elemSchema *connect.Schema
		if s != nil {
			elemSchema = s.ValueSchema
		}
		elem := convertFor(elemSchema, t.elem)
		return func(v any) (any, error) {
			if v == nil {
				return []any{}, nil
			}
			a, ok := v.([]any)
			if !ok {
				return nil, mismatch("a %s value cannot be written into a %s column", kindOf(v), t.raw)
			}
			out := make([]any, len(a))
			for i, e := range a {
				c, err := elem(e)
				if err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
				out[i] = c
			}
			return out, nil
		}
	}
	return func(v any) (any, error) {
		return nil, mismatch("column type %s is not supported by the sink", t.raw)
	}
}

// intAs range-checks n for an integer column and returns it in the
// column's Go type.
func intAs(n int64, t *chType) (any, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch t.base {
	case "Int8":
		lo, hi = math.MinInt8, math.MaxInt8
	case "Int16":
		lo, hi = math.MinInt16, math.MaxInt16
	case "Int32":
		lo, hi = math.MinInt32, math.MaxInt32
	case "UInt8":
		lo, hi = 0, math.MaxUint8
	case "UInt16":
		lo, hi = 0, math.MaxUint16
	case "UInt32":
		lo, hi = 0, math.MaxUint32
	case "UInt64":
		lo = 0
	}
	if n < lo || n > hi {
		return nil, mismatch("%d does not fit a %s column", n, t.raw)
	}
	switch t.base {
	case "Int8":
		return int8(n), nil
	case "Int16":
		return int16(n), nil
	case "Int32":
		return int32(n), nil
	case "UInt8":
		return uint8(n), nil
	case "UInt16":
		return uint16(n), nil
	case "UInt32":
		return uint32(n), nil
	case "UInt64":
		return uint64(n), nil
	}
	return n, nil
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case float64: // schemaless JSON numbers
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

// timeToInt turns a Connect temporal value into the Int column encoding
// of the file doc.
func timeToInt(name string, t time.Time) int64 {
	switch name {
	case connect.TimeName:
		h, m, s := t.UTC().Clock()
		return int64(((h*60+m)*60+s)*1000 + t.UTC().Nanosecond()/1e6)
	case connect.DateName:
		return t.UTC().Unix() / 86400
	}
	return t.UnixMilli()
}

// toTime turns a temporal value (time.Time, Debezium's epoch numbers, an
// ISO string) into a time.
func toTime(name string, v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date or time", x)
	}
	n, ok := toInt64(v)
	if !ok {
		return time.Time{}, fmt.Errorf("a %s value is not a date or time", kindOf(v))
	}
	switch name {
	case dbzDate:
		return time.Unix(n*86400, 0).UTC(), nil
	case dbzMicroTimestamp:
		return time.UnixMicro(n).UTC(), nil
	case dbzNanoTimestamp:
		return time.Unix(0, n).UTC(), nil
	case dbzTimestamp:
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("a %s value without a temporal schema name is not a date or time", kindOf(v))
}

func toDecimal(name string, v any) (decimal.Decimal, error) {
	switch x := v.(type) {
	case connect.Decimal:
		if x.Unscaled == nil {
			return decimal.Zero, nil
		}
		return decimal.NewFromBigInt(x.Unscaled, -x.Scale), nil
	case *connect.Struct:
		if name == dbzVariableScaleDecimal {
			d, err := variableScale(x)
			if err != nil {
				return decimal.Zero, err
			}
			return decimal.NewFromBigInt(d.Unscaled, -d.Scale), nil
		}
	case string:
		d, err := decimal.NewFromString(x)
		if err != nil {
			return decimal.Zero, fmt.Errorf("%q is not a decimal number", x)
		}
		return d, nil
	case float32:
		return decimal.NewFromFloat32(x), nil
	case float64:
		return decimal.NewFromFloat(x), nil
	}
	if n, ok := toInt64(v); ok {
		return decimal.NewFromInt(n), nil
	}
	return decimal.Zero, fmt.Errorf("a %s value is not a decimal number", kindOf(v))
}

// variableScale decodes Debezium's VariableScaleDecimal struct{scale int32,
// value bytes (big-endian two's complement)}.
func variableScale(st *connect.Struct) (connect.Decimal, error) {
	scale, ok1 := st.Get("scale").(int32)
	raw, ok2 := st.Get("value").([]byte)
	if !ok1 || !ok2 {
		return connect.Decimal{}, fmt.Errorf("%s struct without int32 scale and bytes value", dbzVariableScaleDecimal)
	}
	u := new(big.Int).SetBytes(raw)
	if len(raw) > 0 && raw[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(len(raw)*8)))
	}
	return connect.Decimal{Unscaled: u, Scale: scale}, nil
}

// toText renders a value for a String column.
func toText(name string, v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return x, nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case connect.Decimal:
		return x.String(), nil
	case time.Time:
		switch name {
		case connect.DateName:
			return x.UTC().Format("2006-01-02"), nil
		case connect.TimeName:
			return x.UTC().Format("15:04:05.000"), nil
		}
		return x.UTC().Format(time.RFC3339Nano), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case *connect.Struct:
		if name == dbzVariableScaleDecimal {
			d, err := variableScale(x)
			if err != nil {
				return nil, mismatch("%v", err)
			}
			return d.String(), nil
		}
	}
	if n, ok := toInt64(v); ok {
		return strconv.FormatInt(n, 10), nil
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil, mismatch("a %s value cannot be rendered as JSON: %v", kindOf(v), err)
	}
	return string(b), nil
}

// jsonable turns Connect values into values encoding/json renders.
func jsonable(v any) any {
	switch x := v.(type) {
	case *connect.Struct:
		m := make(map[string]any, len(x.Schema().Fields))
		for i, f := range x.Schema().Fields {
			m[f.Name] = jsonable(x.GetByIndex(i))
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case connect.Decimal:
		return json.Number(x.String())
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case []byte:
		return "bytes"
	case bool:
		return "boolean"
	case int8, int16, int32, int64, int:
		return "integer"
	case float32, float64:
		return "floating-point"
	case connect.Decimal:
		return "decimal"
	case time.Time:
		return "date/time"
	case []any:
		return "array"
	case map[any]any, map[string]any:
		return "map"
	case *connect.Struct:
		return "struct"
	}
	return fmt.Sprintf("%T", v)
}

func describeValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return kindOf(v) + " value"
}
