// Package configs_test checks the configuration the repo ships in configs/
// and the compose stack built on it: every connector config validates
// against the real plugins and real servers (Postgres, ClickHouse, Redis,
// this repo's broker and a `tributary worker` process started with
// configs/worker/cluster.json), the pipeline moves rows into every sink,
// the worker configs load with the worker's own loader, and
// docker-compose.yml is valid and refers to files that exist.
package configs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/internal/configfile"
	"github.com/tributary-data/tributary/internal/testclickhouse"
	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/internal/testpg"
	"github.com/tributary-data/tributary/internal/testredis"
	"github.com/tributary-data/tributary/worker/workerconfig"
)

// envVars are the environment variables the connector configs reference as
// ${env:NAME}: a worker resolves them from its own environment.
// docker-compose.yml sets them for its workers; tests set them for theirs.
var envVars = []string{
	"PG_HOST", "PG_PORT", "PG_USER", "PG_PASSWORD",
	"CH_HOST", "CH_PORT", "CH_PASSWORD",
	"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
	"FILES_DIR",
}

// unsetVar is a variable no worker has.
const unsetVar = "TRIBUTARY_CONFIGS_TEST_UNSET"

// shipped are the short names of the connectors the plugins serve; each
// has an example in configs/connectors.
var shipped = []string{"FileStreamSource", "FileStreamSink", "PostgresCdcSource", "PostgresQuerySource",
	"PostgresSink", "ClickHouseSink", "RedisSource", "RedisSink"}

// connectorFile is one connector config file: a POST /connectors body.
type connectorFile struct {
	Path   string            `json:"-"` // relative to configs/
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

func (c connectorFile) class() string { return c.Config["connector.class"] }

// body is the config as PUT .../config/validate and POST /connectors take it.
func (c connectorFile) body() map[string]string {
	m := map[string]string{"name": c.Name}
	for k, v := range c.Config {
		m[k] = v
	}
	return m
}

// loadConnectorFiles reads every connector config: configs/connectors/*.json
// and configs/pipeline/*.json. Values must be strings, as Kafka Connect's
// REST API wants them, and no other top-level field is allowed.
func loadConnectorFiles(t *testing.T) []connectorFile {
	t.Helper()
	var out []connectorFile
	for _, dir := range []string{"connectors", "pipeline"} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) == 0 {
			t.Fatalf("no connector configs in configs/%s", dir)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var c connectorFile
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("configs/%s: want {\"name\": ..., \"config\": {string: string}}: %v", p, err)
			}
			c.Path = p
			out = append(out, c)
		}
	}
	return out
}

func pipelineFiles(files []connectorFile) []connectorFile {
	var out []connectorFile
	for _, f := range files {
		if strings.HasPrefix(f.Path, "pipeline"+string(filepath.Separator)) {
			out = append(out, f)
		}
	}
	return out
}

var envRef = regexp.MustCompile(`\$\{(env|file):([^}]*)\}`)

