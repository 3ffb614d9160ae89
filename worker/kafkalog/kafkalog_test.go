package kafkalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/broker"
	"github.com/tributary-data/tributary/internal/testkafka"
)

// backends are the Kafka implementations every test runs against.
var backends = testkafka.Backends

// collector records applied records; safe for concurrent reads.
type collector struct {
	mu   sync.Mutex
	recs []Record
}

func (c *collector) apply(r Record) {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
}

func (c *collector) snapshot() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Record(nil), c.recs...)
}

// latest folds records into key -> last value (nil value removes the key).
func latest(recs []Record) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		if r.Value == nil {
			delete(m, string(r.Key))
			continue
		}
		m[string(r.Key)] = string(r.Value)
	}
	return m
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func topicConfig(t *testing.T, ctx context.Context, brokers []string, topic string) (string, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe configs: %v %v", err, rcs)
	}
	policy := ""
	for _, c := range rcs[0].Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return policy, len(td[topic].Partitions)
}

func TestLog(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			brokers := be.Start(t)
			t.Run("CreatesCompactedTopic", func(t *testing.T) { testCreates(t, brokers) })
			t.Run("RefusesNonCompacted", func(t *testing.T) { testRefuses(t, brokers) })
			t.Run("ReadToEndAndReopen", func(t *testing.T) { testReadToEnd(t, brokers) })
			t.Run("CloseIdempotent", func(t *testing.T) { testClose(t, brokers) })
			t.Run("Murmur2Partitioning", func(t *testing.T) { testPartitioning(t, brokers) })
		})
	}
}

func testCreates(t *testing.T, brokers []string) {
	ctx := testCtx(t)
	var c collector
	l, err := Open(ctx, Config{Brokers: brokers, Topic: "created", Partitions: 3, ReplicationFactor: -1,
		ExtraTopicConfigs: map[string]string{"cleanup.policy": "delete"}}, c.apply)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l.Close()
	policy, parts := topicConfig(t, ctx, brokers, "created")
	if policy != "compact" || parts != 3 {
		t.Fatalf("topic: cleanup.policy=%q partitions=%d, want compact and 3", policy, parts)
	}
	if l.Partitions() != 3 {
		t.Fatalf("Partitions() = %d", l.Partitions())
	}
	if got := c.snapshot(); len(got) != 0 {
		t.Fatalf("fresh topic applied %d records", len(got))
	}
	// Opening again on the existing compacted topic works.
	l2, err := Open(ctx, Config{Brokers: brokers, Topic: "created", Partitions: 7}, func(Record) {})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if l2.Partitions() != 3 {
		t.Fatalf("reopen sees %d partitions, want the existing 3", l2.Partitions())
	}
	_ = l2.Close()
}

func testRefuses(t *testing.T, brokers []string) {
	ctx := testCtx(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tc := range []struct{ topic, policy string }{
		{"plain-delete", "delete"},
		{"compact-delete", "compact,delete"},
	} {
		p := tc.policy
		resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &p}, tc.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", tc.topic, err)
		}
		_, err = Open(ctx, Config{Brokers: brokers, Topic: tc.topic}, func(Record) {})
		if !errors.Is(err, ErrNotCompacted) {
			t.Fatalf("Open on cleanup.policy=%s: err = %v, want ErrNotCompacted", tc.policy, err)
		}
		if !bytes.Contains([]byte(err.Error()), []byte("cleanup.policy=compact")) {
			t.Fatalf("error does not tell the fix: %v", err)
		}
	}
}

