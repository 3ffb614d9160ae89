// Command connectbench measures the Connect runtime's throughput with the
// file connectors, and what the plugin boundary (a process per task, gRPC
// between it and the worker) costs.
//
// Usage (from the repository root, after `make build`):
//
//	go run ./bench/connectbench [--records 2000000] [--tributary ./bin/tributary]
//	    [--runs 2] [--out FILE] [--work-dir DIR] [--timeout 20m] [--cpuprofile FILE]
//
// It writes a file of N lines of 100 bytes (newline included), then measures:
//
//  1. End to end, real processes: `tributary broker` and `tributary worker`
//     (plugin path: the folder of --tributary), a FileStreamSource
//     (batch.size 2000, StringConverter for keys and values) into a topic
//     and a FileStreamSink (StringConverter) out of it, both created through
//     the REST API. The time runs from creating the connectors until the
//     sink file holds the N lines; the worker's offset.flush.interval.ms is
//     1000, so the last lines reach the file within a second of arriving.
//     CPU is utime+stime from /proc/PID/stat of the worker including its
//     plugin processes (the live ones sampled every 100 ms, their list
//     refreshed every second; the ended ones through the worker's
//     cutime+cstime), split into the worker's own and the plugins', and of
//     the broker. Peak RSS is the worker's VmHWM, then the plugins' highest.
//  2. The plugin boundary: the same source and sink task code run by
//     worker/taskrun.RunSource and RunSink as the engine runs them, (a) in a
//     plugin process over gRPC (plugins.Launch of tributary-connector-file)
//     and (b) linked into this process (plugins.InProcess: direct calls, no
//     serialization), against one broker subprocess. Source-only moves the
//     file into a fresh topic and ends when the broker acknowledged every
//     record; sink-only moves a preloaded topic into a fresh file in a fresh
//     consumer group and ends when every record was put and flushed
//     (fsynced). Source offsets go to an in-memory store instead of the
//     connect-offsets topic (one write a second either way). CPU counts
//     this process (the task runner: the worker's share, plus the task when
//     in-process) and the plugin process, shown apart; it compares the two
//     variants, not the end-to-end row. Boundary cost is
//     1 - plugin records/s / in-process records/s.
//
// CONNECTBENCH_KEEP=1 keeps each end-to-end run's directory (process logs,
// broker data) under --work-dir for inspection.
//
// Every measurement runs --runs times (variants alternating) on fresh
// topics, groups and files; the table reports, per row, the run with the
// highest records/s (the machine is shared and noisy: the best run is the
// one least disturbed), and lists every run below it. Progress goes to
// stderr; the report (markdown) to stdout and --out.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
)

// Targets the report checks.
const (
	targetE2E      = 300_000 // records/s end to end
	targetBoundary = 0.15    // largest acceptable boundary cost
)

type options struct {
	records   int
	tributary string
	runs      int
	out       string
	workDir   string
	timeout   time.Duration
	cpuProf   string
	only      string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("connectbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.records, "records", 2_000_000, "records (100-byte lines) per measurement")
	fs.StringVar(&o.tributary, "tributary", "./bin/tributary", "the tributary binary; tributary-connector-file must sit next to it")
	fs.IntVar(&o.runs, "runs", 2, "runs of every measurement; the best is reported")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.workDir, "work-dir", "", "where to put data (default: a temporary directory, removed at the end)")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up after this long")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of this process during the boundary runs (runners and in-process tasks) to this file")
	fs.StringVar(&o.only, "only", "", "run only these measurements: e2e, source, sink (comma-separated; default all)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", benchreport.ErrUsage, fs.Arg(0))
	}
	if o.records < 1 {
		return o, fmt.Errorf("%w: --records must be at least 1", benchreport.ErrUsage)
	}
	if o.runs < 1 {
		return o, fmt.Errorf("%w: --runs must be at least 1", benchreport.ErrUsage)
	}
	for _, m := range strings.Split(o.only, ",") {
		switch strings.TrimSpace(m) {
		case "", "e2e", "source", "sink":
		default:
			return o, fmt.Errorf("%w: --only %q: use e2e, source or sink", benchreport.ErrUsage, m)
		}
	}
	var err error
	if o.tributary, err = benchproc.Binaries(o.tributary, "tributary-connector-file"); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	return o, nil
}

// wants says whether --only selects measurement m.
func (o options) wants(m string) bool {
	if strings.TrimSpace(o.only) == "" {
		return true
	}
	for _, x := range strings.Split(o.only, ",") {
		if strings.TrimSpace(x) == m {
			return true
		}
	}
	return false
}

// driver is the command: main runs it, the tests call its Run.
var driver = benchreport.Driver[options]{Name: "connectbench", Parse: parseFlags, Bench: bench}

func main() { driver.Main() }

// Output implements benchreport.Options.
func (o options) Output() (string, time.Duration) { return o.out, o.timeout }

