package transforms

import (
	"github.com/tributary-data/tributary/connect"
)

// Flatten is Kafka's Flatten$Key / Flatten$Value: it flattens nested
// Structs (or nested schemaless maps) into one level, joining field names
// with the delimiter. Option: delimiter (default "."). As in Kafka 3.x,
// arrays and maps are copied as they are, a null key/value passes
// unchanged, and a flattened field is optional when any ancestor is, with
// the default taken from the field or else from the ancestors' defaults. A
// null nested Struct leaves its flattened fields null. Two fields that
// flatten to the same name are an error.
type Flatten struct {
	side      side
	delimiter string
	cache     schemaCache
}

// Configure implements Transformation.
func (t *Flatten) Configure(cfg map[string]string) error {
	t.cache.reset()
	o, err := newOptions(cfg, "delimiter")
	if err != nil {
		return err
	}
	t.delimiter = "."
	if d, ok := o.str("delimiter"); ok {
		t.delimiter = d
	}
	return nil
}

func (t *Flatten) name(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + t.delimiter + field
}

// Apply implements Transformation.
func (t *Flatten) Apply(r *connect.Record) (*connect.Record, error) {
	schema, value := t.side.get(r)
	if value == nil {
		return r, nil
	}
	if schema == nil {
		m, err := requireMap(value, "flattening")
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(m))
		t.flattenMap(m, "", out)
		return t.side.with(r, nil, out), nil
	}
	st, err := requireStruct(value, "flattening")
	if err != nil {
		return nil, err
	}
	updated, err := t.cache.getOrBuild(st.Schema(), func(in *connect.Schema) (*connect.Schema, error) {
		var fields []connect.Field
		def, _ := in.Default.(*connect.Struct)
		if err := t.flattenSchema(in, "", in.Optional, def, &fields); err != nil {
			return nil, err
		}
		return structSchema(in, fields)
	})
	if err != nil {
		return nil, err
	}
	out := connect.NewStruct(updated)
	if err := t.flattenStruct(st, "", out); err != nil {
		return nil, err
	}
	return t.side.with(r, updated, out), nil
}

func (t *Flatten) flattenMap(m map[string]any, prefix string, out map[string]any) {
	for k, v := range m {
		name := t.name(prefix, k)
		if nested, ok := v.(map[string]any); ok {
			t.flattenMap(nested, name, out)
			continue
		}
		out[name] = v
	}
}

func (t *Flatten) flattenSchema(s *connect.Schema, prefix string, optional bool, parentDefault *connect.Struct, fields *[]connect.Field) error {
	for _, f := range s.Fields {
		name := t.name(prefix, f.Name)
		fieldOptional := optional || f.Schema.Optional
		var def any
		if f.Schema.Default != nil {
			def = f.Schema.Default
		} else if parentDefault != nil {
			def = parentDefault.Get(f.Name)
		}
		if f.Schema.Type == connect.StructT {
			d, _ := def.(*connect.Struct)
			if err := t.flattenSchema(f.Schema, name, fieldOptional, d, fields); err != nil {
				return err
			}
			continue
		}
		fs := f.Schema
		if fieldOptional != fs.Optional || !connect.ValuesEqual(def, fs.Default) {
			c := *fs
			c.Optional = fieldOptional
			c.Default = def
			fs = &c
		}
		*fields = append(*fields, connect.Field{Name: name, Schema: fs})
	}
	return nil
}

func (t *Flatten) flattenStruct(st *connect.Struct, prefix string, out *connect.Struct) error {
	for i, f := range st.Schema().Fields {
		name := t.name(prefix, f.Name)
		v := st.GetByIndex(i)
		if f.Schema.Type == connect.StructT {
			if v == nil {
				continue
			}
			nested, ok := v.(*connect.Struct)
			if !ok {
				return dataErr("field %s: expected a Struct, got %T", name, v)
			}
			if err := t.flattenStruct(nested, name, out); err != nil {
				return err
			}
			continue
		}
		if _, err := out.Put(name, v); err != nil {
			return dataErr("%v", err)
		}
	}
	return nil
}
