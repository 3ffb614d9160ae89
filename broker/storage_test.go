package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

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

// A compacted topic keeps the latest value per key; tombstoned keys vanish
// once delete.retention.ms passed; offsets are never reused.
func TestCompactedTopic(t *testing.T) {
	b := startBroker(t, "", "log.retention.check.interval.ms", "50")
	createTopic(t, b.Addr(), "compact", 1, map[string]*string{
		"cleanup.policy":      strp("compact"),
		"segment.bytes":       strp("4096"),
		"delete.retention.ms": strp("0"),
	})
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("compact"), kgo.ProducerLinger(0))
	const keys, rounds = 20, 10
	for r := 0; r < rounds; r++ {
		var recs []*kgo.Record
		for k := 0; k < keys; k++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%02d", k)), Value: []byte(fmt.Sprintf("v%d-%d", r, k))})
		}
		if err := p.ProduceSync(testCtx(t, 10*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Tombstones for the first 5 keys.
	var tomb []*kgo.Record
	for k := 0; k < 5; k++ {
		tomb = append(tomb, &kgo.Record{Key: []byte(fmt.Sprintf("key-%02d", k))})
	}
	if err := p.ProduceSync(testCtx(t, 10*time.Second), tomb...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Filler so that the segments holding the tombstones roll and get cleaned.
	for i := 0; i < 100; i++ {
		if err := p.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Key: []byte("filler"), Value: []byte(fmt.Sprintf("f%03d-%s", i, string(make([]byte, 64))))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	end := int64(keys*rounds + 5 + 100)
	l, _ := b.topics.Get("compact")
	waitFor(t, 15*time.Second, "compaction", func() bool {
		count := map[string]int{}
		for _, r := range readTopic(t, b, "compact", end) {
			count[string(r.Key)]++
		}
		for k := 0; k < keys; k++ {
			if n := count[fmt.Sprintf("key-%02d", k)]; (k < 5 && n != 0) || (k >= 5 && n != 1) {
				return false
			}
		}
		return true
	})
	recs := readTopic(t, b, "compact", end)
	latest := map[string]string{}
	var lastOff int64 = -1
	for _, r := range recs {
		if r.Offset <= lastOff {
			t.Fatalf("offsets not increasing: %d after %d", r.Offset, lastOff)
		}
		lastOff = r.Offset
		latest[string(r.Key)] = string(r.Value)
	}
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("key-%02d", k)
		v, ok := latest[key]
		if k < 5 {
			if ok {
				t.Fatalf("tombstoned %s still present with %q", key, v)
			}
			continue
		}
		if want := fmt.Sprintf("v%d-%d", rounds-1, k); v != want {
			t.Fatalf("%s = %q, want %q", key, v, want)
		}
	}
	if hw := l.Partition(0).HighWatermark(); hw != end {
		t.Fatalf("high watermark %d, want %d: offsets must not be reused", hw, end)
	}
}

// readTopic reads partition 0 from the start up to the record at end-1
// (which compaction keeps: it is the latest value of its key).
func readTopic(t *testing.T, b *Broker, topic string, end int64) []*kgo.Record {
	t.Helper()
	cl := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var out []*kgo.Record
	ctx := testCtx(t, 10*time.Second)
	for len(out) == 0 || out[len(out)-1].Offset < end-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("reading the topic timed out")
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestRetentionDeletesOldSegments(t *testing.T) {
	b := startBroker(t, "", "log.retention.check.interval.ms", "50")
	createTopic(t, b.Addr(), "ret", 1, map[string]*string{"segment.bytes": strp("2048"), "retention.bytes": strp("4096")})
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ret"), kgo.ProducerLinger(0))
	for i := 0; i < 200; i++ {
		if err := p.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl := newClient(t, b.Addr())
	tp, _ := b.topics.Get("ret")
	// Retention deletes whole closed segments: what stays is at most
	// retention.bytes plus the active segment (which may overshoot
	// segment.bytes by one batch).
	waitFor(t, 10*time.Second, "retention to delete old segments", func() bool {
		return listOffset(t, cl, "ret", -2) > 100 && tp.Partition(0).Size() <= 4096+2048+200
	})
	if hw := listOffset(t, cl, "ret", -1); hw != 200 {
		t.Fatalf("latest offset %d, want 200", hw)
	}
}

func TestTopicAdminAndConfigs(t *testing.T) {
	b := startBroker(t, "", "log.retention.hours", "48")
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := testCtx(t, 20*time.Second)
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"cleanup.policy": strp("compact")}, "cfg"); err != nil {
		t.Fatal(err)
	}
	if r, _ := adm.CreateTopic(ctx, 2, 1, nil, "cfg"); r.Err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	if r, _ := adm.CreateTopic(ctx, 1, 3, nil, "rf3"); r.Err == nil {
		t.Fatal("replication factor 3 accepted on a single node")
	}
	if r, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": strp("soon")}, "badcfg"); r.Err == nil {
		t.Fatal("bad config value accepted")
	}
	if r, _ := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); r.Err == nil {
		t.Fatal("bad topic name accepted")
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, c := range rc[0].Configs {
		vals[c.Key] = c.MaybeValue()
	}
	if vals["cleanup.policy"] != "compact" || vals["retention.ms"] != "172800000" {
		t.Fatalf("configs: cleanup.policy=%q retention.ms=%q", vals["cleanup.policy"], vals["retention.ms"])
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("delete")}, {Name: "retention.ms", Value: strp("1000")}}, "cfg"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreatePartitions(ctx, 2, "cfg"); err != nil {
		t.Fatal(err)
	}
	// Everything persists across a restart.
	dir := b.cfg.DataDir
	b.Close()
	b2 := startBroker(t, dir, "log.retention.hours", "48")
	adm2 := kadm.NewClient(newClient(t, b2.Addr()))
	rc, err = adm2.DescribeTopicConfigs(testCtx(t, 5*time.Second), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc[0].Configs {
		vals[c.Key] = c.MaybeValue()
	}
	if vals["cleanup.policy"] != "compact,delete" || vals["retention.ms"] != "1000" {
		t.Fatalf("after restart: cleanup.policy=%q retention.ms=%q", vals["cleanup.policy"], vals["retention.ms"])
	}
	td, err := adm2.ListTopics(testCtx(t, 5*time.Second), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["cfg"].Partitions); n != 4 {
		t.Fatalf("cfg has %d partitions after restart, want 4", n)
	}
	if _, err := adm2.DeleteTopics(testCtx(t, 5*time.Second), "cfg"); err != nil {
		t.Fatal(err)
	}
	td, _ = adm2.ListTopics(testCtx(t, 5*time.Second))
	if td.Has("cfg") {
		t.Fatal("deleted topic still listed")
	}
	var _ = context.Background
}

func TestDataDirLockedByAnotherBroker(t *testing.T) {
	dir := t.TempDir()
	startBroker(t, dir)
	cfg := Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	if _, err := Open(cfg, Options{}); !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second broker on the same data dir: %v, want ErrDataDirLocked", err)
	}
}

func TestInternalTopicRefusesClientWrites(t *testing.T) {
	b := startBroker(t, "")
	cl := newClient(t, b.Addr())
	if p := rawProduce(t, cl, OffsetsTopic, batch(-1, -1, -1, "evil")); p.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to %s: code %d, want INVALID_TOPIC_EXCEPTION", OffsetsTopic, p.ErrorCode)
	}
	adm := kadm.NewClient(cl)
	if r, err := adm.DeleteTopics(testCtx(t, 5*time.Second), OffsetsTopic); err == nil && r[OffsetsTopic].Err == nil {
		t.Fatalf("deleting %s succeeded", OffsetsTopic)
	}
}
