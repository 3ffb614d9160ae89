package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDevCommand runs `tributary dev` (embedded broker + one worker): the
// worker becomes healthy, a Kafka client can produce to and consume from the
// embedded broker, GET / shows the version, the broker's metrics are served,
// and SIGTERM ends the process with status 0 within 15 s.
func TestDevCommand(t *testing.T) {
	kafka, restHP, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
	rest := "http://" + restHP
	p := startProc(t, "dev", "tributary", "dev", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--kafka-listen", kafka, "--rest-listen", restHP, "--metrics-listen", metrics)
	waitHealthy(t, rest, p, 60*time.Second)

	var root struct {
		Version        string `json:"version"`
		Commit         string `json:"commit"`
		KafkaClusterID string `json:"kafka_cluster_id"`
	}
	if err := json.Unmarshal(mustHTTP(t, rest+"/", http.MethodGet, nil, http.StatusOK), &root); err != nil {
		t.Fatal(err)
	}
	if root.Version == "" || root.KafkaClusterID == "" {
		t.Fatalf("GET / = %+v: want a version and a kafka_cluster_id", root)
	}
	t.Logf("GET / = %+v", root)
	mustHTTP(t, "http://"+metrics+"/metrics", http.MethodGet, nil, http.StatusOK)

	// Produce and consume through the embedded broker's Kafka port.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, records = "dev-check", 100
	prod, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var batch []*kgo.Record
	for i := 0; i < records; i++ {
		batch = append(batch, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatalf("producing to the dev broker: %v", err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < records {
		fetches := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), records, err)
		}
		fetches.EachError(func(tp string, part int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, part, err) })
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if want := fmt.Sprintf("value-%d", i); v != want {
			t.Fatalf("record %d = %q, want %q", i, v, want)
		}
	}
	if len(got) != records {
		t.Fatalf("consumed %d records, want %d", len(got), records)
	}
	cons.Close()
	prod.Close()

	// SIGTERM: a graceful exit with status 0.
	start := time.Now()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("tributary dev still running 15 s after SIGTERM")
	}
	if p.waitErr != nil {
		t.Fatalf("tributary dev after SIGTERM: %v, want exit status 0", p.waitErr)
	}
	t.Logf("tributary dev exited 0 %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
