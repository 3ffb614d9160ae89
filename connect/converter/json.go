package converter

// JsonConverter wire format (Kafka Connect's, version as of Kafka 3.x/4.x):
//
//	schemas.enable=true (default):  {"schema":<schema>,"payload":<value>}
//	schemas.enable=false:           <value>
//	schema: {"type":"int8|int16|int32|int64|float|double|boolean|string|bytes",
//	         "optional":bool[,"name":s][,"version":n][,"doc":s][,"parameters":{s:s}][,"default":v]}
//	        {"type":"array","items":<schema>,"optional":...}
//	        {"type":"map","keys":<schema>,"values":<schema>,"optional":...}
//	        {"type":"struct","fields":[<schema + "field":name>...],"optional":...}
//	        or null (schemaless value)
//
// A null value with a null schema is a null record (nil bytes). Value
// encodings are described in jsonenc.go.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tributary-data/tributary/connect"
)

// JSON config keys (Kafka's JsonConverterConfig names).
const (
	SchemasEnableConfig          = "schemas.enable"
	SchemasCacheSizeConfig       = "schemas.cache.size"
	DecimalFormatConfig          = "decimal.format"
	ReplaceNullWithDefaultConfig = "replace.null.with.default"
	SchemaContentConfig          = "schema.content"
)

// DefaultSchemasCacheSize is the default of schemas.cache.size.
const DefaultSchemasCacheSize = 1000

// JSON is Kafka Connect's JsonConverter.
//
// Config keys: schemas.enable (default true), schemas.cache.size (default
// 1000), decimal.format (BASE64 default, or NUMERIC; case-insensitive),
// replace.null.with.default (only true, the default, is supported: false
// is a configuration error), converter.type (set by Configure). The
// schema.content key (Kafka 4.1+) is not supported and is rejected. Other
// keys are ignored, as Kafka ignores them.
//
// ToConnect returns, for a schema, the Go types documented in package
// connect (int32 for INT32, connect.Decimal for Decimal, time.Time for
// Date/Time/Timestamp, map[any]any for MAP, *connect.Struct for STRUCT).
// Schemaless JSON gives map[string]any for objects, []any for arrays,
// string, bool, nil, int64 for integral numbers that fit (as Kafka gives a
// Long) and float64 for other numbers (as Kafka gives a Double).
//
// Deliberate differences from Kafka, all on input Kafka mangles: numbers
// of the wrong kind (a fraction or an out-of-range value for an integer
// type, a string for a number, a non-array for an ARRAY, ...) are errors
// where Kafka silently truncates or yields 0/false/null; trailing content
// after the JSON value is an error where Jackson ignores it; the strings
// "NaN", "Infinity" and "-Infinity" (which Kafka writes for non-finite
// floats) read back as those floats where Kafka reads 0.
type JSON struct {
	schemasEnable  bool
	decimalNumeric bool
	cacheSize      int

	bufPool sync.Pool // *[]byte scratch buffers for FromConnect

	toJSONMu    sync.RWMutex
	toJSONCache map[*connect.Schema][]byte // schema -> its JSON form

	toConnectMu    sync.RWMutex
	toConnectCache map[string]*connect.Schema // JSON form -> schema
	last           atomic.Pointer[lastSchema]
}

// NewJSON returns a JsonConverter with Kafka's defaults (schemas enabled,
// BASE64 decimals), usable without Configure.
func NewJSON() *JSON {
	c := &JSON{}
	c.reset()
	return c
}

func (c *JSON) reset() {
	c.schemasEnable = true
	c.decimalNumeric = false
	c.cacheSize = DefaultSchemasCacheSize
	c.toJSONCache = make(map[*connect.Schema][]byte)
	c.toConnectCache = make(map[string]*connect.Schema)
	c.last.Store(nil)
}

