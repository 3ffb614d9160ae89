package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/internal/testkafka"
)

// cli runs the tributary command line in-process and returns its exit code,
// stdout and stderr.
func cli(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustCLI runs the command and fails the test unless it exits 0.
func mustCLI(t *testing.T, ctx context.Context, args ...string) (string, string) {
	t.Helper()
	code, out, errs := cli(ctx, args...)
	if code != 0 {
		t.Fatalf("tributary %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

// eachBackend runs fn against this repo's broker and against kfake.
func eachBackend(t *testing.T, fn func(t *testing.T, brokers string)) {
	for _, b := range testkafka.Backends {
		t.Run(b.Name, func(t *testing.T) { fn(t, strings.Join(b.Start(t), ",")) })
	}
}

// listedTopics parses `topics list` output into topic -> "partitions rf".
func listedTopics(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TOPIC") {
		t.Fatalf("topics list output lacks its header: %q", out)
	}
	m := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("topics list row %q: want topic, partitions, replication factor", l)
		}
		m[f[0]] = f[1] + " " + f[2]
	}
	return m
}

func TestTopicsLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, brokers string) {
		ctx := testCtx(t)
		out, _ := mustCLI(t, ctx, "topics", "create", "orders", "--brokers", brokers, "--partitions", "3", "--replication-factor", "1",
			"--config", "cleanup.policy=compact", "--config", "retention.ms=3600000")
		if !strings.Contains(out, `created topic "orders"`) {
			t.Fatalf("create output: %q", out)
		}
		mustCLI(t, ctx, "topics", "create", "--brokers", brokers, "plain", "--partitions", "2")

		out, _ = mustCLI(t, ctx, "topics", "describe", "orders", "--brokers", brokers)
		for _, want := range []string{"Topic: orders", "Partitions: 3", "ReplicationFactor: 1", "  cleanup.policy=compact\n", "  retention.ms=3600000\n", "START OFFSET"} {
			if !strings.Contains(out, want) {
				t.Errorf("describe lacks %q:\n%s", want, out)
			}
		}
		rows := 0
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 6 && f[0] == fmt.Sprint(rows) {
				if f[4] != "0" || f[5] != "0" {
					t.Errorf("partition %d of an empty topic: start %s end %s, want 0 0", rows, f[4], f[5])
				}
				rows++
			}
		}
		if rows != 3 {
			t.Errorf("describe shows %d partition rows, want 3:\n%s", rows, out)
		}
		// Defaults stay out of the short listing.
		out, _ = mustCLI(t, ctx, "topics", "describe", "plain", "--brokers", brokers)
		if strings.Contains(out, "cleanup.policy") || !strings.Contains(out, "none set on the topic") {
			t.Errorf("describe of a topic without settings:\n%s", out)
		}

		code, _, errs := cli(ctx, "topics", "create", "orders", "--brokers", brokers)
		if code != 1 || !strings.Contains(errs, "TOPIC_ALREADY_EXISTS") || !strings.Contains(errs, "--if-not-exists") {
			t.Fatalf("second create: exit %d, stderr %q: want 1 naming TOPIC_ALREADY_EXISTS with the --if-not-exists hint", code, errs)
		}
		mustCLI(t, ctx, "topics", "create", "orders", "--brokers", brokers, "--if-not-exists")

		out, _ = mustCLI(t, ctx, "topics", "list", "--brokers", brokers)
		got := listedTopics(t, out)
		if got["orders"] != "3 1" || !strings.HasPrefix(got["plain"], "2 ") {
			t.Fatalf("list: %v, want orders 3 1 and plain with 2 partitions", got)
		}
		for name := range got {
			if strings.HasPrefix(name, "__") {
				t.Errorf("list without --internal shows %q", name)
			}
		}

		mustCLI(t, ctx, "topics", "delete", "orders", "--brokers", brokers)
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, _ = mustCLI(t, ctx, "topics", "list", "--brokers", brokers)
			if _, ok := listedTopics(t, out)["orders"]; !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("orders still listed after delete:\n%s", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		code, _, errs = cli(ctx, "topics", "delete", "orders", "--brokers", brokers)
		if code != 1 || !strings.Contains(errs, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(errs, "--if-exists") {
			t.Fatalf("deleting a missing topic: exit %d, stderr %q", code, errs)
		}
		mustCLI(t, ctx, "topics", "delete", "orders", "--brokers", brokers, "--if-exists")
		code, _, errs = cli(ctx, "topics", "describe", "orders", "--brokers", brokers)
		if code != 1 || !strings.Contains(errs, "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Fatalf("describing a missing topic: exit %d, stderr %q", code, errs)
		}
	})
}

