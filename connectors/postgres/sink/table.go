package sink

// Target tables: naming, introspection, auto.create / auto.evolve, and the
// write plans (the SQL one table and record shape are written with).
//
// A plan of mode insert COPYs rows (text format) straight into the table.
// The other modes COPY rows into the session's staging table, one
// temporary table of text columns shared by every target (op, seg, c0,
// c1, ...; ON COMMIT DELETE ROWS), then apply them in the same transaction,
// casting each column to its type:
//
//	DELETE FROM t AS tgt USING stage s WHERE s.seg = $1 AND s.op = 'd' AND tgt.pk = s.c0::type ...
//	INSERT INTO t (cols) SELECT s.c0::type, ... FROM stage s WHERE s.seg = $1 AND s.op = 'w'
//	    ON CONFLICT (pk) DO UPDATE SET col = EXCLUDED.col ...              (upsert)
//	UPDATE t AS tgt SET col = s.cN::type ... FROM stage s
//	    WHERE s.seg = $1 AND s.op = 'w' AND tgt.pk = s.c0::type ...      (update)
//
// One staging table per session, rather than one per target table, keeps
// the cost of a commit constant: PostgreSQL truncates every ON COMMIT
// DELETE ROWS table of a session at each commit (measured: 0.35 ms per
// table, so 35 ms a commit with 100 per-table staging tables). Casts name
// the type without modifier (varchar, not varchar(5)), so that the
// assignment to the column applies the modifier and rejects a value that
// does not fit instead of truncating it. A CDC update leaves out a TOASTed
// value it did not change and sends Debezium's placeholder
// (__debezium_unavailable_value) instead: for string, bytea and json
// columns, upserts and updates keep the column's current value then. Keys
// are unique within one load
// (see batch.go), so the order of the statements does not matter.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-data/tributary/connectors/postgres/jdbcconf"
)

// tableID names a target table.
type tableID struct{ schema, name string }

func (t tableID) String() string { return jdbcconf.QuoteQualified(t.schema, t.name) }

// tableFor applies table.name.format to a topic: the result is split on its
// dot into schema and table when it has exactly one dot, and is otherwise
// one table name in the public schema (a CDC topic prefix.schema.table
// becomes the table "prefix.schema.table").
func tableFor(format, topic string) tableID {
	name := strings.ReplaceAll(format, "${topic}", topic)
	if strings.Count(name, ".") == 1 {
		s, t, _ := strings.Cut(name, ".")
		return tableID{s, t}
	}
	return tableID{"public", name}
}

// column is a target table's column.
type column struct {
	name     string
	typ      string // format_type with modifiers, for messages
	cast     string // format_type without modifiers, for casts
	category byte   // pg_type.typcategory (domains: their base type's)
	typname  string
	notNull  bool
}

// tableMeta is what the sink knows of a target table.
type tableMeta struct {
	id      tableID
	kind    byte // pg_class.relkind
	cols    []column
	byName  map[string]int
	byLower map[string]int // -1 when two columns differ only in case
	pk      []string       // primary key columns
	uniques [][]string     // primary key and unique indexes, without predicates or expressions
}

// lookup finds a column by exact name, else by a case-insensitive match
// when it is unique (a table created without quotes has lower-case names).
func (m *tableMeta) lookup(name string) (*column, bool) {
	if i, ok := m.byName[name]; ok {
		return &m.cols[i], true
	}
	if i, ok := m.byLower[strings.ToLower(name)]; ok && i >= 0 {
		return &m.cols[i], true
	}
	return nil, false
}

// describe reads a table's columns and unique keys (nil: no such table).
func (w *writer) describe(ctx context.Context, id tableID) (*tableMeta, error) {
	var oid uint32
	var kind byte
	err := w.tx.QueryRow(ctx, `SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p','v','f','m')`, id.schema, id.name).Scan(&oid, &kind)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return nil, err
	}
	m := &tableMeta{id: id, kind: kind, byName: map[string]int{}, byLower: map[string]int{}}
	rows, err := w.tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL), t.typcategory, t.typname, a.attnotnull
		FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.cast, &c.category, &c.typname, &c.notNull); err != nil {
			rows.Close()
			return nil, err
		}
		m.byName[c.name] = len(m.cols)
		l := strings.ToLower(c.name)
		if _, dup := m.byLower[l]; dup {
			m.byLower[l] = -1
		} else {
			m.byLower[l] = len(m.cols)
		}
		m.cols = append(m.cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = w.tx.Query(ctx, `SELECT i.indisprimary, ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord)
		FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		ORDER BY i.indisprimary DESC`, oid)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var primary bool
		var cols []string
		if err := rows.Scan(&primary, &cols); err != nil {
			rows.Close()
			return nil, err
		}
		if primary {
			m.pk = cols
		}
		m.uniques = append(m.uniques, cols)
	}
	rows.Close()
	return m, rows.Err()
}