// Configure applies the JsonConverter config keys; see JSON.
func (c *JSON) Configure(config map[string]string, isKey bool) error {
	c.reset()
	if v, ok := config[SchemasEnableConfig]; ok {
		b, err := parseBool(SchemasEnableConfig, v)
		if err != nil {
			return err
		}
		c.schemasEnable = b
	}
	if v, ok := config[SchemasCacheSizeConfig]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%w: invalid value %q for configuration %s: not a number of type INT", ErrConfig, v, SchemasCacheSizeConfig)
		}
		c.cacheSize = n
	}
	if v, ok := config[DecimalFormatConfig]; ok {
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case "BASE64":
			c.decimalNumeric = false
		case "NUMERIC":
			c.decimalNumeric = true
		default:
			return fmt.Errorf("%w: invalid value %q for configuration %s: String must be one of (case insensitive): BASE64, NUMERIC", ErrConfig, v, DecimalFormatConfig)
		}
	}
	if v, ok := config[ReplaceNullWithDefaultConfig]; ok {
		b, err := parseBool(ReplaceNullWithDefaultConfig, v)
		if err != nil {
			return err
		}
		if !b {
			return fmt.Errorf("%w: %s=false is not supported (only the default, true)", ErrConfig, ReplaceNullWithDefaultConfig)
		}
	}
	if _, ok := config[SchemaContentConfig]; ok {
		return fmt.Errorf("%w: %s is not supported", ErrConfig, SchemaContentConfig)
	}
	if v, ok := config["converter.type"]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "key", "value", "header":
		default:
			return fmt.Errorf("%w: invalid value %q for configuration converter.type: must be one of key, value, header", ErrConfig, v)
		}
	}
	return nil
}

// FromConnect serializes value under schema. A nil schema with a nil value
// gives nil (a null record); otherwise the result is a fresh slice owned
// by the caller.
func (c *JSON) FromConnect(topic string, schema *connect.Schema, value any) ([]byte, error) {
	if schema == nil && value == nil {
		return nil, nil
	}
	bp, _ := c.bufPool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b, _, err := c.AppendFromConnect((*bp)[:0], topic, schema, value)
	var out []byte
	if err == nil {
		out = make([]byte, len(b))
		copy(out, b)
	}
	if cap(b) <= 1<<20 { // do not keep huge buffers alive
		*bp = b
		c.bufPool.Put(bp)
	}
	return out, err
}

// AppendFromConnect appends what FromConnect returns to dst (Appender).
func (c *JSON) AppendFromConnect(dst []byte, topic string, schema *connect.Schema, value any) ([]byte, bool, error) {
	if schema == nil && value == nil {
		return dst, true, nil
	}
	b, err := dst, error(nil)
	if c.schemasEnable {
		b = append(b, `{"schema":`...)
		if b, err = c.appendSchemaCached(b, schema); err == nil {
			b = append(b, `,"payload":`...)
			if b, err = c.appendValue(b, schema, value); err == nil {
				b = append(b, '}')
			}
		}
	} else {
		b, err = c.appendValue(b, schema, value)
	}
	if err != nil {
		return dst, false, fmt.Errorf("converting Kafka Connect data to JSON: %w", err)
	}
	return b, false, nil
}

// appendSchemaCached appends a schema's JSON form, from a cache keyed by
// the schema pointer (schemas are immutable once built).
func (c *JSON) appendSchemaCached(b []byte, s *connect.Schema) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	c.toJSONMu.RLock()
	js, ok := c.toJSONCache[s]
	c.toJSONMu.RUnlock()
	if ok {
		return append(b, js...), nil
	}
	js, err := c.appendSchema(nil, s, "", false)
	if err != nil {
		return b, err
	}
	if c.cacheSize > 0 {
		c.toJSONMu.Lock()
		if len(c.toJSONCache) >= c.cacheSize {
			for k := range c.toJSONCache { // evict one arbitrary entry
				delete(c.toJSONCache, k)
				break
			}
		}
		c.toJSONCache[s] = js
		c.toJSONMu.Unlock()
	}
	return append(b, js...), nil
}

const envelopeError = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields." +
	" If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration."

