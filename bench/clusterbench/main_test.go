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

func tributaryBin(t *testing.T) string { return benchproc.TestBinaries(t, "tributary-connector-file") }

// TestRunSmall runs the whole benchmark with few connectors and checks the
// report's rows.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and three workers; skipped with -short")
	}
	bin := tributaryBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outFile := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	code := driver.Run(ctx, []string{"--connectors", "6", "--runs", "1", "--tributary", bin, "--out", outFile, "--work-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	report := stdout.String()
	saved, err := os.ReadFile(outFile)
	if err != nil || string(saved) != report {
		t.Fatalf("--out file differs from stdout (err %v)", err)
	}
	for _, row := range []string{rowSettle, rowSettleAfter, rowFailover, rowAllUnits, rowFirstMoved} {
		found := false
		for _, line := range strings.Split(report, "\n") {
			if strings.HasPrefix(line, "| "+row+" |") {
				found = true
				cells := strings.Split(line, "|")
				if len(cells) < 6 || strings.TrimSpace(cells[3]) == "" || strings.TrimSpace(cells[3]) == "0.00" {
					t.Errorf("row %q has no duration: %q", row, line)
				}
			}
		}
		if !found {
			t.Errorf("report lacks the row %q:\n%s", row, report)
		}
	}
	// 6 connectors of one task each: 12 units.
	if !strings.Contains(report, "12 units") || !strings.Contains(report, "6 connectors") {
		t.Errorf("report does not name 6 connectors (12 units):\n%s", report)
	}
	t.Logf("report:\n%s", report)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--connectors", "0"}, wantErr: "--connectors"},
		{args: []string{"--runs", "0"}, wantErr: "--runs"},
		{args: []string{"--workers", "1"}, wantErr: "--workers"},
		{args: []string{"--session-timeout", "2s", "--heartbeat", "1500ms"}, wantErr: "--heartbeat"},
		{args: []string{"--session-timeout", "500ms", "--heartbeat", "100ms"}, wantErr: "--session-timeout"},
		{args: []string{"--tributary", "/nonexistent/tributary"}, wantErr: "not an executable"},
		{args: []string{"extra"}, wantErr: "unexpected argument"},
	}
	for _, tc := range tests {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !errors.Is(err, benchreport.ErrUsage) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseFlags(%q) = %v, want a usage error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

func TestRender(t *testing.T) {
	o := options{workers: 3, connectors: 100, session: 3 * time.Second, heartbeat: 500 * time.Millisecond}
	rs := []result{
		{posts: 3 * time.Second, settle: 12 * time.Second, units: 200, failover: 6 * time.Second, tasksMoved: 5500 * time.Millisecond, firstMoved: 3500 * time.Millisecond, moved: 67, workerRSS: []float64{70, 71, 72}, workerHWM: []float64{80, 81}, plugins: 200, pluginRSS: 2600},
		{posts: 2 * time.Second, settle: 8 * time.Second, units: 200, failover: 4 * time.Second, tasksMoved: 3800 * time.Millisecond, firstMoved: 3200 * time.Millisecond, moved: 66, workerRSS: []float64{60, 61, 62}, workerHWM: []float64{70, 71}, plugins: 200, pluginRSS: 2400},
	}
	r := render(o, rs)
	for _, want := range []string{
		"| settle | 100 connectors (200 units: instances + tasks) created over REST, first POST -> all RUNNING | 8.00 | 12.00, 8.00 | < 10s: met |",
		"| settle after the POSTs | the same, from the last POST's answer -> all RUNNING | 6.00 | 9.00, 6.00 | |",
		"| failover | kill -9 of a worker (not the leader) running 66 units -> all of its tasks RUNNING on the others | 3.80 | 5.50, 3.80 | < 5s: met |",
		"| failover, every unit | the same, until its connector instances run too | 4.00 | 6.00, 4.00 | |",
		"| failover, first unit | the same, until the first of them is RUNNING on another worker (detection + rebalance; the rest is starting them) | 3.20 | 3.50, 3.20 | |",
		"worker0 60 MiB",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
}
