// Package configstore keeps connector and task configurations in the
// connect-configs topic, in Kafka Connect's record format, so that a
// Tributary worker and a Kafka Connect worker read each other's records.
//
// # Record format (version 1: Kafka Connect's KafkaConfigBackingStore)
//
// The topic has a single partition and is compacted. Keys are strings; values
// are JSON as written by JsonConverter with schemas.enable=false (compact, no
// schema envelope); a null value (tombstone) deletes.
//
//	connector-<name>        {"properties":{"k":"v",...}}     connector config
//	task-<name>-<n>         {"properties":{"k":"v",...}}     task n's config (pending)
//	commit-<name>           {"tasks":<count>}                 makes tasks 0..count-1 visible
//	target-state-<name>     {"state":"STARTED"}               running
//	                        {"state":"PAUSED","state.v2":"PAUSED"}
//	                        {"state":"PAUSED","state.v2":"STOPPED"}
//	restart-connector-<name> {"include-tasks":true,"only-failed":false}
//	                        a restart request (KIP-745): every worker restarts
//	                        its part of the connector; not kept in the state
//
// Readers prefer "state.v2" when present (Kafka 3.5+ writes it; older
// workers only know "state" and see a stopped connector as paused).
// Records Tributary does not use (session-key, restart-task-*,
// task-count-record-*) are skipped. Restart requests read by Open (older
// than the store) are not delivered to the listener: they were served.
//
// Task configs only become visible when their commit record is read, and only
// if every task 0..count-1 was written since the previous commit; otherwise
// the connector is marked inconsistent (its previous tasks stay in place), as
// in Kafka Connect. Property values that are JSON null are dropped. Map keys
// are written sorted (Kafka writes its map's iteration order; readers do not
// depend on it).
package configstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tributary-data/tributary/worker/kafkalog"
)

// DefaultTopic is Kafka Connect's usual config.storage.topic.
const DefaultTopic = "connect-configs"

// Sentinel errors.
var (
	// ErrNotSinglePartition is returned by Open when the topic has more than
	// one partition (ordering across records would be lost).
	ErrNotSinglePartition = errors.New("configstore: config topic must have exactly one partition")
	// ErrInvalid is returned for invalid arguments (empty name, unknown state).
	ErrInvalid = errors.New("configstore: invalid argument")
)

// TargetState is the state a connector's owner should drive it to.
type TargetState string

// Target states, spelled as in Kafka Connect.
const (
	Started TargetState = "STARTED"
	Paused  TargetState = "PAUSED"
	Stopped TargetState = "STOPPED"
)

func (s TargetState) valid() bool { return s == Started || s == Paused || s == Stopped }

// UpdateKind says what changed.
type UpdateKind int

// Update kinds.
const (
	// ConnectorConfigUpdated: a connector config was added or replaced.
	ConnectorConfigUpdated UpdateKind = iota + 1
	// ConnectorRemoved: a connector config was deleted.
	ConnectorRemoved
	// TasksCommitted: a complete set of task configs became visible.
	TasksCommitted
	// TargetStateChanged: an existing connector's target state changed.
	TargetStateChanged
	// RestartRequested: a restart of an existing connector was requested
	// (Update.IncludeTasks and Update.OnlyFailed say what to restart).
	RestartRequested
)

func (k UpdateKind) String() string {
	switch k {
	case ConnectorConfigUpdated:
		return "connector-config-updated"
	case ConnectorRemoved:
		return "connector-removed"
	case TasksCommitted:
		return "tasks-committed"
	case TargetStateChanged:
		return "target-state-changed"
	case RestartRequested:
		return "restart-requested"
	}
	return "unknown"
}

// Update tells the listener that a connector's part of the state changed.
type Update struct {
	Kind      UpdateKind
	Connector string
	Offset    int64 // offset of the record that caused it
	// IncludeTasks and OnlyFailed qualify a RestartRequested update.
	IncludeTasks, OnlyFailed bool
}

// State is a snapshot of the config topic (Kafka Connect's ClusterConfigState).
type State struct {
	// Offset is the offset of the last applied record; -1 if none.
	Offset int64
	// Connectors maps connector name to its config.
	Connectors map[string]map[string]string
	// TargetStates maps connector name to its target state. A connector
	// whose config was read without a target-state record is Started.
	TargetStates map[string]TargetState
	// Tasks maps connector name to its committed task configs, index = task id.
	// A connector with a commit of zero tasks maps to an empty, non-nil slice.
	Tasks map[string][]map[string]string
	// Inconsistent holds connectors whose last commit referred to task configs
	// that were not all written; their Tasks are those of the previous commit.
	Inconsistent map[string]bool
}

