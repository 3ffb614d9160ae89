package cdc

// Records, in Debezium's envelope (format version 1).
//
// Topic: <topic.prefix>.<schema>.<table> (characters Kafka does not allow
// in topic names become '_').
//
// Key: a struct named <prefix>.<schema>.<table>.Key of the table's key
// columns, in table column order: the primary key, or the REPLICA IDENTITY
// USING INDEX columns; a null key (and no tombstones) for a table with
// neither.
//
// Value: a struct named <prefix>.<schema>.<table>.Envelope:
//
//	before  optional <prefix>.<schema>.<table>.Value: the row before an
//	        update or delete. With the default REPLICA IDENTITY it is null for
//	        updates and holds only the key columns for deletes (other NOT NULL
//	        columns get Debezium's fallback zero values); with REPLICA
//	        IDENTITY FULL it is the whole old row.
//	after   optional <..>.Value: the row after an insert, update or snapshot read
//	source  io.debezium.connector.postgresql.Source:
//	          version, connector "postgresql", name (topic.prefix), ts_ms
//	          (commit time; snapshot start for snapshot records),
//	          snapshot ("true", "last" on the final snapshot record, "false"),
//	          db, sequence (JSON array ["<previous commit LSN>","<LSN>"]),
//	          schema, table, txId, lsn, xmin (always null)
//	op      "r" snapshot read, "c" insert, "u" update, "d" delete, "t" truncate
//	ts_ms   when the connector produced the event
//
// Value fields are the table's columns (column.include/exclude.list
// apply), optional unless NOT NULL, typed as types.go maps them.
//
// A delete is followed by a tombstone (the key, null value and schema)
// when tombstones.on.delete is true. An update that changes the key is
// emitted as Debezium does: a delete of the old key (with a tombstone)
// then a create of the new one, with __debezium.newkey/__debezium.oldkey
// headers. A truncate emits one record per truncated table with a null key
// and only source, op "t" and ts_ms. An UPDATE that leaves a TOASTed value
// unchanged does not carry it: unless REPLICA IDENTITY FULL supplies it
// from the old row, the field holds unavailable.value.placeholder (see
// placeholder in types.go).
//
// Heartbeats (heartbeat.interval.ms > 0) go to
// <topic.heartbeat.prefix>.<topic.prefix>: key
// io.debezium.connector.common.ServerNameKey {serverName}, value
// io.debezium.connector.common.Heartbeat {ts_ms}.

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

const (
	sourceSchemaName = "io.debezium.connector.postgresql.Source"
	connectorName    = "postgresql"
	heartbeatKeyName = "io.debezium.connector.common.ServerNameKey"
	heartbeatValName = "io.debezium.connector.common.Heartbeat"
	headerNewKey     = "__debezium.newkey"
	headerOldKey     = "__debezium.oldkey"
)

// sourceSchema is the source block's schema.
func sourceSchema() *connect.Schema {
	snap := &connect.Schema{Type: connect.String, Optional: true, Name: nameEnum, Version: version1(),
		Parameters: map[string]string{enumAllowedParam: "true,last,false,incremental"}, Default: "false"}
	return connect.StructOf(sourceSchemaName,
		connect.F("version", connect.StringSchema),
		connect.F("connector", connect.StringSchema),
		connect.F("name", connect.StringSchema),
		connect.F("ts_ms", connect.Int64Schema),
		connect.F("snapshot", snap),
		connect.F("db", connect.StringSchema),
		connect.F("sequence", connect.OptionalStringSchema),
		connect.F("schema", connect.StringSchema),
		connect.F("table", connect.StringSchema),
		connect.F("txId", connect.OptionalInt64Schema),
		connect.F("lsn", connect.OptionalInt64Schema),
		connect.F("xmin", connect.OptionalInt64Schema),
	)
}