// measurements holds every run of every row.
type measurements struct {
	e2e    map[string][]e2eResult  // by variant
	source map[string][]taskResult // by variant
	sink   map[string][]taskResult
}

func bench(ctx context.Context, o options, logw io.Writer) (string, error) {
	dir, cleanup, err := benchreport.WorkDir(o.workDir, "connectbench-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	o.workDir = dir
	logf := benchreport.Progress(logw)
	input := filepath.Join(o.workDir, "input.txt")
	logf("writing %d lines to %s", o.records, input)
	if err := writeLines(input, o.records); err != nil {
		return "", err
	}
	m := measurements{e2e: map[string][]e2eResult{}, source: map[string][]taskResult{}, sink: map[string][]taskResult{}}
	for r := 1; o.wants("e2e") && r <= o.runs; r++ {
		for _, v := range []string{variantPlugin, variantInProcess} {
			res, err := runE2E(ctx, o, r, input, v)
			if err != nil {
				return "", fmt.Errorf("end to end %s, run %d: %w", v, r, err)
			}
			logf("end to end %s run %d: %.2f s, %.0f records/s, worker+plugins %.2f CPU s, broker %.2f CPU s", v, r, res.elapsed.Seconds(), res.rps(), res.workerCPU, res.brokerCPU)
			m.e2e[v] = append(m.e2e[v], res)
		}
	}
	if o.wants("source") || o.wants("sink") {
		if err := runBoundary(ctx, o, input, &m, logf); err != nil {
			return "", err
		}
	}
	return render(o, m), nil
}

func runBoundary(ctx context.Context, o options, input string, m *measurements, logf func(string, ...any)) error {
	dir := filepath.Join(o.workDir, "boundary")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	broker, addr, err := startBroker(ctx, o.tributary, dir)
	if err != nil {
		return err
	}
	defer broker.Stop(stopGrace)
	env := &boundaryEnv{o: o, dir: dir, input: input, broker: broker, addr: addr,
		pluginBin: filepath.Join(filepath.Dir(o.tributary), "tributary-connector-file")}
	logf("boundary: preloading %d records for the sink runs", o.records)
	if err := env.preload(ctx); err != nil {
		return err
	}
	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for r := 1; r <= o.runs; r++ {
		for _, v := range []string{variantPlugin, variantInProcess} {
			if !o.wants("source") {
				break
			}
			res, err := env.runSource(ctx, v, r)
			if err != nil {
				return fmt.Errorf("run %d: %w", r, err)
			}
			logf("source-only %s run %d: %.2f s, %.0f records/s, %.2f CPU s", v, r, res.elapsed.Seconds(), res.rps(), res.taskCPU)
			m.source[v] = append(m.source[v], res)
		}
		for _, v := range []string{variantPlugin, variantInProcess} {
			if !o.wants("sink") {
				break
			}
			res, err := env.runSink(ctx, v, r)
			if err != nil {
				return fmt.Errorf("run %d: %w", r, err)
			}
			logf("sink-only %s run %d: %.2f s, %.0f records/s, %.2f CPU s", v, r, res.elapsed.Seconds(), res.rps(), res.taskCPU)
			m.sink[v] = append(m.sink[v], res)
		}
	}
	return nil
}

// perMillion converts CPU seconds over n records into seconds per million.
func perMillion(sec float64, n int) float64 { return sec / float64(n) * 1e6 }

// Row labels (the test looks for them).
const (
	rowE2E        = "end to end: file -> topic -> file"
	rowSource     = "source-only: file -> topic"
	rowSink       = "sink-only: topic -> file"
	rowCostE2E    = "boundary cost, end to end"
	rowCostSource = "boundary cost, source"
	rowCostSink   = "boundary cost, sink"
)

func render(o options, m measurements) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## connectbench: %s records of 100 bytes, best of %d run(s) by records/s\n\n", benchreport.Thousands(float64(o.records)), o.runs)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s %s/%s. CPU is user+system seconds per million records.\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	b.WriteString("| measurement | variant | seconds | records/s | CPU s / 1M records | broker CPU s / 1M records | peak RSS MiB |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	costs := map[string]float64{}
	var e e2eResult
	if len(m.e2e[variantPlugin]) > 0 {
		e = benchreport.BestBy(m.e2e[variantPlugin], e2eResult.rps)
		fmt.Fprintf(&b, "| %s | %s: broker + worker + plugin processes | %.2f | %s | %.2f (worker %.2f + plugins %.2f) | %.2f | %.0f (worker; plugins %.0f) |\n",
			rowE2E, variantPlugin, e.elapsed.Seconds(), benchreport.Thousands(e.rps()), perMillion(e.workerCPU, e.records), perMillion(e.workerSelfCPU, e.records),
			perMillion(e.workerCPU-e.workerSelfCPU, e.records), perMillion(e.brokerCPU, e.records), e.workerPeak, e.pluginsPeak)
		i := benchreport.BestBy(m.e2e[variantInProcess], e2eResult.rps)
		fmt.Fprintf(&b, "| %s | %s: broker + worker with the connectors linked in | %.2f | %s | %.2f | %.2f | |\n",
			rowE2E, variantInProcess, i.elapsed.Seconds(), benchreport.Thousands(i.rps()), perMillion(i.workerCPU, i.records), perMillion(i.brokerCPU, i.records))
		costs[rowE2E] = 1 - e.rps()/i.rps()
		fmt.Fprintf(&b, "| %s | 1 - plugin/in-process records/s | | %.1f%% | %+.1f%% CPU | | |\n",
			rowCostE2E, 100*costs[rowE2E], 100*(e.workerCPU/float64(e.records)/(i.workerCPU/float64(i.records))-1))
		fmt.Fprintf(&b, "| %s | 1 - plugin/in-process records/s after the first sink line (start-up excluded) | | %.1f%% | | | |\n",
			rowCostE2E, 100*(1-e.steadyRPS()/i.steadyRPS()))
	}
	for _, sc := range []struct {
		row, costRow string
		runs         map[string][]taskResult
	}{{rowSource, rowCostSource, m.source}, {rowSink, rowCostSink, m.sink}} {
		if len(sc.runs[variantPlugin]) == 0 {
			continue
		}
		for _, v := range []string{variantPlugin, variantInProcess} {
			t := benchreport.BestBy(sc.runs[v], taskResult.rps)
			split := "runner + task in one process"
			if v == variantPlugin {
				split = fmt.Sprintf("runner %.2f + plugin process %.2f", perMillion(t.runnerCPU, t.records), perMillion(t.taskCPU-t.runnerCPU, t.records))
			}
			fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %.2f (%s) | %.2f | |\n",
				sc.row, v, t.elapsed.Seconds(), benchreport.Thousands(t.rps()), perMillion(t.taskCPU, t.records), split, perMillion(t.brokerCPU, t.records))
		}
		p, i := benchreport.BestBy(sc.runs[variantPlugin], taskResult.rps), benchreport.BestBy(sc.runs[variantInProcess], taskResult.rps)
		costs[sc.row] = 1 - p.rps()/i.rps()
		fmt.Fprintf(&b, "| %s | 1 - plugin/in-process records/s | | %.1f%% | %+.1f%% CPU | | |\n",
			sc.costRow, 100*costs[sc.row], 100*(p.taskCPU/float64(p.records)/(i.taskCPU/float64(i.records))-1))
	}
	b.WriteString("\nTargets: ")
	if len(m.e2e[variantPlugin]) > 0 {
		fmt.Fprintf(&b, "end to end >= %s records/s: %s; ", benchreport.Thousands(targetE2E), benchreport.Verdict(e.rps() >= targetE2E))
	}
	for _, sc := range []struct{ name, row string }{{"end to end", rowE2E}, {"source only", rowSource}, {"sink only", rowSink}} {
		if c, ok := costs[sc.row]; ok {
			fmt.Fprintf(&b, "boundary cost (%s) <= %.0f%%: %s; ", sc.name, 100*targetBoundary, benchreport.Verdict(c <= targetBoundary))
		}
	}
	b.WriteString("\n")
	if len(m.e2e[variantPlugin]) > 0 {
		fmt.Fprintf(&b, "End to end (plugins): the first sink line appeared %.2f s after the connectors were created (plugin start-up, group join); "+
			"from then on %s records/s (this includes the last flush, up to offset.flush.interval.ms = %d ms after the last record arrived).\n",
			e.firstLine.Seconds(), benchreport.Thousands(float64(e.records)/(e.elapsed-e.firstLine).Seconds()), e2eFlushMs)
	}
	b.WriteString("\nEvery run (records/s; CPU s / 1M records):\n\n")
	var parts []string
	for _, v := range []string{variantPlugin, variantInProcess} {
		parts = parts[:0]
		for _, r := range m.e2e[v] {
			parts = append(parts, fmt.Sprintf("%s (%.2f)", benchreport.Thousands(r.rps()), perMillion(r.workerCPU, r.records)))
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "- %s, %s: %s\n", rowE2E, v, strings.Join(parts, ", "))
		}
	}
	for _, sc := range []struct {
		row  string
		runs map[string][]taskResult
	}{{rowSource, m.source}, {rowSink, m.sink}} {
		for _, v := range []string{variantPlugin, variantInProcess} {
			parts = parts[:0]
			for _, r := range sc.runs[v] {
				parts = append(parts, fmt.Sprintf("%s (%.2f)", benchreport.Thousands(r.rps()), perMillion(r.taskCPU, r.records)))
			}
			if len(parts) > 0 {
				fmt.Fprintf(&b, "- %s, %s: %s\n", sc.row, v, strings.Join(parts, ", "))
			}
		}
	}
	return b.String()
}
