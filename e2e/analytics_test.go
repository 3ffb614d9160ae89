package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/internal/testclickhouse"
	"github.com/tributary-data/tributary/internal/testpg"
	"github.com/tributary-data/tributary/internal/testredis"
)

// TestCDCToClickHouseAndRedisKill9 runs Postgres CDC -> broker -> ClickHouse
// (upsert: ReplacingMergeTree with _version and _is_deleted) and Redis
// (HSET per row) with real processes, kills the worker with SIGKILL while
// changes flow (ClickHouse batches in flight), restarts it, and checks that
// ClickHouse's FINAL view and the Redis hashes equal the source table.
func TestCDCToClickHouseAndRedisKill9(t *testing.T) {
	n := 30_000
	if testing.Short() {
		n = 8_000
	}
	pg := testpg.Start(t)
	ch := testclickhouse.Start(t)
	rd := testredis.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := pg.CreateDatabase(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "shop", `CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, qty integer NOT NULL, amount numeric(12,2))`)
	ch.Exec(t, "CREATE DATABASE analytics")
	src, err := pgxpool.New(ctx, pg.DSN("shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	c := startCluster(t)
	mustHTTP(t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": "orders-cdc", "config": map[string]string{
		"connector.class": "PostgresCdcSource", "database.hostname": pg.Host, "database.port": fmt.Sprint(pg.Port),
		"database.user": pg.User, "database.dbname": "shop", "topic.prefix": "shop", "slot.name": "analytics",
		"table.include.list": "public.orders",
	}}, http.StatusCreated)
	mustHTTP(t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": "orders-clickhouse", "config": map[string]string{
		"connector.class": "ClickHouseSink", "hostname": ch.Host, "port": strconv.Itoa(ch.TCPPort), "database": "analytics",
		"topics": "shop.public.orders", "insert.mode": "upsert", "topic2TableMap": "shop.public.orders=orders",
		"batch.size": "2000", "flush.interval.ms": "500",
	}}, http.StatusCreated)
	mustHTTP(t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": "orders-redis", "config": map[string]string{
		"connector.class": "RedisSink", "redis.uri": rd.URI(), "topics": "shop.public.orders",
		"redis.command": "HSET", "redis.keyspace": "order",
	}}, http.StatusCreated)
	for _, name := range []string{"orders-cdc", "orders-clickhouse", "orders-redis"} {
		c.waitRunning(name, 60*time.Second)
	}

	// One writer: inserts with updates and deletes of recent rows mixed in.
	rng := rand.New(rand.NewSource(1))
	write := func(from, to int) {
		for id := from; id < to; id++ {
			if _, err := src.Exec(ctx, `INSERT INTO orders VALUES ($1, $2, $3, $4::numeric)`, id, fmt.Sprint("c", id%37), id%9, fmt.Sprintf("%d.%02d", id%1000, id%100)); err != nil {
				t.Fatal(err)
			}
			switch r := rng.Intn(10); {
			case r < 3:
				victim := id - rng.Intn(100)
				if _, err := src.Exec(ctx, `UPDATE orders SET qty = qty + 1, customer = customer || 'u' WHERE id = $1`, victim); err != nil {
					t.Fatal(err)
				}
			case r == 3:
				victim := id - rng.Intn(100)
				if _, err := src.Exec(ctx, `DELETE FROM orders WHERE id = $1`, victim); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	write(0, n/2)
	// Kill the worker once ClickHouse has some rows: batches are in flight.
	waitFor(t, 2*time.Minute, "rows in ClickHouse", func() (bool, string) {
		out, err := ch.Do(ctx, "SELECT count() FROM analytics.orders")
		return err == nil && strings.TrimSpace(out) != "0", fmt.Sprintf("%q %v", out, err)
	})
	c.worker.kill9()
	t.Logf("worker killed (SIGKILL) with %s rows in ClickHouse", strings.TrimSpace(mustDo(t, ch, "SELECT count() FROM analytics.orders")))
	write(n/2, n*3/4) // changes go on while no worker runs
	c.startWorker()
	write(n*3/4, n)
	lastCommit := time.Now()

	want := map[int64]string{}
	rows, err := src.Query(ctx, `SELECT id, customer, qty, amount::float8 FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var cust string
		var qty int32
		var amount float64
		if err := rows.Scan(&id, &cust, &qty, &amount); err != nil {
			t.Fatal(err)
		}
		want[id] = fmt.Sprintf("%s|%d|%.2f", cust, qty, amount)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	rdb := rd.Client(t)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		gotCH, errCH := clickhouseState(ctx, ch)
		gotRD, errRD := redisState(ctx, rdb)
		diffCH, diffRD := stateDiff(want, gotCH), stateDiff(want, gotRD)
		if errCH == nil && errRD == nil && diffCH == "" && diffRD == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 min after the last commit: ClickHouse (%v): %s; Redis (%v): %s", errCH, diffCH, errRD, diffRD)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("%d rows: ClickHouse FINAL and Redis equal to the source %v after the last commit",
		len(want), time.Since(lastCommit).Round(time.Millisecond))
	// Duplicates replayed after the kill are versions ClickHouse merges away.
	t.Logf("ClickHouse row versions stored (before merges): %s", strings.TrimSpace(mustDo(t, ch, "SELECT count() FROM analytics.orders")))
}

func mustDo(t *testing.T, ch *testclickhouse.Server, sql string) string {
	t.Helper()
	out, err := ch.Do(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func clickhouseState(ctx context.Context, ch *testclickhouse.Server) (map[int64]string, error) {
	out, err := ch.Do(ctx, "SELECT id, customer, qty, toFloat64(amount) FROM analytics.orders FINAL WHERE NOT _is_deleted")
	if err != nil {
		return nil, err
	}
	got := map[int64]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("row %q", line)
		}
		id, _ := strconv.ParseInt(f[0], 10, 64)
		amount, _ := strconv.ParseFloat(f[3], 64)
		got[id] = fmt.Sprintf("%s|%s|%.2f", f[1], f[2], amount)
	}
	return got, nil
}

// redisState reads every order:<id> hash (so deleted rows must be gone).
func redisState(ctx context.Context, rdb *redis.Client) (map[int64]string, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, "order:*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if len(keys) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	got := map[int64]string{}
	for i, k := range keys {
		id, err := strconv.ParseInt(strings.TrimPrefix(k, "order:"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %q", k)
		}
		h := cmds[i].Val()
		amount, _ := strconv.ParseFloat(h["amount"], 64)
		got[id] = fmt.Sprintf("%s|%s|%.2f", h["customer"], h["qty"], amount)
	}
	return got, nil
}

// stateDiff describes how got differs from want ("" when equal).
func stateDiff(want, got map[int64]string) string {
	var missing, extra, changed []int64
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case g != w:
			changed = append(changed, id)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(extra)+len(changed) == 0 {
		return ""
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	sort.Slice(changed, func(i, j int) bool { return changed[i] < changed[j] })
	ex := ""
	if len(changed) > 0 {
		ex = fmt.Sprintf(" (id %d: want %q, got %q)", changed[0], want[changed[0]], got[changed[0]])
	}
	return fmt.Sprintf("%d missing (first %v), %d extra, %d changed%s", len(missing), missing[:min(5, len(missing))], len(extra), len(changed), ex)
}