func TestTopicsInternalAndEnvTwin(t *testing.T) {
	ctx := testCtx(t)
	t.Setenv("TRIBUTARY_BROKERS", testkafka.Broker(t))
	mustCLI(t, ctx, "topics", "create", "x")
	out, _ := mustCLI(t, ctx, "topics", "list", "--internal")
	if _, ok := listedTopics(t, out)["__consumer_offsets"]; !ok {
		t.Fatalf("list --internal lacks __consumer_offsets:\n%s", out)
	}
	if _, ok := listedTopics(t, out)["x"]; !ok {
		t.Fatalf("list --internal lacks x:\n%s", out)
	}
}

func TestTopicsUsageErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, args := range [][]string{
		{"topics"},
		{"topics", "rename"},
		{"topics", "create"},
		{"topics", "create", "t", "--config", "nokeyvalue"},
		{"topics", "create", "t", "--partitions", "0"},
		{"topics", "delete"},
		{"topics", "list", "--brokers", ""},
		{"produce"},
		{"produce", "--topic", "t", "--acks", "2"},
		{"produce", "--topic", "t", "--header", "novalue"},
		{"consume"},
		{"consume", "--topic", "t", "--output", "xml"},
	} {
		if code, _, errs := cli(ctx, args...); code != 2 {
			t.Errorf("tributary %s: exit %d (stderr %q), want 2", strings.Join(args, " "), code, errs)
		}
	}
	for _, cmd := range [][]string{{"topics", "create"}, {"produce"}, {"consume"}} {
		code, _, errs := cli(ctx, append(cmd, "--help")...)
		if code != 0 || !strings.Contains(errs, "--brokers  [TRIBUTARY_BROKERS]") {
			t.Errorf("%v --help: exit %d, %q", cmd, code, errs)
		}
	}
	code, _, errs := cli(ctx, "topics", "list", "--brokers", "127.0.0.1:1")
	if code != 1 || !strings.Contains(errs, "hint: is a Kafka broker listening at 127.0.0.1:1") {
		t.Errorf("unreachable broker: exit %d, stderr %q", code, errs)
	}
}

// writeLines writes n lines "key-i:value-i:x" to a temp file.
func writeLines(t *testing.T, from, n int) string {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "key-%d:value-%d:x\n", i, i)
	}
	p := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, brokers string) {
		ctx := testCtx(t)
		mustCLI(t, ctx, "topics", "create", "lines", "--brokers", brokers, "--partitions", "1", "--replication-factor", "1")
		_, errs := mustCLI(t, ctx, "produce", "--brokers", brokers, "--topic", "lines", "--file", writeLines(t, 0, 1000),
			"--key-separator", ":", "--header", "source=test", "--header", "list=a,b")
		if !strings.Contains(errs, "produced 1000 records") {
			t.Fatalf("produce stderr: %q", errs)
		}
		out, errs := mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "lines", "--from-beginning",
			"--max-messages", "1000", "--timeout", "15s", "--output", "json")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 1000 || !strings.Contains(errs, "consumed 1000 records") {
			t.Fatalf("consumed %d lines, stderr %q", len(lines), errs)
		}
		for i, l := range lines {
			var r struct {
				Topic     string
				Partition int32
				Offset    int64
				Timestamp int64
				Key       *string
				Value     *string
				Headers   []struct{ Key, Value string }
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("line %d: %v: %q", i, err, l)
			}
			if r.Topic != "lines" || r.Offset != int64(i) || r.Key == nil || *r.Key != fmt.Sprintf("key-%d", i) ||
				r.Value == nil || *r.Value != fmt.Sprintf("value-%d:x", i) || r.Timestamp < time.Now().Add(-time.Hour).UnixMilli() {
				t.Fatalf("record %d: %s", i, l)
			}
			if len(r.Headers) != 2 || r.Headers[0].Key != "source" || r.Headers[0].Value != "test" || r.Headers[1].Key != "list" || r.Headers[1].Value != "a,b" {
				t.Fatalf("record %d headers: %s", i, l)
			}
		}

		// Text output in kafka-console-consumer's layout; --max-messages stops exactly.
		out, _ = mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "lines", "--from-beginning", "--max-messages", "3",
			"--timeout", "15s", "--print-key", "--print-headers", "--print-offset", "--key-separator", "|")
		want := "Partition:0|Offset:0|source:test,list:a,b|key-0|value-0:x\n" +
			"Partition:0|Offset:1|source:test,list:a,b|key-1|value-1:x\n" +
			"Partition:0|Offset:2|source:test,list:a,b|key-2|value-2:x\n"
		if out != want {
			t.Fatalf("text output:\n%s\nwant:\n%s", out, want)
		}

		// Without --from-beginning and without a group only new records come; --timeout ends the wait.
		start := time.Now()
		out, errs = mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "lines", "--timeout", "500ms")
		if out != "" || !strings.Contains(errs, "consumed 0 records (no record for 500ms)") {
			t.Fatalf("consume from the end: stdout %q, stderr %q", out, errs)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("--timeout 500ms took %s", time.Since(start))
		}
	})
}

