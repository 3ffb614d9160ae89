package rest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tributary-data/tributary/connect"
)

// fakeHerder is an in-memory Herder: connectors in maps, deterministic
// answers. It stands in for the worker at this unit level only.
type fakeHerder struct {
	mu          sync.Mutex
	notReady    error
	rebalancing bool
	// redirect, when set, makes config writes answer a Redirect to it
	// (a follower whose leader is at that URL; "-" for no known leader).
	redirect    string
	taskConfigs map[string][]map[string]string // PutTaskConfigs calls
	conns       map[string]*fakeConn
	calls       []string // herder methods called, for assertions
}

type fakeConn struct {
	config  map[string]string
	state   string // RUNNING, PAUSED, STOPPED
	tasks   []TaskState
	topics  []string
	offsets []ConnectorOffset
}

const fakeWorker = "worker-1:8083"

func newFakeHerder() *fakeHerder {
	h := &fakeHerder{conns: map[string]*fakeConn{}}
	h.conns["file-source"] = &fakeConn{
		config: map[string]string{
			"name": "file-source", "connector.class": "FileStreamSource",
			"tasks.max": "2", "file": "/tmp/in.txt", "topic": "lines",
		},
		state: StateRunning,
		tasks: []TaskState{
			{ID: 0, State: StateRunning, WorkerID: fakeWorker},
			{ID: 1, State: StateFailed, WorkerID: fakeWorker, Trace: "java.lang.RuntimeException: boom\n\tat Task.poll"},
		},
		topics: []string{"lines"},
		offsets: []ConnectorOffset{{
			Partition: map[string]any{"filename": "/tmp/in.txt"},
			Offset:    map[string]any{"position": 1024},
		}},
	}
	h.conns["pg-sink"] = &fakeConn{
		config: map[string]string{
			"name": "pg-sink", "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
			"tasks.max": "1", "topics": "orders", "connection.url": "jdbc:postgresql://db/shop",
			"connection.password": "s3cret",
		},
		state:  StateStopped,
		topics: []string{"orders"},
		offsets: []ConnectorOffset{{
			Partition: map[string]any{"kafka_topic": "orders", "kafka_partition": 0},
			Offset:    map[string]any{"kafka_offset": 42},
		}},
	}
	return h
}

func (h *fakeHerder) record(call string) { h.calls = append(h.calls, call) }

// special names: "panic" panics, "boom" fails with an unmapped error.
func (h *fakeHerder) get(name string) (*fakeConn, error) {
	switch name {
	case "panic":
		panic("fake herder panic")
	case "boom":
		return nil, errors.New("herder exploded")
	}
	c, ok := h.conns[name]
	if !ok {
		return nil, NotFound("Connector %s not found", name)
	}
	return c, nil
}

func connType(class string) ConnectorType {
	if strings.Contains(class, "Sink") {
		return TypeSink
	}
	return TypeSource
}

// masked returns the config with password keys masked, as the real herder
// does from the plugin's ConfigDef.
func masked(cfg map[string]string) map[string]string {
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		if strings.HasSuffix(k, "password") {
			v = "[hidden]"
		}
		out[k] = v
	}
	return out
}

func (h *fakeHerder) info(name string, c *fakeConn) ConnectorInfo {
	info := ConnectorInfo{Name: name, Config: masked(c.config), Type: connType(c.config["connector.class"])}
	if c.state != StateStopped {
		for _, t := range c.tasks {
			info.Tasks = append(info.Tasks, ConnectorTaskID{Connector: name, Task: t.ID})
		}
	}
	return info
}

func (h *fakeHerder) status(name string, c *fakeConn) ConnectorStateInfo {
	st := ConnectorStateInfo{
		Name:      name,
		Connector: ConnectorState{State: c.state, WorkerID: fakeWorker},
		Type:      connType(c.config["connector.class"]),
	}
	if c.state != StateStopped {
		st.Tasks = append(st.Tasks, c.tasks...)
	}
	return st
}

func (h *fakeHerder) ServerInfo(ctx context.Context) (ServerInfo, error) {
	return ServerInfo{Version: "0.1.0", Commit: "abc123", KafkaClusterID: "tributary-cluster-1"}, nil
}

func (h *fakeHerder) Ready(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notReady
}

func (h *fakeHerder) Connectors(ctx context.Context) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for n := range h.conns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (h *fakeHerder) ConnectorInfo(ctx context.Context, name string) (ConnectorInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return ConnectorInfo{}, err
	}
	return h.info(name, c), nil
}

func (h *fakeHerder) ConnectorStatus(ctx context.Context, name string) (ConnectorStateInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return ConnectorStateInfo{}, NotFound("No status found for connector %s", name)
	}
	return h.status(name, c), nil
}

