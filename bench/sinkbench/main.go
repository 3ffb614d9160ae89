// Command sinkbench measures the ClickHouse and Redis sink connectors end to
// end: `tributary broker` -> `tributary worker` -> the plugin process
// (tributary-connector-clickhouse or tributary-connector-redis) -> the
// target server, all real processes on this machine.
//
// Usage (from the repository root, after `make build`):
//
//	go run ./bench/sinkbench [--records 1000000] [--runs 2] [--partitions 4]
//	    [--sinks clickhouse,redis] [--tributary ./bin/tributary]
//	    [--out FILE] [--work-dir DIR] [--timeout 30m]
//
// tributary-connector-clickhouse and tributary-connector-redis must sit next
// to --tributary (`make build` puts them all into ./bin). ClickHouse comes
// from internal/testclickhouse, Redis from internal/testredis: private
// servers on free ports of 127.0.0.1, one of each for the whole benchmark.
//
// Every run of every sink starts a fresh `tributary broker` and `tributary
// worker` (offset.flush.interval.ms=1000), creates a topic of --partitions
// partitions and fills it from this process (franz-go) with --records
// records before the connector exists: a string key ("id-<n>") and a value
// of about 100 bytes of JSON without schema ({"id","name","amount","ts"}).
// The connector (tasks.max = --partitions) reads them with
// key.converter=StringConverter and value.converter=JsonConverter,
// schemas.enable=false. Then:
//
//  1. ClickHouseSink (insert.mode=insert, batch.size=10000): schemaless
//     records cannot auto-create a table (the sink needs a schema for
//     that), so sinkbench creates it first (MergeTree ORDER BY id: id
//     Int64, name String, amount Float64, ts Int64). Measured from the POST
//     until SELECT count() reaches --records (polled every 200 ms over
//     HTTP), and from the first row seen (start-up excluded).
//  2. RedisSink (redis.command=SET, key <topic>:<record key>, value the JSON
//     object): measured from the POST until DBSIZE reaches --records
//     (polled every 200 ms), and from the first key seen.
//  3. Memory, sampled every 200 ms per measurement: the worker's VmHWM, and
//     the plugin processes' (the worker's children) summed VmRSS at its
//     peak. The target servers are not counted.
//
// Every run is listed; the table reports the best run (the machine is
// shared) and, for memory, the highest. Progress goes to stderr; the report
// (markdown) to stdout and --out. SINKBENCH_KEEP=1 keeps each run's
// directory (process logs, broker data) under --work-dir.
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
	"github.com/tributary-data/tributary/internal/testclickhouse"
	"github.com/tributary-data/tributary/internal/testredis"
)

// Targets the report checks (the issue's).
const (
	targetClickHouse = 200_000 // rows/s, batches of 10,000 rows of ~100 bytes
	targetRedis      = 150_000 // SET ops/s
)

// Sinks.
const (
	sinkClickHouse = "clickhouse"
	sinkRedis      = "redis"
)

// pluginBinaries serve the sinks.
var pluginBinaries = map[string]string{
	sinkClickHouse: "tributary-connector-clickhouse",
	sinkRedis:      "tributary-connector-redis",
}

type options struct {
	records    int
	runs       int
	partitions int
	sinks      []string
	tributary  string
	out        string
	workDir    string
	timeout    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var sinks string
	fs := flag.NewFlagSet("sinkbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.records, "records", 1_000_000, "records preloaded into the topic, each written by the sink")
	fs.IntVar(&o.runs, "runs", 2, "runs per sink; the best is reported, every run listed")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the topic (and the connector's tasks.max)")
	fs.StringVar(&sinks, "sinks", sinkClickHouse+","+sinkRedis, "sinks to measure, comma-separated: clickhouse, redis")
	fs.StringVar(&o.tributary, "tributary", "./bin/tributary", "the tributary binary; the plugin binaries must sit next to it")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.workDir, "work-dir", "", "where to put the runs' data (default: a temporary directory, removed at the end)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("%w: unexpected argument %q", benchreport.ErrUsage, fs.Arg(0))
	case o.records < 1:
		return o, fmt.Errorf("%w: --records must be at least 1", benchreport.ErrUsage)
	case o.runs < 1:
		return o, fmt.Errorf("%w: --runs must be at least 1", benchreport.ErrUsage)
	case o.partitions < 1:
		return o, fmt.Errorf("%w: --partitions must be at least 1", benchreport.ErrUsage)
	}
	for _, s := range strings.Split(sinks, ",") {
		s = strings.TrimSpace(s)
		if pluginBinaries[s] == "" {
			return o, fmt.Errorf("%w: --sinks: unknown sink %q (use clickhouse, redis)", benchreport.ErrUsage, s)
		}
		o.sinks = append(o.sinks, s)
	}
	var plugins []string
	for _, s := range o.sinks {
		plugins = append(plugins, pluginBinaries[s])
	}
	var err error
	if o.tributary, err = benchproc.Binaries(o.tributary, plugins...); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	return o, nil
}

// driver is the command: main runs it, the tests call its Run.
var driver = benchreport.Driver[options]{Name: "sinkbench", Parse: parseFlags, Bench: bench}

func main() { driver.Main() }

// Output implements benchreport.Options.
func (o options) Output() (string, time.Duration) { return o.out, o.timeout }

// targets are the servers the sinks write to.
type targets struct {
	ch        *testclickhouse.Server
	chVersion string
	rd        *testredis.Server
}

func bench(ctx context.Context, o options, logw io.Writer) (string, error) {
	dir, cleanup, err := benchreport.WorkDir(o.workDir, "sinkbench-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	o.workDir = dir
	logf := benchreport.Progress(logw)
	var tg targets
	for _, s := range o.sinks {
		switch s {
		case sinkClickHouse:
			logf("starting ClickHouse")
			ch, err := testclickhouse.StartServer(ctx)
			if err != nil {
				return "", err
			}
			defer ch.Close()
			tg.ch = ch
			v, err := ch.Do(ctx, "SELECT version()")
			if err != nil {
				return "", err
			}
			tg.chVersion = strings.TrimSpace(v)
			logf("ClickHouse %s on %s (http %d)", tg.chVersion, ch.Addr(), ch.HTTPPort)
		case sinkRedis:
			logf("starting Redis")
			rd, err := testredis.StartServer(ctx)
			if err != nil {
				return "", err
			}
			defer rd.Close()
			tg.rd = rd
			logf("Redis on %s", rd.Addr())
		}
	}
	results := map[string][]result{}
	for _, s := range o.sinks {
		for r := 1; r <= o.runs; r++ {
			logf("%s, run %d", s, r)
			res, err := runOnce(ctx, o, tg, s, r, logf)
			if err != nil {
				return "", fmt.Errorf("%s, run %d: %w", s, r, err)
			}
			logf("%s run %d: %.2f s, %s/s (%s/s from the first; first after %.2f s); worker peak %.0f MiB, plugins %.0f MiB",
				s, r, res.total.Seconds(), benchreport.Thousands(res.rate()), benchreport.Thousands(res.steadyRate()), res.first.Seconds(), res.WorkerHWM, res.PluginsRSS)
			results[s] = append(results[s], res)
		}
	}
	return render(o, tg.chVersion, results), nil
}
