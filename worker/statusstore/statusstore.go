// Package statusstore keeps connector, task and active-topic statuses in the
// connect-status topic, in Kafka Connect's record format, so that the REST
// API of any worker (Tributary or Kafka Connect) reports the same statuses.
//
// # Record format (version 1: Kafka Connect's KafkaStatusBackingStore)
//
// Keys are strings; values are JSON as written by JsonConverter with
// schemas.enable=false (compact, fields in schema order); a null value
// (tombstone) deletes.
//
//	status-connector-<name>                 {"state":"RUNNING","trace":null,"worker_id":"host:port","generation":3}
//	status-task-<name>-<id>                 same as the connector status
//	status-topic-<topic>:connector-<name>   {"topic":{"name":"<topic>","connector":"<name>","task":0,"discoverTimestamp":1700000000000}}
//
// trace is null unless the connector or task failed. Readers ignore an
// UNASSIGNED or FAILED record from another worker with an older generation
// than the status they hold (stale): Kafka's putSafe refuses such writes on
// the writer's side, from what that writer has read so far, but a worker
// that was paused or cut off writes from a stale view, and two workers'
// writes can reach the topic out of order; the rule on the read side keeps
// every reader's view right whatever the order. Writing the state
// DESTROYED writes a tombstone, as Kafka does. A tombstone of a connector's
// status also forgets its task statuses (as in Kafka). Task ids follow the
// last '-' of the key, connector names may contain '-'; topic names cannot
// contain ':', so the topic ends at the first ':'.
package statusstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tributary-data/tributary/worker/kafkalog"
)

// DefaultTopic is Kafka Connect's usual status.storage.topic.
const DefaultTopic = "connect-status"

// DefaultPartitions is Kafka Connect's status.storage.partitions default.
const DefaultPartitions = 5

// ErrInvalid is returned for invalid arguments.
var ErrInvalid = errors.New("statusstore: invalid argument")

// State is a connector or task state, spelled as in Kafka Connect.
type State string

// States.
const (
	Unassigned State = "UNASSIGNED"
	Running    State = "RUNNING"
	Paused     State = "PAUSED"
	Failed     State = "FAILED"
	Restarting State = "RESTARTING"
	Stopped    State = "STOPPED"
	Destroyed  State = "DESTROYED" // written as a tombstone
)

func (s State) valid() bool {
	switch s {
	case Unassigned, Running, Paused, Failed, Restarting, Stopped, Destroyed:
		return true
	}
	return false
}

// Status is the status of a connector or a task.
type Status struct {
	State      State
	Trace      string // empty: null
	WorkerID   string // host:port of the worker's REST listener
	Generation int32  // the group generation the writer saw
}

// TaskStatus is a task's status with its id.
type TaskStatus struct {
	ID int
	Status
}

// TopicStatus records that a connector's task used a topic (KIP-558).
type TopicStatus struct {
	Topic             string
	Connector         string
	Task              int32
	DiscoverTimestamp int64 // Unix milliseconds
}

// Config configures a Store: Topic defaults to DefaultTopic and Partitions
// (used at creation) to DefaultPartitions.
type Config = kafkalog.Config

// Store is the status store. Methods are safe for concurrent use. Writes
// return once acknowledged; they become visible to the getters when the
// consumer reads them back (ReadToEnd waits for that).
type Store struct {
	log    *kafkalog.Log
	logger *slog.Logger

	mu         sync.Mutex
	connectors map[string]Status
	tasks      map[string]map[int]Status
	topics     map[string]map[string]TopicStatus // connector -> topic -> status
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
	s := &Store{
		logger:     logger.With("store", "status"),
		connectors: map[string]Status{},
		tasks:      map[string]map[int]Status{},
		topics:     map[string]map[string]TopicStatus{},
	}
	l, err := kafkalog.Open(ctx, cfg, s.apply)
	if err != nil {
		return nil, err
	}
	s.log = l
	return s, nil
}

// Close closes the underlying log; idempotent.
func (s *Store) Close() error { return s.log.Close() }

// ReadToEnd returns once every status written before the call is visible.
func (s *Store) ReadToEnd(ctx context.Context) error { return s.log.ReadToEnd(ctx) }

func connectorKey(name string) string    { return "status-connector-" + name }
func taskKey(name string, id int) string { return "status-task-" + name + "-" + strconv.Itoa(id) }
func topicKey(topic, connector string) string {
	return "status-topic-" + topic + ":connector-" + connector
}

type statusValue struct {
	State      string  `json:"state"`
	Trace      *string `json:"trace"`
	WorkerID   string  `json:"worker_id"`
	Generation int32   `json:"generation"`
}

