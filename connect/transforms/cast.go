package transforms

import (
	"encoding/base64"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// castTypes maps Kafka's Schema.Type names accepted in a Cast spec (case
// insensitive) to our types.
func castOutputType(name string) (connect.Type, bool) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "INT8":
		return connect.Int8, true
	case "INT16":
		return connect.Int16, true
	case "INT32":
		return connect.Int32, true
	case "INT64":
		return connect.Int64, true
	case "FLOAT32":
		return connect.Float32, true
	case "FLOAT64":
		return connect.Float64, true
	case "BOOLEAN":
		return connect.Boolean, true
	case "STRING":
		return connect.String, true
	}
	return "", false
}

// Cast is Kafka's Cast$Key / Cast$Value: it casts fields of a Struct or
// schemaless map, or the whole key/value, to int8, int16, int32, int64,
// float32, float64, boolean or string. Option: spec ("f1:int32,f2:string",
// or a single type such as "int64" for the whole value). Casts follow
// Java's conversions: narrowing integers wrap, floats truncate toward zero
// (saturating), strings are parsed (out of range fails), booleans are 1/0,
// numbers to boolean are "long value != 0", bytes only cast to string
// (base64). Decimal values cast to numbers by truncation and to string in
// BigDecimal.toString form; Date/Time/Timestamp values cast to numbers as
// days or milliseconds and to string in ISO form. A null key/value passes
// unchanged. Derived schemas keep optionality and cast default values; a
// whole-value cast keeps the schema's name, version, doc and parameters
// unless they are those of a logical type.
type Cast struct {
	side  side
	casts map[string]connect.Type
	whole connect.Type // "" unless a whole-value cast
	cache schemaCache
}

// Configure implements Transformation.
func (t *Cast) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "spec")
	if err != nil {
		return err
	}
	spec, ok := o.list("spec")
	if !ok {
		return configErr("spec", "missing required configuration with no default value")
	}
	if len(spec) == 0 {
		return configErr("spec", "must specify at least one field to cast")
	}
	t.casts = map[string]connect.Type{}
	for _, m := range spec {
		parts := strings.Split(m, ":")
		switch len(parts) {
		case 1:
			ty, ok := castOutputType(parts[0])
			if !ok {
				return configErr("spec", "cast transformation does not support casting to %q; supported types are int8, int16, int32, int64, float32, float64, boolean, string", parts[0])
			}
			t.whole = ty
		case 2:
			ty, ok := castOutputType(parts[1])
			if !ok {
				return configErr("spec", "invalid type found in casting spec: %q; supported types are int8, int16, int32, int64, float32, float64, boolean, string", strings.TrimSpace(parts[1]))
			}
			t.casts[strings.TrimSpace(parts[0])] = ty
		default:
			return configErr("spec", "invalid cast mapping: %q", m)
		}
	}
	if t.whole != "" && len(spec) > 1 {
		return configErr("spec", "cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec")
	}
	return nil
}

// Apply implements Transformation.
func (t *Cast) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if value == nil {
		return r, nil
	}
	if schema == nil {
		if t.whole != "" {
			v, err := castValue(nil, value, t.whole)
			if err != nil {
				return nil, err
			}
			return t.side.with(r, nil, v), nil
		}
		m, err := requireMap(value, "cast types")
		if err != nil {
			return nil, err
		}
		out := copyMap(m, len(t.casts))
		for f, ty := range t.casts {
			v, err := castValue(nil, m[f], ty)
			if err != nil {
				return nil, err
			}
			out[f] = v
		}
		return t.side.with(r, nil, out), nil
	}
	updated, err := t.cache.getOrBuild(schema, t.buildSchema)
	if err != nil {
		return nil, err
	}
	if t.whole != "" {
		v, err := castValue(schema, value, t.whole)
		if err != nil {
			return nil, err
		}
		return t.side.with(r, updated, v), nil
	}
	st, err := requireStruct(value, "cast types")
	if err != nil {
		return nil, err
	}
	out := connect.NewStruct(updated)
	for i, f := range st.Schema().Fields {
		v := st.GetByIndex(i)
		if ty, ok := t.casts[f.Name]; ok {
			if v, err = castValue(f.Schema, v, ty); err != nil {
				return nil, err
			}
		}
		if _, err := out.Put(f.Name, v); err != nil {
			return nil, dataErr("%v", err)
		}
	}
	return t.side.with(r, updated, out), nil
}

func isLogical(s *connect.Schema) bool {
	switch s.Name {
	case connect.DecimalName, connect.DateName, connect.TimeName, connect.TimestampName:
		return true
	}
	return false
}

