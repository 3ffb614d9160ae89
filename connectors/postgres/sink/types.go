package sink

// Type mapping, Connect -> PostgreSQL (version 1).
//
// Values are sent in their text form (COPY's text format, into the table
// or the staging table, see table.go) and parsed by PostgreSQL with the
// target column's input function or cast, so one encoder per field
// suffices and the server does the final, exact conversion. Columns
// auto.create and auto.evolve add get these types (NULL-able unless the
// field is required; a field's default becomes the column's DEFAULT):
//
//	Connect schema (name or type)                 column type        value written
//	int8, int16 / int32 / int64                   smallint/integer/bigint   decimal
//	float32 / float64                             real / double precision   shortest exact; NaN, Infinity
//	boolean                                       boolean            t / f
//	string                                        text               as is
//	bytes                                         bytea              \x<hex>
//	org.apache.kafka.connect.data.Decimal         numeric(p,s) when the schema has the parameter
//	                                              connect.decimal.precision, else numeric
//	io.debezium.data.VariableScaleDecimal         numeric            struct{scale int32, value bytes}
//	org.apache.kafka.connect.data.Date            date               time.Time's UTC date
//	org.apache.kafka.connect.data.Time            time               time.Time's UTC time of day (ms)
//	org.apache.kafka.connect.data.Timestamp       timestamp          the instant in db.timezone, with its offset
//	io.debezium.time.Date (int32 days)            date               ±2147483647: ±infinity
//	io.debezium.time.MicroTimestamp (int64 µs)    timestamp          wall clock (Debezium encodes it as UTC);
//	                                                                 ±MaxInt64: ±infinity
//	io.debezium.time.Timestamp (ms), NanoTimestamp (ns)   timestamp
//	io.debezium.time.ZonedTimestamp (ISO string)  timestamptz        as is ("infinity" too)
//	io.debezium.time.MicroTime (int64 µs), Time (int32 ms), NanoTime (ns)   time
//	io.debezium.time.ZonedTime (string)           timetz             as is
//	io.debezium.time.MicroDuration (int64 µs)     interval           "<n> microseconds"; lossy for months, which
//	                                                                 the source turned into µs (30.4375 days)
//	io.debezium.data.Uuid (string)                uuid
//	io.debezium.data.Json (string)                jsonb
//	io.debezium.data.Xml (string)                 xml
//	io.debezium.data.Enum, EnumSet (string)       text
//	array<T>                                      T[]                array literal {..}
//	struct, map (other than a CDC envelope)       unsupported: flatten them first (Flatten transform)
//
// Writing into an existing column checks the field against the column's
// type category once per table and schema: numbers go to numeric or text
// columns, booleans to boolean or text, bytes to bytea, temporal values to
// date/time or text, durations to interval or text, arrays to arrays or
// text; strings go anywhere (PostgreSQL parses them: a string into a uuid,
// jsonb, enum or timestamptz column is the normal CDC case). A mismatch is a
// permanent error naming the field, the column and what to change.
//
// Schemaless values (map[string]any, from JSON without schemas) are written
// into existing tables: strings as is, numbers in decimal, booleans t/f,
// nested maps and arrays as JSON (or, into an array column, as an array
// literal), nil as NULL.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

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
	dbzMicroTimestamp       = "io.debezium.time.MicroTimestamp"
	dbzTimestamp            = "io.debezium.time.Timestamp"
	dbzNanoTimestamp        = "io.debezium.time.NanoTimestamp"
	dbzZonedTimestamp       = "io.debezium.time.ZonedTimestamp"
	dbzMicroTime            = "io.debezium.time.MicroTime"
	dbzTime                 = "io.debezium.time.Time"
	dbzNanoTime             = "io.debezium.time.NanoTime"
	dbzZonedTime            = "io.debezium.time.ZonedTime"
	dbzMicroDuration        = "io.debezium.time.MicroDuration"
)

// typeClass groups Connect schemas by what PostgreSQL columns they fit.
type typeClass int

const (
	classNumber typeClass = iota
	classBool
	classString
	classBytes
	classTemporal
	classDuration
	classArray
	classUnsupported
)

