package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
	"github.com/tributary-data/tributary/worker/taskrun"
)

// stateCell holds a connector's or task's last reported state.
type stateCell struct {
	mu    sync.Mutex
	state string
}

func (c *stateCell) set(s string) { c.mu.Lock(); c.state = s; c.mu.Unlock() }

// swap sets the state unless it is FAILED or already s; it reports a change.
func (c *stateCell) swap(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == s || c.state == StateFailed || c.state == "" {
		return false
	}
	c.state = s
	return true
}
func (c *stateCell) failed() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.state == StateFailed }
func (c *stateCell) get() string  { c.mu.Lock(); defer c.mu.Unlock(); return c.state }

// runningConnector is a connector instance in its plugin process; its
// goroutine starts it, keeps its task configs current and follows its events.
type runningConnector struct {
	stateCell
	name   string
	config map[string]string
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *Engine) startConnector(name string, want Connector) *runningConnector {
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningConnector{name: name, config: maps.Clone(want.Config), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		err := e.runConnector(ctx, rc, want)
		if err != nil && ctx.Err() == nil {
			rc.set(StateFailed)
			e.opts.Logger.Error("connector failed", "connector", name, "err", err)
			e.opts.States.ConnectorState(name, StateFailed, err.Error())
		}
	}()
	return rc
}

func (rc *runningConnector) stop(context.Context) {
	rc.cancel()
	<-rc.done
}

func (e *Engine) launch(ctx context.Context, class string, prio int) (*plugins.Process, pluginpb.ConnectorType, error) {
	path, typ, err := e.opts.Plugins.Binary(class)
	if err != nil {
		return nil, typ, err
	}
	if err := e.launches.acquire(ctx, prio); err != nil {
		return nil, typ, err
	}
	defer e.launches.release()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	p, err := e.opts.Launch(lctx, path, e.opts.Logger)
	e.opts.Logger.Debug("plugin process started", "class", class, "took", time.Since(start), "err", err)
	return p, typ, err
}

func (e *Engine) runConnector(ctx context.Context, rc *runningConnector, want Connector) error {
	class := want.Config["connector.class"]
	proc, _, err := e.launch(ctx, class, launchConnector)
	if err != nil {
		return err
	}
	defer proc.Kill()
	if _, err := proc.Plugin.StartConnector(ctx, &pluginpb.StartConnectorRequest{Class: class, Config: want.Config}); err != nil {
		return fmt.Errorf("start: %w", proc.Err(err))
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := proc.Plugin.StopConnector(sctx, &pluginpb.StopRequest{}); err != nil && !proc.Exited() {
			e.opts.Logger.Warn("connector stop failed", "connector", rc.name, "err", proc.Err(err))
		}
	}()
	state := StateRunning
	if want.TargetState == TargetPaused {
		state = StatePaused
	}
	rc.set(state)
	e.opts.States.ConnectorState(rc.name, state, "")
	if err := e.reconfigure(ctx, rc, proc, want); err != nil {
		return err
	}
	events, err := proc.Plugin.ConnectorEvents(ctx, &pluginpb.ConnectorEventsRequest{})
	if err != nil {
		return fmt.Errorf("events: %w", proc.Err(err))
	}
	for {
		ev, err := events.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("connector events: %w", proc.Err(err))
		}
		switch ev := ev.Event.(type) {
		case *pluginpb.ConnectorEvent_RequestTaskReconfiguration:
			if err := e.reconfigure(ctx, rc, proc, want); err != nil {
				return err
			}
		case *pluginpb.ConnectorEvent_RaisedError:
			return errors.New(ev.RaisedError)
		}
	}
}

