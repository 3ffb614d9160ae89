package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// pluginDir builds testdata/testplugin once into a plugin.path-like folder.
func pluginDir(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tributary-plugins-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, BinaryPrefix+"test"), "./testdata/testplugin").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building the test plugin: %v", buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func launch(t *testing.T) *Process {
	t.Helper()
	p, err := Launch(ctxT(t), filepath.Join(pluginDir(t), BinaryPrefix+"test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestDiscoverDescribesClasses(t *testing.T) {
	dir := pluginDir(t)
	bins, err := Discover(ctxT(t), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 1 || len(bins[0].Classes) != 2 {
		t.Fatalf("discovered %+v", bins)
	}
	src := bins[0].Classes[0]
	if src.Class != "test.Source" || src.Type != pluginpb.ConnectorType_CONNECTOR_TYPE_SOURCE || src.Version != "1.0.0-test" || src.Aliases[0] != "TestSource" {
		t.Fatalf("source class: %+v", src)
	}
	var keys []map[string]any
	if err := json.Unmarshal(src.ConfigDefJson, &keys); err != nil || len(keys) != 5 {
		t.Fatalf("config def %s: %v", src.ConfigDefJson, err)
	}
	if strings.Join(src.PasswordKeys, ",") != "secret,legacy.secret" {
		t.Fatalf("password keys %v, want the key and its alias", src.PasswordKeys)
	}
	if bins[0].Classes[1].Type != pluginpb.ConnectorType_CONNECTOR_TYPE_SINK {
		t.Fatal("sink class not a sink")
	}
}

func TestValidateMergesConfigDefAndConnectorErrors(t *testing.T) {
	p := launch(t)
	resp, err := p.Plugin.Validate(ctxT(t), &pluginpb.ValidateRequest{Class: "TestSource", Config: map[string]string{"batch": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Errors["topic"].GetMessages()) == 0 || len(resp.Errors["batch"].GetMessages()) == 0 {
		t.Fatalf("want errors for topic (missing) and batch (< 1): %v", resp.Errors)
	}
	resp, err = p.Plugin.Validate(ctxT(t), &pluginpb.ValidateRequest{Class: "test.Source", Config: map[string]string{"topic": "forbidden"}})
	if err != nil {
		t.Fatal(err)
	}
	if msgs := resp.Errors["topic"].GetMessages(); len(msgs) != 1 || !strings.Contains(msgs[0], "not allowed") {
		t.Fatalf("connector's own validation: %v", resp.Errors)
	}
}

// A source task resumes after its stored offset, and its records leave the
// plugin converted (JSON with schemas, as Kafka Connect's default).
func TestSourceTaskResumesAndConverts(t *testing.T) {
	p := launch(t)
	ctx := ctxT(t)
	_, err := p.Plugin.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{
		Class:   "test.Source",
		Config:  map[string]string{"topic": "out", "task": "0", "key.converter": "org.apache.kafka.connect.storage.StringConverter"},
		Offsets: []*pluginpb.PartitionOffset{{PartitionJson: []byte(`{"task":"0"}`), OffsetJson: []byte(`{"n":41}`)}},
	})
	if err != nil {
		t.Fatal(p.Err(err))
	}
	poll, err := p.Plugin.Poll(ctx, &pluginpb.PollRequest{})
	if err != nil {
		t.Fatal(p.Err(err))
	}
	records, err := UnpackProduced(poll.Packed)
	if err != nil {
		t.Fatal(err)
	}
	resp := &pluginpb.PollResponse{Records: records}
	if len(resp.Records) != 3 {
		t.Fatalf("%d records", len(resp.Records))
	}
	r := resp.Records[0]
	if r.Topic != "out" || string(r.Key) != "k42" || string(r.Value) != `{"schema":{"type":"int64","optional":false},"payload":42}` {
		t.Fatalf("first record: topic %q key %q value %s", r.Topic, r.Key, r.Value)
	}
	// Only the last record of each source partition carries its partition
	// and offset: the worker stores the latest one per partition and batch.
	if len(r.SourceOffsetJson) != 0 || len(r.SourcePartitionJson) != 0 || r.TimestampMs != 1_700_000_000_042 {
		t.Fatalf("offset %s partition %s ts %d", r.SourceOffsetJson, r.SourcePartitionJson, r.TimestampMs)
	}
	if last := resp.Records[2]; string(last.SourceOffsetJson) != `{"n":44}` || string(last.SourcePartitionJson) != `{"task":"0"}` {
		t.Fatalf("last record's partition %s offset %s, want {\"task\":\"0\"} {\"n\":44}", last.SourcePartitionJson, last.SourceOffsetJson)
	}
	r = resp.Records[2]
	if len(r.Headers) != 1 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != "v" {
		t.Fatalf("headers %v", r.Headers)
	}
	if _, err := p.Plugin.CommitSource(ctx, &pluginpb.CommitSourceRequest{Committed: []*pluginpb.PartitionOffset{{PartitionJson: r.SourcePartitionJson, OffsetJson: r.SourceOffsetJson}}}); err != nil {
		t.Fatal(p.Err(err))
	}
	if _, err := p.Plugin.StopTask(ctx, &pluginpb.StopRequest{}); err != nil {
		t.Fatal(p.Err(err))
	}
}

func TestSinkTaskPutFlushAndTolerance(t *testing.T) {
	p := launch(t)
	ctx := ctxT(t)
	out := filepath.Join(t.TempDir(), "sink.txt")
	_, err := p.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "test.Sink", Config: map[string]string{
		"topic": "in", "file": out, "errors.tolerance": "all",
		"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}})
	if err != nil {
		t.Fatal(p.Err(err))
	}
	if _, err := p.Plugin.OpenPartitions(ctx, &pluginpb.PartitionsRequest{Partitions: []*pluginpb.TopicPartition{{Topic: "in", Partition: 0}}}); err != nil {
		t.Fatal(p.Err(err))
	}
	put, err := p.Plugin.Put(ctx, &pluginpb.PutRequest{Records: []*pluginpb.ConsumedRecord{
		{Topic: "in", Partition: 0, Offset: 7, Key: []byte("a"), Value: []byte(`{"x":1}`)},
		{Topic: "in", Partition: 0, Offset: 8, Key: []byte("b"), Value: []byte(`{not json`)},
		{Topic: "in", Partition: 0, Offset: 9, Key: []byte("c"), Value: []byte(`"s"`)},
	}})
	if err != nil {
		t.Fatal(p.Err(err))
	}
	if len(put.Failed) != 1 || put.Failed[0].Index != 1 || put.Failed[0].Stage != "VALUE_CONVERTER" {
		t.Fatalf("failed records: %v", put.Failed)
	}
	if _, err := p.Plugin.Flush(ctx, &pluginpb.FlushRequest{Offsets: []*pluginpb.PartitionOffsetNext{{Partition: &pluginpb.TopicPartition{Topic: "in"}, NextOffset: 10}}}); err != nil {
		t.Fatal(p.Err(err))
	}
	got, _ := os.ReadFile(out)
	if string(got) != "in/0@7 a=map[x:1]\nin/0@9 c=s\n" {
		t.Fatalf("sink wrote %q", got)
	}
}

// A sink task reports a record it cannot write (connect.ErrantRecordReporter):
// with errors.tolerance=all it comes back as failed at stage TASK_PUT (the
// worker sends it to the dead letter queue) and the others are written;
// without, Put fails naming the record.
func TestSinkTaskReportsErrantRecords(t *testing.T) {
	for _, tolerance := range []string{"all", "none"} {
		t.Run(tolerance, func(t *testing.T) {
			p := launch(t)
			ctx := ctxT(t)
			out := filepath.Join(t.TempDir(), "sink.txt")
			if _, err := p.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "test.Sink", Config: map[string]string{
				"topic": "in", "file": out, "errors.tolerance": tolerance, "misbehave": "errant",
				"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
			}}); err != nil {
				t.Fatal(p.Err(err))
			}
			put, err := p.Plugin.Put(ctx, &pluginpb.PutRequest{Records: []*pluginpb.ConsumedRecord{
				{Topic: "in", Partition: 0, Offset: 7, Key: []byte("a"), Value: []byte(`1`)},
				{Topic: "in", Partition: 0, Offset: 8, Key: []byte("b"), Value: []byte(`{not json`)},
				{Topic: "in", Partition: 0, Offset: 9, Key: []byte("bad"), Value: []byte(`2`)},
				{Topic: "in", Partition: 0, Offset: 10, Key: []byte("c"), Value: []byte(`3`)},
			}})
			if tolerance == "none" {
				// The converter failure comes first and fails the Put.
				if err == nil {
					t.Fatal("Put succeeded with errors.tolerance=none")
				}
				return
			}
			if err != nil {
				t.Fatal(p.Err(err))
			}
			if len(put.Failed) != 2 || put.Failed[0].Index != 1 || put.Failed[0].Stage != "VALUE_CONVERTER" ||
				put.Failed[1].Index != 2 || put.Failed[1].Stage != "TASK_PUT" || !strings.Contains(put.Failed[1].Error, "keyed bad") {
				t.Fatalf("failed records: %v", put.Failed)
			}
			if got, _ := os.ReadFile(out); string(got) != "in/0@7 a=1\nin/0@10 c=3\n" {
				t.Fatalf("sink wrote %q", got)
			}
		})
	}
	// Without tolerance, the task's report is the error Put fails with.
	p := launch(t)
	ctx := ctxT(t)
	if _, err := p.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "test.Sink", Config: map[string]string{
		"topic": "in", "file": filepath.Join(t.TempDir(), "sink.txt"), "misbehave": "errant",
		"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}}); err != nil {
		t.Fatal(p.Err(err))
	}
	_, err := p.Plugin.Put(ctx, &pluginpb.PutRequest{Records: []*pluginpb.ConsumedRecord{
		{Topic: "in", Partition: 0, Offset: 9, Key: []byte("bad"), Value: []byte(`2`)},
	}})
	if err == nil || !strings.Contains(err.Error(), "in/0@9") || !strings.Contains(err.Error(), "keyed bad") {
		t.Fatalf("Put with an errant record and no tolerance: %v", err)
	}
}

// A connector that panics fails its call with the panic and its stack; one
// that kills its process fails with ErrPluginExited and its last output.
// Either way the host goes on.
func TestCrashingPluginGivesReadableErrors(t *testing.T) {
	start := func(misbehave string) (*Process, error) {
		p := launch(t)
		_, err := p.Plugin.StartSourceTask(ctxT(t), &pluginpb.StartSourceTaskRequest{Class: "test.Source", Config: map[string]string{"topic": "t", "misbehave": misbehave}})
		if err != nil {
			t.Fatal(p.Err(err))
		}
		_, err = p.Plugin.Poll(ctxT(t), &pluginpb.PollRequest{})
		return p, p.Err(err)
	}
	_, err := start("panic")
	if err == nil || !strings.Contains(err.Error(), "told to panic in Poll") || !strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("panic: %v", err)
	}
	p, err := start("exit")
	if !errors.Is(err, ErrPluginExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("hard exit: %v", err)
	}
	if !p.Exited() {
		t.Fatal("process still running")
	}
	_, err = start("crash")
	if !errors.Is(err, ErrPluginExited) || !strings.Contains(err.Error(), "background goroutine crashed") || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("crash: %v", err)
	}
	// A fresh process of the same plugin works: restart recovers.
	q := launch(t)
	if _, err := q.Plugin.Describe(ctxT(t), &pluginpb.DescribeRequest{}); err != nil {
		t.Fatal(q.Err(err))
	}
}