// topicName sanitizes a topic name as Debezium does.
func topicName(parts ...string) string {
	s := strings.Join(parts, ".")
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// column is one column of a captured table, in tuple order.
type column struct {
	name     string
	typ      colType
	optional bool
	inValue  bool
	key      bool
}

// table is a captured table's shape (from a RELATION message or the
// catalog) and its schemas.
type table struct {
	oid          uint32
	schema, name string
	topic        string
	replIdent    byte
	cols         []column
	keyCols      []int // indices into cols, in column order
	keySchema    *connect.Schema
	valueSchema  *connect.Schema
	envSchema    *connect.Schema
	nullWarned   bool
	excluded     bool // a relation the filters leave out
}

// columnDef is what building a table needs to know about a column.
type columnDef struct {
	name    string
	oid     uint32
	typmod  int32
	notNull bool
	key     bool
}

// newTable builds a table and its schemas. The same inputs give equal
// schemas, so snapshot and stream records of a table share them. source
// is the source block's schema (sourceInfo.schema): the envelope's source
// field takes that very schema, so that putting a source block checks it
// by identity rather than field by field.
func newTable(prefix string, source *connect.Schema, oid uint32, schema, name string, replIdent byte, defs []columnDef, tc *typeCatalog, f *filter) *table {
	tb := &table{oid: oid, schema: schema, name: name, replIdent: replIdent, topic: topicName(prefix, schema, name)}
	base := prefix + "." + schema + "." + name
	var valueFields, keyFields []connect.Field
	for i, d := range defs {
		c := column{name: d.name, typ: tc.mapType(d.oid, d.typmod), optional: !d.notNull, key: d.key,
			inValue: f.column(schema, name, d.name)}
		if c.optional {
			c.typ = c.typ.asOptional()
		}
		tb.cols = append(tb.cols, c)
		fs := c.typ.schema
		if c.inValue {
			valueFields = append(valueFields, connect.F(c.name, fs))
		}
		if c.key {
			tb.keyCols = append(tb.keyCols, i)
			keyFields = append(keyFields, connect.F(c.name, c.typ.schema))
		}
	}
	tb.valueSchema = connect.StructOf(base+".Value", valueFields...)
	tb.valueSchema.Optional = true
	if len(keyFields) > 0 {
		tb.keySchema = connect.StructOf(base+".Key", keyFields...)
	}
	tb.envSchema = connect.StructOf(base+".Envelope",
		connect.F("before", tb.valueSchema),
		connect.F("after", tb.valueSchema),
		connect.F("source", source),
		connect.F("op", connect.StringSchema),
		connect.F("ts_ms", connect.OptionalInt64Schema),
	)
	return tb
}

// cell is one column value as received: kind 'n' null, 'u' unchanged
// TOAST, 't' text.
type cell struct {
	kind byte
	data []byte
}

// convError is a value the connector cannot convert: it fails the task.
type convError struct {
	table, column string
	err           error
}

func (e *convError) Error() string {
	return fmt.Sprintf("cannot convert column %q of table %s: %v. The task stops rather than skip the event: make the value convertible, "+
		"or leave the column out of events with column.exclude.list=%s (or the table with table.exclude.list), then restart the task",
		e.column, e.table, e.err, regexpQuote(e.table+"."+e.column))
}

// regexpQuote escapes the dots of a name for the include/exclude lists.
func regexpQuote(s string) string { return strings.ReplaceAll(s, ".", `\.`) }

func (e *convError) Unwrap() error { return e.err }

// values converts a tuple into vals (one per column; nil for null). old,
// when given, supplies unchanged TOAST values. A required column without a
// value gets its fallback zero.
func (tb *table) values(cells, old []cell, vals []any, ph string, keyOnly bool) error {
	for i := range tb.cols {
		c := &tb.cols[i]
		if !c.inValue && !c.key {
			vals[i] = nil
			continue
		}
		var v any
		var err error
		var ce cell
		if i < len(cells) {
			ce = cells[i]
		} else {
			ce.kind = 'n'
		}
		switch ce.kind {
		case 't':
			v, err = c.typ.conv(ce.data)
		case 'u':
			if old != nil && i < len(old) && old[i].kind == 't' {
				v, err = c.typ.conv(old[i].data)
				break
			}
			var ok bool
			if v, ok = placeholder(c.typ.kind, ph); !ok {
				err = fmt.Errorf("its unchanged TOAST value was not sent and type %s has no placeholder: set REPLICA IDENTITY FULL on the table (ALTER TABLE %s REPLICA IDENTITY FULL) so that PostgreSQL sends the old value", c.typ.schema, tb.qualified())
			}
		case 'n':
			if !c.optional {
				v = c.typ.zero
				if !keyOnly && !tb.nullWarned {
					tb.nullWarned = true
					slog.Warn("postgres cdc: NULL in a NOT NULL column (the row predates a constraint change); emitting the type's zero value", "table", tb.qualified(), "column", c.name)
				}
			}
		default:
			err = fmt.Errorf("unexpected tuple data kind %q (binary transfer is not requested)", ce.kind)
		}
		if err != nil {
			return &convError{table: tb.qualified(), column: c.name, err: err}
		}
		vals[i] = v
	}
	return nil
}

func (tb *table) qualified() string { return tb.schema + "." + tb.name }

// valueStruct builds the Value struct from converted values.
func (tb *table) valueStruct(vals []any) (*connect.Struct, error) {
	st := connect.NewStruct(tb.valueSchema)
	for i := range tb.cols {
		c := &tb.cols[i]
		if !c.inValue || vals[i] == nil {
			continue
		}
		if _, err := st.Put(c.name, vals[i]); err != nil {
			return nil, &convError{table: tb.qualified(), column: c.name, err: err}
		}
	}
	return st, nil
}

// keyStruct builds the Key struct (nil without key columns).
func (tb *table) keyStruct(vals []any) (*connect.Struct, error) {
	if tb.keySchema == nil {
		return nil, nil
	}
	st := connect.NewStruct(tb.keySchema)
	for _, i := range tb.keyCols {
		c := &tb.cols[i]
		v := vals[i]
		if v == nil {
			v = c.typ.zero
		}
		if _, err := st.Put(c.name, v); err != nil {
			return nil, &convError{table: tb.qualified(), column: c.name, err: err}
		}
	}
	return st, nil
}

// sameKey reports whether two tuples carry the same key column text.
func (tb *table) sameKey(a, b []cell) bool {
	for _, i := range tb.keyCols {
		if i >= len(a) || i >= len(b) {
			return false
		}
		if a[i].kind == 'u' || b[i].kind == 'u' {
			continue
		}
		if a[i].kind != b[i].kind || string(a[i].data) != string(b[i].data) {
			return false
		}
	}
	return true
}

// envelope builds the value struct of an event.
func (tb *table) envelope(op string, before, after, source *connect.Struct, tsMs int64) *connect.Struct {
	env := connect.NewStruct(tb.envSchema)
	if before != nil {
		env.MustPut("before", before)
	}
	if after != nil {
		env.MustPut("after", after)
	}
	env.MustPut("source", source)
	env.MustPut("op", op)
	env.MustPut("ts_ms", tsMs)
	return env
}

// sourceInfo is what the source block of the records of one transaction
// (or one snapshot table) shares.
type sourceInfo struct {
	schema  *connect.Schema
	version string
	prefix  string
	db      string
}

func (si *sourceInfo) build(tb *table, snapshot string, tsMs int64, xid int64, lsn uint64, sequence string) *connect.Struct {
	st := connect.NewStruct(si.schema)
	st.MustPut("version", si.version)
	st.MustPut("connector", connectorName)
	st.MustPut("name", si.prefix)
	st.MustPut("ts_ms", tsMs)
	st.MustPut("snapshot", snapshot)
	st.MustPut("db", si.db)
	if sequence != "" {
		st.MustPut("sequence", sequence)
	}
	st.MustPut("schema", tb.schema)
	st.MustPut("table", tb.name)
	if xid >= 0 {
		st.MustPut("txId", xid)
	}
	st.MustPut("lsn", int64(lsn))
	return st
}

// sequence renders Debezium's source.sequence: ["<prev commit>","<lsn>"].
func sequence(prevCommit, lsn uint64) string {
	b := make([]byte, 0, 48)
	b = append(b, '[')
	if prevCommit == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = strconv.AppendUint(b, prevCommit, 10)
		b = append(b, '"')
	}
	b = append(b, ',', '"')
	b = strconv.AppendUint(b, lsn, 10)
	b = append(b, '"', ']')
	return string(b)
}

// heartbeat schemas and record.
type heartbeat struct {
	topic     string
	keySchema *connect.Schema
	valSchema *connect.Schema
	key       *connect.Struct
}

func newHeartbeat(topicPrefix, prefix string) *heartbeat {
	h := &heartbeat{topic: topicName(topicPrefix, prefix)}
	h.keySchema = connect.StructOf(heartbeatKeyName, connect.F("serverName", connect.StringSchema))
	h.valSchema = connect.StructOf(heartbeatValName, connect.F("ts_ms", connect.Int64Schema))
	h.key = connect.NewStruct(h.keySchema).MustPut("serverName", prefix)
	return h
}

func (h *heartbeat) record(partition map[string]any, offset map[string]any, tsMs int64) connect.SourceRecord {
	return connect.SourceRecord{
		Record: connect.Record{Topic: h.topic, KeySchema: h.keySchema, Key: h.key, ValueSchema: h.valSchema,
			Value: connect.NewStruct(h.valSchema).MustPut("ts_ms", tsMs)},
		SourcePartition: partition,
		SourceOffset:    offset,
	}
}
