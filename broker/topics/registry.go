// Package topics is the broker's registry of topics: their names, ids,
// partition logs and config overrides, persisted in the data directory.
//
// On-disk layout (format version 1), under the registry's directory:
//
//	<topic>/topic.json        {"version":1,"name":"t","id":"<32 hex>","partitions":3,
//	                           "internal":false,"configs":{"cleanup.policy":"compact"}}
//	<topic>/<partition>/      one commitlog directory per partition (see commitlog)
//
// topic.json is replaced atomically (commitlog.WriteFileAtomic: write
// topic.json.tmp, fsync, rename, fsync the directory). A topic directory without topic.json is the remains
// of an interrupted create or delete and is removed at start-up.
package topics

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/tributary-data/tributary/broker/commitlog"
)

// Errors of the registry; the broker maps them to Kafka error codes.
var (
	ErrTopicExists       = errors.New("topic already exists")
	ErrUnknownTopic      = errors.New("unknown topic")
	ErrInvalidTopic      = errors.New("invalid topic name")
	ErrInvalidPartitions = errors.New("invalid partition count")
)

// MaxPartitions caps a topic's partition count.
const MaxPartitions = 10000

const metaVersion = 1

// Topic is one topic. Name, ID and Internal never change; Partitions only
// grows (CreatePartitions) and is read through Partition/NumPartitions.
type Topic struct {
	Name     string
	ID       [16]byte
	Internal bool

	mu         sync.RWMutex
	partitions []*commitlog.Log
	configs    map[string]string
}

// NumPartitions returns the current partition count.
func (t *Topic) NumPartitions() int32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int32(len(t.partitions))
}

// Partition returns a partition's log, or nil when it does not exist.
func (t *Topic) Partition(p int32) *commitlog.Log {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
}

// Configs returns a copy of the topic's config overrides.
func (t *Topic) Configs() map[string]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]string, len(t.configs))
	for k, v := range t.configs {
		out[k] = v
	}
	return out
}

type topicMeta struct {
	Version    int               `json:"version"`
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Internal   bool              `json:"internal,omitempty"`
	Configs    map[string]string `json:"configs"`
}

// Options configure a Registry.
type Options struct {
	FS       commitlog.FS
	Logger   *slog.Logger
	Defaults Defaults
	// LogOptions is the template for every partition log; OnDurable is
	// replaced by a closure that calls OnDurable below.
	LogOptions commitlog.Options
	// OnDurable is called when a partition's high watermark advances.
	OnDurable func(t *Topic, partition int32, hw int64)
}

// Registry holds every topic. Lock order: Registry.mu before Topic.mu.
type Registry struct {
	dir  string
	opts Options

	mu     sync.RWMutex
	topics map[string]*Topic
	byID   map[[16]byte]*Topic
	closed bool
}

// Open loads every topic under dir, opening (and recovering) its partitions.
func Open(dir string, opts Options) (*Registry, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.FS == nil {
		opts.FS = commitlog.OSFS()
	}
	r := &Registry{dir: dir, opts: opts, topics: map[string]*Topic{}, byID: map[[16]byte]*Topic{}}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("topics: create %s: %w", dir, err)
	}
	entries, err := opts.FS.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("topics: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		tdir := filepath.Join(dir, e.Name())
		meta, err := r.readMeta(tdir)
		if errors.Is(err, os.ErrNotExist) {
			opts.Logger.Warn("removing topic directory without topic.json (interrupted create or delete)", "dir", tdir)
			if err := opts.FS.RemoveAll(tdir); err != nil {
				r.Close()
				return nil, fmt.Errorf("topics: remove %s: %w", tdir, err)
			}
			continue
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		t, err := r.openTopic(meta)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.topics[t.Name] = t
		r.byID[t.ID] = t
	}
	return r, nil
}

