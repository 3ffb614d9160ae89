package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/broker"
)

func TestPerfProduceConsumeAgainstBroker(t *testing.T) {
	cfg := broker.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	b, err := broker.Open(cfg, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"perf", "produce", "--brokers", b.Addr(), "--topic", "p", "--records", "20000", "--record-size", "100", "--acks", "all"}, &out, &errb); code != 0 {
		t.Fatalf("perf produce exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "20000") && !strings.Contains(out.String(), "20,000") {
		t.Fatalf("produce output does not report 20000 records: %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"perf", "consume", "--brokers", b.Addr(), "--topic", "p", "--records", "20000"}, &out, &errb); code != 0 {
		t.Fatalf("perf consume exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "20000") && !strings.Contains(out.String(), "20,000") {
		t.Fatalf("consume output does not report 20000 records: %q", out.String())
	}
	if code := run(ctx, []string{"perf", "produce", "--records", "-1"}, &out, &errb); code != 2 {
		t.Fatalf("bad --records: exit %d, want 2", code)
	}
}
