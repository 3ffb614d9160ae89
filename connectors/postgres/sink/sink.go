// Package sink is Tributary's PostgreSQL sink connector (PostgresSink). It
// takes Confluent's JdbcSinkConnector config keys and semantics, for
// PostgreSQL URLs, and understands Debezium's change events so that a
// table captured by a CDC source is mirrored exactly.
//
// Writes: every Put is written in one transaction, committed before Put
// returns, so Flush has nothing left to do. Rows are loaded with COPY (see
// table.go and batch.go); per key, the records' order is kept. Upserts are
// idempotent: replaying a batch after a crash leaves the table unchanged.
// Transient failures (lost connection, server restart, deadlock) are
// retried max.retries times, retry.backoff.ms apart, on a fresh connection
// when the old one broke; after that, or at once for permanent errors
// (missing table, column or key, type mismatch, constraint violation),
// Put fails the task with a message saying what to change. With
// errors.tolerance=all, records whose values the database refuses (data
// exceptions, constraint violations) or that cannot become rows are found
// by bisecting the failed batch into smaller transactions and go to the
// dead letter queue (connect.ErrantRecordReporter); the others are written.
//
// Tables: table.name.format (default ${topic}) names the target; see
// tableFor for how a dotted name splits. auto.create creates missing tables
// from the record schemas (key columns first, PRIMARY KEY per pk.mode);
// auto.evolve adds columns for new optional fields. Types: see types.go.
package sink

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connectors/postgres/jdbcconf"
)

// Class names: ours, and the Confluent connector this one replaces.
const (
	SinkClass = "io.tributary.connect.postgres.PostgresSinkConnector"
	JDBCClass = "io.confluent.connect.jdbc.JdbcSinkConnector"
	version   = "1.0.0"
)

// Config keys.
const (
	keyInsertMode   = "insert.mode"
	keyBatchSize    = "batch.size"
	keyDelete       = "delete.enabled"
	keyTruncate     = "truncate.enabled"
	keyTableFormat  = "table.name.format"
	keyPKMode       = "pk.mode"
	keyPKFields     = "pk.fields"
	keyWhitelist    = "fields.whitelist"
	keyTimezone     = "db.timezone"
	keyTableTypes   = "table.types"
	keyAutoCreate   = "auto.create"
	keyAutoEvolve   = "auto.evolve"
	keyQuote        = "quote.sql.identifiers"
	keyMaxRetries   = "max.retries"
	keyRetryBackoff = "retry.backoff.ms"
)

const (
	pkNone        = "none"
	pkKafka       = "kafka"
	pkRecordKey   = "record_key"
	pkRecordValue = "record_value"
)

