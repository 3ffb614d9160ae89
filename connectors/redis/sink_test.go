package redis

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/connect"
)

func startSink(t testing.TB, cfg map[string]string) *SinkTask {
	t.Helper()
	task := NewSink().(*Sink).NewTask().(*SinkTask)
	if err := task.Start(context.Background(), nil, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Stop(context.Background()) })
	return task
}

func putFlush(t testing.TB, task *SinkTask, recs ...connect.SinkRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := task.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := task.Flush(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

var (
	rowSchema = connect.StructOf("db.public.users.Value",
		connect.F("id", connect.Int32Schema), connect.F("name", connect.OptionalStringSchema),
		connect.F("score", connect.OptionalFloat64Schema), connect.F("born", connect.DateSchema().AsOptional()))
	optRow    = rowSchema.AsOptional()
	keySchema = connect.StructOf("db.public.users.Key", connect.F("id", connect.Int32Schema))
	envSchema = connect.StructOf("db.public.users.Envelope",
		connect.F("before", optRow), connect.F("after", optRow),
		connect.F("op", connect.StringSchema), connect.F("ts_ms", connect.OptionalInt64Schema))
)

var offset int64

func rec(topic string, ks *connect.Schema, key any, vs *connect.Schema, val any) connect.SinkRecord {
	offset++
	return connect.SinkRecord{Record: connect.Record{Topic: topic, KeySchema: ks, Key: key, ValueSchema: vs, Value: val},
		KafkaPartition: 0, KafkaOffset: offset}
}

func row(id int32, name string) *connect.Struct {
	s := connect.NewStruct(optRow).MustPut("id", id)
	if name != "" {
		s.MustPut("name", name)
	}
	return s
}

func cdc(id int32, op string, before, after *connect.Struct) connect.SinkRecord {
	env := connect.NewStruct(envSchema).MustPut("op", op)
	if before != nil {
		env.MustPut("before", before)
	}
	if after != nil {
		env.MustPut("after", after)
	}
	return rec("db.public.users", keySchema, connect.NewStruct(keySchema).MustPut("id", id), envSchema, env)
}

func tombstone(topic string, id int32) connect.SinkRecord {
	return rec(topic, keySchema, connect.NewStruct(keySchema).MustPut("id", id), envSchema, nil)
}

// dump returns every key under prefix with its type and content.
func dump(t testing.TB, c *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		typ := c.Type(ctx, k).Val()
		switch typ {
		case "string":
			out[k] = c.Get(ctx, k).Val()
		case "hash":
			h := c.HGetAll(ctx, k).Val()
			var parts []string
			for f, v := range h {
				parts = append(parts, f+"="+v)
			}
			sort.Strings(parts)
			out[k] = "hash{" + strings.Join(parts, ",") + "}"
		default:
			out[k] = typ
		}
	}
	return out
}

func TestSinkSET(t *testing.T) {
	c := server.Client(t)
	task := startSink(t, config(keyCommand, "set", keyKeyspace, "u"))
	born := time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
	r1 := row(1, "ann")
	r1.MustPut("score", 1.5).MustPut("born", born)
	putFlush(t, task,
		rec("users", keySchema, connect.NewStruct(keySchema).MustPut("id", int32(1)), rowSchema, r1),
		rec("users", connect.StringSchema, "plain", connect.StringSchema, "just text"),
		rec("users", connect.Int64Schema, int64(7), connect.BytesSchema, []byte{0xff, 0x00}),
		rec("users", nil, "obj", nil, map[string]any{"b": []any{int64(1), "x\"y"}, "a": nil}),
	)
	want := map[string]string{
		"u:1":     `{"id":1,"name":"ann","score":1.5,"born":"1990-05-17"}`,
		"u:plain": "just text",
		"u:7":     "\xff\x00",
		"u:obj":   `{"a":null,"b":[1,"x\"y"]}`,
	}
	if got := dump(t, c, "u:"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// A tombstone deletes; a replay of everything leaves the same state.
	putFlush(t, task, tombstone("users", 1))
	delete(want, "u:1")
	if got := dump(t, c, "u:"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after tombstone: %q", got)
	}
}

func TestSinkCDCMirrorAndReplay(t *testing.T) {
	for _, cmd := range []string{"SET", "HSET"} {
		t.Run(cmd, func(t *testing.T) {
			c := server.Client(t)
			ks := "mirror" + cmd
			task := startSink(t, config(keyCommand, cmd, keyKeyspace, ks))
			batch := []connect.SinkRecord{
				cdc(1, "r", nil, row(1, "ann")),
				cdc(2, "c", nil, row(2, "bob")),
				cdc(3, "c", nil, row(3, "cy")),
				cdc(2, "u", row(2, "bob"), row(2, "")), // name set to NULL
				cdc(3, "d", row(3, "cy"), nil),
				tombstone("db.public.users", 3),
				cdc(1, "u", row(1, "ann"), row(1, "anna")),
			}
			putFlush(t, task, batch...)
			var want map[string]string
			if cmd == "SET" {
				want = map[string]string{
					ks + ":1": `{"id":1,"name":"anna","score":null,"born":null}`,
					ks + ":2": `{"id":2,"name":null,"score":null,"born":null}`,
				}
			} else {
				want = map[string]string{ks + ":1": "hash{id=1,name=anna}", ks + ":2": "hash{id=2}"}
			}
			got := dump(t, c, ks)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
			// A replay (after a crash before the offset commit) changes nothing,
			// also replayed in smaller pieces.
			putFlush(t, task, batch...)
			for _, r := range batch {
				putFlush(t, task, r)
			}
			if got := dump(t, c, ks); !reflect.DeepEqual(got, want) {
				t.Fatalf("after replay %q\nwant %q", got, want)
			}
		})
	}
}

func TestSinkHSETMultiExecAndTTL(t *testing.T) {
	c := server.Client(t)
	task := startSink(t, config(keyCommand, "HSET", keyKeyspace, "h${topic}", keySeparator, "/", keyTTL, "100", keyMultiExec, "true"))
	putFlush(t, task,
		rec("t", connect.StringSchema, "a", nil, map[string]any{"x": int64(1), "y": "two", "z": map[string]any{"n": true}}),
		rec("t", connect.StringSchema, "empty", nil, map[string]any{"x": nil}),
	)
	if got := dump(t, c, "ht/"); !reflect.DeepEqual(got, map[string]string{"ht/a": `hash{x=1,y=two,z={"n":true}}`}) {
		t.Fatalf("got %q", got)
	}
	if ttl := c.TTL(ctxT(t), "ht/a").Val(); ttl <= 90*time.Second || ttl > 100*time.Second {
		t.Fatalf("TTL %v", ttl)
	}
	s := startSink(t, config(keyKeyspace, "ttl", keyTTL, "50"))
	putFlush(t, s, rec("t", connect.StringSchema, "k", connect.StringSchema, "v"))
	if ttl := c.TTL(ctxT(t), "ttl:k").Val(); ttl <= 40*time.Second || ttl > 50*time.Second {
		t.Fatalf("SET TTL %v", ttl)
	}
	// Without TTL there is no expiry.
	n := startSink(t, config(keyKeyspace, "nottl"))
	putFlush(t, n, rec("t", connect.StringSchema, "k", connect.StringSchema, "v"))
	if ttl := c.TTL(ctxT(t), "nottl:k").Val(); ttl != -1 {
		t.Fatalf("no TTL expected, got %v", ttl)
	}
}

func TestSinkXADD(t *testing.T) {
	c := server.Client(t)
	task := startSink(t, config(keyCommand, "XADD", keyKeyspace, "stream:${topic}"))
	putFlush(t, task,
		cdc(1, "c", nil, row(1, "ann")),
		cdc(1, "d", row(1, "ann"), nil), // not mirrored: streams are append-only
		tombstone("db.public.users", 1),
		rec("db.public.users", nil, nil, connect.StringSchema, "raw"),
	)
	msgs, err := c.XRange(ctxT(t), "stream:db.public.users", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !reflect.DeepEqual(msgs[0].Values, map[string]any{"id": "1", "name": "ann"}) ||
		!reflect.DeepEqual(msgs[1].Values, map[string]any{"value": "raw"}) {
		t.Fatalf("stream %+v", msgs)
	}
}

func TestSinkJSONSETNeedsModule(t *testing.T) {
	task := NewSink().(*Sink).NewTask()
	err := task.Start(ctxT(t), nil, config(keyCommand, "JSONSET"))
	if err == nil || !strings.Contains(err.Error(), "RedisJSON") {
		t.Fatalf("Start: %v", err)
	}
	errs, _ := NewSink().Validate(ctxT(t), config(keyCommand, "JSONSET"))
	if !strings.Contains(strings.Join(errs[keyCommand], ""), "RedisJSON") {
		t.Fatalf("Validate: %v", errs)
	}
}

func TestSinkBadInputs(t *testing.T) {
	set := startSink(t, config(keyKeyspace, "bad"))
	hset := startSink(t, config(keyCommand, "HSET", keyKeyspace, "bad"))
	cases := []struct {
		name   string
		task   *SinkTask
		r      connect.SinkRecord
		substr string
	}{
		{"no key", set, rec("t", nil, nil, connect.StringSchema, "v"), "has no key"},
		{"empty key", set, rec("t", connect.StringSchema, "", connect.StringSchema, "v"), "key is empty"},
		{"hset scalar", hset, rec("t", connect.StringSchema, "k", connect.StringSchema, "v"), "HSET writes struct values"},
		{"bad op", set, cdc(1, "x", nil, row(1, "a")), `op "x"`},
		{"no after", set, cdc(1, "u", nil, nil), `no "after"`},
		{"nan", set, rec("t", connect.StringSchema, "k", nil, map[string]any{"f": nan()}), "not a JSON number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.task.Put(ctxT(t), []connect.SinkRecord{tc.r})
			want := fmt.Sprintf("topic %s partition 0 offset %d", tc.r.Topic, tc.r.KafkaOffset)
			if err == nil || !strings.Contains(err.Error(), tc.substr) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err %v, want %q and %q", err, tc.substr, want)
			}
		})
	}
	// A Redis error on one command names its record: a hash where SET
	// with GET semantics is not involved, but HSET onto a string key is.
	c := server.Client(t)
	c.Set(ctxT(t), "wrongtype:k", "x", 0)
	x := startSink(t, config(keyCommand, "XADD", keyKeyspace, "wrongtype:k"))
	r := rec("t", nil, nil, nil, map[string]any{"a": "b"})
	err := x.Put(ctxT(t), []connect.SinkRecord{r})
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", r.KafkaOffset)) {
		t.Fatalf("err %v", err)
	}
}

