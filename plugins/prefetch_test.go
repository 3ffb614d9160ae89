package plugins

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connect/converter"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// seqSource emits batches of 3 records numbered from 0, over two source
// partitions (a fresh but equal map for one of them every batch), and
// counts its polls; after stop, Poll blocks until ctx ends.
type seqSource struct {
	polls   atomic.Int64
	next    int
	stopped chan struct{}
	once    sync.Once
}

func (s *seqSource) Start(context.Context, connect.SourceTaskContext, map[string]string) error {
	return nil
}

func (s *seqSource) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	select {
	case <-s.stopped:
		<-ctx.Done()
		return nil, ctx.Err()
	default:
	}
	s.polls.Add(1)
	shared := map[string]any{"p": "a"}
	var out []connect.SourceRecord
	for range 3 {
		part := shared
		if s.next%2 == 1 {
			part = map[string]any{"p": "b"} // a fresh map per record
		}
		out = append(out, connect.SourceRecord{
			Record:          connect.Record{Topic: "t", ValueSchema: connect.StringSchema, Value: fmt.Sprint(s.next)},
			SourcePartition: part, SourceOffset: map[string]any{"n": int64(s.next)},
		})
		s.next++
	}
	return out, nil
}

func (s *seqSource) Commit(context.Context, []connect.PartitionOffset) error { return nil }
func (s *seqSource) Stop(context.Context) error {
	s.once.Do(func() { close(s.stopped) })
	return nil
}

type seqConnector struct{ task *seqSource }

func (c *seqConnector) Version() string               { return "1" }
func (c *seqConnector) ConfigDef() *connect.ConfigDef { return connect.NewConfigDef() }
func (c *seqConnector) Start(context.Context, connect.ConnectorContext, map[string]string) error {
	return nil
}
func (c *seqConnector) Validate(context.Context, map[string]string) (map[string][]string, error) {
	return nil, nil
}
func (c *seqConnector) TaskConfigs(context.Context, int) ([]map[string]string, error) {
	return nil, nil
}
func (c *seqConnector) Stop(context.Context) error  { return nil }
func (c *seqConnector) NewTask() connect.SourceTask { return c.task }

func TestPollPrefetchKeepsOrderAndStopsWithTheTask(t *testing.T) {
	task := &seqSource{stopped: make(chan struct{})}
	cl := InProcess(Class{Name: "seq", New: func() connect.Connector { return &seqConnector{task: task} }})
	ctx := ctxT(t)
	str := "org.apache.kafka.connect.storage.StringConverter"
	if _, err := cl.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{Class: "seq",
		Config: map[string]string{"key.converter": str, "value.converter": str}}); err != nil {
		t.Fatal(err)
	}
	want := 0
	for range 4 {
		resp, err := cl.Poll(ctx, &pluginpb.PollRequest{})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := UnpackProduced(resp.Packed)
		if err != nil {
			t.Fatal(err)
		}
		withOffset := 0
		for _, r := range recs {
			if string(r.Value) != fmt.Sprint(want) {
				t.Fatalf("record %q, want %d", r.Value, want)
			}
			if len(r.SourceOffsetJson) > 0 {
				withOffset++
				if r.SourceOffsetJson == nil || len(r.SourcePartitionJson) == 0 {
					t.Fatalf("record %d: offset without partition", want)
				}
			}
			want++
		}
		// Both partitions appear in each batch; only the last record of
		// each carries the offset, equal maps counting as one.
		if withOffset != 2 {
			t.Fatalf("%d records carry an offset, want 2: %v", withOffset, recs)
		}
		ReleaseBatch(&resp.Packed)
	}
	// The next batch is prepared in the background, and only that one.
	deadline := time.Now().Add(5 * time.Second)
	for task.polls.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := task.polls.Load(); n != 5 {
		t.Fatalf("%d polls of the task after 4 calls, want 5 (one prefetched)", n)
	}
	if _, err := cl.StopTask(ctx, &pluginpb.StopRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Poll(ctx, &pluginpb.PollRequest{}); err == nil {
		t.Fatal("poll after stop succeeded")
	}
}

// The in-process client may be handed a put buffer the caller reuses:
// with a ByteArray converter the task must not see it change.
func TestInProcessPutCopiesWhatTheTaskMayKeep(t *testing.T) {
	var kept []connect.SinkRecord
	cl := InProcess(Class{Name: "keep", New: func() connect.Connector { return &keepConnector{kept: &kept} }})
	ctx := ctxT(t)
	if _, err := cl.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "keep",
		Config: map[string]string{"key.converter": converter.ByteArrayClass, "value.converter": converter.ByteArrayClass}}); err != nil {
		t.Fatal(err)
	}
	buf := AppendConsumed(nil, 1, 1, func(_ int, c *ConsumedFields) { c.Topic, c.Value = "t", []byte("first") })
	if _, err := cl.Put(ctx, &pluginpb.PutRequest{Packed: buf}); err != nil {
		t.Fatal(err)
	}
	AppendConsumed(buf[:0], 1, 1, func(_ int, c *ConsumedFields) { c.Topic, c.Value = "t", []byte("XXXXX") })
	if got := string(kept[0].Value.([]byte)); got != "first" {
		t.Fatalf("the task's record changed to %q", got)
	}
}

type keepConnector struct{ kept *[]connect.SinkRecord }

func (c *keepConnector) Version() string               { return "1" }
func (c *keepConnector) ConfigDef() *connect.ConfigDef { return connect.NewConfigDef() }
func (c *keepConnector) Start(context.Context, connect.ConnectorContext, map[string]string) error {
	return nil
}
func (c *keepConnector) Validate(context.Context, map[string]string) (map[string][]string, error) {
	return nil, nil
}
func (c *keepConnector) TaskConfigs(context.Context, int) ([]map[string]string, error) {
	return nil, nil
}
func (c *keepConnector) Stop(context.Context) error { return nil }
func (c *keepConnector) NewTask() connect.SinkTask  { return &keepTask{kept: c.kept} }

type keepTask struct{ kept *[]connect.SinkRecord }

func (k *keepTask) Start(context.Context, connect.SinkTaskContext, map[string]string) error {
	return nil
}
func (k *keepTask) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (k *keepTask) Close(context.Context, []connect.TopicPartition) error { return nil }
func (k *keepTask) Put(_ context.Context, recs []connect.SinkRecord) error {
	*k.kept = append(*k.kept, recs...)
	return nil
}
func (k *keepTask) Flush(context.Context, map[connect.TopicPartition]int64) error { return nil }
func (k *keepTask) Stop(context.Context) error                                    { return nil }
