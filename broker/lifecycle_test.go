package broker

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Close stops every goroutine the broker started (connections, flushers,
// group timers, maintenance, metrics server), and a second Close is a no-op.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := Default()
	cfg.Listen, cfg.MetricsListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	b, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("life"), kgo.ConsumerGroup("life-g"), kgo.ConsumeTopics("life"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(testCtx(t, 10*time.Second))
	if len(fs.Records()) != 1 {
		t.Fatalf("consumed %d records", len(fs.Records()))
	}
	// Close the broker while the client is still connected, in a group.
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a connected client", took)
	}
	t.Logf("Close took %v", time.Since(start))
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			var ours []string
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "tributary/broker") {
					ours = append(ours, g)
				}
			}
			t.Fatalf("%d goroutines before Open, %d after Close; broker goroutines left:\n%s", before, runtime.NumGoroutine(), strings.Join(ours, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
