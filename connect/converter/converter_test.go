package converter

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

func TestNew(t *testing.T) {
	tests := []struct {
		class string
		want  string
	}{
		{JSONClass, "*converter.JSON"},
		{"json", "*converter.JSON"},
		{StringClass, "*converter.String"},
		{" string ", "*converter.String"},
		{ByteArrayClass, "*converter.ByteArray"},
		{"bytes", "*converter.ByteArray"},
	}
	for _, tt := range tests {
		c, err := New(tt.class)
		if err != nil {
			t.Fatalf("New(%q): %v", tt.class, err)
		}
		if got := typeName(c); got != tt.want {
			t.Errorf("New(%q) = %s, want %s", tt.class, got, tt.want)
		}
	}
	_, err := New("io.confluent.connect.avro.AvroConverter")
	if !errors.Is(err, ErrUnknownConverter) || !strings.Contains(err.Error(), JSONClass) || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("unknown class: %v", err)
	}
}

func typeName(c Converter) string {
	switch c.(type) {
	case *JSON:
		return "*converter.JSON"
	case *String:
		return "*converter.String"
	case *ByteArray:
		return "*converter.ByteArray"
	}
	return "?"
}

func TestFromConfig(t *testing.T) {
	cfg := map[string]string{
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
		"key.converter.schemas.enable":   "true", // not ours
		"value.converterX":               "ignored",
	}
	c, err := FromConfig(cfg, "value.converter", false, StringClass)
	if err != nil {
		t.Fatal(err)
	}
	j, ok := c.(*JSON)
	if !ok || j.schemasEnable {
		t.Fatalf("got %T schemasEnable=%v", c, ok && j.schemasEnable)
	}
	data, err := c.FromConnect("t", nil, map[string]any{"a": int64(1)})
	if err != nil || string(data) != `{"a":1}` {
		t.Fatalf("got %s, %v", data, err)
	}

	c, err = FromConfig(cfg, "key.converter", true, StringClass)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*String); !ok {
		t.Fatalf("default class: got %T", c)
	}

	if _, err := FromConfig(map[string]string{"value.converter.decimal.format": "HEX"}, "value.converter", false, "json"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "value.converter") {
		t.Fatalf("bad config: %v", err)
	}
	if _, err := FromConfig(map[string]string{"value.converter": "nope"}, "value.converter", false, "json"); !errors.Is(err, ErrUnknownConverter) {
		t.Fatalf("unknown class: %v", err)
	}
	if _, err := FromConfig(nil, "value.converter", false, ""); !errors.Is(err, ErrConfig) {
		t.Fatalf("no class: %v", err)
	}
}

func TestStringConverter(t *testing.T) {
	c := NewString()
	if err := c.Configure(map[string]string{"converter.encoding": "UTF8"}, false); err != nil {
		t.Fatal(err)
	}
	date := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	st := connect.StructOf("", connect.F("a", connect.Int32Schema), connect.F("b", connect.OptionalStringSchema))
	tests := []struct {
		value any
		want  string
	}{
		{"héllo", "héllo"},
		{int32(12), "12"},
		{int64(-5), "-5"},
		{12.0, "12.0"},
		{float32(1e10), "1.0E10"},
		{math.NaN(), "NaN"},
		{true, "true"},
		{dec(-1, 2), "-0.01"},
		{date, "Thu Jan 01 00:00:00 UTC 1970"},
		{[]any{int32(1), "x"}, "[1, x]"},
		{map[string]any{"b": int64(2), "a": "x"}, "{a=x, b=2}"},
		{connect.NewStruct(st).MustPut("a", int32(1)), "Struct{a=1}"},
		{[]byte("raw"), "raw"},
	}
	for _, tt := range tests {
		got, err := c.FromConnect("t", nil, tt.value)
		if err != nil || string(got) != tt.want {
			t.Errorf("FromConnect(%#v) = %q, %v; want %q", tt.value, got, err, tt.want)
		}
	}
	if got, err := c.FromConnect("t", connect.StringSchema, nil); got != nil || err != nil {
		t.Fatalf("nil value: %q, %v", got, err)
	}
	s, v, err := c.ToConnect("t", []byte("héllo"))
	if err != nil || s != connect.OptionalStringSchema || v != "héllo" {
		t.Fatalf("ToConnect: %v %v %v", s, v, err)
	}
	s, v, err = c.ToConnect("t", nil)
	if err != nil || s != connect.OptionalStringSchema || v != nil {
		t.Fatalf("ToConnect(nil): %v %v %v", s, v, err)
	}
	if _, v, _ := c.ToConnect("t", []byte{'a', 0xff}); v != "a\uFFFD" {
		t.Fatalf("malformed: %q", v)
	}

	latin := NewString()
	if err := latin.Configure(map[string]string{"converter.encoding": "ISO-8859-1"}, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := latin.FromConnect("t", nil, "é€"); string(got) != "\xe9?" {
		t.Fatalf("latin1 encode: %q", got)
	}
	if _, v, _ := latin.ToConnect("t", []byte{0xe9}); v != "é" {
		t.Fatalf("latin1 decode: %q", v)
	}
	if err := NewString().Configure(map[string]string{"converter.encoding": "EBCDIC"}, false); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad encoding: %v", err)
	}
}

