package connect

import "time"

// Header is one record header, with an optional schema (nil: schemaless).
type Header struct {
	Key    string
	Schema *Schema
	Value  any
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Record is the part common to source and sink records (Kafka Connect's
// ConnectRecord).
type Record struct {
	Topic       string
	Partition   *int32 // nil: let the producer's partitioner choose (source records)
	KeySchema   *Schema
	Key         any
	ValueSchema *Schema
	Value       any       // nil with a nil or optional ValueSchema: a tombstone
	Timestamp   time.Time // zero: none (the broker's time or the producer's clock applies)
	Headers     []Header
}

// SourceRecord is a record a source task produced. SourcePartition names the
// part of the source it came from (a file, a table, a slot) and SourceOffset
// is the position after it there; the worker stores the offset once the
// broker acknowledged the record, and gives it back to the task at start.
// Both are maps of JSON-compatible values (string, bool, float64 or int64,
// nested maps and slices) so that they serialize exactly.
//
// The worker stores offsets per Poll batch, once every record of the batch
// is acknowledged: only the last record of each source partition in a
// batch needs a SourceOffset; earlier ones may leave it nil (a connector
// producing many records per poll saves a map per record). Reusing one
// SourcePartition map for every record of a partition is cheaper too.
type SourceRecord struct {
	Record
	SourcePartition map[string]any
	SourceOffset    map[string]any
}

// TimestampType tells where a sink record's timestamp comes from.
type TimestampType int8

// Timestamp types, as Kafka numbers them.
const (
	NoTimestampType TimestampType = -1
	CreateTime      TimestampType = 0
	LogAppendTime   TimestampType = 1
)

// SinkRecord is a record a sink task receives: a Record plus where it was
// read from.
type SinkRecord struct {
	Record
	KafkaPartition int32
	KafkaOffset    int64
	TimestampType  TimestampType
}

// Tombstone reports whether the record is a delete marker (null value).
func (r *Record) Tombstone() bool { return r.Value == nil }