// Clone returns a deep copy.
func (s State) Clone() State {
	c := State{
		Offset:       s.Offset,
		Connectors:   make(map[string]map[string]string, len(s.Connectors)),
		TargetStates: maps.Clone(s.TargetStates),
		Tasks:        make(map[string][]map[string]string, len(s.Tasks)),
		Inconsistent: maps.Clone(s.Inconsistent),
	}
	if c.TargetStates == nil {
		c.TargetStates = map[string]TargetState{}
	}
	if c.Inconsistent == nil {
		c.Inconsistent = map[string]bool{}
	}
	for n, cfg := range s.Connectors {
		c.Connectors[n] = maps.Clone(cfg)
	}
	for n, ts := range s.Tasks {
		cp := make([]map[string]string, len(ts))
		for i, t := range ts {
			cp[i] = maps.Clone(t)
		}
		c.Tasks[n] = cp
	}
	return c
}

// Config configures a Store.
type Config struct {
	// Log configures the underlying log; Topic defaults to DefaultTopic and
	// Partitions is forced to 1.
	Log kafkalog.Config
	// Listener, if set, is called after each change once Open returned (not
	// for the records read by Open), from the log's consumer goroutine, in
	// log order, after the change is visible in Snapshot. It must not call
	// the Store's writing methods or ReadToEnd.
	Listener func(Update)
}

// Store is the config store. Methods are safe for concurrent use; writes are
// meant to come from one writer at a time (the leader), as in Kafka Connect.
type Store struct {
	log      *kafkalog.Log
	logger   *slog.Logger
	listener func(Update)
	started  atomic.Bool

	mu       sync.Mutex
	state    State
	deferred map[string]map[int]map[string]string // connector -> task id -> config, awaiting commit
}

// Open opens the store and returns once it read the topic to the end.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	lc := cfg.Log
	if lc.Topic == "" {
		lc.Topic = DefaultTopic
	}
	lc.Partitions = 1
	logger := lc.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		logger:   logger.With("store", "config"),
		listener: cfg.Listener,
		state: State{
			Offset:       -1,
			Connectors:   map[string]map[string]string{},
			TargetStates: map[string]TargetState{},
			Tasks:        map[string][]map[string]string{},
			Inconsistent: map[string]bool{},
		},
		deferred: map[string]map[int]map[string]string{},
	}
	l, err := kafkalog.Open(ctx, lc, s.apply)
	if err != nil {
		return nil, err
	}
	if l.Partitions() != 1 {
		_ = l.Close()
		return nil, fmt.Errorf("%w: topic %q has %d partitions", ErrNotSinglePartition, lc.Topic, l.Partitions())
	}
	s.log = l
	s.started.Store(true)
	return s, nil
}

// Close closes the underlying log; idempotent.
func (s *Store) Close() error { return s.log.Close() }

// Snapshot returns a deep copy of the current state.
func (s *Store) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone()
}

// ReadToEnd returns once every record written before the call is applied.
func (s *Store) ReadToEnd(ctx context.Context) error { return s.log.ReadToEnd(ctx) }

type propsValue struct {
	Properties map[string]*string `json:"properties"`
}

type commitValue struct {
	Tasks *int32 `json:"tasks"`
}

type restartValue struct {
	IncludeTasks bool `json:"include-tasks"`
	OnlyFailed   bool `json:"only-failed"`
}

type targetStateValue struct {
	State   string `json:"state"`
	StateV2 string `json:"state.v2,omitempty"`
}

// Keys of the config topic.
func connectorKey(name string) []byte   { return []byte("connector-" + name) }
func taskKey(name string, n int) []byte { return []byte("task-" + name + "-" + strconv.Itoa(n)) }
func commitKey(name string) []byte      { return []byte("commit-" + name) }
func targetStateKey(name string) []byte { return []byte("target-state-" + name) }

func marshalProps(cfg map[string]string) []byte {
	p := make(map[string]*string, len(cfg))
	for k, v := range cfg {
		p[k] = &v
	}
	return mustJSON(propsValue{Properties: p})
}

func marshalTargetState(st TargetState) []byte {
	if st == Started {
		return mustJSON(targetStateValue{State: string(Started)})
	}
	// Older workers only read "state" and know STARTED and PAUSED.
	return mustJSON(targetStateValue{State: string(Paused), StateV2: string(st)})
}

