package converter

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tributary-data/tributary/connect"
)

// String is Kafka Connect's StringConverter. FromConnect ignores the schema
// and writes the value's string form (see FromConnect); ToConnect always
// returns connect.OptionalStringSchema and a string (nil for null data).
//
// Config keys: "converter.encoding" (default UTF-8; also ISO-8859-1 and
// US-ASCII, with Java's aliases), "converter.type" (set by Configure).
type String struct {
	enc encoding
}

type encoding int

const (
	encUTF8 encoding = iota
	encLatin1
	encASCII
)

// NewString returns a StringConverter with the default (UTF-8) encoding.
func NewString() *String { return &String{} }

// Configure reads "converter.encoding". Other keys are ignored, as Kafka
// ignores keys its converter does not define.
func (c *String) Configure(config map[string]string, isKey bool) error {
	c.enc = encUTF8
	v, ok := config["converter.encoding"]
	if !ok {
		return nil
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "UTF-8", "UTF8":
		c.enc = encUTF8
	case "ISO-8859-1", "ISO8859_1", "ISO_8859_1", "LATIN1", "ISO-LATIN-1", "8859_1", "L1":
		c.enc = encLatin1
	case "US-ASCII", "ASCII", "US_ASCII", "ISO646-US":
		c.enc = encASCII
	default:
		return fmt.Errorf("%w: converter.encoding %q is not supported (supported: UTF-8, ISO-8859-1, US-ASCII)", ErrConfig, v)
	}
	return nil
}

// FromConnect writes the value's string form in the configured encoding; a
// nil value gives nil. Strings are written as they are; []byte is passed
// through unchanged (Kafka would write Java's useless "[B@..." form);
// numbers, booleans, Decimals, *connect.Struct, arrays and maps are
// rendered as Java's toString renders their Kafka Connect counterparts
// ("12", "1.5E10", "true", "Struct{a=1}", "[1, 2]", "{k=v}"); a time.Time
// as java.util.Date.toString in UTC ("Thu Jan 01 00:00:00 UTC 1970").
func (c *String) FromConnect(topic string, schema *connect.Schema, value any) ([]byte, error) {
	switch v := value.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	case string:
		return c.appendEncoded(make([]byte, 0, len(v)), v), nil
	}
	return c.appendEncoded(nil, string(appendJavaString(nil, value))), nil
}

// AppendFromConnect appends what FromConnect returns to dst (Appender).
func (c *String) AppendFromConnect(dst []byte, topic string, schema *connect.Schema, value any) ([]byte, bool, error) {
	switch v := value.(type) {
	case nil:
		return dst, true, nil
	case []byte:
		return append(dst, v...), false, nil
	case string:
		return c.appendEncoded(dst, v), false, nil
	}
	return c.appendEncoded(dst, string(appendJavaString(nil, value))), false, nil
}

func (c *String) appendEncoded(out []byte, s string) []byte {
	switch c.enc {
	case encLatin1, encASCII:
		limit := rune(0xFF)
		if c.enc == encASCII {
			limit = 0x7F
		}
		for _, r := range s {
			if r > limit {
				out = append(out, '?') // Java's replacement for unmappable characters
				continue
			}
			out = append(out, byte(r))
		}
		return out
	}
	if utf8.ValidString(s) {
		return append(out, s...)
	}
	return append(out, strings.ToValidUTF8(s, "\uFFFD")...)
}

// ToConnect returns (connect.OptionalStringSchema, string) for non-nil data
// and (connect.OptionalStringSchema, nil) for nil data, as Kafka does.
// Malformed input is decoded with U+FFFD replacements, as Java decodes it.
func (c *String) ToConnect(topic string, data []byte) (*connect.Schema, any, error) {
	if data == nil {
		return connect.OptionalStringSchema, nil, nil
	}
	switch c.enc {
	case encLatin1, encASCII:
		var b strings.Builder
		b.Grow(len(data))
		for _, x := range data {
			if c.enc == encASCII && x > 0x7F {
				b.WriteRune(utf8.RuneError)
				continue
			}
			b.WriteRune(rune(x))
		}
		return connect.OptionalStringSchema, b.String(), nil
	}
	if utf8.Valid(data) {
		return connect.OptionalStringSchema, string(data), nil
	}
	return connect.OptionalStringSchema, strings.ToValidUTF8(string(data), "\uFFFD"), nil
}

// appendJavaString appends Java's toString of the Kafka Connect counterpart
// of a Go value.
func appendJavaString(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return append(b, x...)
	case bool:
		return strconv.AppendBool(b, x)
	case int8:
		return strconv.AppendInt(b, int64(x), 10)
	case int16:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case float32:
		return appendJavaFloat(b, float64(x), 32, false)
	case float64:
		return appendJavaFloat(b, x, 64, false)
	case connect.Decimal:
		return appendBigDecimal(b, x)
	case time.Time:
		return x.UTC().AppendFormat(b, "Mon Jan 02 15:04:05 UTC 2006")
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendJavaString(b, e)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for i, k := range sortedStringKeys(x) {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, k...)
			b = append(b, '=')
			b = appendJavaString(b, x[k])
		}
		return append(b, '}')
	case map[any]any:
		b = append(b, '{')
		for i, k := range sortedAnyKeys(x) {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendJavaString(b, k)
			b = append(b, '=')
			b = appendJavaString(b, x[k])
		}
		return append(b, '}')
	case *big.Int:
		return x.Append(b, 10)
	}
	return fmt.Append(b, v)
}

// ByteArray is Kafka Connect's ByteArrayConverter: a pass-through for
// []byte values. ToConnect returns connect.OptionalBytesSchema and the data
// itself (not a copy).
type ByteArray struct{}

// NewByteArray returns a ByteArrayConverter.
func NewByteArray() *ByteArray { return &ByteArray{} }

// Configure accepts and ignores every key, as Kafka's does.
func (c *ByteArray) Configure(config map[string]string, isKey bool) error { return nil }

// FromConnect returns a []byte value unchanged (nil for nil). A schema
// other than BYTES, or a value of another type, is an error.
func (c *ByteArray) FromConnect(topic string, schema *connect.Schema, value any) ([]byte, error) {
	if schema != nil && schema.Type != connect.Bytes {
		return nil, dataErrorf("Invalid schema type for ByteArrayConverter: %s", kafkaTypeName(schema.Type))
	}
	switch v := value.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	}
	return nil, dataErrorf("ByteArrayConverter is not compatible with objects of type %T", value)
}

// AppendFromConnect appends what FromConnect returns to dst (Appender).
func (c *ByteArray) AppendFromConnect(dst []byte, topic string, schema *connect.Schema, value any) ([]byte, bool, error) {
	b, err := c.FromConnect(topic, schema, value)
	if err != nil || b == nil {
		return dst, b == nil, err
	}
	return append(dst, b...), false, nil
}

// ToConnect returns (connect.OptionalBytesSchema, data); nil data gives a
// nil value.
func (c *ByteArray) ToConnect(topic string, data []byte) (*connect.Schema, any, error) {
	if data == nil {
		return connect.OptionalBytesSchema, nil, nil
	}
	return connect.OptionalBytesSchema, data, nil
}
