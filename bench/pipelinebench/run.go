package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
	"github.com/tributary-data/tributary/internal/testpg"
)

const (
	stopGrace      = 15 * time.Second
	statusEvery    = time.Second            // connector status, process liveness
	stallAfter     = 2 * time.Minute        // no transaction became visible: give up
	memSampleEvery = 200 * time.Millisecond //
	flushMs        = 1000                   // the worker's offset.flush.interval.ms (its default)
	warmupRows     = 1000                   // one transaction through the whole pipeline before measuring
	phasePause     = 2 * time.Second        // between the phases
	sourceName     = "pipeline-cdc"
	sinkName       = "pipeline-clickhouse"
	topicPrefix    = "bench"
	chTable        = "orders"
)

// topic is where the source writes pgTable's changes.
const topic = topicPrefix + ".public." + pgTable

// sinkDefaults are the ClickHouse sink's write settings of the benchmark,
// what a user wanting low latency would set:
//
//   - batch.size=10000 (the default): at saturation Put sends a table's
//     rows once this many are buffered; bigger batches mean fewer parts for
//     ClickHouse to merge.
//   - flush.interval.ms=200 (default 1000): Put also sends the buffered
//     rows once the oldest is this old. With the default, a trickle of
//     changes waits up to a second in the sink (or until the worker's next
//     offset flush, every offset.flush.interval.ms=1000), which alone
//     spends half of the 2 s freshness budget; 200 ms bounds that wait
//     while keeping ClickHouse at about 5 inserts a second per task.
//     Measured here (paced phase, 5,000 rows/s, two runs each, a machine
//     shared with other work): the default gave p50 680-840 ms, p99
//     1.2-1.9 s, max up to 2.1 s; 200 ms gave p50 ~395 ms, p99 0.7-1.1 s.
var sinkDefaults = map[string]string{
	"batch.size":        "10000",
	"flush.interval.ms": "200",
}

// phaseResult is one phase of one run.
type phaseResult struct {
	rows, txRows, txs int
	rate              float64       // paced: the target rows/s; 0: as fast as possible
	insert            time.Duration // first BEGIN -> last COMMIT
	total             time.Duration // first BEGIN -> the last transaction visible
	drain             time.Duration // last COMMIT -> the last transaction visible
	late              int64         // paced: transactions that began late
	fresh             freshness
	polls             pollStats
	cpu               cpuSplit
}

func (r phaseResult) rps() float64       { return float64(r.rows) / r.total.Seconds() }
func (r phaseResult) insertRPS() float64 { return float64(r.rows) / r.insert.Seconds() }

// result is one run.
type result struct {
	run              int
	warmup           time.Duration // POST of the connectors -> the warm-up transaction visible
	sustained, paced phaseResult
	stored, unique   int64 // rows in the ClickHouse table at the end, before merges and in FINAL
	mem              benchproc.MemPeaks
}

// env is one run's processes, databases and clients.
type env struct {
	o    options
	sv   servers
	dir  string
	db   string // the run's database, in PostgreSQL and in ClickHouse
	slot string
	st   *benchproc.Stack
	logf func(string, ...any)

	tableExists bool // the sink created the ClickHouse table (set by the poller)
}

