// Package offsetstore keeps source connectors' offsets in the connect-offsets
// topic, in Kafka Connect's record format, so that offsets written by Kafka
// Connect are resumed by Tributary and the other way round.
//
// # Record format (version 1: Kafka Connect's KafkaOffsetBackingStore)
//
// Key and value are JSON as written by JsonConverter with
// schemas.enable=false (compact, no schema envelope, no HTML escaping):
//
//	key:   ["<connector name>",{<source partition map>}]
//	value: {<source offset map>}     or null (tombstone: offset reset)
//
// for example key ["file-src",{"filename":"/tmp/a.txt"}] and value
// {"position":1024}. Records are partitioned by the murmur2 hash of the key
// bytes (Kafka's default), so identical key bytes land on the partition Kafka
// Connect would choose.
//
// Difference from Kafka Connect: Kafka writes a map's keys in the map's
// iteration order (usually the insertion order the connector used); Tributary
// writes them sorted. For single-key partition maps (the common case) the
// bytes are identical. For multi-key maps written by Kafka in another order,
// reading still works: stored keys are re-encoded canonically when read, so
// both spellings designate the same source partition here, and the last one
// read wins.
//
// Numbers: integral JSON numbers are read back as int64, others as float64.
// Floats are written the Go way (1.5, 2, 1e+21); Jackson writes 2.0 for a
// double 2, so a float offset written by Kafka and rewritten by Tributary may
// change spelling, not value.
//
// # Generations (fencing zombie writes)
//
// Offsets written by a task carry the worker's group generation in the
// header "tributary.generation" (decimal ASCII); Kafka Connect ignores the
// header. A reader ignores a record of a source partition whose generation
// is lower than that of the newest accepted tagged record of that partition
// and whose create timestamp is older too: that is the late write of a
// worker that lost its membership (paused, cut off) while the partition's
// new owner moved on, and it must not move the offset backwards. A record
// with a lower generation but a newer timestamp is accepted (the group was
// recreated and its generations restarted). Records without the header
// (Kafka Connect's, and offsets changed through the REST API) are always
// accepted. Tributary's workers also stop writing as soon as their
// membership lease runs out, so such late writes are the ones already in
// flight when the process was paused.
package offsetstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/worker/kafkalog"
)

// DefaultTopic is Kafka Connect's usual offset.storage.topic.
const DefaultTopic = "connect-offsets"

// DefaultPartitions is Kafka Connect's offset.storage.partitions default.
const DefaultPartitions = 25

// ErrInvalid is returned for arguments that cannot be encoded.
var ErrInvalid = errors.New("offsetstore: invalid argument")

// PartitionOffset is one source partition and its offset. A nil Offset in
// Put writes a tombstone.
type PartitionOffset struct {
	Partition map[string]any
	Offset    map[string]any
}

// Config configures a Store: Topic defaults to DefaultTopic and Partitions
// (used at creation) to DefaultPartitions.
type Config = kafkalog.Config

// Store is the offset store. Methods are safe for concurrent use.
type Store struct {
	log    *kafkalog.Log
	logger *slog.Logger

	mu   sync.Mutex
	data map[string]map[string]entry // connector -> canonical partition JSON -> entry
}

type entry struct {
	rawKey    []byte // key bytes as read, reused by writes to the same partition
	partition map[string]any
	offset    map[string]any
	fence     fence // of the newest accepted tagged record
}

// fence is the generation and create time of a tagged record.
type fence struct {
	tagged     bool
	generation int64
	created    time.Time
}

// GenerationHeader is the header carrying the writer's group generation.
const GenerationHeader = "tributary.generation"

func fenceOf(r kafkalog.Record) fence {
	for _, h := range r.Headers {
		if h.Key == GenerationHeader {
			if g, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				return fence{tagged: true, generation: g, created: r.Timestamp}
			}
		}
	}
	return fence{}
}