func TestProduceFailuresNameTheLines(t *testing.T) {
	eachBackend(t, func(t *testing.T, brokers string) {
		ctx := testCtx(t)
		mustCLI(t, ctx, "topics", "create", "f", "--brokers", brokers, "--partitions", "1", "--replication-factor", "1")
		p := filepath.Join(t.TempDir(), "in.txt")
		os.WriteFile(p, []byte("a:1\nb:2\nno separator\nc:3\n:empty key\n"), 0o644)
		code, _, errs := cli(ctx, "produce", "--brokers", brokers, "--topic", "f", "--file", p, "--key-separator", ":")
		if code != 1 || !strings.Contains(errs, "produced 4 records") || !strings.Contains(errs, "line 3: no key separator") || !strings.Contains(errs, "1 of 5 records failed") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		out, _ := mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "f", "--from-beginning", "--max-messages", "4",
			"--timeout", "15s", "--print-key", "--key-separator", "=")
		if out != "a=1\nb=2\nc=3\n=empty key\n" {
			t.Fatalf("consumed %q", out)
		}
		// A partition the topic lacks fails every record, each named.
		code, _, errs = cli(ctx, "produce", "--brokers", brokers, "--topic", "f", "--file", p, "--partition", "7", "--delivery-timeout", "5s")
		if code != 1 || !strings.Contains(errs, "produced 0 records") || !strings.Contains(errs, "line 1: ") || !strings.Contains(errs, "5 of 5 records failed") {
			t.Fatalf("--partition 7: exit %d, stderr %q", code, errs)
		}
	})
}

func TestProduceReadsStdin(t *testing.T) {
	ctx := testCtx(t)
	brokers := testkafka.Broker(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin }()
	go func() { // owner: the pipe; the write ends once produce reads it
		w.WriteString("one\r\n\ntwo")
		w.Close()
	}()
	_, errs := mustCLI(t, ctx, "produce", "--brokers", brokers, "--topic", "stdin")
	if !strings.Contains(errs, "produced 3 records") {
		t.Fatalf("stderr %q", errs)
	}
	out, _ := mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "stdin", "--from-beginning", "--max-messages", "3", "--timeout", "15s", "--print-key")
	if out != "null\tone\nnull\t\nnull\ttwo\n" {
		t.Fatalf("consumed %q", out)
	}
}

