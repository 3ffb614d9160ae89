package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tributary-data/tributary/internal/testpg"
)

// The mirror's three tables: types a CDC pipeline must carry exactly
// (numeric, timestamptz, uuid, jsonb, arrays, bytea, a TOASTable text).
var mirrorTables = []string{
	`CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), placed timestamptz, note text)`,
	`CREATE TABLE items (id bigint PRIMARY KEY, sku uuid, qty integer, tags text[], price double precision, blob bytea)`,
	`CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload jsonb, at timestamp, day date, ok boolean)`,
}

// mirrorQueries render a table in a canonical text form (same in the source
// and the mirror whatever column order or exact types auto.create chose).
var mirrorQueries = map[string]string{
	"orders": `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, customer, amount::text, extract(epoch from placed)::text, note), ',' ORDER BY id)), '') FROM orders`,
	"items":  `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, sku::text, qty, array_to_string(tags, ';'), price::text, encode(blob, 'hex')), ',' ORDER BY id)), '') FROM items`,
	"events": `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, kind, (payload::jsonb)::text, at::text, day::text, ok::text), ',' ORDER BY id)), '') FROM events`,
}

// TestPostgresCDCMirrorKill9 mirrors three tables from one Postgres
// database into another through the broker: the CDC source (snapshot, then
// streaming) and the Postgres sink (upsert, deletes, truncates), with
// concurrent writers inserting 100,000 rows and updating, deleting and
// truncating meanwhile, and the worker killed with SIGKILL mid-stream and
// restarted. At the end the mirror equals the source, table by table.
func TestPostgresCDCMirrorKill9(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 20_000
	}
	pg := testpg.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := pg.CreateDatabase(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := pg.CreateDatabase(ctx, "mirror"); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "shop", mirrorTables...)
	src, err := pgxpool.New(ctx, pg.DSN("shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Rows present before the connector starts come from the snapshot.
	w := &shopWriter{pool: src}
	for i := 0; i < 2000; i++ {
		if err := w.insert(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
	}

	c := startCluster(t)
	// Bad input is refused at the REST boundary with what to change.
	code, body, err := httpDo(c.rest+"/connectors", http.MethodPost, map[string]any{"name": "bad-cdc", "config": map[string]string{
		"connector.class": "PostgresCdcSource", "database.hostname": pg.Host, "database.port": fmt.Sprint(pg.Port),
		"database.user": pg.User, "database.dbname": "no_such_db", "topic.prefix": "bad"}})
	if err != nil || code != http.StatusBadRequest || !strings.Contains(string(body), "no_such_db") {
		t.Fatalf("creating a CDC connector for a missing database: %d %s %v; want 400 naming the database", code, body, err)
	}
	code, body, err = httpDo(c.rest+"/connectors", http.MethodPost, map[string]any{"name": "bad-sink", "config": map[string]string{
		"connector.class": "PostgresSink", "connection.url": "jdbc:mysql://127.0.0.1:3306/x", "topics": "t"}})
	if err != nil || code != http.StatusBadRequest || !strings.Contains(string(body), "connection.url") {
		t.Fatalf("creating a sink for a MySQL URL: %d %s %v; want 400 naming connection.url", code, body, err)
	}
	t.Logf("bad configs refused: %.200s", body)
	mustHTTP(t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": "shop-cdc", "config": map[string]string{
		"connector.class":   "io.debezium.connector.postgresql.PostgresConnector",
		"database.hostname": pg.Host, "database.port": fmt.Sprint(pg.Port), "database.user": pg.User, "database.dbname": "shop",
		"topic.prefix": "shop", "slot.name": "shop_mirror", "table.include.list": "public.orders,public.items,public.events",
		"snapshot.mode": "initial", "heartbeat.interval.ms": "1000",
	}}, http.StatusCreated)
	mustHTTP(t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": "shop-mirror", "config": map[string]string{
		"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
		"connection.url":  fmt.Sprintf("jdbc:postgresql://%s:%d/mirror", pg.Host, pg.Port), "connection.user": pg.User,
		"topics.regex": `shop\.public\..*`, "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true",
		"truncate.enabled": "true", "auto.create": "true", "auto.evolve": "true",
		"transforms": "route", "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
		"transforms.route.regex": `shop\.public\.(.*)`, "transforms.route.replacement": "$1",
	}}, http.StatusCreated)
	c.waitRunning("shop-cdc", 60*time.Second)
	c.waitRunning("shop-mirror", 60*time.Second)

	// Three concurrent writers, one per table, until total rows were
	// inserted; the events writer also truncates its table once.
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var wg sync.WaitGroup
	var werr atomic.Value
	perTable := total / 3
	for i, table := range []string{"orders", "items", "events"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(wctx, table, perTable, table == "events", int64(i)); err != nil && wctx.Err() == nil {
				werr.Store(err)
			}
		}()
	}
	// Kill the worker once a third of the rows are in, then restart it.
	waitFor(t, 5*time.Minute, "a third of the rows written", func() (bool, string) {
		n := w.inserted.Load()
		return n >= int64(total/3), fmt.Sprintf("%d rows inserted", n)
	})
	c.worker.kill9()
	t.Logf("worker killed (SIGKILL) after %d inserted rows", w.inserted.Load())
	time.Sleep(time.Second) // writes go on while no worker runs
	c.startWorker()
	c.waitRunning("shop-cdc", 60*time.Second)
	c.waitRunning("shop-mirror", 60*time.Second)
	wg.Wait()
	if err, _ := werr.Load().(error); err != nil {
		t.Fatalf("writer: %v", err)
	}
	lastCommit := time.Now()
	t.Logf("writers done: %d inserts, %d updates, %d deletes, %d truncates", w.inserted.Load(), w.updated.Load(), w.deleted.Load(), w.truncated.Load())

	mirror, err := pgxpool.New(ctx, pg.DSN("mirror"))
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var diffs, bad []string
		for _, table := range []string{"orders", "items", "events"} {
			a, errA := tableDigest(ctx, src, table)
			b, errB := tableDigest(ctx, mirror, table)
			if errA != nil || errB != nil || a != b {
				diffs = append(diffs, fmt.Sprintf("%s: source %s, mirror %s (%v %v)", table, a, b, errA, errB))
				bad = append(bad, table)
			}
		}
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, table := range bad {
				diffs = append(diffs, rowDiff(ctx, src, mirror, table))
			}
			t.Fatalf("the mirror differs from the source 3m after the writers ended:\n%s", strings.Join(diffs, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("mirror equal to the source %v after the last source commit", time.Since(lastCommit).Round(time.Millisecond))
	st, err := c.status("shop-cdc")
	if err != nil || st.Connector.State != "RUNNING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RUNNING" {
		t.Fatalf("CDC connector after the run: %+v %v", st, err)
	}
	// The task's own gauges reach the worker's /metrics.
	metrics := string(mustHTTP(t, c.rest+"/metrics", http.MethodGet, nil, http.StatusOK))
	if !strings.Contains(metrics, `tributary_connector_task_postgres_slot_lag_bytes{connector="shop-cdc",task="0"}`) {
		t.Errorf("GET /metrics lacks the CDC task's slot lag gauge")
	}
	// The slot's confirmed position follows what was stored: nothing
	// acknowledged beyond it, and it moved past the start.
	var lagBytes int64
	if err := src.QueryRow(ctx, `SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'shop_mirror'`).Scan(&lagBytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("slot shop_mirror lag at the end: %d bytes", lagBytes)
}

// rowDiff describes how a mirrored table differs: ids missing from the
// mirror, ids only in the mirror, and the first row that differs.
func rowDiff(ctx context.Context, src, mirror *pgxpool.Pool, table string) string {
	rows := func(p *pgxpool.Pool) (map[int64]string, error) {
		q := strings.Replace(strings.Replace(mirrorQueries[table], "SELECT count(*), coalesce(md5(string_agg(", "SELECT id, ", 1), ", ',' ORDER BY id)), '')", "", 1)
		rs, err := p.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		out := map[int64]string{}
		for rs.Next() {
			var id int64
			var v string
			if err := rs.Scan(&id, &v); err != nil {
				return nil, err
			}
			out[id] = v
		}
		return out, rs.Err()
	}
	a, err := rows(src)
	if err != nil {
		return table + ": " + err.Error()
	}
	b, err := rows(mirror)
	if err != nil {
		return table + ": " + err.Error()
	}
	var missing, extra []int64
	var changed string
	for id, v := range a {
		w, ok := b[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case v != w && changed == "":
			changed = fmt.Sprintf("id %d: source %q mirror %q", id, v, w)
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			extra = append(extra, id)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	sort.Slice(extra, func(i, j int) bool { return extra[i] < extra[j] })
	return fmt.Sprintf("%s: %d missing from the mirror (first %v), %d only in the mirror (first %v), first changed row: %s",
		table, len(missing), missing[:min(len(missing), 20)], len(extra), extra[:min(len(extra), 20)], changed)
}

func tableDigest(ctx context.Context, pool *pgxpool.Pool, table string) (string, error) {
	var n int64
	var sum string
	if err := pool.QueryRow(ctx, mirrorQueries[table]).Scan(&n, &sum); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d rows %.8s", n, sum), nil
}

// shopWriter writes the three tables: inserts with fresh ids, and among
// them updates and deletes of earlier rows, in small transactions.
type shopWriter struct {
	pool                                  *pgxpool.Pool
	nextID                                atomic.Int64
	inserted, updated, deleted, truncated atomic.Int64
}

func (w *shopWriter) insert(ctx context.Context, table string) error {
	id := w.nextID.Add(1)
	var err error
	switch table {
	case "orders":
		_, err = w.pool.Exec(ctx, `INSERT INTO orders VALUES ($1, $2, $3::numeric, now(), $4)`, id, fmt.Sprint("customer-", id%97), fmt.Sprintf("%d.%02d", id%10000, id%100), strings.Repeat("n", int(id%7)*300))
	case "items":
		_, err = w.pool.Exec(ctx, `INSERT INTO items VALUES ($1, gen_random_uuid(), $2, $3, $4, $5)`, id, id%50, []string{"a", fmt.Sprint(id % 3)}, float64(id)/7, []byte{byte(id), byte(id >> 8)})
	case "events":
		_, err = w.pool.Exec(ctx, `INSERT INTO events VALUES ($1, $2, $3::jsonb, now()::timestamp, current_date, $4)`, id, fmt.Sprint("k", id%5), fmt.Sprintf(`{"n": %d, "tags": ["x", "y"]}`, id), id%2 == 0)
	}
	if err == nil {
		w.inserted.Add(1)
	}
	return err
}

func (w *shopWriter) run(ctx context.Context, table string, n int, truncateOnce bool, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		if err := w.insert(ctx, table); err != nil {
			return err
		}
		switch r := rng.Intn(10); {
		case r < 3: // update a recent row (may be gone: fine)
			id := w.nextID.Load() - int64(rng.Intn(200))
			var err error
			switch table {
			case "orders":
				_, err = w.pool.Exec(ctx, `UPDATE orders SET amount = amount + 1, customer = customer || '+' WHERE id = $1`, id)
			case "items":
				_, err = w.pool.Exec(ctx, `UPDATE items SET qty = qty + 1, tags = array_append(tags, 'u') WHERE id = $1`, id)
			case "events":
				_, err = w.pool.Exec(ctx, `UPDATE events SET payload = jsonb_set(payload, '{u}', 'true'), ok = NOT ok WHERE id = $1`, id)
			}
			if err != nil {
				return err
			}
			w.updated.Add(1)
		case r == 3: // delete a recent row
			id := w.nextID.Load() - int64(rng.Intn(200))
			if _, err := w.pool.Exec(ctx, `DELETE FROM `+table+` WHERE id = $1`, id); err != nil {
				return err
			}
			w.deleted.Add(1)
		}
		if truncateOnce && i == n/2 {
			if _, err := w.pool.Exec(ctx, `TRUNCATE `+table); err != nil {
				return err
			}
			w.truncated.Add(1)
		}
	}
	return nil
}
