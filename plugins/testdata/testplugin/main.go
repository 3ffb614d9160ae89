// Command testplugin is a connector plugin used by the plugins tests: a
// source emitting numbered records from a stored offset, and a sink
// appending what it receives to a file. Config keys make it misbehave.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/plugins"
)

func def() *connect.ConfigDef {
	return connect.NewConfigDef().
		Define(connect.ConfigKey{Name: "topic", Type: connect.TypeString, Required: true, Importance: connect.High, Doc: "topic to write to"}).
		Define(connect.ConfigKey{Name: "batch", Type: connect.TypeInt, Default: "3", Importance: connect.Low, Doc: "records per poll", Validator: connect.AtLeast(1)}).
		Define(connect.ConfigKey{Name: "misbehave", Type: connect.TypeString, Default: "", Importance: connect.Low, Doc: "panic or exit during poll/put"}).
		Define(connect.ConfigKey{Name: "file", Type: connect.TypeString, Default: "", Importance: connect.Low, Doc: "sink output file"}).
		Define(connect.ConfigKey{Name: "secret", Type: connect.TypePassword, Default: "", Aliases: []string{"legacy.secret"}, Importance: connect.Low, Doc: "a password, masked by the worker"})
}

type conn struct{ cfg map[string]string }

func (c *conn) Version() string               { return "1.0.0-test" }
func (c *conn) ConfigDef() *connect.ConfigDef { return def() }
func (c *conn) Validate(_ context.Context, cfg map[string]string) (map[string][]string, error) {
	if cfg["topic"] == "forbidden" {
		return map[string][]string{"topic": {"topic \"forbidden\" is not allowed"}}, nil
	}
	return nil, nil
}
func (c *conn) Start(_ context.Context, _ connect.ConnectorContext, cfg map[string]string) error {
	c.cfg = cfg
	return nil
}
func (c *conn) TaskConfigs(_ context.Context, max int) ([]map[string]string, error) {
	var out []map[string]string
	for i := 0; i < max; i++ {
		t := map[string]string{"task": strconv.Itoa(i)}
		for k, v := range c.cfg {
			t[k] = v
		}
		out = append(out, t)
	}
	return out, nil
}
func (c *conn) Stop(context.Context) error { return nil }

type source struct{ conn }

func (s *source) NewTask() connect.SourceTask { return &sourceTask{} }

type sourceTask struct {
	cfg     map[string]string
	next    int64
	retries int
	polled  atomic.Int64 // for Metrics, which may run during Poll
}

// Metrics exports the records polled so far, and a gauge with a name the
// plugin must drop.
func (t *sourceTask) Metrics() []connect.Metric {
	return []connect.Metric{
		{Name: "test_polled_records", Help: "Records polled so far.", Value: float64(t.polled.Load())},
		{Name: "Bad-Name", Value: 1},
	}
}

func (t *sourceTask) Start(ctx context.Context, tc connect.SourceTaskContext, cfg map[string]string) error {
	t.cfg = cfg
	offs, err := tc.Offsets(ctx, []map[string]any{{"task": cfg["task"]}})
	if err != nil {
		return err
	}
	if len(offs) == 1 {
		t.next = offs[0].Offset["n"].(int64) + 1
	}
	return nil
}

func (t *sourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	switch t.cfg["misbehave"] {
	case "panic":
		panic("testplugin: told to panic in Poll")
	case "exit":
		os.Exit(3)
	case "retriable":
		if t.retries < 3 {
			t.retries++
			return nil, fmt.Errorf("%w: the source is briefly unavailable (%d)", connect.ErrRetriable, t.retries)
		}
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	case "crash":
		// An unrecovered panic off the call path kills the process, as a
		// bug in a connector's background goroutine would.
		go func() { panic("testplugin: background goroutine crashed") }()
		time.Sleep(5 * time.Second)
	}
	n, _ := strconv.Atoi(t.cfg["batch"])
	if n == 0 {
		n = 3
	}
	var out []connect.SourceRecord
	for i := 0; i < n; i++ {
		out = append(out, connect.SourceRecord{
			Record: connect.Record{
				Topic: t.cfg["topic"], KeySchema: connect.StringSchema, Key: fmt.Sprint("k", t.next),
				ValueSchema: connect.Int64Schema, Value: t.next, Timestamp: time.UnixMilli(1_700_000_000_000 + t.next),
				Headers: []connect.Header{{Key: "h", Schema: connect.StringSchema, Value: "v"}},
			},
			SourcePartition: map[string]any{"task": t.cfg["task"]},
			SourceOffset:    map[string]any{"n": t.next},
		})
		t.next++
	}
	t.polled.Add(int64(n))
	return out, nil
}

func (t *sourceTask) Commit(context.Context, []connect.PartitionOffset) error { return nil }
func (t *sourceTask) Stop(context.Context) error                              { return nil }

type sink struct{ conn }

func (s *sink) NewTask() connect.SinkTask { return &sinkTask{} }

type sinkTask struct {
	cfg map[string]string
	f   *os.File
	tc  connect.SinkTaskContext
}

func (t *sinkTask) Start(_ context.Context, tc connect.SinkTaskContext, cfg map[string]string) error {
	t.cfg, t.tc = cfg, tc
	f, err := os.OpenFile(cfg["file"], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	t.f = f
	return err
}
func (t *sinkTask) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (t *sinkTask) Close(context.Context, []connect.TopicPartition) error { return nil }
func (t *sinkTask) Put(_ context.Context, recs []connect.SinkRecord) error {
	if t.cfg["misbehave"] == "panic" {
		panic("testplugin: told to panic in Put")
	}
	for i, r := range recs {
		// misbehave=errant: a record keyed "bad" cannot be written; it is
		// reported (connect.ErrantRecordReporter) and the others go on.
		if t.cfg["misbehave"] == "errant" && r.Key == "bad" {
			rep, ok := t.tc.(connect.ErrantRecordReporter)
			if !ok {
				return fmt.Errorf("testplugin: no errant record reporter")
			}
			if err := rep.Report(&recs[i], fmt.Errorf("testplugin: record keyed bad refused")); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(t.f, "%s/%d@%d %v=%v\n", r.Topic, r.KafkaPartition, r.KafkaOffset, r.Key, r.Value)
	}
	return nil
}
func (t *sinkTask) Flush(context.Context, map[connect.TopicPartition]int64) error { return t.f.Sync() }
func (t *sinkTask) Stop(context.Context) error                                    { return t.f.Close() }

func main() {
	plugins.Serve(
		plugins.Class{Name: "test.Source", Aliases: []string{"TestSource"}, New: func() connect.Connector { return &source{} }},
		plugins.Class{Name: "test.Sink", Aliases: []string{"TestSink"}, New: func() connect.Connector { return &sink{} }},
	)
}
