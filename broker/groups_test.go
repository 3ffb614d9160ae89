package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Three kgo members with cooperative-sticky rebalancing: every record is
// consumed, members joining and leaving move partitions, and the committed
// offsets end at the high watermarks.
func TestConsumerGroupCooperativeSticky(t *testing.T) {
	b := startBroker(t, "")
	const topic, group, partitions = "grp", "g1", 6
	createTopic(t, b.Addr(), topic, partitions, nil)
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	produce := func(from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}
		if err := p.ProduceSync(testCtx(t, 20*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 3000)

	var mu sync.Mutex
	seen := map[string]int{}
	type member struct {
		cl     *kgo.Client
		cancel context.CancelFunc
		done   chan struct{}
	}
	var revoked, assigned int
	start := func() *member {
		cl := newClient(t, b.Addr(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(200*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { mu.Lock(); assigned++; mu.Unlock() }),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
				mu.Lock()
				revoked++
				mu.Unlock()
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					t.Errorf("commit on revoke: %v", err)
				}
			}),
		)
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{cl: cl, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(m.done)
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
				mu.Unlock()
			}
		}()
		return m
	}
	stop := func(m *member) {
		m.cancel()
		<-m.done
		m.cl.Close() // commits and leaves the group
	}
	waitSeen := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := len(seen)
			mu.Unlock()
			if got >= n {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("consumed %d distinct records, want %d", len(seen), n)
	}
	adm := kadm.NewClient(newClient(t, b.Addr()))
	waitMembers := func(n int) kadm.DescribedGroup {
		deadline := time.Now().Add(30 * time.Second)
		var last kadm.DescribedGroup
		for time.Now().Before(deadline) {
			dg, err := adm.DescribeGroups(context.Background(), group)
			if err == nil {
				last = dg[group]
				if last.State == "Stable" && len(last.Members) == n {
					return last
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("group never became Stable with %d members: %+v", n, last.State)
		return last
	}

	m1, m2, m3 := start(), start(), start()
	dg := waitMembers(3)
	total := 0
	for _, m := range dg.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			t.Fatal("member assignment is not a consumer assignment")
		}
		n := 0
		for _, tp := range ca.Topics {
			n += len(tp.Partitions)
		}
		if n != 2 {
			t.Fatalf("member %s has %d partitions, want 2 of 6", m.MemberID, n)
		}
		total += n
	}
	if total != partitions {
		t.Fatalf("%d partitions assigned, want %d", total, partitions)
	}
	waitSeen(3000)

	stop(m3)
	waitMembers(2)
	produce(3000, 1000)
	waitSeen(4000)

	m4 := start()
	waitMembers(3)
	produce(4000, 1000)
	waitSeen(5000)
	stop(m1)
	stop(m2)
	stop(m4)

	lags, err := adm.Lag(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	lags.Each(func(l kadm.DescribedGroupLag) {
		for _, ps := range l.Lag {
			for _, pl := range ps {
				committed += pl.Commit.At
				if pl.Lag != 0 {
					t.Errorf("partition %d lag %d after every member committed", pl.Partition, pl.Lag)
				}
			}
		}
	})
	if committed != 5000 {
		t.Fatalf("committed offsets sum to %d, want 5000", committed)
	}
	mu.Lock()
	defer mu.Unlock()
	if assigned == 0 || revoked == 0 {
		t.Fatalf("assigned %d, revoked %d callbacks: rebalances did not happen", assigned, revoked)
	}
}

func TestCommittedOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	createTopic(t, b.Addr(), "keep", 3, nil)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	offs := kadm.Offsets{}
	for p := int32(0); p < 3; p++ {
		offs.Add(kadm.Offset{Topic: "keep", Partition: p, At: int64(10 * (p + 1)), LeaderEpoch: -1, Metadata: fmt.Sprint("m", p)})
	}
	resp, err := adm.CommitOffsets(testCtx(t, 10*time.Second), "g-restart", offs)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, dir)
	adm2 := kadm.NewClient(newClient(t, b2.Addr()))
	fetched, err := adm2.FetchOffsets(testCtx(t, 10*time.Second), "g-restart")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch: %v %v", err, fetched.Error())
	}
	for p := int32(0); p < 3; p++ {
		o, ok := fetched.Lookup("keep", p)
		if !ok || o.At != int64(10*(p+1)) || o.Metadata != fmt.Sprint("m", p) {
			t.Fatalf("partition %d: got %+v, want offset %d", p, o, 10*(p+1))
		}
	}
	groups, err := adm2.ListGroups(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups["g-restart"]; !ok {
		t.Fatalf("group not listed after restart: %v", groups.Groups())
	}
}
