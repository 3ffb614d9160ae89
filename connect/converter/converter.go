// Package converter holds Kafka Connect's converters: the code that turns
// Connect data (a *connect.Schema and a value) into the bytes stored in a
// Kafka record key or value, and back. The three built-in converters are
// byte-compatible with Apache Kafka's:
//
//   - JSON: org.apache.kafka.connect.json.JsonConverter (schemas.enable
//     envelope, decimal.format, logical types), see json.go.
//   - String: org.apache.kafka.connect.storage.StringConverter.
//   - ByteArray: org.apache.kafka.connect.converters.ByteArrayConverter.
//
// Converters are plain values built by New or FromConfig; there is no
// registry. Every conversion error wraps ErrData, every configuration error
// wraps ErrConfig.
package converter

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

var (
	// ErrData is wrapped by every conversion error (Kafka's DataException).
	ErrData = errors.New("converter: data")
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("converter: config")
	// ErrUnknownConverter is wrapped when a converter class is not known.
	ErrUnknownConverter = errors.New("converter: unknown converter class")
)

// Converter turns Connect data into the bytes stored in Kafka and back.
// Configure must be called (once) before use and must not run concurrently
// with anything else; after it, FromConnect and ToConnect are safe for
// concurrent use.
type Converter interface {
	// Configure with the converter's config keys (prefix stripped:
	// "schemas.enable", "decimal.format", "converter.encoding" ...) and
	// whether it converts record keys or values.
	Configure(config map[string]string, isKey bool) error
	// FromConnect serializes a value of the given schema (nil: schemaless).
	// A nil result means a null Kafka key or value (a tombstone).
	FromConnect(topic string, schema *connect.Schema, value any) ([]byte, error)
	// ToConnect deserializes bytes (nil: a null key or value) into a schema
	// (nil: schemaless) and a value.
	ToConnect(topic string, data []byte) (*connect.Schema, any, error)
}

// Appender is implemented by converters that can serialize into a
// caller's buffer, sparing an allocation per record; the runtime uses it
// when a converter has it. AppendFromConnect appends exactly the bytes
// FromConnect would return to dst and returns the extended slice; null
// reports what a nil FromConnect result means (a null key or value), with
// dst returned unchanged. On error dst's contents past its original length
// are unspecified.
type Appender interface {
	AppendFromConnect(dst []byte, topic string, schema *connect.Schema, value any) (out []byte, null bool, err error)
}

var (
	_ Appender = (*JSON)(nil)
	_ Appender = (*String)(nil)
	_ Appender = (*ByteArray)(nil)
)

var (
	_ Converter = (*JSON)(nil)
	_ Converter = (*String)(nil)
	_ Converter = (*ByteArray)(nil)
)

// Class names of the built-in converters, as Kafka Connect spells them.
const (
	JSONClass      = "org.apache.kafka.connect.json.JsonConverter"
	StringClass    = "org.apache.kafka.connect.storage.StringConverter"
	ByteArrayClass = "org.apache.kafka.connect.converters.ByteArrayConverter"
)

// Short names of the built-in converters (ours).
const (
	JSONName      = "json"
	StringName    = "string"
	ByteArrayName = "bytes"
)

// knownClasses maps every accepted name to a constructor. It is a function,
// not a package variable, so that there is no package-level mutable state.
func knownClasses() map[string]func() Converter {
	return map[string]func() Converter{
		JSONClass:      func() Converter { return NewJSON() },
		JSONName:       func() Converter { return NewJSON() },
		StringClass:    func() Converter { return NewString() },
		StringName:     func() Converter { return NewString() },
		ByteArrayClass: func() Converter { return NewByteArray() },
		ByteArrayName:  func() Converter { return NewByteArray() },
	}
}

// New returns an unconfigured converter by class name: Kafka's class names
// (JSONClass, StringClass, ByteArrayClass) or our short names ("json",
// "string", "bytes"). Leading and trailing spaces are ignored. An unknown
// name is an error wrapping ErrUnknownConverter that lists the known ones.
func New(class string) (Converter, error) {
	known := knownClasses()
	if mk, ok := known[strings.TrimSpace(class)]; ok {
		return mk(), nil
	}
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q; known converters: %s", ErrUnknownConverter, class, strings.Join(names, ", "))
}

// FromConfig builds and configures the converter a connector (or worker)
// config asks for: config[prefix] names the class (defaultClass when absent
// or empty) and every key "<prefix>.<k>" is passed to Configure as "<k>".
// prefix is "key.converter" or "value.converter"; isKey tells the converter
// which one it serves.
func FromConfig(config map[string]string, prefix string, isKey bool, defaultClass string) (Converter, error) {
	class := strings.TrimSpace(config[prefix])
	if class == "" {
		class = defaultClass
	}
	if class == "" {
		return nil, fmt.Errorf("%w: %s is not set and there is no default", ErrConfig, prefix)
	}
	c, err := New(class)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	sub := make(map[string]string)
	p := prefix + "."
	for k, v := range config {
		if rest, ok := strings.CutPrefix(k, p); ok && rest != "" {
			sub[rest] = v
		}
	}
	if err := c.Configure(sub, isKey); err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return c, nil
}

// parseBool parses a boolean config value as Kafka's ConfigDef does
// (case-insensitive "true"/"false", surrounding spaces ignored).
func parseBool(key, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: invalid value %q for configuration %s: expected value to be either true or false", ErrConfig, v, key)
}

// dataErrorf returns an error wrapping ErrData.
func dataErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrData}, args...)...)
}