func (r *Registry) readMeta(tdir string) (topicMeta, error) {
	var m topicMeta
	buf, err := commitlog.ReadFile(r.opts.FS, filepath.Join(tdir, "topic.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(buf, &m); err != nil {
		return m, fmt.Errorf("topics: %s/topic.json is corrupt: %w", tdir, err)
	}
	if m.Version != metaVersion {
		return m, fmt.Errorf("topics: %s/topic.json has format version %d, this broker reads %d", tdir, m.Version, metaVersion)
	}
	return m, nil
}

func (r *Registry) writeMeta(t *Topic, partitions int32, configs map[string]string) error {
	m := topicMeta{Version: metaVersion, Name: t.Name, ID: hex.EncodeToString(t.ID[:]), Partitions: partitions, Internal: t.Internal, Configs: configs}
	if m.Configs == nil {
		m.Configs = map[string]string{}
	}
	buf, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(r.dir, t.Name, "topic.json")
	if err := commitlog.WriteFileAtomic(r.opts.FS, path, buf); err != nil {
		return fmt.Errorf("topics: write %s: %w", path, err)
	}
	return nil
}

func (r *Registry) openTopic(m topicMeta) (*Topic, error) {
	t := &Topic{Name: m.Name, Internal: m.Internal, configs: m.Configs}
	if t.configs == nil {
		t.configs = map[string]string{}
	}
	id, err := hex.DecodeString(m.ID)
	if err != nil || len(id) != 16 {
		return nil, fmt.Errorf("topics: topic %q has a bad id %q in topic.json", m.Name, m.ID)
	}
	copy(t.ID[:], id)
	for p := int32(0); p < m.Partitions; p++ {
		l, err := r.openLog(t, p)
		if err != nil {
			t.closeLogs()
			return nil, err
		}
		t.partitions = append(t.partitions, l)
	}
	return t, nil
}

func (r *Registry) openLog(t *Topic, p int32) (*commitlog.Log, error) {
	opts := r.opts.LogOptions
	opts.FS = r.opts.FS
	if opts.Logger == nil {
		opts.Logger = r.opts.Logger
	}
	opts.Logger = opts.Logger.With("topic", t.Name, "partition", p)
	if cb := r.opts.OnDurable; cb != nil {
		opts.OnDurable = func(hw int64) { cb(t, p, hw) }
	}
	dir := filepath.Join(r.dir, t.Name, strconv.Itoa(int(p)))
	l, err := commitlog.Open(dir, r.opts.Defaults.LogConfig(t.configs), opts)
	if err != nil {
		return nil, fmt.Errorf("topics: open %s/%d: %w", t.Name, p, err)
	}
	return l, nil
}

func (t *Topic) closeLogs() error {
	var first error
	for _, l := range t.partitions {
		if err := l.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ValidateName checks a topic name the way Kafka does.
func ValidateName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%w: %q is longer than 249 characters", ErrInvalidTopic, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: use only ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name)
		}
	}
	return nil
}

// Get returns a topic by name.
func (r *Registry) Get(name string) (*Topic, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.topics[name]
	return t, ok
}

// GetByID returns a topic by id.
func (r *Registry) GetByID(id [16]byte) (*Topic, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.byID[id]
	return t, ok
}

