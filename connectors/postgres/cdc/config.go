package cdc

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Config key names (Debezium's).
const (
	keyHost             = "database.hostname"
	keyPort             = "database.port"
	keyUser             = "database.user"
	keyPassword         = "database.password"
	keyDBName           = "database.dbname"
	keySSLMode          = "database.sslmode"
	keySSLRootCert      = "database.sslrootcert"
	keySSLCert          = "database.sslcert"
	keySSLKey           = "database.sslkey"
	keyTopicPrefix      = "topic.prefix"
	keyHeartbeatPrefix  = "topic.heartbeat.prefix"
	keyPluginName       = "plugin.name"
	keySlotName         = "slot.name"
	keySlotDropOnStop   = "slot.drop.on.stop"
	keySlotMaxRetries   = "slot.max.retries"
	keySlotRetryDelay   = "slot.retry.delay.ms"
	keyStatusInterval   = "status.update.interval.ms"
	keyPublication      = "publication.name"
	keyPubMode          = "publication.autocreate.mode"
	keySchemaInclude    = "schema.include.list"
	keySchemaExclude    = "schema.exclude.list"
	keyTableInclude     = "table.include.list"
	keyTableExclude     = "table.exclude.list"
	keyColumnInclude    = "column.include.list"
	keyColumnExclude    = "column.exclude.list"
	keySnapshotMode     = "snapshot.mode"
	keyFetchSize        = "snapshot.fetch.size"
	keySnapshotThreads  = "snapshot.max.threads"
	keyHeartbeatMs      = "heartbeat.interval.ms"
	keyHeartbeatQuery   = "heartbeat.action.query"
	keyTombstones       = "tombstones.on.delete"
	keySkippedOps       = "skipped.operations"
	keyPlaceholder      = "unavailable.value.placeholder"
	keyDecimalMode      = "decimal.handling.mode"
	keyTimeMode         = "time.precision.mode"
	keyBinaryMode       = "binary.handling.mode"
	keyIntervalMode     = "interval.handling.mode"
	keyTxMetadata       = "provide.transaction.metadata"
	keyFailureMode      = "event.processing.failure.handling.mode"
	keySchemaNameAdjust = "schema.name.adjustment.mode"
	keyFieldNameAdjust  = "field.name.adjustment.mode"
	keyMaxBatch         = "max.batch.size"
	keyMaxQueue         = "max.queue.size"
	keyPollInterval     = "poll.interval.ms"
	keyMaxRetries       = "errors.max.retries"
	keyTCPKeepAlive     = "database.tcpKeepAlive"
	keyFlushLSNSource   = "flush.lsn.source"
	keySchemaRefresh    = "schema.refresh.mode"
	keySnapshotDelay    = "snapshot.delay.ms"
	keyStreamingDelay   = "streaming.delay.ms"
)

const (
	groupConnection  = "Connection"
	groupReplication = "Replication"
	groupFilters     = "Filters"
	groupSnapshot    = "Snapshot"
	groupEvents      = "Events"
	groupHeartbeat   = "Heartbeat"
	groupAdvanced    = "Advanced"
)

// Publication autocreate modes and snapshot modes.
const (
	pubAllTables = "all_tables"
	pubFiltered  = "filtered"
	pubDisabled  = "disabled"

	snapInitial     = "initial"
	snapNever       = "never"
	snapNoData      = "no_data" // Debezium 2.6's name for never
	snapInitialOnly = "initial_only"
)

// only accepts exactly the given values and says that others are Debezium
// settings this connector does not support.
func only(values ...string) connect.Validator {
	return connect.ValidatorFunc("["+strings.Join(values, ", ")+"]", func(name string, v any) error {
		s, _ := v.(string)
		for _, w := range values {
			if strings.EqualFold(s, w) {
				return nil
			}
		}
		return fmt.Errorf("this connector supports only %s (other values are Debezium settings it does not implement)", strings.Join(values, ", "))
	})
}

func regexList() connect.Validator {
	return connect.ValidatorFunc("comma-separated regular expressions", func(name string, v any) error {
		for _, re := range v.([]string) {
			if _, err := compileFilter(re); err != nil {
				return fmt.Errorf("%q is not a valid regular expression: %v", re, err)
			}
		}
		return nil
	})
}

// identifier accepts what pglogrepl and pgoutput take unquoted: slot names
// are [a-z0-9_]{1,63} (PostgreSQL's own rule for slot names).
var slotNameRe = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func configDef() *connect.ConfigDef {
	d := connect.NewConfigDef()
	order := map[string]int{}
	def := func(k connect.ConfigKey) {
		order[k.Group]++
		k.OrderInGroup = order[k.Group]
		d.Define(k)
	}
	// Connection.
	def(connect.ConfigKey{Name: keyHost, Type: connect.TypeString, Required: true, Importance: connect.High, Group: groupConnection,
		Validator: connect.NonEmptyString(), Doc: "Host name or IP address of the PostgreSQL server."})
	def(connect.ConfigKey{Name: keyPort, Type: connect.TypeInt, Default: "5432", Importance: connect.High, Group: groupConnection,
		Validator: connect.Range(1, 65535), Doc: "Port of the PostgreSQL server."})
	def(connect.ConfigKey{Name: keyUser, Type: connect.TypeString, Required: true, Importance: connect.High, Group: groupConnection,
		Validator: connect.NonEmptyString(), Doc: "User to connect as. It needs the REPLICATION attribute (or superuser), SELECT on the captured tables for the snapshot, and ownership of them (or superuser for all_tables) when the connector creates the publication."})
	def(connect.ConfigKey{Name: keyPassword, Type: connect.TypePassword, Importance: connect.High, Group: groupConnection,
		Doc: "Password of database.user."})
	def(connect.ConfigKey{Name: keyDBName, Type: connect.TypeString, Required: true, Importance: connect.High, Group: groupConnection,
		Validator: connect.NonEmptyString(), Doc: "Database to capture changes from."})
	def(connect.ConfigKey{Name: keySSLMode, Type: connect.TypeString, Default: "prefer", Importance: connect.Medium, Group: groupConnection,
		Validator: connect.OneOf("disable", "allow", "prefer", "require", "verify-ca", "verify-full"), Doc: "libpq sslmode of every connection."})
	def(connect.ConfigKey{Name: keyTCPKeepAlive, Type: connect.TypeBoolean, Default: "true", Importance: connect.Low, Group: groupConnection,
		Validator: connect.ValidatorFunc("[true]", func(_ string, v any) error {
			if !v.(bool) {
				return fmt.Errorf("TCP keepalives are always on")
			}
			return nil
		}), Doc: "Only true: connections use TCP keepalives."})
	def(connect.ConfigKey{Name: keySSLRootCert, Type: connect.TypeString, Importance: connect.Low, Group: groupConnection, Doc: "File of the CA certificates that verify the server (sslrootcert)."})
	def(connect.ConfigKey{Name: keySSLCert, Type: connect.TypeString, Importance: connect.Low, Group: groupConnection, Doc: "File of the client certificate (sslcert)."})
	def(connect.ConfigKey{Name: keySSLKey, Type: connect.TypeString, Importance: connect.Low, Group: groupConnection, Doc: "File of the client certificate's key (sslkey)."})
	def(connect.ConfigKey{Name: keyTopicPrefix, Type: connect.TypeString, Required: true, Importance: connect.High, Group: groupConnection,
		Aliases: []string{"database.server.name"}, Validator: connect.Regex(`[a-zA-Z0-9._-]+`),
		Doc: "Prefix of every topic (<topic.prefix>.<schema>.<table>), the source.name of events and the source partition {\"server\": <topic.prefix>} under which offsets are stored. Do not change it once the connector ran: the offsets are found by it."})

	// Replication.
	def(connect.ConfigKey{Name: keyPluginName, Type: connect.TypeString, Default: "pgoutput", Importance: connect.Medium, Group: groupReplication,
		Validator: only("pgoutput"), Doc: "Logical decoding plugin. Only pgoutput (built into PostgreSQL 10+) is supported."})
	def(connect.ConfigKey{Name: keySlotName, Type: connect.TypeString, Default: "tributary", Importance: connect.Medium, Group: groupReplication,
		Validator: connect.ValidatorFunc("[a-z0-9_]{1,63}", func(_ string, v any) error {
			if !slotNameRe.MatchString(v.(string)) {
				return fmt.Errorf("a replication slot name is 1 to 63 lower-case letters, digits and underscores")
			}
			return nil
		}), Doc: "Logical replication slot the connector creates (or reuses) and streams from. One slot per connector: two connectors must not share it."})
	def(connect.ConfigKey{Name: keySlotDropOnStop, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: groupReplication,
		Doc: "Drop the slot when the task stops. Changes made while the connector is stopped are then never captured: for tests only."})
	def(connect.ConfigKey{Name: keySlotMaxRetries, Type: connect.TypeInt, Default: "6", Importance: connect.Low, Group: groupReplication,
		Validator: connect.AtLeast(0), Doc: "How many times to retry when the slot is in use by another connection at start (a previous task that has not let go yet)."})
	def(connect.ConfigKey{Name: keySlotRetryDelay, Type: connect.TypeLong, Default: "10000", Importance: connect.Low, Group: groupReplication,
		Validator: connect.AtLeast(0), Doc: "Milliseconds between those retries."})
	def(connect.ConfigKey{Name: keyStatusInterval, Type: connect.TypeInt, Default: "10000", Importance: connect.Low, Group: groupReplication,
		Validator: connect.AtLeast(100), Doc: "Milliseconds between standby status updates to the server. They report the last LSN whose records the worker stored (the slot's confirmed_flush_lsn); it only advances after Kafka acknowledged the records."})
	def(connect.ConfigKey{Name: keyFlushLSNSource, Type: connect.TypeBoolean, Default: "true", Importance: connect.Low, Group: groupReplication,
		Validator: connect.ValidatorFunc("[true]", func(_ string, v any) error {
			if !v.(bool) {
				return fmt.Errorf("the connector always confirms the LSNs of stored offsets itself")
			}
			return nil
		}), Doc: "Only true: the connector confirms the slot's flushed LSN (after the worker stored the offsets)."})
	def(connect.ConfigKey{Name: keyPublication, Type: connect.TypeString, Default: "tributary_publication", Importance: connect.Medium, Group: groupReplication,
		Validator: connect.NonEmptyString(), Doc: "Publication the slot streams. Created per publication.autocreate.mode."})
	def(connect.ConfigKey{Name: keyPubMode, Type: connect.TypeString, Default: pubAllTables, Importance: connect.Medium, Group: groupReplication,
		Validator: connect.OneOf(pubAllTables, pubFiltered, pubDisabled),
		Doc:       "all_tables: create the publication FOR ALL TABLES if it is missing (needs a superuser). filtered: create or update it at every start to publish exactly the tables table.include.list/table.exclude.list/schema.*.list select. disabled: the publication must exist."})

	// Filters.
	def(connect.ConfigKey{Name: keySchemaInclude, Type: connect.TypeList, Importance: connect.Medium, Group: groupFilters, Validator: regexList(),
		Doc: "Regular expressions (case-insensitive, matching the whole name) of the schemas to capture. Not with schema.exclude.list."})
	def(connect.ConfigKey{Name: keySchemaExclude, Type: connect.TypeList, Importance: connect.Medium, Group: groupFilters, Validator: regexList(),
		Doc: "Regular expressions of the schemas not to capture."})
	def(connect.ConfigKey{Name: keyTableInclude, Type: connect.TypeList, Importance: connect.Medium, Group: groupFilters, Validator: regexList(),
		Aliases: []string{"table.whitelist"}, Doc: "Regular expressions (case-insensitive, matching the whole schema.table) of the tables to capture; all tables when empty. Not with table.exclude.list."})
	def(connect.ConfigKey{Name: keyTableExclude, Type: connect.TypeList, Importance: connect.Medium, Group: groupFilters, Validator: regexList(),
		Aliases: []string{"table.blacklist"}, Doc: "Regular expressions of schema.table names not to capture."})
	def(connect.ConfigKey{Name: keyColumnInclude, Type: connect.TypeList, Importance: connect.Low, Group: groupFilters, Validator: regexList(),
		Doc: "Regular expressions of schema.table.column names to put in event values (key columns are always in the key). Not with column.exclude.list."})
	def(connect.ConfigKey{Name: keyColumnExclude, Type: connect.TypeList, Importance: connect.Low, Group: groupFilters, Validator: regexList(),
		Doc: "Regular expressions of schema.table.column names to leave out of event values."})

	// Snapshot.
	def(connect.ConfigKey{Name: keySnapshotMode, Type: connect.TypeString, Default: snapInitial, Importance: connect.Medium, Group: groupSnapshot,
		Validator: connect.OneOf(snapInitial, snapNever, snapNoData, snapInitialOnly),
		Doc:       "initial: when there is no stored offset, read every captured table (op r) in a snapshot exported by the slot's creation, then stream from the slot with no gap and no overlap. never (or no_data): only stream. initial_only: snapshot, then stop producing."})
	def(connect.ConfigKey{Name: keySnapshotDelay, Type: connect.TypeLong, Default: "0", Importance: connect.Low, Group: groupSnapshot,
		Validator: connect.AtLeast(0), Doc: "Milliseconds to wait before the snapshot starts."})
	def(connect.ConfigKey{Name: keyFetchSize, Type: connect.TypeInt, Default: "10240", Importance: connect.Low, Group: groupSnapshot,
		Validator: connect.AtLeast(1), Doc: "Rows per snapshot chunk query: tables larger than this are read in primary key ranges of about this many rows."})
	def(connect.ConfigKey{Name: keySnapshotThreads, Type: connect.TypeInt, Default: "2", Importance: connect.Low, Group: groupSnapshot,
		Validator: connect.Range(1, 64), Doc: "Connections reading the snapshot in parallel, all in the same exported snapshot."})

	// Events.
	def(connect.ConfigKey{Name: keyTombstones, Type: connect.TypeBoolean, Default: "true", Importance: connect.Medium, Group: groupEvents,
		Doc: "Follow each delete event with a tombstone (same key, null value) so that compacted topics drop the key. Tables without a key get none."})
	def(connect.ConfigKey{Name: keySkippedOps, Type: connect.TypeList, Default: "none", Importance: connect.Low, Group: groupEvents,
		Validator: connect.ListOf(connect.OneOf("c", "u", "d", "t", "none")),
		Doc:       "Operations not to emit: c, u, d, t, or none. Unlike Debezium (default t), truncates are emitted by default."})
	def(connect.ConfigKey{Name: keyPlaceholder, Type: connect.TypeString, Default: "__debezium_unavailable_value", Importance: connect.Low, Group: groupEvents,
		Doc: "Stands for an unchanged TOASTed value that an UPDATE does not carry (tables without REPLICA IDENTITY FULL): the string for text-like columns, its bytes for bytea. Set REPLICA IDENTITY FULL to get the real values."})
	def(connect.ConfigKey{Name: keyDecimalMode, Type: connect.TypeString, Default: "precise", Importance: connect.Low, Group: groupEvents,
		Validator: only("precise"), Doc: "Only precise: numeric(p,s) is a Decimal, numeric a VariableScaleDecimal."})
	def(connect.ConfigKey{Name: keyTimeMode, Type: connect.TypeString, Default: "adaptive", Importance: connect.Low, Group: groupEvents,
		Validator: only("adaptive", "adaptive_time_microseconds"), Doc: "adaptive or adaptive_time_microseconds (the same here: time and timestamp are always micro-precision types)."})
	def(connect.ConfigKey{Name: keyBinaryMode, Type: connect.TypeString, Default: "bytes", Importance: connect.Low, Group: groupEvents,
		Validator: only("bytes"), Doc: "Only bytes."})
	def(connect.ConfigKey{Name: keyIntervalMode, Type: connect.TypeString, Default: "numeric", Importance: connect.Low, Group: groupEvents,
		Validator: only("numeric"), Doc: "Only numeric (MicroDuration)."})
	def(connect.ConfigKey{Name: keyTxMetadata, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: groupEvents,
		Validator: connect.ValidatorFunc("[false]", func(_ string, v any) error {
			if v.(bool) {
				return fmt.Errorf("transaction metadata topics are not supported")
			}
			return nil
		}), Doc: "Only false."})
	def(connect.ConfigKey{Name: keyFailureMode, Type: connect.TypeString, Default: "fail", Importance: connect.Low, Group: groupEvents,
		Validator: only("fail"), Doc: "Only fail: an event that cannot be converted fails the task with a message; nothing is skipped silently."})
	def(connect.ConfigKey{Name: keySchemaRefresh, Type: connect.TypeString, Default: "columns_diff", Importance: connect.Low, Group: groupEvents,
		Validator: only("columns_diff"), Doc: "Only columns_diff: a table's schema changes with the RELATION message that precedes its next change."})
	def(connect.ConfigKey{Name: keySchemaNameAdjust, Type: connect.TypeString, Default: "none", Importance: connect.Low, Group: groupEvents,
		Validator: only("none"), Doc: "Only none."})
	def(connect.ConfigKey{Name: keyFieldNameAdjust, Type: connect.TypeString, Default: "none", Importance: connect.Low, Group: groupEvents,
		Validator: only("none"), Doc: "Only none."})

	// Heartbeat.
	def(connect.ConfigKey{Name: keyHeartbeatMs, Type: connect.TypeInt, Default: "0", Importance: connect.Medium, Group: groupHeartbeat,
		Validator: connect.AtLeast(0), Doc: "Milliseconds between heartbeats (0: none). A heartbeat writes a logical decoding message (and runs heartbeat.action.query) so that the slot advances even when the captured tables are idle, and emits a record to <topic.heartbeat.prefix>.<topic.prefix> whose offset lets the slot's confirmed_flush_lsn move forward."})
	def(connect.ConfigKey{Name: keyHeartbeatQuery, Type: connect.TypeString, Importance: connect.Low, Group: groupHeartbeat,
		Doc: "SQL run at every heartbeat (e.g. an UPDATE of a heartbeat table), on a regular connection."})
	def(connect.ConfigKey{Name: keyHeartbeatPrefix, Type: connect.TypeString, Default: "__debezium-heartbeat", Importance: connect.Low, Group: groupHeartbeat,
		Validator: connect.Regex(`[a-zA-Z0-9._-]+`), Doc: "Prefix of the heartbeat topic."})

	// Advanced.
	def(connect.ConfigKey{Name: keyMaxBatch, Type: connect.TypeInt, Default: "2048", Importance: connect.Low, Group: groupAdvanced,
		Validator: connect.AtLeast(1), Doc: "Most records returned by one poll."})
	def(connect.ConfigKey{Name: keyMaxQueue, Type: connect.TypeInt, Default: "8192", Importance: connect.Low, Group: groupAdvanced,
		Validator: connect.AtLeast(1), Doc: "Most records buffered between the reader and the worker."})
	def(connect.ConfigKey{Name: keyPollInterval, Type: connect.TypeLong, Default: "500", Importance: connect.Low, Group: groupAdvanced,
		Validator: connect.Range(1, 60000), Doc: "Milliseconds a poll waits for records when there are none."})
	def(connect.ConfigKey{Name: keyStreamingDelay, Type: connect.TypeLong, Default: "0", Importance: connect.Low, Group: groupAdvanced,
		Validator: connect.AtLeast(0), Doc: "Milliseconds to wait after the snapshot before streaming starts."})
	def(connect.ConfigKey{Name: keyMaxRetries, Type: connect.TypeInt, Default: "-1", Importance: connect.Low, Group: groupAdvanced,
		Validator: connect.AtLeast(-1), Doc: "Reconnections after a lost replication connection before the task fails (-1: no limit). A reconnection resumes after the last record handed to the worker."})
	return d
}

// unsupportedKeys are Debezium PostgreSQL connector settings this
// connector does not implement, with the reason. Validate and Start report
// each one given as an error: a config never silently means something else.
func unsupportedKeys() map[string]string {
	return map[string]string{
		"column.propagate.source.type":               "source type parameters are not added to schemas",
		"datatype.propagate.source.type":             "source type parameters are not added to schemas",
		"message.key.columns":                        "keys are always the primary key (or replica identity index) columns",
		"snapshot.select.statement.overrides":        "snapshots read whole tables",
		"snapshot.include.collection.list":           "the snapshot reads every captured table",
		"snapshot.locking.mode":                      "the snapshot takes no table locks (it reads an exported snapshot)",
		"snapshot.query.mode":                        "snapshots read whole tables",
		"snapshot.custom.class":                      "custom snapshotters are not supported",
		"signal.data.collection":                     "signals and incremental snapshots are not supported",
		"signal.enabled.channels":                    "signals and incremental snapshots are not supported",
		"incremental.snapshot.chunk.size":            "incremental snapshots are not supported",
		"converters":                                 "custom converters are not supported",
		"hstore.handling.mode":                       "hstore values are emitted as their text form",
		"include.unknown.datatypes":                  "unknown types are always emitted as strings of their text form",
		"message.prefix.include.list":                "logical decoding messages are not emitted as events",
		"message.prefix.exclude.list":                "logical decoding messages are not emitted as events",
		"slot.stream.params":                         "pgoutput parameters are chosen by the connector",
		"database.initial.statements":                "initial statements are not supported",
		"topic.naming.strategy":                      "topics are always <topic.prefix>.<schema>.<table>",
		"notification.enabled.channels":              "notifications are not supported",
		"read.only":                                  "the connector writes heartbeat messages and slot state",
		"xmin.fetch.interval.ms":                     "source.xmin is not tracked",
		"publish.via.partition.root":                 "partitions are captured as their own tables",
		"transaction.topic":                          "transaction metadata topics are not supported",
		"table.ignore.builtin":                       "system tables are never captured",
		"money.fraction.digits":                      "money values are emitted as their text form",
		"retriable.restart.connector.wait.ms":        "the worker restarts failed tasks; the stream reconnects by itself (errors.max.retries)",
		"custom.metric.tags":                         "metrics carry the worker's connector and task labels",
		"query.fetch.size":                           "use snapshot.fetch.size",
		"snapshot.tables.order.by.row.count":         "the snapshot reads the largest chunks first",
		"incremental.snapshot.allow.schema.changes":  "incremental snapshots are not supported",
		"incremental.snapshot.watermarking.strategy": "incremental snapshots are not supported",
		"slot.failover":                              "failover slots are not supported",
		"database.query.timeout.ms":                  "queries have no timeout",
		"snapshot.lock.timeout.ms":                   "the snapshot takes no table locks",
		"snapshot.isolation.mode":                    "the snapshot always reads an exported snapshot (repeatable read)",
	}
}

// unsupported returns the errors for unsupported Debezium keys in config.
func unsupported(config map[string]string) map[string][]string {
	out := map[string][]string{}
	keys := unsupportedKeys()
	for k := range config {
		if why, ok := keys[k]; ok {
			out[k] = append(out[k], fmt.Sprintf("%s is a Debezium setting this connector does not support (%s); remove it", k, why))
			continue
		}
		for _, p := range []string{"column.mask.", "column.truncate.to.", "column.mask.hash."} {
			if strings.HasPrefix(k, p) {
				out[k] = append(out[k], fmt.Sprintf("%s is a Debezium setting this connector does not support (column masking and truncation are not implemented); remove it", k))
				break
			}
		}
	}
	return out
}

// settings is a parsed, validated connector config.
type settings struct {
	connector                    string // the connector's name (config "name"), "" when unknown
	host, user, password, dbname string
	port                         int
	sslMode, sslRootCert         string
	sslCert, sslKey              string
	prefix, heartbeatPrefix      string
	slot, publication, pubMode   string
	dropSlotOnStop               bool
	slotMaxRetries               int
	slotRetryDelay               time.Duration
	statusInterval               time.Duration
	filter                       *filter
	snapshotMode                 string
	snapshotDelay, streamDelay   time.Duration
	fetchSize, snapshotThreads   int
	heartbeat                    time.Duration
	heartbeatQuery               string
	tombstones                   bool
	skip                         [256]bool // skipped ops by op letter
	placeholder                  string
	maxBatch, maxQueue           int
	pollInterval                 time.Duration
	maxRetries                   int
}

// parseSettings parses and validates config (ConfigDef and cross-key
// rules), returning every error per key.
func parseSettings(config map[string]string) (*settings, map[string][]string) {
	c, errs := configDef().Parse(config)
	if errs == nil {
		errs = map[string][]string{}
	}
	for k, v := range unsupported(config) {
		errs[k] = append(errs[k], v...)
	}
	both := func(a, b string) {
		if len(c.List(a)) > 0 && len(c.List(b)) > 0 {
			errs[b] = append(errs[b], fmt.Sprintf("%s and %s cannot both be set: use one of them", a, b))
		}
	}
	both(keySchemaInclude, keySchemaExclude)
	both(keyTableInclude, keyTableExclude)
	both(keyColumnInclude, keyColumnExclude)
	if len(errs) > 0 {
		return nil, errs
	}
	s := &settings{
		connector: strings.TrimSpace(config["name"]),
		host:      c.String(keyHost), port: int(c.Int(keyPort)), user: c.String(keyUser),
		password: c.Password(keyPassword).Value(), dbname: c.String(keyDBName),
		sslMode: c.String(keySSLMode), sslRootCert: c.String(keySSLRootCert), sslCert: c.String(keySSLCert), sslKey: c.String(keySSLKey),
		prefix: c.String(keyTopicPrefix), heartbeatPrefix: c.String(keyHeartbeatPrefix),
		slot: c.String(keySlotName), publication: c.String(keyPublication), pubMode: c.String(keyPubMode),
		dropSlotOnStop: c.Bool(keySlotDropOnStop), slotMaxRetries: int(c.Int(keySlotMaxRetries)),
		slotRetryDelay: time.Duration(c.Long(keySlotRetryDelay)) * time.Millisecond,
		statusInterval: time.Duration(c.Int(keyStatusInterval)) * time.Millisecond,
		snapshotDelay:  time.Duration(c.Long(keySnapshotDelay)) * time.Millisecond, streamDelay: time.Duration(c.Long(keyStreamingDelay)) * time.Millisecond,
		snapshotMode: c.String(keySnapshotMode), fetchSize: int(c.Int(keyFetchSize)), snapshotThreads: int(c.Int(keySnapshotThreads)),
		heartbeat: time.Duration(c.Int(keyHeartbeatMs)) * time.Millisecond, heartbeatQuery: c.String(keyHeartbeatQuery),
		tombstones: c.Bool(keyTombstones), placeholder: c.String(keyPlaceholder),
		maxBatch: int(c.Int(keyMaxBatch)), maxQueue: int(c.Int(keyMaxQueue)),
		pollInterval: time.Duration(c.Long(keyPollInterval)) * time.Millisecond,
		maxRetries:   int(c.Int(keyMaxRetries)),
	}
	if s.snapshotMode == snapNoData {
		s.snapshotMode = snapNever
	}
	for _, op := range c.List(keySkippedOps) {
		if op != "none" && op != "" {
			s.skip[op[0]] = true
		}
	}
	var err error
	s.filter, err = newFilter(c.List(keySchemaInclude), c.List(keySchemaExclude), c.List(keyTableInclude), c.List(keyTableExclude),
		c.List(keyColumnInclude), c.List(keyColumnExclude))
	if err != nil { // validated above; defensive
		return nil, map[string][]string{"": {err.Error()}}
	}
	return s, nil
}

// dsn returns a keyword/value connection string for s.
func (s *settings) dsn() string {
	q := func(v string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`) + "'"
	}
	parts := []string{"host=" + q(s.host), fmt.Sprintf("port=%d", s.port), "user=" + q(s.user), "dbname=" + q(s.dbname),
		"sslmode=" + q(s.sslMode), "connect_timeout=10"}
	if s.password != "" {
		parts = append(parts, "password="+q(s.password))
	}
	if s.sslRootCert != "" {
		parts = append(parts, "sslrootcert="+q(s.sslRootCert))
	}
	if s.sslCert != "" {
		parts = append(parts, "sslcert="+q(s.sslCert))
	}
	if s.sslKey != "" {
		parts = append(parts, "sslkey="+q(s.sslKey))
	}
	return strings.Join(parts, " ")
}

// where names the server for messages.
func (s *settings) where() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// filter selects the captured tables and value columns, as Debezium's
// include/exclude lists do: case-insensitive regular expressions that must
// match the whole schema, schema.table or schema.table.column name.
type filter struct {
	schemaInc, schemaExc, tableInc, tableExc, colInc, colExc []*regexp.Regexp
}

func compileFilter(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`(?i)^(?:` + re + `)$`)
}

func compileAll(list []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, s := range list {
		if s == "" {
			continue
		}
		re, err := compileFilter(s)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

func newFilter(lists ...[]string) (*filter, error) {
	var res [6][]*regexp.Regexp
	for i, l := range lists {
		var err error
		if res[i], err = compileAll(l); err != nil {
			return nil, err
		}
	}
	return &filter{schemaInc: res[0], schemaExc: res[1], tableInc: res[2], tableExc: res[3], colInc: res[4], colExc: res[5]}, nil
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// systemSchema reports schemas never captured.
func systemSchema(schema string) bool {
	return schema == "pg_catalog" || schema == "information_schema" || strings.HasPrefix(schema, "pg_toast") || strings.HasPrefix(schema, "pg_temp")
}

// table reports whether schema.table is captured.
func (f *filter) table(schema, table string) bool {
	if systemSchema(schema) {
		return false
	}
	if len(f.schemaInc) > 0 && !anyMatch(f.schemaInc, schema) {
		return false
	}
	if anyMatch(f.schemaExc, schema) {
		return false
	}
	full := schema + "." + table
	if len(f.tableInc) > 0 && !anyMatch(f.tableInc, full) {
		return false
	}
	return !anyMatch(f.tableExc, full)
}

// column reports whether a column goes into event values.
func (f *filter) column(schema, table, column string) bool {
	if len(f.colInc) == 0 && len(f.colExc) == 0 {
		return true
	}
	full := schema + "." + table + "." + column
	if len(f.colInc) > 0 && !anyMatch(f.colInc, full) {
		return false
	}
	return !anyMatch(f.colExc, full)
}