type topicValue struct {
	Topic struct {
		Name              string `json:"name"`
		Connector         string `json:"connector"`
		Task              int32  `json:"task"`
		DiscoverTimestamp int64  `json:"discoverTimestamp"`
	} `json:"topic"`
}

// encode writes compact JSON without HTML escaping, like JsonConverter.
func encode(v any) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("statusstore: encoding %T: %v", v, err)) // only our own plain types are encoded
	}
	return []byte(strings.TrimSuffix(b.String(), "\n"))
}

func statusBytes(st Status) []byte {
	if st.State == Destroyed {
		return nil
	}
	v := statusValue{State: string(st.State), WorkerID: st.WorkerID, Generation: st.Generation}
	if st.Trace != "" {
		v.Trace = &st.Trace
	}
	return encode(v)
}

func checkStatus(name string, st Status) error {
	if name == "" {
		return fmt.Errorf("%w: empty connector name", ErrInvalid)
	}
	if !st.State.valid() {
		return fmt.Errorf("%w: state %q", ErrInvalid, st.State)
	}
	return nil
}

// canWriteSafely is Kafka's rule for putSafe: nothing known, same worker, or
// a generation at least as new.
func canWriteSafely(cur Status, known bool, st Status) bool {
	return !known || cur.WorkerID == st.WorkerID || cur.Generation <= st.Generation
}

// stale reports whether st, read after cur, is a late report of a worker
// that no longer runs the unit: UNASSIGNED or FAILED, from another worker,
// in an older generation (the read side of canWriteSafely).
func stale(cur, st Status) bool {
	return (st.State == Unassigned || st.State == Failed) && !canWriteSafely(cur, true, st)
}

// PutConnector writes a connector's status (DESTROYED: a tombstone).
func (s *Store) PutConnector(ctx context.Context, name string, st Status) error {
	if err := checkStatus(name, st); err != nil {
		return err
	}
	return s.log.Send(ctx, []byte(connectorKey(name)), statusBytes(st))
}

// PutConnectorSafe writes like PutConnector unless the status currently known
// was written by another worker in a newer generation (Kafka's putSafe); it
// reports whether it wrote.
func (s *Store) PutConnectorSafe(ctx context.Context, name string, st Status) (bool, error) {
	cur, known := s.Connector(name)
	if !canWriteSafely(cur, known, st) {
		return false, nil
	}
	return true, s.PutConnector(ctx, name, st)
}

// PutTask writes a task's status (DESTROYED: a tombstone).
func (s *Store) PutTask(ctx context.Context, name string, id int, st Status) error {
	if err := checkStatus(name, st); err != nil {
		return err
	}
	if id < 0 {
		return fmt.Errorf("%w: task id %d", ErrInvalid, id)
	}
	return s.log.Send(ctx, []byte(taskKey(name, id)), statusBytes(st))
}

// PutTaskSafe is PutConnectorSafe for a task.
func (s *Store) PutTaskSafe(ctx context.Context, name string, id int, st Status) (bool, error) {
	cur, known := s.Task(name, id)
	if !canWriteSafely(cur, known, st) {
		return false, nil
	}
	return true, s.PutTask(ctx, name, id, st)
}

// Connector returns a connector's status.
func (s *Store) Connector(name string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.connectors[name]
	return st, ok
}

// Task returns one task's status.
func (s *Store) Task(name string, id int) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tasks[name][id]
	return st, ok
}

// Tasks returns a connector's task statuses sorted by id.
func (s *Store) Tasks(name string) []TaskStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TaskStatus, 0, len(s.tasks[name]))
	for id, st := range s.tasks[name] {
		out = append(out, TaskStatus{ID: id, Status: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Connectors returns the names of connectors with a status, sorted.
func (s *Store) Connectors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.connectors))
	for n := range s.connectors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Delete writes tombstones for a connector's status and every task status
// known for it, and returns once they were acknowledged.
func (s *Store) Delete(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty connector name", ErrInvalid)
	}
	recs := []kafkalog.Record{{Key: []byte(connectorKey(name))}}
	for _, t := range s.Tasks(name) {
		recs = append(recs, kafkalog.Record{Key: []byte(taskKey(name, t.ID))})
	}
	return s.log.SendAll(ctx, recs)
}

// PutTopic records that a connector uses a topic.
func (s *Store) PutTopic(ctx context.Context, ts TopicStatus) error {
	if ts.Connector == "" || ts.Topic == "" || strings.ContainsRune(ts.Topic, ':') {
		return fmt.Errorf("%w: topic status %+v", ErrInvalid, ts)
	}
	var v topicValue
	v.Topic.Name, v.Topic.Connector, v.Topic.Task, v.Topic.DiscoverTimestamp = ts.Topic, ts.Connector, ts.Task, ts.DiscoverTimestamp
	return s.log.Send(ctx, []byte(topicKey(ts.Topic, ts.Connector)), encode(v))
}

