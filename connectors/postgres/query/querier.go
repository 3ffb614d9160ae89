package query

// A querier reads one table (or the custom query): it describes the
// relation, builds the mode's SQL (see the package doc), keeps the offset,
// and reads an open result set across polls.
//
// Offsets (version 1: Confluent's JDBC source format, "protocol 1"):
//
//	source partition  {"protocol": "1", "table": "<database>.<schema>.<table>"}
//	                  {"query": "query"} for a custom query
//	offset            {"incrementing": <int64>}                         mode incrementing
//	                  {"timestamp": <ms since the epoch>,
//	                   "timestamp_nanos": <ns within that second>}       mode timestamp
//	                  both sets of keys                                 mode timestamp+incrementing
//	                  none (records carry the partition only)           mode bulk
//
// Only the last record of a poll carries the offset (the worker stores one
// per batch and partition). At start, an offset stored under Confluent's
// older partition {"table": "<table>"} (protocol 0) is used when the
// protocol 1 partition has none. Numbers may come back from the offset
// store as int64, float64 or json.Number; all are read. Without a stored
// offset, incrementing reads every row (no lower bound) and timestamp
// modes start at timestamp.initial, or read every row up to the delay.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connectors/postgres/jdbcconf"
)

// Offset and partition keys, as Confluent's connector writes them.
const (
	offInc      = "incrementing"
	offTS       = "timestamp"
	offTSNanos  = "timestamp_nanos"
	partProto   = "protocol"
	partTable   = "table"
	partQuery   = "query"
	hiddenTS    = `"__tributary_ts"`
	hiddenInc   = `"__tributary_inc"`
	queryAlias  = `"tributary_query"`
	protocolOne = "1"
)

// keyedError is a problem with the config, found against the database; key
// is the config key to blame.
type keyedError struct {
	key string
	msg string
}

func (e *keyedError) Error() string { return e.msg }

func keyOf(err error) string {
	var ke *keyedError
	if errors.As(err, &ke) {
		return ke.key
	}
	return ""
}

type querier struct {
	s          *settings
	table      tableRef // zero for the custom query
	topic      string
	schemaName string
	base       string // the FROM clause
	partition  map[string]any
	legacy     map[string]any // Confluent's protocol 0 partition

	hasInc, hasTS bool // whether inc and ts hold an offset
	inc           int64
	ts            time.Time

	plan   *readPlan
	rows   pgx.Rows
	cancel context.CancelFunc
	next   time.Time // when to query again (no open result set)
}

// readPlan is how the current columns of the relation are read.
type readPlan struct {
	sig         string
	cols        []column
	dests       []any
	schema      *connect.Schema
	first, next string // the SQL without and with a stored offset
	tsAt, incAt int    // positions of the hidden offset columns, or -1
}

func newQuerier(s *settings, db string, t tableRef) *querier {
	q := &querier{s: s, table: t}
	if t.Name == "" {
		q.topic, q.base = s.prefix, "("+s.query+") AS "+queryAlias
		q.partition = map[string]any{partQuery: partQuery}
		return q
	}
	q.topic, q.schemaName, q.base = s.prefix+t.Name, t.Name, jdbcconf.QuoteQualified(t.Schema, t.Name)
	q.partition = map[string]any{partProto: protocolOne, partTable: db + "." + t.Schema + "." + t.Name}
	q.legacy = map[string]any{partTable: t.Name}
	return q
}

func (q *querier) what() string {
	if q.table.Name == "" {
		return "the query"
	}
	return "table " + q.table.String()
}

