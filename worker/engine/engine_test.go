package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/worker/taskrun"
)

var (
	buildOnce sync.Once
	pluginDir string
	buildErr  error
)

// filePlugin builds the real file connector plugin once.
func filePlugin(t *testing.T) *plugins.Registry {
	t.Helper()
	buildOnce.Do(func() {
		pluginDir, buildErr = os.MkdirTemp("", "engine-plugins-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(pluginDir, plugins.BinaryPrefix+"file"), "../../cmd/tributary-connector-file").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bins, err := plugins.Discover(ctx, pluginDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plugins.NewRegistry(bins)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

// fakeConfigTopic stands in for the herder: it keeps the desired state,
// stores task configs the connectors produce, and re-applies.
type world struct {
	mu      sync.Mutex
	desired Desired
	engine  *Engine
	offsets map[string]map[string]string
	states  map[string]string
}

func (w *world) PutTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error {
	w.mu.Lock()
	c := w.desired[name]
	c.Tasks = tasks
	w.desired[name] = c
	d := cloneDesired(w.desired)
	w.mu.Unlock()
	go w.engine.Apply(context.Background(), d)
	return nil
}

func (w *world) Get(_ context.Context, name string) ([]taskrun.Offset, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []taskrun.Offset
	for p, o := range w.offsets[name] {
		out = append(out, taskrun.Offset{PartitionJSON: []byte(p), OffsetJSON: []byte(o)})
	}
	return out, nil
}

func (w *world) Put(_ context.Context, name string, offs []taskrun.Offset) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.offsets[name] == nil {
		w.offsets[name] = map[string]string{}
	}
	for _, o := range offs {
		w.offsets[name][string(o.PartitionJSON)] = string(o.OffsetJSON)
	}
	return nil
}

func (w *world) ConnectorState(name, state, trace string) {
	w.mu.Lock()
	w.states[name] = state + " " + trace
	w.mu.Unlock()
}

func (w *world) TaskState(name string, task int, state, trace string) {
	w.mu.Lock()
	w.states[fmt.Sprintf("%s-%d", name, task)] = state + " " + trace
	w.mu.Unlock()
}

func (w *world) TopicUsed(name string, task int, topic string) {
	w.mu.Lock()
	w.states[fmt.Sprintf("%s-%d-topic-%s", name, task, topic)] = "used"
	w.mu.Unlock()
}

func (w *world) state(k string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.states[k]
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func lines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// File source -> broker -> file sink through real plugin processes; pause
// and resume; stop and start again resumes from the stored offsets.
func TestFilePipeline(t *testing.T) {
	reg := filePlugin(t)
	addr := testkafka.Broker(t)
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	var sb strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&sb, "line-%05d\n", i)
	}
	os.WriteFile(in, []byte(sb.String()), 0o644)

	w := &world{offsets: map[string]map[string]string{}, states: map[string]string{}}
	w.desired = Desired{
		"src": {TargetState: TargetStarted, Config: map[string]string{"connector.class": "FileStreamSource", "file": in, "topic": "lines", "tasks.max": "1",
			"value.converter": "org.apache.kafka.connect.storage.StringConverter"}},
		"snk": {TargetState: TargetStarted, Config: map[string]string{"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "file": out, "topics": "lines", "tasks.max": "1",
			"value.converter": "org.apache.kafka.connect.storage.StringConverter"}},
	}
	w.engine = New(Options{Logger: testLogger(), Brokers: []string{addr}, Plugins: reg, Offsets: w, TaskConfigs: w, States: w, Producer: prod, OffsetFlushInterval: 100 * time.Millisecond})
	defer w.engine.Close()
	if err := w.engine.Apply(context.Background(), cloneDesired(w.desired)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "5000 lines in the sink file", func() bool { return len(lines(out)) >= 5000 })
	if got := lines(out); len(got) != 5000 || got[0] != "line-00000" || got[4999] != "line-04999" {
		t.Fatalf("sink file: %d lines, first %q", len(got), got[0])
	}
	if w.state("src-0-topic-lines") != "used" {
		t.Fatal("the source's use of topic lines was not reported")
	}
	if !strings.HasPrefix(w.state("src-0"), StateRunning) || !strings.HasPrefix(w.state("snk"), StateRunning) {
		t.Fatalf("states: src-0=%q snk=%q", w.state("src-0"), w.state("snk"))
	}

	// Stop everything; append lines; start again: only the new lines flow.
	if err := w.engine.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	for i := 5000; i < 6000; i++ {
		fmt.Fprintf(f, "line-%05d\n", i)
	}
	f.Close()
	w.mu.Lock()
	w.engine = New(Options{Logger: testLogger(), Brokers: []string{addr}, Plugins: reg, Offsets: w, TaskConfigs: w, States: w, Producer: prod, OffsetFlushInterval: 100 * time.Millisecond})
	d := cloneDesired(w.desired)
	w.mu.Unlock()
	defer w.engine.Close()
	if err := w.engine.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "6000 lines in the sink file", func() bool { return len(lines(out)) >= 6000 })
	time.Sleep(300 * time.Millisecond)
	got := lines(out)
	seen := map[string]int{}
	for _, l := range got {
		seen[l]++
	}
	if len(seen) != 6000 {
		t.Fatalf("%d distinct lines, want 6000", len(seen))
	}
	t.Logf("%d lines written, %d duplicates after the restart", len(got), len(got)-6000)
}

func TestUnknownClassFailsConnector(t *testing.T) {
	reg := filePlugin(t)
	w := &world{offsets: map[string]map[string]string{}, states: map[string]string{}}
	w.desired = Desired{"bad": {TargetState: TargetStarted, Config: map[string]string{"connector.class": "NoSuchConnector"}}}
	w.engine = New(Options{Plugins: reg, Offsets: w, TaskConfigs: w, States: w})
	defer w.engine.Close()
	w.engine.Apply(context.Background(), cloneDesired(w.desired))
	waitFor(t, 10*time.Second, "FAILED state", func() bool { return strings.HasPrefix(w.state("bad"), StateFailed) })
	if s := w.state("bad"); !strings.Contains(s, "FileStreamSource") {
		t.Fatalf("the trace should list the installed classes: %q", s)
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}