// Topics returns the active topics of a connector sorted by topic name.
func (s *Store) Topics(name string) []TopicStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TopicStatus, 0, len(s.topics[name]))
	for _, ts := range s.topics[name] {
		out = append(out, ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// DeleteTopic writes the tombstone of one active topic of a connector.
func (s *Store) DeleteTopic(ctx context.Context, name, topic string) error {
	if name == "" || topic == "" {
		return fmt.Errorf("%w: empty connector or topic", ErrInvalid)
	}
	return s.log.Send(ctx, []byte(topicKey(topic, name)), nil)
}

// ResetTopics writes tombstones for every active topic known for a connector
// (PUT /connectors/{c}/topics/reset) and returns once they were acknowledged.
func (s *Store) ResetTopics(ctx context.Context, name string) error {
	var recs []kafkalog.Record
	for _, ts := range s.Topics(name) {
		recs = append(recs, kafkalog.Record{Key: []byte(topicKey(ts.Topic, name))})
	}
	return s.log.SendAll(ctx, recs)
}

func parseStatus(raw []byte) (Status, error) {
	var v statusValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return Status{}, err
	}
	st := Status{State: State(v.State), WorkerID: v.WorkerID, Generation: v.Generation}
	if v.Trace != nil {
		st.Trace = *v.Trace
	}
	if !st.State.valid() || st.State == Destroyed {
		return Status{}, fmt.Errorf("unknown state %q", v.State)
	}
	return st, nil
}

// apply folds one record into the cache; it runs on the log's goroutine.
func (s *Store) apply(r kafkalog.Record) {
	key := string(r.Key)
	bad := func(err error) {
		s.logger.Warn("discarding status record", "key", key, "partition", r.Partition, "offset", r.Offset, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(key, "status-connector-"):
		name := strings.TrimPrefix(key, "status-connector-")
		if name == "" {
			bad(errors.New("empty connector"))
			return
		}
		if r.Value == nil {
			delete(s.connectors, name)
			delete(s.tasks, name)
			return
		}
		st, err := parseStatus(r.Value)
		if err != nil {
			bad(err)
			return
		}
		if cur, ok := s.connectors[name]; ok && stale(cur, st) {
			s.logger.Debug("ignoring a stale status", "key", key, "state", st.State, "worker", st.WorkerID, "generation", st.Generation, "current_worker", cur.WorkerID, "current_generation", cur.Generation)
			return
		}
		s.connectors[name] = st
	case strings.HasPrefix(key, "status-task-"):
		rest := strings.TrimPrefix(key, "status-task-")
		i := strings.LastIndexByte(rest, '-')
		var id int
		var err error
		if i > 0 {
			id, err = strconv.Atoi(rest[i+1:])
		}
		if i <= 0 || err != nil || id < 0 {
			bad(errors.New("invalid task id"))
			return
		}
		name := rest[:i]
		if r.Value == nil {
			delete(s.tasks[name], id)
			if len(s.tasks[name]) == 0 {
				delete(s.tasks, name)
			}
			return
		}
		st, err := parseStatus(r.Value)
		if err != nil {
			bad(err)
			return
		}
		if cur, ok := s.tasks[name][id]; ok && stale(cur, st) {
			s.logger.Debug("ignoring a stale status", "key", key, "state", st.State, "worker", st.WorkerID, "generation", st.Generation, "current_worker", cur.WorkerID, "current_generation", cur.Generation)
			return
		}
		if s.tasks[name] == nil {
			s.tasks[name] = map[int]Status{}
		}
		s.tasks[name][id] = st
	case strings.HasPrefix(key, "status-topic-"):
		rest := strings.TrimPrefix(key, "status-topic-")
		topic, name, ok := strings.Cut(rest, ":connector-")
		if !ok || topic == "" || name == "" || strings.ContainsRune(topic, ':') {
			bad(errors.New("invalid topic status key"))
			return
		}
		if r.Value == nil {
			delete(s.topics[name], topic)
			if len(s.topics[name]) == 0 {
				delete(s.topics, name)
			}
			return
		}
		var v topicValue
		if err := json.Unmarshal(r.Value, &v); err != nil {
			bad(err)
			return
		}
		if s.topics[name] == nil {
			s.topics[name] = map[string]TopicStatus{}
		}
		// Kafka indexes by the key and keeps the value's fields as written.
		s.topics[name][topic] = TopicStatus{Topic: v.Topic.Name, Connector: v.Topic.Connector,
			Task: v.Topic.Task, DiscoverTimestamp: v.Topic.DiscoverTimestamp}
	default:
		bad(errors.New("unknown key prefix"))
	}
}
