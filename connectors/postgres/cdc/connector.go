// Package cdc is the PostgreSQL change data capture source connector:
// logical replication with the pgoutput plugin, a consistent initial
// snapshot, and Debezium's config keys, topics, envelope and type mapping,
// so that Debezium PostgreSQL connector configs and consumers carry over.
//
// Files: config.go (config keys), validate.go (Validate), pg.go (catalog,
// publication, slot), snapshot.go (initial snapshot), stream.go
// (replication stream), envelope.go (the record format), offset.go (the
// offset format), types.go and pgtext.go (type mapping), task.go (the
// task's goroutines, Poll/Commit/Stop, metrics).
//
// Delivery is at-least-once and gap-free: the slot's confirmed flush LSN
// advances only in Commit, after the worker stored the offsets of records
// Kafka acknowledged; a restart resumes after the last stored offset
// (offset.go) and re-emits at most what came after it.
//
// Requirements on the server: wal_level=logical, a free replication slot
// and WAL sender, PostgreSQL 10+ (12+ for generated columns to be left out
// as pgoutput does; 14+ for pgoutput protocol 2 and heartbeat messages). The
// user needs REPLICATION (or superuser), SELECT on the captured tables for
// the snapshot, and to create the publication: superuser for all_tables,
// ownership of the tables for filtered.
//
// Known limitations: a filtered publication is brought in line with the
// filters at task start only (a table created later is captured after the
// next restart, and its earlier rows are not snapshotted); tables that
// become captured after the snapshot are not snapshotted (no incremental
// snapshots); nullability and key columns of streamed tables are read from
// the catalog when their RELATION message arrives (the catalog of now, not
// of the WAL position); an enum's "allowed" parameter follows new labels
// only from the table's next RELATION message; logical decoding messages
// other than the connector's heartbeats are not emitted as events; the row
// filters of a user-made publication (disabled mode) are not applied to
// the snapshot.
package cdc

import (
	"context"

	"github.com/tributary-data/tributary/connect"
)

// Class names: ours, and Debezium's connector this one replaces.
const (
	SourceClass   = "io.tributary.connect.postgres.PostgresCdcSourceConnector"
	DebeziumClass = "io.debezium.connector.postgresql.PostgresConnector"
	// Alias is the connector's short name.
	Alias   = "PostgresCdcSource"
	version = "1.0.0"
)

// Source is the PostgreSQL CDC source connector. It runs one task, as
// Debezium does: a replication slot has a single reader.
type Source struct{ config map[string]string }

// NewSource returns the connector.
func NewSource() connect.Connector { return &Source{} }

func (c *Source) Version() string               { return version }
func (c *Source) ConfigDef() *connect.ConfigDef { return configDef() }

// Validate checks the keys ConfigDef cannot (unsupported Debezium keys,
// keys that exclude each other) and, when they are fine, connects to the
// server to check credentials, wal_level, the REPLICATION attribute,
// SELECT privileges, the slot and the publication.
func (c *Source) Validate(ctx context.Context, config map[string]string) (map[string][]string, error) {
	return validate(ctx, config), nil
}

func (c *Source) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	c.config = config
	return nil
}

// TaskConfigs returns a single task config whatever tasks.max says.
func (c *Source) TaskConfigs(context.Context, int) ([]map[string]string, error) {
	return connect.TaskConfigsOf(c.config, 1), nil
}

func (c *Source) Stop(context.Context) error { return nil }

// NewTask returns a new, unstarted task.
func (c *Source) NewTask() connect.SourceTask { return &SourceTask{} }