func classOf(s *connect.Schema) typeClass {
	switch s.Name {
	case connect.DecimalName, dbzVariableScaleDecimal:
		return classNumber
	case connect.DateName, connect.TimeName, connect.TimestampName, dbzDate, dbzMicroTimestamp, dbzTimestamp,
		dbzNanoTimestamp, dbzMicroTime, dbzTime, dbzNanoTime:
		return classTemporal
	case dbzMicroDuration:
		return classDuration
	}
	switch s.Type {
	case connect.Int8, connect.Int16, connect.Int32, connect.Int64, connect.Float32, connect.Float64:
		return classNumber
	case connect.Boolean:
		return classBool
	case connect.String:
		return classString
	case connect.Bytes:
		return classBytes
	case connect.Array:
		return classArray
	}
	return classUnsupported
}

// pgType returns the column type auto.create and auto.evolve give a field.
func pgType(s *connect.Schema) (string, error) {
	switch s.Name {
	case connect.DecimalName:
		// Debezium and Confluent sources give the column's precision.
		if p, err := strconv.Atoi(s.Parameters["connect.decimal.precision"]); err == nil && p > 0 && p <= 1000 {
			if scale, err := s.DecimalScale(); err == nil && scale >= 0 && int(scale) <= p {
				return fmt.Sprintf("numeric(%d,%d)", p, scale), nil
			}
		}
		return "numeric", nil
	case dbzVariableScaleDecimal:
		return "numeric", nil
	case connect.DateName, dbzDate:
		return "date", nil
	case connect.TimeName, dbzMicroTime, dbzTime, dbzNanoTime:
		return "time", nil
	case connect.TimestampName, dbzMicroTimestamp, dbzTimestamp, dbzNanoTimestamp:
		return "timestamp", nil
	case dbzZonedTimestamp:
		return "timestamptz", nil
	case dbzZonedTime:
		return "timetz", nil
	case dbzMicroDuration:
		return "interval", nil
	case dbzUUID:
		return "uuid", nil
	case dbzJSON:
		return "jsonb", nil
	case dbzXML:
		return "xml", nil
	}
	switch s.Type {
	case connect.Int8, connect.Int16:
		return "smallint", nil
	case connect.Int32:
		return "integer", nil
	case connect.Int64:
		return "bigint", nil
	case connect.Float32:
		return "real", nil
	case connect.Float64:
		return "double precision", nil
	case connect.Boolean:
		return "boolean", nil
	case connect.String:
		return "text", nil
	case connect.Bytes:
		return "bytea", nil
	case connect.Array:
		e, err := pgType(s.ValueSchema)
		if err != nil {
			return "", err
		}
		if strings.HasSuffix(e, "[]") {
			return e, nil // PostgreSQL arrays of arrays are multidimensional arrays of the element type
		}
		return e + "[]", nil
	}
	return "", fmt.Errorf("a %s has no PostgreSQL column type: flatten structs and maps first (transforms=flatten, transforms.flatten.type=org.apache.kafka.connect.transforms.Flatten$Value) or drop the field", s)
}

// compatible checks that values of schema s can be written to col.
func compatible(s *connect.Schema, col *column) bool {
	cat := col.category
	switch classOf(s) {
	case classNumber:
		return cat == 'N' || cat == 'S'
	case classBool:
		return cat == 'B' || cat == 'S'
	case classString:
		return true
	case classBytes:
		return col.typname == "bytea"
	case classTemporal:
		return cat == 'D' || cat == 'S'
	case classDuration:
		return cat == 'T' || cat == 'S'
	case classArray:
		return cat == 'A' || cat == 'S' || col.typname == "json" || col.typname == "jsonb"
	}
	return false
}

// encoder appends a value's text form (raw, unescaped) to b; it returns
// false for a NULL.
type encoder func(b []byte, v any) ([]byte, bool, error)

// textFn appends a non-nil value's text form.
type textFn func(b []byte, v any) ([]byte, error)

// newEncoder returns the encoder of a field of schema s (nil: schemaless)
// written into col. loc is db.timezone.
func newEncoder(s *connect.Schema, col *column, loc *time.Location) (encoder, error) {
	var fn textFn
	if s == nil {
		fn = schemalessText(col, loc)
	} else {
		var err error
		if fn, err = textOf(s, loc); err != nil {
			return nil, err
		}
		if s.Type == connect.Array && (col.typname == "json" || col.typname == "jsonb") {
			fn = jsonArrayText(s, loc)
		}
	}
	return func(b []byte, v any) ([]byte, bool, error) {
		if v == nil {
			return b, false, nil
		}
		b, err := fn(b, v)
		return b, true, err
	}, nil
}