// describe reads the relation's columns and (re)builds the plan when they
// changed. Config problems are *keyedError.
func (q *querier) describe(ctx context.Context, conn *pgx.Conn) error {
	sd, err := conn.Prepare(ctx, "", "SELECT * FROM "+q.base+" LIMIT 0")
	if err != nil {
		var pe *pgconn.PgError
		switch {
		case !errors.As(err, &pe):
			return err
		case q.table.Name == "":
			return &keyedError{keyQuery, "the query does not run: " + pe.Message + " (" + pe.Code + ")"}
		case pe.Code == "42P01":
			return &keyedError{keyWhitelist, fmt.Sprintf("table %s does not exist any more", q.table)}
		case pe.Code == "42501":
			return &keyedError{jdbcconf.UserKey, fmt.Sprintf("the user may not read table %s: GRANT SELECT on it", q.table)}
		}
		return err
	}
	var sig strings.Builder
	for _, f := range sd.Fields {
		fmt.Fprintf(&sig, "%s/%d/%d/%d/%d,", f.Name, f.DataTypeOID, f.TypeModifier, f.TableOID, f.TableAttributeNumber)
	}
	if q.plan != nil && q.plan.sig == sig.String() {
		return nil
	}
	notNull, err := notNulls(ctx, conn, sd.Fields)
	if err != nil {
		return err
	}
	p := &readPlan{sig: sig.String(), tsAt: -1, incAt: -1}
	byName := map[string]int{}
	var fields []connect.Field
	var sel, names []string
	for i, f := range sd.Fields {
		if _, dup := byName[f.Name]; dup {
			return &keyedError{keyQuery, fmt.Sprintf("the query returns two columns named %q: give one an alias", f.Name)}
		}
		byName[f.Name] = i
		c := mapColumn(f, q.s.numeric, notNull[i])
		p.cols = append(p.cols, c)
		p.dests = append(p.dests, c.dest())
		fields = append(fields, connect.F(c.name, c.schema))
		names = append(names, f.Name)
		if c.asText {
			sel = append(sel, jdbcconf.Quote(f.Name)+"::text AS "+jdbcconf.Quote(f.Name))
		} else {
			sel = append(sel, jdbcconf.Quote(f.Name))
		}
	}
	p.schema = connect.StructOf(q.schemaName, fields...)
	if q.schemaName == "" {
		p.schema.Name = ""
	}
	col := func(key, name string, ok func(f pgconn.FieldDescription) bool, want string, checkNull bool) (string, error) {
		i, found := byName[name]
		if !found {
			return "", &keyedError{key, fmt.Sprintf("column %q does not exist in %s (its columns: %s)", name, q.what(), strings.Join(names, ", "))}
		}
		f := sd.Fields[i]
		if !ok(f) {
			return "", &keyedError{key, fmt.Sprintf("column %q of %s is %s; %s needs %s: name another column, or change the mode", name, q.what(), typeName(ctx, conn, f), q.s.mode, want)}
		}
		if checkNull && q.s.nonNull && f.TableOID != 0 && !notNull[i] {
			return "", &keyedError{key, fmt.Sprintf("column %q of %s is nullable, so rows where it is NULL would never be read: make it NOT NULL, or set validate.non.null=false", name, q.what())}
		}
		return jdbcconf.Quote(name), nil
	}
	var tsExpr, incExpr string
	if q.s.usesTS() {
		var parts []string
		for _, n := range q.s.tsCols {
			e, err := col(keyTSCols, n, func(f pgconn.FieldDescription) bool {
				return f.DataTypeOID == oidTimestamp || f.DataTypeOID == oidTimestamptz
			}, "a timestamp or timestamptz column", len(q.s.tsCols) == 1)
			if err != nil {
				return err
			}
			parts = append(parts, e)
		}
		tsExpr = parts[0]
		if len(parts) > 1 {
			tsExpr = "COALESCE(" + strings.Join(parts, ", ") + ")"
		}
		p.tsAt = len(p.dests)
		p.dests = append(p.dests, new(pgtype.Timestamptz))
		sel = append(sel, "("+tsExpr+")::timestamptz AS "+hiddenTS)
	}
	if q.s.usesInc() {
		name := q.s.incCol
		if name == "" {
			if name, err = autoIncrement(ctx, conn, q.table); err != nil {
				return err
			}
		}
		if incExpr, err = col(keyIncCol, name, func(f pgconn.FieldDescription) bool {
			return f.DataTypeOID == oidInt2 || f.DataTypeOID == oidInt4 || f.DataTypeOID == oidInt8 ||
				(f.DataTypeOID == oidNumeric && f.TypeModifier >= 4 && (f.TypeModifier-4)&0xffff == 0)
		}, "an integer column (smallint, integer, bigint, numeric(p,0))", true); err != nil {
			return err
		}
		p.incAt = len(p.dests)
		p.dests = append(p.dests, new(pgtype.Int8))
		sel = append(sel, incExpr+"::bigint AS "+hiddenInc)
	}
	selectSQL := "SELECT " + strings.Join(sel, ", ") + " FROM " + q.base
	end := "now() - %s::bigint * interval '1 millisecond'"
	switch q.s.mode {
	case modeBulk:
		p.first = selectSQL
	case modeInc:
		p.first = selectSQL + " WHERE " + incExpr + " IS NOT NULL ORDER BY " + incExpr + " ASC"
		p.next = selectSQL + " WHERE " + incExpr + " > $1::bigint ORDER BY " + incExpr + " ASC"
	case modeTS:
		p.first = selectSQL + " WHERE " + tsExpr + " < " + fmt.Sprintf(end, "$1") + " ORDER BY " + tsExpr + " ASC"
		p.next = selectSQL + " WHERE " + tsExpr + " > $1 AND " + tsExpr + " < " + fmt.Sprintf(end, "$2") + " ORDER BY " + tsExpr + " ASC"
	case modeTSInc:
		p.first = selectSQL + " WHERE " + tsExpr + " < " + fmt.Sprintf(end, "$1") + " AND " + incExpr + " IS NOT NULL ORDER BY " + tsExpr + " ASC, " + incExpr + " ASC"
		p.next = selectSQL + " WHERE " + tsExpr + " < " + fmt.Sprintf(end, "$3") + " AND ((" + tsExpr + " = $1 AND " + incExpr + " > $2::bigint) OR " +
			tsExpr + " > $1) ORDER BY " + tsExpr + " ASC, " + incExpr + " ASC"
	}
	if q.s.suffix != "" {
		p.first += " " + q.s.suffix
		if p.next != "" {
			p.next += " " + q.s.suffix
		}
	}
	q.plan = p
	return nil
}