func (t *Cast) buildSchema(in *connect.Schema) (*connect.Schema, error) {
	var out *connect.Schema
	if t.whole != "" {
		if err := checkCastInput(in.Type); err != nil {
			return nil, err
		}
		out = &connect.Schema{Type: t.whole}
		if !isLogical(in) {
			out.Name, out.Version, out.Doc = in.Name, in.Version, in.Doc
			if in.Parameters != nil {
				out.Parameters = make(map[string]string, len(in.Parameters))
				for k, v := range in.Parameters {
					out.Parameters[k] = v
				}
			}
		}
	} else {
		if in.Type != connect.StructT {
			return nil, dataErr("only Struct objects supported for [cast types], found schema: %s", in)
		}
		fields := make([]connect.Field, 0, len(in.Fields))
		for _, f := range in.Fields {
			ty, ok := t.casts[f.Name]
			if !ok {
				fields = append(fields, f)
				continue
			}
			fs := &connect.Schema{Type: ty, Optional: f.Schema.Optional}
			if f.Schema.Default != nil {
				d, err := castValue(f.Schema, f.Schema.Default, ty)
				if err != nil {
					return nil, err
				}
				fs.Default = d
			}
			fields = append(fields, connect.Field{Name: f.Name, Schema: fs})
		}
		var err error
		if out, err = structSchema(in, fields); err != nil {
			return nil, err
		}
	}
	out.Optional = in.Optional
	if in.Default != nil {
		if t.whole == "" {
			// A struct default is carried over with its casts applied.
			def, ok := in.Default.(*connect.Struct)
			if ok {
				d := connect.NewStruct(out)
				for i, f := range in.Fields {
					v := def.GetByIndex(i)
					if ty, ok := t.casts[f.Name]; ok {
						var err error
						if v, err = castValue(f.Schema, v, ty); err != nil {
							return nil, err
						}
					}
					if _, err := d.Put(f.Name, v); err != nil {
						return nil, dataErr("%v", err)
					}
				}
				out.Default = d
			}
		} else {
			d, err := castValue(in, in.Default, t.whole)
			if err != nil {
				return nil, err
			}
			out.Default = d
		}
	}
	return out, nil
}

func checkCastInput(ty connect.Type) error {
	switch ty {
	case connect.Int8, connect.Int16, connect.Int32, connect.Int64, connect.Float32, connect.Float64,
		connect.Boolean, connect.String, connect.Bytes:
		return nil
	}
	return dataErr("cast transformation does not support casting from %s; supported types are int8, int16, int32, int64, float32, float64, boolean, string, bytes", ty)
}

func inferType(v any) (connect.Type, bool) {
	switch v.(type) {
	case int8:
		return connect.Int8, true
	case int16:
		return connect.Int16, true
	case int32:
		return connect.Int32, true
	case int64:
		return connect.Int64, true
	case float32:
		return connect.Float32, true
	case float64:
		return connect.Float64, true
	case bool:
		return connect.Boolean, true
	case string:
		return connect.String, true
	case []byte:
		return connect.Bytes, true
	case []any:
		return connect.Array, true
	case map[string]any, map[any]any:
		return connect.Map, true
	case *connect.Struct:
		return connect.StructT, true
	}
	return "", false
}

const millisPerDay = 24 * 60 * 60 * 1000

// maxDecimalScale bounds the Decimal scales Cast computes with (10^scale
// is materialized), so that a hostile schema cannot exhaust memory.
const maxDecimalScale = 10000

// castValue casts v (of schema s, nil when schemaless) to target.
func castValue(s *connect.Schema, v any, target connect.Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	var in connect.Type
	if s != nil {
		in = s.Type
	} else {
		var ok bool
		if in, ok = inferType(v); !ok {
			return nil, dataErr("cast transformation was passed a value of type %T which is not supported by Connect's data API", v)
		}
	}
	if err := checkCastInput(in); err != nil {
		return nil, err
	}
	if d, ok := v.(connect.Decimal); ok && (d.Scale > maxDecimalScale || d.Scale < -maxDecimalScale) {
		return nil, dataErr("decimal scale %d out of the supported range ±%d", d.Scale, maxDecimalScale)
	}
	// Logical temporal types are cast as their encoded numbers, except to string.
	if tm, ok := v.(time.Time); ok && s != nil && target != connect.String {
		switch s.Name {
		case connect.DateName:
			v = int32(tm.UnixMilli() / millisPerDay)
		case connect.TimeName:
			v = int32(tm.UnixMilli() % millisPerDay)
		case connect.TimestampName:
			v = tm.UnixMilli()
		}
	}
	switch target {
	case connect.Int8:
		n, err := castInt(v, 8)
		return int8(n), err
	case connect.Int16:
		n, err := castInt(v, 16)
		return int16(n), err
	case connect.Int32:
		n, err := castInt(v, 32)
		return int32(n), err
	case connect.Int64:
		return castInt(v, 64)
	case connect.Float32:
		f, err := castFloat(v, 32)
		return float32(f), err
	case connect.Float64:
		return castFloat(v, 64)
	case connect.Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return strings.EqualFold(x, "true"), nil
		}
		n, err := castInt(v, 64)
		return n != 0, err
	case connect.String:
		return javaString(v)
	}
	return nil, dataErr("%s is not supported in the Cast transformation", target)
}

