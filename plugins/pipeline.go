package plugins

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connect/converter"
	"github.com/tributary-data/tributary/connect/transforms"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// Default converters, as Kafka Connect's worker defaults them.
const (
	defaultConverter       = "org.apache.kafka.connect.json.JsonConverter"
	defaultHeaderConverter = "org.apache.kafka.connect.storage.StringConverter"
)

// Failure stages, as Kafka Connect names them in dead letter queue headers.
const (
	stageKeyConverter    = "KEY_CONVERTER"
	stageValueConverter  = "VALUE_CONVERTER"
	stageHeaderConverter = "HEADER_CONVERTER"
	stageTransformation  = "TRANSFORMATION"
)

// errConfig is wrapped by pipeline configuration errors.
var errConfig = errors.New("plugins: invalid config")

// pipeline converts and transforms one task's records, inside the plugin
// process: key/value/header converters, the transform chain, and the
// errors.tolerance policy for failures in them.
//
// fromSource and produce reuse scratch buffers: one batch at a time.
type pipeline struct {
	key, value, header converter.Converter
	chain              *transforms.Chain
	tolerateAll        bool
	keyBuf, valueBuf   []byte // scratch for converters that are Appenders
	keys               [][]byte
	last               []bool // scratch of partitionKeys
}

func newPipeline(config map[string]string) (*pipeline, error) {
	var p pipeline
	var err error
	switch t := strings.TrimSpace(config["errors.tolerance"]); t {
	case "", "none":
	case "all":
		p.tolerateAll = true
	default:
		return nil, fmt.Errorf("%w: errors.tolerance=%q: use none or all", errConfig, t)
	}
	if p.key, err = converter.FromConfig(config, "key.converter", true, defaultConverter); err != nil {
		return nil, fmt.Errorf("%w: key.converter: %v", errConfig, err)
	}
	if p.value, err = converter.FromConfig(config, "value.converter", false, defaultConverter); err != nil {
		return nil, fmt.Errorf("%w: value.converter: %v", errConfig, err)
	}
	if p.header, err = converter.FromConfig(config, "header.converter", false, defaultHeaderConverter); err != nil {
		return nil, fmt.Errorf("%w: header.converter: %v", errConfig, err)
	}
	if p.chain, err = transforms.NewChain(config); err != nil {
		return nil, fmt.Errorf("%w: %v", errConfig, err)
	}
	return &p, nil
}

// copiesInput reports whether the records toSink returns never refer to
// the consumed records' bytes: true unless a converter is a ByteArray
// converter, which hands the bytes through as they are.
func (p *pipeline) copiesInput() bool {
	for _, c := range []converter.Converter{p.key, p.value, p.header} {
		if _, ok := c.(*converter.ByteArray); ok {
			return false
		}
	}
	return true
}

// stageError is a failure in one stage of the pipeline.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// fromSource transforms and serializes a source record into out (a scratch
// record the caller reuses). partition is the record's source partition as
// JSON; withOffset says whether to send it with the record's offset (only
// the last record of each source partition in a batch carries them: the
// worker stores the latest offset per partition and batch). A record dropped
// by a transform, or failing with errors.tolerance=all, comes back marked
// dropped (its offset still counts as done); with tolerance none a failure
// is returned as an error.
func (p *pipeline) fromSource(sr *connect.SourceRecord, partition []byte, withOffset bool, out *pluginpb.ProducedRecord) error {
	*out = pluginpb.ProducedRecord{}
	if withOffset {
		out.SourcePartitionJson = partition
		var err error
		if out.SourceOffsetJson, err = EncodeOffsetJSON(sr.SourceOffset); err != nil {
			return fmt.Errorf("source offset: %w", err)
		}
	}
	if err := p.produce(&sr.Record, out); err != nil {
		if !p.tolerateAll {
			return err
		}
		*out = pluginpb.ProducedRecord{SourcePartitionJson: out.SourcePartitionJson, SourceOffsetJson: out.SourceOffsetJson, Dropped: true, Error: err.Error()}
	}
	return nil
}

// partitionKeys encodes the source partitions of a batch, once per distinct
// map value (connectors usually reuse one map per partition), and marks the
// last record of each partition. The slices returned are scratch of p,
// valid until the next call.
func (p *pipeline) partitionKeys(recs []connect.SourceRecord) (keys [][]byte, last []bool, err error) {
	keys = grow(p.keys, len(recs))
	last = grow(p.last, len(recs))
	p.keys, p.last = keys, last
	clear(keys)
	clear(last)
	var (
		prevPtr  uintptr
		prevID   = -1
		byMap    map[uintptr]int // map value -> partition id
		byJSON   map[string]int  // encoded partition -> partition id
		distinct [][]byte        // by id
		lastIdx  []int           // by id
	)
	for i := range recs {
		m := recs[i].SourcePartition
		if m == nil {
			continue
		}
		ptr := reflect.ValueOf(m).Pointer()
		id := prevID
		if ptr != prevPtr || prevID < 0 {
			var ok bool
			if id, ok = byMap[ptr]; !ok {
				b, err := EncodeOffsetJSON(m)
				if err != nil {
					return nil, nil, fmt.Errorf("source partition: %w", err)
				}
				if id, ok = byJSON[string(b)]; !ok {
					id = len(distinct)
					distinct = append(distinct, b)
					lastIdx = append(lastIdx, i)
					if byJSON == nil {
						byJSON, byMap = map[string]int{}, map[uintptr]int{}
					}
					byJSON[string(b)] = id
				}
				byMap[ptr] = id
			}
			prevPtr, prevID = ptr, id
		}
		keys[i] = distinct[id]
		lastIdx[id] = i
	}
	for _, i := range lastIdx {
		last[i] = true
	}
	return keys, last, nil
}