// notNulls reports, per field, whether it is a NOT NULL table column.
func notNulls(ctx context.Context, conn *pgx.Conn, fields []pgconn.FieldDescription) ([]bool, error) {
	out := make([]bool, len(fields))
	var oids []uint32
	for _, f := range fields {
		if f.TableOID != 0 {
			oids = append(oids, f.TableOID)
		}
	}
	if len(oids) == 0 {
		return out, nil
	}
	rows, err := conn.Query(ctx, `SELECT attrelid, attnum FROM pg_catalog.pg_attribute WHERE attrelid = ANY($1) AND attnum > 0 AND attnotnull`, oids)
	if err != nil {
		return nil, err
	}
	set := map[[2]int64]bool{}
	for rows.Next() {
		var rel uint32
		var num int16
		if err := rows.Scan(&rel, &num); err != nil {
			rows.Close()
			return nil, err
		}
		set[[2]int64{int64(rel), int64(num)}] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, f := range fields {
		out[i] = set[[2]int64{int64(f.TableOID), int64(f.TableAttributeNumber)}]
	}
	return out, nil
}

func typeName(ctx context.Context, conn *pgx.Conn, f pgconn.FieldDescription) string {
	var s string
	if err := conn.QueryRow(ctx, "SELECT format_type($1, $2)", f.DataTypeOID, f.TypeModifier).Scan(&s); err != nil {
		return fmt.Sprintf("of type OID %d", f.DataTypeOID)
	}
	return s
}

// autoIncrement finds a table's first identity or serial column.
func autoIncrement(ctx context.Context, conn *pgx.Conn, t tableRef) (string, error) {
	var name string
	err := conn.QueryRow(ctx, `SELECT a.attname FROM pg_catalog.pg_attribute a
		LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
		AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
		ORDER BY a.attnum LIMIT 1`, jdbcconf.QuoteQualified(t.Schema, t.Name)).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &keyedError{keyIncCol, fmt.Sprintf("table %s has no identity or serial column to use as incrementing column: set incrementing.column.name", t)}
	}
	return name, err
}

// open runs the mode's query from the current offset; the result set
// stays open (on a context of its own, derived from the task's) until read
// to its end or closed.
func (q *querier) open(taskCtx context.Context, conn *pgx.Conn) error {
	p := q.plan
	sql, args := p.first, []any{pgx.QueryExecModeDescribeExec}
	delay := q.s.delay.Milliseconds()
	switch q.s.mode {
	case modeInc:
		if q.hasInc {
			sql, args = p.next, append(args, q.inc)
		}
	case modeTS:
		if q.hasTS {
			sql, args = p.next, append(args, q.ts.In(q.s.loc), delay)
		} else {
			args = append(args, delay)
		}
	case modeTSInc:
		if q.hasTS {
			inc := q.inc
			if !q.hasInc {
				inc = math.MinInt64
			}
			sql, args = p.next, append(args, q.ts.In(q.s.loc), inc, delay)
		} else {
			args = append(args, delay)
		}
	}
	ctx, cancel := context.WithCancel(taskCtx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return err
	}
	q.rows, q.cancel = rows, cancel
	return nil
}

