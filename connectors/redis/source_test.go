package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/internal/testredis"
)

// One private server for the package; tests use keys of their own.
var server *testredis.Server

func TestMain(m *testing.M) { os.Exit(testredis.Main(m, &server)) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func config(kv ...string) map[string]string {
	c := map[string]string{"name": "redis-test", keyURI: server.URI()}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

func startSource(t *testing.T, cfg map[string]string) *SourceTask {
	t.Helper()
	task := NewSource().(*Source).NewTask().(*SourceTask)
	if err := task.Start(ctxT(t), nil, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Stop(context.Background()) })
	return task
}

// pollN polls until n records came (or fails after a deadline).
func pollN(t *testing.T, task *SourceTask, n int) []connect.SourceRecord {
	t.Helper()
	var out []connect.SourceRecord
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d records, want %d", len(out), n)
		}
		recs, err := task.Poll(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	if len(out) != n {
		t.Fatalf("got %d records, want %d", len(out), n)
	}
	return out
}

// committed returns the offsets the worker would store: the last offset
// of each partition.
func committed(recs []connect.SourceRecord) []connect.PartitionOffset {
	last := map[string]connect.PartitionOffset{}
	var order []string
	for _, r := range recs {
		if r.SourceOffset == nil {
			continue
		}
		name := r.SourcePartition[partitionStream].(string)
		if _, ok := last[name]; !ok {
			order = append(order, name)
		}
		last[name] = connect.PartitionOffset{Partition: r.SourcePartition, Offset: r.SourceOffset}
	}
	var out []connect.PartitionOffset
	for _, n := range order {
		out = append(out, last[n])
	}
	return out
}

func pending(t *testing.T, c *redis.Client, stream, group string) (int64, map[string]int64) {
	t.Helper()
	p, err := c.XPending(ctxT(t), stream, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count, p.Consumers
}

func xadd(t *testing.T, c *redis.Client, stream string, kv ...any) string {
	t.Helper()
	id, err := c.XAdd(ctxT(t), &redis.XAddArgs{Stream: stream, Values: kv}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStreamAckOnlyAfterCommit(t *testing.T) {
	c := server.Client(t)
	id1 := xadd(t, c, "orders", "id", "1", "item", "apple")
	xadd(t, c, "orders", "id", "2", "item", "pear")
	xadd(t, c, "orders", "id", "3")
	task := startSource(t, config(keyStreams, "orders", keyGroup, "g1", keyConsumer, "c1", keyBlock, "20"))
	recs := pollN(t, task, 3)
	r := recs[0]
	if r.Topic != "orders" || r.Key != id1 || r.SourcePartition[partitionStream] != "orders" {
		t.Fatalf("record %+v", r.Record)
	}
	v := r.Value.(*connect.Struct)
	if v.Schema().Name != entrySchemaName || v.Get("id") != "1" || v.Get("item") != "apple" || !v.Schema().Fields[0].Schema.Optional {
		t.Fatalf("value %v schema %v", v, v.Schema())
	}
	ms := strings.Split(id1, "-")[0]
	if fmt.Sprint(r.Timestamp.UnixMilli()) != ms {
		t.Fatalf("timestamp %v, id %s", r.Timestamp, id1)
	}
	if len(r.Headers) != 2 || r.Headers[1].Value != id1 {
		t.Fatalf("headers %+v", r.Headers)
	}
	if recs[0].SourceOffset != nil || recs[2].SourceOffset[offsetID] == nil {
		t.Fatalf("offsets: only the last record carries one: %v %v", recs[0].SourceOffset, recs[2].SourceOffset)
	}
	// Nothing acknowledged before Commit.
	if n, _ := pending(t, c, "orders", "g1"); n != 3 {
		t.Fatalf("pending before commit = %d, want 3", n)
	}
	// A partial commit acknowledges up to its offset only.
	xadd(t, c, "orders", "id", "4")
	more := pollN(t, task, 1)
	if err := task.Commit(ctxT(t), committed(recs)); err != nil {
		t.Fatal(err)
	}
	if n, _ := pending(t, c, "orders", "g1"); n != 1 {
		t.Fatalf("pending after first commit = %d, want 1", n)
	}
	// The worker stores offsets as JSON: numbers come back as float64.
	var rt []connect.PartitionOffset
	b, _ := json.Marshal(committed(more))
	if err := json.Unmarshal(b, &rt); err != nil {
		t.Fatal(err)
	}
	if err := task.Commit(ctxT(t), rt); err != nil {
		t.Fatal(err)
	}
	if n, _ := pending(t, c, "orders", "g1"); n != 0 {
		t.Fatalf("pending after commit = %d, want 0", n)
	}
	off := committed(more)[0].Offset
	if off[offsetVersionKey] != offsetVersion || off[offsetID] != more[0].Headers[1].Value {
		t.Fatalf("offset %v", off)
	}
	// Nothing new: an empty poll after waiting the block time.
	if recs, err := task.Poll(ctxT(t)); err != nil || len(recs) != 0 {
		t.Fatalf("poll = %d, %v", len(recs), err)
	}
}

func TestStreamConsumerCrashIsClaimed(t *testing.T) {
	c := server.Client(t)
	for i := 0; i < 5; i++ {
		xadd(t, c, "crash", "n", fmt.Sprint(i))
	}
	cfg := config(keyStreams, "crash", keyGroup, "g", keyConsumer, "dead", keyBlock, "20", keyClaimMinIdle, "100")
	a := startSource(t, cfg)
	got := pollN(t, a, 5)
	a.Stop(ctxT(t)) // crashed: no Commit
	if n, cons := pending(t, c, "crash", "g"); n != 5 || cons["dead"] != 5 {
		t.Fatalf("pending %d %v", n, cons)
	}
	cfg[keyConsumer] = "alive"
	b := startSource(t, cfg)
	xadd(t, c, "crash", "n", "5")
	recs := pollN(t, b, 6) // the new entry, and the 5 claimed after 100 ms idle
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Value.(*connect.Struct).Get("n").(string)] = true
	}
	for _, r := range got {
		if !seen[r.Value.(*connect.Struct).Get("n").(string)] {
			t.Fatalf("entry %v not delivered again", r.Value)
		}
	}
	if n, cons := pending(t, c, "crash", "g"); n != 6 || cons["alive"] != 6 {
		t.Fatalf("pending after claim %d %v", n, cons)
	}
	if err := b.Commit(ctxT(t), committed(recs)); err != nil {
		t.Fatal(err)
	}
	if n, _ := pending(t, c, "crash", "g"); n != 0 {
		t.Fatalf("pending after commit = %d", n)
	}
	// In-flight entries of the task itself are not delivered twice by its
	// own claims.
	xadd(t, c, "crash", "n", "6")
	pollN(t, b, 1)
	time.Sleep(150 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if recs, err := b.Poll(ctxT(t)); err != nil || len(recs) != 0 {
			t.Fatalf("poll %d = %d records, %v", i, len(recs), err)
		}
	}
}

func TestStreamRestartRereadsOwnPending(t *testing.T) {
	c := server.Client(t)
	xadd(t, c, "restart", "a", "1")
	xadd(t, c, "restart", "a", "2")
	cfg := config(keyStreams, "restart", keyGroup, "g", keyConsumer, "c0", keyBlock, "20")
	a := startSource(t, cfg)
	first := pollN(t, a, 2)
	a.Stop(ctxT(t))
	b := startSource(t, cfg) // the same consumer, restarted
	again := pollN(t, b, 2)
	for i := range first {
		if first[i].Key != again[i].Key {
			t.Fatalf("re-read %v, want %v", again[i].Key, first[i].Key)
		}
	}
	if err := b.Commit(ctxT(t), committed(again)); err != nil {
		t.Fatal(err)
	}
	if n, _ := pending(t, c, "restart", "g"); n != 0 {
		t.Fatalf("pending = %d", n)
	}
}

func TestStreamsKeyFieldTopicAndStartOffset(t *testing.T) {
	c := server.Client(t)
	xadd(t, c, "old", "user", "x") // before the group: skipped with offset $
	cfg := config(keyStreams, "s.a, s.b", keyGroup, "g", keyConsumer, "c", keyBlock, "20",
		keyKeyField, "user", keyTopic, "redis.${stream}", keyStreamOffset, "$")
	task := startSource(t, cfg)
	xadd(t, c, "s.a", "user", "u1", "v", "1")
	xadd(t, c, "s.b", "v", "2")
	recs := pollN(t, task, 2)
	byTopic := map[string]connect.SourceRecord{}
	for _, r := range recs {
		byTopic[r.Topic] = r
	}
	if byTopic["redis.s.a"].Key != "u1" || byTopic["redis.s.b"].Key != nil {
		t.Fatalf("records %+v", recs)
	}
	offs := committed(recs)
	if len(offs) != 2 {
		t.Fatalf("offsets %v", offs)
	}
	if err := task.Commit(ctxT(t), offs); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s.a", "s.b"} {
		if n, _ := pending(t, c, s, "g"); n != 0 {
			t.Fatalf("%s pending %d", s, n)
		}
	}
}

func TestPubSub(t *testing.T) {
	c := server.Client(t)
	task := startSource(t, config(keyMode, "pubsub", keyChannels, "news", keyPatterns, "ev.*", keyTopic, "ps.${channel}"))
	for _, m := range [][2]string{{"news", "hello"}, {"ev.click", "x"}, {"other", "lost"}} {
		if err := c.Publish(ctxT(t), m[0], m[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	recs := pollN(t, task, 2)
	if recs[0].Topic != "ps.news" || recs[0].Key != "news" || recs[0].Value != "hello" ||
		recs[1].Topic != "ps.ev.click" || recs[1].Value != "x" {
		t.Fatalf("records %+v", recs)
	}
	if err := task.Commit(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	s := NewSource().(*Source)
	if err := s.Start(ctxT(t), nil, config(keyMode, "pubsub", keyChannels, "x")); err != nil {
		t.Fatal(err)
	}
	if cfgs, _ := s.TaskConfigs(ctxT(t), 4); len(cfgs) != 1 {
		t.Fatalf("pubsub task configs: %d, want 1", len(cfgs))
	}
}

func TestSourceTaskConfigsConsumerNames(t *testing.T) {
	s := NewSource().(*Source)
	if err := s.Start(ctxT(t), nil, config(keyStreams, "a")); err != nil {
		t.Fatal(err)
	}
	cfgs, err := s.TaskConfigs(ctxT(t), 3)
	if err != nil || len(cfgs) != 3 || cfgs[0][keyConsumer] != "consumer-0" || cfgs[2][keyConsumer] != "consumer-2" {
		t.Fatalf("%v %v", cfgs, err)
	}
}

func TestValidate(t *testing.T) {
	pw := testredis.StartWith(t, testredis.Options{Password: "right"})
	dead := fmt.Sprintf("redis://127.0.0.1:%d", closedPort(t))
	cases := []struct {
		name   string
		cfg    map[string]string
		key    string
		substr string
	}{
		{"ok", config(keyStreams, "a"), "", ""},
		{"bad uri", config(keyStreams, "a", keyURI, "http://x"), keyURI, "not a Redis URI"},
		{"unreachable", config(keyStreams, "a", keyURI, dead), keyURI, "cannot reach Redis"},
		{"wrong password", config(keyStreams, "a", keyURI, "redis://"+pw.Addr(), keyPassword, "wrong"), keyPassword, "refused the credentials"},
		{"no password", config(keyStreams, "a", keyURI, "redis://"+pw.Addr()), keyPassword, "refused the credentials"},
		{"right password", config(keyStreams, "a", keyURI, "redis://"+pw.Addr(), keyPassword, "right"), "", ""},
		{"no streams", config(), keyStreams, "redis.stream.name"},
		{"pubsub without channels", config(keyMode, "pubsub"), keyChannels, "redis.channels"},
		{"cluster", config(keyStreams, "a", keyCluster, "true"), keyCluster, "not supported"},
		{"unknown redis key", config(keyStreams, "a", "redis.stream.schema", "x"), "redis.stream.schema", "not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, err := NewSource().Validate(ctxT(t), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.key == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v", errs)
				}
				return
			}
			if !strings.Contains(strings.Join(errs[tc.key], "\n"), tc.substr) {
				t.Fatalf("errors %v, want %q on %s", errs, tc.substr, tc.key)
			}
		})
	}
	// The sink validates the connection the same way.
	errs, _ := NewSink().Validate(ctxT(t), config(keyURI, "redis://"+pw.Addr(), keyPassword, "wrong"))
	if len(errs[keyPassword]) == 0 {
		t.Fatalf("sink: %v", errs)
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}