// stale reports whether a record with fence f is the late write of an
// older owner, given the newest accepted one.
func (f fence) stale(newest fence) bool {
	return f.tagged && newest.tagged && f.generation < newest.generation && f.created.Before(newest.created)
}

// Open opens the store and returns once it read the topic to the end.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{logger: logger.With("store", "offset"), data: map[string]map[string]entry{}}
	l, err := kafkalog.Open(ctx, cfg, s.apply)
	if err != nil {
		return nil, err
	}
	s.log = l
	return s, nil
}

// Close closes the underlying log; idempotent.
func (s *Store) Close() error { return s.log.Close() }

// ReadToEnd returns once every offset written before the call is visible to
// Get. Put does not wait for its own records to be read back.
func (s *Store) ReadToEnd(ctx context.Context) error { return s.log.ReadToEnd(ctx) }

// Key returns the exact key bytes of a connector's source partition.
func Key(connector string, partition map[string]any) ([]byte, error) {
	if partition == nil {
		partition = map[string]any{}
	}
	b, err := encode([]any{connector, partition})
	if err != nil {
		return nil, fmt.Errorf("%w: source partition of %q: %v", ErrInvalid, connector, err)
	}
	return b, nil
}

// encode writes compact JSON with sorted map keys and no HTML escaping.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// decode reads JSON keeping integers as int64.
func decode(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// apply folds one record into the cache; it runs on the log's goroutine.
func (s *Store) apply(r kafkalog.Record) {
	k, err := decode(r.Key)
	arr, ok := k.([]any)
	if err != nil || !ok || len(arr) != 2 {
		s.logger.Warn("skipping offset record with invalid key", "key", string(r.Key), "partition", r.Partition, "offset", r.Offset)
		return
	}
	conn, ok1 := arr[0].(string)
	part, ok2 := arr[1].(map[string]any)
	if !ok1 || (!ok2 && arr[1] != nil) {
		s.logger.Warn("skipping offset record with invalid key", "key", string(r.Key), "partition", r.Partition, "offset", r.Offset)
		return
	}
	if part == nil {
		part = map[string]any{}
	}
	canon, err := encode(part)
	if err != nil {
		return // cannot happen for decoded JSON
	}
	var off map[string]any
	if r.Value != nil {
		v, err := decode(r.Value)
		m, ok := v.(map[string]any)
		if err != nil || (!ok && v != nil) {
			s.logger.Warn("skipping offset record with invalid value", "key", string(r.Key), "partition", r.Partition, "offset", r.Offset)
			return
		}
		off = m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := fenceOf(r)
	prev, had := s.data[conn][string(canon)]
	if had && f.stale(prev.fence) {
		s.logger.Warn("ignoring a stale offset write of an older generation (a worker that lost its membership)",
			"connector", conn, "partition", string(canon), "generation", f.generation, "newest_generation", prev.fence.generation)
		return
	}
	if !f.tagged && had {
		f = prev.fence
	}
	if off == nil {
		delete(s.data[conn], string(canon))
		if len(s.data[conn]) == 0 {
			delete(s.data, conn)
		}
		return
	}
	if s.data[conn] == nil {
		s.data[conn] = map[string]entry{}
	}
	s.data[conn][string(canon)] = entry{rawKey: r.Key, partition: part, offset: off, fence: f}
}

// Get returns every source partition of the connector with its offset,
// sorted by the partition's canonical JSON. The maps are copies. It reads
// the local cache: call ReadToEnd first to see every write acknowledged
// before (Kafka Connect's offset reader does the same).
func (s *Store) Get(connector string) []PartitionOffset {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.data[connector]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]PartitionOffset, 0, len(keys))
	for _, k := range keys {
		e := m[k]
		out = append(out, PartitionOffset{Partition: deepCopy(e.partition), Offset: deepCopy(e.offset)})
	}
	return out
}

