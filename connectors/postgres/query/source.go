// Package query is Tributary's PostgreSQL query source connector
// (PostgresQuerySource): Confluent's JdbcSourceConnector for PostgreSQL
// URLs, with its config keys and its offsets, so that a Confluent
// connector's stored offsets carry over.
//
// It copies tables (table.whitelist / table.blacklist, or the regex lists
// table.include.list / table.exclude.list, and table.types) or the result
// of one custom query (query) to Kafka, one record per row: key null, value
// a struct of the row's columns (schema named after the table; see types.go
// for the column types). Topic: topic.prefix + table name, or topic.prefix
// alone for a query. mode says how new rows are found:
//
//	bulk                    every poll.interval.ms the whole table, again (no offsets)
//	incrementing            WHERE inc > last ORDER BY inc
//	timestamp               WHERE ts > last AND ts < end ORDER BY ts
//	timestamp+incrementing  WHERE ts < end AND ((ts = last AND inc > lastinc) OR ts > last)
//	                        ORDER BY ts, inc
//
// where ts is COALESCE(timestamp.column.name...) and end is the database's
// now() - timestamp.delay.interval.ms: rows whose timestamp is younger than
// the delay wait for the next poll, so a transaction that commits up to
// the delay after it stamped its rows is not skipped. A custom query is
// wrapped as a subquery, so its columns can be used in these conditions.
// Each table's query stays open across polls, batch.max.rows records per
// poll, as Confluent's does; a table is queried again poll.interval.ms after
// its previous query ended.
//
// What each mode guarantees: timestamp+incrementing neither skips nor
// repeats a row version, provided timestamp.delay.interval.ms exceeds the
// time between a row's timestamp and its commit (the longest writing
// transaction, when the column defaults to now()). incrementing reads ids
// in order, so with concurrent writers a smaller id committed after a
// larger one was read is skipped (as in Confluent's); it never sees
// updates. timestamp alone can skip rows that share the last timestamp
// read when the task restarts in their midst, as Confluent's does. bulk
// copies everything again each time.
//
// A table dropped while its task runs is left out by that task (the table
// monitor then reconfigures the tasks); without the monitor
// (table.poll.interval.ms=0), or for a query, the task fails.
//
// Offsets are Confluent's (protocol 1), so its stored offsets carry over:
// see querier.go, which owns them.
//
// Tables are listed at Start and every table.poll.interval.ms (a change
// asks the worker for new task configs); TaskConfigs spreads them
// round-robin over up to tasks.max tasks.
package query

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // db.timezone names without a system zoneinfo

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connectors/postgres/jdbcconf"
)

// Class names: ours, and the Confluent connector this one replaces.
const (
	SourceClass = "io.tributary.connect.postgres.PostgresQuerySourceConnector"
	JDBCClass   = "io.confluent.connect.jdbc.JdbcSourceConnector"
	version     = "1.0.0"
)

// Modes.
const (
	modeBulk   = "bulk"
	modeInc    = "incrementing"
	modeTS     = "timestamp"
	modeTSInc  = "timestamp+incrementing"
	tablesTask = "tables" // task config key: the task's tables, a JSON list of [schema, table]
)

// Config keys.
const (
	keyWhitelist   = "table.whitelist"
	keyBlacklist   = "table.blacklist"
	keyInclude     = "table.include.list"
	keyExclude     = "table.exclude.list"
	keySchema      = "schema.pattern"
	keyTableTypes  = "table.types"
	keyNumMapping  = "numeric.mapping"
	keyNumPrec     = "numeric.precision.mapping"
	keyMode        = "mode"
	keyIncCol      = "incrementing.column.name"
	keyTSCols      = "timestamp.column.name"
	keyTSInitial   = "timestamp.initial"
	keyNonNull     = "validate.non.null"
	keyQuery       = "query"
	keySuffix      = "query.suffix"
	keyRetries     = "query.retry.attempts"
	keyTablePoll   = "table.poll.interval.ms"
	keyPoll        = "poll.interval.ms"
	keyBatch       = "batch.max.rows"
	keyPrefix      = "topic.prefix"
	keyDelay       = "timestamp.delay.interval.ms"
	keyTimezone    = "db.timezone"
	keyStartupWait = "table.monitoring.startup.polling.limit.ms"
)

