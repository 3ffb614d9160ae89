package rest

// Entities: the JSON bodies of the worker's REST API, shaped as Kafka
// Connect's entities of the same names (org.apache.kafka.connect.runtime.
// rest.entities): same field names, same field order, same null/omitted
// rules, so that existing tools parse them unchanged.
//
// The REST layer normalizes nil slices and maps to empty ones before
// encoding (Kafka never renders "tasks": null), see normalize* below.

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ServerInfo is the body of GET /.
type ServerInfo struct {
	Version        string `json:"version"`
	Commit         string `json:"commit"`
	KafkaClusterID string `json:"kafka_cluster_id"`
}

// WorkerStatus is the body of GET /health, as Kafka's WorkerStatus.
type WorkerStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// ConnectorType is "source", "sink" or "unknown", as Kafka renders it.
type ConnectorType string

// Connector types.
const (
	TypeSource  ConnectorType = "source"
	TypeSink    ConnectorType = "sink"
	TypeUnknown ConnectorType = "unknown"
)

// ConnectorTaskID names one task of a connector.
type ConnectorTaskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

// ConnectorInfo is the body of GET /connectors/{c}, POST /connectors and
// PUT/PATCH /connectors/{c}/config. Config values of PASSWORD keys must
// already be masked by the herder.
type ConnectorInfo struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []ConnectorTaskID `json:"tasks"`
	Type   ConnectorType     `json:"type"`
}

// Connector and task states, as Kafka Connect names them.
const (
	StateUnassigned = "UNASSIGNED"
	StateRunning    = "RUNNING"
	StatePaused     = "PAUSED"
	StateStopped    = "STOPPED"
	StateFailed     = "FAILED"
	StateRestarting = "RESTARTING"
)

// ConnectorState is the "connector" member of a ConnectorStateInfo. Trace
// is omitted when empty, as Kafka's @JsonInclude(NON_EMPTY).
type ConnectorState struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// TaskState is one task's status (GET /connectors/{c}/tasks/{t}/status and
// the "tasks" of a ConnectorStateInfo).
type TaskState struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// ConnectorStateInfo is the body of GET /connectors/{c}/status.
type ConnectorStateInfo struct {
	Name      string         `json:"name"`
	Connector ConnectorState `json:"connector"`
	Tasks     []TaskState    `json:"tasks"`
	Type      ConnectorType  `json:"type"`
}

// TaskInfo is one element of GET /connectors/{c}/tasks.
type TaskInfo struct {
	ID     ConnectorTaskID   `json:"id"`
	Config map[string]string `json:"config"`
}

// ConnectorOffset is one {partition, offset} pair. Numbers decoded from a
// request body are json.Number (exact); Offset is nil for "offset": null,
// which asks for the partition's offset to be reset.
type ConnectorOffset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// ConnectorOffsets is the body of GET and PATCH /connectors/{c}/offsets.
type ConnectorOffsets struct {
	Offsets []ConnectorOffset `json:"offsets"`
}

// Message is the body of PATCH and DELETE /connectors/{c}/offsets.
type Message struct {
	Message string `json:"message"`
}

// ErrorMessage is the body of every error response.
type ErrorMessage struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// PluginInfo is one element of GET /connector-plugins. Version is omitted
// when unknown, as Kafka omits its "undefined" version.
type PluginInfo struct {
	Class   string `json:"class"`
	Type    string `json:"type"`
	Version string `json:"version,omitempty"`
}

// LoggerLevel is a logger's level as GET /admin/loggers[/{name}] renders
// it. LastModified is milliseconds since the epoch of the last change made
// through the API, nil if none.
type LoggerLevel struct {
	Level        string `json:"level"`
	LastModified *int64 `json:"last_modified"`
}

// activeTopics is the value of GET /connectors/{c}/topics' only key.
type activeTopics struct {
	Topics []string `json:"topics"`
}

// createConnectorRequest is the body of POST /connectors.
type createConnectorRequest struct {
	Name         *string    `json:"name"`
	Config       *configMap `json:"config"`
	InitialState *string    `json:"initial_state"`
}

// configMap decodes a connector config as Jackson decodes a
// Map<String,String>: strings as they are, numbers by their literal text,
// booleans as "true"/"false". A null value is kept as a nil pointer (PATCH
// uses it to delete a key). Objects and arrays are rejected.
type configMap map[string]*string

// UnmarshalJSON implements json.Unmarshaler.
func (m *configMap) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*m = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(configMap, len(raw))
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0:
			return fmt.Errorf("empty value for key %q", k)
		case bytes.Equal(v, []byte("null")):
			out[k] = nil
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[k] = &s
		case v[0] == '{' || v[0] == '[':
			return &valueTypeError{msg: fmt.Sprintf("Cannot deserialize JSON %s for key %q: expected a string", tokenKind(v[0]), k)}
		default: // number, true, false: their literal text
			s := string(v)
			out[k] = &s
		}
	}
	*m = out
	return nil
}

// valueTypeError is a config value of the wrong JSON type; its text is the
// whole response message.
type valueTypeError struct{ msg string }

func (e *valueTypeError) Error() string { return e.msg }

func tokenKind(c byte) string {
	if c == '{' {
		return "object"
	}
	return "array"
}

// strings returns the map without null values.
func (m configMap) strings() map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func normalizeInfo(in ConnectorInfo) ConnectorInfo {
	if in.Config == nil {
		in.Config = map[string]string{}
	}
	if in.Tasks == nil {
		in.Tasks = []ConnectorTaskID{}
	}
	return in
}

func normalizeStatus(in ConnectorStateInfo) ConnectorStateInfo {
	if in.Tasks == nil {
		in.Tasks = []TaskState{}
	}
	return in
}

func normalizeOffsets(in ConnectorOffsets) ConnectorOffsets {
	if in.Offsets == nil {
		in.Offsets = []ConnectorOffset{}
	}
	return in
}