// appendCopyEscaped appends s escaped for COPY's text format.
func appendCopyEscaped(b, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, c)
		}
	}
	return b
}

func typeErr(s *connect.Schema, v any) error {
	return fmt.Errorf("a value of schema %s must be a %s, got %T", s, goTypeOf(s), v)
}

func goTypeOf(s *connect.Schema) string {
	switch s.Name {
	case connect.DecimalName:
		return "connect.Decimal"
	case connect.DateName, connect.TimeName, connect.TimestampName:
		return "time.Time"
	case dbzVariableScaleDecimal:
		return "*connect.Struct"
	}
	switch s.Type {
	case connect.Float32:
		return "float32"
	case connect.Float64:
		return "float64"
	case connect.Bytes:
		return "[]byte"
	case connect.Array:
		return "[]any"
	}
	return string(s.Type)
}

// textOf returns the text form function of values of schema s.
func textOf(s *connect.Schema, loc *time.Location) (textFn, error) {
	switch s.Name {
	case connect.DecimalName:
		scale, err := s.DecimalScale()
		if err != nil {
			return nil, err
		}
		return func(b []byte, v any) ([]byte, error) {
			switch d := v.(type) {
			case connect.Decimal:
				return append(b, d.String()...), nil
			case []byte:
				return append(b, connect.Decimal{Unscaled: twosComplement(d), Scale: scale}.String()...), nil
			}
			return b, typeErr(s, v)
		}, nil
	case dbzVariableScaleDecimal:
		return func(b []byte, v any) ([]byte, error) {
			st, ok := v.(*connect.Struct)
			if !ok {
				return b, typeErr(s, v)
			}
			scale, _ := st.Get("scale").(int32)
			raw, _ := st.Get("value").([]byte)
			return append(b, connect.Decimal{Unscaled: twosComplement(raw), Scale: scale}.String()...), nil
		}, nil
	case connect.DateName:
		return timeText(s, func(b []byte, t time.Time) []byte { return appendDate(b, t.UTC()) }), nil
	case connect.TimeName:
		return timeText(s, func(b []byte, t time.Time) []byte { return appendClock(b, t.UTC()) }), nil
	case connect.TimestampName:
		return timeText(s, func(b []byte, t time.Time) []byte { return appendTimestamp(b, t.In(loc), true) }), nil
	case dbzDate:
		return intText(s, func(b []byte, n int64) []byte {
			if n >= math.MaxInt32 || n <= -math.MaxInt32 { // how CDC sources send PostgreSQL's ±infinity
				return appendInfinity(b, n)
			}
			return appendDate(b, time.Unix(n*86400, 0).UTC())
		}), nil
	case dbzMicroTimestamp:
		return intText(s, func(b []byte, n int64) []byte {
			if n >= math.MaxInt64 || n <= -math.MaxInt64 {
				return appendInfinity(b, n)
			}
			return appendTimestamp(b, time.UnixMicro(n).UTC(), false)
		}), nil
	case dbzTimestamp:
		return intText(s, func(b []byte, n int64) []byte {
			if n >= math.MaxInt64 || n <= -math.MaxInt64 {
				return appendInfinity(b, n)
			}
			return appendTimestamp(b, time.UnixMilli(n).UTC(), false)
		}), nil
	case dbzNanoTimestamp:
		return intText(s, func(b []byte, n int64) []byte { return appendTimestamp(b, time.Unix(0, n).UTC(), false) }), nil
	case dbzMicroTime:
		return intText(s, func(b []byte, n int64) []byte { return appendDuration(b, n*1000) }), nil
	case dbzTime:
		return intText(s, func(b []byte, n int64) []byte { return appendDuration(b, n*1_000_000) }), nil
	case dbzNanoTime:
		return intText(s, appendDuration), nil
	case dbzMicroDuration:
		return intText(s, func(b []byte, n int64) []byte {
			return append(strconv.AppendInt(b, n, 10), " microseconds"...)
		}), nil
	}
	switch s.Type {
	case connect.Int8, connect.Int16, connect.Int32, connect.Int64:
		return intText(s, func(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }), nil
	case connect.Float32:
		return func(b []byte, v any) ([]byte, error) {
			f, ok := v.(float32)
			if !ok {
				return b, typeErr(s, v)
			}
			return appendFloat(b, float64(f), 32), nil
		}, nil
	case connect.Float64:
		return func(b []byte, v any) ([]byte, error) {
			f, ok := v.(float64)
			if !ok {
				return b, typeErr(s, v)
			}
			return appendFloat(b, f, 64), nil
		}, nil
	case connect.Boolean:
		return func(b []byte, v any) ([]byte, error) {
			x, ok := v.(bool)
			if !ok {
				return b, typeErr(s, v)
			}
			if x {
				return append(b, 't'), nil
			}
			return append(b, 'f'), nil
		}, nil
	case connect.String:
		return func(b []byte, v any) ([]byte, error) {
			x, ok := v.(string)
			if !ok {
				return b, typeErr(s, v)
			}
			return append(b, x...), nil
		}, nil
	case connect.Bytes:
		return func(b []byte, v any) ([]byte, error) {
			x, ok := v.([]byte)
			if !ok {
				return b, typeErr(s, v)
			}
			return hex.AppendEncode(append(b, '\\', 'x'), x), nil
		}, nil
	case connect.Array:
		elem, err := textOf(s.ValueSchema, loc)
		if err != nil {
			return nil, err
		}
		nested := s.ValueSchema.Type == connect.Array
		return func(b []byte, v any) ([]byte, error) {
			a, ok := v.([]any)
			if !ok {
				return b, typeErr(s, v)
			}
			return appendArray(b, a, elem, nested)
		}, nil
	}
	_, err := pgType(s)
	return nil, err
}

