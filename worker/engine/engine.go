// Package engine runs what a worker is assigned: for each connector a plugin
// process running the connector instance, and for each task a plugin process
// plus a task runner (worker/taskrun) moving its records. Apply takes the
// desired state (connector configs, task configs, target states, as read
// from the config topic) and reconciles the running set with it: only what
// changed is started, stopped or restarted. States (RUNNING, PAUSED, FAILED
// with a trace ...) are reported through the StateReporter.
//
// Ownership: the Engine owns one goroutine per running connector (its event
// stream) and one per running task (its runner); Close stops them all and
// waits. Apply, RestartConnector, RestartTask and Close may be called from
// any goroutine: Engine.ops serializes them whole (so a task is never
// started while its previous instance is still stopping), and Engine.mu
// guards the maps for the short moments they are read or changed; mu is
// never held while waiting for a plugin. Lock order: ops, then mu.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
	"github.com/tributary-data/tributary/worker/taskrun"
)

// Target states of a connector, as Kafka Connect names them.
const (
	TargetStarted = "STARTED"
	TargetPaused  = "PAUSED"
	TargetStopped = "STOPPED"
)

// States reported for connectors and tasks.
const (
	StateRunning    = "RUNNING"
	StatePaused     = "PAUSED"
	StateStopped    = "STOPPED"
	StateFailed     = "FAILED"
	StateUnassigned = "UNASSIGNED"
	StateRestarting = "RESTARTING"
)

// Connector is the desired state of one connector.
type Connector struct {
	Config      map[string]string   // with secrets resolved
	TargetState string              // TargetStarted, TargetPaused or TargetStopped
	Tasks       []map[string]string // committed task configs
	// Owned is the part of the connector this worker runs (its cluster
	// assignment); nil means all of it (a single worker).
	Owned *Owned
}

// Owned is a worker's share of one connector: the connector instance
// and/or some of its tasks.
type Owned struct {
	Connector bool
	Tasks     map[int]bool
}

// ownsConnector and ownsTask read c.Owned (nil: everything).
func (c Connector) ownsConnector() bool { return c.Owned == nil || c.Owned.Connector }
func (c Connector) ownsTask(i int) bool { return c.Owned == nil || c.Owned.Tasks[i] }

// Desired is what the engine should run, by connector name.
type Desired map[string]Connector

// StateReporter receives state changes (written to the status topic).
type StateReporter interface {
	ConnectorState(name, state, trace string)
	TaskState(connector string, task int, state, trace string)
	// TopicUsed reports the first record a source task produced to a topic.
	TopicUsed(connector string, task int, topic string)
}

// Plugins finds the plugin binary serving a connector class (or alias).
type Plugins interface {
	Binary(class string) (path string, typ pluginpb.ConnectorType, err error)
}

// Offsets reads a connector's stored source offsets (for a task's start).
type Offsets interface {
	Get(ctx context.Context, connector string) ([]taskrun.Offset, error)
	taskrun.OffsetWriter
}

// TaskConfigsWriter stores new task configs a connector produced (the
// leader's job; the engine calls it when a connector's TaskConfigs differ
// from the desired ones, or it asked for reconfiguration).
type TaskConfigsWriter interface {
	PutTaskConfigs(ctx context.Context, connector string, tasks []map[string]string) error
}

// Options are the engine's dependencies.
type Options struct {
	Brokers     []string
	Plugins     Plugins
	Offsets     Offsets
	TaskConfigs TaskConfigsWriter
	States      StateReporter
	Producer    *kgo.Client // shared by source tasks and dead letter queues
	// ConsumerOpts are added to every sink task's consumer options.
	ConsumerOpts        []kgo.Opt
	OffsetFlushInterval time.Duration
	Logger              *slog.Logger
	Metrics             *taskrun.Metrics
	// Launch starts plugin processes (default plugins.Launch; benchmarks
	// link connectors in with plugins.InProcessLauncher).
	Launch plugins.Launcher
	// Live, when set, is asked by tasks right before each write; false
	// stops them (taskrun.ErrFenced): the worker lost its membership.
	Live func() bool
	// MaxConcurrentLaunches bounds the plugin processes starting at once
	// (tasks first); 0: twice the CPUs, at least 4.
	MaxConcurrentLaunches int
}

