package taskrun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

var (
	buildOnce sync.Once
	pluginBin string
	buildErr  error
)

func testPlugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "taskrun-plugin-")
		if err != nil {
			buildErr = err
			return
		}
		pluginBin = filepath.Join(dir, plugins.BinaryPrefix+"test")
		if out, err := exec.Command("go", "build", "-o", pluginBin, "../../plugins/testdata/testplugin").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pluginBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBin != "" {
		os.RemoveAll(filepath.Dir(pluginBin))
	}
	os.Exit(code)
}

func launch(t *testing.T) *plugins.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := plugins.Launch(ctx, testPlugin(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// memOffsets records stored offsets; the worker's offset store is tested on
// its own, this keeps the runner test about the runner.
type memOffsets struct {
	mu   sync.Mutex
	last map[string]string
	puts int
}

func (m *memOffsets) Put(_ context.Context, _ string, offs []Offset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]string{}
	}
	for _, o := range offs {
		m.last[string(o.PartitionJSON)] = string(o.OffsetJSON)
	}
	m.puts++
	return nil
}

func (m *memOffsets) get(k string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[k]
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSourceRunnerProducesThenStoresOffsets(t *testing.T) {
	addr := testkafka.Broker(t)
	p := launch(t)
	ctx := context.Background()
	if _, err := p.Plugin.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{Class: "test.Source", Config: map[string]string{
		"topic": "src-out", "task": "0", "batch": "500",
		"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}}); err != nil {
		t.Fatal(p.Err(err))
	}
	prod := client(t, addr, kgo.RequiredAcks(kgo.AllISRAcks()))
	offs := &memOffsets{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunSource(runCtx, SourceConfig{Connector: "src", Plugin: p.Plugin, PluginErr: p.Err, Producer: prod, Offsets: offs, OffsetFlushInterval: 50 * time.Millisecond})
	}()
	waitFor(t, 20*time.Second, "offsets past 5000", func() bool {
		var o struct{ N int64 }
		json.Unmarshal([]byte(offs.get(`{"task":"0"}`)), &o)
		return o.N >= 5000
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var last struct{ N int64 }
	json.Unmarshal([]byte(offs.get(`{"task":"0"}`)), &last)
	// Every record up to the stored offset is in the topic, in order.
	cons := client(t, addr, kgo.ConsumeTopics("src-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	want := int64(0)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for want <= last.N {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("topic has records up to %d, stored offset is %d", want-1, last.N)
		}
		for _, r := range fs.Records() {
			if string(r.Value) != fmt.Sprint(want) || string(r.Key) != fmt.Sprint("k", want) {
				t.Fatalf("record %d: key %q value %q", want, r.Key, r.Value)
			}
			want++
		}
	}
}

func TestSinkRunnerFlushesThenCommits(t *testing.T) {
	addr := testkafka.Broker(t)
	prod := client(t, addr)
	for i := 0; i < 2000; i++ {
		v := fmt.Sprintf(`{"i":%d}`, i)
		if i%500 == 7 {
			v = "not json" // tolerated, goes to the DLQ
		}
		prod.Produce(context.Background(), &kgo.Record{Topic: "sink-in", Key: []byte(fmt.Sprint(i)), Value: []byte(v)}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := launch(t)
	out := filepath.Join(t.TempDir(), "out.txt")
	ctx := context.Background()
	if _, err := p.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "test.Sink", Config: map[string]string{
		"topic": "x", "file": out, "errors.tolerance": "all",
		"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}}); err != nil {
		t.Fatal(p.Err(err))
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunSink(runCtx, SinkConfig{Connector: "snk", Plugin: p.Plugin, PluginErr: p.Err, Brokers: []string{addr}, Group: "connect-snk",
			Topics: []string{"sink-in"}, Producer: prod, DLQTopic: "snk-dlq", DLQContextHeaders: true, OffsetFlushInterval: 50 * time.Millisecond})
	}()
	adm := kadm.NewClient(client(t, addr))
	waitFor(t, 30*time.Second, "commits to reach 2000", func() bool {
		o, err := adm.FetchOffsets(ctx, "connect-snk")
		if err != nil {
			return false
		}
		c, ok := o.Lookup("sink-in", 0)
		return ok && c.At == 2000
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "sink-in/0@") {
			t.Fatalf("line %q", sc.Text())
		}
		n++
	}
	if n != 2000-4 {
		t.Fatalf("sink wrote %d lines, want 1996 (2000 minus 4 bad records)", n)
	}
	// The 4 bad records are in the dead letter queue with context headers.
	dlq := client(t, addr, kgo.ConsumeTopics("snk-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var bad []*kgo.Record
	for len(bad) < 4 && rctx.Err() == nil {
		bad = append(bad, dlq.PollFetches(rctx).Records()...)
	}
	if len(bad) != 4 || string(bad[0].Value) != "not json" {
		t.Fatalf("dead letter queue holds %d records", len(bad))
	}
	hdr := map[string]string{}
	for _, h := range bad[0].Headers {
		hdr[h.Key] = string(h.Value)
	}
	if hdr["__connect.errors.stage"] != "VALUE_CONVERTER" || hdr["__connect.errors.offset"] != "7" || hdr["__connect.errors.topic"] != "sink-in" {
		t.Fatalf("DLQ headers %v", hdr)
	}
}

// A plugin that crashes mid-run fails the runner with the plugin's last words.
func TestSourceRunnerFailsWithPluginCrash(t *testing.T) {
	addr := testkafka.Broker(t)
	p := launch(t)
	if _, err := p.Plugin.StartSourceTask(context.Background(), &pluginpb.StartSourceTaskRequest{Class: "test.Source", Config: map[string]string{"topic": "t", "misbehave": "crash"}}); err != nil {
		t.Fatal(p.Err(err))
	}
	err := RunSource(context.Background(), SourceConfig{Connector: "c", Plugin: p.Plugin, PluginErr: p.Err, Producer: client(t, addr), Offsets: &memOffsets{}})
	if err == nil || !strings.Contains(err.Error(), "background goroutine crashed") {
		t.Fatalf("runner error: %v", err)
	}
}

func startSourceTask(t *testing.T, misbehave string) *plugins.Process {
	t.Helper()
	p := launch(t)
	if _, err := p.Plugin.StartSourceTask(context.Background(), &pluginpb.StartSourceTaskRequest{Class: "test.Source", Config: map[string]string{"topic": "retry", "task": "0", "misbehave": misbehave}}); err != nil {
		t.Fatal(p.Err(err))
	}
	return p
}

// Retriable failures are retried within errors.retry.timeout and fail the
// task at once without it; a plugin that stops answering fails its task.
func TestSourceRunnerRetriesAndDetectsHangs(t *testing.T) {
	addr := testkafka.Broker(t)
	prod := client(t, addr)

	p := startSourceTask(t, "retriable")
	err := RunSource(context.Background(), SourceConfig{Connector: "c", Plugin: p.Plugin, PluginErr: p.Err, Producer: prod, Offsets: &memOffsets{}})
	if err == nil || !strings.Contains(err.Error(), "briefly unavailable") {
		t.Fatalf("without errors.retry.timeout: %v, want the retriable error", err)
	}

	p = startSourceTask(t, "retriable")
	offs := &memOffsets{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunSource(ctx, SourceConfig{Connector: "c", Plugin: p.Plugin, PluginErr: p.Err, Producer: prod, Offsets: offs,
			OffsetFlushInterval: 20 * time.Millisecond, Retry: Retry{Timeout: 10 * time.Second, MaxDelay: 50 * time.Millisecond}})
	}()
	waitFor(t, 15*time.Second, "records after the retries", func() bool { return offs.get(`{"task":"0"}`) != "" })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("with retries: %v", err)
	}

	p = startSourceTask(t, "hang")
	err = RunSource(context.Background(), SourceConfig{Connector: "c", Plugin: p.Plugin, PluginErr: p.Err, Producer: prod, Offsets: &memOffsets{}, Retry: Retry{CallTimeout: 300 * time.Millisecond}})
	if !errors.Is(err, errHung) {
		t.Fatalf("hung plugin: %v, want errHung", err)
	}
}

// A topics.regex sink picks up a matching topic created after it started
// within seconds (metadata refreshed every 10 s), not the client default of
// minutes.
func TestSinkRunnerRegexFindsNewTopics(t *testing.T) {
	addr := testkafka.Broker(t)
	prod := client(t, addr)
	p := launch(t)
	out := filepath.Join(t.TempDir(), "out.txt")
	ctx := context.Background()
	if _, err := p.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "test.Sink", Config: map[string]string{
		"topic": "x", "file": out, "key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}}); err != nil {
		t.Fatal(p.Err(err))
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunSink(runCtx, SinkConfig{Connector: "rx", Plugin: p.Plugin, PluginErr: p.Err, Brokers: []string{addr}, Group: "connect-rx",
			TopicsRegex: `cdc\..*`, Producer: prod, OffsetFlushInterval: 50 * time.Millisecond})
	}()
	time.Sleep(2 * time.Second) // the consumer has joined with no matching topic
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "cdc.orders", Key: []byte("k"), Value: []byte(`{"i":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(client(t, addr))
	start := time.Now()
	waitFor(t, 30*time.Second, "the record of the new topic committed", func() bool {
		o, err := adm.FetchOffsets(ctx, "connect-rx")
		if err != nil {
			return false
		}
		c, ok := o.Lookup("cdc.orders", 0)
		return ok && c.At == 1
	})
	t.Logf("a topic created after the sink started was consumed within %v", time.Since(start).Round(100*time.Millisecond))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
