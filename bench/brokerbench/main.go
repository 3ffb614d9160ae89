// Command brokerbench compares Kafka brokers under the same load: our broker
// (`tributary broker`) and kfake (franz-go's in-memory fake broker, hosted by
// bench/kfakeserver), each started as a subprocess on 127.0.0.1.
//
// Usage (from the repository root):
//
//	go run ./bench/brokerbench [--brokers tributary,kfake] [--tributary ./bin/tributary]
//	    [--kfake PATH] [--records N] [--sizes 100,1024] [--partitions 1]
//	    [--runs 1] [--tributary-args "..."] [--out FILE] [--work-dir DIR] [--progress]
//
// For every record size, partition count and broker it starts a fresh
// broker with an empty data directory, creates the topic, produces N
// records (acks=all, idempotent, 1 MiB batches, no compression) and then
// consumes them from the start (direct partition consumption, no group),
// measuring throughput and produce latency in-process with package perf.
// It samples the broker process's CPU time (utime+stime from
// /proc/PID/stat) before and after each phase and its memory (VmRSS, VmHWM
// from /proc/PID/status) after each phase, then stops it (SIGTERM, SIGKILL
// after 15 s) and removes its data. The report is a markdown table on
// stdout (and in --out), followed by the CPU-per-record ratios of our broker
// to every other broker. With --runs N every measurement is repeated N times
// (alternating brokers) and each column reports its median. Progress and
// per-phase summaries go to stderr.
//
// Brokers: "tributary" runs `<--tributary> broker --listen 127.0.0.1:PORT
// --data-dir DIR`; "kfake" runs kfakeserver in memory; "kfake-fsync" runs
// kfakeserver with --data-dir and --sync-writes (a durable reference closer
// to our broker's acks=all-after-fsync contract). The kfakeserver binary is
// built with `go build` into the work directory unless --kfake names one.
//
// The load generator runs in this process on the same machine, so the
// client's own CPU (reported too) competes with the broker's.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/bench/benchreport"
	"github.com/tributary-data/tributary/perf"
)

const (
	readyTimeout = 30 * time.Second
	stopGrace    = 15 * time.Second
)

type options struct {
	brokers     []string
	tributary   string
	kfake       string
	records     int
	sizes       []int
	partitions  []int
	out         string
	workDir     string
	progress    bool
	timeout     time.Duration
	runs        int
	extraArgs   []string // appended to the tributary broker command line
	brokersSet  bool
	clkTck      float64
	clkTckSrc   string
	kfakeBinary string    // resolved path
	logw        io.Writer // progress (bench sets it)
}

// driver is the command: main runs it, the tests call its Run.
var driver = benchreport.Driver[options]{Name: "brokerbench", Parse: parseFlags, Bench: bench}

func main() { driver.Main() }

// Output implements benchreport.Options.
func (o options) Output() (string, time.Duration) { return o.out, o.timeout }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("brokerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "tributary,kfake", "comma-separated brokers to run: tributary, kfake, kfake-fsync")
	fs.StringVar(&o.tributary, "tributary", "./bin/tributary", "path of the tributary `binary`")
	fs.StringVar(&o.kfake, "kfake", "", "path of a kfakeserver `binary` (default: go build ./bench/kfakeserver)")
	fs.IntVar(&o.records, "records", 0, "records per run, overriding the defaults (2,000,000 at 100 B, 500,000 at 1 KiB, 512 MiB worth otherwise)")
	sizes := fs.String("sizes", "100,1024", "comma-separated record value sizes in `bytes`")
	parts := fs.String("partitions", "1", "comma-separated partition counts of the benchmark topic")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to `FILE`")
	fs.StringVar(&o.workDir, "work-dir", os.TempDir(), "`DIR` for the brokers' temporary data directories")
	fs.IntVar(&o.runs, "runs", 1, "repeat each measurement `N` times (fresh broker each time) and report per-column medians")
	tribArgs := fs.String("tributary-args", "", "extra space-separated `arguments` for `tributary broker` (e.g. \"--set log.segment.bytes=1073741824\")")
	fs.BoolVar(&o.progress, "progress", false, "print per-second progress to stderr")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "abort the whole run after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { o.brokersSet = o.brokersSet || f.Name == "brokers" })
	for _, b := range strings.Split(*brokers, ",") {
		switch b = strings.TrimSpace(b); b {
		case "tributary", "kfake", "kfake-fsync":
			if !slices.Contains(o.brokers, b) {
				o.brokers = append(o.brokers, b)
			}
		default:
			return o, fmt.Errorf("--brokers: unknown broker %q (want tributary, kfake or kfake-fsync)", b)
		}
	}
	var err error
	if o.sizes, err = positiveInts("--sizes", *sizes); err != nil {
		return o, err
	}
	if o.partitions, err = positiveInts("--partitions", *parts); err != nil {
		return o, err
	}
	if o.records < 0 {
		return o, fmt.Errorf("--records must be >= 0")
	}
	if o.runs < 1 {
		return o, fmt.Errorf("--runs must be >= 1")
	}
	o.extraArgs = strings.Fields(*tribArgs)
	return o, nil
}

func positiveInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flagName, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// recordsFor returns the number of records per run for a record size.
func (o options) recordsFor(size int) int {
	switch {
	case o.records > 0:
		return o.records
	case size == 100:
		return 2_000_000
	case size == 1024:
		return 500_000
	}
	return min(max(512<<20/size, 10_000), 2_000_000)
}

// bench runs every measurement and returns the report.
func bench(ctx context.Context, o options, logw io.Writer) (string, error) {
	o.logw = logw
	o.clkTck, o.clkTckSrc = clockTicks()
	root, err := os.MkdirTemp(o.workDir, "brokerbench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)

	if slices.Contains(o.brokers, "tributary") {
		if st, err := os.Stat(o.tributary); err != nil || st.IsDir() {
			hint := ""
			if !o.brokersSet {
				hint = "; build it first (make build) or run only kfake with --brokers kfake"
			}
			return "", fmt.Errorf("tributary binary %q not usable (%v)%s", o.tributary, err, hint)
		}
		if o.tributary, err = filepath.Abs(o.tributary); err != nil {
			return "", err
		}
	}
	if slices.Contains(o.brokers, "kfake") || slices.Contains(o.brokers, "kfake-fsync") {
		if o.kfakeBinary, err = kfakeBinary(ctx, o.kfake, root, logw); err != nil {
			return "", err
		}
	}

	var rows []row
	for _, size := range o.sizes {
		for _, parts := range o.partitions {
			// Repetitions alternate between brokers so that slow drifts
			// of the machine affect every broker alike.
			runs := make(map[string][][]row)
			for i := 0; i < o.runs; i++ {
				for _, b := range o.brokers {
					rs, err := runOne(ctx, o, root, b, size, parts)
					if err != nil {
						return "", fmt.Errorf("%s, %d B records, %d partitions: %w", b, size, parts, err)
					}
					runs[b] = append(runs[b], rs)
				}
			}
			for _, b := range o.brokers {
				rows = append(rows, medianRows(runs[b])...)
			}
		}
	}

	var b strings.Builder
	report(&b, o, rows)
	return b.String(), nil
}

// kfakeBinary returns path when set, else builds bench/kfakeserver into dir.
func kfakeBinary(ctx context.Context, path, dir string, logw io.Writer) (string, error) {
	if path != "" {
		return filepath.Abs(path)
	}
	bin := filepath.Join(dir, "kfakeserver")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tributary-data/tributary/bench/kfakeserver")
	cmd.Stdout, cmd.Stderr = logw, logw
	fmt.Fprintln(logw, "building kfakeserver:", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building kfakeserver (run from the repository, or pass --kfake): %w", err)
	}
	return bin, nil
}

// row is one measured phase.
type row struct {
	broker     string
	size       int
	partitions int
	phase      string // "produce" or "consume"
	records    int
	elapsed    time.Duration
	rps, mbps  float64
	p50, p99   time.Duration // produce only
	brokerCPU  float64       // seconds over the phase
	clientCPU  float64       // seconds over the phase
	rssMB      float64       // after the phase
	hwmMB      float64       // peak since the broker started
}

func (r row) cpuPerM(cpu float64) float64 { return cpu / float64(r.records) * 1e6 }

// medianRows folds repeated runs (each a produce row and a consume row, in
// the same order) into one row per phase holding each column's median.
func medianRows(runs [][]row) []row {
	if len(runs) == 1 {
		return runs[0]
	}
	out := make([]row, len(runs[0]))
	for i := range out {
		col := func(f func(row) float64) float64 {
			v := make([]float64, len(runs))
			for j, rs := range runs {
				v[j] = f(rs[i])
			}
			slices.Sort(v)
			if len(v)%2 == 1 {
				return v[len(v)/2]
			}
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		r := runs[0][i]
		r.elapsed = time.Duration(col(func(r row) float64 { return float64(r.elapsed) }))
		r.rps = col(func(r row) float64 { return r.rps })
		r.mbps = col(func(r row) float64 { return r.mbps })
		r.p50 = time.Duration(col(func(r row) float64 { return float64(r.p50) }))
		r.p99 = time.Duration(col(func(r row) float64 { return float64(r.p99) }))
		// CPU per record is what the table shows: take the median of
		// the totals, all runs having the same record count.
		r.brokerCPU = col(func(r row) float64 { return r.brokerCPU })
		r.clientCPU = col(func(r row) float64 { return r.clientCPU })
		r.rssMB = col(func(r row) float64 { return r.rssMB })
		r.hwmMB = col(func(r row) float64 { return r.hwmMB })
		out[i] = r
	}
	return out
}

// runOne starts a fresh broker, runs the produce and consume phases and
// stops the broker, which it always does before returning.
func runOne(ctx context.Context, o options, root, broker string, size, parts int) (rows []row, err error) {
	dir, err := os.MkdirTemp(root, fmt.Sprintf("%s-%d-%dp-", broker, size, parts))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	dataDir := filepath.Join(dir, "data")

	var argv []string
	addr := ""
	switch broker {
	case "tributary":
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
		argv = append([]string{o.tributary, "broker", "--listen", addr, "--data-dir", dataDir}, o.extraArgs...)
	case "kfake":
		argv = []string{o.kfakeBinary, "--listen", "127.0.0.1:0"}
	case "kfake-fsync":
		argv = []string{o.kfakeBinary, "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--sync-writes"}
	}
	p, err := startProc(broker, argv, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := p.stop(stopGrace); serr != nil && err == nil {
			err = fmt.Errorf("stopping: %w%s", serr, p.stderrTail())
		}
	}()
	fail := func(err error) ([]row, error) { return nil, fmt.Errorf("%w%s", err, p.stderrTail()) }
	if addr == "" {
		if err := p.waitListening(ctx, readyTimeout); err != nil {
			return fail(err)
		}
	} else {
		p.addr = addr
	}
	if err := p.waitReady(ctx, readyTimeout); err != nil {
		return fail(err)
	}

	topic := fmt.Sprintf("bench-%d-%dp", size, parts)
	if err := createTopic(ctx, p.addr, topic, parts); err != nil {
		return fail(err)
	}
	n := o.recordsFor(size)
	label := fmt.Sprintf("[%s %d B %dp]", broker, size, parts)
	var out io.Writer
	if o.progress {
		out = prefixWriter{label, o.logw}
	}
	fmt.Fprintf(o.logw, "%s %s at %s (pid %d): %d records\n", label, broker, p.addr, p.pid(), n)

	phase := func(name string, fn func() (row, error)) error {
		runtime.GC()
		u0, err := readUsage(p.pid(), o.clkTck)
		if err != nil {
			return err
		}
		c0 := selfCPU()
		r, err := fn()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c1 := selfCPU()
		u1, err := readUsage(p.pid(), o.clkTck)
		if err != nil {
			return err
		}
		r.broker, r.size, r.partitions, r.phase = broker, size, parts, name
		r.brokerCPU, r.clientCPU = u1.cpu-u0.cpu, c1-c0
		r.rssMB, r.hwmMB = u1.rssMB, u1.hwmMB
		fmt.Fprintf(o.logw, "%s %s: %d records in %.2fs, %.0f records/s, %.1f MB/s, broker CPU %.2fs, client CPU %.2fs, broker RSS %.0f MB (peak %.0f)\n",
			label, name, r.records, r.elapsed.Seconds(), r.rps, r.mbps, r.brokerCPU, r.clientCPU, r.rssMB, r.hwmMB)
		rows = append(rows, r)
		return nil
	}

	err = phase("produce", func() (row, error) {
		cfg := perf.DefaultProduceConfig()
		cfg.Brokers, cfg.Topic, cfg.Records, cfg.RecordSize = []string{p.addr}, topic, n, size
		cfg.CreateTopic = false
		cfg.Out = out
		res, err := perf.Produce(ctx, cfg)
		return row{records: res.Records, elapsed: res.Elapsed, rps: res.RecordsPerSec, mbps: res.MBPerSec, p50: res.P50, p99: res.P99}, err
	})
	if err != nil {
		return fail(err)
	}
	err = phase("consume", func() (row, error) {
		cfg := perf.DefaultConsumeConfig()
		cfg.Brokers, cfg.Topic, cfg.Records = []string{p.addr}, topic, n
		cfg.Out = out
		res, err := perf.Consume(ctx, cfg)
		return row{records: res.Records, elapsed: res.Elapsed, rps: res.RecordsPerSec, mbps: res.MBPerSec}, err
	})
	if err != nil {
		return fail(err)
	}
	return rows, nil
}

func createTopic(ctx context.Context, addr, topic string, parts int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DisableClientMetrics())
	if err != nil {
		return err
	}
	defer cl.Close()
	got, err := perf.EnsureTopic(ctx, cl, topic, parts)
	if err != nil {
		return err
	}
	if got != parts {
		return fmt.Errorf("topic %q has %d partitions, want %d", topic, got, parts)
	}
	return nil
}

// prefixWriter prefixes each Write (one progress line) with a label.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "%s %s", p.prefix, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
