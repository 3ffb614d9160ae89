// Command clusterbench measures the worker cluster's membership: how fast a
// cluster of workers settles after many connectors are created, and how
// fast a dead worker's connectors and tasks run elsewhere.
//
// Usage (from the repository root, after `make build`):
//
//	go run ./bench/clusterbench [--tributary ./bin/tributary] [--runs 3]
//	    [--connectors 100] [--workers 3] [--session-timeout 3s]
//	    [--heartbeat 500ms] [--out FILE] [--work-dir DIR] [--timeout 10m]
//
// Every run starts fresh processes: `tributary broker` (with
// group.min.session.timeout.ms=1000, so that short worker sessions are
// accepted) and --workers `tributary worker` processes sharing a group id
// (session.timeout.ms and heartbeat.interval.ms from the flags,
// scheduled.rebalance.max.delay.ms=0), and measures:
//
//  1. Settle: --connectors FileStreamSource connectors (one task each,
//     tailing an empty file of their own) are created through the REST API,
//     round robin over the workers (a 409 is retried); the time runs from
//     the first POST until GET /connectors?expand=status shows every
//     connector and task RUNNING on a live worker (polled every 50 ms). A
//     second row counts from the last POST's answer instead (the POSTs are
//     sequential, as a script applying configs one by one sends them).
//  2. Failover: a worker that is not the leader is killed with SIGKILL
//     (its process group: the worker and its plugin processes); the time
//     runs from the kill until every connector and task it ran is RUNNING
//     on another worker, as a surviving worker's REST API reports it. It
//     cannot be shorter than the session timeout: the group coordinator
//     only then drops the dead member. A second row gives the time until
//     the first of those units runs elsewhere (detection and rebalance; the
//     rest of the failover is starting the others' plugin processes).
//
// Memory: each worker's VmRSS once settled and its VmHWM at the end of the
// run, and the plugin processes (one per connector instance and task):
// their number and total VmRSS.
//
// The table reports, per row, the best (shortest) run and lists every run.
// Progress goes to stderr; the report (markdown) to stdout and --out.
// CLUSTERBENCH_KEEP=1 keeps each run's directory (process logs) under
// --work-dir.
package main

import (
	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"

	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Targets the report checks.
const (
	targetFailover = 5 * time.Second
	targetSettle   = 10 * time.Second
)

type options struct {
	tributary  string
	runs       int
	connectors int
	workers    int
	session    time.Duration
	heartbeat  time.Duration
	out        string
	workDir    string
	timeout    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("clusterbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.tributary, "tributary", "./bin/tributary", "the tributary binary; tributary-connector-file must sit next to it")
	fs.IntVar(&o.runs, "runs", 3, "runs; the best is reported")
	fs.IntVar(&o.connectors, "connectors", 100, "connectors to create for the settle measurement")
	fs.IntVar(&o.workers, "workers", 3, "workers in the cluster")
	fs.DurationVar(&o.session, "session-timeout", 3*time.Second, "the workers' session.timeout.ms")
	fs.DurationVar(&o.heartbeat, "heartbeat", 500*time.Millisecond, "the workers' heartbeat.interval.ms")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.workDir, "work-dir", "", "where to put data (default: a temporary directory, removed at the end)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", benchreport.ErrUsage, fs.Arg(0))
	}
	switch {
	case o.runs < 1:
		return o, fmt.Errorf("%w: --runs must be at least 1", benchreport.ErrUsage)
	case o.connectors < 1:
		return o, fmt.Errorf("%w: --connectors must be at least 1", benchreport.ErrUsage)
	case o.workers < 2:
		return o, fmt.Errorf("%w: --workers must be at least 2 (one is killed)", benchreport.ErrUsage)
	case o.heartbeat <= 0 || o.heartbeat >= o.session*3/4:
		return o, fmt.Errorf("%w: --heartbeat must be positive and below 3/4 of --session-timeout", benchreport.ErrUsage)
	case o.session < time.Second:
		return o, fmt.Errorf("%w: --session-timeout must be at least 1s (the broker's group.min.session.timeout.ms)", benchreport.ErrUsage)
	}
	var err error
	if o.tributary, err = benchproc.Binaries(o.tributary, "tributary-connector-file"); err != nil {
		return o, fmt.Errorf("%w: %v", benchreport.ErrUsage, err)
	}
	return o, nil
}

// driver is the command: main runs it, the tests call its Run.
var driver = benchreport.Driver[options]{Name: "clusterbench", Parse: parseFlags, Bench: bench}

func main() { driver.Main() }

// Output implements benchreport.Options.
func (o options) Output() (string, time.Duration) { return o.out, o.timeout }

