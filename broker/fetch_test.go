package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchReq builds a Fetch of one partition; kgo sends it at the highest
// version both sides know, so it names the topic both ways.
func fetchReq(b *Broker, topic string, offset int64, maxWait, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	if tp, ok := b.topics.Get(topic); ok {
		rt.TopicID = tp.ID
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// A fetch at the end of the log waits up to MaxWait, and returns as soon as
// data arrives.
func TestFetchLongPoll(t *testing.T) {
	b := startBroker(t, "")
	createTopic(t, b.Addr(), "lp", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("lp"))

	start := time.Now()
	resp, err := fetchReq(b, "lp", 0, 400, 1).RequestWith(testCtx(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 350*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("empty long poll answered after %v, want about MaxWait (400 ms)", waited)
	}
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 0 {
		t.Fatalf("empty log returned %d bytes", n)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	var got *kmsg.FetchResponse
	var waited time.Duration
	go func() {
		defer wg.Done()
		s := time.Now()
		got, err = fetchReq(b, "lp", 0, 10000, 1).RequestWith(testCtx(t, 15*time.Second), cl)
		waited = time.Since(s)
	}()
	time.Sleep(200 * time.Millisecond)
	if err := cl.ProduceSync(testCtx(t, 5*time.Second), &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if waited > 3*time.Second || len(got.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("long poll returned after %v with %d bytes; want early, with the record", waited, len(got.Topics[0].Partitions[0].RecordBatches))
	}
	// Out of range offsets are answered at once.
	resp, err = fetchReq(b, "lp", 99, 5000, 1).RequestWith(testCtx(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: code %d, want OFFSET_OUT_OF_RANGE", code)
	}
}

func TestListOffsetsByTimestampAndDeleteRecords(t *testing.T) {
	b := startBroker(t, "")
	createTopic(t, b.Addr(), "ts", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ts"), kgo.ProducerLinger(0))
	base := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(testCtx(t, 5*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ ts, want int64 }{
		{base.UnixMilli(), 0},
		{base.Add(4*time.Minute + time.Second).UnixMilli(), 5},
		{base.Add(9 * time.Minute).UnixMilli(), 9},
		{base.Add(time.Hour).UnixMilli(), -1},
		{-1, 10}, {-2, 0}, {-3, 9},
	} {
		if got := listOffset(t, cl, "ts", tc.ts); got != tc.want {
			t.Errorf("ListOffsets(%d) = %d, want %d", tc.ts, got, tc.want)
		}
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "ts", Partition: 0, At: 6})
	resp, err := adm.DeleteRecords(testCtx(t, 5*time.Second), offs)
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	if got := listOffset(t, cl, "ts", -2); got != 6 {
		t.Fatalf("earliest offset %d after DeleteRecords(6)", got)
	}
	recs := consumeAll(t, b.Addr(), "ts", 4)
	if recs[0].Offset != 6 {
		t.Fatalf("consumption from the start begins at %d, want 6", recs[0].Offset)
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := startBroker(t, "")
	createTopic(t, b.Addr(), "ep", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ep"))
	if err := cl.ProduceSync(testCtx(t, 5*time.Second), &kgo.Record{Value: []byte("x")}, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ep"
	for _, e := range []int32{0, 5} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.LeaderEpoch, rp.CurrentLeaderEpoch = e, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	p0, p5 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if p0.ErrorCode != 0 || p0.LeaderEpoch != 0 || p0.EndOffset != 2 {
		t.Fatalf("epoch 0: %+v", p0)
	}
	if p5.EndOffset != -1 {
		t.Fatalf("unknown epoch 5 ends at %d, want -1", p5.EndOffset)
	}
}

var _ = context.Background