func nan() float64 { z := 0.0; return z / z }

// TestSinkThroughput measures SET records per second: 200,000 records in
// batches of 5,000, one pipeline per Put.
func TestSinkThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := server.Client(t)
	task := startSink(t, config(keyKeyspace, "perf"))
	const total, batch = 200_000, 5_000
	vs := connect.StructOf("perf.Value", connect.F("id", connect.Int64Schema), connect.F("name", connect.StringSchema), connect.F("amount", connect.Float64Schema))
	batches := make([][]connect.SinkRecord, 0, total/batch)
	for b := 0; b < total/batch; b++ {
		recs := make([]connect.SinkRecord, batch)
		for i := range recs {
			n := int64(b*batch + i)
			recs[i] = connect.SinkRecord{Record: connect.Record{Topic: "perf", KeySchema: connect.Int64Schema, Key: n, ValueSchema: vs,
				Value: connect.NewStruct(vs).MustPut("id", n).MustPut("name", fmt.Sprintf("name-%d", n)).MustPut("amount", float64(n)/3)}, KafkaOffset: n}
		}
		batches = append(batches, recs)
	}
	ctx := ctxT(t)
	start := time.Now()
	for _, recs := range batches {
		if err := task.Put(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := task.Flush(ctx, nil); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	rate := float64(total) / el.Seconds()
	t.Logf("sink SET: %d records in %v = %.0f ops/s", total, el.Round(time.Millisecond), rate)
	fmt.Printf("redis sink SET throughput: %.0f ops/s (%d records, batches of %d, %v)\n", rate, total, batch, el.Round(time.Millisecond))
	if n := c.DBSize(ctx).Val(); n < total {
		t.Fatalf("dbsize %d < %d", n, total)
	}
	if v := c.Get(ctx, "perf:199999").Val(); !strings.HasPrefix(v, `{"id":199999,"name":"name-199999"`) {
		t.Fatalf("last value %q", v)
	}
	if rate < 150_000 {
		t.Logf("below the 150,000 ops/s target")
	}
}

// errantReporter stands in for the worker's errant record reporter with
// errors.tolerance=all (connect.ErrantRecordReporter).
type errantReporter struct{ reported []int64 }

func (e *errantReporter) Assignment() []connect.TopicPartition { return nil }
func (e *errantReporter) Pause(...connect.TopicPartition)      {}
func (e *errantReporter) Resume(...connect.TopicPartition)     {}
func (e *errantReporter) Rewind(connect.TopicPartition, int64) {}
func (e *errantReporter) RequestCommit()                       {}
func (e *errantReporter) Report(rec *connect.SinkRecord, _ error) error {
	e.reported = append(e.reported, rec.KafkaOffset)
	return nil
}

// Records that cannot be written (no key; a Redis error reply) are
// reported as errant (the worker sends them to the dead letter queue) and
// the others are written.
func TestSinkReportsErrantRecords(t *testing.T) {
	c := server.Client(t)
	task := NewSink().(*Sink).NewTask().(*SinkTask)
	rep := &errantReporter{}
	if err := task.Start(ctxT(t), rep, config(keyCommand, "HSET", keyKeyspace, "errant")); err != nil {
		t.Fatal(err)
	}
	defer task.Stop(context.Background())
	val := map[string]any{"f": "v"}
	recs := []connect.SinkRecord{
		rec("t", connect.StringSchema, "k1", nil, val),
		rec("t", nil, nil, nil, val), // no key
		rec("t", connect.StringSchema, "k3", nil, val),
	}
	if err := task.Put(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
	if len(rep.reported) != 1 || rep.reported[0] != recs[1].KafkaOffset {
		t.Fatalf("reported offsets %v, want [%d]", rep.reported, recs[1].KafkaOffset)
	}
	for _, k := range []string{"errant:k1", "errant:k3"} {
		if got := c.HGet(ctxT(t), k, "f").Val(); got != "v" {
			t.Fatalf("%s.f = %q, want v", k, got)
		}
	}
}
