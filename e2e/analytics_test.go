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

	"github.com/tributary-data/tributary/internal/testclickhouse"
	"github.com/tributary-data/tributary/internal/testpg"
	"github.com/tributary-data/tributary/internal/testredis"
)

// TestCDCToClickHouseAndRedisKill9 runs Postgres CDC -> broker -> ClickHouse
// (upsert: ReplacingMergeTree with _version and _is_deleted) and Redis
// (HSET per row) with real processes, kills the worker with SIGKILL while
// changes flow (ClickHouse batches in flight), restarts it, and checks that
// ClickHouse's FINAL view and the Redis hashes equal the source table.
// analyticsOrders is the orders table as the test compares it: in
// ClickHouse's analytics.orders and in Redis hashes order:<id>.
var analyticsOrders = shopTable{name: "orders", keyspace: "order", cols: []string{"customer", "qty", "amount"}, kinds: "sif"}

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

	want, err := analyticsOrders.sourceState(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	rdb := rd.Client(t)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		gotCH, errCH := analyticsOrders.clickhouseState(ctx, ch)
		gotRD, errRD := analyticsOrders.redisState(ctx, rdb)
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