// castInt converts v to an integer of the given bit size as Java's
// Number.xxxValue() / parseXxx do; the result is wrapped by the caller's
// narrowing conversion.
func castInt(v any, bits int) (int64, error) {
	switch x := v.(type) {
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case float32:
		return javaF2I(float64(x), bits), nil
	case float64:
		return javaF2I(x, bits), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		n, err := strconv.ParseInt(x, 10, bits)
		if err != nil {
			return 0, dataErr("value (%s) was out of range for requested data type", x)
		}
		return n, nil
	case connect.Decimal:
		if x.Unscaled == nil {
			return 0, nil
		}
		i := decimalTrunc(x)
		low := new(big.Int).And(i, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
		return int64(low), nil
	}
	return 0, dataErr("unexpected type in Cast transformation: %T", v)
}

// javaF2I converts like Java's (int)/(long) cast (saturating, NaN is 0);
// for 8 and 16 bits Java goes through int, so the caller's narrowing wraps.
func javaF2I(f float64, bits int) int64 {
	if math.IsNaN(f) {
		return 0
	}
	lo, hi := float64(math.MinInt32), float64(math.MaxInt32)
	if bits == 64 {
		if f >= math.MaxInt64 {
			return math.MaxInt64
		}
		if f <= math.MinInt64 {
			return math.MinInt64
		}
		return int64(f)
	}
	if f >= hi {
		return math.MaxInt32
	}
	if f <= lo {
		return math.MinInt32
	}
	return int64(f)
}

func decimalTrunc(d connect.Decimal) *big.Int {
	if d.Scale <= 0 {
		return new(big.Int).Mul(d.Unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.Scale)), nil))
	}
	return new(big.Int).Quo(d.Unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale)), nil))
}

func castFloat(v any, bits int) (float64, error) {
	switch x := v.(type) {
	case int8, int16, int32, int64:
		n, _ := castInt(x, 64)
		return float64(n), nil
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), bits)
		if err != nil && !isRangeErr(err) {
			return 0, dataErr("value (%s) was out of range for requested data type", x)
		}
		return f, nil // Java gives ±Infinity on overflow, as ParseFloat does
	case connect.Decimal:
		if x.Unscaled == nil {
			return 0, nil
		}
		pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs32(x.Scale))), nil)
		var r *big.Rat
		if x.Scale >= 0 {
			r = new(big.Rat).SetFrac(x.Unscaled, pow)
		} else {
			r = new(big.Rat).SetInt(new(big.Int).Mul(x.Unscaled, pow))
		}
		if bits == 32 {
			f32, _ := r.Float32()
			return float64(f32), nil
		}
		f, _ := r.Float64()
		return f, nil
	}
	return 0, dataErr("unexpected type in Cast transformation: %T", v)
}

func abs32(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// javaString renders v as Java's toString would (Cast to string).
func javaString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int8, int16, int32, int64:
		n, _ := castInt(x, 64)
		return strconv.FormatInt(n, 10), nil
	case float32:
		return javaFloatString(float64(x), 32), nil
	case float64:
		return javaFloatString(x, 64), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case connect.Decimal:
		return javaBigDecimalString(x), nil
	case time.Time:
		// Kafka's Values.dateFormatFor picks the format from the instant.
		ms := x.UnixMilli()
		u := x.UTC()
		switch {
		case ms < millisPerDay:
			return u.Format("15:04:05.000"), nil
		case ms%millisPerDay == 0:
			return u.Format("2006-01-02"), nil
		}
		return u.Format("2006-01-02T15:04:05.000Z"), nil
	}
	return "", dataErr("unexpected type in Cast transformation: %T", v)
}

// javaFloatString formats like Java's Double.toString / Float.toString:
// plain with at least one fraction digit for 1e-3 <= |f| < 1e7, else
// computerized scientific notation ("1.0E10").
func javaFloatString(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	a := math.Abs(f)
	if a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'e', -1, bits) // e.g. 1.2345e+07
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// javaBigDecimalString formats like Java's BigDecimal.toString: plain when
// the scale is >= 0 and the adjusted exponent >= -6, else scientific.
func javaBigDecimalString(d connect.Decimal) string {
	if d.Unscaled == nil {
		return "0"
	}
	digits := new(big.Int).Abs(d.Unscaled).String()
	adjusted := -int64(d.Scale) + int64(len(digits)-1)
	if d.Scale >= 0 && adjusted >= -6 {
		return d.String()
	}
	var b strings.Builder
	if d.Unscaled.Sign() < 0 {
		b.WriteByte('-')
	}
	b.WriteString(digits[:1])
	if len(digits) > 1 {
		b.WriteString("." + digits[1:])
	}
	b.WriteString("E")
	if adjusted >= 0 {
		b.WriteString("+")
	}
	b.WriteString(strconv.FormatInt(adjusted, 10))
	return b.String()
}
