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

	"github.com/tributary-data/tributary/bench/benchreport"

	"github.com/tributary-data/tributary/bench/benchproc"
)

func tributaryBin(t *testing.T) string { return benchproc.TestBinaries(t, pluginBinary) }

// TestRunSmall runs the whole benchmark with few rows and checks the
// report's rows.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, a broker and a worker; skipped with -short")
	}
	bin := tributaryBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outFile := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	code := driver.Run(ctx, []string{"--rows", "20000", "--stream-rows", "10000", "--runs", "1", "--converters", "schemaless", "--tributary", bin,
		"--out", outFile, "--work-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	report := stdout.String()
	saved, err := os.ReadFile(outFile)
	if err != nil || string(saved) != report {
		t.Fatalf("--out file differs from stdout (err %v)", err)
	}
	for _, row := range []string{rowSnapshot, rowSnapshotSteady, rowInserts, rowRefInserts, rowCDC, rowLag, rowCatchUp, rowWorkerRSS, rowPluginsRSS, rowTotalRSS} {
		found := false
		for _, line := range strings.Split(report, "\n") {
			if strings.HasPrefix(line, "| "+row+" |") {
				found = true
				cells := strings.Split(line, "|")
				if len(cells) < 6 || strings.TrimSpace(cells[3]) == "" || strings.HasPrefix(strings.TrimSpace(cells[3]), "0 ") {
					t.Errorf("row %q has no value: %q", row, line)
				}
			}
		}
		if !found {
			t.Errorf("report lacks the row %q:\n%s", row, report)
		}
	}
	for _, want := range []string{"Targets (the issue's):", "20,000 snapshot rows + 10,000 streamed rows", "not durable", "Every run:", "| snapshot (run 1) |", "| streaming (run 1) |"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "more than the rows") {
		t.Errorf("the topic holds duplicates:\n%s", report)
	}
	t.Logf("report:\n%s", report)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--rows", "0"}, wantErr: "--rows"},
		{args: []string{"--stream-rows", "0"}, wantErr: "--stream-rows"},
		{args: []string{"--runs", "0"}, wantErr: "--runs"},
		{args: []string{"--tributary", "/nonexistent/tributary"}, wantErr: "not an executable"},
		{args: []string{"extra"}, wantErr: "unexpected argument"},
		{args: []string{"--no-such-flag"}, wantErr: "no-such-flag"},
		{args: []string{"--set", "novalue"}, wantErr: "key=value"},
		{args: []string{"--converters", "avro"}, wantErr: "--converters"},
	}
	for _, tc := range tests {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !errors.Is(err, benchreport.ErrUsage) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseFlags(%q) = %v, want a usage error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

func TestRender(t *testing.T) {
	o := options{rows: 1_000_000, streamRows: 500_000, variant: variants["schemas"]}
	base := result{rows: 1_000_000, streamRows: 500_000, load: 3 * time.Second, tableBytes: 117_000_000, recordLen: 2690,
		refInsert: 4 * time.Second, snapFirst: time.Second}
	r1, r2 := base, base
	r1.run, r2.run = 1, 2
	r1.snapshot, r2.snapshot = 10*time.Second, 5*time.Second // 100,000 and 200,000 rows/s
	r1.insert, r2.insert = 5*time.Second, 10*time.Second
	r1.cdc, r2.cdc = 8*time.Second, 12500*time.Millisecond // 62,500 and 40,000 rows/s
	r1.lag, r2.lag = 3*time.Second, 2500*time.Millisecond
	r1.atCommit, r2.atCommit = 200_000, 400_000
	r1.MemPeaks = benchproc.MemPeaks{WorkerHWM: 100, PluginsRSS: 150, PluginHWM: 140, TotalRSS: 240, Plugins: 3}
	r2.MemPeaks = benchproc.MemPeaks{WorkerHWM: 140, PluginsRSS: 120, PluginHWM: 110, TotalRSS: 250, Plugins: 3}
	r1.cpuStream = cpuSplit{worker: 2, plugins: 3, broker: 4, postgres: 5, bench: 1, machine: 15}
	out := render(o, "15.18", []result{r1, r2})
	for _, want := range []string{
		"| snapshot | 1,000,000 existing rows (COPY-loaded before the connector existed): POST of the connector (snapshot.mode=initial) -> all of them in the topic | 5.00 s, 200,000 rows/s | 100,000, 200,000 | >= 150,000 rows/s: met |",
		"| CDC streaming | first BEGIN -> all 500,000 rows in the topic | 8.00 s, 62,500 rows/s | 62,500, 40,000 | >= 50,000 rows/s: met |",
		"| CDC lag | last COMMIT -> the last record in the topic (polled every 100 ms) | 2.50 s | 3.00 s, 2.50 s | |",
		"| CDC catch-up | rows not yet in the topic at the last COMMIT (300,000 in the best run)",
		"| worker peak RSS | the worker process alone: VmHWM (highest run; 0 MiB when the snapshot was in the topic) | 140 MiB (147 MB) | 100 MiB, 140 MiB | < 150 MB: met |",
		"| worker + plugins peak RSS | the worker and its plugin processes: summed VmRSS at its highest, sampled every 200 ms (highest run) | 250 MiB (262 MB) | 240 MiB, 250 MiB | < 150 MB: NOT met |",
		"| streaming (run 1) | 8.00 | 2.00 | 3.00 | 4.00 | 5.00 | 1.00 | 15.00 | 94% | 15.00 | 94% | 0.00 | 30.0 | 66,667 |",
		"PostgreSQL 15.18",
		"inserts ran at 80% of their rate without CDC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestThousands(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.4, "1,234,567"}, {-12345, "-12,345"}}
	for _, tc := range tests {
		if got := benchreport.Thousands(tc.in); got != tc.want {
			t.Errorf("benchreport.Thousands(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestProcReading checks the /proc parsing against this process.
func TestProcReading(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	c := cpuAt(os.Getpid(), 0, 0)
	if c.worker <= 0 || c.bench <= 0 {
		t.Fatalf("cpuAt(self) = %+v", c)
	}
}

// TestRowValues checks that the generated rows are about 100 bytes of data.
func TestRowValues(t *testing.T) {
	v := rowValues(1_234_567)
	if len(v) != len(columns) {
		t.Fatalf("%d values for %d columns", len(v), len(columns))
	}
	if name := v[1].(string); len(name) != 48 {
		t.Errorf("name is %d bytes, want 48: %q", len(name), name)
	}
	var n int
	src := copySource(10, 3)
	for src.Next() {
		vals, err := src.Values()
		if err != nil {
			t.Fatal(err)
		}
		if id := vals[0].(int64); id != int64(10+n) {
			t.Errorf("row %d has id %d", n, id)
		}
		n++
	}
	if n != 3 {
		t.Errorf("copySource gave %d rows, want 3", n)
	}
}
