package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/internal/testclickhouse"
	"github.com/tributary-data/tributary/internal/testpg"
	"github.com/tributary-data/tributary/internal/testredis"
)

// The whole product at once, as docker-compose.yml runs it but as
// processes: a broker, three workers, Postgres, ClickHouse and Redis; the
// pipeline of configs/pipeline applied with `tributary connectors apply`;
// a concurrent write load on the three shop tables; and chaos while it
// runs: a worker killed with SIGKILL, the broker killed and restarted, the
// Postgres plugin processes of a worker killed. At the end ClickHouse's
// FINAL view, the Redis hashes and the Postgres mirror equal the source
// tables exactly, and `tributary connectors status` exits 0.

// shopTable is a source table and how to compare it across the targets:
// the columns compared and their kinds (s: text, i: integer, f: numeric
// with two decimals).
type shopTable struct {
	name     string
	keyspace string // the Redis key prefix (keyspace:id); "" means name
	cols     []string
	kinds    string
	// digest renders the whole table, timestamps included, in Postgres
	// (the same in the source and the mirror).
	digest string
}

var shopTables = []shopTable{
	{name: "customers", cols: []string{"email", "name", "city"}, kinds: "sss", digest: `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, email, name, city, extract(epoch from created_at)::text, extract(epoch from updated_at)::text), ',' ORDER BY id)), '') FROM customers`},
	{name: "orders", cols: []string{"customer_id", "status", "total"}, kinds: "isf", digest: `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, customer_id, status, total::text, extract(epoch from placed_at)::text, extract(epoch from updated_at)::text), ',' ORDER BY id)), '') FROM orders`},
	{name: "order_items", cols: []string{"order_id", "sku", "qty", "unit_price"}, kinds: "isif", digest: `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, order_id, sku, qty, unit_price::text, extract(epoch from updated_at)::text), ',' ORDER BY id)), '') FROM order_items`},
}

var shopConnectors = []string{"shop-cdc", "shop-clickhouse", "shop-redis", "shop-files", "shop-mirror"}