func TestByteArrayConverter(t *testing.T) {
	c := NewByteArray()
	if err := c.Configure(map[string]string{"anything": "x"}, false); err != nil {
		t.Fatal(err)
	}
	got, err := c.FromConnect("t", connect.OptionalBytesSchema, []byte{1, 2})
	if err != nil || string(got) != "\x01\x02" {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := c.FromConnect("t", nil, nil); got != nil || err != nil {
		t.Fatalf("nil: %v, %v", got, err)
	}
	if _, err := c.FromConnect("t", connect.StringSchema, []byte{1}); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "Invalid schema type for ByteArrayConverter: STRING") {
		t.Fatalf("schema type: %v", err)
	}
	if _, err := c.FromConnect("t", nil, "str"); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "not compatible with objects of type string") {
		t.Fatalf("value type: %v", err)
	}
	s, v, err := c.ToConnect("t", []byte{3})
	if err != nil || s != connect.OptionalBytesSchema || string(v.([]byte)) != "\x03" {
		t.Fatalf("ToConnect: %v %v %v", s, v, err)
	}
	s, v, err = c.ToConnect("t", nil)
	if err != nil || s != connect.OptionalBytesSchema || v != nil {
		t.Fatalf("ToConnect(nil): %v %v %v", s, v, err)
	}
}

// benchRecord is a 10-field struct, a typical CDC-like row.
func benchRecord() (*connect.Schema, *connect.Struct) {
	s := connect.StructOf("com.example.orders.Value",
		connect.F("id", connect.Int64Schema),
		connect.F("customer_id", connect.Int32Schema),
		connect.F("status", connect.StringSchema),
		connect.F("note", connect.OptionalStringSchema),
		connect.F("amount", connect.DecimalSchema(2)),
		connect.F("quantity", connect.Int16Schema),
		connect.F("price", connect.Float64Schema),
		connect.F("paid", connect.BooleanSchema),
		connect.F("created_at", connect.TimestampSchema()),
		connect.F("sku", connect.StringSchema),
	)
	v := connect.NewStruct(s).
		MustPut("id", int64(1234567890123)).
		MustPut("customer_id", int32(42)).
		MustPut("status", "SHIPPED").
		MustPut("note", "leave at the door").
		MustPut("amount", dec(1999, 2)).
		MustPut("quantity", int16(3)).
		MustPut("price", 6.66).
		MustPut("paid", true).
		MustPut("created_at", time.UnixMilli(1700000000000).UTC()).
		MustPut("sku", "SKU-000123")
	return s, v
}

func BenchmarkJSONFromConnectStruct10(b *testing.B) {
	c := NewJSON()
	s, v := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.FromConnect("t", s, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONToConnectStruct10(b *testing.B) {
	c := NewJSON()
	s, v := benchRecord()
	data, err := c.FromConnect("t", s, v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.ToConnect("t", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONFromConnectStruct10NoSchemas(b *testing.B) {
	c := NewJSON()
	if err := c.Configure(map[string]string{"schemas.enable": "false"}, false); err != nil {
		b.Fatal(err)
	}
	s, v := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.FromConnect("t", s, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONToConnectSchemaless(b *testing.B) {
	c := NewJSON()
	if err := c.Configure(map[string]string{"schemas.enable": "false"}, false); err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"id":1234567890123,"customer_id":42,"status":"SHIPPED","note":"leave at the door","amount":19.99,"quantity":3,"price":6.66,"paid":true,"created_at":1700000000000,"sku":"SKU-000123"}`)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.ToConnect("t", data); err != nil {
			b.Fatal(err)
		}
	}
}
