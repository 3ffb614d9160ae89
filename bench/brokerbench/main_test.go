package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadUsageSelf(t *testing.T) {
	// Burn a little CPU so that the tick count is certainly positive.
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	u, err := readUsage(os.Getpid(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if u.cpu <= 0 || u.rssMB <= 0 || u.hwmMB < u.rssMB {
		t.Fatalf("implausible usage %+v", u)
	}
}

func TestMedianRows(t *testing.T) {
	mk := func(rps, cpu float64) []row {
		return []row{{phase: "produce", records: 100, rps: rps, brokerCPU: cpu}, {phase: "consume", records: 100, rps: 2 * rps, brokerCPU: 2 * cpu}}
	}
	got := medianRows([][]row{mk(10, 3), mk(30, 1), mk(20, 2)})
	if got[0].rps != 20 || got[0].brokerCPU != 2 || got[1].rps != 40 || got[1].brokerCPU != 4 {
		t.Fatalf("medians wrong: %+v", got)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--brokers", "kfake,nats"}, wantErr: "unknown broker"},
		{args: []string{"--sizes", "100,x"}, wantErr: "--sizes"},
		{args: []string{"--runs", "0"}, wantErr: "--runs"},
	}
	for _, tc := range tests {
		_, err := parseFlags(tc.args, io.Discard)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("parseFlags(%q) = %v, want error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

// TestRunAgainstKfake drives the whole benchmark against a kfakeserver
// subprocess (built by the test) with a few thousand records.
func TestRunAgainstKfake(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a broker subprocess")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	code := driver.Run(ctx, []string{"--brokers", "kfake", "--records", "3000", "--sizes", "100", "--out", out, "--work-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b) != stdout.String() {
		t.Fatalf("--out file differs from stdout (err %v)", err)
	}
	for _, want := range []string{"| kfake | 100 B | 1 | produce |", "| kfake | 100 B | 1 | consume |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
}
