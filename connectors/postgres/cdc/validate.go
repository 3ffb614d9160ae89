package cdc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// validate returns error messages per key for config: what ConfigDef finds
// plus the cross-key rules, and, when those pass, what connecting finds.
// Each message says what to change.
func validate(ctx context.Context, config map[string]string) map[string][]string {
	s, errs := parseSettings(config)
	if len(errs) > 0 {
		return errs
	}
	errs = map[string][]string{}
	add := func(k, m string) { errs[k] = append(errs[k], m) }
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := connectSQL(ctx, s)
	if err != nil {
		k, m := connectError(s, err)
		add(k, m)
		return errs
	}
	defer conn.Close(context.Background())
	info, err := readServerInfo(ctx, conn)
	if err != nil {
		add(keyHost, err.Error())
		return errs
	}
	if info.walLevel != "logical" {
		add(keyHost, walLevelError(s.where(), info.walLevel))
	}
	if !info.replication {
		add(keyUser, replicationError(info.user))
	} else if rc, err := connectReplication(ctx, s); err != nil {
		add(keyUser, fmt.Sprintf("cannot open a replication connection to %s as %q: %v; check max_wal_senders and pg_hba.conf", s.where(), s.user, err))
	} else {
		rc.Close(context.Background())
	}

	// Slot.
	slot, err := readSlot(ctx, conn, s.slot)
	switch {
	case err != nil:
		add(keySlotName, err.Error())
	case slot != nil && slot.active && !ownSlot(ctx, conn, s, slot):
		add(keySlotName, slotInUseError(s.slot, slot.activePID))
	case slot != nil:
		if m := slotMismatch(s, slot); m != "" {
			add(keySlotName, m)
		}
	case s.snapshotMode != snapInitialOnly:
		var used, maxSlots int
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots)::int, current_setting('max_replication_slots')::int`).Scan(&used, &maxSlots); err == nil && used >= maxSlots {
			add(keySlotName, fmt.Sprintf("slot.name %q does not exist and every replication slot is taken (max_replication_slots=%d): drop an unused slot or raise max_replication_slots", s.slot, maxSlots))
		}
	}

	// Publication.
	var allTables bool
	err = conn.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, s.publication).Scan(&allTables)
	pubExists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		add(keyPublication, err.Error())
	}
	switch s.pubMode {
	case pubDisabled:
		if !pubExists {
			add(keyPublication, publicationMissingError(s.publication))
		}
	case pubAllTables:
		if !pubExists && !info.superuser {
			add(keyPubMode, fmt.Sprintf("publication %q does not exist and creating it FOR ALL TABLES needs a superuser, which %q is not: create it as a superuser, or set publication.autocreate.mode=filtered", s.publication, info.user))
		}
	case pubFiltered:
		if pubExists && allTables {
			add(keyPubMode, fmt.Sprintf("publication %q is FOR ALL TABLES but publication.autocreate.mode=filtered keeps a table list: drop it, use another publication.name, or use all_tables", s.publication))
		}
		if !pubExists && !info.canCreate && !info.superuser {
			add(keyPubMode, fmt.Sprintf("creating publication %q needs the CREATE privilege on database %q: GRANT CREATE ON DATABASE %s TO %s, or create the publication yourself and use publication.autocreate.mode=disabled",
				s.publication, s.dbname, pgx.Identifier{s.dbname}.Sanitize(), pgx.Identifier{info.user}.Sanitize()))
		}
	}

	// SELECT privileges for the snapshot.
	if s.snapshotMode != snapNever {
		var rels []relInfo
		if pubExists && s.pubMode != pubFiltered {
			rels, err = publishedTables(ctx, conn, s.publication, s.filter, info.version)
		} else {
			rels, err = userTables(ctx, conn, s.filter)
		}
		if err != nil {
			add("", err.Error())
		} else if missing := noSelect(ctx, conn, rels); len(missing) > 0 {
			shown := missing
			if len(shown) > 10 {
				shown = shown[:10]
			}
			more := ""
			if len(missing) > 10 {
				more = fmt.Sprintf(" (and %d more)", len(missing)-10)
			}
			add(keyUser, fmt.Sprintf("user %q lacks SELECT on %s%s, which the snapshot reads: run GRANT SELECT ON %s TO %s (and GRANT USAGE on their schemas), narrow table.include.list, or set snapshot.mode=never",
				info.user, strings.Join(shown, ", "), more, strings.Join(shown, ", "), pgx.Identifier{info.user}.Sanitize()))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// noSelect lists the tables the user cannot read.
func noSelect(ctx context.Context, c *pgx.Conn, rels []relInfo) []string {
	if len(rels) == 0 {
		return nil
	}
	oids := make([]uint32, len(rels))
	for i, r := range rels {
		oids[i] = r.oid
	}
	rows, err := c.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(cl.relname) FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
		WHERE cl.oid = ANY($1) AND NOT (has_table_privilege(cl.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE'))`, oids)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// connectError turns a failed connection into the key to change and a
// message saying how.
func connectError(s *settings, err error) (string, string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01":
			return keyPassword, fmt.Sprintf("password authentication failed for user %q on %s: check database.user and database.password", s.user, s.where())
		case "28000":
			if strings.Contains(pe.Message, "does not exist") {
				return keyUser, fmt.Sprintf("user %q does not exist on %s: create it (CREATE ROLE %s LOGIN REPLICATION PASSWORD '...') or fix database.user", s.user, s.where(), pgx.Identifier{s.user}.Sanitize())
			}
			return keyUser, fmt.Sprintf("%s rejected user %q: %s; check pg_hba.conf and database.user", s.where(), s.user, pe.Message)
		case "3D000":
			return keyDBName, fmt.Sprintf("database %q does not exist on %s: create it or fix database.dbname", s.dbname, s.where())
		case "53300":
			return keyHost, fmt.Sprintf("%s has no free connection (max_connections reached): %s", s.where(), pe.Message)
		}
		return keyHost, fmt.Sprintf("connecting to %s: %s (SQLSTATE %s)", s.where(), pe.Message, pe.Code)
	}
	if msg := err.Error(); strings.Contains(msg, "password") || strings.Contains(msg, "SASL") {
		return keyPassword, fmt.Sprintf("%s asks user %q for a password: set database.password (%v)", s.where(), s.user, err)
	}
	return keyHost, fmt.Sprintf("cannot reach PostgreSQL at %s: %v; check database.hostname and database.port, and that the server accepts TCP connections from this worker", s.where(), err)
}

// ownSlot reports whether the active slot is held by this connector's own
// task (its replication connection's application_name names the
// connector): re-validating a running connector's config, as an update
// does, is no conflict.
func ownSlot(ctx context.Context, conn *pgx.Conn, s *settings, slot *slotInfo) bool {
	if s.connector == "" {
		return false
	}
	app, err := slotHolder(ctx, conn, slot.activePID)
	return err == nil && app == s.replicationAppName()
}
