package statusstore

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

func TestStore(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			brokers := be.Start(t)
			s, err := Open(ctx, Config{Brokers: brokers})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			running := Status{State: Running, WorkerID: "10.0.0.1:8083", Generation: 3}
			failed := Status{State: Failed, Trace: "java.lang.RuntimeException: boom\n\tat X", WorkerID: "10.0.0.2:8083", Generation: 4}
			must(s.PutConnector(ctx, "sink-a-1", running))
			must(s.PutTask(ctx, "sink-a-1", 0, running))
			must(s.PutTask(ctx, "sink-a-1", 1, failed))
			must(s.PutTask(ctx, "sink-a-1", 10, running))
			must(s.PutConnector(ctx, "other", running))
			must(s.PutTopic(ctx, TopicStatus{Topic: "orders", Connector: "sink-a-1", Task: 1, DiscoverTimestamp: 1700000000123}))
			must(s.PutTopic(ctx, TopicStatus{Topic: "audit.v2", Connector: "sink-a-1", Task: 0, DiscoverTimestamp: 1700000000456}))
			must(s.ReadToEnd(ctx))

			if got, ok := s.Connector("sink-a-1"); !ok || got != running {
				t.Fatalf("Connector = %+v %v", got, ok)
			}
			wantTasks := []TaskStatus{{0, running}, {1, failed}, {10, running}}
			if got := s.Tasks("sink-a-1"); !reflect.DeepEqual(got, wantTasks) {
				t.Fatalf("Tasks\n got %+v\nwant %+v", got, wantTasks)
			}
			wantTopics := []TopicStatus{
				{Topic: "audit.v2", Connector: "sink-a-1", Task: 0, DiscoverTimestamp: 1700000000456},
				{Topic: "orders", Connector: "sink-a-1", Task: 1, DiscoverTimestamp: 1700000000123},
			}
			if got := s.Topics("sink-a-1"); !reflect.DeepEqual(got, wantTopics) {
				t.Fatalf("Topics\n got %+v\nwant %+v", got, wantTopics)
			}

			// A fresh store reads the same.
			s2, err := Open(ctx, Config{Brokers: brokers})
			if err != nil {
				t.Fatal(err)
			}
			if got := s2.Tasks("sink-a-1"); !reflect.DeepEqual(got, wantTasks) {
				t.Fatalf("reloaded Tasks %+v", got)
			}
			if got := s2.Topics("sink-a-1"); !reflect.DeepEqual(got, wantTopics) {
				t.Fatalf("reloaded Topics %+v", got)
			}
			if got := s2.Connectors(); !reflect.DeepEqual(got, []string{"other", "sink-a-1"}) {
				t.Fatalf("Connectors %v", got)
			}
			_ = s2.Close()

			// Safe writes: a stale generation from another worker is refused.
			wrote, err := s.PutTaskSafe(ctx, "sink-a-1", 1, Status{State: Running, WorkerID: "10.0.0.9:8083", Generation: 2})
			if err != nil || wrote {
				t.Fatalf("stale safe write: wrote=%v err=%v", wrote, err)
			}
			wrote, err = s.PutTaskSafe(ctx, "sink-a-1", 1, Status{State: Restarting, WorkerID: "10.0.0.9:8083", Generation: 5})
			if err != nil || !wrote {
				t.Fatalf("newer safe write: wrote=%v err=%v", wrote, err)
			}
			must(s.ReadToEnd(ctx))
			if got, _ := s.Task("sink-a-1", 1); got.State != Restarting {
				t.Fatalf("task 1 = %+v", got)
			}
			// Unsafe writes of a stale UNASSIGNED or FAILED (a paused worker's
			// late reports) are ignored by readers; a stale RUNNING is not,
			// nor the same worker's, nor a newer generation's.
			cur := Status{State: Running, WorkerID: "10.0.0.9:8083", Generation: 7}
			must(s.PutTask(ctx, "sink-a-1", 1, cur))
			must(s.PutTask(ctx, "sink-a-1", 1, Status{State: Unassigned, WorkerID: "10.0.0.3:8083", Generation: 6}))
			must(s.PutTask(ctx, "sink-a-1", 1, Status{State: Failed, Trace: "late", WorkerID: "10.0.0.3:8083", Generation: 6}))
			must(s.PutConnector(ctx, "other", Status{State: Unassigned, WorkerID: "10.0.0.3:8083", Generation: 2}))
			must(s.ReadToEnd(ctx))
			if got, _ := s.Task("sink-a-1", 1); got != cur {
				t.Fatalf("after stale reports, task 1 = %+v, want %+v", got, cur)
			}
			if got, _ := s.Connector("other"); got != running {
				t.Fatalf("after a stale report, connector other = %+v, want %+v", got, running)
			}
			for _, st := range []Status{
				{State: Unassigned, WorkerID: "10.0.0.9:8083", Generation: 6}, // the same worker
				{State: Unassigned, WorkerID: "10.0.0.3:8083", Generation: 8}, // newer
				{State: Running, WorkerID: "10.0.0.4:8083", Generation: 1},    // not a stale-able state
			} {
				must(s.PutTask(ctx, "sink-a-1", 1, st))
				must(s.ReadToEnd(ctx))
				if got, _ := s.Task("sink-a-1", 1); got != st {
					t.Fatalf("task 1 = %+v after writing %+v", got, st)
				}
			}

			// Reset topics, delete the connector.
			must(s.ResetTopics(ctx, "sink-a-1"))
			must(s.Delete(ctx, "sink-a-1"))
			must(s.ReadToEnd(ctx))
			if _, ok := s.Connector("sink-a-1"); ok {
				t.Fatal("connector status survived Delete")
			}
			if got := s.Tasks("sink-a-1"); len(got) != 0 {
				t.Fatalf("tasks survived Delete: %v", got)
			}
			if got := s.Topics("sink-a-1"); len(got) != 0 {
				t.Fatalf("topics survived ResetTopics: %v", got)
			}
			s3, err := Open(ctx, Config{Brokers: brokers})
			if err != nil {
				t.Fatal(err)
			}
			defer s3.Close()
			if got := s3.Connectors(); !reflect.DeepEqual(got, []string{"other"}) {
				t.Fatalf("after delete, reloaded Connectors %v", got)
			}
			if got := s3.Tasks("sink-a-1"); len(got) != 0 {
				t.Fatalf("after delete, reloaded tasks %v", got)
			}
		})
	}
}