// TestConnectorFiles checks the files themselves: names, classes, the
// environment variables they use, that the README documents each, that
// configs/connectors covers every connector, and that the pipeline's sinks
// read exactly the topics its CDC source writes.
func TestConnectorFiles(t *testing.T) {
	files := loadConnectorFiles(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range envVars {
		known[v] = true
		if !bytes.Contains(readme, []byte(v)) {
			t.Errorf("configs/README.md does not document the environment variable %s", v)
		}
	}
	covered := map[string]bool{}
	for _, f := range files {
		if want := strings.TrimSuffix(filepath.Base(f.Path), ".json"); f.Name != want {
			t.Errorf("configs/%s: name %q; want the file's name, %q", f.Path, f.Name, want)
		}
		if n, ok := f.Config["name"]; ok && n != f.Name {
			t.Errorf("configs/%s: config.name %q differs from name %q", f.Path, n, f.Name)
		}
		if f.class() == "" {
			t.Errorf("configs/%s: no connector.class", f.Path)
		}
		if strings.HasPrefix(f.Path, "connectors") {
			covered[f.class()] = true
		}
		for k, v := range f.Config {
			for _, m := range envRef.FindAllStringSubmatch(v, -1) {
				if m[1] != "env" || !known[m[2]] {
					t.Errorf("configs/%s: %s=%q: only ${env:X} with X one of %v (set for the workers by docker-compose.yml and the tests)", f.Path, k, v, envVars)
				}
			}
		}
		if !bytes.Contains(readme, []byte(filepath.ToSlash(f.Path))) {
			t.Errorf("configs/README.md does not mention %s", filepath.ToSlash(f.Path))
		}
	}
	for _, c := range shipped {
		if !covered[c] {
			t.Errorf("configs/connectors has no example of %s", c)
		}
	}

	// The pipeline: one CDC source; every sink reads exactly its tables' topics.
	var topics []string
	var sinks []connectorFile
	for _, f := range pipelineFiles(files) {
		if f.class() == "PostgresCdcSource" {
			for _, table := range strings.Split(f.Config["table.include.list"], ",") {
				topics = append(topics, f.Config["topic.prefix"]+"."+strings.TrimSpace(table))
			}
			continue
		}
		sinks = append(sinks, f)
	}
	if len(topics) != 3 || len(sinks) < 3 {
		t.Fatalf("configs/pipeline: want one CDC source of three tables and the sinks; got topics %v and %d sinks", topics, len(sinks))
	}
	for _, s := range sinks {
		var got []string
		if re := s.Config["topics.regex"]; re != "" {
			r, err := regexp.Compile("^(?:" + re + ")$")
			if err != nil {
				t.Fatalf("configs/%s: topics.regex: %v", s.Path, err)
			}
			for _, tp := range topics {
				if r.MatchString(tp) {
					got = append(got, tp)
				}
			}
		} else {
			got = strings.Split(s.Config["topics"], ",")
		}
		sort.Strings(got)
		want := append([]string(nil), topics...)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("configs/%s reads %v; the CDC source writes %v", s.Path, got, want)
		}
		if m := s.Config["topic2TableMap"]; m != "" {
			for _, pair := range strings.Split(m, ",") {
				tp, _, _ := strings.Cut(pair, "=")
				if !strings.Contains(","+strings.Join(want, ",")+",", ","+tp+",") {
					t.Errorf("configs/%s: topic2TableMap maps %q, which the CDC source does not write", s.Path, tp)
				}
			}
		}
	}
}

// TestWorkerConfigs loads configs/worker/*.json the way `tributary worker
// --config FILE` does (configfile.Load, then workerconfig's Set per key and
// Validate), so an unknown key or a bad value fails here.
func TestWorkerConfigs(t *testing.T) {
	paths, err := filepath.Glob("worker/*.json")
	if err != nil || len(paths) < 2 {
		t.Fatalf("want configs/worker/dev.json and cluster.json, got %v %v", paths, err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cfg := loadWorkerConfig(t, p)
			if cfg.GroupID == "" || len(cfg.BootstrapServers) == 0 {
				t.Fatalf("%s: %+v", p, cfg)
			}
			if filepath.Base(p) == "cluster.json" {
				if cfg.BootstrapServers[0] != "broker:9092" || cfg.RESTListen != "0.0.0.0:8083" || cfg.ReplicationFactor != 1 {
					t.Errorf("cluster.json: bootstrap %v, listen %s, replication %d; docker-compose.yml expects broker:9092, 0.0.0.0:8083, 1",
						cfg.BootstrapServers, cfg.RESTListen, cfg.ReplicationFactor)
				}
			}
		})
	}
}