var relkinds = map[string]string{"TABLE": "r", "VIEW": "v", "MATERIALIZED VIEW": "m", "FOREIGN TABLE": "f", "PARTITIONED TABLE": "p"}

func configDef() *connect.ConfigDef {
	const db, mode, conn = jdbcconf.Group, "Mode", "Connector"
	d := jdbcconf.DefineConnection(connect.NewConfigDef())
	return d.
		Define(connect.ConfigKey{Name: keyWhitelist, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: db, OrderInGroup: 7,
			Doc: "Tables to copy, as table or schema.table. Use one of table.whitelist, table.blacklist, table.include.list/exclude.list; none: every table."}).
		Define(connect.ConfigKey{Name: keyBlacklist, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: db, OrderInGroup: 8,
			Doc: "Tables not to copy, as table or schema.table."}).
		Define(connect.ConfigKey{Name: keyInclude, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: db, OrderInGroup: 9, Validator: regexList{},
			Doc: "Regular expressions; the tables whose schema.table one matches entirely are copied."}).
		Define(connect.ConfigKey{Name: keyExclude, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: db, OrderInGroup: 10, Validator: regexList{},
			Doc: "Regular expressions; the tables whose schema.table one matches entirely are not copied."}).
		Define(connect.ConfigKey{Name: keySchema, Type: connect.TypeString, Importance: connect.Medium, Group: db, OrderInGroup: 11,
			Doc: "Only tables of the schemas this SQL LIKE pattern matches (default: every schema but the system ones)."}).
		Define(jdbcconf.Restricted("catalog.pattern", db, 12, "", "Not supported: the catalog is the database of connection.url.", "")).
		Define(connect.ConfigKey{Name: keyTableTypes, Type: connect.TypeList, Default: "TABLE", Importance: connect.Low, Group: db, OrderInGroup: 13,
			Validator: connect.ListOf(connect.OneOfIgnoreCase("TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE", "PARTITIONED TABLE")),
			Doc:       "Kinds of relation to copy: TABLE, VIEW, MATERIALIZED VIEW, FOREIGN TABLE, PARTITIONED TABLE."}).
		Define(connect.ConfigKey{Name: keyNumMapping, Type: connect.TypeString, Importance: connect.Low, Group: db, OrderInGroup: 14,
			Validator: connect.OneOfIgnoreCase(mapNone, mapBestFit, mapBestFitEager, mapPrecision),
			Doc:       "How numeric columns map to Connect types: none (Decimal), best_fit (integers, float64 or Decimal by precision and scale), best_fit_eager_double, precision_only. Default none."}).
		Define(connect.ConfigKey{Name: keyNumPrec, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: db, OrderInGroup: 15,
			Doc: "Deprecated: true means numeric.mapping=precision_only."}).
		Define(jdbcconf.Restricted("quote.sql.identifiers", db, 16, "always", "Identifiers are always quoted; only \"always\" is supported.", "always")).
		Define(connect.ConfigKey{Name: keyStartupWait, Type: connect.TypeLong, Default: "10000", Importance: connect.Low, Group: db, OrderInGroup: 17,
			Doc: "Accepted for compatibility: the tables are listed before Start returns, so there is nothing to wait for."}).
		Define(connect.ConfigKey{Name: keyMode, Type: connect.TypeString, Required: true, Importance: connect.High, Group: mode, OrderInGroup: 1,
			Validator: connect.OneOf(modeBulk, modeInc, modeTS, modeTSInc),
			Doc:       "bulk: copy everything each poll; incrementing: new rows by a strictly increasing column; timestamp: new and changed rows by a timestamp; timestamp+incrementing: both, the robust choice."}).
		Define(connect.ConfigKey{Name: keyIncCol, Type: connect.TypeString, Default: "", Importance: connect.Medium, Group: mode, OrderInGroup: 2,
			Doc: "The strictly increasing integer column (incrementing modes). Empty: a table's first identity or serial column."}).
		Define(connect.ConfigKey{Name: keyTSCols, Type: connect.TypeList, Default: "", Importance: connect.Medium, Group: mode, OrderInGroup: 3,
			Doc: "The timestamp column(s) (timestamp modes); with several, the first non-null one counts (COALESCE)."}).
		Define(connect.ConfigKey{Name: keyTSInitial, Type: connect.TypeLong, Importance: connect.Low, Group: mode, OrderInGroup: 4,
			Doc: "Without stored offset, start at this epoch millisecond; -1: now. Unset: from the beginning."}).
		Define(jdbcconf.Restricted("incrementing.relaxed.monotonic", mode, 10, "false", "Not supported: the incrementing column must grow in commit order (use timestamp+incrementing with timestamp.delay.interval.ms for late commits).", "false")).
		Define(connect.ConfigKey{Name: keyNonNull, Type: connect.TypeBoolean, Default: "true", Importance: connect.Low, Group: mode, OrderInGroup: 5,
			Doc: "Fail when a mode column is nullable (a NULL would be skipped forever)."}).
		Define(connect.ConfigKey{Name: keyQuery, Type: connect.TypeString, Default: "", Importance: connect.Medium, Group: mode, OrderInGroup: 6,
			Doc: "A custom query to copy instead of tables; it is wrapped as a subquery, so the mode columns must be among its columns."}).
		Define(connect.ConfigKey{Name: keySuffix, Type: connect.TypeString, Default: "", Importance: connect.Low, Group: mode, OrderInGroup: 7,
			Doc: "Appended to every query."}).
		Define(jdbcconf.Restricted("transaction.isolation.mode", mode, 8, "DEFAULT", "Only DEFAULT (and READ_COMMITTED, PostgreSQL's default) are supported.", "DEFAULT", "READ_COMMITTED")).
		Define(connect.ConfigKey{Name: keyRetries, Type: connect.TypeInt, Default: "-1", Importance: connect.Low, Group: mode, OrderInGroup: 9,
			Validator: connect.AtLeast(-1), Doc: "How many consecutive transient query failures are retried before the task fails; -1: forever."}).
		Define(connect.ConfigKey{Name: keyTablePoll, Type: connect.TypeLong, Default: "60000", Importance: connect.Low, Group: conn, OrderInGroup: 1,
			Validator: connect.AtLeast(int64(0)), Doc: "How often the table list is checked for changes; 0: never."}).
		Define(connect.ConfigKey{Name: keyPoll, Type: connect.TypeInt, Default: "5000", Importance: connect.High, Group: conn, OrderInGroup: 2,
			Validator: connect.AtLeast(1), Doc: "How long after a table's query ended it is queried again, in milliseconds."}).
		Define(connect.ConfigKey{Name: keyBatch, Type: connect.TypeInt, Default: "100", Importance: connect.Low, Group: conn, OrderInGroup: 3,
			Validator: connect.AtLeast(1), Doc: "The most records one poll returns."}).
		Define(connect.ConfigKey{Name: keyPrefix, Type: connect.TypeString, Required: true, Importance: connect.High, Group: conn, OrderInGroup: 4,
			Doc: "Topic name prefix: the topic is prefix+table, or the prefix alone with a query."}).
		Define(connect.ConfigKey{Name: keyDelay, Type: connect.TypeLong, Default: "0", Importance: connect.High, Group: conn, OrderInGroup: 5,
			Validator: connect.AtLeast(int64(0)), Doc: "Rows whose timestamp is younger than this are left for a later poll, so that transactions that commit late are not skipped."}).
		Define(connect.ConfigKey{Name: keyTimezone, Type: connect.TypeString, Default: "UTC", Importance: connect.Medium, Group: conn, OrderInGroup: 6,
			Validator: connect.ValidatorFunc("an IANA time zone", func(_ string, v any) error {
				if _, err := time.LoadLocation(v.(string)); err != nil || v.(string) == "" {
					return fmt.Errorf("unknown time zone")
				}
				return nil
			}), Doc: "The zone timestamp (without time zone) columns are read in, and the session's TimeZone."}).
		Define(jdbcconf.Restricted("timestamp.granularity", conn, 7, "connect_logical", "Only connect_logical (Connect Timestamp values) is supported.", "connect_logical"))
}

