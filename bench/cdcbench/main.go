// Command cdcbench measures the Postgres CDC source connector end to end:
// PostgreSQL -> `tributary-connector-postgres` (logical replication,
// pgoutput) -> `tributary worker` -> `tributary broker`, all real processes
// on this machine.
//
// Usage (from the repository root, after `make build`):
//
//	go run ./bench/cdcbench [--rows 1000000] [--stream-rows 500000] [--runs 2]
//	    [--tributary ./bin/tributary] [--out FILE] [--work-dir DIR]
//	    [--timeout 40m] [--pg-durable] [--converters schemas|schemaless|both] [--set key=value ...]
//
// tributary-connector-postgres must sit next to --tributary (`make build`
// puts both into ./bin). PostgreSQL comes from internal/testpg: a private
// server (initdb into a temporary directory, wal_level=logical, 127.0.0.1
// on a free port), by default with fsync, synchronous_commit and
// full_page_writes off (--pg-durable turns them on); one server serves
// every run, each run in a fresh database.
//
// It runs two converter setups (--converters), each with its own table:
// "schemas", the worker's default (JsonConverter with an embedded schema in
// every key and value, what a connector without converter keys gets; a CDC
// record is then ~2.7 KB), and "schemaless" (JsonConverter with
// schemas.enable=false in the connector config; ~0.45 KB), the usual choice
// for CDC into JSON. --set adds connector config for experiments, and the
// report says so.
//
// Every run starts a fresh `tributary broker` and `tributary worker`
// (offset.flush.interval.ms=1000) and measures:
//
//  1. Snapshot: a table of --rows rows of about 100 bytes (id bigint
//     primary key, name text, amount numeric(12,2), created timestamptz,
//     flag bool) is loaded with COPY, vacuumed and analyzed, and a
//     checkpoint taken, before the connector exists (and, as a reference
//     for step 2, --stream-rows rows are inserted as step 2 inserts them
//     into another table, dropped afterwards). The time runs from
//     the POST of a PostgresCdcSource connector (snapshot.mode=initial, its
//     own slot) until the topic bench.public.<table> holds --rows records
//     (end offsets polled with ListOffsets every 100 ms).
//  2. Streaming: 2 s after the snapshot (one offset flush later), two
//     goroutines of this process insert --stream-rows more rows, each on
//     its own connection, as fast as they can: COPY in transactions of
//     1,000 rows (CDC sees committed transactions). Measured: the insert
//     rate (first BEGIN to last COMMIT), the CDC rate (--stream-rows over
//     the time from the first BEGIN until the topic holds every row) and
//     the lag (last COMMIT to the topic holding the last record). At the
//     end the topic must hold exactly the rows (more are reported as
//     duplicates) and the slot's confirmed_flush_lsn must reach the WAL's
//     end within 20 s (else the report says how far behind it stayed).
//  3. Memory, sampled every 200 ms through the run: the worker's peak RSS
//     (VmHWM), the plugin processes' (the worker's children: one for the
//     connector instance, one for the task, and the validator the worker
//     keeps for a minute after validating the POST) summed RSS at its
//     peak, and the
//     worker and the plugins together at their peak. PostgreSQL is not
//     counted.
//
// CPU seconds per phase (worker, plugin processes, broker, PostgreSQL and
// this process, which generates the inserts and polls) come from
// /proc/PID/stat at the phase's start and end: the machine is shared by
// all of them, and these figures say who used it.
//
// A run ends by deleting the connector (the worker then stops its plugin
// processes gracefully), stopping the worker and the broker, and dropping
// the slot and the database.
//
// Every run is listed; the table reports, per row, the best run (the
// machine is shared and noisy: the best run is the least disturbed) and,
// for memory, the highest. Progress goes to stderr; the report (markdown)
// to stdout and --out. CDCBENCH_KEEP=1 keeps each run's directory
// (process logs, broker data) under --work-dir.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
)

// Targets the report checks (the issue's).
const (
	targetCDC      = 50_000  // streamed rows/s
	targetSnapshot = 150_000 // snapshot rows/s
	targetRSSMB    = 150     // MB (10^6 bytes) of worker RSS
)

// pluginBinary is the plugin serving PostgresCdcSource.
const pluginBinary = "tributary-connector-postgres"

type options struct {
	rows       int
	streamRows int
	runs       int
	tributary  string
	out        string
	workDir    string
	timeout    time.Duration
	durable    bool
	extra      map[string]string // --set: connector config added for experiments
	converters string            // --converters: schemas, schemaless or both
	variant    converterVariant  // the variant being run
}

// converterVariant is one converter setup the benchmark runs: the worker's
// default (JsonConverter with an embedded schema in every record, what a
// connector without converter keys gets), and JSON without schemas (set in
// the connector config; records about 6x smaller, the common production
// choice for CDC into JSON).
type converterVariant struct {
	name   string
	what   string
	config map[string]string
}