// Engine runs connectors and tasks.
type Engine struct {
	opts Options

	ops        sync.Mutex // one Apply/Restart/Close at a time
	mu         sync.Mutex
	connectors map[string]*runningConnector
	tasks      map[taskID]*runningTask
	desired    Desired
	closed     bool
	launches   *launchGate
}

type taskID struct {
	connector string
	task      int
}

// New returns an engine running nothing.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Launch == nil {
		opts.Launch = plugins.Launch
	}
	return &Engine{opts: opts, connectors: map[string]*runningConnector{}, tasks: map[taskID]*runningTask{}, desired: Desired{},
		launches: newLaunchGate(opts.MaxConcurrentLaunches)}
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("engine: closed")

// ErrNotAssigned is returned by restarts of work this worker does not run.
var ErrNotAssigned = errors.New("engine: not assigned to this worker")

// Apply reconciles the running connectors and tasks with d. Work whose
// config and target state are unchanged keeps running untouched.
func (e *Engine) Apply(ctx context.Context, d Desired) error {
	e.ops.Lock()
	defer e.ops.Unlock()
	return e.apply(ctx, d)
}

func (e *Engine) apply(ctx context.Context, d Desired) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.desired = cloneDesired(d)
	var stopC []*runningConnector
	var stopT []*runningTask
	for name, rc := range e.connectors {
		want, ok := d[name]
		if !ok || want.TargetState == TargetStopped || !want.ownsConnector() || !maps.Equal(want.Config, rc.config) {
			stopC = append(stopC, rc)
			delete(e.connectors, name)
		}
	}
	for id, rt := range e.tasks {
		want, ok := d[id.connector]
		if !ok || want.TargetState != TargetStarted || id.task >= len(want.Tasks) || !want.ownsTask(id.task) || !maps.Equal(want.Tasks[id.task], rt.config) {
			stopT = append(stopT, rt)
			delete(e.tasks, id)
		}
	}
	e.mu.Unlock()

	e.stopAll(ctx, stopC, stopT)

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	for _, name := range sortedNames(d) {
		want := d[name]
		switch want.TargetState {
		case TargetStopped:
			if want.ownsConnector() {
				e.opts.States.ConnectorState(name, StateStopped, "")
			}
			continue
		case TargetPaused:
			for i := range want.Tasks {
				if want.ownsTask(i) {
					e.opts.States.TaskState(name, i, StatePaused, "")
				}
			}
		}
		if !want.ownsConnector() {
			// Another worker runs the connector instance.
		} else if rc, ok := e.connectors[name]; !ok {
			e.connectors[name] = e.startConnector(name, want)
		} else {
			// A running connector only changes between RUNNING and
			// PAUSED here; report it when it does.
			state := StateRunning
			if want.TargetState == TargetPaused {
				state = StatePaused
			}
			if rc.swap(state) {
				e.opts.States.ConnectorState(name, state, "")
			}
		}
		if want.TargetState != TargetStarted {
			continue
		}
		for i, tc := range want.Tasks {
			id := taskID{name, i}
			if !want.ownsTask(i) {
				continue
			}
			if _, ok := e.tasks[id]; !ok {
				e.tasks[id] = e.startTask(id, want.Config, tc)
			}
		}
	}
	e.reportUnassigned(d, stopC, stopT)
	return nil
}

// reportUnassigned reports UNASSIGNED for what apply stopped and did not
// start again, unless another state was reported for it (STOPPED for a
// stopped connector, PAUSED for a paused connector's tasks). Work that
// moved to another worker (or was deleted: the herder drops reports about
// deleted connectors) ends here too. Called with e.mu held, after the
// stopped work has stopped (tasks stored their offsets).
func (e *Engine) reportUnassigned(d Desired, stopC []*runningConnector, stopT []*runningTask) {
	for _, rc := range stopC {
		if _, again := e.connectors[rc.name]; again {
			continue
		}
		if want, ok := d[rc.name]; ok && want.TargetState == TargetStopped && want.ownsConnector() {
			continue
		}
		e.opts.States.ConnectorState(rc.name, StateUnassigned, "")
	}
	for _, rt := range stopT {
		if _, again := e.tasks[rt.id]; again {
			continue
		}
		if want, ok := d[rt.id.connector]; ok && want.TargetState == TargetPaused && want.ownsTask(rt.id.task) && rt.id.task < len(want.Tasks) {
			continue
		}
		e.opts.States.TaskState(rt.id.connector, rt.id.task, StateUnassigned, "")
	}
}

