// Package herder is the worker's brain: it keeps the connector configs,
// source offsets and statuses in the internal topics (worker/configstore,
// offsetstore, statusstore), runs what the configs ask for through the
// engine (worker/engine), and implements the REST API's operations
// (worker/rest.Herder).
//
// Every worker of a group.id reads and writes the same topics and is a
// member of the group's worker cluster (worker/cluster, membership.go): it
// runs the connectors and tasks the leader assigned to it. Config writes
// are made by the leader only; other workers redirect them (leader.go).
//
// Ownership: Open starts the cluster member (its goroutines are owned by
// cluster.Member) and two goroutines, the reconciler, which applies every
// config change to the engine, and the restarter, which serves restart
// requests read from the config topic; Close leaves the cluster (which stops all
// this worker's work), then stops the reconciler, the engine, the stores
// and the producer, in that order.
package herder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/worker/cluster"
	"github.com/tributary-data/tributary/worker/configstore"
	"github.com/tributary-data/tributary/worker/engine"
	"github.com/tributary-data/tributary/worker/kafkalog"
	"github.com/tributary-data/tributary/worker/offsetstore"
	"github.com/tributary-data/tributary/worker/rest"
	"github.com/tributary-data/tributary/worker/statusstore"
	"github.com/tributary-data/tributary/worker/taskrun"
)

// Config configures a herder. Keys are Kafka Connect's worker keys where
// it has them (bootstrap.servers, group.id, config.storage.topic, ...).
type Config struct {
	Brokers             []string
	GroupID             string
	WorkerID            string // this worker's REST host:port, as statuses show it
	PluginPath          string
	ConfigTopic         string
	OffsetTopic         string
	StatusTopic         string
	ReplicationFactor   int16
	OffsetFlushInterval time.Duration
	Version, Commit     string
	Logger              *slog.Logger
	Registerer          prometheus.Registerer
	ClientOptions       []kgo.Opt // TLS, SASL ... for every Kafka client of the worker
	// ConverterDefaults are worker-wide converter keys (key.converter ...)
	// that connectors inherit unless they set their own.
	ConverterDefaults map[string]string
	// ProducerCompression is producer.compression.type, the codec of what
	// source tasks and dead letter queues produce: none, gzip, snappy,
	// lz4 or zstd; "" means snappy.
	ProducerCompression string
	// Launch starts connector and task plugins (default plugins.Launch:
	// a process each). Benchmarks set plugins.InProcessLauncher.
	Launch plugins.Launcher
	// Cluster holds the membership timings.
	Cluster ClusterConfig
}

// Herder runs connectors and serves the REST operations.
type Herder struct {
	cfg      Config
	log      *slog.Logger
	registry *plugins.Registry
	configs  *configstore.Store
	offsets  *offsetstore.Store
	status   *statusstore.Store
	producer *kgo.Client
	admin    *kadm.Client
	engine   *engine.Engine
	// validators runs Validate in one kept plugin process per binary.
	validators *plugins.Validators
	clusterID  string
	ready      atomic.Bool
	// closing is set by Close; statusDown once a status write timed out
	// during it (see statusWrite).
	closing, statusDown atomic.Bool

	changed chan struct{}   // a config change is waiting to be applied
	writing chan struct{}   // a one-slot lock: see lockConfigs
	running chan struct{}   // a one-slot lock: see lockEngine
	life    context.Context // cancelled by Close: ends the reconciler and background restarts
	stop    context.CancelFunc
	wg      sync.WaitGroup // the reconciler and background restarts

	mu     sync.Mutex // guards closed, unresolved, stopped and applied
	closed bool
	// stopped are the connectors the last completed reconcile found
	// STOPPED: their tasks have stopped and stored their last offsets, so
	// their offsets may be changed without a task overwriting them.
	// applied is the config topic offset that reconcile had read.
	stopped map[string]bool
	applied int64
	// member is this worker's cluster membership; owned is what the
	// leader assigned to it (nil before the first assignment).
	member *cluster.Member
	owned  *cluster.Work
	// unresolved are the connectors whose ${provider:...} placeholders
	// could not be resolved at the last reconcile: they are FAILED and not
	// given to the engine; a restart reconciles again.
	unresolved map[string]bool
	// restarts are restart requests read from the config topic, waiting
	// for the restarter goroutine (signalled through restartReq).
	restarts   []configstore.Update
	restartReq chan struct{}
	// http reaches other workers (task configs to the leader).
	http *http.Client
}

