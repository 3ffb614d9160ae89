// Package clickhouse is Tributary's ClickHouse sink connector
// (ClickHouseSink). It takes the config keys of ClickHouse's own Kafka
// Connect sink (hostname, port, database, username, password, topics,
// topic2TableMap) plus keys of ours (insert.mode, auto.create, auto.evolve,
// table.name.format, batch.size, flush.interval.ms, max.retries,
// retry.backoff.ms), and understands Debezium's change events so that a
// table captured by a CDC source is mirrored exactly.
//
// Protocol: the sink speaks ClickHouse's native protocol (clickhouse-go/v2,
// pinned at v2.26.0, the newest release that inserts into ClickHouse 18.16),
// so port defaults to 9000, the native port. ClickHouse's own connector
// speaks HTTP(S) on 8443: users porting its config must change port to the
// server's native (tcp_port) port.
//
// Writes: Put converts the records into rows and buffers them per table;
// Flush sends every buffered row, one PrepareBatch/Send per table (rows of
// a table whose columns changed meanwhile go in one more batch), before it
// returns, so the offsets the worker commits after it are safe. Put sends a
// table's rows at once when batch.size of them are buffered or the oldest is
// flush.interval.ms old; when no Put comes, a timer of the task sends rows
// that are due, so a burst's tail is visible within the interval. Transient failures (lost connection, server
// overloaded or restarting) are retried max.retries times, retry.backoff.ms
// apart, on a fresh connection; after that, or at once for permanent errors
// (unknown database, wrong credentials, a value that does not fit its
// column), Put or Flush fails the task with a message saying what to change.
// In insert mode a retried send whose first attempt reached the server
// before the connection broke can insert its rows twice (at-least-once);
// upsert mode is idempotent.
//
// Dead letter queue: the SDK has no per-record failure path from Put, so
// with errors.tolerance=all only records that fail in the converters or
// transforms (before Put) go to the DLQ. A record the sink cannot convert
// into its table's columns fails the task, naming the record, field, column
// and what to change.
//
// Table formats (_version, _is_deleted): see table.go. Types: see types.go.
package clickhouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Class names: ours, and ClickHouse's connector this one replaces.
const (
	SinkClass       = "io.tributary.connect.clickhouse.ClickHouseSinkConnector"
	ClickHouseClass = "com.clickhouse.kafka.connect.ClickHouseSinkConnector"
	version         = "1.0.0"
)

// Config keys.
const (
	keyHostname      = "hostname"
	keyPort          = "port"
	keyDatabase      = "database"
	keyUsername      = "username"
	keyPassword      = "password"
	keyTopicMap      = "topic2TableMap"
	keyTableFormat   = "table.name.format"
	keyInsertMode    = "insert.mode"
	keyAutoCreate    = "auto.create"
	keyAutoEvolve    = "auto.evolve"
	keyBatchSize     = "batch.size"
	keyFlushInterval = "flush.interval.ms"
	keyMaxRetries    = "max.retries"
	keyRetryBackoff  = "retry.backoff.ms"
	keyTimeout       = "timeout.ms"
	keySSL           = "ssl"
	keyExactlyOnce   = "exactlyOnce"
)

