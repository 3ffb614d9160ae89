// Package transforms implements Kafka Connect's single message transforms
// (SMTs) and predicates with Apache Kafka 3.x's type names, option keys and
// semantics, so that the "transforms.*" and "predicates.*" keys of existing
// Kafka Connect connector configs work unchanged.
//
// Type names are accepted in Kafka's class-name form
// ("org.apache.kafka.connect.transforms.InsertField$Value",
// "org.apache.kafka.connect.transforms.predicates.TopicNameMatches") and in
// short form ("InsertField$Value", "TopicNameMatches").
//
// Transformations: InsertField, ReplaceField, MaskField, ExtractField,
// HoistField, Cast, Flatten, SetSchemaMetadata, HeaderFrom,
// TimestampConverter ($Key and $Value each), ValueToKey, TimestampRouter,
// RegexRouter, Filter, InsertHeader, DropHeaders.
// Predicates: TopicNameMatches, HasHeaderKey, RecordIsTombstone.
//
// Every transformation and predicate rejects option keys it does not know
// (Kafka ignores them; a silently ignored typo or an option of a newer Kafka
// we do not implement would change the data). Config errors are *ConfigError
// values naming the key; record errors wrap ErrData.
//
// Use NewTransformation and NewPredicate to construct them (the zero value
// of a $Key/$Value type is its $Value variant).
//
// Differences from Kafka, on purpose and documented per type: ExtractField
// supports field.syntax.version=V1 only (no nested paths); the Kafka 3.8
// option replace.null.with.default is not supported (rejected as unknown);
// a whole-value Cast drops the name of a logical-type schema; MaskField
// gives a masked Decimal the field's scale; InsertHeader's
// value.literal infers boolean, integer and floating-point types as Kafka's
// Values.parseString does and keeps every other literal as a string;
// TimestampRouter and TimestampConverter support a subset of
// SimpleDateFormat (letters y M d E H h a m s S Z X z, quoted literals;
// always UTC, English names); RegexRouter and TopicNameMatches use Go's RE2 syntax
// (Java-only constructs such as lookaround or backreferences are rejected).
package transforms

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/tributary-data/tributary/connect"
)

// Sentinel errors.
var (
	// ErrConfig is wrapped by every configuration error (*ConfigError).
	ErrConfig = errors.New("transforms: invalid config")
	// ErrData is wrapped by every error a transformation returns for a
	// record it cannot process (Kafka's DataException).
	ErrData = errors.New("transforms: data")
)

// ConfigError is a configuration error naming the offending key.
type ConfigError struct {
	Key string // the full key when raised by NewChain, else the transform's own key
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Unwrap() error { return ErrConfig }

func configErr(key, format string, args ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

func dataErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrData, fmt.Sprintf(format, args...))
}

// Transformation changes or drops a record (returning nil drops it). It is
// safe for concurrent use after Configure.
type Transformation interface {
	// Configure sets the transform's own options: the connector config keys
	// "transforms.<alias>.<key>" with the prefix stripped. The keys "type",
	// "predicate" and "negate" are ignored.
	Configure(config map[string]string) error
	// Apply returns the transformed record, or nil to drop it. It never
	// mutates r (records may be shared): it returns a copy with the changed
	// parts replaced, or r itself when nothing changes.
	Apply(r *connect.Record) (*connect.Record, error)
}

// SinkTransformation is implemented by transformations that read sink-only
// metadata (InsertField's offset.field). Chain.ApplySink calls ApplySink
// instead of Apply on them.
type SinkTransformation interface {
	Transformation
	ApplySink(r *connect.Record, kafkaOffset int64) (*connect.Record, error)
}

// Predicate tells whether a record matches. Safe for concurrent use after
// Configure.
type Predicate interface {
	// Configure sets the predicate's own options ("predicates.<alias>.<key>"
	// with the prefix stripped; "type" is ignored).
	Configure(config map[string]string) error
	Test(r *connect.Record) bool
}

const (
	transformsPrefix = "org.apache.kafka.connect.transforms."
	predicatesPrefix = "org.apache.kafka.connect.transforms.predicates."
)

// transformationNames are the short names of every transformation.
func transformationNames() []string {
	return []string{
		"Cast$Key", "Cast$Value", "DropHeaders", "ExtractField$Key", "ExtractField$Value",
		"Filter", "Flatten$Key", "Flatten$Value", "HeaderFrom$Key", "HeaderFrom$Value",
		"HoistField$Key", "HoistField$Value", "InsertField$Key", "InsertField$Value", "InsertHeader",
		"MaskField$Key", "MaskField$Value", "RegexRouter", "ReplaceField$Key", "ReplaceField$Value",
		"SetSchemaMetadata$Key", "SetSchemaMetadata$Value", "TimestampConverter$Key",
		"TimestampConverter$Value", "TimestampRouter", "ValueToKey",
	}
}