// Open discovers the plugins, opens the internal topics (creating them
// compacted when missing), and starts running the configured connectors.
func Open(ctx context.Context, cfg Config) (h *Herder, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OffsetFlushInterval <= 0 {
		cfg.OffsetFlushInterval = time.Second
	}
	h = &Herder{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}, 1), writing: make(chan struct{}, 1), running: make(chan struct{}, 1),
		restartReq: make(chan struct{}, 1), http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		validators: plugins.NewValidators(cfg.Logger, time.Minute)}
	built := h // the error returns below set h to nil
	defer func() {
		if err != nil {
			built.closeResources()
		}
	}()
	bins, derr := plugins.Discover(ctx, cfg.PluginPath, cfg.Logger)
	if derr != nil {
		if len(bins) == 0 {
			return nil, fmt.Errorf("plugin.path %s: %w", cfg.PluginPath, derr)
		}
		h.log.Error("some plugins could not be loaded", "err", derr)
	}
	h.registry = plugins.NewRegistry(bins)
	for _, c := range h.registry.Classes() {
		h.log.Info("connector plugin", "class", c.Class, "aliases", c.Aliases, "version", c.Version)
	}

	codec, err := producerCodec(cfg.ProducerCompression)
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID("tributary-worker-" + cfg.GroupID)}, cfg.ClientOptions...)
	h.producer, err = kgo.NewClient(append(opts, kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()),
		// Buffered records are bounded in count and in bytes: CDC records
		// with embedded schemas are kilobytes each, and 100,000 of them
		// would hold hundreds of MB in the worker.
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000), kgo.MaxBufferedBytes(32<<20), kgo.ProducerLinger(0),
		// producer.compression.type, snappy by default (Kafka's producer
		// default is none): records of one connector repeat each other
		// (JsonConverter embeds the same schema in every record), so a
		// batch shrinks several times for a cheap codec, and every byte
		// not sent, fsynced, stored and fetched saves more CPU than the
		// codec costs (pipelinebench: ~6 us of CPU per 2.7 KB record).
		kgo.ProducerBatchCompression(codec))...)
	if err != nil {
		return nil, err
	}
	h.admin = kadm.NewClient(h.producer)
	md, err := h.admin.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("reaching Kafka at %v: %w", cfg.Brokers, err)
	}
	h.clusterID = md.Cluster

	logCfg := func(topic string, partitions int32) kafkalog.Config {
		return kafkalog.Config{Brokers: cfg.Brokers, Topic: topic, Partitions: partitions, ReplicationFactor: cfg.ReplicationFactor,
			ClientID: "tributary-worker-" + cfg.GroupID, Logger: cfg.Logger, ExtraClientOptions: cfg.ClientOptions}
	}
	if h.offsets, err = offsetstore.Open(ctx, logCfg(cfg.OffsetTopic, 25)); err != nil {
		return nil, fmt.Errorf("offset topic %s: %w", cfg.OffsetTopic, err)
	}
	if h.status, err = statusstore.Open(ctx, logCfg(cfg.StatusTopic, 5)); err != nil {
		return nil, fmt.Errorf("status topic %s: %w", cfg.StatusTopic, err)
	}
	if h.configs, err = configstore.Open(ctx, configstore.Config{Log: logCfg(cfg.ConfigTopic, 1), Listener: func(u configstore.Update) {
		if u.Kind == configstore.RestartRequested {
			h.onRestartRequest(u)
			return
		}
		h.signal()
	}}); err != nil {
		return nil, fmt.Errorf("config topic %s: %w", cfg.ConfigTopic, err)
	}
	var metrics *taskrun.Metrics
	if cfg.Registerer != nil {
		metrics = taskrun.NewMetrics(cfg.Registerer)
	}
	h.engine = engine.New(engine.Options{
		Brokers: cfg.Brokers, Plugins: h.registry, Offsets: offsetsAdapter{h}, TaskConfigs: taskConfigsAdapter{h}, Live: h.live,
		States: statesAdapter{h}, Producer: h.producer, ConsumerOpts: cfg.ClientOptions, Launch: cfg.Launch,
		OffsetFlushInterval: cfg.OffsetFlushInterval, Logger: cfg.Logger, Metrics: metrics,
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.engine.TaskGauges()); err != nil {
			return nil, fmt.Errorf("registering task gauges: %w", err)
		}
	}
	h.life, h.stop = context.WithCancel(context.Background())
	if h.member, err = cluster.Join(h.life, cfg.Cluster.member(cfg), memberHandler{h}); err != nil {
		h.stop()
		return nil, fmt.Errorf("joining the worker cluster %q: %w", cfg.GroupID, err)
	}
	h.wg.Add(2)
	go h.reconcile(h.life)
	go h.restarter(h.life)
	h.signal()
	h.ready.Store(true)
	return h, nil
}

