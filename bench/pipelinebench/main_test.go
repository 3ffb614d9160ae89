package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
)

// TestRunSmall runs the whole benchmark on a tiny workload and checks that
// the report's rows hold real figures.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, ClickHouse, a broker and a worker; skipped with -short")
	}
	bin := benchproc.TestBinaries(t, sourceBinary, sinkBinary)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outFile := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	code := driver.Run(ctx, []string{"--rows", "5000", "--tx-rows", "500", "--rate", "2000", "--paced-duration", "2s", "--runs", "1",
		"--tributary", bin, "--out", outFile, "--work-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	report := stdout.String()
	saved, err := os.ReadFile(outFile)
	if err != nil || string(saved) != report {
		t.Fatalf("--out file differs from stdout (err %v)", err)
	}
	for _, row := range []string{rowThroughput, rowInserts, rowDrain, rowFreshSat, rowFreshPaced, rowPacedRate, rowWorkerRSS, rowPluginsRSS, rowTotalRSS} {
		found := false
		for _, line := range strings.Split(report, "\n") {
			if !strings.HasPrefix(line, "| "+row+" |") {
				continue
			}
			found = true
			cells := strings.Split(line, "|")
			if len(cells) < 7 {
				t.Errorf("row %q has too few cells: %q", row, line)
				continue
			}
			// Every figure of the best-run cell must be positive.
			best := strings.TrimSpace(cells[3])
			if best == "" || strings.HasPrefix(best, "0 ") || strings.Contains(best, " 0 ms") || strings.HasPrefix(best, "0.00 s") && row != rowDrain {
				t.Errorf("row %q has no real value: %q", row, line)
			}
		}
		if !found {
			t.Errorf("report lacks the row %q:\n%s", row, report)
		}
	}
	for _, want := range []string{"5,000 rows sustained + 2,000 rows/s paced for 2s", ">= 30,000 rows/s: ", "p99 < 2s: ", "Targets (the issue's):",
		"insert.mode=upsert", "flush.interval.ms=200", "| sustained (run 1) |", "| paced (run 1) |", "Every run:", "- run 1: "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	// 1,000 warm-up rows, 5,000 sustained, 4,000 paced: all of them, once.
	if !strings.Contains(report, "ClickHouse rows stored 10,000 (FINAL 10,000)") {
		t.Errorf("ClickHouse does not hold exactly the 10,000 rows written:\n%s", report)
	}
	t.Logf("report:\n%s", report)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--rows", "0"}, wantErr: "--rows"},
		{args: []string{"--writers", "0"}, wantErr: "--writers"},
		{args: []string{"--tx-rows", "0"}, wantErr: "--tx-rows"},
		{args: []string{"--rate", "-1"}, wantErr: "--rate"},
		{args: []string{"--paced-duration", "0s"}, wantErr: "--paced-duration"},
		{args: []string{"--paced-tx-rows", "0"}, wantErr: "--paced-tx-rows"},
		{args: []string{"--rate", "10", "--paced-duration", "1s", "--paced-tx-rows", "100"}, wantErr: "less than one transaction"},
		{args: []string{"--poll-every", "0s"}, wantErr: "--poll-every"},
		{args: []string{"--runs", "0"}, wantErr: "--runs"},
		{args: []string{"--set", "novalue"}, wantErr: "KEY=VALUE"},
		{args: []string{"--set", "batch.size=1"}, wantErr: "prefix"},
		{args: []string{"--set", "sink=1"}, wantErr: "prefix"},
		{args: []string{"--tributary", "/nonexistent/tributary"}, wantErr: "not an executable"},
		{args: []string{"extra"}, wantErr: "unexpected argument"},
		{args: []string{"--no-such-flag"}, wantErr: "no-such-flag"},
	}
	for _, tc := range tests {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !errors.Is(err, benchreport.ErrUsage) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseFlags(%q) = %v, want a usage error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

func TestSetFlag(t *testing.T) {
	s := sets{source: map[string]string{}, sink: map[string]string{}, worker: map[string]string{}}
	f := setFlag{&s}
	for _, v := range []string{"sink.flush.interval.ms=100", "source.max.batch.size=4096", "worker.offset.flush.interval.ms=500"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if s.sink["flush.interval.ms"] != "100" || s.source["max.batch.size"] != "4096" || s.worker["offset.flush.interval.ms"] != "500" {
		t.Errorf("sets = %+v", s)
	}
	if got := strings.Join(s.list(), ","); got != "sink.flush.interval.ms=100,source.max.batch.size=4096,worker.offset.flush.interval.ms=500" {
		t.Errorf("list = %s", got)
	}
	o := options{set: s}
	if got := sinkSettings(o); got != "batch.size=10000, flush.interval.ms=100" {
		t.Errorf("sinkSettings = %s", got)
	}
}

func TestPhase(t *testing.T) {
	p := newPhase("t", 1001, 2500, 1000, 500)
	if p.txs() != 3 || p.first(0) != 1001 || p.first(2) != 3001 || p.size(0) != 1000 || p.size(2) != 500 {
		t.Fatalf("txs %d, first %d %d, sizes %d %d", p.txs(), p.first(0), p.first(2), p.size(0), p.size(2))
	}
	p.start = time.Unix(100, 0)
	if got := p.due(2).Sub(p.start); got != 4*time.Second { // 2,000 rows at 500 rows/s
		t.Errorf("due(2) = start + %v, want 4s", got)
	}
	// Commit k at start + k s, visible 100, 300 and (before its commit) -10 ms later.
	for k, d := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, -10 * time.Millisecond} {
		c := p.start.Add(time.Duration(k) * time.Second)
		p.commits[k].Store(c.UnixNano())
		p.visible[k] = c.Add(d)
	}
	f := p.measure()
	if f.n != 3 || f.p50 != 100*time.Millisecond || f.p99 != 300*time.Millisecond || f.max != 300*time.Millisecond || f.beforeCommit != 1 {
		t.Errorf("measure = %+v", f)
	}
	if !f.firstCommit.Equal(p.start) || !f.lastCommit.Equal(p.start.Add(2*time.Second)) || !f.lastVisible.Equal(p.start.Add(2*time.Second-10*time.Millisecond)) {
		t.Errorf("first/last commit %v %v, last visible %v", f.firstCommit, f.lastCommit, f.lastVisible)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{50, 100 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(ds, tc.q); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(ds[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
}

func TestRender(t *testing.T) {
	o := options{rows: 300_000, writers: 2, txRows: 1000, rate: 5000, pacedDuration: 20 * time.Second, pacedTxRows: 100, pollEvery: 25 * time.Millisecond,
		set: sets{source: map[string]string{}, sink: map[string]string{}, worker: map[string]string{}}}
	sv := servers{pgVersion: "15.18", chVersion: "18.16.1"}
	mk := func(run int, total time.Duration, p99 time.Duration) result {
		return result{run: run,
			sustained: phaseResult{rows: 300_000, txRows: 1000, txs: 300, insert: 8 * time.Second, total: total, drain: total - 8*time.Second,
				fresh: freshness{n: 300, p50: 2 * time.Second, p99: 3 * time.Second, max: 3500 * time.Millisecond}},
			paced: phaseResult{rows: 100_000, txRows: 100, txs: 1000, rate: 5000, insert: 20 * time.Second, total: 20500 * time.Millisecond,
				fresh: freshness{n: 1000, p50: 400 * time.Millisecond, p99: p99, max: p99 + 100*time.Millisecond}},
			stored: 401_000, unique: 401_000,
			mem: benchproc.MemPeaks{WorkerHWM: 300, PluginsRSS: 250, TotalRSS: 540, Plugins: 6, ByBinary: map[string]float64{sinkBinary: 100, sourceBinary: 150}}}
	}
	out := render(o, sv, []result{mk(1, 12*time.Second, 2500*time.Millisecond), mk(2, 10*time.Second, 900*time.Millisecond)})
	for _, want := range []string{
		"| " + rowThroughput + " | 300,000 rows inserted by 2 connections in transactions of 1,000 rows (COPY)",
		"| 10.00 s, 30,000 rows/s | 25,000, 30,000 | >= 30,000 rows/s: met |",
		"| 400 ms / 900 ms / 1000 ms | 400 ms / 2500 ms / 2600 ms, 400 ms / 900 ms / 1000 ms | p99 < 2s: met |",
		"| 2000 ms / 3000 ms / 3500 ms |",
		"none (queueing, not latency)",
		"| " + rowWorkerRSS + " | the worker process alone: VmHWM (highest run) | 300 MiB |",
		"per binary: tributary-connector-clickhouse 100 MiB, tributary-connector-postgres 150 MiB",
		"ClickHouse 18.16.1", "PostgreSQL 15.18", "batch.size=10000, flush.interval.ms=200",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Experiment") {
		t.Errorf("report names an experiment without --set:\n%s", out)
	}
	o.set.sink["flush.interval.ms"] = "1000"
	out = render(o, sv, []result{mk(1, 12*time.Second, 2500*time.Millisecond)})
	for _, want := range []string{"**Experiment**: settings added with --set: sink.flush.interval.ms=1000", "batch.size=10000, flush.interval.ms=1000", ">= 30,000 rows/s: NOT met", "p99 < 2s: NOT met"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
