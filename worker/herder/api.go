package herder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connect/transforms"
	"github.com/tributary-data/tributary/plugins/pluginpb"
	"github.com/tributary-data/tributary/worker/cluster"
	"github.com/tributary-data/tributary/worker/configstore"
	"github.com/tributary-data/tributary/worker/engine"
	"github.com/tributary-data/tributary/worker/offsetstore"
	"github.com/tributary-data/tributary/worker/rest"
	"github.com/tributary-data/tributary/worker/statusstore"
)

var _ rest.Herder = (*Herder)(nil)

func (h *Herder) ServerInfo(context.Context) (rest.ServerInfo, error) {
	return rest.ServerInfo{Version: h.cfg.Version, Commit: h.cfg.Commit, KafkaClusterID: h.clusterID}, nil
}

func (h *Herder) Ready(context.Context) error {
	if !h.ready.Load() {
		return errors.New("the worker is starting or stopping")
	}
	return nil
}

func (h *Herder) Connectors(ctx context.Context) ([]string, error) {
	if err := rest.ReadOnce(ctx, h.configs, h.configs.ReadToEnd); err != nil {
		return nil, err
	}
	return sortedKeys(h.configs.Snapshot().Connectors), nil
}

// snapshotOf reads the config topic to the end (once per read scope:
// rest.ReadOnce) and returns a connector's
// part of it, or NotFound.
func (h *Herder) snapshotOf(ctx context.Context, name string) (configstore.State, map[string]string, error) {
	if err := rest.ReadOnce(ctx, h.configs, h.configs.ReadToEnd); err != nil {
		return configstore.State{}, nil, err
	}
	snap := h.configs.Snapshot()
	cfg, ok := snap.Connectors[name]
	if !ok {
		return snap, nil, rest.NotFound("Connector %s not found", name)
	}
	return snap, cfg, nil
}

func (h *Herder) typeOf(class string) rest.ConnectorType {
	c, ok := h.registry.Class(class)
	if !ok {
		return rest.TypeUnknown
	}
	switch c.Type {
	case pluginpb.ConnectorType_CONNECTOR_TYPE_SOURCE:
		return rest.TypeSource
	case pluginpb.ConnectorType_CONNECTOR_TYPE_SINK:
		return rest.TypeSink
	}
	return rest.TypeUnknown
}

// tasksOf returns a connector's task configs as the REST API shows them:
// none while it is STOPPED, as Kafka Connect empties a stopped connector's
// task configs (its tasks do not run; they are generated again on resume).
func tasksOf(snap configstore.State, name string) []map[string]string {
	if snap.TargetStates[name] == configstore.Stopped {
		return nil
	}
	return snap.Tasks[name]
}

func (h *Herder) info(name string, snap configstore.State) rest.ConnectorInfo {
	cfg := snap.Connectors[name]
	info := rest.ConnectorInfo{Name: name, Config: h.mask(cfg), Tasks: []rest.ConnectorTaskID{}, Type: h.typeOf(cfg["connector.class"])}
	for i := range tasksOf(snap, name) {
		info.Tasks = append(info.Tasks, rest.ConnectorTaskID{Connector: name, Task: i})
	}
	return info
}

func (h *Herder) ConnectorInfo(ctx context.Context, name string) (rest.ConnectorInfo, error) {
	snap, _, err := h.snapshotOf(ctx, name)
	if err != nil {
		return rest.ConnectorInfo{}, err
	}
	return h.info(name, snap), nil
}

func (h *Herder) ConnectorStatus(ctx context.Context, name string) (rest.ConnectorStateInfo, error) {
	snap, cfg, err := h.snapshotOf(ctx, name)
	if err != nil {
		return rest.ConnectorStateInfo{}, err
	}
	if err := rest.ReadOnce(ctx, h.status, h.status.ReadToEnd); err != nil {
		return rest.ConnectorStateInfo{}, err
	}
	out := rest.ConnectorStateInfo{Name: name, Tasks: []rest.TaskState{}, Type: h.typeOf(cfg["connector.class"])}
	out.Connector = rest.ConnectorState{State: string(statusstore.Unassigned), WorkerID: h.cfg.WorkerID}
	if st, ok := h.status.Connector(name); ok {
		out.Connector = rest.ConnectorState{State: string(st.State), WorkerID: st.WorkerID, Trace: st.Trace}
	}
	byID := map[int]statusstore.TaskStatus{}
	for _, t := range h.status.Tasks(name) {
		byID[t.ID] = t
	}
	for i := range tasksOf(snap, name) {
		ts := rest.TaskState{ID: i, State: string(statusstore.Unassigned), WorkerID: h.cfg.WorkerID}
		if t, ok := byID[i]; ok {
			ts = rest.TaskState{ID: i, State: string(t.State), WorkerID: t.WorkerID, Trace: t.Trace}
		}
		out.Tasks = append(out.Tasks, ts)
	}
	return out, nil
}