// meta returns a table's description, from the cache of this connection.
func (w *writer) meta(ctx context.Context, id tableID) (*tableMeta, error) {
	if m, ok := w.metas[id]; ok {
		return m, nil // nil: known not to exist in this transaction
	}
	m, err := w.describe(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the definition of table %s: %w", id, err)
	}
	w.metas[id] = m
	return m, nil
}

// ddlError wraps a failed CREATE or ALTER. Concurrent DDL by another task
// (the table or column appeared meanwhile) is transient: the retry sees it.
type ddlError struct{ err error }

func (e *ddlError) Error() string { return e.err.Error() }
func (e *ddlError) Unwrap() error { return e.err }
func (e *ddlError) transient() bool {
	var pe *pgconn.PgError
	if errors.As(e.err, &pe) {
		switch pe.Code {
		case "42P07", "42701", "23505", "42710":
			return true
		}
	}
	return false
}

// createTable creates a table for a shape (auto.create).
func (w *writer) createTable(ctx context.Context, id tableID, sh *shape) error {
	if sh.schemaless {
		return fmt.Errorf("table %s does not exist and auto.create cannot create it from schemaless records (JSON without schemas): create the table, or send records with schemas", id)
	}
	var defs []string
	for i := range sh.cols {
		c := &sh.cols[i]
		def, err := w.columnDef(c, sh.isPK(i))
		if err != nil {
			return fmt.Errorf("auto.create of table %s: %w", id, err)
		}
		defs = append(defs, def)
	}
	if len(sh.pk) > 0 {
		var pk []string
		for _, i := range sh.pk {
			pk = append(pk, jdbcconf.Quote(sh.cols[i].name))
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
	}
	sql := "CREATE TABLE IF NOT EXISTS " + id.String() + " (" + strings.Join(defs, ", ") + ")"
	if _, err := w.tx.Exec(ctx, sql); err != nil {
		return &ddlError{fmt.Errorf("auto.create of table %s: %w", id, err)}
	}
	return nil
}

func (w *writer) columnDef(c *shapeCol, pk bool) (string, error) {
	typ, err := pgType(c.schema)
	if err != nil {
		return "", fmt.Errorf("field %q: %w", c.name, err)
	}
	def := jdbcconf.Quote(c.name) + " " + typ
	if lit, ok := literal(c.schema, typ, w.s.loc); ok {
		def += " DEFAULT " + lit
	}
	if pk || !c.schema.Optional {
		def += " NOT NULL"
	}
	return def, nil
}

// evolve adds the shape's missing columns (auto.evolve).
func (w *writer) evolve(ctx context.Context, m *tableMeta, missing []*shapeCol) error {
	var adds []string
	for _, c := range missing {
		if c.schema == nil {
			return fmt.Errorf("table %s has no column %q and auto.evolve cannot add one from schemaless records: add the column", m.id, c.name)
		}
		if !c.schema.Optional && c.schema.Default == nil {
			return fmt.Errorf("table %s has no column %q and auto.evolve cannot add it: the field is required and has no default, so existing rows would have no value for it; make the field optional, give it a default, or add the column by hand", m.id, c.name)
		}
		typ, err := pgType(c.schema)
		if err != nil {
			return fmt.Errorf("auto.evolve of table %s: field %q: %w", m.id, c.name, err)
		}
		def := "ADD COLUMN IF NOT EXISTS " + jdbcconf.Quote(c.name) + " " + typ
		if lit, ok := literal(c.schema, typ, w.s.loc); ok {
			def += " DEFAULT " + lit
		}
		if !c.schema.Optional {
			def += " NOT NULL"
		}
		adds = append(adds, def)
	}
	if _, err := w.tx.Exec(ctx, "ALTER TABLE "+m.id.String()+" "+strings.Join(adds, ", ")); err != nil {
		return &ddlError{fmt.Errorf("auto.evolve of table %s: %w", m.id, err)}
	}
	return nil
}

// plan is how rows of one shape are written to one table in one mode.
type plan struct {
	id      tableID
	shape   *shape
	mode    writeMode
	enc     []encoder
	cols    []*column
	pkPos   []int // plan column positions of the key columns, in key order
	colPK   []int // per plan column: its position in the key, or -1
	pkNames string
	copySQL string // into the table (mode insert) or the staging table
	delSQL  string // $1: the segment number in the staging table
	wrSQL   string // $1 likewise; "" when there is nothing to write
}

type planKey struct {
	id    tableID
	shape *shape
	mode  writeMode
}

// planFor returns the plan of a shape on a table, creating or evolving the
// table as configured. A nil plan (and nil error) means there is nothing
// to do: a delete from a table that does not exist.
func (w *writer) planFor(ctx context.Context, id tableID, sh *shape, mode writeMode) (*plan, error) {
	k := planKey{id, sh, mode}
	if p, ok := w.plans[k]; ok {
		return p, nil
	}
	m, err := w.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	if m == nil {
		if mode == modeDelete {
			return nil, nil
		}
		if !w.s.autoCreate {
			return nil, fmt.Errorf("table %s does not exist: create it, or set auto.create=true", id)
		}
		if err := w.createTable(ctx, id, sh); err != nil {
			return nil, err
		}
		delete(w.metas, id)
		if m, err = w.meta(ctx, id); err != nil {
			return nil, err
		}
		if m == nil {
			return nil, fmt.Errorf("table %s was created but cannot be found: check search_path and privileges", id)
		}
	}
	switch {
	case m.kind == 'v' && !w.s.views:
		return nil, fmt.Errorf("%s is a view and table.types does not include VIEW: add VIEW to table.types to write into it", id)
	case m.kind != 'r' && m.kind != 'p' && m.kind != 'v':
		return nil, fmt.Errorf("%s is not a table (relkind %c): the sink writes into tables", id, m.kind)
	}
	cols, missing := resolve(m, sh)
	if len(missing) > 0 {
		if !w.s.autoEvolve {
			var names []string
			for _, c := range missing {
				names = append(names, strconv.Quote(c.name))
			}
			return nil, fmt.Errorf("table %s has no column(s) %s that the records have: add them, or set auto.evolve=true", id, strings.Join(names, ", "))
		}
		if err := w.evolve(ctx, m, missing); err != nil {
			return nil, err
		}
		delete(w.metas, id)
		if m, err = w.meta(ctx, id); err != nil {
			return nil, err
		}
		if cols, missing = resolve(m, sh); len(missing) > 0 {
			return nil, fmt.Errorf("table %s still lacks column %q after auto.evolve", id, missing[0].name)
		}
	}
	p := &plan{id: id, shape: sh, mode: mode, pkNames: sh.pkNames, cols: cols}
	for i, col := range cols {
		sc := &sh.cols[i]
		if sc.schema != nil && !compatible(sc.schema, col) {
			return nil, fmt.Errorf("field %q (%s) cannot be written to column %q of table %s, which is %s: change the column's type, or convert the field before the sink (Cast or TimestampConverter transforms)",
				sc.name, sc.schema, col.name, id, col.typ)
		}
		enc, err := newEncoder(sc.schema, col, w.s.loc)
		if err != nil {
			return nil, fmt.Errorf("field %q of table %s: %w", sc.name, id, err)
		}
		p.enc = append(p.enc, enc)
	}
	p.pkPos, p.colPK = sh.pk, make([]int, len(cols))
	for i := range p.colPK {
		p.colPK[i] = -1
	}
	for k, i := range sh.pk {
		p.colPK[i] = k
	}
	if (mode == modeUpsert || mode == modeUpdate || mode == modeDelete) && len(sh.pk) == 0 {
		return nil, fmt.Errorf("writing to table %s in %s mode needs key columns: set pk.mode (record_key, record_value or kafka)", id, mode)
	}
	if mode == modeUpsert && !hasUnique(m, cols, sh.pk) {
		var names []string
		for _, i := range sh.pk {
			names = append(names, jdbcconf.Quote(cols[i].name))
		}
		return nil, fmt.Errorf("upsert into table %s needs a primary key or unique index on (%s), and the table has none: ALTER TABLE %s ADD PRIMARY KEY (%s), or use insert.mode=insert",
			id, strings.Join(names, ", "), id, strings.Join(names, ", "))
	}
	p.buildSQL()
	w.plans[k] = p
	return p, nil
}

// resolve maps a shape's columns to the table's.
func resolve(m *tableMeta, sh *shape) ([]*column, []*shapeCol) {
	cols := make([]*column, len(sh.cols))
	var missing []*shapeCol
	for i := range sh.cols {
		c, ok := m.lookup(sh.cols[i].name)
		if !ok {
			missing = append(missing, &sh.cols[i])
			continue
		}
		cols[i] = c
	}
	return cols, missing
}

// hasUnique reports whether the key columns are exactly a unique key.
func hasUnique(m *tableMeta, cols []*column, pk []int) bool {
	want := map[string]bool{}
	for _, i := range pk {
		want[cols[i].name] = true
	}
	for _, u := range m.uniques {
		if len(u) != len(want) {
			continue
		}
		all := true
		for _, c := range u {
			all = all && want[c]
		}
		if all {
			return true
		}
	}
	return false
}

const stage = "pg_temp.tributary_stage"

// ensureStage makes the staging table exist with at least n value columns.
func (w *writer) ensureStage(ctx context.Context, n int) error {
	if w.stageCols >= n {
		return nil
	}
	sql := "CREATE TEMP TABLE IF NOT EXISTS tributary_stage (op text, seg integer) ON COMMIT DELETE ROWS; ALTER TABLE " + stage
	for i := 0; i < n; i++ {
		if i > 0 {
			sql += ","
		}
		sql += " ADD COLUMN IF NOT EXISTS c" + strconv.Itoa(i) + " text"
	}
	if _, err := w.tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("preparing the staging table: %w", err)
	}
	w.stageCols = n
	return nil
}

