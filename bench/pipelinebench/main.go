// Command pipelinebench measures the whole pipeline: PostgreSQL commits ->
// PostgresCdcSource (`tributary-connector-postgres`) -> `tributary worker`
// -> `tributary broker` -> `tributary worker` -> ClickHouseSink
// (`tributary-connector-clickhouse`, insert.mode=upsert) -> ClickHouse, all
// real processes on this machine.
//
// Usage (from the repository root, after `make build`):
//
//	go run ./bench/pipelinebench [--rows 300000] [--writers 2] [--tx-rows 1000]
//	    [--rate 5000] [--paced-duration 20s] [--paced-tx-rows 100] [--runs 2]
//	    [--poll-every 25ms] [--tributary ./bin/tributary] [--out FILE]
//	    [--work-dir DIR] [--timeout 30m] [--set source.KEY=V|sink.KEY=V|worker.KEY=V ...]
//
// PostgreSQL comes from internal/testpg (a private server, fsync,
// synchronous_commit and full_page_writes off), ClickHouse from
// internal/testclickhouse; both on free ports of 127.0.0.1, one of each for
// the whole benchmark, each run in fresh databases. Every run starts a fresh
// `tributary broker` and `tributary worker` (offset.flush.interval.ms=1000,
// the default) and creates two connectors:
//
//   - PostgresCdcSource on table public.orders (id bigint primary key, name
//     text, amount numeric(12,2), created timestamptz, flag bool: ~100
//     bytes a row), its own slot, the default converters (JsonConverter
//     with schemas: the ClickHouse sink needs struct keys for upserts and
//     schemas to create the table);
//   - ClickHouseSink, insert.mode=upsert (ReplacingMergeTree(_version),
//     created by the sink: auto.create), batch.size=10000 (the default)
//     and flush.interval.ms=200 (default 1000): see sinkDefaults for why.
//
// Then, after a warm-up transaction has gone all the way through (so the
// table exists and both tasks run), two phases, each with its own ids:
//
//  1. Sustained: --writers connections insert --rows rows as fast as they
//     can, COPY in transactions of --tx-rows rows, taking transactions
//     from a shared counter. Throughput is --rows over the time from the
//     first BEGIN to the moment the last transaction is visible in
//     ClickHouse.
//  2. Paced: the same writers insert at --rate rows/s for --paced-duration,
//     in transactions of --paced-tx-rows rows, transaction k starting at
//     k x paced-tx-rows / rate after the phase's start (open loop: a late
//     transaction starts at once). Below the pipeline's capacity the
//     freshness is latency; at saturation (phase 1) it is mostly queueing.
//
// Freshness of a transaction is the time from its COMMIT returning to the
// writer until a poller sees all of its rows in ClickHouse's FINAL view: the
// poller queries `SELECT intDiv(id - base, txRows), count() FROM orders
// FINAL WHERE id in [first pending, last begun) GROUP BY 1` every
// --poll-every over HTTP, and a transaction is visible at the end of the
// first query that counts all of its rows (so figures are late by up to one
// poll interval plus one query, never early). Reported: p50, p99 and max
// over the transactions of each phase.
//
// Memory, sampled every 200 ms through the run: the worker's peak RSS
// (VmHWM), the plugin processes' (the worker's children, per binary: a
// connector instance and a task per connector, and the validator the
// worker keeps for a minute after validating each POST). CPU seconds per
// phase of the worker, each plugin binary, the broker, PostgreSQL,
// ClickHouse and this process (the writers' client side and the poller)
// come from /proc/PID/stat.
//
// Every run is listed; the table reports, per row, the best run (the
// machine is shared and noisy) and, for memory, the highest. Progress goes
// to stderr; the report (markdown) to stdout and --out. PIPELINEBENCH_KEEP=1
// keeps each run's directory (process logs, broker data) under --work-dir.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
	"github.com/tributary-data/tributary/internal/testclickhouse"
	"github.com/tributary-data/tributary/internal/testpg"
)