func predicateNames() []string {
	return []string{"HasHeaderKey", "RecordIsTombstone", "TopicNameMatches"}
}

// newTransformation returns an unconfigured transformation by short name.
func newTransformation(short string) Transformation {
	switch short {
	case "InsertField$Key":
		return &InsertField{side: keySide}
	case "InsertField$Value":
		return &InsertField{side: valueSide}
	case "ReplaceField$Key":
		return &ReplaceField{side: keySide}
	case "ReplaceField$Value":
		return &ReplaceField{side: valueSide}
	case "MaskField$Key":
		return &MaskField{side: keySide}
	case "MaskField$Value":
		return &MaskField{side: valueSide}
	case "ExtractField$Key":
		return &ExtractField{side: keySide}
	case "ExtractField$Value":
		return &ExtractField{side: valueSide}
	case "HoistField$Key":
		return &HoistField{side: keySide}
	case "HoistField$Value":
		return &HoistField{side: valueSide}
	case "Cast$Key":
		return &Cast{side: keySide}
	case "Cast$Value":
		return &Cast{side: valueSide}
	case "Flatten$Key":
		return &Flatten{side: keySide}
	case "Flatten$Value":
		return &Flatten{side: valueSide}
	case "SetSchemaMetadata$Key":
		return &SetSchemaMetadata{side: keySide}
	case "SetSchemaMetadata$Value":
		return &SetSchemaMetadata{side: valueSide}
	case "HeaderFrom$Key":
		return &HeaderFrom{side: keySide}
	case "HeaderFrom$Value":
		return &HeaderFrom{side: valueSide}
	case "TimestampConverter$Key":
		return &TimestampConverter{side: keySide}
	case "TimestampConverter$Value":
		return &TimestampConverter{side: valueSide}
	case "ValueToKey":
		return &ValueToKey{}
	case "TimestampRouter":
		return &TimestampRouter{}
	case "RegexRouter":
		return &RegexRouter{}
	case "Filter":
		return &Filter{}
	case "InsertHeader":
		return &InsertHeader{}
	case "DropHeaders":
		return &DropHeaders{}
	}
	return nil
}

func newPredicate(short string) Predicate {
	switch short {
	case "TopicNameMatches":
		return &TopicNameMatches{}
	case "HasHeaderKey":
		return &HasHeaderKey{}
	case "RecordIsTombstone":
		return &RecordIsTombstone{}
	}
	return nil
}

// NewTransformation returns an unconfigured transformation by Kafka class
// name or short name, or nil when the name is unknown.
func NewTransformation(typeName string) Transformation {
	return newTransformation(strings.TrimPrefix(strings.TrimSpace(typeName), transformsPrefix))
}

// NewPredicate returns an unconfigured predicate by Kafka class name or
// short name, or nil when the name is unknown.
func NewPredicate(typeName string) Predicate {
	return newPredicate(strings.TrimPrefix(strings.TrimSpace(typeName), predicatesPrefix))
}

// KnownTransformations returns the Kafka class names of every
// transformation, sorted.
func KnownTransformations() []string {
	var out []string
	for _, n := range transformationNames() {
		out = append(out, transformsPrefix+n)
	}
	sort.Strings(out)
	return out
}

// KnownPredicates returns the Kafka class names of every predicate, sorted.
func KnownPredicates() []string {
	var out []string
	for _, n := range predicateNames() {
		out = append(out, predicatesPrefix+n)
	}
	sort.Strings(out)
	return out
}

// Known returns the Kafka class names of every transformation and then of
// every predicate (each group sorted). Each is also accepted without its
// package prefix.
func Known() []string { return append(KnownTransformations(), KnownPredicates()...) }

// side selects the record part a $Key or $Value transformation works on.
type side int

const (
	valueSide side = iota
	keySide
)

func (s side) get(r *connect.Record) (*connect.Schema, any) {
	if s == keySide {
		return r.KeySchema, r.Key
	}
	return r.ValueSchema, r.Value
}

// with returns a shallow copy of r with the side replaced.
func (s side) with(r *connect.Record, schema *connect.Schema, v any) *connect.Record {
	c := *r
	if s == keySide {
		c.KeySchema, c.Key = schema, v
	} else {
		c.ValueSchema, c.Value = schema, v
	}
	return &c
}

// schemaCacheSize bounds each transform's derived-schema cache. Schemas
// normally repeat for millions of records, so a few entries suffice; the
// bound protects against producers that build a new *Schema per record.
const schemaCacheSize = 64

