package sink

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/tributary-data/tributary/connect"
)

// TestAgainstModel writes random mixes of upserts, updates, deletes,
// tombstones and truncates over three tables (two plain, one CDC), in
// random Put sizes with a tiny batch.size (many chunks, staging table
// reuse and truncation), and compares every table with an in-memory model
// after each Put and after replaying everything.
func TestAgainstModel(t *testing.T) {
	for _, mode := range []string{"upsert", "update"} {
		t.Run(mode, func(t *testing.T) {
			db := newDB(t)
			server.Exec(t, db,
				`CREATE TABLE a (id bigint PRIMARY KEY, name text, score double precision)`,
				`CREATE TABLE b (id bigint PRIMARY KEY, name text, score double precision)`,
				`CREATE TABLE "dbserver1.public.t" (id integer PRIMARY KEY, name text)`,
				`INSERT INTO a SELECT g, 'init', 0 FROM generate_series(0, 9) g`,
				`INSERT INTO b SELECT g, 'init', 0 FROM generate_series(0, 9) g`,
				`INSERT INTO "dbserver1.public.t" SELECT g, 'init' FROM generate_series(0, 9) g`)
			model := map[string]map[int64]string{"a": {}, "b": {}, "dbserver1.public.t": {}}
			for tb, m := range model {
				for i := int64(0); i < 10; i++ {
					m[i] = "init"
					if tb != "dbserver1.public.t" {
						m[i] = "init|0"
					}
				}
			}
			task := startTask(t, baseConfig(db, "pk.mode", "record_key", "insert.mode", mode, "delete.enabled", "true",
				"truncate.enabled", "true", "batch.size", "3"))
			r := rand.New(rand.NewSource(42))
			var all []connect.SinkRecord
			for batch := 0; batch < 25; batch++ {
				var recs []connect.SinkRecord
				for n := r.Intn(40); n > 0; n-- {
					id := int64(r.Intn(12))
					name := fmt.Sprintf("v%d", r.Intn(1000))
					switch op := r.Intn(20); {
					case op < 6:
						tb := []string{"a", "b"}[r.Intn(2)]
						rec := row(id, name, float64(id))
						rec.Topic = tb
						recs = append(recs, rec)
						if _, ok := model[tb][id]; ok || mode == "upsert" {
							model[tb][id] = fmt.Sprintf("%s|%d", name, id)
						}
					case op < 9:
						tb := []string{"a", "b"}[r.Intn(2)]
						rec := tombstone(id)
						rec.Topic = tb
						recs = append(recs, rec)
						delete(model[tb], id)
					case op < 15:
						// CDC events are upserts whatever insert.mode says.
						recs = append(recs, change("u", int32(id), nil, cdcRowOf(int32(id), name)))
						model["dbserver1.public.t"][id] = name
					case op < 18:
						recs = append(recs, change("d", int32(id), cdcRowOf(int32(id), "x"), nil), cdcTombstone(int32(id)))
						delete(model["dbserver1.public.t"], id)
					case op < 19 && r.Intn(4) == 0:
						recs = append(recs, change("t", 0, nil, nil))
						model["dbserver1.public.t"] = map[int64]string{}
					}
				}
				if len(recs) == 0 {
					continue
				}
				put(t, task, recs...)
				all = append(all, recs...)
				check(t, db, model, fmt.Sprintf("after batch %d", batch))
			}
			if mode == "upsert" {
				// A replay of everything in one Put ends in the same state.
				put(t, task, all...)
				check(t, db, model, "after the replay")
			}
		})
	}
}

func check(t *testing.T, db string, model map[string]map[int64]string, when string) {
	t.Helper()
	for tb, m := range model {
		var want []string
		for id, v := range m {
			want = append(want, fmt.Sprintf("%d|%s", id, v))
		}
		sort.Strings(want)
		got := query(t, db, `SELECT * FROM `+`"`+tb+`" AS r ORDER BY r::text`)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s, table %s:\n got  %v\n want %v", when, tb, got, want)
		}
	}
}