func TestShopPipelineWithChaos(t *testing.T) {
	step := 3000 // orders written between chaos events
	if testing.Short() {
		step = 1000
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readSQL := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(repo, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// The servers, prepared with the SQL docker compose mounts.
	pg := testpg.Start(t)
	ch := testclickhouse.Start(t)
	rd := testredis.StartWith(t, testredis.Options{Password: "redis-secret"})
	if err := pg.CreateDatabase(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", readSQL("configs/postgres/mirror.sql"))
	pg.Exec(t, "shop", readSQL("configs/postgres/shop.sql"))
	ch.Exec(t, readSQL("configs/clickhouse/init.sql"))
	src, err := pgxpool.New(ctx, pg.DSN("shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := &shopLoad{pool: src}
	if err := w.seed(ctx, 200); err != nil { // rows the snapshot carries
		t.Fatal(err)
	}

	// The variables configs/pipeline refers to, inherited by the workers.
	filesDir := t.TempDir()
	for k, v := range map[string]string{
		"PG_HOST": pg.Host, "PG_PORT": strconv.Itoa(pg.Port), "PG_USER": pg.User, "PG_PASSWORD": "unused", // trust auth
		"CH_HOST": ch.Host, "CH_PORT": strconv.Itoa(ch.TCPPort), "CH_PASSWORD": "",
		"REDIS_HOST": rd.Host, "REDIS_PORT": strconv.Itoa(rd.Port), "REDIS_PASSWORD": rd.Password,
		"FILES_DIR": filesDir,
	} {
		t.Setenv(k, v)
	}

	kafka := freeAddr(t)
	brokerDir := filepath.Join(t.TempDir(), "broker")
	brokerStarts := 0
	var broker *proc
	startBroker := func() {
		brokerStarts++
		p, err := spawn(t, t.TempDir(), fmt.Sprintf("broker-run%d", brokerStarts), filepath.Join(binDir, "tributary"),
			"broker", "--listen", kafka, "--data-dir", brokerDir)
		if err != nil {
			t.Fatal(err)
		}
		broker = p
	}
	startBroker()
	wc := newWorkerCluster(t, kafka, "e2e-shop", fastMembership...)
	workers := wc.addWorkers(t, 3)
	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tributary"), append([]string{"connectors"}, args...)...)
		cmd.Env = append(os.Environ(), "TRIBUTARY_URL="+wc.live()[0].url)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("tributary connectors %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// Pipelines as code: apply, apply again (nothing changes), wait.
	pipeline := filepath.Join(repo, "configs", "pipeline")
	out := mustCLI("apply", "-f", pipeline)
	if !strings.Contains(out, "created 5, updated 0, unchanged 0") {
		t.Fatalf("first apply:\n%s", out)
	}
	if out = mustCLI("apply", "-f", pipeline); !strings.Contains(out, "created 0, updated 0, unchanged 5") {
		t.Fatalf("second apply changed something:\n%s", out)
	}
	mustCLI("status", "--wait", "2m")
	t.Logf("applied %s: 5 connectors RUNNING on 3 workers", pipeline)

	// The load: three writers until stopped.
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var wg sync.WaitGroup
	var werr atomic.Pointer[error]
	for i, run := range []func(context.Context, *rand.Rand) error{w.customers, w.orders, w.churn} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(wctx, rand.New(rand.NewSource(int64(i)))); err != nil && wctx.Err() == nil {
				werr.Store(&err)
			}
		}()
	}
	waitOrders := func(n int64) {
		t.Helper()
		waitFor(t, 5*time.Minute, fmt.Sprintf("%d orders written", n), func() (bool, string) {
			if e := werr.Load(); e != nil {
				t.Fatalf("writer: %v", *e)
			}
			return w.ordersIn.Load() >= n, fmt.Sprintf("%d orders", w.ordersIn.Load())
		})
	}
	// The worker running the CDC task, for the chaos below.
	cdcWorker := func() *workerNode {
		t.Helper()
		var node *workerNode
		waitFor(t, 2*time.Minute, "the shop-cdc task RUNNING on a live worker", func() (bool, string) {
			pl, err := getPlacement(wc.live()[0].url)
			if err != nil {
				return false, err.Error()
			}
			unit := taskUnit("shop-cdc", 0)
			node = wc.byID(pl.owner[unit])
			return pl.state[unit] == "RUNNING" && node != nil && node.p != nil && !node.p.exited(), pl.String()
		})
		return node
	}

	// Chaos 1: kill -9 the worker running the CDC task; restart it later.
	waitOrders(int64(step))
	victim := cdcWorker()
	victim.p.kill9()
	t.Logf("chaos 1: worker %s (running shop-cdc/0) killed with SIGKILL at %d orders", victim.name, w.ordersIn.Load())
	time.Sleep(2 * time.Second)
	wc.restart(t, victim)

	// Chaos 2: kill -9 the broker and start it again on its data.
	waitOrders(int64(2 * step))
	broker.kill9()
	t.Logf("chaos 2: broker killed with SIGKILL at %d orders", w.ordersIn.Load())
	time.Sleep(time.Second)
	startBroker()

	// Chaos 3: kill the Postgres plugin processes of the CDC task's worker;
	// their units turn FAILED and `connectors restart --only-failed` brings
	// them back.
	waitOrders(int64(3 * step))
	var host *workerNode
	var victims []int
	waited := time.Now()
	// The status may lag behind a rebalance: wait until the worker named
	// as the CDC task's owner runs Postgres plugin processes.
	waitFor(t, time.Minute, "Postgres plugin processes under the CDC task's worker", func() (bool, string) {
		host = cdcWorker()
		victims = pluginChildrenOf(t, host.p.cmd.Process.Pid, "tributary-connector-postgres")
		return len(victims) > 0, "none under " + host.name
	})
	for _, pid := range victims {
		syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // it may have exited
	}
	t.Logf("chaos 3: killed %d Postgres plugin processes %v of worker %s at %d orders (found them after %v)", len(victims), victims, host.name, w.ordersIn.Load(), time.Since(waited).Round(time.Millisecond))
	waitFor(t, time.Minute, "a FAILED unit reported by `connectors status`", func() (bool, string) {
		out, err := cli("status")
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.ExitCode() == 1 && strings.Contains(out, "FAILED"), out
	})
	out = mustCLI(append([]string{"restart", "--include-tasks", "--only-failed"}, shopConnectors...)...)
	t.Logf("restarted the failed units:\n%s", strings.TrimSpace(out))

	waitOrders(int64(4 * step))
	stopWriters()
	wg.Wait()
	if e := werr.Load(); e != nil {
		t.Fatalf("writer: %v", *e)
	}
	lastCommit := time.Now()
	t.Logf("writers done: %d customers, %d orders with %d items inserted; %d updates, %d deletes",
		w.customersIn.Load(), w.ordersIn.Load(), w.itemsIn.Load(), w.updates.Load(), w.deletes.Load())
	mustCLI("status", "--wait", "2m")

	// Every target converges on the source.
	want := map[string]map[int64]string{}
	for _, tb := range shopTables {
		if want[tb.name], err = tb.sourceState(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	mirror, err := pgxpool.New(ctx, pg.DSN("mirror"))
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close()
	rdb := rd.Client(t)
	var visible time.Duration
	equalAt := map[string]time.Duration{} // target -> when it first equalled the source
	deadline := time.Now().Add(3 * time.Minute)
	for {
		diffs := shopDiffs(ctx, want, src, mirror, ch, rdb)
		var all []string
		for _, target := range []string{"ClickHouse", "Redis", "Postgres mirror"} {
			if len(diffs[target]) == 0 {
				if _, ok := equalAt[target]; !ok {
					equalAt[target] = time.Since(lastCommit)
				}
				continue
			}
			all = append(all, diffs[target]...)
		}
		if len(all) == 0 {
			visible = time.Since(lastCommit)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 min after the last commit the targets still differ from the source:\n%s", strings.Join(all, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	rows := 0
	for _, m := range want {
		rows += len(m)
	}
	events, dups, tombstones, torn := changeLog(t, filepath.Join(filesDir, "shop-changes.jsonl"))
	t.Logf("rows at the end: %d (customers %d, orders %d, order_items %d); ClickHouse FINAL, Redis and the Postgres mirror equal the source %v after the last commit",
		rows, len(want["customers"]), len(want["orders"]), len(want["order_items"]), visible.Round(time.Millisecond))
	t.Logf("equal to the source after the last commit: ClickHouse %v, Redis %v, Postgres mirror %v",
		equalAt["ClickHouse"].Round(time.Millisecond), equalAt["Redis"].Round(time.Millisecond), equalAt["Postgres mirror"].Round(time.Millisecond))
	t.Logf("change events moved: %d distinct in the file sink (and %d tombstones); duplicates replayed after the chaos: %d; torn lines: %d", events, tombstones, dups, torn)
	t.Logf("ClickHouse row versions stored (before merges): customers %s, orders %s, order_items %s",
		strings.TrimSpace(mustDo(t, ch, "SELECT count() FROM analytics.customers")),
		strings.TrimSpace(mustDo(t, ch, "SELECT count() FROM analytics.orders")),
		strings.TrimSpace(mustDo(t, ch, "SELECT count() FROM analytics.order_items")))
	if out, err := cli("status"); err != nil {
		t.Fatalf("tributary connectors status exits non-zero at the end: %v\n%s", err, out)
	}
	for _, n := range workers {
		if n.p.exited() {
			t.Errorf("worker %s exited: %v", n.name, n.p.waitErr)
		}
	}
}

// shopLoad writes the shop tables: customers, orders with their items, and
// updates and deletes of recent rows, in small transactions.
type shopLoad struct {
	pool                           *pgxpool.Pool
	maxCustomer, maxOrder          atomic.Int64
	customersIn, ordersIn, itemsIn atomic.Int64
	updates, deletes               atomic.Int64
}

func (w *shopLoad) seed(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if err := w.newCustomer(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (w *shopLoad) newCustomer(ctx context.Context, i int) error {
	var id int64
	err := w.pool.QueryRow(ctx, `INSERT INTO customers (email, name, city) VALUES ($1, $2, $3) RETURNING id`,
		fmt.Sprintf("c%d-%d@example.com", i, time.Now().UnixNano()), fmt.Sprint("customer ", i), []string{"Oslo", "Lyon", "Porto", "Graz"}[i%4]).Scan(&id)
	if err != nil {
		return err
	}
	w.customersIn.Add(1)
	for {
		m := w.maxCustomer.Load()
		if id <= m || w.maxCustomer.CompareAndSwap(m, id) {
			return nil
		}
	}
}

// customers inserts customers and renames or moves existing ones.
func (w *shopLoad) customers(ctx context.Context, rng *rand.Rand) error {
	for i := 0; ctx.Err() == nil; i++ {
		if rng.Intn(3) == 0 {
			if err := w.newCustomer(ctx, i); err != nil {
				return err
			}
			continue
		}
		id := 1 + rng.Int63n(w.maxCustomer.Load())
		if _, err := w.pool.Exec(ctx, `UPDATE customers SET city = $2, name = name || '.' WHERE id = $1`, id, fmt.Sprint("city ", rng.Intn(100))); err != nil {
			return err
		}
		w.updates.Add(1)
		time.Sleep(time.Millisecond)
	}
	return nil
}

// orders inserts an order with one to three items per transaction.
func (w *shopLoad) orders(ctx context.Context, rng *rand.Rand) error {
	for ctx.Err() == nil {
		tx, err := w.pool.Begin(ctx)
		if err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO orders (customer_id, total) VALUES ($1, $2::numeric) RETURNING id`,
			1+rng.Int63n(w.maxCustomer.Load()), fmt.Sprintf("%d.%02d", rng.Intn(1000), rng.Intn(100))).Scan(&id); err != nil {
			tx.Rollback(ctx) //nolint:errcheck // the error above is the one to report
			return err
		}
		items := 1 + rng.Intn(3)
		for k := 0; k < items; k++ {
			if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, sku, qty, unit_price) VALUES ($1, $2, $3, $4::numeric)`,
				id, fmt.Sprint("sku-", rng.Intn(500)), 1+rng.Intn(5), fmt.Sprintf("%d.%02d", rng.Intn(100), rng.Intn(100))); err != nil {
				tx.Rollback(ctx) //nolint:errcheck // as above
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		w.ordersIn.Add(1)
		w.itemsIn.Add(int64(items))
		for {
			m := w.maxOrder.Load()
			if id <= m || w.maxOrder.CompareAndSwap(m, id) {
				break
			}
		}
	}
	return nil
}

// churn updates and deletes recent orders and items (deleting an order
// cascades to its items, which CDC carries as deletes too).
func (w *shopLoad) churn(ctx context.Context, rng *rand.Rand) error {
	for ctx.Err() == nil {
		max := w.maxOrder.Load()
		if max < 10 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		id := max - rng.Int63n(min(max, 300))
		var err error
		switch r := rng.Intn(10); {
		case r < 4:
			_, err = w.pool.Exec(ctx, `UPDATE orders SET status = $2, total = total + 1 WHERE id = $1`, id, []string{"paid", "shipped", "returned"}[rng.Intn(3)])
			w.updates.Add(1)
		case r < 8:
			_, err = w.pool.Exec(ctx, `UPDATE order_items SET qty = qty + 1 WHERE order_id = $1`, id)
			w.updates.Add(1)
		default:
			_, err = w.pool.Exec(ctx, `DELETE FROM orders WHERE id = $1`, id)
			w.deletes.Add(1)
		}
		if err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// canon renders a row's compared values the same way for every target.
func (tb shopTable) canon(vals []string) (string, error) {
	out := make([]string, len(vals))
	for i, v := range vals {
		switch tb.kinds[i] {
		case 'f':
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return "", fmt.Errorf("%s.%s: %q is not a number", tb.name, tb.cols[i], v)
			}
			out[i] = strconv.FormatFloat(f, 'f', 2, 64)
		default:
			out[i] = v
		}
	}
	return strings.Join(out, "|"), nil
}

func (tb shopTable) sourceState(ctx context.Context, pool *pgxpool.Pool) (map[int64]string, error) {
	cols := make([]string, len(tb.cols))
	for i, c := range tb.cols {
		cols[i] = c + "::text"
	}
	rows, err := pool.Query(ctx, "SELECT id, "+strings.Join(cols, ", ")+" FROM "+tb.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[int64]string{}
	for rows.Next() {
		var id int64
		vals := make([]string, len(tb.cols))
		dest := []any{&id}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if got[id], err = tb.canon(vals); err != nil {
			return nil, err
		}
	}
	return got, rows.Err()
}

func (tb shopTable) clickhouseState(ctx context.Context, ch *testclickhouse.Server) (map[int64]string, error) {
	cols := make([]string, len(tb.cols))
	for i, c := range tb.cols {
		cols[i] = "toString(" + c + ")"
	}
	out, err := ch.Do(ctx, "SELECT id, "+strings.Join(cols, ", ")+" FROM analytics."+tb.name+" FINAL WHERE NOT _is_deleted")
	if err != nil {
		return nil, err
	}
	got := map[int64]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != len(tb.cols)+1 {
			return nil, fmt.Errorf("analytics.%s row %q", tb.name, line)
		}
		id, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, err
		}
		if got[id], err = tb.canon(f[1:]); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// redisState reads every <keyspace>:<id> hash (deleted rows must be gone).
func (tb shopTable) redisState(ctx context.Context, rdb *redis.Client) (map[int64]string, error) {
	prefix := tb.name + ":"
	if tb.keyspace != "" {
		prefix = tb.keyspace + ":"
	}
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
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
		id, err := strconv.ParseInt(strings.TrimPrefix(k, prefix), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %q", k)
		}
		h := cmds[i].Val()
		vals := make([]string, len(tb.cols))
		for j, c := range tb.cols {
			vals[j] = h[c]
		}
		if got[id], err = tb.canon(vals); err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
	}
	return got, nil
}

// shopDiffs compares every target with the source state want: the
// differences per target (ClickHouse, Redis, Postgres mirror), none when
// all are equal.
func shopDiffs(ctx context.Context, want map[string]map[int64]string, src, mirror *pgxpool.Pool, ch *testclickhouse.Server, rdb *redis.Client) map[string][]string {
	diffs := map[string][]string{}
	for _, tb := range shopTables {
		gotCH, err := tb.clickhouseState(ctx, ch)
		if d := stateDiff(want[tb.name], gotCH); err != nil || d != "" {
			diffs["ClickHouse"] = append(diffs["ClickHouse"], fmt.Sprintf("ClickHouse %s: %s %v", tb.name, d, err))
		}
		gotRD, err := tb.redisState(ctx, rdb)
		if d := stateDiff(want[tb.name], gotRD); err != nil || d != "" {
			diffs["Redis"] = append(diffs["Redis"], fmt.Sprintf("Redis %s: %s %v", tb.name, d, err))
		}
		var a, b string
		var na, nb int64
		errA := src.QueryRow(ctx, tb.digest).Scan(&na, &a)
		errB := mirror.QueryRow(ctx, tb.digest).Scan(&nb, &b)
		if errA != nil || errB != nil || na != nb || a != b {
			diffs["Postgres mirror"] = append(diffs["Postgres mirror"], fmt.Sprintf("Postgres mirror %s: source %d rows %.8s, mirror %d rows %.8s (%v %v)", tb.name, na, a, nb, b, errA, errB))
		}
	}
	return diffs
}

// changeLog counts the file sink's lines: distinct change events,
// duplicates (an event written again after a replay: the same table,
// LSN, operation and row id; its ts_ms is the time of processing, so a
// replay's bytes differ), tombstones and torn lines (a write cut by
// SIGKILL, or anything else that is not a change event).
func changeLog(t *testing.T, path string) (events, dups, tombstones, torn int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct {
		ID json.Number `json:"id"`
	}
	type change struct {
		Op     string `json:"op"`
		Before *row   `json:"before"`
		After  *row   `json:"after"`
		Source struct {
			Table string      `json:"table"`
			LSN   json.Number `json:"lsn"`
		} `json:"source"`
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if string(line) == "null" {
			tombstones++
			continue
		}
		var env struct {
			Payload *change `json:"payload"` // JsonConverter with schemas
			change
		}
		if err := json.Unmarshal(line, &env); err != nil {
			torn++
			continue
		}
		ch := &env.change
		if env.Payload != nil {
			ch = env.Payload
		}
		r := ch.After
		if r == nil {
			r = ch.Before
		}
		if ch.Op == "" || ch.Source.LSN == "" || r == nil {
			torn++
			continue
		}
		k := ch.Source.Table + "|" + string(ch.Source.LSN) + "|" + ch.Op + "|" + string(r.ID)
		if seen[k] {
			dups++
			continue
		}
		seen[k] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return len(seen), dups, tombstones, torn
}
