package transforms

import (
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// insertionSpec is an InsertField field name with its optionality: a "!"
// suffix makes the field required, "?" (or nothing) optional.
type insertionSpec struct {
	name     string
	optional bool
}

func parseInsertionSpec(o options, key string) *insertionSpec {
	v, ok := o.str(key)
	if !ok {
		return nil
	}
	switch {
	case strings.HasSuffix(v, "?"):
		return &insertionSpec{name: v[:len(v)-1], optional: true}
	case strings.HasSuffix(v, "!"):
		return &insertionSpec{name: v[:len(v)-1], optional: false}
	}
	return &insertionSpec{name: v, optional: true}
}

// InsertField is Kafka's InsertField$Key / InsertField$Value: it inserts
// the record's topic, partition, (sink) offset and timestamp and a static
// string into the key or value, a Struct (the schema gains the fields) or a
// schemaless map. Options: topic.field, partition.field, offset.field,
// timestamp.field, static.field, static.value. Null keys/values (tombstones)
// pass unchanged, as in Kafka 3.x. offset.field is only valid for sink
// records (Chain.ApplySink); with Apply it fails as Kafka's does for source
// records.
type InsertField struct {
	side                                  side
	topic, partition, offset, ts, staticF *insertionSpec
	staticValue                           *string
	cache                                 schemaCache
}

// Configure implements Transformation.
func (t *InsertField) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "topic.field", "partition.field", "offset.field", "timestamp.field", "static.field", "static.value")
	if err != nil {
		return err
	}
	t.topic = parseInsertionSpec(o, "topic.field")
	t.partition = parseInsertionSpec(o, "partition.field")
	t.offset = parseInsertionSpec(o, "offset.field")
	t.ts = parseInsertionSpec(o, "timestamp.field")
	t.staticF = parseInsertionSpec(o, "static.field")
	if v, ok := o.str("static.value"); ok {
		t.staticValue = &v
	}
	return nil
}

// Apply implements Transformation (for source records: offset.field fails).
func (t *InsertField) Apply(r *connect.Record) (*connect.Record, error) { return t.apply(r, nil) }

// ApplySink implements SinkTransformation.
func (t *InsertField) ApplySink(r *connect.Record, kafkaOffset int64) (*connect.Record, error) {
	return t.apply(r, &kafkaOffset)
}

func (t *InsertField) apply(r *connect.Record, offset *int64) (*connect.Record, error) {
	if t.topic == nil && t.partition == nil && t.offset == nil && t.ts == nil && t.staticF == nil {
		return r, nil
	}
	schema, value := t.side.get(r)
	if value == nil {
		return r, nil
	}
	if t.offset != nil && offset == nil {
		return nil, dataErr("offset insertion is only supported for sink connectors (offset.field is set on a source record)")
	}
	if schema == nil {
		m, ok := value.(map[string]any)
		if !ok {
			return nil, dataErr("can only operate on Map value in schemaless mode: %s", typeName(value))
		}
		out := copyMap(m, 5)
		if t.topic != nil {
			out[t.topic.name] = r.Topic
		}
		if t.partition != nil && r.Partition != nil {
			out[t.partition.name] = *r.Partition
		}
		if t.offset != nil {
			out[t.offset.name] = *offset
		}
		if t.ts != nil && !r.Timestamp.IsZero() {
			out[t.ts.name] = r.Timestamp.UnixMilli()
		}
		if t.staticF != nil && t.staticValue != nil {
			out[t.staticF.name] = *t.staticValue
		}
		return t.side.with(r, nil, out), nil
	}
	if schema.Type != connect.StructT {
		return nil, dataErr("can only operate on Struct types: %s", schema)
	}
	st, err := requireStruct(value, "field insertion")
	if err != nil {
		return nil, err
	}
	updated, err := t.cache.getOrBuild(st.Schema(), t.buildSchema)
	if err != nil {
		return nil, err
	}
	out := connect.NewStruct(updated)
	for i, f := range st.Schema().Fields {
		if _, err := out.Put(f.Name, st.GetByIndex(i)); err != nil {
			return nil, dataErr("%v", err)
		}
	}
	put := func(spec *insertionSpec, v any) error {
		if _, err := out.Put(spec.name, v); err != nil {
			return dataErr("%v", err)
		}
		return nil
	}
	if t.topic != nil {
		if err := put(t.topic, r.Topic); err != nil {
			return nil, err
		}
	}
	if t.partition != nil && r.Partition != nil {
		if err := put(t.partition, *r.Partition); err != nil {
			return nil, err
		}
	}
	if t.offset != nil {
		if err := put(t.offset, *offset); err != nil {
			return nil, err
		}
	}
	if t.ts != nil && !r.Timestamp.IsZero() {
		if err := put(t.ts, r.Timestamp.UTC().Truncate(time.Millisecond)); err != nil {
			return nil, err
		}
	}
	if t.staticF != nil && t.staticValue != nil {
		if err := put(t.staticF, *t.staticValue); err != nil {
			return nil, err
		}
	}
	if err := out.Validate(); err != nil {
		return nil, dataErr("%v", err)
	}
	return t.side.with(r, updated, out), nil
}

