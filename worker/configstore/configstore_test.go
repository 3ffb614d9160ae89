package configstore

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/worker/kafkalog"
)

var backends = testkafka.Backends

type updates struct {
	mu  sync.Mutex
	ups []Update
}

func (u *updates) add(up Update) {
	u.mu.Lock()
	up.Offset = 0 // offsets differ per backend; kinds and names are compared
	u.ups = append(u.ups, up)
	u.mu.Unlock()
}

func (u *updates) take() []Update {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.ups
	u.ups = nil
	return out
}

// rawLog opens a kafkalog on the store's topic to write or read raw records.
func rawLog(t *testing.T, ctx context.Context, brokers []string, topic string, apply func(kafkalog.Record)) *kafkalog.Log {
	t.Helper()
	if apply == nil {
		apply = func(kafkalog.Record) {}
	}
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: brokers, Topic: topic, Partitions: 1}, apply)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestStore(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			brokers := be.Start(t)
			var ups updates
			s, err := Open(ctx, Config{Log: kafkalog.Config{Brokers: brokers}, Listener: ups.add})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			raw := rawLog(t, ctx, brokers, DefaultTopic, nil)

			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			expectUps := func(want ...Update) {
				t.Helper()
				if got := ups.take(); !reflect.DeepEqual(got, want) {
					t.Fatalf("updates\n got %v\nwant %v", got, want)
				}
			}

			// Connector without explicit target state: STARTED.
			must(s.PutConnectorConfig(ctx, "file-src", map[string]string{"connector.class": "FileStreamSource", "file": "/tmp/a.txt"}, ""))
			expectUps(Update{Kind: ConnectorConfigUpdated, Connector: "file-src"})
			snap := s.Snapshot()
			if snap.TargetStates["file-src"] != Started || snap.Connectors["file-src"]["file"] != "/tmp/a.txt" {
				t.Fatalf("snapshot after put: %+v", snap)
			}

			// Task configs written without a commit stay invisible.
			must(raw.SendAll(ctx, []kafkalog.Record{
				{Key: []byte("task-file-src-0"), Value: []byte(`{"properties":{"task":"0"}}`)},
				{Key: []byte("task-file-src-1"), Value: []byte(`{"properties":{"task":"1"}}`)},
			}))
			must(s.ReadToEnd(ctx))
			if _, ok := s.Snapshot().Tasks["file-src"]; ok {
				t.Fatal("tasks visible before their commit")
			}
			expectUps()
			must(raw.Send(ctx, []byte("commit-file-src"), []byte(`{"tasks":2}`)))
			must(s.ReadToEnd(ctx))
			if got := s.Snapshot().Tasks["file-src"]; len(got) != 2 || got[1]["task"] != "1" {
				t.Fatalf("tasks after commit: %v", got)
			}
			expectUps(Update{Kind: TasksCommitted, Connector: "file-src"})

			// A commit that refers to a task not written since the last
			// commit marks the connector inconsistent and keeps old tasks.
			must(raw.SendAll(ctx, []kafkalog.Record{
				{Key: []byte("task-file-src-0"), Value: []byte(`{"properties":{"task":"new0"}}`)},
				{Key: []byte("commit-file-src"), Value: []byte(`{"tasks":2}`)},
			}))
			must(s.ReadToEnd(ctx))
			snap = s.Snapshot()
			if !snap.Inconsistent["file-src"] || snap.Tasks["file-src"][0]["task"] != "0" {
				t.Fatalf("inconsistent commit: inconsistent=%v tasks=%v", snap.Inconsistent, snap.Tasks["file-src"])
			}
			expectUps()

			// PutTaskConfigs repairs it.
			must(s.PutTaskConfigs(ctx, "file-src", []map[string]string{{"task": "a"}, {"task": "b"}, {"task": "c"}}))
			snap = s.Snapshot()
			if snap.Inconsistent["file-src"] || len(snap.Tasks["file-src"]) != 3 || snap.Tasks["file-src"][2]["task"] != "c" {
				t.Fatalf("after PutTaskConfigs: %+v", snap)
			}
			expectUps(Update{Kind: TasksCommitted, Connector: "file-src"})

			// Target states, including an initial one, and a second connector
			// whose name contains dashes and digits.
			must(s.PutTargetState(ctx, "file-src", Paused))
			expectUps(Update{Kind: TargetStateChanged, Connector: "file-src"})
			must(s.PutTargetState(ctx, "file-src", Paused))
			expectUps() // unchanged
			must(s.PutConnectorConfig(ctx, "sink-2-b", map[string]string{"topics": "t<&>"}, Stopped))
			expectUps(Update{Kind: ConnectorConfigUpdated, Connector: "sink-2-b"})
			must(s.PutTaskConfigs(ctx, "sink-2-b", nil))
			expectUps(Update{Kind: TasksCommitted, Connector: "sink-2-b"})
			snap = s.Snapshot()
			if snap.TargetStates["sink-2-b"] != Stopped || snap.Tasks["sink-2-b"] == nil || len(snap.Tasks["sink-2-b"]) != 0 {
				t.Fatalf("sink-2-b: %+v", snap)
			}

			// A later reader rebuilds exactly the same state, and sees it
			// without listener calls during Open.
			var ups2 updates
			s2, err := Open(ctx, Config{Log: kafkalog.Config{Brokers: brokers}, Listener: ups2.add})
			if err != nil {
				t.Fatal(err)
			}
			if got := s2.Snapshot(); !reflect.DeepEqual(got, s.Snapshot()) {
				t.Fatalf("reloaded state differs\n got %+v\nwant %+v", got, s.Snapshot())
			}
			if got := ups2.take(); len(got) != 0 {
				t.Fatalf("listener called during Open: %v", got)
			}
			_ = s2.Close()

			// Restart requests reach the listener (only for existing connectors).
			must(s.PutRestartRequest(ctx, "file-src", true, true))
			expectUps(Update{Kind: RestartRequested, Connector: "file-src", IncludeTasks: true, OnlyFailed: true})
			must(s.PutRestartRequest(ctx, "nobody", false, false))

			// Delete removes config and tasks; the target state is tombstoned.
			must(s.DeleteConnector(ctx, "file-src"))
			expectUps(Update{Kind: ConnectorRemoved, Connector: "file-src"})
			snap = s.Snapshot()
			if _, ok := snap.Connectors["file-src"]; ok {
				t.Fatal("connector still present after delete")
			}
			if _, ok := snap.Tasks["file-src"]; ok {
				t.Fatal("tasks still present after delete")
			}
			if _, ok := snap.TargetStates["file-src"]; ok {
				t.Fatal("target state still present after delete")
			}

			// Snapshot is a deep copy.
			snap.Connectors["sink-2-b"]["topics"] = "mutated"
			snap.Tasks["x"] = nil
			if s.Snapshot().Connectors["sink-2-b"]["topics"] != "t<&>" {
				t.Fatal("Snapshot shares maps with the store")
			}
		})
	}
}