func configDef() *connect.ConfigDef {
	const conn, writes, mapping, retries = "Connection", "Writes", "Data Mapping", "Retries"
	return connect.NewConfigDef().
		Define(connect.ConfigKey{Name: keyHostname, Type: connect.TypeString, Required: true, Importance: connect.High, Group: conn, OrderInGroup: 1,
			Validator: connect.NonEmptyString(), Doc: "The ClickHouse server's host name or address."}).
		Define(connect.ConfigKey{Name: keyPort, Type: connect.TypeInt, Default: "9000", Importance: connect.High, Group: conn, OrderInGroup: 2,
			Validator: connect.Range(1, 65535),
			Doc:       "The server's native protocol port (tcp_port, 9000 by default). Unlike ClickHouse's own connector, which speaks HTTP(S) on 8443, this sink speaks the native protocol."}).
		Define(connect.ConfigKey{Name: keyDatabase, Type: connect.TypeString, Default: "default", Importance: connect.High, Group: conn, OrderInGroup: 3,
			Validator: connect.NonEmptyString(), Doc: "The database holding the target tables. It must exist."}).
		Define(connect.ConfigKey{Name: keyUsername, Type: connect.TypeString, Default: "default", Importance: connect.High, Group: conn, OrderInGroup: 4,
			Doc: "The ClickHouse user."}).
		Define(connect.ConfigKey{Name: keyPassword, Type: connect.TypePassword, Default: "", Importance: connect.High, Group: conn, OrderInGroup: 5,
			Doc: "The user's password (empty: none)."}).
		Define(connect.ConfigKey{Name: keyTimeout, Type: connect.TypeInt, Default: "30000", Importance: connect.Low, Group: conn, OrderInGroup: 6,
			Validator: connect.AtLeast(100), Doc: "Connect and read timeout, in milliseconds."}).
		Define(connect.ConfigKey{Name: keySSL, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: conn, OrderInGroup: 7,
			Validator: connect.ValidatorFunc("false", onlyFalse("TLS is not supported yet: connect to the server's plain native port")),
			Doc:       "Accepted for compatibility with ClickHouse's connector; only false is supported."}).
		Define(connect.ConfigKey{Name: keyTopicMap, Type: connect.TypeString, Default: "", Importance: connect.Medium, Group: mapping, OrderInGroup: 1,
			Validator: connect.ValidatorFunc("topic1=table1,topic2=table2", validTopicMap),
			Doc:       "Target tables of topics, as topic1=table1,topic2=table2. Topics not listed go to the table table.name.format names."}).
		Define(connect.ConfigKey{Name: keyTableFormat, Type: connect.TypeString, Default: "${topic}", Importance: connect.Medium, Group: mapping, OrderInGroup: 2,
			Validator: connect.ValidatorFunc("a name with ${topic}", validFormat),
			Doc:       "The target table's name; ${topic} is replaced by the record's topic, and dots in the result by underscores (a CDC topic prefix.schema.table goes to table prefix_schema_table)."}).
		Define(connect.ConfigKey{Name: keyInsertMode, Type: connect.TypeString, Default: "insert", Importance: connect.High, Group: writes, OrderInGroup: 1,
			Validator: connect.OneOfIgnoreCase("insert", "upsert"),
			Doc:       "insert: append every record as a row (MergeTree). upsert: rows are versioned by the record key (ReplacingMergeTree(_version) with an _is_deleted flag), so SELECT ... FINAL WHERE NOT _is_deleted shows each key's latest state; needs struct record keys. See the connector docs for the table formats."}).
		Define(connect.ConfigKey{Name: keyAutoCreate, Type: connect.TypeBoolean, Default: "true", Importance: connect.Medium, Group: writes, OrderInGroup: 2,
			Doc: "Create a missing target table from the record schemas (MergeTree, or ReplacingMergeTree in upsert mode, ORDER BY the key columns)."}).
		Define(connect.ConfigKey{Name: keyAutoEvolve, Type: connect.TypeBoolean, Default: "true", Importance: connect.Medium, Group: writes, OrderInGroup: 3,
			Doc: "Add columns for record fields the table lacks (ALTER TABLE ADD COLUMN)."}).
		Define(connect.ConfigKey{Name: keyBatchSize, Type: connect.TypeInt, Default: "10000", Importance: connect.Medium, Group: writes, OrderInGroup: 4,
			Validator: connect.AtLeast(1), Doc: "Put sends a table's buffered rows once this many are buffered (Flush sends whatever is buffered)."}).
		Define(connect.ConfigKey{Name: keyFlushInterval, Type: connect.TypeInt, Default: "1000", Importance: connect.Medium, Group: writes, OrderInGroup: 5,
			Validator: connect.AtLeast(0), Doc: "A table's buffered rows are sent once the oldest is this old, in milliseconds, whether more records come or not (Flush sends whatever is buffered)."}).
		Define(connect.ConfigKey{Name: keyExactlyOnce, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: writes, OrderInGroup: 6,
			Validator: connect.ValidatorFunc("false", onlyFalse("exactly-once (KeeperMap state) is not supported: use insert.mode=upsert, which makes replays idempotent")),
			Doc:       "Accepted for compatibility with ClickHouse's connector; only false is supported."}).
		Define(connect.ConfigKey{Name: keyMaxRetries, Type: connect.TypeInt, Default: "10", Importance: connect.Medium, Group: retries, OrderInGroup: 1,
			Validator: connect.AtLeast(0), Doc: "How many times a write that failed with a transient error is retried before the task fails."}).
		Define(connect.ConfigKey{Name: keyRetryBackoff, Type: connect.TypeInt, Default: "3000", Importance: connect.Medium, Group: retries, OrderInGroup: 2,
			Validator: connect.AtLeast(0), Doc: "Wait between retries, in milliseconds."})
}