// RestartConnector restarts a connector instance (and, with tasks, its
// tasks; with onlyFailed, only the failed ones).
func (e *Engine) RestartConnector(ctx context.Context, name string, tasks, onlyFailed bool) error {
	e.ops.Lock()
	defer e.ops.Unlock()
	e.mu.Lock()
	want, ok := e.desired[name]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("connector %q: %w", name, ErrNotAssigned)
	}
	var stopC []*runningConnector
	var stopT []*runningTask
	if rc := e.connectors[name]; rc != nil && (!onlyFailed || rc.failed()) {
		stopC = append(stopC, rc)
		delete(e.connectors, name)
	}
	if tasks {
		for id, rt := range e.tasks {
			if id.connector == name && (!onlyFailed || rt.failed()) {
				stopT = append(stopT, rt)
				delete(e.tasks, id)
			}
		}
	}
	e.mu.Unlock()
	if len(stopC) > 0 {
		e.opts.States.ConnectorState(name, StateRestarting, "")
	}
	for _, rt := range stopT {
		e.opts.States.TaskState(name, rt.id.task, StateRestarting, "")
	}
	e.stopAll(ctx, stopC, stopT)
	d := e.snapshotDesired()
	d[name] = want
	return e.apply(ctx, d)
}

// RestartTask restarts one task.
func (e *Engine) RestartTask(ctx context.Context, name string, task int) error {
	e.ops.Lock()
	defer e.ops.Unlock()
	e.mu.Lock()
	if want, ok := e.desired[name]; !ok || !want.ownsTask(task) {
		e.mu.Unlock()
		return fmt.Errorf("task %s-%d: %w", name, task, ErrNotAssigned)
	}
	rt := e.tasks[taskID{name, task}]
	delete(e.tasks, taskID{name, task})
	e.mu.Unlock()
	if rt != nil {
		e.opts.States.TaskState(name, task, StateRestarting, "")
		e.stopAll(ctx, nil, []*runningTask{rt})
	}
	return e.apply(ctx, e.snapshotDesired())
}

func (e *Engine) snapshotDesired() Desired {
	e.mu.Lock()
	defer e.mu.Unlock()
	return cloneDesired(e.desired)
}

// Close stops every connector and task (tasks flush and store offsets on
// the way out) and waits. Idempotent.
func (e *Engine) Close() error {
	e.ops.Lock()
	defer e.ops.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var stopC []*runningConnector
	var stopT []*runningTask
	for _, rc := range e.connectors {
		stopC = append(stopC, rc)
	}
	for _, rt := range e.tasks {
		stopT = append(stopT, rt)
	}
	e.connectors, e.tasks = map[string]*runningConnector{}, map[taskID]*runningTask{}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.stopAll(ctx, stopC, stopT)
	return nil
}

// stopAll stops tasks then connectors, in parallel, and waits.
func (e *Engine) stopAll(ctx context.Context, cs []*runningConnector, ts []*runningTask) {
	var wg sync.WaitGroup
	for _, rt := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); rt.stop(ctx) }()
	}
	wg.Wait()
	for _, rc := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); rc.stop(ctx) }()
	}
	wg.Wait()
}

func cloneDesired(d Desired) Desired {
	out := make(Desired, len(d))
	for k, v := range d {
		c := Connector{Config: maps.Clone(v.Config), TargetState: v.TargetState}
		if v.Owned != nil {
			c.Owned = &Owned{Connector: v.Owned.Connector, Tasks: maps.Clone(v.Owned.Tasks)}
		}
		for _, t := range v.Tasks {
			c.Tasks = append(c.Tasks, maps.Clone(t))
		}
		out[k] = c
	}
	return out
}

func sortedNames(d Desired) []string {
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