// grow returns s resized to n, reusing its array when large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

func (p *pipeline) produce(in *connect.Record, out *pluginpb.ProducedRecord) error {
	r, err := p.chain.Apply(in)
	if err != nil {
		return &stageError{stageTransformation, err}
	}
	if r == nil {
		out.Dropped = true
		return nil
	}
	out.Topic = r.Topic
	if r.Partition != nil {
		out.HasPartition, out.Partition = true, *r.Partition
	}
	if out.Key, out.KeyNull, err = convert(p.key, &p.keyBuf, r.Topic, r.KeySchema, r.Key); err != nil {
		return &stageError{stageKeyConverter, err}
	}
	if out.Value, out.ValueNull, err = convert(p.value, &p.valueBuf, r.Topic, r.ValueSchema, r.Value); err != nil {
		return &stageError{stageValueConverter, err}
	}
	if !r.Timestamp.IsZero() {
		out.TimestampMs = r.Timestamp.UnixMilli()
	}
	for _, h := range r.Headers {
		b, err := p.header.FromConnect(r.Topic, h.Schema, h.Value)
		if err != nil {
			return &stageError{stageHeaderConverter, fmt.Errorf("header %q: %w", h.Key, err)}
		}
		out.Headers = append(out.Headers, &pluginpb.Header{Key: h.Key, Value: b, ValueNull: b == nil})
	}
	return nil
}

// convert serializes a key or value; an Appender converter writes into
// *scratch (the result is valid until the next call with it).
func convert(c converter.Converter, scratch *[]byte, topic string, schema *connect.Schema, v any) (b []byte, null bool, err error) {
	if a, ok := c.(converter.Appender); ok {
		b, null, err = a.AppendFromConnect((*scratch)[:0], topic, schema, v)
		if cap(b) <= 1<<20 { // do not keep a huge record's buffer alive
			*scratch = b
		}
		if null {
			return nil, true, err
		}
		return b, false, err
	}
	b, err = c.FromConnect(topic, schema, v)
	return b, b == nil, err
}

// toSink deserializes and transforms a consumed record into *out (which
// the caller zeroed; part is where its Partition points). It returns the
// record to hand to the task: out itself, another record a transform made,
// or nil when a transform dropped it.
func (p *pipeline) toSink(cr *ConsumedFields, part *int32, out *connect.SinkRecord) (*connect.SinkRecord, error) {
	*part = cr.Partition
	out.Topic, out.Partition = cr.Topic, part
	out.KafkaPartition, out.KafkaOffset, out.TimestampType = cr.Partition, cr.Offset, connect.TimestampType(cr.TimestampType)
	r := &out.Record
	var err error
	if r.KeySchema, r.Key, err = p.key.ToConnect(cr.Topic, cr.Key); err != nil {
		return nil, &stageError{stageKeyConverter, err}
	}
	if r.ValueSchema, r.Value, err = p.value.ToConnect(cr.Topic, cr.Value); err != nil {
		return nil, &stageError{stageValueConverter, err}
	}
	if cr.TimestampMs >= 0 && cr.TimestampType >= 0 {
		r.Timestamp = time.UnixMilli(cr.TimestampMs)
	}
	if len(cr.HeaderKeys) > 0 {
		r.Headers = make([]connect.Header, 0, len(cr.HeaderKeys))
	}
	for j, k := range cr.HeaderKeys {
		s, v, err := p.header.ToConnect(cr.Topic, cr.HeaderValues[j])
		if err != nil {
			return nil, &stageError{stageHeaderConverter, fmt.Errorf("header %q: %w", k, err)}
		}
		r.Headers = append(r.Headers, connect.Header{Key: k, Schema: s, Value: v})
	}
	res, err := p.chain.ApplySink(out) // sink transforms may read the Kafka offset (InsertField offset.field)
	if err != nil {
		return nil, &stageError{stageTransformation, err}
	}
	return res, nil
}

func nullable(b []byte, null bool) []byte {
	if null {
		return nil
	}
	if b == nil {
		return []byte{}
	}
	return b
}

// EncodeOffsetJSON encodes a source partition or offset map as the JSON
// that crosses the boundary and is stored (keys sorted, so equal maps give
// equal bytes).
func EncodeOffsetJSON(m map[string]any) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	return json.Marshal(m)
}

// DecodeOffsetJSON decodes a source partition or offset; integral numbers
// become int64, others float64.
func DecodeOffsetJSON(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return normalizeNumbers(m).(map[string]any), nil
}

func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeNumbers(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = normalizeNumbers(e)
		}
		return t
	}
	return v
}
