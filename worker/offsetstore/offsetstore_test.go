package offsetstore

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/worker/kafkalog"
)

var backends = testkafka.Backends

func TestKeyGolden(t *testing.T) {
	for _, tc := range []struct {
		conn string
		part map[string]any
		want string
	}{
		{"file-src", map[string]any{"filename": "/tmp/a.txt"}, `["file-src",{"filename":"/tmp/a.txt"}]`},
		{"pg", map[string]any{"table": "a<b>&c", "db": "x", "n": 3, "f": 1.5, "ok": true, "nil": nil},
			`["pg",{"db":"x","f":1.5,"n":3,"nil":null,"ok":true,"table":"a<b>&c"}]`},
		{"nested", map[string]any{"p": []any{int64(1), "é"}, "m": map[string]any{"z": 1, "a": 2}},
			`["nested",{"m":{"a":2,"z":1},"p":[1,"é"]}]`},
		{"empty", nil, `["empty",{}]`},
	} {
		got, err := Key(tc.conn, tc.part)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("Key(%s)\n got %s\nwant %s", tc.conn, got, tc.want)
		}
	}
}

func TestStore(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			brokers := be.Start(t)
			s, err := Open(ctx, Config{Brokers: brokers, Partitions: 5})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			pa := map[string]any{"filename": "/tmp/a.txt"}
			pb := map[string]any{"filename": "/tmp/b.txt"}
			err = s.Put(ctx, "file-src", []PartitionOffset{
				{Partition: pa, Offset: map[string]any{"position": 10}},
				{Partition: pb, Offset: map[string]any{"position": int64(1) << 40, "ratio": 0.25, "id": "x"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "other", []PartitionOffset{{Partition: pa, Offset: map[string]any{"position": 1}}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "file-src", []PartitionOffset{{Partition: pa, Offset: map[string]any{"position": 20}}}); err != nil {
				t.Fatal(err)
			}
			if err := s.ReadToEnd(ctx); err != nil {
				t.Fatal(err)
			}
			want := []PartitionOffset{
				{Partition: map[string]any{"filename": "/tmp/a.txt"}, Offset: map[string]any{"position": int64(20)}},
				{Partition: map[string]any{"filename": "/tmp/b.txt"}, Offset: map[string]any{"position": int64(1) << 40, "ratio": 0.25, "id": "x"}},
			}
			if got := s.Get("file-src"); !reflect.DeepEqual(got, want) {
				t.Fatalf("Get\n got %v\nwant %v", got, want)
			}
			if off, ok := s.Offset("other", map[string]any{"filename": "/tmp/a.txt"}); !ok || off["position"] != int64(1) {
				t.Fatalf("Offset(other) = %v %v", off, ok)
			}

			// A fresh store reads the same; the raw records carry the golden key bytes.
			var mu sync.Mutex
			raw := map[string]string{}
			l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: brokers, Topic: DefaultTopic}, func(r kafkalog.Record) {
				mu.Lock()
				raw[string(r.Key)] = string(r.Value)
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			mu.Lock()
			if got := raw[`["file-src",{"filename":"/tmp/a.txt"}]`]; got != `{"position":20}` {
				t.Fatalf("raw record value %q (all: %v)", got, raw)
			}
			mu.Unlock()
			s2, err := Open(ctx, Config{Brokers: brokers})
			if err != nil {
				t.Fatal(err)
			}
			if got := s2.Get("file-src"); !reflect.DeepEqual(got, want) {
				t.Fatalf("reloaded Get\n got %v\nwant %v", got, want)
			}
			_ = s2.Close()

			// Reset one partition, then all of a connector.
			if err := s.Reset(ctx, "file-src", []map[string]any{pa}); err != nil {
				t.Fatal(err)
			}
			if err := s.ReadToEnd(ctx); err != nil {
				t.Fatal(err)
			}
			if got := s.Get("file-src"); len(got) != 1 || got[0].Partition["filename"] != "/tmp/b.txt" {
				t.Fatalf("after reset of a: %v", got)
			}
			if err := s.Reset(ctx, "file-src", nil); err != nil {
				t.Fatal(err)
			}
			if err := s.ReadToEnd(ctx); err != nil {
				t.Fatal(err)
			}
			if got := s.Get("file-src"); len(got) != 0 {
				t.Fatalf("after full reset: %v", got)
			}
			if got := s.Connectors(); !reflect.DeepEqual(got, []string{"other"}) {
				t.Fatalf("Connectors = %v", got)
			}
			s3, err := Open(ctx, Config{Brokers: brokers})
			if err != nil {
				t.Fatal(err)
			}
			if got := s3.Get("file-src"); len(got) != 0 {
				t.Fatalf("reset not durable: %v", got)
			}
			_ = s3.Close()
		})
	}
}

// TestKafkaWrittenKeys: keys in another map order or with spaces (as another
// writer may produce) designate the same partition and are reused by writes.
func TestKafkaWrittenKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := backends[0].Start(t)
	s, err := Open(ctx, Config{Brokers: brokers, Topic: "offs", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: brokers, Topic: "offs"}, func(kafkalog.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	kafkaKey := []byte(`["jdbc",{"table":"t1","db":"d"}]`)
	err = l.SendAll(ctx, []kafkalog.Record{
		{Key: kafkaKey, Value: []byte(`{"incrementing":5}`)},
		{Key: []byte(`not json`), Value: []byte(`{}`)},
		{Key: []byte(`["jdbc"]`), Value: []byte(`{}`)},
		{Key: []byte(`["jdbc",{"table":"t2"}]`), Value: []byte(`[1]`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	part := map[string]any{"db": "d", "table": "t1"}
	if off, ok := s.Offset("jdbc", part); !ok || off["incrementing"] != int64(5) {
		t.Fatalf("Offset = %v %v", off, ok)
	}
	if got := s.Get("jdbc"); len(got) != 1 {
		t.Fatalf("invalid records applied: %v", got)
	}
	if k, _ := s.keyFor("jdbc", part); string(k) != string(kafkaKey) {
		t.Fatalf("write key %s, want the key as read %s", k, kafkaKey)
	}
	if err := s.Reset(ctx, "jdbc", []map[string]any{part}); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, Config{Brokers: brokers, Topic: "offs"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.Get("jdbc"); len(got) != 0 {
		t.Fatalf("reset of a Kafka-written key not effective: %v", got)
	}

	err = s.Put(ctx, "jdbc", []PartitionOffset{{Partition: part, Offset: map[string]any{"x": math.NaN()}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("NaN offset: %v", err)
	}
	if err := s.Put(ctx, "", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty connector: %v", err)
	}
}

// TestGenerationFencing: a late write of an older generation (created
// before the newest accepted write) does not move an offset backwards; one
// created later (the group was recreated) and untagged ones are accepted.
func TestGenerationFencing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := backends[0].Start(t)
	s, err := Open(ctx, Config{Brokers: brokers, Topic: "fenced", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: brokers, Topic: "fenced"}, func(kafkalog.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	part := map[string]any{"filename": "/in"}
	key, _ := Key("src", part)
	write := func(gen string, created time.Time, pos int) {
		t.Helper()
		r := kafkalog.Record{Key: key, Value: []byte(`{"position":` + strconv.Itoa(pos) + `}`), Timestamp: created}
		if gen != "" {
			r.Headers = []kgo.RecordHeader{{Key: GenerationHeader, Value: []byte(gen)}}
		}
		if err := l.SendAll(ctx, []kafkalog.Record{r}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReadToEnd(ctx); err != nil {
			t.Fatal(err)
		}
	}
	position := func() int64 {
		off, _ := s.Offset("src", part)
		return off["position"].(int64)
	}
	t0 := time.Now().Add(-time.Minute)
	// The new owner (generation 7) wrote 200; the zombie (generation 6)
	// had created its write of 100 before: ignored.
	if err := s.PutGeneration(ctx, "src", 7, []PartitionOffset{{Partition: part, Offset: map[string]any{"position": 200}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	write("6", t0, 100)
	if p := position(); p != 200 {
		t.Fatalf("a zombie's late write moved the offset to %d", p)
	}
	// A newer generation moves it on; an untagged write (REST, Kafka
	// Connect) is always accepted.
	write("8", time.Now(), 300)
	if p := position(); p != 300 {
		t.Fatalf("generation 8: %d", p)
	}
	write("", t0, 50)
	if p := position(); p != 50 {
		t.Fatalf("untagged write: %d", p)
	}
	// ... and keeps the fence: generation 7 created earlier is still stale.
	write("7", t0, 40)
	if p := position(); p != 50 {
		t.Fatalf("stale write after an untagged one: %d", p)
	}
	// Generations restarted (the group was recreated): a lower generation
	// created later is accepted.
	write("1", time.Now().Add(time.Second), 400)
	if p := position(); p != 400 {
		t.Fatalf("restarted generations: %d", p)
	}
	// A fresh reader applies the same rules.
	s2, err := Open(ctx, Config{Brokers: brokers, Topic: "fenced"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if off, _ := s2.Offset("src", part); off["position"] != int64(400) {
		t.Fatalf("fresh reader: %v", off)
	}
}
