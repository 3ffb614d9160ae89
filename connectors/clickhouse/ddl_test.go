package clickhouse

import (
	"testing"

	"github.com/tributary-data/tributary/connect"
)

// The DDL for the server here (18.16) runs in every other test; this pins
// what a current server (23.2+, 24.x) gets, which cannot run here: the
// is_deleted parameter of ReplacingMergeTree and DateTime64 columns.
func TestDDLPerServerVersion(t *testing.T) {
	ts := connect.TimestampSchema()
	row := connect.StructOf("r", connect.F("id", connect.Int64Schema), connect.F("at", ts), connect.F("note", connect.OptionalStringSchema))
	var cols []colDef
	for _, f := range row.Fields {
		for _, c := range []caps{{18, 16}, {24, 8}} {
			typ, err := columnType(f.Schema, c, f.Name == "id")
			if err != nil {
				t.Fatal(err)
			}
			if c.major == 24 {
				cols = append(cols, colDef{f.Name, typ})
			} else if f.Name == "at" && typ != "Int64" {
				t.Fatalf("18.16: timestamp column %q, want Int64 (no DateTime64 before 20.1)", typ)
			}
		}
	}
	for _, tc := range []struct {
		c      caps
		upsert bool
		want   string
	}{
		{caps{18, 16}, true, "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` Int64, `at` DateTime64(3, 'UTC'), `note` Nullable(String), `_version` UInt64, `_is_deleted` UInt8) ENGINE = ReplacingMergeTree(`_version`) ORDER BY (`id`)"},
		{caps{23, 1}, true, "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` Int64, `at` DateTime64(3, 'UTC'), `note` Nullable(String), `_version` UInt64, `_is_deleted` UInt8) ENGINE = ReplacingMergeTree(`_version`) ORDER BY (`id`)"},
		{caps{23, 2}, true, "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` Int64, `at` DateTime64(3, 'UTC'), `note` Nullable(String), `_version` UInt64, `_is_deleted` UInt8) ENGINE = ReplacingMergeTree(`_version`, `_is_deleted`) ORDER BY (`id`)"},
		{caps{24, 8}, false, "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` Int64, `at` DateTime64(3, 'UTC'), `note` Nullable(String)) ENGINE = MergeTree ORDER BY (`id`)"},
	} {
		got := createTableSQL("db", "t", cols, []string{"id"}, tc.upsert, tc.upsert, tc.c)
		if got != tc.want {
			t.Errorf("server %d.%d upsert=%v:\n got  %s\n want %s", tc.c.major, tc.c.minor, tc.upsert, got, tc.want)
		}
	}
}