// reconfigure asks the connector for task configs and stores them when they
// differ from the committed ones.
func (e *Engine) reconfigure(ctx context.Context, rc *runningConnector, proc *plugins.Process, want Connector) error {
	maxTasks := 1
	if v := strings.TrimSpace(want.Config["tasks.max"]); v != "" {
		if _, err := fmt.Sscan(v, &maxTasks); err != nil || maxTasks < 1 {
			return fmt.Errorf("tasks.max=%q: want a whole number of at least 1", v)
		}
	}
	resp, err := proc.Plugin.TaskConfigs(ctx, &pluginpb.TaskConfigsRequest{MaxTasks: int32(maxTasks)})
	if err != nil {
		return fmt.Errorf("task configs: %w", proc.Err(err))
	}
	if len(resp.Tasks) > maxTasks {
		return fmt.Errorf("the connector returned %d task configs for tasks.max=%d", len(resp.Tasks), maxTasks)
	}
	var tasks []map[string]string
	for _, t := range resp.Tasks {
		tasks = append(tasks, t.Config)
	}
	if equalTasks(tasks, want.Tasks) {
		return nil
	}
	if err := e.opts.TaskConfigs.PutTaskConfigs(ctx, rc.name, tasks); err != nil {
		return fmt.Errorf("storing task configs: %w", err)
	}
	return nil
}

func equalTasks(a, b []map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !maps.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// runningTask is a task in its plugin process, driven by a task runner.
type runningTask struct {
	stateCell
	id     taskID
	config map[string]string
	cancel context.CancelFunc
	done   chan struct{}
	// plugin is the task's plugin client once its process started (for
	// TaskGauges); nil before and after.
	plugin atomic.Pointer[pluginpb.PluginClient]
}

func (e *Engine) startTask(id taskID, connConfig, taskConfig map[string]string) *runningTask {
	ctx, cancel := context.WithCancel(context.Background())
	rt := &runningTask{id: id, config: maps.Clone(taskConfig), cancel: cancel, done: make(chan struct{})}
	// The pipeline keys (converters, transforms, errors.*) are the
	// connector's; the task's own config wins where both set a key.
	cfg := maps.Clone(connConfig)
	maps.Copy(cfg, taskConfig)
	go func() {
		defer close(rt.done)
		err := e.runTask(ctx, rt, cfg)
		switch {
		case errors.Is(err, taskrun.ErrFenced) && ctx.Err() == nil:
			// The worker lost its membership: the member revokes the
			// task (UNASSIGNED) in a moment; it is not a task failure.
			e.opts.Logger.Warn("task stopped writing: the worker lost its cluster membership", "connector", id.connector, "task", id.task)
		case err != nil && ctx.Err() == nil:
			rt.set(StateFailed)
			e.opts.Logger.Error("task failed", "connector", id.connector, "task", id.task, "err", err)
			e.opts.States.TaskState(id.connector, id.task, StateFailed, err.Error())
		case ctx.Err() == nil:
			// The runner ended on its own without an error: nothing
			// more to do, but it is not running any more.
			rt.set(StateFailed)
			e.opts.States.TaskState(id.connector, id.task, StateFailed, "the task stopped unexpectedly")
		}
	}()
	return rt
}

func (rt *runningTask) stop(context.Context) {
	rt.cancel()
	<-rt.done
}

func (e *Engine) runTask(ctx context.Context, rt *runningTask, cfg map[string]string) error {
	class := cfg["connector.class"]
	proc, typ, err := e.launch(ctx, class, launchTask)
	if err != nil {
		return err
	}
	defer proc.Kill()
	rt.plugin.Store(&proc.Plugin)
	defer rt.plugin.Store(nil)
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := proc.Plugin.StopTask(sctx, &pluginpb.StopRequest{}); err != nil && !proc.Exited() {
			e.opts.Logger.Warn("task stop failed", "connector", rt.id.connector, "task", rt.id.task, "err", proc.Err(err))
		}
	}()
	name := rt.id.connector
	retry, logErrors, err := errorPolicy(cfg)
	if err != nil {
		return err
	}
	switch typ {
	case pluginpb.ConnectorType_CONNECTOR_TYPE_SOURCE:
		stored, err := e.opts.Offsets.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("reading stored offsets: %w", err)
		}
		req := &pluginpb.StartSourceTaskRequest{Class: class, Config: cfg, PackedVersion: plugins.PackedVersion}
		for _, o := range stored {
			req.Offsets = append(req.Offsets, &pluginpb.PartitionOffset{PartitionJson: o.PartitionJSON, OffsetJson: o.OffsetJSON})
		}
		if _, err := proc.Plugin.StartSourceTask(ctx, req); err != nil {
			return fmt.Errorf("start: %w", proc.Err(err))
		}
		e.running(rt)
		return taskrun.RunSource(ctx, taskrun.SourceConfig{
			Connector: name, Task: rt.id.task, Plugin: proc.Plugin, PluginErr: proc.Err,
			Producer: e.opts.Producer, Offsets: e.opts.Offsets, OffsetFlushInterval: e.opts.OffsetFlushInterval,
			Retry: retry, LogErrors: logErrors,
			OnTopic: func(topic string) { e.opts.States.TopicUsed(name, rt.id.task, topic) }, Live: e.opts.Live,
			Logger: e.opts.Logger.With("connector", name, "task", rt.id.task), Metrics: e.opts.Metrics,
		})
	case pluginpb.ConnectorType_CONNECTOR_TYPE_SINK:
		started, err := proc.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: class, Config: cfg})
		if err != nil {
			return fmt.Errorf("start: %w", proc.Err(err))
		}
		e.running(rt)
		return taskrun.RunSink(ctx, taskrun.SinkConfig{
			Connector: name, Task: rt.id.task, Plugin: proc.Plugin, PluginErr: proc.Err,
			Brokers: e.opts.Brokers, ClientOpts: e.opts.ConsumerOpts, Group: "connect-" + name,
			Topics: splitList(cfg["topics"]), TopicsRegex: strings.TrimSpace(cfg["topics.regex"]),
			Producer: e.opts.Producer, DLQTopic: strings.TrimSpace(cfg["errors.deadletterqueue.topic.name"]),
			DLQContextHeaders:   strings.TrimSpace(cfg["errors.deadletterqueue.context.headers.enable"]) == "true",
			OffsetFlushInterval: e.opts.OffsetFlushInterval, Retry: retry, LogErrors: logErrors, Live: e.opts.Live,
			Logger: e.opts.Logger.With("connector", name, "task", rt.id.task), Metrics: e.opts.Metrics,
			PackedVersion: started.GetPackedVersion(),
		})
	}
	return fmt.Errorf("class %s is neither a source nor a sink", class)
}

