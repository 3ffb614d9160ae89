package transforms

import (
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Timestamp representations of TimestampConverter's target.type.
const (
	tsString    = "string"
	tsUnix      = "unix"
	tsDate      = "Date"
	tsTime      = "Time"
	tsTimestamp = "Timestamp"
)

// TimestampConverter is Kafka's TimestampConverter$Key / $Value: it
// converts a timestamp field (field) or the whole key/value (field empty,
// the default) between a string (format, a SimpleDateFormat pattern in UTC:
// see dateFormat for the supported subset), unix time (an int64 in
// unix.precision: seconds, milliseconds (default), microseconds or
// nanoseconds) and the Date, Time and Timestamp logical types.
// Options: field, target.type (required: string, unix, Date, Time,
// Timestamp), format (required when a string is produced or parsed),
// unix.precision. With a schema the input representation comes from the
// schema (a logical type, string, or int64 as unix time); without one from
// the value (time.Time as Timestamp, int64 as unix, string). Null values
// stay null. Sub-millisecond precision is lost, as in Kafka.
type TimestampConverter struct {
	side      side
	field     string
	target    string
	format    *dateFormat // nil when not configured
	precision string
	cache     schemaCache
}

// Configure implements Transformation.
func (t *TimestampConverter) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "field", "target.type", "format", "unix.precision")
	if err != nil {
		return err
	}
	t.field, _ = o.str("field")
	if t.target, err = o.required("target.type"); err != nil {
		return err
	}
	switch t.target {
	case tsString, tsUnix, tsDate, tsTime, tsTimestamp:
	default:
		return configErr("target.type", "invalid value %q: must be one of string, unix, Date, Time, Timestamp", t.target)
	}
	t.precision = "milliseconds"
	if p, ok := o.str("unix.precision"); ok {
		switch p {
		case "seconds", "milliseconds", "microseconds", "nanoseconds":
			t.precision = p
		default:
			return configErr("unix.precision", "invalid value %q: must be one of nanoseconds, microseconds, milliseconds, seconds", p)
		}
	}
	if f, ok := o.str("format"); ok && strings.TrimSpace(f) != "" {
		if t.format, err = compileDateFormat("format", f); err != nil {
			return err
		}
	}
	if t.target == tsString && t.format == nil {
		return configErr("format", "TimestampConverter requires format option to be specified when using string timestamps")
	}
	return nil
}

func (t *TimestampConverter) typeSchema(optional bool) *connect.Schema {
	var s *connect.Schema
	switch t.target {
	case tsString:
		s = connect.StringSchema
	case tsUnix:
		s = connect.Int64Schema
	case tsDate:
		s = connect.DateSchema()
	case tsTime:
		s = connect.TimeSchema()
	default:
		s = connect.TimestampSchema()
	}
	if optional {
		return s.AsOptional()
	}
	return s
}

func typeFromSchema(s *connect.Schema) (string, error) {
	switch {
	case s.Name == connect.TimestampName:
		return tsTimestamp, nil
	case s.Name == connect.DateName:
		return tsDate, nil
	case s.Name == connect.TimeName:
		return tsTime, nil
	case s.Type == connect.String:
		return tsString, nil
	case s.Type == connect.Int64:
		return tsUnix, nil
	}
	return "", dataErr("schema %s does not correspond to a known timestamp type format", s)
}

func inferTimestampType(v any) (string, error) {
	switch v.(type) {
	case time.Time:
		return tsTimestamp, nil
	case int64:
		return tsUnix, nil
	case string:
		return tsString, nil
	}
	return "", dataErr("TimestampConverter does not support %T objects as timestamps", v)
}