func runOnce(ctx context.Context, o options, sv servers, r int, logf func(string, ...any)) (res result, err error) {
	res.run = r
	e := &env{o: o, sv: sv, dir: filepath.Join(o.workDir, fmt.Sprintf("run%d", r)), db: fmt.Sprintf("pipelinebench_%d", r),
		slot: fmt.Sprintf("pipelinebench_%d", r), logf: logf}
	// A fresh directory: a kept one of an earlier invocation holds a
	// broker's data (with that run's connectors).
	if err := os.RemoveAll(e.dir); err != nil {
		return res, err
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return res, err
	}
	if os.Getenv("PIPELINEBENCH_KEEP") == "" {
		defer os.RemoveAll(e.dir)
	}
	if err := e.createDatabases(ctx); err != nil {
		return res, err
	}
	defer e.dropDatabases() // after the processes stopped (deferred earlier, so run later)

	defer e.stop()
	worker := []string{"offset.flush.interval.ms=" + strconv.Itoa(flushMs)}
	for k, v := range o.set.worker {
		worker = append(worker, k+"="+v)
	}
	if e.st, err = benchproc.StartStack(ctx, o.tributary, e.dir, "pipelinebench", worker...); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n--- source status: %s\n--- sink status: %s\n--- worker log ends:\n%s", err,
				e.st.Status(sourceName), e.st.Status(sinkName), benchproc.Tail(e.st.Worker.LogPath, 3000))
		}
	}()
	conns := make([]*pgx.Conn, 0, o.writers)
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	for range o.writers {
		c, err := sv.pg.Connect(ctx, e.db)
		if err != nil {
			return res, err
		}
		conns = append(conns, c)
	}
	mem := benchproc.StartMemSampler(e.st.Worker.PID(), memSampleEvery)
	defer mem.Stop()

	// The connectors, and a warm-up transaction through the whole pipeline
	// (slot, publication, topic, consumer group, table creation).
	start := time.Now()
	if err := e.st.PostConnector(ctx, sourceName, e.sourceConfig()); err != nil {
		return res, err
	}
	if err := e.st.PostConnector(ctx, sinkName, e.sinkConfig()); err != nil {
		return res, err
	}
	logf("run %d: connectors created; warm-up: %d rows in one transaction", r, warmupRows)
	warm := newPhase("warm-up", 1, warmupRows, warmupRows, 0)
	if _, err := e.runPhase(ctx, warm, conns[:1]); err != nil {
		return res, err
	}
	res.warmup = time.Since(start)
	logf("run %d: warm-up visible in ClickHouse %.2f s after the POSTs", r, res.warmup.Seconds())

	// 1. Sustained.
	next := int64(warmupRows + 1)
	sus := newPhase("sustained", next, o.rows, o.txRows, 0)
	next += int64(o.rows)
	logf("run %d: sustained: %s rows from %d connections in transactions of %s rows", r, benchreport.Thousands(float64(o.rows)), o.writers, benchreport.Thousands(float64(o.txRows)))
	if res.sustained, err = e.runPhase(ctx, sus, conns); err != nil {
		return res, err
	}
	logf("run %d: sustained: %s rows/s (inserts %s rows/s, drained %.2f s after the last commit); freshness p50 %s, p99 %s, max %s",
		r, benchreport.Thousands(res.sustained.rps()), benchreport.Thousands(res.sustained.insertRPS()), res.sustained.drain.Seconds(),
		ms(res.sustained.fresh.p50), ms(res.sustained.fresh.p99), ms(res.sustained.fresh.max))

	// 2. Paced.
	if o.rate > 0 {
		if err := benchproc.Sleep(ctx, phasePause); err != nil {
			return res, err
		}
		n := int(float64(o.rate) * o.pacedDuration.Seconds())
		paced := newPhase("paced", next, n, o.pacedTxRows, float64(o.rate))
		logf("run %d: paced: %s rows at %s rows/s in transactions of %d rows", r, benchreport.Thousands(float64(n)), benchreport.Thousands(float64(o.rate)), o.pacedTxRows)
		if res.paced, err = e.runPhase(ctx, paced, conns); err != nil {
			return res, err
		}
		logf("run %d: paced: %s rows/s written; freshness p50 %s, p99 %s, max %s", r, benchreport.Thousands(res.paced.insertRPS()),
			ms(res.paced.fresh.p50), ms(res.paced.fresh.p99), ms(res.paced.fresh.max))
	}

	// Replays (at-least-once) would show as stored rows beyond the unique
	// ones, until merges drop them.
	for _, q := range []struct {
		sql string
		dst *int64
	}{{"SELECT count() FROM " + e.db + "." + chTable, &res.stored}, {"SELECT count() FROM " + e.db + "." + chTable + " FINAL", &res.unique}} {
		out, err := sv.ch.Do(ctx, q.sql)
		if err != nil {
			return res, err
		}
		if *q.dst, err = strconv.ParseInt(strings.TrimSpace(out), 10, 64); err != nil {
			return res, fmt.Errorf("%s: %q", q.sql, out)
		}
	}
	res.mem = mem.Stop()
	return res, nil
}