func intText(s *connect.Schema, f func([]byte, int64) []byte) textFn {
	return func(b []byte, v any) ([]byte, error) {
		var n int64
		switch x := v.(type) {
		case int8:
			n = int64(x)
		case int16:
			n = int64(x)
		case int32:
			n = int64(x)
		case int64:
			n = x
		default:
			return b, typeErr(s, v)
		}
		return f(b, n), nil
	}
}

func timeText(s *connect.Schema, f func([]byte, time.Time) []byte) textFn {
	return func(b []byte, v any) ([]byte, error) {
		t, ok := v.(time.Time)
		if !ok {
			return b, typeErr(s, v)
		}
		return f(b, t), nil
	}
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendArray appends a PostgreSQL array literal.
func appendArray(b []byte, a []any, elem textFn, nested bool) ([]byte, error) {
	b = append(b, '{')
	var scratch []byte
	for i, e := range a {
		if i > 0 {
			b = append(b, ',')
		}
		if e == nil {
			b = append(b, "NULL"...)
			continue
		}
		var err error
		if scratch, err = elem(scratch[:0], e); err != nil {
			return b, fmt.Errorf("array element %d: %w", i, err)
		}
		if nested {
			b = append(b, scratch...)
			continue
		}
		b = append(b, '"')
		for _, c := range scratch {
			if c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// twosComplement decodes a big-endian two's-complement integer.
func twosComplement(raw []byte) *big.Int {
	n := new(big.Int).SetBytes(raw)
	if len(raw) > 0 && raw[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(raw)*8)))
	}
	return n
}

func appendInfinity(b []byte, n int64) []byte {
	if n < 0 {
		return append(b, "-infinity"...)
	}
	return append(b, "infinity"...)
}

// appendDate appends t's date as PostgreSQL reads it (BC years too).
func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	b = appendPadded(b, y, 4)
	b = append(b, '-')
	b = appendPadded(b, int(m), 2)
	b = append(b, '-')
	b = appendPadded(b, d, 2)
	if bc {
		b = append(b, " BC"...)
	}
	return b
}

// appendClock appends t's time of day with microseconds.
func appendClock(b []byte, t time.Time) []byte {
	b = appendPadded(b, t.Hour(), 2)
	b = append(b, ':')
	b = appendPadded(b, t.Minute(), 2)
	b = append(b, ':')
	b = appendPadded(b, t.Second(), 2)
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		b = appendPadded(b, us, 6)
	}
	return b
}