func (t *InsertField) buildSchema(in *connect.Schema) (*connect.Schema, error) {
	fields := append([]connect.Field(nil), in.Fields...)
	add := func(spec *insertionSpec, required *connect.Schema) {
		if spec == nil {
			return
		}
		s := required
		if spec.optional {
			s = required.AsOptional()
		}
		fields = append(fields, connect.Field{Name: spec.name, Schema: s})
	}
	add(t.topic, connect.StringSchema)
	add(t.partition, connect.Int32Schema)
	add(t.offset, connect.Int64Schema)
	add(t.ts, connect.TimestampSchema())
	add(t.staticF, connect.StringSchema)
	return structSchema(in, fields)
}

// ReplaceField is Kafka's ReplaceField$Key / ReplaceField$Value: it drops
// and renames fields of a Struct or schemaless map. Options: exclude
// (deprecated alias blacklist), include (deprecated alias whitelist),
// renames ("old:new,..."). A field is kept when it is not excluded and
// include is empty or lists it. Null keys/values pass unchanged.
type ReplaceField struct {
	side                    side
	exclude, include        map[string]bool
	renames, reverseRenames map[string]string
	cache                   schemaCache
}

// Configure implements Transformation.
func (t *ReplaceField) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "exclude", "include", "renames", "blacklist", "whitelist")
	if err != nil {
		return err
	}
	// The new names win over the deprecated ones when both are given
	// (Kafka's ConfigUtils.translateDeprecatedConfigs).
	listOf := func(key, deprecated string) []string {
		if l, ok := o.list(key); ok {
			return l
		}
		l, _ := o.list(deprecated)
		return l
	}
	set := func(l []string) map[string]bool {
		m := make(map[string]bool, len(l))
		for _, f := range l {
			m[f] = true
		}
		return m
	}
	t.exclude = set(listOf("exclude", "blacklist"))
	t.include = set(listOf("include", "whitelist"))
	t.renames, t.reverseRenames = map[string]string{}, map[string]string{}
	rl, _ := o.list("renames")
	for _, m := range rl {
		parts := strings.Split(m, ":")
		if len(parts) != 2 {
			return configErr("renames", "invalid rename mapping: %q (expected old:new)", m)
		}
		t.renames[parts[0]] = parts[1]
		t.reverseRenames[parts[1]] = parts[0]
	}
	return nil
}

func (t *ReplaceField) keep(name string) bool {
	return !t.exclude[name] && (len(t.include) == 0 || t.include[name])
}

func (t *ReplaceField) renamed(name string) string {
	if n, ok := t.renames[name]; ok {
		return n
	}
	return name
}

// Apply implements Transformation.
func (t *ReplaceField) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if value == nil {
		return r, nil
	}
	if schema == nil {
		m, err := requireMap(value, "field replacement")
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(m))
		for k, v := range m {
			if t.keep(k) {
				out[t.renamed(k)] = v
			}
		}
		return t.side.with(r, nil, out), nil
	}
	st, err := requireStruct(value, "field replacement")
	if err != nil {
		return nil, err
	}
	updated, err := t.cache.getOrBuild(st.Schema(), func(in *connect.Schema) (*connect.Schema, error) {
		var fields []connect.Field
		for _, f := range in.Fields {
			if t.keep(f.Name) {
				fields = append(fields, connect.Field{Name: t.renamed(f.Name), Schema: f.Schema})
			}
		}
		return structSchema(in, fields)
	})
	if err != nil {
		return nil, err
	}
	out := connect.NewStruct(updated)
	for _, f := range updated.Fields {
		orig := f.Name
		if o, ok := t.reverseRenames[f.Name]; ok {
			orig = o
		}
		if _, err := out.Put(f.Name, st.Get(orig)); err != nil {
			return nil, dataErr("%v", err)
		}
	}
	return t.side.with(r, updated, out), nil
}

