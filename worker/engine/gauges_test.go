package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connectors/file"
	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// gaugedSource is the file source whose task also exports a gauge.
type gaugedSource struct{ *file.Source }

func (s gaugedSource) NewTask() connect.SourceTask { return gaugedTask{s.Source.NewTask()} }

type gaugedTask struct{ connect.SourceTask }

func (gaugedTask) Metrics() []connect.Metric {
	return []connect.Metric{{Name: "test_lag_bytes", Help: "A test gauge.", Value: 42}}
}

type oneSourceClass struct{}

func (oneSourceClass) Binary(string) (string, pluginpb.ConnectorType, error) {
	return "in-process", pluginpb.ConnectorType_CONNECTOR_TYPE_SOURCE, nil
}

// A running task's own gauges are collected at each scrape, labelled with
// the connector and task.
func TestTaskGauges(t *testing.T) {
	addr := testkafka.Broker(t)
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	in := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(in, []byte("a\nb\n"), 0o644)
	w := &world{offsets: map[string]map[string]string{}, states: map[string]string{}}
	w.desired = Desired{"src": {TargetState: TargetStarted, Tasks: []map[string]string{{"file": in, "topic": "lines"}},
		Config: map[string]string{"connector.class": "gauged", "file": in, "topic": "lines", "tasks.max": "1"}}}
	launch := plugins.InProcessLauncher(plugins.Class{Name: "gauged", New: func() connect.Connector { return gaugedSource{file.NewSource().(*file.Source)} }})
	w.engine = New(Options{Logger: testLogger(), Brokers: []string{addr}, Plugins: oneSourceClass{}, Offsets: w, TaskConfigs: w, States: w,
		Producer: prod, OffsetFlushInterval: 100 * time.Millisecond, Launch: launch})
	defer w.engine.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.engine.TaskGauges())
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before anything runs: %d gauges, %v", n, err)
	}
	if err := w.engine.Apply(context.Background(), cloneDesired(w.desired)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the task RUNNING", func() bool { return strings.HasPrefix(w.state("src-0"), StateRunning) })
	want := `
# HELP tributary_connector_task_test_lag_bytes A test gauge.
# TYPE tributary_connector_task_test_lag_bytes gauge
tributary_connector_task_test_lag_bytes{connector="src",task="0"} 42
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
