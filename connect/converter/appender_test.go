package converter

import (
	"bytes"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// AppendFromConnect must write exactly FromConnect's bytes after what dst
// holds, and report a nil result as null.
func TestAppendFromConnectMatchesFromConnect(t *testing.T) {
	st := connect.StructOf("s", connect.F("id", connect.Int64Schema), connect.F("name", connect.OptionalStringSchema))
	sv := connect.NewStruct(st).MustPut("id", int64(7)).MustPut("name", "héllo")
	values := []struct {
		schema *connect.Schema
		value  any
	}{
		{nil, nil},
		{connect.OptionalStringSchema, nil},
		{connect.StringSchema, ""},
		{connect.StringSchema, "héllo wörld"},
		{connect.StringSchema, "bad \xff utf8"},
		{connect.Int32Schema, int32(-12)},
		{connect.Float64Schema, 1.5e10},
		{connect.BooleanSchema, true},
		{connect.BytesSchema, []byte{0, 1, 2}},
		{connect.BytesSchema, []byte{}},
		{st, sv},
		{nil, map[string]any{"a": int64(1), "b": []any{"x", nil}}},
		{connect.TimestampSchema(), time.UnixMilli(4000000000).UTC()},
	}
	convs := map[string]func() (Converter, error){}
	for _, cfg := range []struct {
		name  string
		class string
		conf  map[string]string
	}{
		{"json", JSONClass, map[string]string{"schemas.enable": "true"}},
		{"json-schemaless", JSONClass, map[string]string{"schemas.enable": "false"}},
		{"string", StringClass, nil},
		{"string-latin1", StringClass, map[string]string{"converter.encoding": "ISO-8859-1"}},
		{"bytearray", ByteArrayClass, nil},
	} {
		cfg := cfg
		convs[cfg.name] = func() (Converter, error) {
			c, err := New(cfg.class)
			if err != nil {
				return nil, err
			}
			return c, c.Configure(cfg.conf, false)
		}
	}
	for name, mk := range convs {
		c, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, ok := c.(Appender)
		if !ok {
			t.Fatalf("%s is not an Appender", name)
		}
		for i, v := range values {
			want, wantErr := c.FromConnect("t", v.schema, v.value)
			prefix := []byte("prefix")
			got, null, err := a.AppendFromConnect(append([]byte(nil), prefix...), "t", v.schema, v.value)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s value %d: FromConnect err %v, AppendFromConnect err %v", name, i, wantErr, err)
			}
			if err != nil {
				continue
			}
			if null != (want == nil) {
				t.Fatalf("%s value %d: null %v, FromConnect gave %q", name, i, null, want)
			}
			if !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("%s value %d: appended %q, want prefix + %q", name, i, got, want)
			}
		}
	}
}