func testReadToEnd(t *testing.T, brokers []string) {
	ctx := testCtx(t)
	var c1 collector
	cfg := Config{Brokers: brokers, Topic: "rte", Partitions: 5}
	l1, err := Open(ctx, cfg, c1.apply)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l1.Close()

	// Many updates per key, with tombstones; each key's history must be
	// applied in order.
	want := map[string]string{}
	var batch []Record
	for i := range 60 {
		k := fmt.Sprintf("key-%d", i%12)
		v := []byte(fmt.Sprintf("v%d", i))
		if i%12 == 5 && i > 24 {
			v = nil
		}
		batch = append(batch, Record{Key: []byte(k), Value: v})
		if v == nil {
			delete(want, k)
		} else {
			want[k] = string(v)
		}
	}
	if err := l1.SendAll(ctx, batch[:30]); err != nil {
		t.Fatalf("SendAll: %v", err)
	}
	for _, r := range batch[30:] {
		if err := l1.Send(ctx, r.Key, r.Value); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if err := l1.ReadToEnd(ctx); err != nil {
		t.Fatalf("ReadToEnd: %v", err)
	}
	check := func(name string, recs []Record) {
		t.Helper()
		if len(recs) != len(batch) {
			t.Fatalf("%s: applied %d records, want %d", name, len(recs), len(batch))
		}
		if got := latest(recs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: state %v, want %v", name, got, want)
		}
		// Per key, values appear in write order; offsets increase per partition;
		// a key always lands on the same partition.
		lastOff := map[int32]int64{}
		keyPart := map[string]int32{}
		var perKey = map[string][]string{}
		for _, r := range recs {
			if o, ok := lastOff[r.Partition]; ok && r.Offset <= o {
				t.Fatalf("%s: partition %d offsets not increasing: %d after %d", name, r.Partition, r.Offset, o)
			}
			lastOff[r.Partition] = r.Offset
			if p, ok := keyPart[string(r.Key)]; ok && p != r.Partition {
				t.Fatalf("%s: key %s on partitions %d and %d", name, r.Key, p, r.Partition)
			}
			keyPart[string(r.Key)] = r.Partition
			perKey[string(r.Key)] = append(perKey[string(r.Key)], string(r.Value))
			if r.Timestamp.IsZero() {
				t.Fatalf("%s: zero timestamp", name)
			}
		}
		wantPerKey := map[string][]string{}
		for _, r := range batch {
			wantPerKey[string(r.Key)] = append(wantPerKey[string(r.Key)], string(r.Value))
		}
		if fmt.Sprint(perKey) != fmt.Sprint(wantPerKey) {
			t.Fatalf("%s: per-key order\n got %v\nwant %v", name, perKey, wantPerKey)
		}
		if len(lastOff) < 2 {
			t.Fatalf("%s: 12 keys landed on %d partition(s) of 5", name, len(lastOff))
		}
		tomb := 0
		for _, r := range recs {
			if r.Value == nil {
				tomb++
			}
		}
		if tomb == 0 {
			t.Fatalf("%s: no tombstone applied", name)
		}
	}
	check("writer", c1.snapshot())

	// A log opened later sees everything once Open returns.
	var c2 collector
	l2, err := Open(ctx, cfg, c2.apply)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer l2.Close()
	check("late reader", c2.snapshot())

	// A write through one log is visible to the other after its ReadToEnd.
	if err := l1.Send(ctx, []byte("key-late"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := l2.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	if got := latest(c2.snapshot())["key-late"]; got != "x" {
		t.Fatalf("second log after ReadToEnd: key-late = %q", got)
	}
}

func testClose(t *testing.T, brokers []string) {
	ctx := testCtx(t)
	l, err := Open(ctx, Config{Brokers: brokers, Topic: "closing"}, func(Record) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Send(ctx, []byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := l.ReadToEnd(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadToEnd after Close: %v", err)
	}
}

func TestOpenValidates(t *testing.T) {
	_, err := Open(context.Background(), Config{Topic: "x"}, func(Record) {})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}

// TestReadToEndPastMarkers: a partition whose tail holds only records the
// consumer never returns (here transaction commit markers, on kfake, which
// supports transactions) still counts as read to the end.
func TestReadToEndPastMarkers(t *testing.T) {
	ctx := testCtx(t)
	brokers := testkafka.Kfake(t)
	var c collector
	l, err := Open(ctx, Config{Brokers: brokers, Topic: "txn"}, c.apply)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("marker-writer"),
		kgo.DefaultProduceTopic("txn"), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 2 {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := l.ReadToEnd(ctx); err != nil {
		t.Fatalf("ReadToEnd past commit markers: %v", err)
	}
	if got := latest(c.snapshot()); got["k"] != "1" {
		t.Fatalf("state %v", got)
	}
	t.Logf("ReadToEnd past markers took %v", time.Since(start))
	// Opening a new log on it also completes.
	l2, err := Open(ctx, Config{Brokers: brokers, Topic: "txn"}, func(Record) {})
	if err != nil {
		t.Fatal(err)
	}
	_ = l2.Close()
}

// TestReadToEndPastCompactedTail: on Tributary's broker, compaction that
// removes the last records of a partition (an old tombstone) leaves an empty
// batch at the tail; a new Log must still finish its first read.
func TestReadToEndPastCompactedTail(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for broker compaction")
	}
	ctx := testCtx(t)
	cfg := broker.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.MaintenanceInterval = 50 * time.Millisecond
	b, err := broker.Open(cfg, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	lc := Config{Brokers: brokers, Topic: "tail", ExtraTopicConfigs: map[string]string{
		"segment.ms": "100", "delete.retention.ms": "0",
	}}
	l, err := Open(ctx, lc, func(Record) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SendAll(ctx, []Record{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k")}}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c collector
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l2, err := Open(octx, lc, c.apply)
		cancel()
		if err != nil {
			t.Fatalf("Open after compaction: %v", err)
		}
		n := len(c.snapshot())
		_ = l2.Close()
		if n == 0 {
			return // the tail holds no record, and the first read finished
		}
		if time.Now().After(deadline) {
			t.Skipf("broker did not compact the tail away within 10s (%d records left)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testPartitioning: keys land where Kafka's default partitioner puts them,
// toPositive(murmur2(key)) % partitions, using the murmur2 golden values of
// Kafka's UtilsTest.testMurmur2.
func testPartitioning(t *testing.T, brokers []string) {
	ctx := testCtx(t)
	var c collector
	l, err := Open(ctx, Config{Brokers: brokers, Topic: "hashed", Partitions: 7}, c.apply)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	vectors := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for k := range vectors {
		if err := l.Send(ctx, []byte(k), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.ReadToEnd(ctx); err != nil {
		t.Fatal(err)
	}
	recs := c.snapshot()
	if len(recs) != len(vectors) {
		t.Fatalf("applied %d records", len(recs))
	}
	for _, r := range recs {
		want := int32((uint32(vectors[string(r.Key)]) & 0x7fffffff) % 7)
		if r.Partition != want {
			t.Errorf("key %q on partition %d, Kafka's partitioner picks %d", r.Key, r.Partition, want)
		}
	}
}