func configDef() *connect.ConfigDef {
	d := jdbcconf.DefineConnection(connect.NewConfigDef(), "connection.username")
	const writes, mapping, ddl, retries = "Writes", "Data Mapping", "DDL Support", "Retries"
	return d.
		Define(connect.ConfigKey{Name: keyInsertMode, Type: connect.TypeString, Default: "insert", Importance: connect.High, Group: writes, OrderInGroup: 1,
			Validator: connect.OneOfIgnoreCase("insert", "upsert", "update"),
			Doc:       "insert: plain INSERT (COPY); upsert: INSERT .. ON CONFLICT (key) DO UPDATE, idempotent, needs a primary key or unique index on the key columns; update: UPDATE rows by key, rows not found are skipped. CDC change events are always applied as upserts when the sink has a key (pk.mode other than none)."}).
		Define(connect.ConfigKey{Name: keyBatchSize, Type: connect.TypeInt, Default: "3000", Importance: connect.Medium, Group: writes, OrderInGroup: 2,
			Validator: connect.AtLeast(1), Doc: "The most rows loaded by one COPY and applied by one statement. All the records of one Put are written in one transaction whatever this is."}).
		Define(connect.ConfigKey{Name: keyDelete, Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: writes, OrderInGroup: 3,
			Doc: "Delete the row of a tombstone (null value) or of a CDC delete event (op d), by the record key. Needs pk.mode=record_key. When false, tombstones and CDC deletes are skipped."}).
		Define(connect.ConfigKey{Name: keyTruncate, Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: writes, OrderInGroup: 4,
			Doc: "TRUNCATE the target table on a CDC truncate event (op t), as Debezium's JDBC sink does. When false, truncate events are skipped."}).
		Define(connect.ConfigKey{Name: keyTableFormat, Type: connect.TypeString, Default: "${topic}", Importance: connect.Medium, Group: mapping, OrderInGroup: 1,
			Validator: connect.ValidatorFunc("a name with ${topic}", validFormat),
			Doc:       "The target table's name; ${topic} is replaced by the record's topic. A result with exactly one dot is schema.table; any other result is one table name in the public schema (a CDC topic prefix.schema.table gives the table \"prefix.schema.table\": use e.g. a RegexRouter transform to name mirror tables)."}).
		Define(connect.ConfigKey{Name: keyPKMode, Type: connect.TypeString, Default: pkNone, Importance: connect.High, Group: mapping, OrderInGroup: 2, Aliases: []string{"primary.key.mode"},
			Validator: connect.OneOfIgnoreCase(pkNone, pkKafka, pkRecordKey, pkRecordValue),
			Doc:       "Where the row's key comes from. none: no key; kafka: the record's topic, partition and offset; record_key: the record key (all fields of a struct key, or those in pk.fields; a single-value key needs one name in pk.fields); record_value: fields of the value (pk.fields, or all)."}).
		Define(connect.ConfigKey{Name: keyPKFields, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: mapping, OrderInGroup: 3, Aliases: []string{"primary.key.fields"},
			Doc: "The key column names, per pk.mode: kafka: three names for topic, partition and offset (default __connect_topic,__connect_partition,__connect_offset); record_key: the key fields to use (all when empty), or the column of a single-value key; record_value: the value fields forming the key (all when empty)."}).
		Define(connect.ConfigKey{Name: keyWhitelist, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: mapping, OrderInGroup: 4,
			Doc: "The value fields to write (all when empty). Key columns are written whatever this says."}).
		Define(connect.ConfigKey{Name: keyTimezone, Type: connect.TypeString, Default: "UTC", Importance: connect.Medium, Group: mapping, OrderInGroup: 5,
			Validator: connect.ValidatorFunc("an IANA time zone", validZone),
			Doc:       "The time zone in which Connect Timestamp values are written into timestamp (without time zone) columns."}).
		Define(connect.ConfigKey{Name: keyTableTypes, Type: connect.TypeList, Default: "TABLE", Importance: connect.Low, Group: mapping, OrderInGroup: 6,
			Validator: connect.ListOf(connect.OneOfIgnoreCase("TABLE", "VIEW", "PARTITIONED TABLE")),
			Doc:       "The kinds of relation the sink writes into: TABLE (and partitioned tables), VIEW (updatable views)."}).
		Define(connect.ConfigKey{Name: keyAutoCreate, Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: ddl, OrderInGroup: 1,
			Doc: "Create a missing target table from the record schemas (CREATE TABLE, primary key per pk.mode)."}).
		Define(connect.ConfigKey{Name: keyAutoEvolve, Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: ddl, OrderInGroup: 2,
			Doc: "Add columns for record fields the table lacks (ALTER TABLE ADD COLUMN). Only optional fields, or fields with a default, can be added."}).
		Define(jdbcconf.Restricted(keyQuote, ddl, 3, "always", "Identifiers are always quoted (case and special characters kept); only \"always\" is supported.", "always")).
		Define(connect.ConfigKey{Name: keyMaxRetries, Type: connect.TypeInt, Default: "10", Importance: connect.Medium, Group: retries, OrderInGroup: 1,
			Validator: connect.AtLeast(0), Doc: "How many times a write that failed with a transient error is retried before the task fails."}).
		Define(connect.ConfigKey{Name: keyRetryBackoff, Type: connect.TypeInt, Default: "3000", Importance: connect.Medium, Group: retries, OrderInGroup: 2,
			Validator: connect.AtLeast(0), Doc: "Wait between retries, in milliseconds."}).
		Define(connect.ConfigKey{Name: "db.timezone.date", Type: connect.TypeString, Default: "NONE", Importance: connect.Low, Group: mapping, OrderInGroup: 9,
			Validator: connect.OneOfIgnoreCase("NONE", "UTC"),
			Doc:       "Accepted for compatibility. Connect Date values are always written as their own (UTC) date, which is what UTC means here; NONE's shift of dates by db.timezone is not reproduced."}).
		Define(connect.ConfigKey{Name: "mssql.use.merge.holdlock", Type: connect.TypeBoolean, Default: "true", Importance: connect.Low, Group: writes, OrderInGroup: 5,
			Doc: "SQL Server only: has no meaning, and no effect, on PostgreSQL."}).
		Define(connect.ConfigKey{Name: "trim.sensitive.log", Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: retries, OrderInGroup: 3,
			Doc: "Accepted for compatibility: the sink never logs record values."}).
		Define(jdbcconf.Restricted("timestamp.precision.mode", mapping, 7, "microseconds", "Only microseconds (PostgreSQL's precision) is supported.", "microseconds")).
		Define(jdbcconf.Restricted("timestamp.fields.list", mapping, 8, "", "Not supported: timestamps are written from their Connect or Debezium types.", ""))
}

var placeholder = regexp.MustCompile(`\$\{[^}]*\}`)

func validFormat(_ string, v any) error {
	s, _ := v.(string)
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must not be empty")
	}
	for _, p := range placeholder.FindAllString(s, -1) {
		if p != "${topic}" {
			return fmt.Errorf("%s is not supported: only ${topic} is", p)
		}
	}
	return nil
}