func loadWorkerConfig(t *testing.T, path string) workerconfig.Config {
	t.Helper()
	m, err := configfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cfg := workerconfig.Default()
	for _, k := range keys {
		if cfg, err = cfg.Set(k, m[k]); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if cfg.PluginPath == "" {
		cfg.PluginPath = t.TempDir() // the worker's default: the folder of its executable
	}
	if cfg, err = cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

// TestConnectorConfigsAgainstServers starts Postgres (with configs/postgres
// applied), ClickHouse (configs/clickhouse), Redis with a password, the
// broker and a worker process configured by configs/worker/cluster.json
// (the address flags override its compose host names), with the
// environment variables the configs reference. Every connector config must
// validate with no error; the plugins' Validate connects to the servers,
// so a wrong host, port, password, database or table fails. Then the
// pipeline and the file examples run and their rows must arrive in every
// sink, which also shows that tasks get the ${env:...} values.
func TestConnectorConfigsAgainstServers(t *testing.T) {
	files := loadConnectorFiles(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pg := testpg.Start(t)
	if err := pg.CreateDatabase(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", readFile(t, "postgres/mirror.sql"))
	pg.Exec(t, "shop", readFile(t, "postgres/shop.sql"))
	ch := testclickhouse.Start(t)
	ch.Exec(t, readFile(t, "clickhouse/init.sql"))
	rd := testredis.StartWith(t, testredis.Options{Password: "redis-secret"})

	filesDir := t.TempDir()
	env := map[string]string{
		"PG_HOST": pg.Host, "PG_PORT": strconv.Itoa(pg.Port), "PG_USER": pg.User, "PG_PASSWORD": "pg-secret", // trust auth: any password
		"CH_HOST": ch.Host, "CH_PORT": strconv.Itoa(ch.TCPPort), "CH_PASSWORD": "",
		"REDIS_HOST": rd.Host, "REDIS_PORT": strconv.Itoa(rd.Port), "REDIS_PASSWORD": rd.Password,
		"FILES_DIR": filesDir,
	}
	for _, k := range envVars {
		t.Setenv(k, env[k]) // the worker process inherits them
	}
	if _, ok := os.LookupEnv(unsetVar); ok {
		t.Fatalf("%s must not be set: the test checks that a reference to it fails", unsetVar)
	}

	w := startWorker(t, ctx, bin, testkafka.Broker(t))

	// Every file validates against the real plugins and servers.
	for _, f := range files {
		t.Run("validate/"+filepath.ToSlash(f.Path), func(t *testing.T) {
			res := w.validate(t, ctx, f.class(), f.body())
			if res.ErrorCount != 0 {
				t.Fatalf("configs/%s: %d validation errors: %s", f.Path, res.ErrorCount, res.errors())
			}
		})
	}
	// The checks above can fail: a reference to a variable the worker
	// lacks, and a database that does not exist, are errors.
	var cdc connectorFile
	for _, f := range pipelineFiles(files) {
		if f.class() == "PostgresCdcSource" {
			cdc = f
		}
	}
	bad := cdc.body()
	bad["database.port"] = "${env:" + unsetVar + "}"
	if res := w.validate(t, ctx, cdc.class(), bad); res.ErrorCount == 0 || !strings.Contains(res.errors(), unsetVar) {
		t.Errorf("validating with database.port=${env:%s}: %d errors (%s); want one naming the variable", unsetVar, res.ErrorCount, res.errors())
	}
	bad = cdc.body()
	bad["database.dbname"] = "no_such_db"
	if res := w.validate(t, ctx, cdc.class(), bad); res.ErrorCount == 0 || !strings.Contains(res.errors(), "no_such_db") {
		t.Errorf("validating with database.dbname=no_such_db: %d errors (%s); want one naming the database", res.ErrorCount, res.errors())
	}
	// Every plugin class has its example (a new connector needs one).
	code, b := w.do(t, ctx, http.MethodGet, "/connector-plugins", nil)
	var plugins []struct{ Class string }
	if code != http.StatusOK || json.Unmarshal(b, &plugins) != nil || len(plugins) != len(shipped) {
		t.Errorf("GET /connector-plugins: %d %s; want the %d connectors of configs/connectors (add an example for a new one)", code, b, len(shipped))
	}
	if t.Failed() {
		return
	}

	// Run the pipeline and the file examples. Rows present before the CDC
	// source starts come from its snapshot, the others from the stream.
	pg.Exec(t, "shop",
		`INSERT INTO customers (id, email, name, city) VALUES (1, 'ada@example.com', 'Ada', 'London'), (2, 'linus@example.com', 'Linus', 'Helsinki')`)
	if err := os.WriteFile(filepath.Join(filesDir, "input.txt"), []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := pipelineFiles(files)
	for _, f := range files {
		if strings.HasPrefix(f.class(), "FileStream") && strings.HasPrefix(f.Path, "connectors") {
			run = append(run, f)
		}
	}
	for _, f := range run {
		w.create(t, ctx, f)
	}
	for _, f := range run {
		w.waitRunning(t, ctx, f.Name)
	}
	pg.Exec(t, "shop",
		`INSERT INTO orders (id, customer_id, status, total) VALUES (10, 1, 'paid', 42.50)`,
		`INSERT INTO order_items (id, order_id, sku, qty, unit_price) VALUES (100, 10, 'SKU-1', 2, 20.00), (101, 10, 'SKU-2', 1, 2.50)`,
		`UPDATE customers SET city = 'Cambridge' WHERE id = 1`,
		`DELETE FROM order_items WHERE id = 101`)

	// Source state now: customers 1 (Cambridge) and 2, order 10, item 100.
	rdb := rd.Client(t)
	mirror, err := pgx.Connect(ctx, pg.DSN("mirror"))
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close(context.Background())
	checks := []struct {
		sink string
		get  func() (string, error)
		want string
	}{
		{"ClickHouse", func() (string, error) {
			var parts []string
			for _, q := range []string{
				"SELECT count() FROM analytics.customers FINAL WHERE NOT _is_deleted",
				"SELECT city FROM analytics.customers FINAL WHERE id = 1",
				"SELECT count() FROM analytics.orders FINAL WHERE NOT _is_deleted",
				"SELECT groupArray(id) FROM (SELECT id FROM analytics.order_items FINAL WHERE NOT _is_deleted)",
			} {
				out, err := ch.Do(ctx, q)
				if err != nil {
					return "", err
				}
				parts = append(parts, strings.TrimSpace(out))
			}
			return strings.Join(parts, " "), nil
		}, "2 Cambridge 1 [100]"},
		{"Redis", func() (string, error) {
			c1, err := rdb.HGet(ctx, "customers:1", "city").Result()
			if err != nil {
				return "", err
			}
			n, err := rdb.Exists(ctx, "customers:2", "orders:10", "order_items:100", "order_items:101").Result()
			return fmt.Sprintf("%s %d", c1, n), err
		}, "Cambridge 3"},
		{"Postgres mirror", func() (string, error) {
			var s string
			err := mirror.QueryRow(ctx, `SELECT concat_ws(' ', (SELECT count(*) FROM customers), (SELECT city FROM customers WHERE id = 1),
				(SELECT count(*) FROM orders), (SELECT string_agg(id::text, ',') FROM order_items))`).Scan(&s)
			return s, err
		}, "2 Cambridge 1 100"},
		{"file (JSON lines)", func() (string, error) { return jsonLines(filepath.Join(filesDir, "shop-changes.jsonl")) }, "ok"},
		{"file example", func() (string, error) {
			b, err := os.ReadFile(filepath.Join(filesDir, "lines-copy.txt"))
			return strings.ReplaceAll(string(b), "\n", " "), err
		}, "one two three "},
	}
	for _, c := range checks {
		var got string
		var err error
		for {
			got, err = c.get()
			if err == nil && got == c.want {
				break
			}
			for _, f := range run {
				if ferr := w.failed(ctx, f.Name); ferr != nil {
					t.Fatalf("%v\nworker log:\n%s", ferr, benchproc.Tail(w.proc.LogPath, 3000))
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: got %q (%v), want %q\nworker log:\n%s", c.sink, got, err, c.want, benchproc.Tail(w.proc.LogPath, 3000))
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s: %q", c.sink, got)
	}
}

// jsonLines returns "ok" when path holds, as JSON lines, the pipeline's
// change events (snapshot, inserts, the update and the delete), or what is
// missing or wrong.
func jsonLines(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n, updated, deleted := 0, false, false
	for sc.Scan() {
		var ev struct {
			Payload *struct {
				Op    string          `json:"op"`
				After json.RawMessage `json:"after"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Sprintf("line %d is not JSON: %.100s", n+1, sc.Text()), nil
		}
		n++
		if ev.Payload != nil {
			updated = updated || (ev.Payload.Op == "u" && bytes.Contains(ev.Payload.After, []byte("Cambridge")))
			deleted = deleted || ev.Payload.Op == "d"
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	// 2 snapshot rows, 3 inserts, the update, the delete and its tombstone.
	if n < 8 || !updated || !deleted {
		return fmt.Sprintf("%d lines, update seen %v, delete seen %v", n, updated, deleted), nil
	}
	return "ok", nil
}

// TestComposeFile checks docker-compose.yml: every configs/ path it names
// exists, its workers get every variable the connector configs reference,
// `docker-compose config -q` accepts it (Debian's docker-compose 1.29
// validates offline; missing, the check is skipped, except under CI=true),
// and every long-running service has a health check.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("./configs:/configs:ro")) {
		t.Fatalf("docker-compose.yml does not mount ./configs at /configs")
	}
	refs := regexp.MustCompile(`\.?/configs(/[A-Za-z0-9_.-]+)*`).FindAllString(string(raw), -1)
	if len(refs) < 5 {
		t.Fatalf("docker-compose.yml names only %v under configs/", refs)
	}
	for _, r := range refs {
		p := filepath.Join("..", strings.TrimPrefix(strings.TrimPrefix(r, "."), "/"))
		if _, err := os.Stat(p); err != nil {
			t.Errorf("docker-compose.yml names %s: %v", r, err)
		}
	}
	for _, v := range envVars {
		if !regexp.MustCompile(`(?m)^\s+` + v + `:`).Match(raw) {
			t.Errorf("docker-compose.yml does not set %s for the workers; the connector configs reference it", v)
		}
	}

	dc, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker-compose is missing (scripts/install-test-deps.sh installs it): %v", err)
		}
		t.Skipf("docker-compose is missing (apt-get install docker-compose); skipping its validation: %v", err)
	}
	cmd := exec.Command(dc, "-f", "docker-compose.yml", "config", "-q")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose -f docker-compose.yml config -q: %v\n%s", err, out)
	}
	cmd = exec.Command(dc, "-f", "docker-compose.yml", "config")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	services := composeServices(string(out))
	for _, s := range []string{"broker", "worker1", "worker2", "worker3", "postgres", "clickhouse", "redis", "apply"} {
		keys, ok := services[s]
		switch {
		case !ok:
			t.Errorf("docker-compose.yml has no service %s (it has %v)", s, services)
		case s == "apply":
			if !keys["depends_on"] {
				t.Errorf("service apply must wait for healthy workers (depends_on)")
			}
		case !keys["healthcheck"]:
			t.Errorf("service %s has no healthcheck", s)
		}
	}
}

// composeServices parses `docker-compose config` output (normalized: two
// spaces per level) into each service's top-level keys.
func composeServices(out string) map[string]map[string]bool {
	services := map[string]map[string]bool{}
	in, cur := false, ""
	for _, line := range strings.Split(out, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		key, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case strings.TrimSpace(line) == "":
		case indent == 0:
			in, cur = line == "services:", ""
		case !in:
		case indent == 2:
			cur = key
			services[cur] = map[string]bool{}
		case indent == 4 && cur != "":
			services[cur][key] = true
		}
	}
	return services
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// binaries returns a tributary binary with every plugin next to it:
// $TRIBUTARY_BIN (set by `make test`), else a fresh build of ./cmd/... into
// a temporary directory.
func binaries(t *testing.T) string {
	t.Helper()
	cmds, err := filepath.Glob("../cmd/tributary-connector-*")
	if err != nil || len(cmds) == 0 {
		t.Fatalf("no plugin commands in ../cmd: %v", err)
	}
	complete := func(bin string) bool {
		for _, c := range append(cmds, "tributary") {
			if st, err := os.Stat(filepath.Join(filepath.Dir(bin), filepath.Base(c))); err != nil || st.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if p := os.Getenv("TRIBUTARY_BIN"); p != "" && complete(p) {
		return p
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	return filepath.Join(dir, "tributary")
}

// worker is a `tributary worker` process and its REST API.
type worker struct {
	proc *benchproc.Proc
	base string // http://127.0.0.1:port
}

// startWorker starts a worker with configs/worker/cluster.json, the broker
// and REST addresses of the test, and waits for /health.
func startWorker(t *testing.T, ctx context.Context, bin, brokerAddr string) *worker {
	t.Helper()
	rest, err := benchproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := filepath.Abs("worker/cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(rest)
	p, err := benchproc.Start("worker", []string{bin, "worker", "--config", cluster,
		"--bootstrap-servers", brokerAddr, "--rest-listen", rest, "--plugin-path", filepath.Dir(bin),
		"--set", "rest.advertised.host.name=" + host, "--set", "rest.advertised.port=" + port}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(15 * time.Second) })
	w := &worker{proc: p, base: "http://" + rest}
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(hctx, http.MethodGet, w.base+"/health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		if err := p.Alive(); err != nil {
			t.Fatal(err)
		}
		if hctx.Err() != nil {
			t.Fatalf("the worker did not become healthy; its log:\n%s", benchproc.Tail(p.LogPath, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *worker) do(t *testing.T, ctx context.Context, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type validation struct {
	ErrorCount int `json:"error_count"`
	Configs    []struct {
		Value struct {
			Name   string   `json:"name"`
			Errors []string `json:"errors"`
		} `json:"value"`
	} `json:"configs"`
}

func (v validation) errors() string {
	var out []string
	for _, c := range v.Configs {
		for _, e := range c.Value.Errors {
			out = append(out, c.Value.Name+": "+e)
		}
	}
	return strings.Join(out, "; ")
}

func (w *worker) validate(t *testing.T, ctx context.Context, class string, config map[string]string) validation {
	t.Helper()
	code, b := w.do(t, ctx, http.MethodPut, "/connector-plugins/"+url.PathEscape(class)+"/config/validate", config)
	var v validation
	if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("validating %s: %d %s", class, code, b)
	}
	return v
}

// create POSTs a connector file, retrying while the worker answers 409
// (a rebalance in progress).
func (w *worker) create(t *testing.T, ctx context.Context, f connectorFile) {
	t.Helper()
	for {
		code, b := w.do(t, ctx, http.MethodPost, "/connectors", map[string]any{"name": f.Name, "config": f.Config})
		switch {
		case code == http.StatusCreated:
			return
		case code == http.StatusConflict && ctx.Err() == nil:
			time.Sleep(200 * time.Millisecond)
		default:
			t.Fatalf("creating configs/%s: %d %s", f.Path, code, b)
		}
	}
}

type status struct {
	Connector struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

func (w *worker) status(ctx context.Context, name string) (status, error) {
	var st status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/connectors/"+name+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status of %s: %s", name, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// failed returns an error when the connector or a task of it FAILED.
func (w *worker) failed(ctx context.Context, name string) error {
	st, err := w.status(ctx, name)
	if err != nil {
		return nil // not known yet, or ctx ended: the callers' waits time out
	}
	if st.Connector.State == "FAILED" {
		return fmt.Errorf("connector %s FAILED: %s", name, st.Connector.Trace)
	}
	for _, tk := range st.Tasks {
		if tk.State == "FAILED" {
			return fmt.Errorf("task %s/%d FAILED: %s", name, tk.ID, tk.Trace)
		}
	}
	return nil
}

func (w *worker) waitRunning(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	for {
		st, err := w.status(ctx, name)
		running := err == nil && st.Connector.State == "RUNNING" && len(st.Tasks) > 0
		for _, tk := range st.Tasks {
			running = running && tk.State == "RUNNING"
		}
		if running {
			return
		}
		if err := w.failed(ctx, name); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s is not RUNNING: %+v %v\nworker log:\n%s", name, st, err, benchproc.Tail(w.proc.LogPath, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
