package transforms

import (
	"errors"
	"strings"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

// newT builds and configures a transformation by (short or class) name.
func newT(t *testing.T, typ string, cfg map[string]string) Transformation {
	t.Helper()
	tr := NewTransformation(typ)
	if tr == nil {
		t.Fatalf("unknown transformation %q", typ)
	}
	if err := tr.Configure(cfg); err != nil {
		t.Fatalf("%s Configure(%v): %v", typ, cfg, err)
	}
	return tr
}

// configErrKey configures typ with cfg and returns the key of the
// ConfigError it must fail with.
func configErrKey(t *testing.T, typ string, cfg map[string]string) string {
	t.Helper()
	var err error
	if tr := NewTransformation(typ); tr != nil {
		err = tr.Configure(cfg)
	} else if p := NewPredicate(typ); p != nil {
		err = p.Configure(cfg)
	} else {
		t.Fatalf("unknown type %q", typ)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
		t.Fatalf("%s Configure(%v) = %v, want a *ConfigError", typ, cfg, err)
	}
	return ce.Key
}

func apply(t *testing.T, tr Transformation, r *connect.Record) *connect.Record {
	t.Helper()
	out, err := tr.Apply(r)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return out
}

func applyErr(t *testing.T, tr Transformation, r *connect.Record, want string) {
	t.Helper()
	_, err := tr.Apply(r)
	if err == nil || !errors.Is(err, ErrData) || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
		t.Fatalf("Apply error = %v, want an ErrData containing %q", err, want)
	}
}

func i32p(v int32) *int32 { return &v }

// valueRec is a record with a value only.
func valueRec(schema *connect.Schema, v any) *connect.Record {
	return &connect.Record{Topic: "test", Partition: i32p(0), ValueSchema: schema, Value: v}
}

// keyRec is a record with a key only.
func keyRec(schema *connect.Schema, k any) *connect.Record {
	return &connect.Record{Topic: "test", Partition: i32p(0), KeySchema: schema, Key: k}
}

// mustValid checks that a Struct value passes Validate against its schema.
func mustValid(t *testing.T, s *connect.Schema, v any) {
	t.Helper()
	if err := connect.Validate(s, v); err != nil {
		t.Fatalf("result does not validate: %v", err)
	}
	if st, ok := v.(*connect.Struct); ok {
		if err := st.Validate(); err != nil {
			t.Fatalf("struct does not validate: %v", err)
		}
	}
}

func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !connect.ValuesEqual(got, want) {
		t.Fatalf("%s = %#v (%T), want %#v (%T)", what, got, got, want, want)
	}
}

// sideGet returns the key or the value of r.
func sideGet(r *connect.Record, key bool) (*connect.Schema, any) {
	if key {
		return r.KeySchema, r.Key
	}
	return r.ValueSchema, r.Value
}

// sideRec builds a record with the given key or value.
func sideRec(key bool, s *connect.Schema, v any) *connect.Record {
	if key {
		return keyRec(s, v)
	}
	return valueRec(s, v)
}

// variants runs f for the $Key and $Value variant of a transformation.
func variants(t *testing.T, base string, f func(t *testing.T, typ string, key bool)) {
	for _, key := range []bool{false, true} {
		typ := base + "$Value"
		if key {
			typ = base + "$Key"
		}
		t.Run(typ, func(t *testing.T) { f(t, typ, key) })
	}
}
