package connect

import (
	"context"
	"maps"
)

// Context contracts, for every method below: ctx is cancelled when the
// worker gives up on the call (the task or connector is stopping, its
// deadline passed, or the worker shuts down). A method must return promptly
// once ctx is done; work it did not finish is retried or abandoned by the
// worker, never silently acknowledged. Methods of one connector or task
// instance are never called concurrently, except Stop, which may be called
// while Poll or Put is blocked (ctx of that call is cancelled first).

// Connector is the part shared by source and sink connectors: it validates
// and holds the connector config and splits the work into task configs.
type Connector interface {
	// Version is the plugin's version, shown by GET /connector-plugins.
	Version() string
	// ConfigDef declares the connector's keys. The worker validates every
	// config against it (PUT .../config/validate, POST /connectors) before
	// Start is called, and renders /connector-plugins/{p}/config from it.
	ConfigDef() *ConfigDef
	// Validate checks what ConfigDef cannot: rules across keys and, where
	// cheap, whether the target is reachable with the given credentials. It
	// returns error messages per key ("" for the config as a whole); the
	// worker merges them with ConfigDef's. config holds every key the user
	// gave, secrets resolved.
	Validate(ctx context.Context, config map[string]string) (map[string][]string, error)
	// Start starts the connector with a validated config.
	Start(ctx context.Context, cc ConnectorContext, config map[string]string) error
	// TaskConfigs splits the work into at most maxTasks task configs.
	TaskConfigs(ctx context.Context, maxTasks int) ([]map[string]string, error)
	// Stop releases what Start acquired. Called once, after Start succeeded.
	Stop(ctx context.Context) error
}

// ConnectorContext lets a running connector talk to the worker.
type ConnectorContext interface {
	// RequestTaskReconfiguration asks the worker to call TaskConfigs again
	// (the set of tables changed, say) and restart the tasks whose config
	// changed.
	RequestTaskReconfiguration()
	// RaiseError fails the connector with err.
	RaiseError(err error)
}

// SourceConnector is a connector that reads from an external system.
type SourceConnector interface {
	Connector
	// NewTask returns a new, unstarted task.
	NewTask() SourceTask
}

// SinkConnector is a connector that writes to an external system.
type SinkConnector interface {
	Connector
	// NewTask returns a new, unstarted task.
	NewTask() SinkTask
}

// PartitionOffset is a source partition and the offset stored for it.
type PartitionOffset struct {
	Partition map[string]any
	Offset    map[string]any
}

// SourceTaskContext gives a source task the offsets stored for it.
type SourceTaskContext interface {
	// Offsets returns the stored offsets of the given source partitions
	// (a partition without a stored offset is absent from the result).
	Offsets(ctx context.Context, partitions []map[string]any) ([]PartitionOffset, error)
}

// SourceTask reads records from a part of an external system.
type SourceTask interface {
	// Start begins reading, from the offsets tc returns (or the beginning).
	Start(ctx context.Context, tc SourceTaskContext, config map[string]string) error
	// Poll returns the next records, waiting a short while (about a second
	// at most) when there are none: an empty batch is fine. ctx is cancelled
	// when the task stops.
	Poll(ctx context.Context) ([]SourceRecord, error)
	// Commit tells the task that the broker acknowledged records and the
	// worker stored their offsets: the latest offset of each source
	// partition. A source that must acknowledge (a replication slot's
	// flushed LSN, XACK of a Redis stream) does it here, never earlier.
	Commit(ctx context.Context, committed []PartitionOffset) error
	// Stop releases what Start acquired. Called once.
	Stop(ctx context.Context) error
}

// SinkTaskContext lets a sink task steer its consumer.
type SinkTaskContext interface {
	// Assignment returns the partitions the task currently owns.
	Assignment() []TopicPartition
	// Pause stops delivering records of the partitions; Resume restarts it.
	Pause(partitions ...TopicPartition)
	Resume(partitions ...TopicPartition)
	// Rewind makes the consumer read a partition again from offset.
	Rewind(tp TopicPartition, offset int64)
	// RequestCommit asks for a Flush and offset commit soon.
	RequestCommit()
}

// ErrantRecordReporter is implemented by the SinkTaskContext the worker
// gives a sink task (Kafka Connect's KIP-610). During Put, a task that
// cannot write one record (a value the target refuses, a record without
// the key its mode needs) calls Report with it and the cause, and goes on
// with the others: with errors.tolerance=all the record goes to the dead
// letter queue (errors.deadletterqueue.topic.name) with the cause in its
// __connect.errors.* headers, and Report returns nil; otherwise Report
// returns an error the task must fail Put with. rec must be one of the
// records of the current Put.
//
//	if r, ok := tc.(connect.ErrantRecordReporter); ok {
//		if err := r.Report(&recs[i], cause); err != nil {
//			return err
//		}
//		continue
//	}
//	return cause
type ErrantRecordReporter interface {
	Report(rec *SinkRecord, cause error) error
}

// SinkTask writes records to a part of an external system.
type SinkTask interface {
	// Start prepares the task (connections, prepared statements).
	Start(ctx context.Context, tc SinkTaskContext, config map[string]string) error
	// Open is called when partitions are assigned to the task; Close when
	// they are taken away (after a final Flush of their records).
	Open(ctx context.Context, partitions []TopicPartition) error
	Close(ctx context.Context, partitions []TopicPartition) error
	// Put hands over a batch of records. It may write them at once or
	// buffer them until Flush.
	Put(ctx context.Context, records []SinkRecord) error
	// Flush must make every record Put so far durable in the target: the
	// worker commits the consumer offsets given here only after Flush
	// returned nil. offsets are the next offsets to read per partition.
	Flush(ctx context.Context, offsets map[TopicPartition]int64) error
	// Stop releases what Start acquired. Called once.
	Stop(ctx context.Context) error
}

// Metric is one gauge a task exports, such as a replication slot's lag.
// Name is a Prometheus metric name suffix (lowercase, [a-z0-9_]); the worker
// exports it as tributary_connector_task_<name> with the connector and task
// labels, next to the metrics it keeps itself.
type Metric struct {
	Name  string
	Help  string
	Value float64
}

// MetricsReporter is implemented by source and sink tasks that export
// gauges of their own. The worker calls Metrics when /metrics is scraped,
// possibly concurrently with Poll or Put: it must be cheap and safe to call
// from another goroutine (return values cached by the task's own loop).
type MetricsReporter interface {
	Metrics() []Metric
}

// TaskConfigsOf returns n task configs (at least one), each its own copy of
// config: what TaskConfigs returns for a connector whose tasks all get the
// connector's config (a sink's tasks share the topic partitions the worker
// spreads over them; a source with a single reader asks for one).
func TaskConfigsOf(config map[string]string, n int) []map[string]string {
	out := make([]map[string]string, max(n, 1))
	for i := range out {
		out[i] = maps.Clone(config)
		if out[i] == nil {
			out[i] = map[string]string{}
		}
	}
	return out
}