func validZone(_ string, v any) error {
	s, _ := v.(string)
	if _, err := time.LoadLocation(s); err != nil || s == "" {
		return fmt.Errorf("unknown time zone")
	}
	return nil
}

// settings are a parsed sink config.
type settings struct {
	conn            jdbcconf.Settings
	tableFormat     string
	insertMode      writeMode
	pkMode          string
	pkFields        []string
	whitelist       map[string]bool // nil: every field
	deleteEnabled   bool
	truncateEnabled bool
	autoCreate      bool
	autoEvolve      bool
	views           bool
	batchSize       int
	maxRetries      int
	backoff         time.Duration
	loc             *time.Location
}

// parse parses and cross-checks a config; errors are per key.
func parse(config map[string]string) (*settings, map[string][]string) {
	c, errs := configDef().Parse(config)
	if errs == nil {
		errs = map[string][]string{}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s := &settings{
		tableFormat: c.String(keyTableFormat), pkMode: strings.ToLower(c.String(keyPKMode)), pkFields: c.List(keyPKFields),
		deleteEnabled: c.Bool(keyDelete), truncateEnabled: c.Bool(keyTruncate), autoCreate: c.Bool(keyAutoCreate),
		autoEvolve: c.Bool(keyAutoEvolve), batchSize: int(c.Int(keyBatchSize)), maxRetries: int(c.Int(keyMaxRetries)),
		backoff: time.Duration(c.Int(keyRetryBackoff)) * time.Millisecond,
	}
	s.loc, _ = time.LoadLocation(c.String(keyTimezone))
	switch strings.ToLower(c.String(keyInsertMode)) {
	case "upsert":
		s.insertMode = modeUpsert
	case "update":
		s.insertMode = modeUpdate
	}
	if wl := c.List(keyWhitelist); len(wl) > 0 {
		s.whitelist = map[string]bool{}
		for _, f := range wl {
			s.whitelist[f] = true
		}
	}
	for _, t := range c.List(keyTableTypes) {
		s.views = s.views || strings.EqualFold(t, "VIEW")
	}
	if s.deleteEnabled && s.pkMode != pkRecordKey {
		errs[keyDelete] = append(errs[keyDelete], "delete.enabled=true requires pk.mode=record_key: deletes find their row by the record key")
	}
	if s.insertMode != modeInsert && s.pkMode == pkNone {
		errs[keyPKMode] = append(errs[keyPKMode], fmt.Sprintf("insert.mode=%s needs key columns to find rows: set pk.mode to record_key, record_value or kafka", s.insertMode))
	}
	switch {
	case s.pkMode == pkKafka && len(s.pkFields) != 0 && len(s.pkFields) != 3:
		errs[keyPKFields] = append(errs[keyPKFields], "with pk.mode=kafka, pk.fields must name three columns (topic, partition, offset) or be empty")
	case s.pkMode == pkNone && len(s.pkFields) > 0:
		errs[keyPKFields] = append(errs[keyPKFields], "pk.fields is set but pk.mode=none uses no key: set pk.mode, or remove pk.fields")
	}
	conn, cerrs := jdbcconf.FromConfig(c)
	for k, m := range cerrs {
		errs[k] = append(errs[k], m...)
	}
	s.conn = conn
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// Sink is the PostgreSQL sink connector.
type Sink struct{ config map[string]string }

// NewSink returns a PostgreSQL sink connector.
func NewSink() connect.Connector { return &Sink{} }

func (s *Sink) Version() string               { return version }
func (s *Sink) ConfigDef() *connect.ConfigDef { return configDef() }

// Validate checks the rules across keys and that the database answers
// (within 10 s) with the given credentials.
func (s *Sink) Validate(ctx context.Context, config map[string]string) (map[string][]string, error) {
	st, errs := parse(config)
	if len(errs) > 0 {
		return errs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs := st.conn
	cs.Attempts = 1
	conn, err := cs.Connect(ctx)
	if err != nil {
		return map[string][]string{jdbcconf.URLKey: {err.Error()}}, nil
	}
	conn.Close(ctx)
	return nil, nil
}

func (s *Sink) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	if _, errs := parse(config); len(errs) > 0 {
		return fmt.Errorf("postgres sink config: %v", errs)
	}
	s.config = config
	return nil
}

// TaskConfigs gives every task the connector's config: the worker spreads
// the topic partitions over them.
func (s *Sink) TaskConfigs(_ context.Context, maxTasks int) ([]map[string]string, error) {
	return connect.TaskConfigsOf(s.config, maxTasks), nil
}

func (s *Sink) Stop(context.Context) error { return nil }

// NewTask returns a new sink task.
func (s *Sink) NewTask() connect.SinkTask { return &Task{} }