// runPhase writes p's transactions from conns while polling ClickHouse for
// them, and returns once all are visible (or on the first failure, after
// the writers stopped).
func (e *env) runPhase(ctx context.Context, p *phase, conns []*pgx.Conn) (phaseResult, error) {
	res := phaseResult{rows: p.rows, txRows: p.txRows, txs: p.txs(), rate: p.rate}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c0 := e.cpu()
	p.start = time.Now()
	written := make(chan error, 1)
	go func() {
		err := p.write(ctx, conns)
		if err != nil {
			cancel(fmt.Errorf("%s: writing: %w", p.name, err))
		}
		written <- err
	}()
	// A failure of the writers cancels ctx, so the poller's error then
	// carries theirs (the first cause); every transaction cannot be
	// visible unless the writers committed them all.
	ps, err := e.visibility(ctx, p)
	if err != nil {
		cancel(err)
	}
	werr := <-written
	if err == nil {
		err = werr
	}
	if err != nil {
		return res, err
	}
	res.cpu = e.cpu().sub(c0)
	res.polls = ps
	res.fresh = p.measure()
	res.late = p.late.Load()
	res.insert = res.fresh.lastCommit.Sub(p.start)
	res.total = res.fresh.lastVisible.Sub(p.start)
	res.drain = res.fresh.lastVisible.Sub(res.fresh.lastCommit)
	return res, nil
}

func (e *env) sourceConfig() map[string]string {
	c := map[string]string{
		"connector.class":    "PostgresCdcSource",
		"database.hostname":  e.sv.pg.Host,
		"database.port":      strconv.Itoa(e.sv.pg.Port),
		"database.user":      e.sv.pg.User,
		"database.dbname":    e.db,
		"topic.prefix":       topicPrefix,
		"slot.name":          e.slot,
		"table.include.list": "public." + pgTable,
		"snapshot.mode":      "initial",
	}
	for k, v := range e.o.set.source {
		c[k] = v
	}
	return c
}

func (e *env) sinkConfig() map[string]string {
	c := map[string]string{
		"connector.class": "ClickHouseSink",
		"hostname":        e.sv.ch.Host,
		"port":            strconv.Itoa(e.sv.ch.TCPPort),
		"database":        e.db,
		"topics":          topic,
		"topic2TableMap":  topic + "=" + chTable,
		"insert.mode":     "upsert",
	}
	for k, v := range sinkDefaults {
		c[k] = v
	}
	for k, v := range e.o.set.sink {
		c[k] = v
	}
	return c
}