// Targets the report checks (the issue's).
const (
	targetRPS       = 30_000          // rows/s, Postgres commits to ClickHouse
	targetFreshness = 2 * time.Second // p99, commit to visible, below capacity
)

// Plugin binaries the pipeline needs next to --tributary.
const (
	sourceBinary = "tributary-connector-postgres"
	sinkBinary   = "tributary-connector-clickhouse"
)

type options struct {
	rows          int
	writers       int
	txRows        int
	rate          int
	pacedDuration time.Duration
	pacedTxRows   int
	pollEvery     time.Duration
	runs          int
	tributary     string
	out           string
	workDir       string
	timeout       time.Duration
	set           sets // --set: config added for experiments
}

// sets are the --set overrides, per target.
type sets struct{ source, sink, worker map[string]string }

func (s sets) empty() bool { return len(s.source)+len(s.sink)+len(s.worker) == 0 }

// list renders them as prefix.key=value, sorted.
func (s sets) list() []string {
	var out []string
	for _, g := range []struct {
		p string
		m map[string]string
	}{{"source.", s.source}, {"sink.", s.sink}, {"worker.", s.worker}} {
		for k, v := range g.m {
			out = append(out, g.p+k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// setFlag collects --set source.KEY=V, sink.KEY=V, worker.KEY=V.
type setFlag struct{ s *sets }

func (f setFlag) String() string { return "" }

func (f setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want source.KEY=VALUE, sink.KEY=VALUE or worker.KEY=VALUE, got %q", v)
	}
	target, key, _ := strings.Cut(k, ".")
	if key == "" {
		return fmt.Errorf("%q: the key needs a source., sink. or worker. prefix", k)
	}
	switch target {
	case "source":
		f.s.source[key] = val
	case "sink":
		f.s.sink[key] = val
	case "worker":
		f.s.worker[key] = val
	default:
		return fmt.Errorf("%q: the key needs a source., sink. or worker. prefix", k)
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	o.set = sets{source: map[string]string{}, sink: map[string]string{}, worker: map[string]string{}}
	fs := flag.NewFlagSet("pipelinebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rows, "rows", 300_000, "rows inserted in the sustained phase")
	fs.IntVar(&o.writers, "writers", 2, "concurrent writer connections")
	fs.IntVar(&o.txRows, "tx-rows", 1000, "rows per transaction in the sustained phase")
	fs.IntVar(&o.rate, "rate", 5000, "rows/s of the paced phase (below the pipeline's capacity); 0 skips the phase")
	fs.DurationVar(&o.pacedDuration, "paced-duration", 20*time.Second, "length of the paced phase")
	fs.IntVar(&o.pacedTxRows, "paced-tx-rows", 100, "rows per transaction in the paced phase (smaller transactions: more freshness samples)")
	fs.DurationVar(&o.pollEvery, "poll-every", 25*time.Millisecond, "how often the poller queries ClickHouse (the freshness figures' resolution)")
	fs.IntVar(&o.runs, "runs", 2, "runs; the best is reported, every run listed")
	fs.StringVar(&o.tributary, "tributary", "./bin/tributary", "the tributary binary; "+sourceBinary+" and "+sinkBinary+" must sit next to it")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.workDir, "work-dir", "", "where to put the runs' data (default: a temporary directory, removed at the end); the servers' data live in their own temporary directories")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.Var(setFlag{&o.set}, "set", "source.KEY=VALUE, sink.KEY=VALUE (connector config) or worker.KEY=VALUE (worker --set) for experiments; repeatable; the report lists them")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("%w: unexpected argument %q", benchreport.ErrUsage, fs.Arg(0))
	case o.rows < 1:
		return o, fmt.Errorf("%w: --rows must be at least 1", benchreport.ErrUsage)
	case o.writers < 1:
		return o, fmt.Errorf("%w: --writers must be at least 1", benchreport.ErrUsage)
	case o.txRows < 1:
		return o, fmt.Errorf("%w: --tx-rows must be at least 1", benchreport.ErrUsage)
	case o.rate < 0:
		return o, fmt.Errorf("%w: --rate must not be negative", benchreport.ErrUsage)
	case o.rate > 0 && o.pacedDuration <= 0:
		return o, fmt.Errorf("%w: --paced-duration must be positive", benchreport.ErrUsage)
	case o.pacedTxRows < 1:
		return o, fmt.Errorf("%w: --paced-tx-rows must be at least 1", benchreport.ErrUsage)
	case o.rate > 0 && int(float64(o.rate)*o.pacedDuration.Seconds()) < o.pacedTxRows:
		return o, fmt.Errorf("%w: --rate x --paced-duration is less than one transaction of --paced-tx-rows rows", benchreport.ErrUsage)
	case o.pollEvery < time.Millisecond:
		return o, fmt.Errorf("%w: --poll-every must be at least 1ms", benchreport.ErrUsage)
	case o.runs < 1:
		return o, fmt.Errorf("%w: --runs must be at least 1", benchreport.ErrUsage)
	}
	var err error
	if o.tributary, err = benchproc.Binaries(o.tributary, sourceBinary, sinkBinary); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	return o, nil
}

// driver is the command: main runs it, the tests call its Run.
var driver = benchreport.Driver[options]{Name: "pipelinebench", Parse: parseFlags, Bench: bench}

func main() { driver.Main() }

// Output implements benchreport.Options.
func (o options) Output() (string, time.Duration) { return o.out, o.timeout }

// servers are the source and target databases every run uses.
type servers struct {
	pg        *testpg.Server
	pgVersion string
	ch        *testclickhouse.Server
	chVersion string
}

func bench(ctx context.Context, o options, logw io.Writer) (string, error) {
	dir, cleanup, err := benchreport.WorkDir(o.workDir, "pipelinebench-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	o.workDir = dir
	logf := benchreport.Progress(logw)
	var sv servers
	logf("starting PostgreSQL and ClickHouse")
	pg, err := testpg.StartServer(ctx, testpg.Options{})
	if err != nil {
		return "", err
	}
	defer func() {
		if err := pg.Close(); err != nil {
			logf("stopping PostgreSQL: %v", err)
		}
	}()
	sv.pg = pg
	if sv.pgVersion, err = pgVersion(ctx, pg); err != nil {
		return "", err
	}
	ch, err := testclickhouse.StartServer(ctx)
	if err != nil {
		return "", err
	}
	defer func() {
		if err := ch.Close(); err != nil {
			logf("stopping ClickHouse: %v", err)
		}
	}()
	sv.ch = ch
	v, err := ch.Do(ctx, "SELECT version()")
	if err != nil {
		return "", err
	}
	sv.chVersion = strings.TrimSpace(v)
	logf("PostgreSQL %s on %s:%d, ClickHouse %s on %s (http %d)", sv.pgVersion, pg.Host, pg.Port, sv.chVersion, ch.Addr(), ch.HTTPPort)

	var rs []result
	for r := 1; r <= o.runs; r++ {
		logf("run %d", r)
		res, err := runOnce(ctx, o, sv, r, logf)
		if err != nil {
			return "", fmt.Errorf("run %d: %w", r, err)
		}
		logf("run %d: sustained %s rows/s (inserts %s rows/s), freshness p50 %s p99 %s max %s; paced %s rows/s, freshness p50 %s p99 %s max %s; worker peak %.0f MiB, plugins %.0f MiB",
			r, benchreport.Thousands(res.sustained.rps()), benchreport.Thousands(res.sustained.insertRPS()),
			ms(res.sustained.fresh.p50), ms(res.sustained.fresh.p99), ms(res.sustained.fresh.max),
			benchreport.Thousands(res.paced.insertRPS()), ms(res.paced.fresh.p50), ms(res.paced.fresh.p99), ms(res.paced.fresh.max),
			res.mem.WorkerHWM, res.mem.PluginsRSS)
		rs = append(rs, res)
	}
	return render(o, sv, rs), nil
}

// ms renders a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