// convert converts v of representation from ("" to infer it) to the target.
func (t *TimestampConverter) convert(v any, from string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if from == "" {
		var err error
		if from, err = inferTimestampType(v); err != nil {
			return nil, err
		}
	}
	var raw time.Time
	switch from {
	case tsString:
		s, ok := v.(string)
		if !ok {
			return nil, dataErr("expected string timestamp to be a string, but found %T", v)
		}
		if t.format == nil {
			return nil, dataErr("cannot parse string timestamp %q: the format option is not set", s)
		}
		p, err := t.format.parse(s)
		if err != nil {
			return nil, dataErr("could not parse timestamp: %v", err)
		}
		raw = p
	case tsUnix:
		n, ok := v.(int64)
		if !ok {
			return nil, dataErr("expected Unix timestamp to be an int64, but found %T", v)
		}
		switch t.precision {
		case "seconds":
			n *= 1000
		case "microseconds":
			n /= 1000
		case "nanoseconds":
			n /= 1000000
		}
		raw = time.UnixMilli(n)
	default:
		tm, ok := v.(time.Time)
		if !ok {
			return nil, dataErr("expected %s to be a time.Time, but found %T", from, v)
		}
		raw = tm
	}
	ms := raw.UnixMilli()
	raw = time.UnixMilli(ms).UTC()
	switch t.target {
	case tsString:
		return t.format.format(raw), nil
	case tsUnix:
		switch t.precision {
		case "seconds":
			return ms / 1000, nil
		case "microseconds":
			return ms * 1000, nil
		case "nanoseconds":
			return ms * 1000000, nil
		}
		return ms, nil
	case tsDate:
		return time.Date(raw.Year(), raw.Month(), raw.Day(), 0, 0, 0, 0, time.UTC), nil
	case tsTime:
		return time.Date(1970, 1, 1, raw.Hour(), raw.Minute(), raw.Second(), raw.Nanosecond(), time.UTC), nil
	}
	return raw, nil
}

// Apply implements Transformation.
func (t *TimestampConverter) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if schema == nil {
		if value == nil || t.field == "" {
			v, err := t.convert(value, "")
			if err != nil {
				return nil, err
			}
			return t.side.with(r, nil, v), nil
		}
		m, err := requireMap(value, "converting timestamp formats")
		if err != nil {
			return nil, err
		}
		out := copyMap(m, 1)
		if out[t.field], err = t.convert(m[t.field], ""); err != nil {
			return nil, err
		}
		return t.side.with(r, nil, out), nil
	}
	if t.field == "" {
		from, err := typeFromSchema(schema)
		if err != nil {
			return nil, err
		}
		v, err := t.convert(value, from)
		if err != nil {
			return nil, err
		}
		return t.side.with(r, t.typeSchema(schema.Optional), v), nil
	}
	if schema.Type != connect.StructT {
		return nil, dataErr("only Struct objects supported for [converting timestamp formats], found schema: %s", schema)
	}
	updated, err := t.cache.getOrBuild(schema, t.buildSchema)
	if err != nil {
		return nil, err
	}
	if value == nil {
		return t.side.with(r, updated, nil), nil
	}
	st, err := requireStruct(value, "converting timestamp formats")
	if err != nil {
		return nil, err
	}
	out, err := t.convertStruct(st, updated)
	if err != nil {
		return nil, err
	}
	return t.side.with(r, updated, out), nil
}

func (t *TimestampConverter) buildSchema(in *connect.Schema) (*connect.Schema, error) {
	fields := make([]connect.Field, len(in.Fields))
	for i, f := range in.Fields {
		fields[i] = f
		if f.Name == t.field {
			fields[i].Schema = t.typeSchema(f.Schema.Optional)
		}
	}
	out, err := structSchema(in, fields)
	if err != nil {
		return nil, err
	}
	out.Optional = in.Optional
	if def, ok := in.Default.(*connect.Struct); ok && def != nil {
		d, err := t.convertStruct(def, out)
		if err != nil {
			return nil, err
		}
		out.Default = d
	}
	return out, nil
}

func (t *TimestampConverter) convertStruct(st *connect.Struct, updated *connect.Schema) (*connect.Struct, error) {
	out := connect.NewStruct(updated)
	for i, f := range st.Schema().Fields {
		v := st.GetByIndex(i)
		if f.Name == t.field {
			from, err := typeFromSchema(f.Schema)
			if err != nil {
				return nil, err
			}
			if v, err = t.convert(v, from); err != nil {
				return nil, err
			}
		}
		if _, err := out.Put(f.Name, v); err != nil {
			return nil, dataErr("%v", err)
		}
	}
	return out, nil
}
