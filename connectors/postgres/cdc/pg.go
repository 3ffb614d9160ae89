package cdc

// Connections, catalog queries, publication and slot management.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connectSQL opens a regular connection with the connector's session
// parameters.
func connectSQL(ctx context.Context, s *settings) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.dsn())
	if err != nil {
		return nil, err
	}
	for k, v := range sessionParams() {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["application_name"] = "tributary-postgres-cdc"
	return pgx.ConnectConfig(ctx, cfg)
}

// connectReplication opens a logical replication connection
// (replication=database).
func connectReplication(ctx context.Context, s *settings) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(s.dsn())
	if err != nil {
		return nil, err
	}
	for k, v := range sessionParams() {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["application_name"] = s.replicationAppName()
	cfg.RuntimeParams["replication"] = "database"
	return pgconn.ConnectConfig(ctx, cfg)
}

// maxAppName is the longest application_name the server keeps
// (NAMEDATALEN - 1); longer ones are cut.
const maxAppName = 63

// replicationAppName is the application_name of the connector's
// replication connections: it names the connector, so that Validate can
// tell the connector's own running task (a config update re-validates
// while the task streams) from another client holding the slot.
func (s *settings) replicationAppName() string {
	name := "tributary-postgres-cdc-" + s.slot
	if s.connector != "" {
		name = "tributary-cdc:" + s.connector
	}
	if len(name) > maxAppName {
		name = name[:maxAppName]
	}
	return name
}

// slotHolder returns the application_name of the backend with pid.
func slotHolder(ctx context.Context, c *pgx.Conn, pid int) (string, error) {
	var app string
	err := c.QueryRow(ctx, `SELECT coalesce(application_name, '') FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&app)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return app, err
}

// serverInfo is what the connector checks about the server and its user.
type serverInfo struct {
	version     int // server_version_num
	walLevel    string
	user        string
	replication bool // REPLICATION attribute, superuser, or rds_replication
	superuser   bool
	canCreate   bool // CREATE on the database (to create a publication)
}

func readServerInfo(ctx context.Context, c *pgx.Conn) (*serverInfo, error) {
	si := &serverInfo{}
	err := c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('wal_level'), r.rolname::text,
		r.rolreplication OR r.rolsuper OR COALESCE((SELECT pg_has_role(r.oid, g.oid, 'member') FROM pg_roles g WHERE g.rolname = 'rds_replication'), false),
		r.rolsuper, has_database_privilege(current_database(), 'CREATE')
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&si.version, &si.walLevel, &si.user, &si.replication, &si.superuser, &si.canCreate)
	if err != nil {
		return nil, fmt.Errorf("reading server settings: %w", err)
	}
	return si, nil
}

// walLevelError is the message for a server without wal_level=logical.
func walLevelError(where, level string) string {
	return fmt.Sprintf("wal_level is %q on %s, but logical replication needs logical: set wal_level=logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", level, where)
}

// replicationError is the message for a user without the REPLICATION attribute.
func replicationError(user string) string {
	return fmt.Sprintf("user %q lacks the REPLICATION attribute needed to stream changes: run ALTER ROLE %s WITH REPLICATION as a superuser, or set database.user to a user that has it", user, pgx.Identifier{user}.Sanitize())
}

// slotInfo is a row of pg_replication_slots.
type slotInfo struct {
	plugin, slotType, database string
	active                     bool
	activePID                  int
	confirmedFlush             uint64
}

func readSlot(ctx context.Context, c *pgx.Conn, name string) (*slotInfo, error) {
	var si slotInfo
	var plugin, db, flush *string
	var pid *int32
	err := c.QueryRow(ctx, `SELECT plugin::text, slot_type, database::text, active, active_pid, confirmed_flush_lsn::text
		FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&plugin, &si.slotType, &db, &si.active, &pid, &flush)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pg_replication_slots: %w", err)
	}
	if plugin != nil {
		si.plugin = *plugin
	}
	if db != nil {
		si.database = *db
	}
	if pid != nil {
		si.activePID = int(*pid)
	}
	if flush != nil {
		l, err := pglogrepl.ParseLSN(*flush)
		if err != nil {
			return nil, err
		}
		si.confirmedFlush = uint64(l)
	}
	return &si, nil
}