func (h *Herder) checkAndStore(ctx context.Context, name string, config map[string]string, state configstore.TargetState) error {
	if config["name"] == "" {
		config["name"] = name
	}
	if config["name"] != name {
		return rest.BadRequest("Connector name configuration (%s) doesn't match connector name in the URL (%s)", config["name"], name)
	}
	infos, err := h.validate(ctx, config)
	if err != nil {
		return err
	}
	if infos.ErrorCount > 0 {
		return validationError(infos)
	}
	return h.configs.PutConnectorConfig(ctx, name, config, state)
}

func targetOf(initial string) (configstore.TargetState, error) {
	switch strings.ToUpper(initial) {
	case "", "RUNNING":
		return "", nil
	case "PAUSED":
		return configstore.Paused, nil
	case "STOPPED":
		return configstore.Stopped, nil
	}
	return "", rest.BadRequest("Invalid initial state %q: use RUNNING, PAUSED or STOPPED", initial)
}

func (h *Herder) CreateConnector(ctx context.Context, name string, config map[string]string, initialState string) (rest.ConnectorInfo, error) {
	if err := h.requireLeader(ctx, "create connectors"); err != nil {
		return rest.ConnectorInfo{}, err
	}
	unlock, err := h.lockConfigs(ctx)
	if err != nil {
		return rest.ConnectorInfo{}, err
	}
	defer unlock()
	if _, _, err := h.snapshotOf(ctx, name); err == nil {
		return rest.ConnectorInfo{}, rest.Conflict("Connector %s already exists", name)
	}
	state, err := targetOf(initialState)
	if err != nil {
		return rest.ConnectorInfo{}, err
	}
	if err := h.checkAndStore(ctx, name, maps.Clone(config), state); err != nil {
		return rest.ConnectorInfo{}, err
	}
	return h.ConnectorInfo(ctx, name)
}

func (h *Herder) PutConnectorConfig(ctx context.Context, name string, config map[string]string) (rest.ConnectorInfo, bool, error) {
	if err := h.requireLeader(ctx, "write connector configs"); err != nil {
		return rest.ConnectorInfo{}, false, err
	}
	unlock, err := h.lockConfigs(ctx)
	if err != nil {
		return rest.ConnectorInfo{}, false, err
	}
	defer unlock()
	_, _, err = h.snapshotOf(ctx, name)
	created := errors.Is(err, rest.ErrNotFound)
	if err != nil && !created {
		return rest.ConnectorInfo{}, false, err
	}
	if err := h.checkAndStore(ctx, name, maps.Clone(config), ""); err != nil {
		return rest.ConnectorInfo{}, false, err
	}
	info, err := h.ConnectorInfo(ctx, name)
	return info, created, err
}

func (h *Herder) PatchConnectorConfig(ctx context.Context, name string, patch map[string]*string) (rest.ConnectorInfo, error) {
	if err := h.requireLeader(ctx, "write connector configs"); err != nil {
		return rest.ConnectorInfo{}, err
	}
	unlock, err := h.lockConfigs(ctx)
	if err != nil {
		return rest.ConnectorInfo{}, err
	}
	defer unlock()
	_, cfg, err := h.snapshotOf(ctx, name)
	if err != nil {
		return rest.ConnectorInfo{}, err
	}
	next := maps.Clone(cfg)
	for k, v := range patch {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = *v
		}
	}
	if err := h.checkAndStore(ctx, name, next, ""); err != nil {
		return rest.ConnectorInfo{}, err
	}
	return h.ConnectorInfo(ctx, name)
}

