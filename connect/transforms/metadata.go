package transforms

import (
	"strconv"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

// SetSchemaMetadata is Kafka's SetSchemaMetadata$Key / $Value: it sets
// the name and/or version of the key or value schema (a Struct value is
// rebuilt on the new schema). Options: schema.name, schema.version (at
// least one). A schemaless key/value is an error, as in Kafka.
type SetSchemaMetadata struct {
	side    side
	name    *string
	version *int32
	cache   schemaCache
}

// Configure implements Transformation.
func (t *SetSchemaMetadata) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "schema.name", "schema.version")
	if err != nil {
		return err
	}
	if v, ok := o.str("schema.name"); ok {
		t.name = &v
	}
	if v, ok := o.str("schema.version"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return configErr("schema.version", "expected an integer, got %q", v)
		}
		n32 := int32(n)
		t.version = &n32
	}
	if t.name == nil && t.version == nil {
		return configErr("schema.name", "neither schema name nor version configured")
	}
	return nil
}

// Apply implements Transformation.
func (t *SetSchemaMetadata) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if schema == nil {
		return nil, dataErr("schema required for [updating schema metadata]")
	}
	updated, _ := t.cache.getOrBuild(schema, func(in *connect.Schema) (*connect.Schema, error) {
		c := *in
		if t.name != nil {
			c.Name = *t.name
		}
		if t.version != nil {
			v := *t.version
			c.Version = &v
		}
		return &c, nil
	})
	if st, ok := value.(*connect.Struct); ok && st != nil {
		out := connect.NewStruct(updated)
		for i, f := range st.Schema().Fields {
			if _, err := out.Put(f.Name, st.GetByIndex(i)); err != nil {
				return nil, dataErr("%v", err)
			}
		}
		value = out
	}
	return t.side.with(r, updated, value), nil
}

// HeaderFrom is Kafka's HeaderFrom$Key / HeaderFrom$Value: it copies or
// moves fields of the key or value into headers. Options: fields and
// headers (required lists of the same length: field i goes to header i),
// operation ("copy" or "move", required). With a schema the header gets the
// field's schema, and "move" removes the fields from the schema too.
type HeaderFrom struct {
	side    side
	fields  []string
	headers []string
	move    bool
	cache   schemaCache
}

// Configure implements Transformation.
func (t *HeaderFrom) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "fields", "headers", "operation")
	if err != nil {
		return err
	}
	if t.fields, err = o.nonEmptyList("fields"); err != nil {
		return err
	}
	if t.headers, err = o.nonEmptyList("headers"); err != nil {
		return err
	}
	if len(t.fields) != len(t.headers) {
		return configErr("headers", "'fields' config must have the same number of elements as 'headers' config")
	}
	op, err := o.required("operation")
	if err != nil {
		return err
	}
	switch op {
	case "move":
		t.move = true
	case "copy":
	default:
		return configErr("operation", "invalid value %q: must be one of move, copy", op)
	}
	return nil
}

// Apply implements Transformation.
func (t *HeaderFrom) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	headers := make([]connect.Header, len(r.Headers), len(r.Headers)+len(t.fields))
	copy(headers, r.Headers)
	if schema == nil {
		m, err := requireMap(value, "header "+t.op())
		if err != nil {
			return nil, err
		}
		for i, f := range t.fields {
			headers = append(headers, connect.Header{Key: t.headers[i], Value: m[f]})
		}
		out := t.side.with(r, nil, value)
		if t.move {
			nm := copyMap(m, 0)
			for _, f := range t.fields {
				delete(nm, f)
			}
			out = t.side.with(r, nil, nm)
		}
		out.Headers = headers
		return out, nil
	}
	st, err := requireStruct(value, "header "+t.op())
	if err != nil {
		return nil, err
	}
	for i, name := range t.fields {
		f, ok := st.Schema().Field(name)
		if !ok {
			return nil, dataErr("field does not exist: %s", name)
		}
		headers = append(headers, connect.Header{Key: t.headers[i], Schema: f.Schema, Value: st.Get(name)})
	}
	out := t.side.with(r, schema, value)
	if t.move {
		updated, err := t.cache.getOrBuild(st.Schema(), func(in *connect.Schema) (*connect.Schema, error) {
			var fields []connect.Field
			for _, f := range in.Fields {
				if !t.isField(f.Name) {
					fields = append(fields, f)
				}
			}
			return structSchema(in, fields)
		})
		if err != nil {
			return nil, err
		}
		nv := connect.NewStruct(updated)
		for _, f := range updated.Fields {
			if _, err := nv.Put(f.Name, st.Get(f.Name)); err != nil {
				return nil, dataErr("%v", err)
			}
		}
		out = t.side.with(r, updated, nv)
	}
	out.Headers = headers
	return out, nil
}

func (t *HeaderFrom) op() string {
	if t.move {
		return "move"
	}
	return "copy"
}

func (t *HeaderFrom) isField(name string) bool {
	for _, f := range t.fields {
		if f == name {
			return true
		}
	}
	return false
}