// restartUnresolved handles a restart of a connector whose secrets could
// not be resolved: the engine does not run it, so the restart is a new
// reconcile, which resolves them again (and starts it or reports FAILED).
func (h *Herder) restartUnresolved(name string) bool {
	h.mu.Lock()
	failed := h.unresolved[name]
	h.mu.Unlock()
	if failed {
		h.signal()
	}
	return failed
}

// waitStopped waits until a reconcile that read the config topic up to
// offset (at least) has stopped the connector's tasks here and every
// other worker reported its tasks stopped (PUT .../stop only records the
// target state), for at most 30 s.
func (h *Herder) waitStopped(ctx context.Context, name string, offset int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		h.mu.Lock()
		done := h.applied >= offset && h.stopped[name]
		h.mu.Unlock()
		if done && h.tasksStopped(ctx, name) {
			return nil
		}
		select {
		case <-ctx.Done():
			return rest.Conflict("Connector %s is still stopping its tasks; try again shortly", name)
		case <-tick.C:
		}
	}
}

// tasksStopped reports whether every task of the connector, wherever it
// ran, has reported that it stopped (UNASSIGNED, FAILED, or no status):
// the workers write UNASSIGNED once a stopped task stored its offsets.
func (h *Herder) tasksStopped(ctx context.Context, name string) bool {
	if err := h.status.ReadToEnd(ctx); err != nil {
		return false
	}
	for _, t := range h.status.Tasks(name) {
		switch t.State {
		case statusstore.Running, statusstore.Restarting:
			return false // (the engine stops a PAUSED connector's tasks)
		}
	}
	return true
}

// lockConfigs serializes this worker's connector config changes (check,
// validate, store), so that concurrent requests cannot, say, both create
// the same connector. The returned func unlocks.
func (h *Herder) lockConfigs(ctx context.Context) (func(), error) {
	select {
	case h.writing <- struct{}{}:
		return func() { <-h.writing }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lockEngine serializes the herder's calls into the engine (Apply and the
// restarts). The engine stops what it replaces outside its own lock, so a
// concurrent Apply could start a task again while its previous instance is
// still stopping and storing its offsets: the new instance would then
// start from older offsets and deliver records twice. The returned func
// unlocks.
func (h *Herder) lockEngine(ctx context.Context) (func(), error) {
	select {
	case h.running <- struct{}{}:
		return func() { <-h.running }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *Herder) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// reconcile applies the config topic's state to the engine after each
// change, and asks for a rebalance when connectors or task counts changed
// (the leader assigns the new work).
func (h *Herder) reconcile(ctx context.Context) {
	defer h.wg.Done()
	var last cluster.Snapshot
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.changed:
		}
		if work := workOf(h.configs.Snapshot()); !maps.Equal(work.Connectors, last.Connectors) {
			last = work
			h.member.Rejoin()
		}
		h.apply(ctx)
	}
}

// apply runs this worker's share of the config topic's state: what the
// cluster assigned to it (nothing before its first assignment).
func (h *Herder) apply(ctx context.Context) {
	snap := h.configs.Snapshot()
	h.mu.Lock()
	owned := h.owned
	h.mu.Unlock()
	desired := engine.Desired{}
	unresolved := map[string]bool{}
	var failures []func() // reported after the engine stopped what ran before
	for name, cfg := range snap.Connectors {
		share := ownedShare(owned, name)
		if share == nil {
			continue
		}
		resolved, err := resolveSecrets(cfg)
		var tasks []map[string]string
		for i := 0; err == nil && i < len(snap.Tasks[name]); i++ {
			var tc map[string]string
			if tc, err = resolveSecrets(snap.Tasks[name][i]); err != nil {
				err = fmt.Errorf("task %d: %w", i, err)
			}
			tasks = append(tasks, tc)
		}
		if err != nil && snap.TargetStates[name] == configstore.Stopped {
			// A stopped connector is not started: nothing to resolve.
			resolved, tasks, err = cfg, nil, nil
		}
		if err != nil {
			// Kafka Connect fails the connector and its tasks when
			// a config provider cannot resolve their configs.
			unresolved[name] = true
			failures = append(failures, func() {
				if share.Connector {
					h.reportConnector(name, engine.StateFailed, err.Error())
				}
				for i := range snap.Tasks[name] {
					if share.Tasks[i] {
						h.reportTask(name, i, engine.StateFailed, err.Error())
					}
				}
			})
			continue
		}
		merged := maps.Clone(h.cfg.ConverterDefaults)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, resolved)
		desired[name] = engine.Connector{Config: merged, TargetState: string(snap.TargetStates[name]), Tasks: tasks, Owned: share}
	}
	h.mu.Lock()
	h.unresolved = unresolved
	h.mu.Unlock()
	unlock, err := h.lockEngine(ctx)
	if err != nil {
		return
	}
	err = h.engine.Apply(ctx, desired)
	unlock()
	if err != nil && ctx.Err() == nil {
		h.log.Error("applying the connector configs failed", "err", err)
	}
	for _, report := range failures {
		report()
	}
	stopped := map[string]bool{}
	for name := range snap.Connectors {
		if snap.TargetStates[name] == configstore.Stopped && err == nil {
			stopped[name] = true
		}
	}
	h.mu.Lock()
	h.stopped, h.applied = stopped, snap.Offset
	h.mu.Unlock()
}