// mustJSON encodes like JsonConverter: compact, no HTML escaping.
func mustJSON(v any) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("configstore: encoding %T: %v", v, err)) // only our own plain types are encoded
	}
	return []byte(strings.TrimSuffix(b.String(), "\n"))
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty connector name", ErrInvalid)
	}
	return nil
}

// PutConnectorConfig writes a connector's config, preceded by its target
// state unless state is empty (Kafka Connect's creation with an initial
// state), and returns once the write was acknowledged and read back.
func (s *Store) PutConnectorConfig(ctx context.Context, name string, config map[string]string, state TargetState) error {
	if err := checkName(name); err != nil {
		return err
	}
	var recs []kafkalog.Record
	if state != "" {
		if !state.valid() {
			return fmt.Errorf("%w: target state %q", ErrInvalid, state)
		}
		recs = append(recs, kafkalog.Record{Key: targetStateKey(name), Value: marshalTargetState(state)})
	}
	recs = append(recs, kafkalog.Record{Key: connectorKey(name), Value: marshalProps(config)})
	return s.write(ctx, recs)
}

// DeleteConnector writes tombstones for the connector's config and target
// state (as Kafka Connect does; task records are left for compaction) and
// returns once they were read back.
func (s *Store) DeleteConnector(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.write(ctx, []kafkalog.Record{{Key: connectorKey(name)}, {Key: targetStateKey(name)}})
}

// PutTaskConfigs writes one record per task then the commit record, and
// returns once they were read back. Zero tasks is valid (commit of 0).
func (s *Store) PutTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error {
	if err := checkName(name); err != nil {
		return err
	}
	recs := make([]kafkalog.Record, 0, len(tasks)+1)
	for i, t := range tasks {
		recs = append(recs, kafkalog.Record{Key: taskKey(name, i), Value: marshalProps(t)})
	}
	n := int32(len(tasks))
	recs = append(recs, kafkalog.Record{Key: commitKey(name), Value: mustJSON(commitValue{Tasks: &n})})
	return s.write(ctx, recs)
}

// PutRestartRequest writes a restart request (Kafka Connect's
// restart-connector-<name> record) and returns once it was read back; every
// worker's listener gets it as a RestartRequested update.
func (s *Store) PutRestartRequest(ctx context.Context, name string, includeTasks, onlyFailed bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.write(ctx, []kafkalog.Record{{Key: []byte("restart-connector-" + name), Value: mustJSON(restartValue{IncludeTasks: includeTasks, OnlyFailed: onlyFailed})}})
}

// PutTargetState writes a connector's target state and returns once it was
// read back.
func (s *Store) PutTargetState(ctx context.Context, name string, state TargetState) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !state.valid() {
		return fmt.Errorf("%w: target state %q", ErrInvalid, state)
	}
	return s.write(ctx, []kafkalog.Record{{Key: targetStateKey(name), Value: marshalTargetState(state)}})
}

func (s *Store) write(ctx context.Context, recs []kafkalog.Record) error {
	if err := s.log.SendAll(ctx, recs); err != nil {
		return err
	}
	return s.log.ReadToEnd(ctx)
}

// apply folds one record into the state; it runs on the log's goroutine.
func (s *Store) apply(r kafkalog.Record) {
	key := string(r.Key)
	var ups []Update
	s.mu.Lock()
	switch {
	case strings.HasPrefix(key, "target-state-"):
		ups = s.applyTargetState(strings.TrimPrefix(key, "target-state-"), r)
	case strings.HasPrefix(key, "connector-"):
		ups = s.applyConnector(strings.TrimPrefix(key, "connector-"), r)
	case strings.HasPrefix(key, "restart-connector-"):
		ups = s.applyRestart(strings.TrimPrefix(key, "restart-connector-"), r)
	case strings.HasPrefix(key, "task-count-record-"):
		// Exactly-once source support; not used by Tributary.
	case strings.HasPrefix(key, "task-"):
		s.applyTask(strings.TrimPrefix(key, "task-"), r)
	case strings.HasPrefix(key, "commit-"):
		ups = s.applyCommit(strings.TrimPrefix(key, "commit-"), r)
	default:
		// session-key, restart requests and anything newer.
		s.logger.Debug("skipping config record", "key", key, "offset", r.Offset)
	}
	s.state.Offset = r.Offset
	s.mu.Unlock()
	if s.listener != nil && s.started.Load() {
		for _, u := range ups {
			u.Offset = r.Offset
			s.listener(u)
		}
	}
}