func (h *fakeHerder) newConn(name string, config map[string]string, state string) (*fakeConn, error) {
	if _, ok := config["connector.class"]; !ok {
		return nil, BadRequest("Connector config %s contains no connector type", javaMapString(config))
	}
	n, err := strconv.Atoi(config["tasks.max"])
	if err != nil || n < 1 {
		n = 1
	}
	c := &fakeConn{config: config, state: state}
	for i := 0; i < n; i++ {
		c.tasks = append(c.tasks, TaskState{ID: i, State: StateRunning, WorkerID: fakeWorker})
	}
	return c, nil
}

func (h *fakeHerder) CreateConnector(ctx context.Context, name string, config map[string]string, initialState string) (ConnectorInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("CreateConnector " + name + " " + initialState)
	if err := h.leaderOnly(); err != nil {
		return ConnectorInfo{}, err
	}
	if h.rebalancing {
		return ConnectorInfo{}, RebalanceInProgress()
	}
	if _, ok := h.conns[name]; ok {
		return ConnectorInfo{}, Conflict("Connector %s already exists", name)
	}
	if initialState == "" {
		initialState = StateRunning
	}
	c, err := h.newConn(name, config, initialState)
	if err != nil {
		return ConnectorInfo{}, err
	}
	h.conns[name] = c
	return h.info(name, c), nil
}

func (h *fakeHerder) PutConnectorConfig(ctx context.Context, name string, config map[string]string) (ConnectorInfo, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.leaderOnly(); err != nil {
		return ConnectorInfo{}, false, err
	}
	if old, ok := h.conns[name]; ok {
		old.config = config
		return h.info(name, old), false, nil
	}
	c, err := h.newConn(name, config, StateRunning)
	if err != nil {
		return ConnectorInfo{}, false, err
	}
	h.conns[name] = c
	return h.info(name, c), true, nil
}

func (h *fakeHerder) PatchConnectorConfig(ctx context.Context, name string, patch map[string]*string) (ConnectorInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return ConnectorInfo{}, err
	}
	for k, v := range patch {
		if v == nil {
			delete(c.config, k)
		} else {
			c.config[k] = *v
		}
	}
	return h.info(name, c), nil
}

// leaderOnly answers as a follower would when redirect is set.
func (h *fakeHerder) leaderOnly() error {
	switch h.redirect {
	case "":
		return nil
	case "-":
		return NotLeader("", "Request cannot be completed because this worker is not the leader")
	}
	return NotLeader(h.redirect, "Request cannot be completed because this worker is not the leader")
}

func (h *fakeHerder) PutTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.leaderOnly(); err != nil {
		return err
	}
	if _, err := h.get(name); err != nil {
		return err
	}
	if h.taskConfigs == nil {
		h.taskConfigs = map[string][]map[string]string{}
	}
	h.taskConfigs[name] = tasks
	return nil
}

func (h *fakeHerder) DeleteConnector(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.leaderOnly(); err != nil {
		return err
	}
	if _, err := h.get(name); err != nil {
		return err
	}
	delete(h.conns, name)
	return nil
}

func (h *fakeHerder) RestartConnector(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("RestartConnector " + name)
	_, err := h.get(name)
	return err
}

func (h *fakeHerder) RestartConnectorAndTasks(ctx context.Context, name string, includeTasks, onlyFailed bool) (ConnectorStateInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record(fmt.Sprintf("RestartConnectorAndTasks %s %t %t", name, includeTasks, onlyFailed))
	c, err := h.get(name)
	if err != nil {
		return ConnectorStateInfo{}, err
	}
	st := h.status(name, c)
	if !onlyFailed || st.Connector.State == StateFailed {
		st.Connector.State = StateRestarting
	}
	if includeTasks {
		for i := range st.Tasks {
			if !onlyFailed || st.Tasks[i].State == StateFailed {
				st.Tasks[i].State = StateRestarting
				st.Tasks[i].Trace = ""
			}
		}
	}
	return st, nil
}

func (h *fakeHerder) setState(name, state string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return err
	}
	c.state = state
	return nil
}

func (h *fakeHerder) PauseConnector(ctx context.Context, name string) error {
	return h.setState(name, StatePaused)
}

func (h *fakeHerder) ResumeConnector(ctx context.Context, name string) error {
	return h.setState(name, StateRunning)
}

func (h *fakeHerder) StopConnector(ctx context.Context, name string) error {
	return h.setState(name, StateStopped)
}

func (h *fakeHerder) TaskConfigs(ctx context.Context, name string) ([]TaskInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return nil, err
	}
	var out []TaskInfo
	for _, t := range c.tasks {
		cfg := masked(c.config)
		cfg["task.id"] = strconv.Itoa(t.ID)
		out = append(out, TaskInfo{ID: ConnectorTaskID{Connector: name, Task: t.ID}, Config: cfg})
	}
	return out, nil
}