type regexList struct{}

func (regexList) Validate(name string, v any) error {
	for _, p := range v.([]string) {
		if _, err := regexp.Compile(p); err != nil {
			return &connect.ConfigValueError{Name: name, Value: p, Reason: "not a regular expression: " + err.Error()}
		}
	}
	return nil
}

func (regexList) String() string { return "regular expressions" }

// settings are a parsed source config.
type settings struct {
	conn                 jdbcconf.Settings
	mode                 string
	incCol               string
	tsCols               []string
	tsInitial            *int64
	delay                time.Duration
	whitelist, blacklist []string
	include, exclude     []*regexp.Regexp
	schemaPattern        string
	relkinds             []string
	query, suffix        string
	poll, tablePoll      time.Duration
	batch                int
	prefix               string
	nonNull              bool
	numeric              string
	tz                   string
	loc                  *time.Location
	retries              int
}

func (s *settings) usesInc() bool { return s.mode == modeInc || s.mode == modeTSInc }
func (s *settings) usesTS() bool  { return s.mode == modeTS || s.mode == modeTSInc }

func parse(config map[string]string) (*settings, map[string][]string) {
	c, errs := configDef().Parse(config)
	if len(errs) > 0 {
		return nil, errs
	}
	errs = map[string][]string{}
	s := &settings{mode: c.String(keyMode), incCol: c.String(keyIncCol), tsCols: c.List(keyTSCols),
		delay: time.Duration(c.Long(keyDelay)) * time.Millisecond, whitelist: c.List(keyWhitelist), blacklist: c.List(keyBlacklist),
		schemaPattern: c.String(keySchema), query: strings.TrimSpace(c.String(keyQuery)), suffix: c.String(keySuffix),
		poll: time.Duration(c.Int(keyPoll)) * time.Millisecond, tablePoll: time.Duration(c.Long(keyTablePoll)) * time.Millisecond,
		batch: int(c.Int(keyBatch)), prefix: c.String(keyPrefix), nonNull: c.Bool(keyNonNull), tz: c.String(keyTimezone),
		retries: int(c.Int(keyRetries)), numeric: strings.ToLower(c.String(keyNumMapping))}
	s.query = strings.TrimSpace(strings.TrimSuffix(s.query, ";"))
	s.loc, _ = time.LoadLocation(s.tz)
	if c.Has(keyTSInitial) {
		v := c.Long(keyTSInitial)
		s.tsInitial = &v
	}
	if s.numeric == "" {
		s.numeric = mapNone
		if c.Bool(keyNumPrec) {
			s.numeric = mapPrecision
		}
	}
	for _, p := range c.List(keyInclude) {
		s.include = append(s.include, regexp.MustCompile(`^(?:`+p+`)$`))
	}
	for _, p := range c.List(keyExclude) {
		s.exclude = append(s.exclude, regexp.MustCompile(`^(?:`+p+`)$`))
	}
	for _, t := range c.List(keyTableTypes) {
		s.relkinds = append(s.relkinds, relkinds[strings.ToUpper(t)])
	}
	lists := 0
	for _, k := range []string{keyWhitelist, keyBlacklist, keyInclude, keyExclude} {
		if len(c.List(k)) > 0 {
			lists++
			if s.query != "" {
				errs[k] = append(errs[k], k+" cannot be used with query: a query replaces the tables")
			}
		}
	}
	if len(s.whitelist) > 0 && len(s.blacklist) > 0 {
		errs[keyBlacklist] = append(errs[keyBlacklist], "table.whitelist and table.blacklist cannot both be set")
	}
	if (len(s.whitelist) > 0 || len(s.blacklist) > 0) && (len(s.include) > 0 || len(s.exclude) > 0) {
		errs[keyInclude] = append(errs[keyInclude], "table.include.list/table.exclude.list cannot be used with table.whitelist/table.blacklist: use one style")
	}
	if s.usesTS() && len(s.tsCols) == 0 {
		errs[keyTSCols] = append(errs[keyTSCols], fmt.Sprintf("mode %s needs timestamp.column.name", s.mode))
	}
	if s.usesInc() && s.incCol == "" && s.query != "" {
		errs[keyIncCol] = append(errs[keyIncCol], fmt.Sprintf("mode %s with a query needs incrementing.column.name (it cannot be detected in a query)", s.mode))
	}
	if !s.usesInc() && s.incCol != "" {
		errs[keyIncCol] = append(errs[keyIncCol], fmt.Sprintf("incrementing.column.name is set but mode %s does not use it", s.mode))
	}
	if !s.usesTS() && len(s.tsCols) > 0 {
		errs[keyTSCols] = append(errs[keyTSCols], fmt.Sprintf("timestamp.column.name is set but mode %s does not use it", s.mode))
	}
	conn, cerrs := jdbcconf.FromConfig(c)
	for k, m := range cerrs {
		errs[k] = append(errs[k], m...)
	}
	if len(cerrs) == 0 {
		conn.Config.RuntimeParams["TimeZone"] = s.tz
		if conn.Config.RuntimeParams["application_name"] == "" {
			conn.Config.RuntimeParams["application_name"] = "tributary-query-source"
		}
	}
	s.conn = conn
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// tableRef names a table.
type tableRef struct{ Schema, Name string }

func (t tableRef) String() string { return t.Schema + "." + t.Name }

// listTables lists the tables the config selects, in name order.
func listTables(ctx context.Context, conn *pgx.Conn, s *settings) ([]tableRef, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind::text = ANY($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
		AND n.nspname NOT LIKE 'pg\_temp\_%' AND ($2 = '' OR n.nspname LIKE $2) AND has_table_privilege(c.oid, 'SELECT')
		ORDER BY 1, 2`, s.relkinds, s.schemaPattern)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tableRef, error) {
		var t tableRef
		return t, r.Scan(&t.Schema, &t.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	var out []tableRef
	for _, t := range all {
		if s.selects(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// selects applies the table lists.
func (s *settings) selects(t tableRef) bool {
	named := func(list []string) bool {
		for _, n := range list {
			if n == t.Name || n == t.String() || strings.HasSuffix(n, "."+t.String()) {
				return true
			}
		}
		return false
	}
	matches := func(res []*regexp.Regexp) bool {
		for _, re := range res {
			if re.MatchString(t.String()) {
				return true
			}
		}
		return false
	}
	switch {
	case len(s.whitelist) > 0 && !named(s.whitelist), named(s.blacklist):
		return false
	case len(s.include) > 0 && !matches(s.include), matches(s.exclude):
		return false
	}
	return true
}

// Source is the query source connector.
type Source struct {
	mu     sync.Mutex
	s      *settings
	config map[string]string
	tables []tableRef
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewSource returns a PostgreSQL query source connector.
func NewSource() connect.Connector { return &Source{} }

func (c *Source) Version() string               { return version }
func (c *Source) ConfigDef() *connect.ConfigDef { return configDef() }

// NewTask returns a new, unstarted task.
func (c *Source) NewTask() connect.SourceTask { return &SourceTask{} }

// Start lists the tables and, with table.poll.interval.ms, watches for
// changes to the list (a goroutine that Stop ends).
func (c *Source) Start(ctx context.Context, cc connect.ConnectorContext, config map[string]string) error {
	s, errs := parse(config)
	if len(errs) > 0 {
		return fmt.Errorf("postgres query source config: %v", errs)
	}
	c.s, c.config = s, config
	if s.query != "" {
		return nil
	}
	tables, err := c.list(ctx)
	if err != nil {
		return err
	}
	c.tables = tables
	if s.tablePoll <= 0 {
		return nil
	}
	mctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go c.monitor(mctx, cc)
	return nil
}

func (c *Source) list(ctx context.Context) ([]tableRef, error) {
	conn, err := c.s.conn.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return listTables(ctx, conn, c.s)
}

// monitor lists the tables every table.poll.interval.ms and asks for a
// reconfiguration when they changed.
func (c *Source) monitor(ctx context.Context, cc connect.ConnectorContext) {
	defer c.wg.Done()
	t := time.NewTicker(c.s.tablePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tables, err := c.list(ctx)
		if err != nil {
			continue // a transient failure: look again next time
		}
		c.mu.Lock()
		changed := fmt.Sprint(tables) != fmt.Sprint(c.tables)
		c.tables = tables
		c.mu.Unlock()
		if changed && cc != nil {
			cc.RequestTaskReconfiguration()
		}
	}
}

// TaskConfigs gives a query to one task, and spreads tables round-robin
// over up to maxTasks tasks (no tasks when no table is selected).
func (c *Source) TaskConfigs(_ context.Context, maxTasks int) ([]map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	base := func() map[string]string {
		m := make(map[string]string, len(c.config)+1)
		for k, v := range c.config {
			m[k] = v
		}
		return m
	}
	if c.s.query != "" {
		return []map[string]string{base()}, nil
	}
	n := min(maxTasks, len(c.tables))
	groups := make([][][2]string, n)
	for i, t := range c.tables {
		groups[i%n] = append(groups[i%n], [2]string{t.Schema, t.Name})
	}
	out := make([]map[string]string, n)
	for i, g := range groups {
		b, err := json.Marshal(g)
		if err != nil {
			return nil, err
		}
		out[i] = base()
		out[i][tablesTask] = string(b)
	}
	return out, nil
}

// Stop ends the table monitor and waits for it. It is idempotent.
func (c *Source) Stop(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}

// Validate checks the rules across keys and, against the database (within
// 15 s), that the tables and the mode columns exist and fit the mode.
func (c *Source) Validate(ctx context.Context, config map[string]string) (map[string][]string, error) {
	s, errs := parse(config)
	if len(errs) > 0 {
		return errs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cs := s.conn
	cs.Attempts = 1
	conn, err := cs.Connect(ctx)
	if err != nil {
		return map[string][]string{jdbcconf.URLKey: {err.Error()}}, nil
	}
	defer conn.Close(context.Background())
	errs = map[string][]string{}
	var qs []*querier
	if s.query != "" {
		qs = append(qs, newQuerier(s, "", tableRef{}))
	} else {
		tables, err := listTables(ctx, conn, s)
		if err != nil {
			return map[string][]string{"": {err.Error()}}, nil
		}
		for _, w := range s.whitelist {
			found := false
			for _, t := range tables {
				found = found || w == t.Name || w == t.String() || strings.HasSuffix(w, "."+t.String())
			}
			if !found {
				errs[keyWhitelist] = append(errs[keyWhitelist], fmt.Sprintf("table %q does not exist in database %s (or is not readable, or not of table.types %v)", w, s.conn.Config.Database, config[keyTableTypes]))
			}
		}
		if len(tables) == 0 && len(errs) == 0 {
			errs[""] = append(errs[""], "no table matches the table lists, schema.pattern and table.types: the connector would copy nothing")
		}
		for i, t := range tables {
			if i == 200 {
				break // enough to catch a wrong column name; tasks check every table when they start
			}
			qs = append(qs, newQuerier(s, "", t))
		}
	}
	for _, q := range qs {
		if err := q.describe(ctx, conn); err != nil {
			k := keyOf(err)
			errs[k] = append(errs[k], err.Error())
		}
	}
	return errs, nil
}