func TestConsumeGroupResumesAfterCommitted(t *testing.T) {
	eachBackend(t, func(t *testing.T, brokers string) {
		ctx := testCtx(t)
		mustCLI(t, ctx, "topics", "create", "g", "--brokers", brokers, "--partitions", "1", "--replication-factor", "1")
		mustCLI(t, ctx, "produce", "--brokers", brokers, "--topic", "g", "--file", writeLines(t, 0, 10))
		// The client fetches more than it prints: only the 4 printed are committed.
		out, _ := mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "g", "--group", "cli", "--from-beginning", "--max-messages", "4", "--timeout", "15s")
		if want := "key-0:value-0:x\nkey-1:value-1:x\nkey-2:value-2:x\nkey-3:value-3:x\n"; out != want {
			t.Fatalf("first run: %q, want %q", out, want)
		}
		mustCLI(t, ctx, "produce", "--brokers", brokers, "--topic", "g", "--file", writeLines(t, 10, 5))
		// No --from-beginning: a group without commits would start at the end.
		out, _ = mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "g", "--group", "cli", "--max-messages", "11", "--timeout", "15s")
		var want strings.Builder
		for i := 4; i < 15; i++ {
			fmt.Fprintf(&want, "key-%d:value-%d:x\n", i, i)
		}
		if out != want.String() {
			t.Fatalf("second run:\n%s\nwant:\n%s", out, want.String())
		}
		out, errs := mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "g", "--group", "cli", "--from-beginning", "--timeout", "1s")
		if out != "" || !strings.Contains(errs, "consumed 0 records") {
			t.Fatalf("third run: stdout %q, stderr %q", out, errs)
		}
	})
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConsumeStopsOnInterrupt(t *testing.T) {
	ctx := testCtx(t)
	brokers := testkafka.Broker(t)
	mustCLI(t, ctx, "topics", "create", "i", "--brokers", brokers, "--partitions", "2")
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"consume", "--brokers", brokers, "--topic", "i", "--group", "ig", "--from-beginning"}, &out, &errb)
	}()
	mustCLI(t, ctx, "produce", "--brokers", brokers, "--topic", "i", "--file", writeLines(t, 0, 3))
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), "\n") < 3 {
		if time.Now().After(deadline) {
			interrupt()
			<-done
			t.Fatalf("consume printed %q, stderr %q", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	interrupt()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(errb.String(), "consumed 3 records (interrupted)") {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("consume did not stop after the interrupt")
	}
	// The interrupted run committed what it printed.
	out2, errs := mustCLI(t, ctx, "consume", "--brokers", brokers, "--topic", "i", "--group", "ig", "--from-beginning", "--timeout", "1s")
	if out2 != "" || !strings.Contains(errs, "consumed 0 records") {
		t.Fatalf("after the interrupt the group re-read %q", out2)
	}
}

func TestProduceReadByKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (scripts/install-test-deps.sh installs it)")
	}
	ctx := testCtx(t)
	brokers := testkafka.Broker(t)
	mustCLI(t, ctx, "topics", "create", "k", "--brokers", brokers, "--partitions", "1")
	mustCLI(t, ctx, "produce", "--brokers", brokers, "--topic", "k", "--file", writeLines(t, 0, 100), "--key-separator", ":", "--header", "h=v")
	out, err := exec.CommandContext(ctx, kcat, "-b", brokers, "-C", "-t", "k", "-o", "beginning", "-e", "-q", "-K:").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	var want strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&want, "key-%d:value-%d:x\n", i, i)
	}
	if string(out) != want.String() {
		t.Fatalf("kcat read:\n%s\nwant:\n%s", out, want.String())
	}
	out, err = exec.CommandContext(ctx, kcat, "-b", brokers, "-C", "-t", "k", "-o", "beginning", "-e", "-q", "-c", "1", "-f", "%k|%s|%h|%o\n").CombinedOutput()
	if err != nil || string(out) != "key-0|value-0:x|h=v|0\n" {
		t.Fatalf("kcat -f: %v: %q", err, out)
	}
}

func TestProduceConsumeUnreachableBrokerFailsFast(t *testing.T) {
	ctx := testCtx(t)
	p := writeLines(t, 0, 1)
	for _, args := range [][]string{
		{"produce", "--brokers", "127.0.0.1:1", "--topic", "t", "--file", p},
		{"consume", "--brokers", "127.0.0.1:1", "--topic", "t"},
	} {
		start := time.Now()
		code, _, errs := cli(ctx, args...)
		if code != 1 || !strings.Contains(errs, "is a Kafka broker listening at 127.0.0.1:1?") || time.Since(start) > 10*time.Second {
			t.Errorf("%s: exit %d after %s, stderr %q", args[0], code, time.Since(start), errs)
		}
	}
}