// slotInUseError is the message for a slot another connection streams.
func slotInUseError(slot string, pid int) string {
	return fmt.Sprintf("slot.name %q is in use by pid %d; stop the other client or choose another slot.name (SELECT pg_terminate_backend(%d) stops it)", slot, pid, pid)
}

// slotMismatch checks that an existing slot fits the connector.
func slotMismatch(s *settings, si *slotInfo) string {
	switch {
	case si.slotType != "logical":
		return fmt.Sprintf("slot.name %q is a %s slot, not a logical one: choose another slot.name", s.slot, si.slotType)
	case si.plugin != "pgoutput":
		return fmt.Sprintf("slot.name %q uses the %s plugin, not pgoutput: drop it (SELECT pg_drop_replication_slot('%s')) or choose another slot.name", s.slot, si.plugin, s.slot)
	case si.database != s.dbname:
		return fmt.Sprintf("slot.name %q belongs to database %q, not %q: choose another slot.name", s.slot, si.database, s.dbname)
	}
	return ""
}

// relInfo is a captured table as the catalog describes it now.
type relInfo struct {
	oid       uint32
	schema    string
	name      string
	replIdent byte
	estRows   float64
	// partitioned: a partitioned table published as its root
	// (publish_via_partition_root): read with its partitions.
	partitioned bool
	sizeBytes   int64
	cols        []catColumn
	pubCols     []string // the publication's column list (PostgreSQL 15+), nil: all
}

type catColumn struct {
	name     string
	oid      uint32
	typmod   int32
	notNull  bool
	typeName string // format_type, for casts
	key      bool
	toast    bool
}

