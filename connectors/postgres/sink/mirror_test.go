package sink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
	pgquery "github.com/tributary-data/tributary/connectors/postgres/query"
)

// TestMirrorFromQuerySource copies a table from one database to another:
// the query source's records, as they are, into this sink (auto.create,
// upsert by the id field), then a second round with updates.
func TestMirrorFromQuerySource(t *testing.T) {
	src, dst := newDB(t), newDB(t)
	server.Exec(t, src, `CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2), qty int NOT NULL, ok boolean,
			born date, at time, seen timestamp, stamped timestamptz NOT NULL DEFAULT now(), data bytea, ref uuid, doc jsonb, ratio float8)`,
		`INSERT INTO items SELECT g, 'item ' || g, g * 1.25, g, g % 2 = 0, DATE '2024-01-01' + g, TIME '10:00:00.123' + g * interval '1 minute',
			TIMESTAMP '2024-01-01 00:00:00.5' + g * interval '1 hour', now(), decode(lpad(to_hex(g), 4, '0'), 'hex'),
			md5(g::text)::uuid, jsonb_build_object('g', g), g / 3.0 FROM generate_series(1, 50) g`,
		`INSERT INTO items (id, qty) VALUES (51, 0)`)
	srcURL := fmt.Sprintf("jdbc:postgresql://%s:%d/%s?user=%s", server.Host, server.Port, src, server.User)
	conn := pgquery.NewSource()
	scfg := map[string]string{"connection.url": srcURL, "mode": "timestamp+incrementing", "incrementing.column.name": "id",
		"timestamp.column.name": "stamped", "topic.prefix": "mirror_", "poll.interval.ms": "50", "table.poll.interval.ms": "0", "batch.max.rows": "20"}
	ctx := ctxT(t)
	if err := conn.Start(ctx, nil, scfg); err != nil {
		t.Fatal(err)
	}
	defer conn.Stop(context.Background())
	tcs, err := conn.TaskConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	src1 := conn.(connect.SourceConnector).NewTask()
	if err := src1.Start(ctx, nil, tcs[0]); err != nil {
		t.Fatal(err)
	}
	defer src1.Stop(context.Background())
	sink := startTask(t, baseConfig(dst, "auto.create", "true", "insert.mode", "upsert", "pk.mode", "record_value", "pk.fields", "id"))

	pipe := func(n int) {
		got := 0
		for deadline := time.Now().Add(20 * time.Second); got < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d records of %d", got, n)
			}
			recs, err := src1.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []connect.SinkRecord
			for i, r := range recs {
				out = append(out, connect.SinkRecord{Record: r.Record, KafkaOffset: int64(got + i)})
			}
			got += len(recs)
			if len(out) > 0 {
				put(t, sink, out...)
			}
		}
	}
	same := func() {
		// Connect Timestamps hold milliseconds: stamped (µs) is compared at that precision.
		const cols = `id, name, price::text, qty, ok, born, at, seen, date_trunc('milliseconds', stamped), data, ref::text, doc::text, ratio`
		want := query(t, src, `SELECT `+cols+` FROM items ORDER BY id`)
		got := query(t, dst, `SELECT `+cols+` FROM mirror_items ORDER BY id`)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			for i := range want {
				if i < len(got) && got[i] != want[i] {
					t.Fatalf("row %d:\n got  %s\n want %s", i, got[i], want[i])
				}
			}
			t.Fatalf("%d rows, want %d", len(got), len(want))
		}
	}
	pipe(51)
	same()
	server.Exec(t, src, `UPDATE items SET name = 'changed', price = 0.01, stamped = now() WHERE id % 10 = 0`)
	pipe(5)
	same()
	wantRows(t, dst, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'mirror_items'::regclass AND attname IN ('price', 'qty', 'stamped') ORDER BY attnum`,
		"numeric(10,2)", "integer", "timestamp without time zone")
}