// TestRecordFormat checks the exact bytes, Kafka's tombstone-on-DESTROYED,
// and reading Kafka-written records.
func TestRecordFormat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := backends[0].Start(t)
	s, err := Open(ctx, Config{Brokers: brokers, Topic: "st", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, err := range []error{
		s.PutConnector(ctx, "c", Status{State: Running, WorkerID: "h:8083", Generation: 7}),
		s.PutTask(ctx, "c", 2, Status{State: Failed, Trace: "boom <x>", WorkerID: "h:8083", Generation: 7}),
		s.PutTopic(ctx, TopicStatus{Topic: "t", Connector: "c", Task: 2, DiscoverTimestamp: 42}),
		s.PutTask(ctx, "c", 3, Status{State: Destroyed, WorkerID: "h:8083"}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var keys []string
	vals := map[string][]byte{}
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: brokers, Topic: "st"}, func(r kafkalog.Record) {
		mu.Lock()
		keys = append(keys, string(r.Key))
		vals[string(r.Key)] = r.Value
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mu.Lock()
	want := map[string]string{
		"status-connector-c":         `{"state":"RUNNING","trace":null,"worker_id":"h:8083","generation":7}`,
		"status-task-c-2":            `{"state":"FAILED","trace":"boom <x>","worker_id":"h:8083","generation":7}`,
		"status-topic-t:connector-c": `{"topic":{"name":"t","connector":"c","task":2,"discoverTimestamp":42}}`,
	}
	for k, w := range want {
		if string(vals[k]) != w {
			t.Errorf("%s\n got %s\nwant %s", k, vals[k], w)
		}
	}
	if v, ok := vals["status-task-c-3"]; !ok || v != nil {
		t.Errorf("DESTROYED: want a tombstone, got %q (present %v)", v, ok)
	}
	mu.Unlock()

	// Kafka-written variants and garbage.
	err = l.SendAll(ctx, []kafkalog.Record{
		{Key: []byte("status-connector-k-1"), Value: []byte(`{"state":"PAUSED","trace":null,"worker_id":"w:1","generation":1}`)},
		{Key: []byte("status-task-k-1-0"), Value: []byte(`{"state":"UNASSIGNED","worker_id":"w:1","generation":1}`)},
		{Key: []byte("status-task-k-1-x"), Value: []byte(`{"state":"RUNNING","worker_id":"w:1","generation":1}`)},
		{Key: []byte("status-connector-bad"), Value: []byte(`{"state":"WEIRD","worker_id":"w:1","generation":1}`)},
		{Key: []byte("status-topic-nocolon"), Value: []byte(`{}`)},
		{Key: []byte("something-else"), Value: []byte(`{}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Connector("k-1"); !ok || got.State != Paused || got.Trace != "" {
		t.Fatalf("k-1 = %+v %v", got, ok)
	}
	if got := s.Tasks("k-1"); len(got) != 1 || got[0].ID != 0 || got[0].State != Unassigned {
		t.Fatalf("k-1 tasks = %+v", got)
	}
	if _, ok := s.Connector("bad"); ok {
		t.Fatal("invalid state applied")
	}
	if err := s.PutConnector(ctx, "c", Status{State: "BROKEN"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid state: %v", err)
	}
	if err := s.PutTopic(ctx, TopicStatus{Topic: "a:b", Connector: "c"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("topic with colon: %v", err)
	}
	// A tombstone of the connector status forgets its tasks, as in Kafka.
	if err := l.Send(ctx, []byte("status-connector-k-1"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Tasks("k-1"); len(got) != 0 {
		t.Fatalf("tasks after connector tombstone: %v", got)
	}
}