// appendTimestamp appends "date time" (and t's UTC offset when withZone:
// a timestamptz column reads the instant, a timestamp column ignores it).
func appendTimestamp(b []byte, t time.Time, withZone bool) []byte {
	y := t.Year()
	b = appendDate(b, t)
	bc := y <= 0
	if bc {
		b = b[:len(b)-3]
	}
	b = append(b, ' ')
	b = appendClock(b, t)
	if withZone {
		_, off := t.Zone()
		b = append(b, '+')
		if off < 0 {
			b[len(b)-1] = '-'
			off = -off
		}
		b = appendPadded(b, off/3600, 2)
		b = append(b, ':')
		b = appendPadded(b, off%3600/60, 2)
		if off%60 != 0 {
			b = append(b, ':')
			b = appendPadded(b, off%60, 2)
		}
	}
	if bc {
		b = append(b, " BC"...)
	}
	return b
}

// appendDuration appends a time of day given in nanoseconds since midnight
// (24:00:00 included, as PostgreSQL allows it).
func appendDuration(b []byte, ns int64) []byte {
	sec := ns / 1e9
	b = appendPadded(b, int(sec/3600), 2)
	b = append(b, ':')
	b = appendPadded(b, int(sec%3600/60), 2)
	b = append(b, ':')
	b = appendPadded(b, int(sec%60), 2)
	if frac := ns % 1e9; frac != 0 {
		b = append(b, '.')
		b = appendPadded(b, int(frac), 9)
	}
	return b
}

func appendPadded(b []byte, n, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// jsonArrayText renders an array field as JSON (for a json/jsonb column).
func jsonArrayText(s *connect.Schema, loc *time.Location) textFn {
	return func(b []byte, v any) ([]byte, error) {
		j, err := json.Marshal(toJSONValue(v, loc))
		if err != nil {
			return b, err
		}
		return append(b, j...), nil
	}
}

// toJSONValue turns a Connect value into one encoding/json renders well.
func toJSONValue(v any, loc *time.Location) any {
	switch x := v.(type) {
	case []byte:
		return x // base64, as Kafka Connect's JsonConverter
	case connect.Decimal:
		return json.Number(x.String())
	case time.Time:
		return x.In(loc).Format(time.RFC3339Nano)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSONValue(e, loc)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toJSONValue(e, loc)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = toJSONValue(e, loc)
		}
		return out
	case *connect.Struct:
		out := map[string]any{}
		for _, f := range x.Schema().Fields {
			out[f.Name] = toJSONValue(x.Get(f.Name), loc)
		}
		return out
	}
	return v
}

// schemalessText renders schemaless (JSON) values for column col.
func schemalessText(col *column, loc *time.Location) textFn {
	var self textFn
	self = func(b []byte, v any) ([]byte, error) {
		switch x := v.(type) {
		case string:
			return append(b, x...), nil
		case json.Number:
			return append(b, x...), nil
		case bool:
			if x {
				return append(b, 't'), nil
			}
			return append(b, 'f'), nil
		case int64:
			return strconv.AppendInt(b, x, 10), nil
		case int32:
			return strconv.AppendInt(b, int64(x), 10), nil
		case int:
			return strconv.AppendInt(b, int64(x), 10), nil
		case int16:
			return strconv.AppendInt(b, int64(x), 10), nil
		case int8:
			return strconv.AppendInt(b, int64(x), 10), nil
		case float64:
			return appendFloat(b, x, 64), nil
		case float32:
			return appendFloat(b, float64(x), 32), nil
		case []byte:
			return hex.AppendEncode(append(b, '\\', 'x'), x), nil
		case connect.Decimal:
			return append(b, x.String()...), nil
		case time.Time:
			return appendTimestamp(b, x.In(loc), true), nil
		case []any:
			if col.category == 'A' {
				return appendArray(b, x, self, false)
			}
		}
		j, err := json.Marshal(toJSONValue(v, loc))
		if err != nil {
			return b, fmt.Errorf("cannot render a %T for column %s: %w", v, col.name, err)
		}
		return append(b, j...), nil
	}
	return self
}

// literal renders a field default as an SQL literal of type typ.
func literal(s *connect.Schema, typ string, loc *time.Location) (string, bool) {
	if s.Default == nil || s.Type == connect.Array {
		return "", false
	}
	fn, err := textOf(s, loc)
	if err != nil {
		return "", false
	}
	b, err := fn(nil, s.Default)
	if err != nil {
		return "", false
	}
	return "'" + strings.ReplaceAll(string(b), "'", "''") + "'::" + typ, true
}