// unavailableValue is Debezium's default unavailable.value.placeholder.
const unavailableValue = "__debezium_unavailable_value"

// unavailable returns the staging text of the placeholder for a column
// that may receive it (string types, bytea, json, jsonb).
func unavailable(c *column) (string, bool) {
	switch {
	case c.typname == "bytea":
		return `\x` + hex.EncodeToString([]byte(unavailableValue)), true
	case c.category == 'S', c.typname == "json", c.typname == "jsonb":
		return unavailableValue, true
	}
	return "", false
}

// excludedIs tests whether EXCLUDED's value of a column is the placeholder.
func excludedIs(c *column, n string) string {
	switch c.typname {
	case "bytea":
		return "EXCLUDED." + n + " = convert_to(" + quoteLit(unavailableValue) + ", 'UTF8')"
	case "json":
		return "EXCLUDED." + n + "::text = " + quoteLit(strconv.Quote(unavailableValue))
	case "jsonb":
		return "EXCLUDED." + n + " = " + quoteLit(strconv.Quote(unavailableValue)) + "::jsonb"
	}
	return "EXCLUDED." + n + " = " + quoteLit(unavailableValue)
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (p *plan) buildSQL() {
	names := make([]string, len(p.cols))
	for i, c := range p.cols {
		names[i] = jdbcconf.Quote(c.name)
	}
	list := strings.Join(names, ", ")
	if p.mode == modeInsert {
		p.copySQL = "COPY " + p.id.String() + " (" + list + ") FROM STDIN"
		return
	}
	cs := make([]string, len(p.cols))
	for i := range cs {
		cs[i] = "c" + strconv.Itoa(i)
	}
	p.copySQL = "COPY " + stage + " (op, seg, " + strings.Join(cs, ", ") + ") FROM STDIN"
	val := func(i int) string { return "s." + cs[i] + "::" + p.cols[i].cast }
	var match, pk []string
	for _, i := range p.pkPos {
		match = append(match, "tgt."+names[i]+" = "+val(i))
		pk = append(pk, names[i])
	}
	on := strings.Join(match, " AND ")
	p.delSQL = "DELETE FROM " + p.id.String() + " AS tgt USING " + stage + " AS s WHERE s.seg = $1 AND s.op = 'd' AND " + on
	var vals, sets, excl []string
	for i, n := range names {
		if p.colPK[i] >= 0 {
			vals = append(vals, val(i))
			continue
		}
		// A CDC update does not carry an unchanged TOASTed value: it sends
		// Debezium's placeholder instead, and the column keeps its value.
		ph, kept := unavailable(p.cols[i])
		v := val(i)
		switch {
		case !kept:
			sets = append(sets, n+" = "+v)
			excl = append(excl, n+" = EXCLUDED."+n)
		default:
			if c := p.cols[i]; c.typname == "json" || c.typname == "jsonb" {
				v = "(CASE WHEN s." + cs[i] + " = " + quoteLit(unavailableValue) + " THEN " + quoteLit(strconv.Quote(unavailableValue)) + " ELSE s." + cs[i] + " END)::" + c.cast
			}
			sets = append(sets, n+" = CASE WHEN s."+cs[i]+" = "+quoteLit(ph)+" THEN tgt."+n+" ELSE "+val(i)+" END")
			excl = append(excl, n+" = CASE WHEN "+excludedIs(p.cols[i], n)+" THEN tgt."+n+" ELSE EXCLUDED."+n+" END")
		}
		vals = append(vals, v)
	}
	switch p.mode {
	case modeUpsert:
		p.wrSQL = "INSERT INTO " + p.id.String() + " AS tgt (" + list + ") SELECT " + strings.Join(vals, ", ") + " FROM " + stage +
			" AS s WHERE s.seg = $1 AND s.op = 'w' ON CONFLICT (" + strings.Join(pk, ", ") + ")"
		if len(excl) == 0 {
			p.wrSQL += " DO NOTHING"
		} else {
			p.wrSQL += " DO UPDATE SET " + strings.Join(excl, ", ")
		}
	case modeUpdate:
		if len(sets) > 0 {
			p.wrSQL = "UPDATE " + p.id.String() + " AS tgt SET " + strings.Join(sets, ", ") + " FROM " + stage +
				" AS s WHERE s.seg = $1 AND s.op = 'w' AND " + on
		}
	}
}