// schemaCache maps an input schema (by pointer) to its derived schema.
type schemaCache struct {
	mu sync.RWMutex
	m  map[*connect.Schema]*connect.Schema
}

// reset empties the cache (Configure calls it: derived schemas depend on
// the config).
func (c *schemaCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (c *schemaCache) get(k *connect.Schema) *connect.Schema {
	c.mu.RLock()
	v := c.m[k]
	c.mu.RUnlock()
	return v
}

func (c *schemaCache) put(k, v *connect.Schema) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[*connect.Schema]*connect.Schema)
	}
	if len(c.m) >= schemaCacheSize {
		for old := range c.m { // evict an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// getOrBuild returns the cached derived schema of k, building it on a miss.
func (c *schemaCache) getOrBuild(k *connect.Schema, build func(*connect.Schema) (*connect.Schema, error)) (*connect.Schema, error) {
	if v := c.get(k); v != nil {
		return v, nil
	}
	v, err := build(k)
	if err != nil {
		return nil, err
	}
	c.put(k, v)
	return v, nil
}

// options reads a transform's config: it rejects unknown keys and parses
// Kafka's STRING and LIST types.
type options struct {
	cfg map[string]string
}

// newOptions checks that every key of cfg is one of known (or "type",
// "predicate", "negate", which the chain handles).
func newOptions(cfg map[string]string, known ...string) (options, error) {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
outer:
	for _, k := range keys {
		switch k {
		case "type", "predicate", "negate":
			continue
		}
		for _, n := range known {
			if k == n {
				continue outer
			}
		}
		if len(known) == 0 {
			return options{}, configErr(k, "unknown option (this type takes none)")
		}
		return options{}, configErr(k, "unknown option; known: %s", strings.Join(known, ", "))
	}
	return options{cfg: cfg}, nil
}

// str returns a STRING option and whether it was set.
func (o options) str(key string) (string, bool) {
	v, ok := o.cfg[key]
	return v, ok
}

// required returns a required STRING option.
func (o options) required(key string) (string, error) {
	v, ok := o.cfg[key]
	if !ok {
		return "", configErr(key, "missing required configuration with no default value")
	}
	return v, nil
}

// list parses a LIST option as Kafka does: comma-separated, each item
// trimmed; an empty string is an empty list.
func (o options) list(key string) ([]string, bool) {
	v, ok := o.cfg[key]
	if !ok {
		return nil, false
	}
	return parseList(v), true
}

func parseList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return []string{}
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// nonEmptyList returns a required LIST option that must not be empty.
func (o options) nonEmptyList(key string) ([]string, error) {
	l, ok := o.list(key)
	if !ok {
		return nil, configErr(key, "missing required configuration with no default value")
	}
	if len(l) == 0 {
		return nil, configErr(key, "empty list is not allowed")
	}
	return l, nil
}

// structSchema builds a STRUCT schema with base's name, version, doc and
// parameters (Kafka's SchemaUtil.copySchemaBasics) and the given fields,
// rejecting duplicate field names as Kafka's SchemaBuilder does.
func structSchema(base *connect.Schema, fields []connect.Field) (*connect.Schema, error) {
	s := &connect.Schema{Type: connect.StructT}
	if base != nil {
		s.Name, s.Version, s.Doc = base.Name, base.Version, base.Doc
		if base.Parameters != nil {
			s.Parameters = make(map[string]string, len(base.Parameters))
			for k, v := range base.Parameters {
				s.Parameters[k] = v
			}
		}
	}
	seen := make(map[string]bool, len(fields))
	s.Fields = make([]connect.Field, len(fields))
	for i, f := range fields {
		if seen[f.Name] {
			return nil, dataErr("cannot create field %q because of field name duplication", f.Name)
		}
		seen[f.Name] = true
		s.Fields[i] = connect.Field{Name: f.Name, Index: i, Schema: f.Schema}
	}
	return s, nil
}

// requireStruct returns v as a *Struct or an error naming purpose.
func requireStruct(v any, purpose string) (*connect.Struct, error) {
	st, ok := v.(*connect.Struct)
	if !ok || st == nil {
		return nil, dataErr("only Struct objects supported for [%s], found: %s", purpose, typeName(v))
	}
	return st, nil
}

// requireMap returns v as a schemaless object or an error naming purpose.
func requireMap(v any, purpose string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, dataErr("only Map objects supported in absence of schema for [%s], found: %s", purpose, typeName(v))
	}
	return m, nil
}

func typeName(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func copyMap(m map[string]any, extra int) map[string]any {
	out := make(map[string]any, len(m)+extra)
	for k, v := range m {
		out[k] = v
	}
	return out
}