// Close stops every connector and task and closes the stores. Idempotent.
func (h *Herder) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.ready.Store(false)
	h.closing.Store(true)
	// Leaving the cluster first stops everything this worker runs (the
	// member revokes it all) and hands it to the others at once.
	var errs []error
	if h.member != nil {
		errs = append(errs, h.member.Close())
	}
	if h.stop != nil {
		h.stop()
	}
	h.wg.Wait()
	h.http.CloseIdleConnections()
	return errors.Join(append(errs, h.closeResources())...)
}

func (h *Herder) closeResources() error {
	var errs []error
	if h.engine != nil {
		errs = append(errs, h.engine.Close())
	}
	errs = append(errs, h.validators.Close())
	for _, c := range []interface{ Close() error }{h.configs, h.offsets, h.status} {
		if c != nil && !isNilStore(c) {
			errs = append(errs, c.Close())
		}
	}
	if h.producer != nil {
		h.producer.Close()
	}
	return errors.Join(errs...)
}

func isNilStore(c interface{ Close() error }) bool {
	switch s := c.(type) {
	case *configstore.Store:
		return s == nil
	case *offsetstore.Store:
		return s == nil
	case *statusstore.Store:
		return s == nil
	}
	return false
}

// reportConnector and reportTask write statuses, tagged with this worker's
// group generation; reports about connectors no longer configured are
// dropped (they were deleted meanwhile). As in Kafka Connect, UNASSIGNED
// and FAILED are written only if no other worker has written a status in a
// newer generation (the work may have moved on: a late report of its old
// owner must not hide the new owner's).
func (h *Herder) reportConnector(name, state, trace string) {
	if _, ok := h.configs.Snapshot().Connectors[name]; !ok {
		return
	}
	ctx, cancel, skip := h.statusWrite()
	defer cancel()
	if skip {
		return
	}
	st := h.statusOf(state, trace)
	var err error
	if safeState(st.State) {
		_, err = h.status.PutConnectorSafe(ctx, name, st)
	} else {
		err = h.status.PutConnector(ctx, name, st)
	}
	if err != nil {
		h.log.Warn("writing a connector status failed", "connector", name, "err", err)
	}
}

func (h *Herder) reportTask(name string, task int, state, trace string) {
	if _, ok := h.configs.Snapshot().Connectors[name]; !ok {
		return
	}
	ctx, cancel, skip := h.statusWrite()
	defer cancel()
	if skip {
		return
	}
	st := h.statusOf(state, trace)
	var err error
	if safeState(st.State) {
		_, err = h.status.PutTaskSafe(ctx, name, task, st)
	} else {
		err = h.status.PutTask(ctx, name, task, st)
	}
	if err != nil {
		h.log.Warn("writing a task status failed", "connector", name, "task", task, "err", err)
	}
}

// statusWrite bounds a status write: 10 s, or 2 s while the worker shuts
// down, when a write that timed out makes the later ones skip (the broker
// is gone: the shutdown must not wait for each status in turn).
func (h *Herder) statusWrite() (context.Context, context.CancelFunc, bool) {
	if !h.closing.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		return ctx, cancel, false
	}
	if h.statusDown.Load() {
		return nil, func() {}, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	return ctx, func() {
		if ctx.Err() == context.DeadlineExceeded {
			h.statusDown.Store(true)
			h.log.Warn("status writes time out during shutdown; skipping the rest")
		}
		cancel()
	}, false
}