// MaskField is Kafka's MaskField$Key / MaskField$Value: it replaces the
// listed fields with the "null value" of their type (0, false, "", empty
// array or map, epoch for dates) or, with replacement set, with that string
// converted to the field's type (numbers, decimals and strings only).
// Options: fields (required, non-empty), replacement (non-empty). Null
// fields stay null. The schema is unchanged; a masked Decimal field takes
// the field's scale (an error if the replacement has more fraction digits).
type MaskField struct {
	side        side
	fields      map[string]bool
	replacement *string
}

// Configure implements Transformation.
func (t *MaskField) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "fields", "replacement")
	if err != nil {
		return err
	}
	l, err := o.nonEmptyList("fields")
	if err != nil {
		return err
	}
	t.fields = make(map[string]bool, len(l))
	for _, f := range l {
		t.fields[f] = true
	}
	if v, ok := o.str("replacement"); ok {
		if v == "" {
			return configErr("replacement", "string must be non-empty")
		}
		t.replacement = &v
	}
	return nil
}

// Apply implements Transformation.
func (t *MaskField) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if schema == nil {
		m, err := requireMap(value, "mask fields")
		if err != nil {
			return nil, err
		}
		out := copyMap(m, 0)
		for f := range t.fields {
			mv, err := t.mask(m[f])
			if err != nil {
				return nil, err
			}
			out[f] = mv
		}
		return t.side.with(r, nil, out), nil
	}
	st, err := requireStruct(value, "mask fields")
	if err != nil {
		return nil, err
	}
	out := connect.NewStruct(st.Schema())
	for i, f := range st.Schema().Fields {
		v := st.GetByIndex(i)
		if t.fields[f.Name] {
			if v, err = t.mask(v); err != nil {
				return nil, err
			}
			if d, ok := v.(connect.Decimal); ok && f.Schema.Name == connect.DecimalName {
				if v, err = rescale(d, f.Schema); err != nil {
					return nil, err
				}
			}
		}
		if _, err := out.Put(f.Name, v); err != nil {
			return nil, dataErr("%v", err)
		}
	}
	return t.side.with(r, schema, out), nil
}

func (t *MaskField) mask(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if t.replacement == nil {
		switch v.(type) {
		case bool:
			return false, nil
		case int8:
			return int8(0), nil
		case int16:
			return int16(0), nil
		case int32:
			return int32(0), nil
		case int64:
			return int64(0), nil
		case float32:
			return float32(0), nil
		case float64:
			return float64(0), nil
		case string:
			return "", nil
		case connect.Decimal:
			return connect.Decimal{Unscaled: new(big.Int), Scale: 0}, nil
		case time.Time:
			return time.UnixMilli(0).UTC(), nil
		case []any:
			return []any{}, nil
		case map[string]any:
			return map[string]any{}, nil
		case map[any]any:
			return map[any]any{}, nil
		}
		return nil, dataErr("cannot mask value of type: %T", v)
	}
	s := *t.replacement
	var (
		out any
		err error
	)
	switch v.(type) {
	case int8:
		var n int64
		n, err = strconv.ParseInt(s, 10, 8)
		out = int8(n)
	case int16:
		var n int64
		n, err = strconv.ParseInt(s, 10, 16)
		out = int16(n)
	case int32:
		var n int64
		n, err = strconv.ParseInt(s, 10, 32)
		out = int32(n)
	case int64:
		out, err = strconv.ParseInt(s, 10, 64)
	case float32:
		var f float64
		f, err = strconv.ParseFloat(strings.TrimSpace(s), 32)
		out = float32(f)
	case float64:
		out, err = strconv.ParseFloat(strings.TrimSpace(s), 64)
	case string:
		out = s
	case connect.Decimal:
		out, err = connect.ParseDecimal(s)
	default:
		return nil, dataErr("cannot mask value of type %T with custom replacement", v)
	}
	if err != nil {
		return nil, dataErr("unable to convert %q to %T", s, v)
	}
	return out, nil
}

// rescale gives d the scale of a Decimal schema when that loses nothing:
// Kafka's converters reject a BigDecimal whose scale differs from the
// schema's, so the masked value is made to fit it.
func rescale(d connect.Decimal, s *connect.Schema) (connect.Decimal, error) {
	scale, err := s.DecimalScale()
	if err != nil {
		return d, dataErr("%v", err)
	}
	if d.Scale == scale {
		return d, nil
	}
	if scale > maxDecimalScale || scale < -maxDecimalScale || d.Scale > maxDecimalScale || d.Scale < -maxDecimalScale {
		return d, dataErr("decimal scale out of the supported range ±%d", maxDecimalScale)
	}
	u := new(big.Int).Set(d.Unscaled)
	if d.Scale < scale {
		u.Mul(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-d.Scale)), nil))
		return connect.Decimal{Unscaled: u, Scale: scale}, nil
	}
	q, r := new(big.Int).QuoRem(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale-scale)), nil), new(big.Int))
	if r.Sign() != 0 {
		return d, dataErr("replacement %s has more fraction digits than the field's Decimal scale %d", d, scale)
	}
	return connect.Decimal{Unscaled: q, Scale: scale}, nil
}