// TestRecordFormat checks the exact bytes written and that Kafka Connect's
// own variants are read.
func TestRecordFormat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := backends[0].Start(t)
	var mu sync.Mutex
	got := map[string]string{}
	s, err := Open(ctx, Config{Log: kafkalog.Config{Brokers: brokers, Topic: "cfg"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, err := range []error{
		s.PutConnectorConfig(ctx, "c", map[string]string{"b": "2", "a": "<1>"}, Started),
		s.PutTaskConfigs(ctx, "c", []map[string]string{{"t": "x"}}),
		s.PutTargetState(ctx, "p", Paused),
		s.PutTargetState(ctx, "s", Stopped),
		s.PutRestartRequest(ctx, "c", true, false),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	rawLog(t, ctx, brokers, "cfg", func(r kafkalog.Record) {
		mu.Lock()
		got[string(r.Key)] = string(r.Value)
		mu.Unlock()
	})
	want := map[string]string{
		"target-state-c":      `{"state":"STARTED"}`,
		"connector-c":         `{"properties":{"a":"<1>","b":"2"}}`,
		"task-c-0":            `{"properties":{"t":"x"}}`,
		"commit-c":            `{"tasks":1}`,
		"target-state-p":      `{"state":"PAUSED","state.v2":"PAUSED"}`,
		"target-state-s":      `{"state":"PAUSED","state.v2":"STOPPED"}`,
		"restart-connector-c": `{"include-tasks":true,"only-failed":false}`,
	}
	mu.Lock()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records\n got %v\nwant %v", got, want)
	}
	mu.Unlock()

	// Records as older/newer Kafka Connect versions write them.
	raw := rawLog(t, ctx, brokers, "cfg", nil)
	err = raw.SendAll(ctx, []kafkalog.Record{
		{Key: []byte("connector-k"), Value: []byte(`{"properties":{"x":"1","nul":null}}`)},
		{Key: []byte("target-state-k"), Value: []byte(`{"state":"PAUSED"}`)},
		{Key: []byte("session-key"), Value: []byte(`{"key":"abc","algorithm":"HmacSHA256","creation-timestamp":1}`)},
		{Key: []byte("restart-connector-k"), Value: []byte(`{"include-tasks":true,"only-failed":false}`)},
		{Key: []byte("task-count-record-k"), Value: []byte(`{"task-count":3}`)},
		{Key: []byte("task-k-x"), Value: []byte(`{"properties":{}}`)},
		{Key: []byte("connector-bad"), Value: []byte(`not json`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	if !reflect.DeepEqual(snap.Connectors["k"], map[string]string{"x": "1"}) || snap.TargetStates["k"] != Paused {
		t.Fatalf("kafka-written records: %v %v", snap.Connectors["k"], snap.TargetStates["k"])
	}
	if _, ok := snap.Connectors["bad"]; ok {
		t.Fatal("invalid record applied")
	}
	if snap.Offset < 10 {
		t.Fatalf("offset %d", snap.Offset)
	}

	if err := s.PutTargetState(ctx, "c", "RUNNING"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid state: %v", err)
	}
	if err := s.PutConnectorConfig(ctx, "", nil, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
}

func TestRefusesMultiPartitionTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := backends[1].Start(t)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: brokers, Topic: "cfg3", Partitions: 3}, func(kafkalog.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	_, err = Open(ctx, Config{Log: kafkalog.Config{Brokers: brokers, Topic: "cfg3"}})
	if !errors.Is(err, ErrNotSinglePartition) {
		t.Fatalf("err = %v", err)
	}
}