var variants = map[string]converterVariant{
	"schemas": {name: "schemas", what: "default converters: JsonConverter with schemas (an embedded schema in every key and value)"},
	"schemaless": {name: "schemaless", what: "JsonConverter with schemas.enable=false for keys and values, set in the connector config", config: map[string]string{
		"key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
	}},
}

// setFlag collects --set key=value pairs.
type setFlag map[string]string

func (f setFlag) String() string { return "" }

func (f setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	f[strings.TrimSpace(k)] = val
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cdcbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rows, "rows", 1_000_000, "rows of the table the snapshot reads")
	fs.IntVar(&o.streamRows, "stream-rows", 500_000, "rows inserted while the connector streams")
	fs.IntVar(&o.runs, "runs", 2, "runs; the best is reported, every run listed")
	fs.StringVar(&o.tributary, "tributary", "./bin/tributary", "the tributary binary; "+pluginBinary+" must sit next to it")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.workDir, "work-dir", "", "where to put the runs' data (default: a temporary directory, removed at the end); PostgreSQL's lives in its own temporary directory")
	fs.DurationVar(&o.timeout, "timeout", 40*time.Minute, "give up after this long")
	fs.BoolVar(&o.durable, "pg-durable", false, "run PostgreSQL with fsync, synchronous_commit and full_page_writes on")
	fs.StringVar(&o.converters, "converters", "both", "converter setups to run: schemas (the worker's default JsonConverter with schemas), schemaless (JSON without schemas), or both")
	o.extra = map[string]string{}
	fs.Var(setFlag(o.extra), "set", "key=value added to the connector's config, for experiments (e.g. value.converter.schemas.enable=false); repeatable; the report lists them")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("%w: unexpected argument %q", benchreport.ErrUsage, fs.Arg(0))
	case o.rows < 1:
		return o, fmt.Errorf("%w: --rows must be at least 1", benchreport.ErrUsage)
	case o.streamRows < 1:
		return o, fmt.Errorf("%w: --stream-rows must be at least 1", benchreport.ErrUsage)
	case o.runs < 1:
		return o, fmt.Errorf("%w: --runs must be at least 1", benchreport.ErrUsage)
	case o.converters != "both" && variants[o.converters].name == "":
		return o, fmt.Errorf("%w: --converters %q: use schemas, schemaless or both", benchreport.ErrUsage, o.converters)
	}
	var err error
	if o.tributary, err = benchproc.Binaries(o.tributary, pluginBinary); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	return o, nil
}

// driver is the command: main runs it, the tests call its Run.
var driver = benchreport.Driver[options]{Name: "cdcbench", Parse: parseFlags, Bench: bench}

func main() { driver.Main() }

// Output implements benchreport.Options.
func (o options) Output() (string, time.Duration) { return o.out, o.timeout }

func bench(ctx context.Context, o options, logw io.Writer) (string, error) {
	dir, cleanup, err := benchreport.WorkDir(o.workDir, "cdcbench-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	o.workDir = dir
	logf := benchreport.Progress(logw)
	logf("starting PostgreSQL (durable: %v)", o.durable)
	pg, err := startPostgres(ctx, o.durable)
	if err != nil {
		return "", err
	}
	defer func() {
		if err := pg.close(); err != nil {
			logf("stopping PostgreSQL: %v", err)
		}
	}()
	logf("PostgreSQL %s on %s:%d", pg.version, pg.srv.Host, pg.srv.Port)
	names := []string{o.converters}
	if o.converters == "both" {
		names = []string{"schemas", "schemaless"}
	}
	var reports []string
	for _, name := range names {
		vo := o
		vo.variant = variants[name]
		var rs []result
		for r := 1; r <= o.runs; r++ {
			logf("converters %s, run %d", name, r)
			res, err := runOnce(ctx, vo, pg, r, logf)
			if err != nil {
				return "", fmt.Errorf("converters %s, run %d: %w", name, r, err)
			}
			logf("run %d: snapshot %.2f s (%s rows/s); inserts %s rows/s; CDC %.2f s (%s rows/s), lag %.2f s; worker peak %.0f MiB, plugins %.0f MiB, together %.0f MiB",
				r, res.snapshot.Seconds(), benchreport.Thousands(res.snapshotRPS()), benchreport.Thousands(res.insertRPS()), res.cdc.Seconds(), benchreport.Thousands(res.cdcRPS()),
				res.lag.Seconds(), res.WorkerHWM, res.PluginsRSS, res.TotalRSS)
			rs = append(rs, res)
		}
		reports = append(reports, render(vo, pg.version, rs))
	}
	return strings.Join(reports, "\n"), nil
}