// ToConnect parses data. nil data (a null record) gives (nil, nil, nil).
// With schemas.enable the data must be an envelope object with exactly
// the "schema" and "payload" fields; without, empty data gives (nil, nil,
// nil) and anything else a schemaless value.
func (c *JSON) ToConnect(topic string, data []byte) (*connect.Schema, any, error) {
	if data == nil {
		return nil, nil, nil
	}
	if !c.schemasEnable {
		d := decoder{data: data}
		d.skipWS()
		if d.pos == len(data) {
			return nil, nil, nil
		}
		v, err := d.value(nil)
		if err == nil {
			err = d.end()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("converting JSON to Kafka Connect data: %w", err)
		}
		return nil, v, nil
	}
	schema, v, err := c.envelope(data)
	if err != nil {
		return nil, nil, fmt.Errorf("converting JSON to Kafka Connect data: %w", err)
	}
	return schema, v, nil
}

// lastSchema is the most recently parsed schema with its exact JSON form:
// records of a topic usually share one, so a byte comparison replaces
// tokenizing it.
type lastSchema struct {
	raw    []byte
	schema *connect.Schema
}

// envelope decodes {"schema":...,"payload":...}. Errors are reported in
// Kafka's order: invalid JSON, then a bad envelope, then a bad schema,
// then a payload not matching the schema. When "schema" comes first (as
// every writer puts it) the payload is decoded in the same pass.
func (c *JSON) envelope(data []byte) (*connect.Schema, any, error) {
	d := decoder{data: data}
	d.skipWS()
	if d.pos >= len(data) || data[d.pos] != '{' {
		if d.pos < len(data) {
			if err := d.skipValue(); err != nil {
				return nil, nil, err
			}
			if err := d.end(); err != nil {
				return nil, nil, err
			}
		}
		return nil, nil, dataErrorf("%s", envelopeError)
	}
	var (
		schema              *connect.Schema
		schemaErr, valueErr error
		value               any
		payloadSpan         []byte
		haveSchema, decoded bool
		extra, sawPayload   bool
	)
	err := d.objectFields(func(key []byte) error {
		d.skipWS()
		start := d.pos
		switch string(key) {
		case "schema":
			haveSchema, decoded = true, false
			if last := c.last.Load(); last != nil && bytes.HasPrefix(data[start:], last.raw) {
				d.pos += len(last.raw)
				schema, schemaErr = last.schema, nil
				return nil
			}
			if err := d.skipValue(); err != nil {
				return err
			}
			span := data[start:d.pos]
			schema, schemaErr = c.schemaCached(span)
			if schemaErr == nil {
				c.last.Store(&lastSchema{raw: append([]byte(nil), span...), schema: schema})
			}
			return nil
		case "payload":
			sawPayload = true
			if haveSchema && schemaErr == nil {
				depth := d.depth
				value, valueErr = d.value(schema)
				if valueErr != nil { // find the value's end, reporting invalid JSON first
					d.pos, d.depth = start, depth
					if err := d.skipValue(); err != nil {
						return err
					}
				}
				decoded = true
			} else {
				if err := d.skipValue(); err != nil {
					return err
				}
				decoded = false
			}
			payloadSpan = data[start:d.pos]
			return nil
		}
		extra = true
		return d.skipValue()
	})
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return nil, nil, err
	}
	if extra || !haveSchema || !sawPayload {
		return nil, nil, dataErrorf("%s", envelopeError)
	}
	if schemaErr != nil {
		return nil, nil, fmt.Errorf("schema: %w", schemaErr)
	}
	if !decoded {
		pd := decoder{data: payloadSpan}
		value, valueErr = pd.value(schema)
	}
	if valueErr != nil {
		return nil, nil, fmt.Errorf("payload: %w", valueErr)
	}
	return schema, value, nil
}

// schemaCached parses a schema's JSON form, from a cache keyed by its
// exact bytes.
func (c *JSON) schemaCached(span []byte) (*connect.Schema, error) {
	c.toConnectMu.RLock()
	s, ok := c.toConnectCache[string(span)]
	c.toConnectMu.RUnlock()
	if ok {
		return s, nil
	}
	s, err := parseSchema(span)
	if err != nil {
		return nil, err
	}
	if c.cacheSize > 0 {
		c.toConnectMu.Lock()
		if len(c.toConnectCache) >= c.cacheSize {
			for k := range c.toConnectCache {
				delete(c.toConnectCache, k)
				break
			}
		}
		c.toConnectCache[string(span)] = s
		c.toConnectMu.Unlock()
	}
	return s, nil
}