func TestPluginRunByHandExplainsItself(t *testing.T) {
	out, err := exec.Command(filepath.Join(pluginDir(t), BinaryPrefix+"test")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "plugin.path") {
		t.Fatalf("exit %v, output %q", err, out)
	}
}

// A task's own gauges (connect.MetricsReporter) reach the worker through
// Metrics; names Prometheus would refuse are dropped.
func TestTaskMetrics(t *testing.T) {
	p := launch(t)
	ctx := ctxT(t)
	if resp, err := p.Plugin.Metrics(ctx, &pluginpb.MetricsRequest{}); err != nil || len(resp.Metrics) != 0 {
		t.Fatalf("before a task runs: %v, %v; want no gauges", resp, err)
	}
	if _, err := p.Plugin.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{Class: "test.Source", Config: map[string]string{"topic": "out", "task": "0"}}); err != nil {
		t.Fatal(p.Err(err))
	}
	if _, err := p.Plugin.Poll(ctx, &pluginpb.PollRequest{}); err != nil {
		t.Fatal(p.Err(err))
	}
	resp, err := p.Plugin.Metrics(ctx, &pluginpb.MetricsRequest{})
	if err != nil {
		t.Fatal(p.Err(err))
	}
	if len(resp.Metrics) != 1 || resp.Metrics[0].Name != "test_polled_records" || resp.Metrics[0].Value < 3 {
		t.Fatalf("gauges %v, want test_polled_records >= 3 only", resp.Metrics)
	}
}
