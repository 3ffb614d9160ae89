package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/worker/restclient"
	"github.com/tributary-data/tributary/worker/workerconfig"
)

// connTestStack is a real broker and a real worker (in-process), with the
// file connector plugin built from this repo.
type connTestStack struct {
	broker string // Kafka address
	url    string // the worker's REST API
	client *restclient.Client
}

// connLogBuffer is a goroutine-safe log sink.
type connLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *connLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *connLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// connTestPluginDir returns a folder holding tributary-connector-file:
// $TRIBUTARY_BIN's (set by `make test`) or a fresh build.
func connTestPluginDir(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("TRIBUTARY_BIN"); b != "" {
		dir := filepath.Dir(b)
		if _, err := os.Stat(filepath.Join(dir, "tributary-connector-file")); err == nil {
			return dir
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/tributary-connector-file")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the file connector plugin: %v\n%s", err, out)
	}
	return dir
}

// startConnTestStack starts the broker and the worker; both stop when the
// test ends (the worker first, waited for).
func startConnTestStack(t *testing.T) *connTestStack {
	t.Helper()
	plugins := connTestPluginDir(t)
	brokerAddr := testkafka.Broker(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	restAddr := l.Addr().String()
	l.Close()

	cfg := workerconfig.Default()
	cfg.BootstrapServers = []string{brokerAddr}
	cfg.GroupID = "connectors-cli-test"
	cfg.RESTListen = restAddr
	cfg.PluginPath = plugins
	cfg.OffsetFlushInterval = 100 * time.Millisecond
	var logs connLogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWorker(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})
	s := &connTestStack{broker: brokerAddr, url: "http://" + restAddr}
	s.client, err = restclient.New(s.url, restclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.client.Health(context.Background()); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("the worker did not become healthy: %v", err)
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the worker stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// connCLI runs `tributary connectors args...` and returns its exit code
// and outputs.
func connCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"connectors"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// connMustCLI is connCLI that fails the test unless the exit code is want
// and stdout+stderr contain every string of contains.
func connMustCLI(t *testing.T, want int, contains []string, args ...string) string {
	t.Helper()
	code, out, errs := connCLI(t, args...)
	if code != want {
		t.Fatalf("tributary connectors %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	if os.Getenv("CONN_TEST_LOG") != "" { // go test -v with CONN_TEST_LOG=1 shows every command's output
		t.Logf("$ tributary connectors %s  -> exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	for _, c := range contains {
		if !strings.Contains(out+errs, c) {
			t.Fatalf("tributary connectors %s: output lacks %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), c, out, errs)
		}
	}
	return out
}

func connWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// configTopicEnd returns the end offset of the worker's config topic.
func (s *connTestStack) configTopicEnd(t *testing.T) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "connect-configs")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup("connect-configs", 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of connect-configs: %v %v", ok, o.Err)
	}
	return o.Offset
}

func (s *connTestStack) config(t *testing.T, name string) map[string]string {
	t.Helper()
	c, err := s.client.ConnectorConfig(context.Background(), name)
	if err != nil {
		t.Fatalf("config of %s: %v", name, err)
	}
	return c
}

// connWaitFor polls cond until it holds or the timeout passes.
func connWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConnectorsCLI drives `tributary connectors` end to end against a real
// broker and worker: apply (create, unchanged, dry-run diff, update,
// prune), validation errors, status with FAILED tasks, offsets, and the
// read-only commands.
func TestConnectorsCLI(t *testing.T) {
	s := startConnTestStack(t)
	data := t.TempDir()
	dir := filepath.Join(t.TempDir(), "connectors")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, in2, out := filepath.Join(data, "in.txt"), filepath.Join(data, "in2.txt"), filepath.Join(data, "out.txt")
	connWriteFile(t, filepath.Join(dir, "src.json"), fmt.Sprintf(`{"name": "src", "config": {"connector.class": "FileStreamSource", "file": %q, "topic": "lines", "batch.size": 100}}`, in))
	connWriteFile(t, filepath.Join(dir, "sink.properties"), fmt.Sprintf("# the sink\nname=sink\nconnector.class=FileStreamSink\nfile=%s\ntopics=lines\ntasks.max=1\n", out))
	flat := filepath.Join(dir, "src2.json")
	connWriteFile(t, flat, fmt.Sprintf(`{"name": "src2", "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "file": %q, "topic": "lines2"}`, in2))
	connWriteFile(t, filepath.Join(dir, "README.md"), "not a connector")
	u := "--url=" + s.url

	// Create, then wait until everything runs.
	connMustCLI(t, 0, []string{"src: created", "sink: created", "src2: created", "created 3, updated 0, unchanged 0, deleted 0"}, "apply", "-f", dir, u)
	connMustCLI(t, 0, []string{"src ", "1/1 RUNNING"}, "status", "--wait", "30s", "src", "sink", "src2", u)
	if c := s.config(t, "src"); c["batch.size"] != "100" || c["name"] != "src" || c["file"] != in {
		t.Fatalf("src config = %v", c)
	}

	// Applying twice changes nothing and says so.
	before := s.configTopicEnd(t)
	connMustCLI(t, 0, []string{"src: unchanged", "sink: unchanged", "src2: unchanged", "created 0, updated 0, unchanged 3, deleted 0"}, u, "apply", "-f", dir)
	if after := s.configTopicEnd(t); after != before {
		t.Fatalf("an unchanged apply wrote to the config topic: end offset %d -> %d", before, after)
	}

	// An edit: the dry run shows the diff and changes nothing; apply updates.
	connWriteFile(t, flat, fmt.Sprintf(`{"name": "src2", "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "file": %q, "topic": "lines3", "batch.size": 50}`, in2))
	connMustCLI(t, 0, []string{"src2: would be updated", `+ batch.size: "50"`, `~ topic: "lines2" -> "lines3"`, "src: unchanged", "dry run, nothing was changed: would create 0, update 1, delete 0; 2 unchanged"},
		"apply", "-f", dir, "--dry-run", u)
	if c := s.config(t, "src2"); c["topic"] != "lines2" || c["batch.size"] != "" {
		t.Fatalf("the dry run changed src2: %v", c)
	}
	connMustCLI(t, 0, []string{"src2: updated", `~ topic: "lines2" -> "lines3"`, "created 0, updated 1, unchanged 2, deleted 0"}, "apply", "-f", dir, u)
	if c := s.config(t, "src2"); c["topic"] != "lines3" || c["batch.size"] != "50" {
		t.Fatalf("src2 not updated: %v", c)
	}

	// Bad configs: per-key errors, non-zero exit, nothing changed (not even
	// the valid edit given with them).
	bad := t.TempDir()
	connWriteFile(t, filepath.Join(bad, "a-missing.json"), `{"name": "missing-topic", "config": {"connector.class": "FileStreamSource", "file": "/tmp/x"}}`)
	connWriteFile(t, filepath.Join(bad, "b-unknown.properties"), "name=unknown-class\nconnector.class=NoSuchConnector\n")
	connWriteFile(t, filepath.Join(bad, "c-edit.json"), fmt.Sprintf(`{"name": "src2", "connector.class": "FileStreamSource", "file": %q, "topic": "lines3", "batch.size": 60}`, in2))
	connMustCLI(t, 1, []string{"missing-topic (", "    topic: ", "unknown-class (", "    connector.class: ", "NoSuchConnector", "2 of 3 connector(s) have config errors; nothing was changed"},
		"apply", "-f", bad, u)
	connMustCLI(t, 1, []string{"src2 (", "valid", "    topic: ", "2 of 3 connector(s) have config errors"}, "validate", "-f", bad, u)
	if c := s.config(t, "src2"); c["batch.size"] != "50" {
		t.Fatalf("a failed apply changed src2: %v", c)
	}
	if _, err := s.client.ConnectorConfig(context.Background(), "missing-topic"); !restclient.IsNotFound(err) {
		t.Fatalf("a failed apply created missing-topic: %v", err)
	}
	connMustCLI(t, 0, []string{"src (", "valid, FileStreamSource"}, "validate", "-f", dir, u)

	// Prune: a connector no longer in the files is only deleted with --prune.
	if err := os.Remove(filepath.Join(dir, "sink.properties")); err != nil {
		t.Fatal(err)
	}
	connMustCLI(t, 0, []string{"not in the files (left alone; --prune deletes them): sink", "unchanged 2, deleted 0"}, "apply", "-f", dir, u)
	connMustCLI(t, 0, []string{"sink: would be deleted (not in the files)", "delete 1"}, "apply", "-f", dir, "--prune", "--dry-run", u)
	if _, err := s.client.ConnectorConfig(context.Background(), "sink"); err != nil {
		t.Fatalf("the dry run deleted sink: %v", err)
	}
	connMustCLI(t, 0, []string{"sink: deleted", "created 0, updated 0, unchanged 2, deleted 1"}, "apply", "-f", dir, "--prune", u)
	if _, err := s.client.ConnectorConfig(context.Background(), "sink"); !restclient.IsNotFound(err) {
		t.Fatalf("sink not pruned: %v", err)
	}
	connMustCLI(t, 0, []string{"src2: updated (--force: no difference seen)", "updated 2"}, "apply", "-f", dir, "--force", u)
	applyJSON := connMustCLI(t, 0, nil, "apply", "-f", dir, "--dry-run", "--output", "json", u)
	var applied struct {
		DryRun     bool           `json:"dry_run"`
		Summary    map[string]int `json:"summary"`
		Connectors []connPlan     `json:"connectors"`
	}
	if err := json.Unmarshal([]byte(applyJSON), &applied); err != nil || !applied.DryRun || applied.Summary["unchanged"] != 2 || len(applied.Connectors) != 2 || applied.Connectors[0].Action != "unchanged" {
		t.Fatalf("apply --output json = %s (%v)", applyJSON, err)
	}

	// A POST-body file's initial_state applies when the connector is created.
	paused := filepath.Join(t.TempDir(), "paused.json")
	connWriteFile(t, paused, fmt.Sprintf(`{"name": "paused", "initial_state": "PAUSED", "config": {"connector.class": "FileStreamSource", "file": %q, "topic": "p"}}`, in2))
	connMustCLI(t, 0, []string{"paused: created", "created 1"}, "apply", "--file="+paused, u)
	connWaitFor(t, 20*time.Second, "paused PAUSED", func() bool {
		st, err := s.client.ConnectorStatus(context.Background(), "paused")
		return err == nil && st.Connector.State == "PAUSED"
	})
	connMustCLI(t, 0, []string{"paused: deleted"}, "delete", "paused", u)

	// A sink writing into a directory that does not exist fails: status
	// (with and without --wait) exits non-zero and shows the trace's first line.
	failing := filepath.Join(t.TempDir(), "failing.json")
	connWriteFile(t, failing, fmt.Sprintf(`{"name": "failing", "config": {"connector.class": "FileStreamSink", "topics": "lines", "file": %q}}`, filepath.Join(data, "no", "such", "dir", "out.txt")))
	connMustCLI(t, 0, []string{"failing: created", "created 1"}, "apply", "-f", failing, u)
	connMustCLI(t, 1, []string{"failing: task 0 FAILED on", "open the sink file", "FAILED: failing task 0"}, "status", "failing", "src", "--wait", "30s", u)
	connMustCLI(t, 1, []string{"0/1 RUNNING, 1 FAILED", "FAILED: failing task 0"}, "status", u)
	statusJSON := connMustCLI(t, 1, nil, "status", "failing", "--output", "json", u)
	var sts []map[string]any
	if err := json.Unmarshal([]byte(statusJSON), &sts); err != nil || len(sts) != 1 || sts[0]["name"] != "failing" {
		t.Fatalf("status --output json = %s (%v)", statusJSON, err)
	}
	connMustCLI(t, 0, []string{"failing: deleted"}, "delete", "failing", u)
	connMustCLI(t, 0, []string{"src2", "1/1 RUNNING"}, "status", "--wait", "30s", u)

	// Offsets of a file source: read, reset only when STOPPED.
	connWriteFile(t, in, "one\ntwo\n")
	connWaitFor(t, 20*time.Second, "src's offsets", func() bool {
		_, out, _ := connCLI(t, "offsets", "get", "src", u)
		return strings.Contains(out, `"position":8`)
	})
	connMustCLI(t, 0, []string{`{"filename":"` + in + `"}`, `{"position":8}`}, "offsets", "get", "src", u)
	connMustCLI(t, 1, []string{"STOPPED", "run 'tributary connectors stop src' first"}, "offsets", "reset", "src", u)
	connMustCLI(t, 0, []string{"src: stop requested"}, "stop", "src", u)
	connWaitFor(t, 20*time.Second, "src STOPPED", func() bool {
		st, err := s.client.ConnectorStatus(context.Background(), "src")
		return err == nil && st.Connector.State == "STOPPED"
	})
	connMustCLI(t, 0, []string{"src: The offsets for this connector have been reset successfully"}, "offsets", "reset", "src", u)
	connMustCLI(t, 0, []string{"src: no offsets stored"}, "offsets", "get", "src", u)
	connMustCLI(t, 0, []string{"src: resume requested"}, "resume", "src", u)
	connMustCLI(t, 0, []string{"1/1 RUNNING"}, "status", "src", "--wait", "30s", u)

	// The other commands.
	listJSON := connMustCLI(t, 0, nil, "list", "--output=json", u)
	var list map[string]restclient.Expanded
	if err := json.Unmarshal([]byte(listJSON), &list); err != nil || len(list) != 2 || list["src"].Info == nil || list["src"].Status == nil {
		t.Fatalf("list --output json = %s (%v)", listJSON, err)
	}
	connMustCLI(t, 0, []string{"NAME", "src2", "source", "org.apache.kafka.connect.file.FileStreamSourceConnector"}, "list", u)
	connMustCLI(t, 0, []string{"io.tributary.connect.file.FileStreamSinkConnector", "sink", "1.0.0"}, "plugins", u)
	connMustCLI(t, 0, []string{"## FileStreamSource", "| `file` | string | *required* | high |", "| `batch.size` | int | `2000` |"}, "docs", "FileStreamSource", u)
	connMustCLI(t, 0, []string{"## io.tributary.connect.file.FileStreamSinkConnector", "Type: sink, version 1.0.0."}, "docs", u)
	connMustCLI(t, 0, []string{"src2: pause requested"}, "pause", "src2", u)
	connMustCLI(t, 0, []string{"src2: resume requested"}, "resume", "src2", u)
	connMustCLI(t, 0, []string{"src2: restarting"}, "restart", "src2", "--include-tasks", u)
	connMustCLI(t, 0, []string{"src2: task 0 restarted"}, "restart", "src2", "--task", "0", u)
	connMustCLI(t, 1, []string{"nope: ", "not found", "HTTP 404"}, "pause", "nope", u)
	connMustCLI(t, 1, []string{"no such connector: nope"}, "status", "nope", u)
}

// An unreachable worker is a clear message, whether the URL comes from
// --url or TRIBUTARY_URL.
func TestConnectorsUnreachableWorker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	want := "cannot reach the Tributary worker at http://" + addr + ": connection refused (is it running? start one with 'tributary dev', or point --url / TRIBUTARY_URL at a worker)"
	connMustCLI(t, 1, []string{want}, "status", "--url", "http://"+addr)
	t.Setenv("TRIBUTARY_URL", addr)
	connMustCLI(t, 1, []string{want}, "list")
	connMustCLI(t, 1, []string{"timed out after", "connection refused"}, "status", "--wait", "300ms")
}

func TestConnectorsUsage(t *testing.T) {
	connMustCLI(t, 0, []string{"apply", "offsets", "docs", "TRIBUTARY_URL"}, "--help")
	for _, sub := range []string{"apply", "validate", "list", "status", "pause", "resume", "stop", "restart", "delete", "offsets", "plugins", "docs"} {
		connMustCLI(t, 0, []string{"tributary connectors " + sub, "--url  [TRIBUTARY_URL]", "--output  [TRIBUTARY_OUTPUT]"}, sub, "--help")
	}
	connMustCLI(t, 2, []string{"unknown subcommand"}, "frobnicate")
	connMustCLI(t, 2, []string{"--output \"yaml\""}, "list", "--output", "yaml")
	connMustCLI(t, 2, []string{"name at least one connector"}, "pause")
	connMustCLI(t, 2, []string{"offsets get|reset NAME"}, "offsets", "show", "x")
	connMustCLI(t, 2, []string{"give the connector files"}, "apply", "--url", "http://127.0.0.1:1")
	connMustCLI(t, 2, []string{"--url"}, "list", "--url", "ftp://x")
}

func TestConnDiff(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name       string
		cur, des   map[string]string
		pw         map[string]bool
		want       []connChange
		uncompared []string
	}{
		{name: "equal", cur: map[string]string{"a": "1"}, des: map[string]string{"a": "1"}},
		{name: "add remove change", cur: map[string]string{"a": "1", "b": "2"}, des: map[string]string{"a": "3", "c": "4"},
			want: []connChange{{Op: "~", Key: "a", Old: s("1"), New: s("3")}, {Op: "-", Key: "b", Old: s("2")}, {Op: "+", Key: "c", New: s("4")}}},
		{name: "hidden literal is assumed equal", cur: map[string]string{"password": "[hidden]"}, des: map[string]string{"password": "s3cret"},
			uncompared: []string{"password"}},
		{name: "hidden to a reference is a change", cur: map[string]string{"password": "[hidden]"}, des: map[string]string{"password": "${env:PW}"},
			want: []connChange{{Op: "~", Key: "password", Old: s("[hidden]"), New: s("${env:PW}")}}},
		{name: "reference to a literal hides the literal", cur: map[string]string{"password": "${env:PW}"}, des: map[string]string{"password": "s3cret"}, pw: map[string]bool{"password": true},
			want: []connChange{{Op: "~", Key: "password", Old: s("${env:PW}"), New: s("[hidden]")}}},
		{name: "a new password is not printed", des: map[string]string{"password": "s3cret"}, pw: map[string]bool{"password": true},
			want: []connChange{{Op: "+", Key: "password", New: s("[hidden]")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unc := connDiff(tt.cur, tt.des, tt.pw)
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tt.want)
			if string(gj) != string(wj) || strings.Join(unc, ",") != strings.Join(tt.uncompared, ",") {
				t.Fatalf("connDiff = %s, uncompared %v; want %s, %v", gj, unc, wj, tt.uncompared)
			}
		})
	}
}

func TestParseConnArgsInterleaved(t *testing.T) {
	fs, o := connFlagSet("x", &bytes.Buffer{})
	force := fs.Bool("force", false, "")
	pos, err := parseConnArgs(fs, o, []string{"a", "--output", "json", "b", "--force", "--", "--c"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "a b --c" || o.output != "json" || !*force {
		t.Fatalf("pos %q, output %q, force %v", pos, o.output, *force)
	}
}