func (s *Store) applyRestart(name string, r kafkalog.Record) []Update {
	if r.Value == nil {
		return nil
	}
	var v restartValue
	if err := json.Unmarshal(r.Value, &v); err != nil {
		s.logger.Error("invalid restart request record", "connector", name, "offset", r.Offset, "err", err)
		return nil
	}
	if _, exists := s.state.Connectors[name]; !exists {
		return nil
	}
	return []Update{{Kind: RestartRequested, Connector: name, IncludeTasks: v.IncludeTasks, OnlyFailed: v.OnlyFailed}}
}

func (s *Store) applyTargetState(name string, r kafkalog.Record) []Update {
	if r.Value == nil {
		delete(s.state.TargetStates, name)
		return nil
	}
	var v targetStateValue
	if err := json.Unmarshal(r.Value, &v); err != nil {
		s.logger.Error("invalid target state record", "connector", name, "offset", r.Offset, "err", err)
		return nil
	}
	st := TargetState(v.State)
	if v.StateV2 != "" {
		st = TargetState(v.StateV2)
	}
	if !st.valid() {
		s.logger.Error("unknown target state", "connector", name, "state", st, "offset", r.Offset)
		return nil
	}
	prev, had := s.state.TargetStates[name]
	s.state.TargetStates[name] = st
	if _, exists := s.state.Connectors[name]; exists && (!had || prev != st) {
		return []Update{{Kind: TargetStateChanged, Connector: name}}
	}
	return nil
}

func decodeProps(raw []byte) (map[string]string, error) {
	var v propsValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v.Properties == nil {
		return nil, errors.New(`missing "properties"`)
	}
	m := make(map[string]string, len(v.Properties))
	for k, p := range v.Properties {
		if p != nil {
			m[k] = *p
		}
	}
	return m, nil
}

func (s *Store) applyConnector(name string, r kafkalog.Record) []Update {
	if r.Value == nil {
		delete(s.state.Connectors, name)
		delete(s.state.Tasks, name)
		delete(s.state.Inconsistent, name)
		delete(s.deferred, name)
		return []Update{{Kind: ConnectorRemoved, Connector: name}}
	}
	cfg, err := decodeProps(r.Value)
	if err != nil {
		s.logger.Error("invalid connector config record", "connector", name, "offset", r.Offset, "err", err)
		return nil
	}
	s.state.Connectors[name] = cfg
	if _, ok := s.state.TargetStates[name]; !ok {
		s.state.TargetStates[name] = Started
	}
	return []Update{{Kind: ConnectorConfigUpdated, Connector: name}}
}

// applyTask buffers a task config until its commit. The key suffix is
// "<connector>-<n>"; connector names may contain '-', the id follows the last.
func (s *Store) applyTask(rest string, r kafkalog.Record) {
	i := strings.LastIndexByte(rest, '-')
	var id int
	var err error
	if i > 0 {
		id, err = strconv.Atoi(rest[i+1:])
	}
	if i <= 0 || err != nil || id < 0 {
		s.logger.Error("invalid task config key", "key", "task-"+rest, "offset", r.Offset)
		return
	}
	name := rest[:i]
	if r.Value == nil {
		delete(s.deferred[name], id)
		return
	}
	cfg, err := decodeProps(r.Value)
	if err != nil {
		s.logger.Error("invalid task config record", "task", rest, "offset", r.Offset, "err", err)
		return
	}
	if s.deferred[name] == nil {
		s.deferred[name] = map[int]map[string]string{}
	}
	s.deferred[name][id] = cfg
}

func (s *Store) applyCommit(name string, r kafkalog.Record) []Update {
	if r.Value == nil {
		return nil
	}
	var v commitValue
	if err := json.Unmarshal(r.Value, &v); err != nil || v.Tasks == nil || *v.Tasks < 0 {
		s.logger.Error("invalid task commit record", "connector", name, "offset", r.Offset, "err", err)
		return nil
	}
	n := int(*v.Tasks)
	pending := s.deferred[name]
	delete(s.deferred, name) // cleared even when inconsistent, as in Kafka
	tasks := make([]map[string]string, n)
	for id := range n {
		cfg, ok := pending[id]
		if !ok {
			s.logger.Warn("task commit without all task configs; connector is inconsistent",
				"connector", name, "tasks", n, "offset", r.Offset)
			s.state.Inconsistent[name] = true
			return nil
		}
		tasks[id] = cfg
	}
	s.state.Tasks[name] = tasks
	delete(s.state.Inconsistent, name)
	return []Update{{Kind: TasksCommitted, Connector: name}}
}