// healthy checks that the worker and the broker run and that neither
// connector failed.
func (e *env) healthy(ctx context.Context) error {
	for _, p := range []*benchproc.Proc{e.st.Worker, e.st.Broker} {
		if err := p.Alive(); err != nil {
			return err
		}
	}
	for _, c := range []string{sourceName, sinkName} {
		if err := e.st.Failed(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// stop deletes the connectors (so that the worker stops their plugin
// processes gracefully: a SIGTERM to the worker's process group would
// reach them at once), then stops the worker and the broker. Idempotent.
func (e *env) stop() {
	if e.st != nil {
		e.st.DeleteConnectors(sinkName, sourceName)
		e.st.Stop(stopGrace)
	}
}

// createDatabases creates the run's PostgreSQL database with pgTable, and
// its (empty) ClickHouse database: the sink creates the table.
func (e *env) createDatabases(ctx context.Context) error {
	if err := e.sv.pg.CreateDatabase(ctx, e.db); err != nil {
		return err
	}
	c, err := e.sv.pg.Connect(ctx, e.db)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, createTable); err != nil {
		return err
	}
	for _, q := range []string{"DROP DATABASE IF EXISTS " + e.db, "CREATE DATABASE " + e.db} {
		if _, err := e.sv.ch.Do(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// dropDatabases removes the run's slot and databases (the worker is
// stopped: the slot is released, perhaps a moment later).
func (e *env) dropDatabases() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.sv.ch.Do(ctx, "DROP DATABASE IF EXISTS "+e.db); err != nil {
		e.logf("dropping ClickHouse database %s: %v", e.db, err)
	}
	c, err := e.sv.pg.Connect(ctx, "postgres")
	if err != nil {
		e.logf("dropping PostgreSQL database %s: %v", e.db, err)
		return
	}
	defer c.Close(ctx)
	for {
		_, err := c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", e.slot)
		if err == nil {
			break
		}
		if benchproc.Sleep(ctx, 200*time.Millisecond) != nil {
			e.logf("dropping slot %s: %v", e.slot, err)
			return
		}
	}
	if _, err := c.Exec(ctx, "DROP DATABASE "+pgx.Identifier{e.db}.Sanitize()+" WITH (FORCE)"); err != nil {
		e.logf("dropping PostgreSQL database %s: %v", e.db, err)
	}
}

// cpuSplit is CPU seconds used by each party, or (cpu) the cumulative
// figures at one moment.
type cpuSplit struct {
	worker     float64 // the worker process itself
	source     float64 // its live tributary-connector-postgres children
	sink       float64 // its live tributary-connector-clickhouse children
	ended      float64 // its children that ended (validators) and any other
	broker     float64
	postgres   float64 // the postmaster and every backend (walsender, the writers' backends)
	clickhouse float64
	bench      float64 // this process: the writers' client side, the poller

	machine float64 // every CPU's busy time, all processes (/proc/stat)
	iowait  float64
}

func (c cpuSplit) plugins() float64 { return c.source + c.sink + c.ended }

// ours is every measured party's CPU.
func (c cpuSplit) ours() float64 {
	return c.worker + c.plugins() + c.broker + c.postgres + c.clickhouse + c.bench
}

func (c cpuSplit) sub(o cpuSplit) cpuSplit {
	return cpuSplit{c.worker - o.worker, c.source - o.source, c.sink - o.sink, c.ended - o.ended, c.broker - o.broker,
		c.postgres - o.postgres, c.clickhouse - o.clickhouse, c.bench - o.bench, c.machine - o.machine, c.iowait - o.iowait}
}

// cpu reads the cumulative CPU of each party now.
func (e *env) cpu() cpuSplit {
	r := benchproc.ReadCPU()
	var c cpuSplit
	w := e.st.Worker.PID()
	c.worker = r.Self(w)
	kids := 0.0
	for _, k := range r.Children(w) {
		t := r.Tree(k)
		kids += t
		switch benchproc.Binary(k) {
		case sourceBinary:
			c.source += t
		case sinkBinary:
			c.sink += t
		default:
			c.ended += t
		}
	}
	c.ended += r.Tree(w) - c.worker - kids // reaped children
	c.broker = r.Tree(e.st.Broker.PID())
	if pm := e.sv.pg.PID(); pm > 0 {
		c.postgres = r.Tree(pm)
	}
	c.clickhouse = r.Tree(e.sv.ch.PID())
	c.bench = benchproc.SelfCPU()
	c.machine, c.iowait = benchproc.MachineCPU()
	return c
}

// pgVersion returns the server's version number.
func pgVersion(ctx context.Context, pg *testpg.Server) (string, error) {
	c, err := pg.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", err
	}
	v, _, _ = strings.Cut(v, " ")
	return v, nil
}