func (e *Engine) running(rt *runningTask) {
	e.opts.Logger.Debug("task running", "connector", rt.id.connector, "task", rt.id.task)
	rt.set(StateRunning)
	e.opts.States.TaskState(rt.id.connector, rt.id.task, StateRunning, "")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// errorPolicy reads errors.retry.timeout, errors.retry.delay.max.ms and
// errors.log.enable (Kafka Connect's keys and defaults: no retries, 60 s
// maximum delay, no logging).
func errorPolicy(cfg map[string]string) (taskrun.Retry, bool, error) {
	var r taskrun.Retry
	ms := func(key string, def int64) (time.Duration, error) {
		v := strings.TrimSpace(cfg[key])
		if v == "" {
			return time.Duration(def) * time.Millisecond, nil
		}
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil || n < -1 {
			return 0, fmt.Errorf("%s=%q: want milliseconds (-1: forever)", key, v)
		}
		if n < 0 {
			return -1, nil
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	var err error
	if r.Timeout, err = ms("errors.retry.timeout", 0); err != nil {
		return r, false, err
	}
	if r.MaxDelay, err = ms("errors.retry.delay.max.ms", 60000); err != nil {
		return r, false, err
	}
	return r, strings.TrimSpace(cfg["errors.log.enable"]) == "true", nil
}