// List returns every topic sorted by name.
func (r *Registry) List() []*Topic {
	r.mu.RLock()
	out := make([]*Topic, 0, len(r.topics))
	for _, t := range r.topics {
		out = append(out, t)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Create makes a topic with validated overrides. With validateOnly nothing
// is written. The topic is durable (topic.json synced) when Create returns.
func (r *Registry) Create(name string, partitions int32, overrides map[string]string, internal, validateOnly bool) (*Topic, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("%w: %d (must be 1..%d)", ErrInvalidPartitions, partitions, MaxPartitions)
	}
	cfg, err := ValidateOverrides(overrides)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, commitlog.ErrClosed
	}
	if _, ok := r.topics[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	t := &Topic{Name: name, Internal: internal, configs: cfg}
	if validateOnly {
		return t, nil
	}
	if _, err := rand.Read(t.ID[:]); err != nil {
		return nil, err
	}
	tdir := filepath.Join(r.dir, name)
	if err := r.opts.FS.MkdirAll(tdir, 0o755); err != nil {
		return nil, fmt.Errorf("topics: create %s: %w", tdir, err)
	}
	for p := int32(0); p < partitions; p++ {
		l, err := r.openLog(t, p)
		if err != nil {
			t.closeLogs()
			r.opts.FS.RemoveAll(tdir)
			return nil, err
		}
		t.partitions = append(t.partitions, l)
	}
	if err := r.writeMeta(t, partitions, cfg); err != nil {
		t.closeLogs()
		r.opts.FS.RemoveAll(tdir)
		return nil, err
	}
	if err := r.opts.FS.SyncDir(r.dir); err != nil {
		r.opts.Logger.Warn("sync of topics directory failed", "err", err)
	}
	r.topics[name] = t
	r.byID[t.ID] = t
	return t, nil
}

// Delete removes a topic and its data. topic.json goes first, so a crash
// midway leaves a directory that the next start-up removes.
func (r *Registry) Delete(name string) error {
	r.mu.Lock()
	t, ok := r.topics[name]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	delete(r.topics, name)
	delete(r.byID, t.ID)
	r.mu.Unlock()

	tdir := filepath.Join(r.dir, name)
	if err := r.opts.FS.Remove(filepath.Join(tdir, "topic.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("topics: delete %q: %w", name, err)
	}
	r.opts.FS.SyncDir(tdir)
	t.mu.Lock()
	err := t.closeLogs()
	t.mu.Unlock()
	if err != nil {
		r.opts.Logger.Warn("closing a deleted topic's partition failed", "topic", name, "err", err)
	}
	if err := r.opts.FS.RemoveAll(tdir); err != nil {
		return fmt.Errorf("topics: delete %q: %w", name, err)
	}
	return nil
}

// AddPartitions grows a topic to total partitions.
func (r *Registry) AddPartitions(name string, total int32, validateOnly bool) error {
	r.mu.RLock()
	t, ok := r.topics[name]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := int32(len(t.partitions))
	if total <= cur {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger", ErrInvalidPartitions, name, cur, total)
	}
	if total > MaxPartitions {
		return fmt.Errorf("%w: %d (must be at most %d)", ErrInvalidPartitions, total, MaxPartitions)
	}
	if validateOnly {
		return nil
	}
	var added []*commitlog.Log
	for p := cur; p < total; p++ {
		l, err := r.openLog(t, p)
		if err != nil {
			for _, l := range added {
				l.Delete()
			}
			return err
		}
		added = append(added, l)
	}
	if err := r.writeMeta(t, total, t.configs); err != nil {
		for _, l := range added {
			l.Delete()
		}
		return err
	}
	t.partitions = append(t.partitions, added...)
	return nil
}

// SetConfigs replaces a topic's config overrides (already validated by
// ValidateOverrides), persists them and applies them to every partition.
func (r *Registry) SetConfigs(name string, overrides map[string]string) error {
	r.mu.RLock()
	t, ok := r.topics[name]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := r.writeMeta(t, int32(len(t.partitions)), overrides); err != nil {
		return err
	}
	t.configs = overrides
	cfg := r.opts.Defaults.LogConfig(overrides)
	var first error
	for _, l := range t.partitions {
		if err := l.SetConfig(cfg); err != nil && first == nil {
			first = fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
	}
	return first
}

// Defaults returns the broker-level topic config defaults.
func (r *Registry) Defaults() Defaults { return r.opts.Defaults }

// Close closes every partition log. Idempotent.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ts := make([]*Topic, 0, len(r.topics))
	for _, t := range r.topics {
		ts = append(ts, t)
	}
	r.mu.Unlock()
	var first error
	for _, t := range ts {
		t.mu.Lock()
		if err := t.closeLogs(); err != nil && first == nil {
			first = err
		}
		t.mu.Unlock()
	}
	return first
}