// result is one run.
type result struct {
	posts      time.Duration // creating the connectors over REST
	settle     time.Duration // first POST -> every unit RUNNING
	retries    int           // POSTs answered 409
	units      int
	failover   time.Duration // kill -9 -> the victim's units RUNNING elsewhere
	tasksMoved time.Duration // kill -9 -> the victim's tasks RUNNING elsewhere
	moved      int           // the victim's units
	firstMoved time.Duration // kill -9 -> the first of them RUNNING elsewhere
	workerRSS  []float64     // MiB, each worker once settled
	workerHWM  []float64     // MiB, each surviving worker's peak at the end
	plugins    int           // plugin processes once settled
	pluginRSS  float64       // their total VmRSS, MiB
}

func bench(ctx context.Context, o options, logw io.Writer) (string, error) {
	dir, cleanup, err := benchreport.WorkDir(o.workDir, "clusterbench-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	o.workDir = dir
	logf := benchreport.Progress(logw)
	var rs []result
	for r := 1; r <= o.runs; r++ {
		res, err := runOnce(ctx, o, r, logf)
		if err != nil {
			return "", fmt.Errorf("run %d: %w", r, err)
		}
		logf("run %d: settle %.2f s (POSTs %.2f s, %d retried), failover: tasks %.2f s, every unit %.2f s (%d units)", r, res.settle.Seconds(), res.posts.Seconds(), res.retries, res.tasksMoved.Seconds(), res.failover.Seconds(), res.moved)
		rs = append(rs, res)
	}
	return render(o, rs), nil
}

func runOnce(ctx context.Context, o options, r int, logf func(string, ...any)) (res result, err error) {
	dir := filepath.Join(o.workDir, fmt.Sprintf("run%d", r))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	if os.Getenv("CLUSTERBENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	}
	logf("run %d: starting a broker and %d workers in %s", r, o.workers, dir)
	c, err := startCluster(ctx, o, dir)
	if err != nil {
		return res, err
	}
	defer c.stop()
	defer func() {
		if err != nil {
			for _, w := range c.workers {
				err = fmt.Errorf("%w\n--- %s log ends:\n%s", err, w.name, benchproc.Tail(w.p.LogPath, 1500))
			}
		}
	}()

	// 1. Settle.
	res.units = 2 * o.connectors
	start := time.Now()
	if res.retries, err = c.createConnectors(ctx, o.connectors); err != nil {
		return res, err
	}
	res.posts = time.Since(start)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	before, err := c.waitAllRunning(sctx, res.units)
	cancel()
	if err != nil {
		return res, err
	}
	res.settle = time.Since(start)
	for _, w := range c.workers {
		rss, _ := benchproc.MemMB(w.p.PID())
		res.workerRSS = append(res.workerRSS, rss)
		for _, child := range benchproc.ChildrenOf(w.p.PID()) {
			res.plugins++
			rss, _ := benchproc.MemMB(child)
			res.pluginRSS += rss
		}
	}

	// 2. Failover of a worker that is not the leader.
	leader := c.leader()
	var victim *worker
	for _, w := range c.workers {
		if w.hp != leader {
			victim = w
			break
		}
	}
	lost := before.byOwner[victim.hp]
	res.moved = len(lost)
	if len(lost) == 0 {
		return res, fmt.Errorf("the victim %s runs nothing", victim.name)
	}
	logf("run %d: settled; kill -9 of %s (leader: %s) with %d units", r, victim.name, leader, len(lost))
	start = time.Now()
	victim.p.Kill()
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer fcancel()
	// Poll until every one of the victim's units runs elsewhere, noting
	// when the first of them did, and when all of its tasks did (the
	// issue's measure: tasks move data; connector instances steer them).
	survivor := c.live()[0]
	moved := func(pl placement, u string) bool {
		return pl.state[u] == "RUNNING" && pl.owner[u] != victim.hp && pl.owner[u] != ""
	}
	var last string
	for {
		pl, err := getPlacement(survivor.url())
		if err == nil {
			all, tasks := true, true
			for _, u := range lost {
				if moved(pl, u) {
					if res.firstMoved == 0 {
						res.firstMoved = time.Since(start)
					}
					continue
				}
				all = false
				if strings.Contains(u, "/") {
					tasks = false
				}
				last = fmt.Sprintf("%s is %s on %q", u, pl.state[u], pl.owner[u])
			}
			if tasks && res.tasksMoved == 0 {
				res.tasksMoved = time.Since(start)
			}
			if all {
				break
			}
		} else {
			last = err.Error()
		}
		if err := survivor.p.Alive(); err != nil {
			return res, err
		}
		if err := benchproc.Sleep(fctx, 20*time.Millisecond); err != nil {
			return res, fmt.Errorf("failover: the victim's units do not all run elsewhere: %w (last: %s)", err, last)
		}
	}
	if _, err := c.waitAllRunning(fctx, res.units); err != nil {
		return res, fmt.Errorf("failover: %w", err)
	}
	res.failover = time.Since(start)
	for _, w := range c.live() {
		_, hwm := benchproc.MemMB(w.p.PID())
		res.workerHWM = append(res.workerHWM, hwm)
	}
	return res, nil
}

// Row labels (the test looks for them).
const (
	rowSettle      = "settle"
	rowSettleAfter = "settle after the POSTs"
	rowFailover    = "failover"
	rowAllUnits    = "failover, every unit"
	rowFirstMoved  = "failover, first unit"
)

func render(o options, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## clusterbench: %d workers, %d connectors, best of %d run(s)\n\n", o.workers, o.connectors, len(rs))
	fmt.Fprintf(&b, "Machine: %d CPUs, %s %s/%s. Workers: session.timeout.ms=%d, heartbeat.interval.ms=%d, scheduled.rebalance.max.delay.ms=0 "+
		"(broker group.min.session.timeout.ms=1000); one plugin process per connector instance and per task.\n\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, o.session.Milliseconds(), o.heartbeat.Milliseconds())
	b.WriteString("| measurement | what | best s | every run s | target |\n|---|---|---:|---|---|\n")
	settle := func(r result) time.Duration { return r.settle }
	failover := func(r result) time.Duration { return r.failover }
	bs, bf := best(rs, settle), best(rs, failover)
	fmt.Fprintf(&b, "| %s | %d connectors (%d units: instances + tasks) created over REST, first POST -> all RUNNING | %.2f | %s | < %v: %s |\n",
		rowSettle, o.connectors, rs[0].units, bs.settle.Seconds(), every(rs, settle), targetSettle, benchreport.Verdict(bs.settle < targetSettle))
	afterPosts := func(r result) time.Duration { return r.settle - r.posts }
	ba := best(rs, afterPosts)
	fmt.Fprintf(&b, "| %s | the same, from the last POST's answer -> all RUNNING | %.2f | %s | |\n",
		rowSettleAfter, afterPosts(ba).Seconds(), every(rs, afterPosts))
	tasksMoved := func(r result) time.Duration { return r.tasksMoved }
	bt := best(rs, tasksMoved)
	fmt.Fprintf(&b, "| %s | kill -9 of a worker (not the leader) running %d units -> all of its tasks RUNNING on the others | %.2f | %s | < %v: %s |\n",
		rowFailover, bt.moved, bt.tasksMoved.Seconds(), every(rs, tasksMoved), targetFailover, benchreport.Verdict(bt.tasksMoved < targetFailover))
	fmt.Fprintf(&b, "| %s | the same, until its connector instances run too | %.2f | %s | |\n",
		rowAllUnits, bf.failover.Seconds(), every(rs, failover))
	firstMoved := func(r result) time.Duration { return r.firstMoved }
	fmt.Fprintf(&b, "| %s | the same, until the first of them is RUNNING on another worker (detection + rebalance; the rest is starting them) | %.2f | %s | |\n",
		rowFirstMoved, best(rs, firstMoved).firstMoved.Seconds(), every(rs, firstMoved))
	b.WriteString("\nMemory (the best settle run): ")
	var ws []string
	for i, rss := range bs.workerRSS {
		ws = append(ws, fmt.Sprintf("worker%d %.0f MiB", i, rss))
	}
	var hw []string
	for _, h := range bs.workerHWM {
		hw = append(hw, fmt.Sprintf("%.0f", h))
	}
	fmt.Fprintf(&b, "RSS once settled: %s; surviving workers' peak (VmHWM) after the failover: %s MiB; %d plugin processes, %.0f MiB RSS in all (%.1f MiB each).\n",
		strings.Join(ws, ", "), strings.Join(hw, ", "), bs.plugins, bs.pluginRSS, bs.pluginRSS/float64(max(bs.plugins, 1)))
	b.WriteString("\nEvery run:\n\n")
	for i, r := range rs {
		fmt.Fprintf(&b, "- run %d: settle %.2f s (POSTs %.2f s, %.0f ms each, sequential; %d answered 409 and retried), failover: tasks %.2f s, every unit %.2f s (%d units; the first after %.2f s)\n",
			i+1, r.settle.Seconds(), r.posts.Seconds(), float64(r.posts.Milliseconds())/float64(o.connectors), r.retries, r.tasksMoved.Seconds(), r.failover.Seconds(), r.moved, r.firstMoved.Seconds())
	}
	return b.String()
}

// best returns the run with the shortest duration by f (the first on ties).
func best(rs []result, f func(result) time.Duration) result {
	return benchreport.BestBy(rs, func(r result) float64 { return -f(r).Seconds() })
}

// every lists every run's duration by f in seconds, in run order.
func every(rs []result, f func(result) time.Duration) string {
	return benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.2f", f(r).Seconds()) })
}