func (h *Herder) statusOf(state, trace string) statusstore.Status {
	st := statusstore.Status{State: statusstore.State(state), Trace: trace, WorkerID: h.cfg.WorkerID}
	if h.member != nil {
		st.Generation = max(h.member.Generation(), 0)
	}
	return st
}

func safeState(s statusstore.State) bool {
	return s == statusstore.Unassigned || s == statusstore.Failed
}

type statesAdapter struct{ h *Herder }

func (s statesAdapter) ConnectorState(name, state, trace string) {
	s.h.reportConnector(name, state, trace)
}
func (s statesAdapter) TaskState(name string, task int, state, trace string) {
	s.h.reportTask(name, task, state, trace)
}

// TopicUsed records a source's active topic (KIP-558) unless known already.
func (s statesAdapter) TopicUsed(name string, task int, topic string) {
	for _, t := range s.h.status.Topics(name) {
		if t.Topic == topic {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts := statusstore.TopicStatus{Topic: topic, Connector: name, Task: int32(task), DiscoverTimestamp: time.Now().UnixMilli()}
	if err := s.h.status.PutTopic(ctx, ts); err != nil {
		s.h.log.Warn("recording an active topic failed", "connector", name, "topic", topic, "err", err)
	}
}

// taskConfigsAdapter stores the task configs a connector produced. The
// connector saw its config with the secrets resolved, so its task configs
// may hold them: as Kafka Connect's reverse transform does, a task key whose
// connector config value has a ${provider:...} placeholder is stored as
// that placeholder, never resolved (reconcile resolves it again).
type taskConfigsAdapter struct{ h *Herder }

func (a taskConfigsAdapter) PutTaskConfigs(ctx context.Context, connector string, tasks []map[string]string) error {
	raw := a.h.configs.Snapshot().Connectors[connector]
	stored := make([]map[string]string, len(tasks))
	for i, t := range tasks {
		stored[i] = maps.Clone(t)
		for k := range t {
			if v, ok := raw[k]; ok && placeholder.MatchString(v) {
				stored[i][k] = v
			}
		}
	}
	return a.h.storeTaskConfigs(ctx, connector, stored)
}

// live reports whether this worker's cluster membership is current (tasks
// check it right before writing; see cluster.Member.Live).
func (h *Herder) live() bool {
	return h.member == nil || h.member.Live()
}

// offsetsAdapter serves the engine's offset needs from the offset store.
// Offsets are written only while the membership is live, tagged with its
// generation (see offsetstore's Generations).
type offsetsAdapter struct{ h *Herder }

func (a offsetsAdapter) Get(ctx context.Context, connector string) ([]taskrun.Offset, error) {
	if err := a.h.offsets.ReadToEnd(ctx); err != nil {
		return nil, err
	}
	var out []taskrun.Offset
	for _, po := range a.h.offsets.Get(connector) {
		p, err := plugins.EncodeOffsetJSON(po.Partition)
		if err != nil {
			return nil, err
		}
		o, err := plugins.EncodeOffsetJSON(po.Offset)
		if err != nil {
			return nil, err
		}
		out = append(out, taskrun.Offset{PartitionJSON: p, OffsetJSON: o})
	}
	return out, nil
}

func (a offsetsAdapter) Put(ctx context.Context, connector string, offs []taskrun.Offset) error {
	pos := make([]offsetstore.PartitionOffset, 0, len(offs))
	for _, o := range offs {
		p, err := plugins.DecodeOffsetJSON(o.PartitionJSON)
		if err != nil {
			return fmt.Errorf("source partition %s: %w", o.PartitionJSON, err)
		}
		v, err := plugins.DecodeOffsetJSON(o.OffsetJSON)
		if err != nil {
			return fmt.Errorf("source offset %s: %w", o.OffsetJSON, err)
		}
		pos = append(pos, offsetstore.PartitionOffset{Partition: p, Offset: v})
	}
	if !a.h.live() {
		return taskrun.ErrFenced
	}
	return a.h.offsets.PutGeneration(ctx, connector, max(a.h.member.Generation(), 0), pos)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// producerCodec maps producer.compression.type to franz-go's codec; ""
// means the worker's default, snappy.
func producerCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "snappy":
		return kgo.SnappyCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("producer.compression.type %q: want none, gzip, snappy, lz4 or zstd", name)
}