// userTables lists the tables the filter selects (candidates for a
// filtered publication): permanent ordinary tables and partitions.
func userTables(ctx context.Context, c *pgx.Conn, f *filter) ([]relInfo, error) {
	rows, err := c.Query(ctx, `SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%' ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	defer rows.Close()
	var out []relInfo
	for rows.Next() {
		var r relInfo
		if err := rows.Scan(&r.oid, &r.schema, &r.name); err != nil {
			return nil, err
		}
		if f.table(r.schema, r.name) {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// publishedTables lists the tables the publication publishes that the
// filter selects, with their columns and key columns.
func publishedTables(ctx context.Context, c *pgx.Conn, pub string, f *filter, version int) ([]relInfo, error) {
	colList := "NULL::text[]"
	if version >= 150000 {
		colList = "p.attnames::text[]"
	}
	rows, err := c.Query(ctx, `SELECT cl.oid, n.nspname::text, cl.relname::text, cl.relreplident::text, cl.reltuples::float8,
		pg_relation_size(cl.oid), `+colList+`, cl.relkind = 'p'

		FROM pg_publication_tables p JOIN pg_namespace n ON n.nspname = p.schemaname
		JOIN pg_class cl ON cl.relnamespace = n.oid AND cl.relname = p.tablename
		WHERE p.pubname = $1 AND cl.relkind IN ('r', 'p') ORDER BY 2, 3`, pub)
	if err != nil {
		return nil, fmt.Errorf("listing the tables of publication %q: %w", pub, err)
	}
	var out []relInfo
	for rows.Next() {
		var r relInfo
		var ri string
		if err := rows.Scan(&r.oid, &r.schema, &r.name, &ri, &r.estRows, &r.sizeBytes, &r.pubCols, &r.partitioned); err != nil {
			rows.Close()
			return nil, err
		}
		r.replIdent = firstByte(ri)
		if f.table(r.schema, r.name) {
			out = append(out, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, loadColumns(ctx, c, out, version)
}

// loadColumns fills the columns (published ones, generated columns left
// out as pgoutput leaves them out) and key columns of rels.
func loadColumns(ctx context.Context, c *pgx.Conn, rels []relInfo, version int) error {
	if len(rels) == 0 {
		return nil
	}
	oids := make([]uint32, len(rels))
	byOID := map[uint32]*relInfo{}
	for i := range rels {
		oids[i] = rels[i].oid
		byOID[rels[i].oid] = &rels[i]
	}
	gen := ""
	if version >= 120000 {
		gen = " AND a.attgenerated = ''"
	}
	rows, err := c.Query(ctx, `SELECT a.attrelid, a.attname::text, a.atttypid, a.atttypmod, a.attnotnull, format_type(a.atttypid, a.atttypmod),
		a.attlen = -1 AND a.attstorage IN ('x', 'e')
		FROM pg_attribute a WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped`+gen+` ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return fmt.Errorf("reading columns: %w", err)
	}
	for rows.Next() {
		var rel uint32
		var cc catColumn
		if err := rows.Scan(&rel, &cc.name, &cc.oid, &cc.typmod, &cc.notNull, &cc.typeName, &cc.toast); err != nil {
			rows.Close()
			return err
		}
		r := byOID[rel]
		if r.pubCols != nil && !containsString(r.pubCols, cc.name) {
			continue
		}
		r.cols = append(r.cols, cc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	keys, err := keyColumns(ctx, c, oids)
	if err != nil {
		return err
	}
	for i := range rels {
		r := &rels[i]
		k := keys[r.oid]
		names := k.pk
		if r.replIdent == 'i' && k.ident != nil {
			names = k.ident
		}
		for j := range r.cols {
			r.cols[j].key = containsString(names, r.cols[j].name)
		}
	}
	return nil
}

type tableKeys struct{ pk, ident []string }

// keyColumns reads the primary key and replica identity index columns.
func keyColumns(ctx context.Context, c *pgx.Conn, oids []uint32) (map[uint32]tableKeys, error) {
	rows, err := c.Query(ctx, `SELECT i.indrelid, i.indisprimary, i.indisreplident,
		array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = ANY($1) AND (i.indisprimary OR i.indisreplident)
		GROUP BY i.indexrelid, i.indrelid, i.indisprimary, i.indisreplident`, oids)
	if err != nil {
		return nil, fmt.Errorf("reading key columns: %w", err)
	}
	defer rows.Close()
	out := map[uint32]tableKeys{}
	for rows.Next() {
		var rel uint32
		var primary, ident bool
		var names []string
		if err := rows.Scan(&rel, &primary, &ident, &names); err != nil {
			return nil, err
		}
		k := out[rel]
		if primary {
			k.pk = names
		}
		if ident {
			k.ident = names
		}
		out[rel] = k
	}
	return out, rows.Err()
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// relationMeta is what the catalog adds to a RELATION message:
// nullability and key columns.
type relationMeta struct {
	notNull map[string]bool
	pk      []string
}

func readRelationMeta(ctx context.Context, c *pgx.Conn, oid uint32) (relationMeta, error) {
	m := relationMeta{notNull: map[string]bool{}}
	rows, err := c.Query(ctx, `SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attnotnull`, oid)
	if err != nil {
		return m, fmt.Errorf("reading columns of relation %d: %w", oid, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return m, err
		}
		m.notNull[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, err
	}
	keys, err := keyColumns(ctx, c, []uint32{oid})
	if err != nil {
		return m, err
	}
	m.pk = keys[oid].pk
	return m, nil
}

// ensurePublication creates or updates the publication per
// publication.autocreate.mode.
func ensurePublication(ctx context.Context, c *pgx.Conn, s *settings) error {
	pub := pgx.Identifier{s.publication}.Sanitize()
	var allTables bool
	err := c.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, s.publication).Scan(&allTables)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading pg_publication: %w", err)
	}
	switch s.pubMode {
	case pubDisabled:
		if !exists {
			return fmt.Errorf("%s", publicationMissingError(s.publication))
		}
		return nil
	case pubAllTables:
		if exists {
			return nil
		}
		if _, err := c.Exec(ctx, "CREATE PUBLICATION "+pub+" FOR ALL TABLES"); err != nil {
			return fmt.Errorf("creating publication %s FOR ALL TABLES (needs a superuser; create it yourself or use publication.autocreate.mode=filtered): %w", pub, err)
		}
		return nil
	}
	// filtered
	want, err := userTables(ctx, c, s.filter)
	if err != nil {
		return err
	}
	names := func(rs []relInfo) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = pgx.Identifier{r.schema, r.name}.Sanitize()
		}
		return out
	}
	if !exists {
		q := "CREATE PUBLICATION " + pub
		if len(want) > 0 {
			q += " FOR TABLE " + strings.Join(names(want), ", ")
		}
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating publication %s for the filtered tables (the user must own them): %w", pub, err)
		}
		return nil
	}
	if allTables {
		return fmt.Errorf("publication %s is FOR ALL TABLES, but publication.autocreate.mode=filtered keeps a table list: drop it (DROP PUBLICATION %s) or use publication.autocreate.mode=all_tables", pub, pub)
	}
	rows, err := c.Query(ctx, `SELECT pr.prrelid, n.nspname::text, cl.relname::text FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
		JOIN pg_class cl ON cl.oid = pr.prrelid JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE p.pubname = $1`, s.publication)
	if err != nil {
		return fmt.Errorf("reading the tables of publication %s: %w", pub, err)
	}
	have := map[uint32]relInfo{}
	for rows.Next() {
		var r relInfo
		if err := rows.Scan(&r.oid, &r.schema, &r.name); err != nil {
			rows.Close()
			return err
		}
		have[r.oid] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var add, drop []relInfo
	wantSet := map[uint32]bool{}
	for _, r := range want {
		wantSet[r.oid] = true
		if _, ok := have[r.oid]; !ok {
			add = append(add, r)
		}
	}
	for oid, r := range have {
		if !wantSet[oid] {
			drop = append(drop, r)
		}
	}
	sort.Slice(drop, func(i, j int) bool { return drop[i].oid < drop[j].oid })
	if len(add) > 0 {
		if _, err := c.Exec(ctx, "ALTER PUBLICATION "+pub+" ADD TABLE "+strings.Join(names(add), ", ")); err != nil {
			return fmt.Errorf("adding tables to publication %s: %w", pub, err)
		}
	}
	if len(drop) > 0 {
		if _, err := c.Exec(ctx, "ALTER PUBLICATION "+pub+" DROP TABLE "+strings.Join(names(drop), ", ")); err != nil {
			return fmt.Errorf("dropping tables from publication %s: %w", pub, err)
		}
	}
	return nil
}

func publicationMissingError(pub string) string {
	return fmt.Sprintf("publication %q does not exist and publication.autocreate.mode=disabled: create it (CREATE PUBLICATION %s FOR TABLE ...) or set publication.autocreate.mode to filtered or all_tables", pub, pgx.Identifier{pub}.Sanitize())
}

// createSlot creates the logical slot on a replication connection;
// export asks for an exported snapshot (valid until the connection's next
// command).
func createSlot(ctx context.Context, rc *pgconn.PgConn, slot string, export bool) (lsn uint64, snapshot string, err error) {
	action := "NOEXPORT_SNAPSHOT"
	if export {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, rc, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
	if err != nil {
		return 0, "", fmt.Errorf("creating replication slot %q: %w", slot, err)
	}
	l, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, "", fmt.Errorf("creating replication slot %q: consistent point %q: %w", slot, res.ConsistentPoint, err)
	}
	return uint64(l), res.SnapshotName, nil
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
