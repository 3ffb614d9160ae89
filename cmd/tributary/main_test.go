package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBrokerHelpListsKeysAndEnvTwins(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"broker", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--data-dir  [TRIBUTARY_DATA_DIR]", "--listen  [TRIBUTARY_LISTEN]", "log.retention.ms", "num.partitions"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBrokerBadConfigIsAClearError(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "broker.properties")
	os.WriteFile(cfg, []byte("num.partitions=zero\n"), 0o644)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"broker", "--config", cfg, "--data-dir", dir}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "num.partitions") {
		t.Fatalf("exit %d, stderr %q: want a failure naming num.partitions", code, errb.String())
	}
	errb.Reset()
	code = run(context.Background(), []string{"broker", "--set", "nokey"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "key=value") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// The config file, environment twins and flags combine with the documented
// precedence, and the broker starts and stops with the context.
func TestBrokerConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "broker.json")
	os.WriteFile(cfg, []byte(`{"listen":"127.0.0.1:1","data.dir":"`+filepath.Join(dir, "from-file")+`","num.partitions":2}`), 0o644)
	t.Setenv("TRIBUTARY_LISTEN", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"broker", "--config", cfg, "--data-dir", filepath.Join(dir, "from-flag")}, &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "from-flag", "meta.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start in the flag's data dir: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "from-file")); err == nil {
		t.Fatal("the config file's data.dir was used although --data-dir was given")
	}
	if strings.Contains(errb.String(), "127.0.0.1:1 ") || !strings.Contains(errb.String(), "broker listening") {
		t.Fatalf("TRIBUTARY_LISTEN did not override the file: %s", errb.String())
	}
}

func TestWorkerConfigErrorsNameTheKey(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"worker", "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--bootstrap-servers  [TRIBUTARY_BOOTSTRAP_SERVERS]") {
		t.Fatalf("worker --help: exit %d, %q", code, errb.String())
	}
	dir := t.TempDir()
	props := filepath.Join(dir, "connect-distributed.properties")
	os.WriteFile(props, []byte("bootstrap.servers=127.0.0.1:9092\ngroup.id=g\nno.such.worker.key=1\n"), 0o644)
	errb.Reset()
	code := run(context.Background(), []string{"worker", "--config", props, "--plugin-path", dir}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "no.such.worker.key") {
		t.Fatalf("exit %d, stderr %q: want a failure naming the unknown key", code, errb.String())
	}
}
