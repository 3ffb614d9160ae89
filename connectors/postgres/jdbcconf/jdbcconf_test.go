package jdbcconf

import (
	"strings"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, host, db, user, pass, sslmode, err string
		port                                    uint16
		extra                                   map[string]string
	}{
		{url: "jdbc:postgresql://db.example:6543/shop?user=u&password=p%40ss&sslmode=disable", host: "db.example", port: 6543, db: "shop", user: "u", pass: "p@ss", sslmode: "disable"},
		{url: "jdbc:postgresql://h/shop?reWriteBatchedInserts=true&ApplicationName=x", host: "h", port: 5432, db: "shop"},
		{url: "jdbc:postgresql:shop", host: "localhost", port: 5432, db: "shop"},
		{url: "postgres://u:p@h:7000/d?sslmode=disable", host: "h", port: 7000, db: "d", user: "u", pass: "p"},
		{url: "postgresql://h/d", host: "h", port: 5432, db: "d", extra: map[string]string{"connection.user": "x", "connection.sslmode": "disable", "connection.loginTimeout": "10"}, user: "x"},
		{url: "jdbc:postgresql://h/d", extra: map[string]string{"connection.frobnicate": "1"}, err: "connection.frobnicate"},
		{url: "jdbc:mysql://h:3306/d?password=secret", err: `only PostgreSQL is supported, this is a "mysql" JDBC URL`},
		{url: "jdbc:sqlserver://h;databaseName=d", err: "only PostgreSQL"},
		{url: "mysql://h/d", err: "not a PostgreSQL URL"},
		{url: "jdbc:postgresql://h/d?sslfactory=x&frob=1", err: `"frob" is not supported`},
	} {
		t.Run(tc.url, func(t *testing.T) {
			raw := map[string]string{URLKey: tc.url}
			for k, v := range tc.extra {
				raw[k] = v
			}
			d := DefineConnection(connect.NewConfigDef())
			c, perrs := d.Parse(raw)
			var s Settings
			errs := perrs
			if len(perrs) == 0 {
				s, errs = FromConfig(c)
			}
			all := ""
			for k, m := range errs {
				all += k + ": " + strings.Join(m, ";") + "\n"
			}
			if tc.err != "" {
				if !strings.Contains(all, tc.err) {
					t.Fatalf("errors %q, want %q", all, tc.err)
				}
				if strings.Contains(all, "secret") {
					t.Fatalf("errors show the password: %s", all)
				}
				return
			}
			if all != "" {
				t.Fatal(all)
			}
			cfg := s.Config
			if cfg.Host != tc.host || cfg.Port != tc.port || cfg.Database != tc.db || (tc.user != "" && cfg.User != tc.user) || cfg.Password != tc.pass {
				t.Fatalf("config %s:%d/%s user %q password %q", cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password)
			}
			if tc.sslmode == "disable" && cfg.TLSConfig != nil {
				t.Fatal("sslmode=disable but TLS is configured")
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"jdbc:postgresql://h/d?user=u&password=secret": "jdbc:postgres",
		"postgres://u:secret@h/d":                      "postgres://u:hidden@h/d",
		"jdbc:postgresql://h/d":                        "jdbc:postgresql://h/d",
	} {
		got := Redact(in)
		if strings.Contains(got, "secret") || !strings.HasPrefix(got, want) {
			t.Errorf("Redact(%q) = %q", in, got)
		}
	}
}