// close ends the open result set, if any.
func (q *querier) close() {
	if q.rows != nil {
		q.rows.Close()
		q.rows = nil
	}
	if q.cancel != nil {
		q.cancel()
		q.cancel = nil
	}
}

// read returns up to max records from the open result set, and whether it
// is exhausted. pollCtx cancels the read. The offset advances only when
// read succeeds.
func (q *querier) read(pollCtx context.Context, max int) ([]connect.SourceRecord, bool, error) {
	stop := context.AfterFunc(pollCtx, q.cancel)
	defer stop()
	p := q.plan
	inc, ts, hasInc, hasTS := q.inc, q.ts, q.hasInc, q.hasTS
	var out []connect.SourceRecord
	done := false
	for len(out) < max {
		if !q.rows.Next() {
			if err := q.rows.Err(); err != nil {
				return nil, false, err
			}
			done = true
			break
		}
		if err := q.rows.Scan(p.dests...); err != nil {
			return nil, false, err
		}
		st := connect.NewStruct(p.schema)
		for i := range p.cols {
			v, err := p.cols[i].value(p.dests[i], q.s.loc)
			if err != nil {
				return nil, false, fmt.Errorf("%s: %w", q.what(), err)
			}
			if _, err := st.Put(p.cols[i].name, v); err != nil {
				return nil, false, fmt.Errorf("%s: %w", q.what(), err)
			}
		}
		if p.incAt >= 0 {
			if v := p.dests[p.incAt].(*pgtype.Int8); v.Valid {
				inc, hasInc = v.Int64, true
			}
		}
		if p.tsAt >= 0 {
			if v := p.dests[p.tsAt].(*pgtype.Timestamptz); v.Valid && v.InfinityModifier == pgtype.Finite {
				ts, hasTS = v.Time, true
			}
		}
		if out == nil {
			out = make([]connect.SourceRecord, 0, min(max, 256))
		}
		out = append(out, connect.SourceRecord{
			Record:          connect.Record{Topic: q.topic, ValueSchema: p.schema, Value: st},
			SourcePartition: q.partition,
		})
	}
	q.inc, q.ts, q.hasInc, q.hasTS = inc, ts, hasInc, hasTS
	if n := len(out); n > 0 && q.s.mode != modeBulk {
		out[n-1].SourceOffset = q.offset()
	}
	return out, done, nil
}

// offset renders the current offset in Confluent's format.
func (q *querier) offset() map[string]any {
	m := map[string]any{}
	if q.s.usesInc() && q.hasInc {
		m[offInc] = q.inc
	}
	if q.s.usesTS() && q.hasTS {
		m[offTS] = q.ts.UnixMilli()
		m[offTSNanos] = int64(q.ts.Nanosecond())
	}
	return m
}

// restore applies a stored offset.
func (q *querier) restore(off map[string]any) error {
	if v, ok := off[offInc]; ok {
		n, err := asInt64(v)
		if err != nil {
			return fmt.Errorf("stored offset of %s: %q: %w", q.what(), offInc, err)
		}
		q.inc, q.hasInc = n, true
	}
	if v, ok := off[offTS]; ok {
		ms, err := asInt64(v)
		if err != nil {
			return fmt.Errorf("stored offset of %s: %q: %w", q.what(), offTS, err)
		}
		sec := ms / 1000
		if ms%1000 < 0 {
			sec--
		}
		nanos := (ms - sec*1000) * 1e6
		if v, ok := off[offTSNanos]; ok {
			if nanos, err = asInt64(v); err != nil {
				return fmt.Errorf("stored offset of %s: %q: %w", q.what(), offTSNanos, err)
			}
		}
		q.ts, q.hasTS = time.Unix(sec, nanos).UTC(), true
	}
	return nil
}

func asInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float64:
		return int64(x), nil
	case interface{ Int64() (int64, error) }: // json.Number
		return x.Int64()
	}
	return 0, fmt.Errorf("not a number: %v (%T)", v, v)
}