func onlyFalse(why string) func(string, any) error {
	return func(_ string, v any) error {
		if b, _ := v.(bool); b {
			return fmt.Errorf("%s", why)
		}
		return nil
	}
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

func validTopicMap(_ string, v any) error {
	s, _ := v.(string)
	_, err := parseTopicMap(s)
	return err
}

// parseTopicMap parses "topic1=table1,topic2=table2".
func parseTopicMap(s string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, pair := range strings.Split(s, ",") {
		topic, table, ok := strings.Cut(pair, "=")
		topic, table = strings.TrimSpace(topic), strings.TrimSpace(table)
		if !ok || topic == "" || table == "" {
			return nil, fmt.Errorf("%q is not topic=table", strings.TrimSpace(pair))
		}
		if _, dup := m[topic]; dup {
			return nil, fmt.Errorf("topic %q is mapped twice", topic)
		}
		m[topic] = table
	}
	return m, nil
}

// settings are a parsed sink config.
type settings struct {
	addr          string
	database      string
	username      string
	password      string
	timeout       time.Duration
	topicMap      map[string]string
	tableFormat   string
	upsert        bool
	autoCreate    bool
	autoEvolve    bool
	batchSize     int
	flushInterval time.Duration
	maxRetries    int
	backoff       time.Duration
}

// parse parses a config; errors are per key.
func parse(config map[string]string) (*settings, map[string][]string) {
	c, errs := configDef().Parse(config)
	if len(errs) > 0 {
		return nil, errs
	}
	s := &settings{
		addr:          fmt.Sprintf("%s:%d", c.String(keyHostname), c.Int(keyPort)),
		database:      c.String(keyDatabase),
		username:      c.String(keyUsername),
		password:      c.Password(keyPassword).Value(),
		timeout:       time.Duration(c.Int(keyTimeout)) * time.Millisecond,
		tableFormat:   c.String(keyTableFormat),
		upsert:        strings.EqualFold(c.String(keyInsertMode), "upsert"),
		autoCreate:    c.Bool(keyAutoCreate),
		autoEvolve:    c.Bool(keyAutoEvolve),
		batchSize:     int(c.Int(keyBatchSize)),
		flushInterval: time.Duration(c.Int(keyFlushInterval)) * time.Millisecond,
		maxRetries:    int(c.Int(keyMaxRetries)),
		backoff:       time.Duration(c.Int(keyRetryBackoff)) * time.Millisecond,
	}
	if strings.Contains(c.String(keyHostname), ":") && !strings.HasPrefix(c.String(keyHostname), "[") {
		s.addr = fmt.Sprintf("[%s]:%d", c.String(keyHostname), c.Int(keyPort))
	}
	s.topicMap, _ = parseTopicMap(c.String(keyTopicMap))
	return s, nil
}

// tableName returns the target table of a topic.
func (s *settings) tableName(topic string) string {
	if t, ok := s.topicMap[topic]; ok {
		return t
	}
	return strings.ReplaceAll(strings.ReplaceAll(s.tableFormat, "${topic}", topic), ".", "_")
}

// Sink is the ClickHouse sink connector.
type Sink struct{ config map[string]string }

// NewSink returns a ClickHouse sink connector.
func NewSink() connect.Connector { return &Sink{} }

func (s *Sink) Version() string               { return version }
func (s *Sink) ConfigDef() *connect.ConfigDef { return configDef() }

// Validate checks that the server answers (within 10 s) with the given
// credentials and that the database exists.
func (s *Sink) Validate(ctx context.Context, config map[string]string) (map[string][]string, error) {
	st, errs := parse(config)
	if len(errs) > 0 {
		return errs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := dial(ctx, st)
	if err != nil {
		key := keyHostname
		switch {
		case isCode(err, codeUnknownDatabase):
			key = keyDatabase
		case isCode(err, authCodes...):
			key = keyPassword
		}
		return map[string][]string{key: {err.Error()}}, nil
	}
	c.Close()
	return nil, nil
}

func (s *Sink) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	if _, errs := parse(config); len(errs) > 0 {
		return fmt.Errorf("clickhouse sink config: %v", errs)
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
