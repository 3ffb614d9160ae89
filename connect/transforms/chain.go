package transforms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

// stage is one configured transformation of a chain, optionally guarded by
// a predicate.
type stage struct {
	alias     string
	typeName  string
	t         Transformation
	predicate Predicate // nil: always applies
	negate    bool
}

// Chain is the configured transformation pipeline of a connector. It is
// safe for concurrent use.
type Chain struct {
	stages []stage
}

// NewChain builds the pipeline from a connector config, as Kafka Connect's
// ConnectorConfig does, from the keys:
//
//	transforms                  comma-separated aliases, applied in order
//	transforms.<a>.type         class or short name of the transformation
//	transforms.<a>.<key>        the transformation's options
//	transforms.<a>.predicate    alias of a predicate guarding it (optional)
//	transforms.<a>.negate       "true": apply when the predicate does NOT match
//	predicates                  comma-separated predicate aliases
//	predicates.<p>.type         class or short name of the predicate
//	predicates.<p>.<key>        the predicate's options
//
// A config without "transforms" (or with an empty one) gives an empty chain
// that returns records unchanged. Errors are *ConfigError naming the full
// offending key, e.g. `transforms.route.type: unknown transformation "Foo";
// known: ...`.
func NewChain(config map[string]string) (*Chain, error) {
	predicates, err := buildPredicates(config)
	if err != nil {
		return nil, err
	}
	aliases := parseList(config["transforms"])
	c := &Chain{}
	seen := map[string]bool{}
	for _, alias := range aliases {
		if alias == "" {
			return nil, configErr("transforms", "empty alias in %q", config["transforms"])
		}
		if seen[alias] {
			return nil, configErr("transforms", "duplicate alias %q", alias)
		}
		seen[alias] = true
		prefix := "transforms." + alias + "."
		typeName, ok := config[prefix+"type"]
		if !ok || strings.TrimSpace(typeName) == "" {
			return nil, configErr(prefix+"type", "missing required configuration: the transformation's class name")
		}
		t := NewTransformation(typeName)
		if t == nil {
			if NewPredicate(typeName) != nil {
				return nil, configErr(prefix+"type", "%q is a predicate, not a transformation", typeName)
			}
			return nil, configErr(prefix+"type", "unknown transformation %q; known: %s", typeName, strings.Join(transformationNames(), ", "))
		}
		if err := t.Configure(subConfig(config, "transforms.", alias, aliases)); err != nil {
			return nil, prefixErr(err, prefix)
		}
		st := stage{alias: alias, typeName: strings.TrimPrefix(strings.TrimSpace(typeName), transformsPrefix), t: t}
		negate := false
		if v, ok := config[prefix+"negate"]; ok {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true":
				negate = true
			case "false":
			default:
				return nil, configErr(prefix+"negate", "expected true or false, got %q", v)
			}
		}
		if p, ok := config[prefix+"predicate"]; ok && strings.TrimSpace(p) != "" {
			p = strings.TrimSpace(p)
			pred, ok := predicates[p]
			if !ok {
				return nil, configErr(prefix+"predicate", "predicate %q is not defined: add it to \"predicates\" and set predicates.%s.type", p, p)
			}
			st.predicate, st.negate = pred, negate
		} else if negate {
			return nil, configErr(prefix+"negate", "negate=true needs %spredicate", prefix)
		}
		c.stages = append(c.stages, st)
	}
	return c, nil
}

func buildPredicates(config map[string]string) (map[string]Predicate, error) {
	out := map[string]Predicate{}
	aliases := parseList(config["predicates"])
	for _, alias := range aliases {
		if alias == "" {
			return nil, configErr("predicates", "empty alias in %q", config["predicates"])
		}
		if _, dup := out[alias]; dup {
			return nil, configErr("predicates", "duplicate alias %q", alias)
		}
		prefix := "predicates." + alias + "."
		typeName, ok := config[prefix+"type"]
		if !ok || strings.TrimSpace(typeName) == "" {
			return nil, configErr(prefix+"type", "missing required configuration: the predicate's class name")
		}
		p := NewPredicate(typeName)
		if p == nil {
			return nil, configErr(prefix+"type", "unknown predicate %q; known: %s", typeName, strings.Join(predicateNames(), ", "))
		}
		if err := p.Configure(subConfig(config, "predicates.", alias, aliases)); err != nil {
			return nil, prefixErr(err, prefix)
		}
		out[alias] = p
	}
	return out, nil
}

// subConfig returns the keys under group+alias+"." with that prefix
// stripped, leaving out the keys of other aliases that extend this one
// (alias "a" must not see the keys of alias "a.b").
func subConfig(config map[string]string, group, alias string, all []string) map[string]string {
	prefix := group + alias + "."
	out := map[string]string{}
outer:
	for k, v := range config {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		for _, other := range all {
			if len(other) > len(alias) && strings.HasPrefix(k, group+other+".") {
				continue outer
			}
		}
		out[rest] = v
	}
	return out
}

func prefixErr(err error, prefix string) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return &ConfigError{Key: prefix + ce.Key, Msg: ce.Msg}
	}
	return &ConfigError{Key: strings.TrimSuffix(prefix, "."), Msg: err.Error()}
}

// Len returns the number of transformations in the chain.
func (c *Chain) Len() int { return len(c.stages) }

// Apply runs each transformation in order (those whose predicate says so)
// and returns the result, or nil when a transformation dropped the record.
// r is never mutated. Errors name the failing transformation's alias.
func (c *Chain) Apply(r *connect.Record) (*connect.Record, error) {
	return c.apply(r, nil)
}

// ApplySink is Apply for a record read from Kafka: transformations that
// use sink metadata (InsertField's offset.field) see its Kafka offset, and
// a nil Record.Partition is taken to be KafkaPartition. The result keeps
// r's KafkaPartition, KafkaOffset and TimestampType; nil means dropped.
func (c *Chain) ApplySink(r *connect.SinkRecord) (*connect.SinkRecord, error) {
	off := r.KafkaOffset
	in := &r.Record
	if in.Partition == nil { // a sink record's partition is its Kafka partition
		cp := *in
		cp.Partition = &r.KafkaPartition
		in = &cp
	}
	out, err := c.apply(in, &off)
	if err != nil || out == nil {
		return nil, err
	}
	if out == &r.Record {
		return r, nil // unchanged
	}
	return &connect.SinkRecord{Record: *out, KafkaPartition: r.KafkaPartition, KafkaOffset: r.KafkaOffset, TimestampType: r.TimestampType}, nil
}

func (c *Chain) apply(r *connect.Record, sinkOffset *int64) (*connect.Record, error) {
	for i := range c.stages {
		st := &c.stages[i]
		if st.predicate != nil && st.predicate.Test(r) == st.negate {
			continue
		}
		var (
			out *connect.Record
			err error
		)
		if sink, ok := st.t.(SinkTransformation); ok && sinkOffset != nil {
			out, err = sink.ApplySink(r, *sinkOffset)
		} else {
			out, err = st.t.Apply(r)
		}
		if err != nil {
			return nil, fmt.Errorf("transforms.%s (%s): %w", st.alias, st.typeName, err)
		}
		if out == nil {
			return nil, nil
		}
		r = out
	}
	return r, nil
}
