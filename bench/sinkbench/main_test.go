package main

import (
	"bytes"
	"context"
	"encoding/json"
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

func tributaryBin(t *testing.T) string {
	return benchproc.TestBinaries(t, pluginBinaries[sinkClickHouse], pluginBinaries[sinkRedis])
}

// TestRunSmall runs the whole benchmark with few records and checks the
// report's rows.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse, Redis, a broker and a worker; skipped with -short")
	}
	bin := tributaryBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outFile := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	code := driver.Run(ctx, []string{"--records", "20000", "--runs", "1", "--partitions", "2", "--tributary", bin,
		"--out", outFile, "--work-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	report := stdout.String()
	saved, err := os.ReadFile(outFile)
	if err != nil || string(saved) != report {
		t.Fatalf("--out file differs from stdout (err %v)", err)
	}
	for _, row := range []string{rowClickHouse, rowClickHouseSteady, rowClickHouseWorker, rowClickHousePlugins,
		rowRedis, rowRedisSteady, rowRedisWorker, rowRedisPlugins} {
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
	for _, want := range []string{"20,000 records, 2 partitions", ">= 200,000 rows/s", ">= 150,000 ops/s", "Every run:", "- clickhouse run 1:", "- redis run 1:"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "duplicates") {
		t.Errorf("a target holds duplicates:\n%s", report)
	}
	t.Logf("report:\n%s", report)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--records", "0"}, wantErr: "--records"},
		{args: []string{"--runs", "0"}, wantErr: "--runs"},
		{args: []string{"--partitions", "0"}, wantErr: "--partitions"},
		{args: []string{"--sinks", "postgres"}, wantErr: "--sinks"},
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

// TestRowValue checks that the records' values are about 100 bytes of the
// JSON object the ClickHouse table takes.
func TestRowValue(t *testing.T) {
	for _, i := range []int{0, 999_999, 1_234_567} {
		v := rowValue(i)
		if len(v) < 90 || len(v) > 110 {
			t.Errorf("value %d is %d bytes: %s", i, len(v), v)
		}
		var row struct {
			ID     int64   `json:"id"`
			Name   string  `json:"name"`
			Amount float64 `json:"amount"`
			TS     int64   `json:"ts"`
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil || row.ID != int64(i) || row.Name == "" || row.TS == 0 {
			t.Errorf("value %d: %+v, %v: %s", i, row, err, v)
		}
	}
}

func TestRender(t *testing.T) {
	o := options{records: 1_000_000, runs: 2, partitions: 4, sinks: []string{sinkClickHouse, sinkRedis}}
	ch1 := result{run: 1, records: 1_000_000, total: 5 * time.Second, first: time.Second, final: 1_000_000, MemPeaks: benchproc.MemPeaks{WorkerHWM: 80, PluginsRSS: 200, Plugins: 6}}
	ch2 := ch1
	ch2.run, ch2.total, ch2.WorkerHWM = 2, 4*time.Second, 90 // 250,000 rows/s
	rd := result{run: 1, records: 1_000_000, total: 10 * time.Second, first: 2 * time.Second, final: 1_000_001, MemPeaks: benchproc.MemPeaks{WorkerHWM: 70}}
	out := render(o, "18.16.1", map[string][]result{sinkClickHouse: {ch1, ch2}, sinkRedis: {rd}})
	for _, want := range []string{
		"| 4.00 s, 250,000 rows/s | 200,000, 250,000 | >= 200,000 rows/s: met |",
		"| " + rowClickHouseSteady + " | the same from the first one seen (start-up excluded: plugin processes, consumer group join; 1.00 s) | 3.00 s, 333,333 rows/s | 250,000, 333,333 | |",
		"| " + rowClickHouseWorker + " | the worker process alone: VmHWM at the end of the measurement (highest run) | 90 MiB | 80 MiB, 90 MiB | |",
		"| 10.00 s, 100,000 ops/s | 100,000 | >= 150,000 ops/s: NOT met |",
		"redis run 1: the target held 1,000,001 rows/keys",
		"ClickHouse 18.16.1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