// ValueToKey is Kafka's ValueToKey: it replaces the key with a new one made
// of the listed value fields (a Struct of those fields with their schemas,
// or a schemaless map). Option: fields (required, non-empty).
type ValueToKey struct {
	fields []string
	cache  schemaCache
}

// Configure implements Transformation.
func (t *ValueToKey) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "fields")
	if err != nil {
		return err
	}
	t.fields, err = o.nonEmptyList("fields")
	return err
}

// Apply implements Transformation.
func (t *ValueToKey) Apply(r *connect.Record) (*connect.Record, error) {
	const purpose = "copying fields from value to key"
	if r.ValueSchema == nil {
		m, err := requireMap(r.Value, purpose)
		if err != nil {
			return nil, err
		}
		key := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			key[f] = m[f]
		}
		return keySide.with(r, nil, key), nil
	}
	st, err := requireStruct(r.Value, purpose)
	if err != nil {
		return nil, err
	}
	ks, err := t.cache.getOrBuild(st.Schema(), func(in *connect.Schema) (*connect.Schema, error) {
		fields := make([]connect.Field, 0, len(t.fields))
		for _, name := range t.fields {
			f, ok := in.Field(name)
			if !ok {
				return nil, dataErr("field does not exist: %s", name)
			}
			fields = append(fields, connect.Field{Name: name, Schema: f.Schema})
		}
		return structSchema(nil, fields)
	})
	if err != nil {
		return nil, err
	}
	key := connect.NewStruct(ks)
	for _, f := range t.fields {
		if _, err := key.Put(f, st.Get(f)); err != nil {
			return nil, dataErr("%v", err)
		}
	}
	return keySide.with(r, ks, key), nil
}

// ExtractField is Kafka's ExtractField$Key / ExtractField$Value: it
// replaces the key or value with one of its fields (and the schema with the
// field's schema). Options: field (required); field.syntax.version (only
// V1, the default: the field name is taken literally, no nested paths). A
// null key/value gives a null result.
type ExtractField struct {
	side  side
	field string
}

// Configure implements Transformation.
func (t *ExtractField) Configure(cfg map[string]string) error {
	o, err := newOptions(cfg, "field", "field.syntax.version")
	if err != nil {
		return err
	}
	if v, ok := o.str("field.syntax.version"); ok && !strings.EqualFold(strings.TrimSpace(v), "V1") {
		return configErr("field.syntax.version", "only V1 is supported (nested field paths of V2 are not), got %q", v)
	}
	t.field, err = o.required("field")
	return err
}

// Apply implements Transformation.
func (t *ExtractField) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if schema == nil {
		if value == nil {
			return t.side.with(r, nil, nil), nil
		}
		m, err := requireMap(value, "field extraction")
		if err != nil {
			return nil, err
		}
		return t.side.with(r, nil, m[t.field]), nil
	}
	f, ok := schema.Field(t.field)
	if schema.Type != connect.StructT || !ok {
		return nil, dataErr("unknown field: %s", t.field)
	}
	if value == nil {
		return t.side.with(r, f.Schema, nil), nil
	}
	st, err := requireStruct(value, "field extraction")
	if err != nil {
		return nil, err
	}
	return t.side.with(r, f.Schema, st.Get(t.field)), nil
}

// HoistField is Kafka's HoistField$Key / HoistField$Value: it wraps the
// key or value in a Struct (or schemaless map) with a single field.
// Option: field (required).
type HoistField struct {
	side  side
	field string
	cache schemaCache
}

// Configure implements Transformation.
func (t *HoistField) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "field")
	if err != nil {
		return err
	}
	t.field, err = o.required("field")
	return err
}

// Apply implements Transformation.
func (t *HoistField) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if schema == nil {
		return t.side.with(r, nil, map[string]any{t.field: value}), nil
	}
	updated, err := t.cache.getOrBuild(schema, func(in *connect.Schema) (*connect.Schema, error) {
		return structSchema(nil, []connect.Field{{Name: t.field, Schema: in}})
	})
	if err != nil {
		return nil, err
	}
	out := connect.NewStruct(updated)
	if _, err := out.Put(t.field, value); err != nil {
		return nil, dataErr("%v", err)
	}
	return t.side.with(r, updated, out), nil
}
