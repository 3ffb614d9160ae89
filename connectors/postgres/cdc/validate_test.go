package cdc

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/connect"
)

func validateErrs(t *testing.T, cfg map[string]string) map[string][]string {
	t.Helper()
	errs, err := NewSource().Validate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

func hasErr(errs map[string][]string, key string, parts ...string) bool {
	for _, m := range errs[key] {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(m, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// requirePassword makes the server ask user for a password (the test
// server trusts everyone otherwise).
func requirePassword(t *testing.T, db, user string) {
	t.Helper()
	s := server(t)
	path := filepath.Join(s.Dir, "data", "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("host all %s 127.0.0.1/32 scram-sha-256\n", user)
	if !strings.Contains(string(old), line) {
		if err := os.WriteFile(path, append([]byte(line), old...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exec(t, db, "SELECT pg_reload_conf()")
	waitFor(t, 10*time.Second, "pg_hba.conf to be reloaded", func() bool {
		c, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://%s:wrong@%s:%d/%s?sslmode=disable", user, s.Host, s.Port, db))
		if err == nil {
			c.Close(context.Background())
		}
		return err != nil
	})
}

func TestValidate(t *testing.T) {
	db := newDB(t)
	exec(t, db, "CREATE TABLE pub (id int PRIMARY KEY)", "CREATE TABLE secret (id int PRIMARY KEY)",
		"CREATE ROLE pwuser LOGIN REPLICATION PASSWORD 'right'",
		"CREATE ROLE norepl LOGIN",
		"CREATE ROLE reader LOGIN REPLICATION", "GRANT SELECT ON pub TO reader")
	requirePassword(t, db, "pwuser")
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}()

	if errs := validateErrs(t, baseConfig(db)); len(errs) != 0 {
		t.Fatalf("a good config has errors: %v", errs)
	}
	cases := []struct {
		name  string
		cfg   map[string]string
		key   string
		parts []string
	}{
		{"wrong password", baseConfig(db, "database.user", "pwuser", "database.password", "wrong"), "database.password", []string{"password authentication failed", "pwuser"}},
		{"missing password", baseConfig(db, "database.user", "pwuser"), "database.password", []string{"database.password"}},
		{"unknown user", baseConfig(db, "database.user", "nobody"), "database.user", []string{`"nobody" does not exist`}},
		{"missing database", baseConfig(db, "database.dbname", "nope"), "database.dbname", []string{`database "nope" does not exist`}},
		{"unreachable host", baseConfig(db, "database.port", closed), "database.hostname", []string{"cannot reach PostgreSQL", "database.port"}},
		{"no REPLICATION", baseConfig(db, "database.user", "norepl"), "database.user", []string{"REPLICATION", `ALTER ROLE "norepl" WITH REPLICATION`}},
		{"no SELECT", baseConfig(db, "database.user", "reader", "publication.autocreate.mode", "filtered"), "database.user", []string{"lacks SELECT on public.secret", `GRANT SELECT ON public.secret TO "reader"`}},
		{"publication missing", baseConfig(db, "publication.autocreate.mode", "disabled"), "publication.name", []string{"does not exist", "CREATE PUBLICATION"}},
		{"all_tables needs superuser", baseConfig(db, "database.user", "reader", "table.include.list", "public.pub"), "publication.autocreate.mode", []string{"superuser"}},
		{"unsupported decimal mode", baseConfig(db, "decimal.handling.mode", "double"), "decimal.handling.mode", []string{"supports only precise"}},
		{"unsupported time mode", baseConfig(db, "time.precision.mode", "connect"), "time.precision.mode", []string{"adaptive"}},
		{"unsupported plugin", baseConfig(db, "plugin.name", "decoderbufs"), "plugin.name", []string{"pgoutput"}},
		{"unsupported key", baseConfig(db, "hstore.handling.mode", "json"), "hstore.handling.mode", []string{"does not support"}},
		{"column masks", baseConfig(db, "column.mask.with.12.chars", "public.pub.id"), "column.mask.with.12.chars", []string{"does not support"}},
		{"include and exclude", baseConfig(db, "table.include.list", "a", "table.exclude.list", "b"), "table.exclude.list", []string{"cannot both be set"}},
		{"bad regex", baseConfig(db, "table.include.list", "a("), "table.include.list", []string{"not a valid regular expression"}},
		{"bad slot name", baseConfig(db, "slot.name", "My-Slot"), "slot.name", []string{"lower-case"}},
		{"missing prefix", func() map[string]string { c := baseConfig(db); delete(c, "topic.prefix"); return c }(), "topic.prefix", []string{"Missing required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := validateErrs(t, c.cfg)
			if !hasErr(errs, c.key, c.parts...) {
				t.Fatalf("want an error on %s containing %q, got %v", c.key, c.parts, errs)
			}
		})
	}
	if errs := validateErrs(t, baseConfig(db, "database.user", "pwuser", "database.password", "right", "snapshot.mode", "no_data",
		"publication.autocreate.mode", "disabled")); !hasErr(errs, "publication.name") || len(errs) != 1 {
		t.Fatalf("with the right password only the publication is missing: %v", errs)
	}
	// Debezium 1.x's database.server.name is accepted for topic.prefix.
	c := baseConfig(db)
	c["database.server.name"] = c["topic.prefix"]
	delete(c, "topic.prefix")
	if errs := validateErrs(t, c); len(errs) != 0 {
		t.Fatalf("database.server.name: %v", errs)
	}
}

func TestValidateSlotInUse(t *testing.T) {
	db := newDB(t)
	cfg := baseConfig(db)
	s, errs := parseSettings(cfg)
	if errs != nil {
		t.Fatal(errs)
	}
	ctx := context.Background()
	exec(t, db, "CREATE PUBLICATION "+pgx.Identifier{s.publication}.Sanitize()+" FOR ALL TABLES")
	rc, err := connectReplication(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	lsn, _, err := createSlot(ctx, rc, s.slot, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pglogrepl.StartReplication(ctx, rc, s.slot, pglogrepl.LSN(lsn), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: pluginArgs(2, true, s.publication)}); err != nil {
		t.Fatal(err)
	}
	errs = validateErrs(t, cfg)
	if !hasErr(errs, "slot.name", fmt.Sprintf("is in use by pid %d", rc.PID()), "stop the other client or choose another slot.name") {
		t.Fatalf("want slot in use by pid %d: %v", rc.PID(), errs)
	}
	// A task waits for the slot, then fails saying the same.
	cfg["slot.max.retries"], cfg["slot.retry.delay.ms"] = "1", "100"
	task := startTask(t, cfg, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := task.Poll(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "is in use by pid") {
				t.Fatalf("task error: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task did not fail")
		}
	}
}

func TestWalLevelMessage(t *testing.T) {
	m := walLevelError("db.example:5432", "replica")
	for _, p := range []string{`"replica"`, "db.example:5432", "set wal_level=logical in postgresql.conf", "restart"} {
		if !strings.Contains(m, p) {
			t.Errorf("wal_level message %q lacks %q", m, p)
		}
	}
}

// Every key is documented, grouped and ordered in its group; the Debezium
// class and alias are exported.
func TestConfigDef(t *testing.T) {
	d := NewSource().ConfigDef()
	seen := map[string]map[int]bool{}
	for _, k := range d.Keys() {
		if k.Doc == "" || k.Group == "" {
			t.Errorf("%s: doc %q group %q", k.Name, k.Doc, k.Group)
		}
		if seen[k.Group] == nil {
			seen[k.Group] = map[int]bool{}
		}
		if seen[k.Group][k.OrderInGroup] {
			t.Errorf("%s: order %d repeated in group %s", k.Name, k.OrderInGroup, k.Group)
		}
		seen[k.Group][k.OrderInGroup] = true
	}
	if k, _ := d.Key("database.password"); k.Type != connect.TypePassword {
		t.Error("database.password is not a password")
	}
	if SourceClass == "" || DebeziumClass != "io.debezium.connector.postgresql.PostgresConnector" || Alias != "PostgresCdcSource" {
		t.Error("class names")
	}
	tcs, err := NewSource().TaskConfigs(context.Background(), 8)
	if err != nil || len(tcs) != 1 {
		t.Fatalf("TaskConfigs(8) = %d configs, %v", len(tcs), err)
	}
}

// A running connector's own task holds its slot: re-validating that
// connector's config (an update, `connectors apply` again) is no conflict,
// while another connector naming the same slot still gets the error.
func TestValidateOwnSlot(t *testing.T) {
	db := newDB(t)
	cfg := baseConfig(db, "name", "shop-cdc")
	s, errs := parseSettings(cfg)
	if errs != nil {
		t.Fatal(errs)
	}
	ctx := context.Background()
	exec(t, db, "CREATE PUBLICATION "+pgx.Identifier{s.publication}.Sanitize()+" FOR ALL TABLES")
	rc, err := connectReplication(ctx, s) // as the connector's task does
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	lsn, _, err := createSlot(ctx, rc, s.slot, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pglogrepl.StartReplication(ctx, rc, s.slot, pglogrepl.LSN(lsn), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: pluginArgs(2, true, s.publication)}); err != nil {
		t.Fatal(err)
	}
	if errs := validateErrs(t, cfg); len(errs) != 0 {
		t.Fatalf("re-validating the connector whose task holds the slot: %v", errs)
	}
	other := baseConfig(db, "name", "other-cdc")
	if errs := validateErrs(t, other); !hasErr(errs, "slot.name", fmt.Sprintf("is in use by pid %d", rc.PID())) {
		t.Fatalf("another connector on the same slot: %v", errs)
	}
}