// Offset returns the offset of one source partition.
func (s *Store) Offset(connector string, partition map[string]any) (map[string]any, bool) {
	if partition == nil {
		partition = map[string]any{}
	}
	canon, err := encode(normalize(partition))
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[connector][string(canon)]
	if !ok {
		return nil, false
	}
	return deepCopy(e.offset), true
}

// normalize round-trips a map through JSON so that Go ints, int32, uint,
// float64 holding integers etc. compare like values read from the topic.
func normalize(m map[string]any) map[string]any {
	b, err := encode(m)
	if err != nil {
		return m
	}
	v, err := decode(b)
	if out, ok := v.(map[string]any); ok && err == nil {
		return out
	}
	return m
}

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := encode(m)
	if err != nil {
		return m
	}
	v, _ := decode(b)
	out, _ := v.(map[string]any)
	return out
}

// Put writes the offsets of a connector as one batch and returns once the
// broker acknowledged all of them (acks=all). An entry with a nil Offset
// writes a tombstone. A source partition already read from the topic is
// written with the key bytes it was read with (a Kafka-written key whose map
// order differs from ours keeps its partition and is compacted away). Values must be JSON-encodable; NaN and infinities are
// rejected.
func (s *Store) Put(ctx context.Context, connector string, offsets []PartitionOffset) error {
	return s.PutGeneration(ctx, connector, -1, offsets)
}

// PutGeneration is Put for a task's offsets: records carry the writer's
// group generation (see Generations); a negative generation writes none.
func (s *Store) PutGeneration(ctx context.Context, connector string, generation int32, offsets []PartitionOffset) error {
	if connector == "" {
		return fmt.Errorf("%w: empty connector name", ErrInvalid)
	}
	recs := make([]kafkalog.Record, 0, len(offsets))
	now := time.Now()
	gen := []kgo.RecordHeader{{Key: GenerationHeader, Value: strconv.AppendInt(nil, int64(generation), 10)}}
	for _, po := range offsets {
		key, err := s.keyFor(connector, po.Partition)
		if err != nil {
			return err
		}
		var val []byte
		if po.Offset != nil {
			if err := checkFinite(po.Offset); err != nil {
				return fmt.Errorf("%w: offset of %s: %v", ErrInvalid, key, err)
			}
			if val, err = encode(po.Offset); err != nil {
				return fmt.Errorf("%w: offset of %s: %v", ErrInvalid, key, err)
			}
		}
		rec := kafkalog.Record{Key: key, Value: val, Timestamp: now}
		if generation >= 0 {
			rec.Headers = gen
		}
		recs = append(recs, rec)
	}
	return s.log.SendAll(ctx, recs)
}

// keyFor returns the key bytes last read for the source partition, or the
// canonical encoding.
func (s *Store) keyFor(connector string, partition map[string]any) ([]byte, error) {
	key, err := Key(connector, partition)
	if err != nil {
		return nil, err
	}
	if partition == nil {
		partition = map[string]any{}
	}
	canon, err := encode(normalize(partition))
	if err != nil {
		return key, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.data[connector][string(canon)]; ok {
		return e.rawKey, nil
	}
	return key, nil
}

func checkFinite(v any) error {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("non-finite number %v", x)
		}
	case float32:
		return checkFinite(float64(x))
	case map[string]any:
		for _, e := range x {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reset writes tombstones for the given source partitions of a connector
// (Kafka Connect's offset reset) and returns once they were acknowledged.
// With no partitions it resets every partition currently known for the
// connector.
func (s *Store) Reset(ctx context.Context, connector string, partitions []map[string]any) error {
	if len(partitions) == 0 {
		for _, po := range s.Get(connector) {
			partitions = append(partitions, po.Partition)
		}
	}
	pos := make([]PartitionOffset, len(partitions))
	for i, p := range partitions {
		pos[i] = PartitionOffset{Partition: p}
	}
	return s.Put(ctx, connector, pos)
}

// Connectors returns the names of connectors with at least one offset, sorted.
func (s *Store) Connectors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.data))
	for c := range s.data {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