func (h *fakeHerder) TaskStatus(ctx context.Context, name string, task int) (TaskState, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err == nil && task >= 0 && task < len(c.tasks) {
		return c.tasks[task], nil
	}
	return TaskState{}, NotFound("No status found for task %s-%d", name, task)
}

func (h *fakeHerder) RestartTask(ctx context.Context, name string, task int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record(fmt.Sprintf("RestartTask %s %d", name, task))
	c, err := h.get(name)
	if err != nil {
		return err
	}
	if task < 0 || task >= len(c.tasks) {
		return NotFound("Task %s-%d not found", name, task)
	}
	return nil
}

func (h *fakeHerder) ConnectorTopics(ctx context.Context, name string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return nil, err
	}
	return c.topics, nil
}

func (h *fakeHerder) ResetConnectorTopics(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return err
	}
	c.topics = nil
	return nil
}

func (h *fakeHerder) ConnectorOffsets(ctx context.Context, name string) (ConnectorOffsets, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return ConnectorOffsets{}, err
	}
	return ConnectorOffsets{Offsets: c.offsets}, nil
}

func stoppedOnly(name string, c *fakeConn) error {
	if c.state != StateStopped {
		return BadRequest("Connectors must be in the STOPPED state before their offsets can be modified. "+
			"This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint", name)
	}
	return nil
}

func (h *fakeHerder) AlterConnectorOffsets(ctx context.Context, name string, offsets ConnectorOffsets) (Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return Message{}, err
	}
	if err := stoppedOnly(name, c); err != nil {
		return Message{}, err
	}
	c.offsets = offsets.Offsets
	return Message{Message: "The offsets for this connector have been altered successfully"}, nil
}

func (h *fakeHerder) ResetConnectorOffsets(ctx context.Context, name string) (Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.get(name)
	if err != nil {
		return Message{}, err
	}
	if err := stoppedOnly(name, c); err != nil {
		return Message{}, err
	}
	c.offsets = nil
	return Message{Message: "The offsets for this connector have been reset successfully"}, nil
}

var fakePlugins = []PluginInfo{
	{Class: "org.apache.kafka.connect.file.FileStreamSinkConnector", Type: "sink", Version: "0.1.0"},
	{Class: "org.apache.kafka.connect.file.FileStreamSourceConnector", Type: "source", Version: "0.1.0"},
	{Class: "org.apache.kafka.connect.json.JsonConverter", Type: "converter"},
}

func (h *fakeHerder) Plugins(ctx context.Context, connectorsOnly bool) ([]PluginInfo, error) {
	var out []PluginInfo
	for _, p := range fakePlugins {
		if connectorsOnly && p.Type != "sink" && p.Type != "source" {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func fileSourceDef() *connect.ConfigDef {
	return connect.NewConfigDef().
		Define(connect.ConfigKey{Name: "file", Type: connect.TypeString, Importance: connect.High, Doc: "Source filename."}).
		Define(connect.ConfigKey{Name: "topic", Type: connect.TypeString, Required: true, Importance: connect.High, Doc: "The topic to publish data to."}).
		Define(connect.ConfigKey{Name: "batch.size", Type: connect.TypeInt, Default: "2000", Importance: connect.Low, Doc: "The maximum number of records the source task can read from the file each time it is polled."})
}

func (h *fakeHerder) pluginDef(plugin string) (*connect.ConfigDef, error) {
	switch normalizedPluginName(plugin) {
	case "FileStreamSource", "org.apache.kafka.connect.file.FileStreamSource":
		return fileSourceDef(), nil
	}
	return nil, NotFound("Unknown plugin %s.", plugin)
}

func (h *fakeHerder) PluginConfig(ctx context.Context, plugin string) ([]connect.ConfigKeyInfo, error) {
	def, err := h.pluginDef(plugin)
	if err != nil {
		return nil, err
	}
	return def.Describe(), nil
}

func (h *fakeHerder) ValidateConfig(ctx context.Context, plugin string, config map[string]string) (connect.ConfigInfos, error) {
	def, err := h.pluginDef(plugin)
	if err != nil {
		return connect.ConfigInfos{}, err
	}
	return connect.NewConfigInfos(config["connector.class"], def.Groups(), def.ValidateAll(config)), nil
}

// clusterHerder adds cluster-scoped logger changes to the fake.
type clusterHerder struct {
	*fakeHerder
	set []string
}

func (c *clusterHerder) SetClusterLoggerLevel(ctx context.Context, name, level string) error {
	c.set = append(c.set, name+"="+level)
	return nil
}