func (h *Herder) DeleteConnector(ctx context.Context, name string) error {
	if err := h.requireLeader(ctx, "delete connectors"); err != nil {
		return err
	}
	unlock, err := h.lockConfigs(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, _, err := h.snapshotOf(ctx, name); err != nil {
		return err
	}
	if err := h.configs.DeleteConnector(ctx, name); err != nil {
		return err
	}
	return h.status.Delete(ctx, name)
}

func (h *Herder) RestartConnector(ctx context.Context, name string) error {
	if _, _, err := h.snapshotOf(ctx, name); err != nil {
		return err
	}
	if err := h.restartOwner(ctx, cluster.TaskID{Connector: name, Task: cluster.ConnectorTask}, h.owns(cluster.TaskID{Connector: name, Task: cluster.ConnectorTask})); err != nil {
		return err
	}
	if h.restartUnresolved(name) {
		return nil
	}
	unlock, err := h.lockEngine(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return h.notAssigned(h.engine.RestartConnector(ctx, name, false, false))
}

// notAssigned turns the engine's error for work that moved away meanwhile
// into a 409 (the client retries and reaches the new owner).
func (h *Herder) notAssigned(err error) error {
	if errors.Is(err, engine.ErrNotAssigned) {
		return rest.Conflict("Cannot complete request because of a conflicting operation (e.g. worker rebalance)")
	}
	return err
}

func (h *Herder) RestartConnectorAndTasks(ctx context.Context, name string, includeTasks, onlyFailed bool) (rest.ConnectorStateInfo, error) {
	if err := h.requireLeader(ctx, "process restart requests"); err != nil {
		return rest.ConnectorStateInfo{}, err
	}
	if _, _, err := h.snapshotOf(ctx, name); err != nil {
		return rest.ConnectorStateInfo{}, err
	}
	before, err := h.ConnectorStatus(ctx, name)
	if err != nil {
		return rest.ConnectorStateInfo{}, err
	}
	// The answer shows what is restarting, as Kafka's does; the restart
	// itself goes on in the background.
	if !onlyFailed || before.Connector.State == string(statusstore.Failed) {
		before.Connector.State, before.Connector.Trace = string(statusstore.Restarting), ""
	}
	if includeTasks {
		for i := range before.Tasks {
			if !onlyFailed || before.Tasks[i].State == string(statusstore.Failed) {
				before.Tasks[i].State, before.Tasks[i].Trace = string(statusstore.Restarting), ""
			}
		}
	}
	// Every worker restarts its share when it reads the request (this
	// one too: see restarter).
	if err := h.configs.PutRestartRequest(ctx, name, includeTasks, onlyFailed); err != nil {
		return rest.ConnectorStateInfo{}, err
	}
	return before, nil
}

func (h *Herder) setTarget(ctx context.Context, name string, state configstore.TargetState) error {
	snap, _, err := h.snapshotOf(ctx, name)
	if err != nil {
		return err
	}
	if snap.TargetStates[name] == state {
		return nil
	}
	return h.configs.PutTargetState(ctx, name, state)
}

func (h *Herder) PauseConnector(ctx context.Context, name string) error {
	return h.setTarget(ctx, name, configstore.Paused)
}

func (h *Herder) ResumeConnector(ctx context.Context, name string) error {
	return h.setTarget(ctx, name, configstore.Started)
}

func (h *Herder) StopConnector(ctx context.Context, name string) error {
	if err := h.requireLeader(ctx, "transition connectors to the STOPPED state"); err != nil {
		return err
	}
	return h.setTarget(ctx, name, configstore.Stopped)
}

func (h *Herder) TaskConfigs(ctx context.Context, name string) ([]rest.TaskInfo, error) {
	snap, _, err := h.snapshotOf(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []rest.TaskInfo{}
	for i, tc := range tasksOf(snap, name) {
		out = append(out, rest.TaskInfo{ID: rest.ConnectorTaskID{Connector: name, Task: i}, Config: h.mask(tc)})
	}
	return out, nil
}

func (h *Herder) TaskStatus(ctx context.Context, name string, task int) (rest.TaskState, error) {
	st, err := h.ConnectorStatus(ctx, name)
	if err != nil {
		return rest.TaskState{}, err
	}
	for _, t := range st.Tasks {
		if t.ID == task {
			return t, nil
		}
	}
	return rest.TaskState{}, rest.NotFound("No status found for task %s-%d", name, task)
}

func (h *Herder) RestartTask(ctx context.Context, name string, task int) error {
	snap, _, err := h.snapshotOf(ctx, name)
	if err != nil {
		return err
	}
	if task < 0 || task >= len(tasksOf(snap, name)) {
		return rest.NotFound("Task %s-%d not found", name, task)
	}
	unit := cluster.TaskID{Connector: name, Task: task}
	if err := h.restartOwner(ctx, unit, h.owns(unit)); err != nil {
		return err
	}
	if h.restartUnresolved(name) {
		return nil
	}
	unlock, err := h.lockEngine(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return h.notAssigned(h.engine.RestartTask(ctx, name, task))
}

func (h *Herder) ConnectorTopics(ctx context.Context, name string) ([]string, error) {
	_, cfg, err := h.snapshotOf(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := h.status.ReadToEnd(ctx); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, t := range h.status.Topics(name) {
		seen[t.Topic] = true
	}
	if h.typeOf(cfg["connector.class"]) == rest.TypeSink {
		for _, t := range strings.Split(cfg["topics"], ",") {
			if t = strings.TrimSpace(t); t != "" {
				seen[t] = true
			}
		}
	}
	return sortedKeys(seen), nil
}

func (h *Herder) ResetConnectorTopics(ctx context.Context, name string) error {
	if _, _, err := h.snapshotOf(ctx, name); err != nil {
		return err
	}
	return h.status.ResetTopics(ctx, name)
}

func (h *Herder) ConnectorOffsets(ctx context.Context, name string) (rest.ConnectorOffsets, error) {
	_, cfg, err := h.snapshotOf(ctx, name)
	if err != nil {
		return rest.ConnectorOffsets{}, err
	}
	out := rest.ConnectorOffsets{Offsets: []rest.ConnectorOffset{}}
	if h.typeOf(cfg["connector.class"]) == rest.TypeSink {
		offs, err := h.admin.FetchOffsets(ctx, "connect-"+name)
		if err != nil {
			return out, err
		}
		offs.Each(func(o kadm.OffsetResponse) {
			out.Offsets = append(out.Offsets, rest.ConnectorOffset{
				Partition: map[string]any{"kafka_topic": o.Topic, "kafka_partition": o.Partition},
				Offset:    map[string]any{"kafka_offset": o.At},
			})
		})
		return out, nil
	}
	if err := h.offsets.ReadToEnd(ctx); err != nil {
		return out, err
	}
	for _, po := range h.offsets.Get(name) {
		out.Offsets = append(out.Offsets, rest.ConnectorOffset{Partition: po.Partition, Offset: po.Offset})
	}
	return out, nil
}

func (h *Herder) requireStopped(ctx context.Context, name string) (map[string]string, error) {
	if err := h.requireLeader(ctx, "change connector offsets"); err != nil {
		return nil, err
	}
	snap, cfg, err := h.snapshotOf(ctx, name)
	if err != nil {
		return nil, err
	}
	if snap.TargetStates[name] != configstore.Stopped {
		return nil, rest.BadRequest("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint", name)
	}
	// A task stopping flushes its offsets: wait until they all stopped,
	// or the change would be overwritten.
	if err := h.waitStopped(ctx, name, snap.Offset); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (h *Herder) AlterConnectorOffsets(ctx context.Context, name string, offsets rest.ConnectorOffsets) (rest.Message, error) {
	cfg, err := h.requireStopped(ctx, name)
	if err != nil {
		return rest.Message{}, err
	}
	if h.typeOf(cfg["connector.class"]) == rest.TypeSink {
		commit := kadm.Offsets{}
		var reset []string
		for _, o := range offsets.Offsets {
			topic, _ := o.Partition["kafka_topic"].(string)
			part, ok := asInt(o.Partition["kafka_partition"])
			if topic == "" || !ok {
				return rest.Message{}, rest.BadRequest("sink connector offsets need a partition {\"kafka_topic\": ..., \"kafka_partition\": ...}, got %v", o.Partition)
			}
			if o.Offset == nil {
				reset = append(reset, topic)
				continue
			}
			at, ok := asInt(o.Offset["kafka_offset"])
			if !ok || at < 0 {
				return rest.Message{}, rest.BadRequest("sink connector offsets need {\"kafka_offset\": <non-negative integer>}, got %v", o.Offset)
			}
			commit.Add(kadm.Offset{Topic: topic, Partition: int32(part), At: at, LeaderEpoch: -1})
		}
		if len(commit) > 0 {
			resp, err := h.admin.CommitOffsets(ctx, "connect-"+name, commit)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return rest.Message{}, fmt.Errorf("committing the sink connector's offsets: %w", err)
			}
		}
		if len(reset) > 0 {
			if _, err := h.admin.DeleteOffsets(ctx, "connect-"+name, topicsSet(reset)); err != nil {
				return rest.Message{}, err
			}
		}
		return rest.Message{Message: "The offsets for this connector have been altered successfully"}, nil
	}
	var pos []offsetstore.PartitionOffset
	for _, o := range offsets.Offsets {
		pos = append(pos, offsetstore.PartitionOffset{Partition: o.Partition, Offset: o.Offset})
	}
	if err := h.offsets.Put(ctx, name, pos); err != nil {
		return rest.Message{}, err
	}
	return rest.Message{Message: "The offsets for this connector have been altered successfully"}, nil
}

func topicsSet(topics []string) kadm.TopicsSet {
	s := kadm.TopicsSet{}
	for _, t := range topics {
		s.Add(t)
	}
	return s
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int:
		return int64(n), true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

func (h *Herder) ResetConnectorOffsets(ctx context.Context, name string) (rest.Message, error) {
	cfg, err := h.requireStopped(ctx, name)
	if err != nil {
		return rest.Message{}, err
	}
	if h.typeOf(cfg["connector.class"]) == rest.TypeSink {
		if resp, err := h.admin.DeleteGroup(ctx, "connect-"+name); err != nil || (resp.Err != nil && !strings.Contains(resp.Err.Error(), "GROUP_ID_NOT_FOUND")) {
			if err == nil {
				err = resp.Err
			}
			return rest.Message{}, fmt.Errorf("deleting the sink connector's consumer group: %w", err)
		}
		return rest.Message{Message: "The offsets for this connector have been reset successfully"}, nil
	}
	if err := h.offsets.ReadToEnd(ctx); err != nil {
		return rest.Message{}, err
	}
	if err := h.offsets.Reset(ctx, name, nil); err != nil {
		return rest.Message{}, err
	}
	return rest.Message{Message: "The offsets for this connector have been reset successfully"}, nil
}

func (h *Herder) Plugins(_ context.Context, connectorsOnly bool) ([]rest.PluginInfo, error) {
	var out []rest.PluginInfo
	for _, c := range h.registry.Classes() {
		typ := "source"
		if c.Type == pluginpb.ConnectorType_CONNECTOR_TYPE_SINK {
			typ = "sink"
		}
		out = append(out, rest.PluginInfo{Class: c.Class, Type: typ, Version: c.Version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Class < out[j].Class })
	if connectorsOnly {
		return out, nil
	}
	for _, name := range []string{"org.apache.kafka.connect.json.JsonConverter", "org.apache.kafka.connect.storage.StringConverter", "org.apache.kafka.connect.converters.ByteArrayConverter"} {
		out = append(out, rest.PluginInfo{Class: name, Type: "converter"})
	}
	for _, name := range transforms.KnownTransformations() {
		out = append(out, rest.PluginInfo{Class: name, Type: "transformation"})
	}
	for _, name := range transforms.KnownPredicates() {
		out = append(out, rest.PluginInfo{Class: name, Type: "predicate"})
	}
	return out, nil
}

func (h *Herder) PluginConfig(_ context.Context, plugin string) ([]connect.ConfigKeyInfo, error) {
	c, ok := h.registry.Class(plugin)
	if !ok {
		return nil, rest.NotFound("Unknown plugin %s.", plugin)
	}
	return keyInfos(c)
}

func (h *Herder) ValidateConfig(ctx context.Context, _ string, config map[string]string) (connect.ConfigInfos, error) {
	return h.validate(ctx, config)
}
