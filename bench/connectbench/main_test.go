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

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

func tributaryBin(t *testing.T) string { return benchproc.TestBinaries(t, "tributary-connector-file") }

// TestRunSmall runs the whole benchmark with few records and checks the
// report's rows.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a worker; skipped with -short")
	}
	bin := tributaryBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	outFile := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	code := driver.Run(ctx, []string{"--records", "20000", "--runs", "1", "--tributary", bin, "--out", outFile, "--work-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	report := stdout.String()
	saved, err := os.ReadFile(outFile)
	if err != nil || string(saved) != report {
		t.Fatalf("--out file differs from stdout (err %v)", err)
	}
	rows := []struct{ label, variant string }{
		{rowE2E, variantPlugin + ": broker + worker + plugin processes"},
		{rowE2E, variantInProcess + ": broker + worker with the connectors linked in"},
		{rowCostE2E, "1 - plugin/in-process"},
		{rowSource, variantPlugin},
		{rowSource, variantInProcess},
		{rowCostSource, "1 - plugin/in-process"},
		{rowSink, variantPlugin},
		{rowSink, variantInProcess},
		{rowCostSink, "1 - plugin/in-process"},
	}
	for _, r := range rows {
		found := false
		for _, line := range strings.Split(report, "\n") {
			if strings.HasPrefix(line, "| "+r.label+" | "+r.variant) {
				found = true
				// Each measured row has a positive records/s.
				cells := strings.Split(line, "|")
				if len(cells) < 8 || strings.TrimSpace(cells[4]) == "" || strings.TrimSpace(cells[4]) == "0" {
					t.Errorf("row %q has no records/s: %q", r.label, line)
				}
			}
		}
		if !found {
			t.Errorf("report lacks the row %q / %q:\n%s", r.label, r.variant, report)
		}
	}
	if !strings.Contains(report, "Targets:") {
		t.Errorf("report lacks the target verdicts:\n%s", report)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--records", "0"}, wantErr: "--records"},
		{args: []string{"--runs", "0"}, wantErr: "--runs"},
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

// TestReadStatSelf checks the /proc parsing against this process.
func TestReadStatSelf(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() || st.self <= 0 || st.startTime <= 0 {
		t.Fatalf("implausible stat %+v (ppid %d)", st, os.Getppid())
	}
	if rss, hwm := benchproc.MemMB(os.Getpid()); rss <= 0 || hwm < rss {
		t.Fatalf("implausible memory rss %v hwm %v", rss, hwm)
	}
}

// TestInProcessSinkEvents checks the in-process client against the file
// sink: calls reach the task, a cancelled context ends an events stream with
// codes.Canceled, and a failed call returns no response, as over gRPC.
func TestInProcessSinkEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := plugins.InProcess(fileClasses()...)
	out := filepath.Join(t.TempDir(), "out.txt")
	cfg := map[string]string{"connector.class": "FileStreamSink", "file": out, "topics": "t", "value.converter": stringConv}
	if _, err := c.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "FileStreamSink", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, &pluginpb.PutRequest{Records: []*pluginpb.ConsumedRecord{{Topic: "t", KeyNull: true, Value: []byte("hello")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Flush(ctx, &pluginpb.FlushRequest{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "hello\n" {
		t.Fatalf("sink file %q, %v; want \"hello\\n\"", b, err)
	}

	sctx, scancel := context.WithCancel(ctx)
	stream, err := c.SinkEvents(sctx, &pluginpb.SinkEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	scancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel: %v, want Canceled", err)
	}

	if _, err := c.StopTask(ctx, &pluginpb.StopRequest{}); err != nil {
		t.Fatal(err)
	}
	// A call on a stopped instance fails as over gRPC, with no response.
	if resp, err := c.Put(ctx, &pluginpb.PutRequest{}); err == nil || resp != nil || status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Put after stop: %v, %v; want FailedPrecondition and no response", resp, err)
	}
}

// TestInProcessConnectorEvents checks that stopping the connector ends its
// events stream with io.EOF, as over gRPC.
func TestInProcessConnectorEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := plugins.InProcess(fileClasses()...)
	cfg := map[string]string{"connector.class": "FileStreamSource", "file": filepath.Join(t.TempDir(), "in.txt"), "topic": "t"}
	if _, err := c.StartConnector(ctx, &pluginpb.StartConnectorRequest{Class: "FileStreamSource", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.TaskConfigs(ctx, &pluginpb.TaskConfigsRequest{MaxTasks: 3})
	if err != nil || len(resp.Tasks) != 1 || resp.Tasks[0].Config["topic"] != "t" {
		t.Fatalf("TaskConfigs = %v, %v; want one task config for topic t", resp, err)
	}
	stream, err := c.ConnectorEvents(ctx, &pluginpb.ConnectorEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopConnector(ctx, &pluginpb.StopRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after StopConnector: %v, want io.EOF", err)
	}
}
