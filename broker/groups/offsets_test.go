package groups

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func commitReq(version int16, group, member string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group = group
	req.MemberID = member
	req.Generation = gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	for p := int32(0); p < int32(len(offsets)+10); p++ {
		o, ok := offsets[p]
		if !ok {
			continue
		}
		pp := kmsg.NewOffsetCommitRequestTopicPartition()
		pp.Partition = p
		pp.Offset = o
		pp.LeaderEpoch = 7
		pp.Metadata = kmsg.StringPtr(fmt.Sprintf("md%d", p))
		t.Partitions = append(t.Partitions, pp)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{t}
	return req
}

// commitCodes returns the per-partition error codes of a commit response.
func commitCodes(resp *kmsg.OffsetCommitResponse) map[int32]int16 {
	out := make(map[int32]int16)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.ErrorCode
		}
	}
	return out
}

func allCodes(t *testing.T, resp *kmsg.OffsetCommitResponse, want int16) {
	t.Helper()
	codes := commitCodes(resp)
	if len(codes) == 0 {
		t.Fatal("empty commit response")
	}
	for p, code := range codes {
		if code != want {
			t.Fatalf("partition %d: %s, want %s", p, errName(code), errName(want))
		}
	}
}

// stableMember makes group g Stable with one member and returns its id and generation.
func stableMember(t *testing.T, c *Coordinator, group string, protos ...kmsg.JoinGroupRequestProtocol) (string, int32) {
	t.Helper()
	ctx := context.Background()
	r := join(c, ctx, 3, group, "", nil, protos...)
	if r.ErrorCode != 0 {
		t.Fatalf("join: %s", errName(r.ErrorCode))
	}
	s := syncGroup(c, ctx, group, r.MemberID, nil, r.Generation, []kmsg.SyncGroupRequestGroupAssignment{{MemberID: r.MemberID, MemberAssignment: []byte("a")}})
	if s.ErrorCode != 0 {
		t.Fatalf("sync: %s", errName(s.ErrorCode))
	}
	return r.MemberID, r.Generation
}

func TestOffsetCommitValidation(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	id, gen := stableMember(t, c, "g")
	tests := []struct {
		name    string
		version int16
		group   string
		member  string
		gen     int32
		want    int16
	}{
		{"member commit", 8, "g", id, gen, 0},
		{"member commit v2", 2, "g", id, gen, 0},
		{"illegal generation", 8, "g", id, gen + 1, kerr.IllegalGeneration.Code},
		{"unknown member", 8, "g", "nobody", gen, kerr.UnknownMemberID.Code},
		{"simple commit to a group with members", 8, "g", "", -1, kerr.UnknownMemberID.Code},
		{"v0 commit to a group with members", 0, "g", "", -1, kerr.UnknownMemberID.Code},
		{"member commit to unknown group", 8, "nogroup", id, 1, kerr.IllegalGeneration.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.OffsetCommit(ctx, commitReq(tt.version, tt.group, tt.member, tt.gen, "t1", map[int32]int64{0: 10, 1: 20}))
			if resp.Version != tt.version {
				t.Fatalf("response version %d", resp.Version)
			}
			allCodes(t, resp, tt.want)
		})
	}
	if _, ok := c.CommittedOffset("nogroup", "t1", 0); ok {
		t.Fatal("failed commit created offsets")
	}
	if c.lockGroup("nogroup", false) != nil {
		t.Fatal("failed member commit created a group")
	}
	if o, ok := c.CommittedOffset("g", "t1", 1); !ok || o != 20 {
		t.Fatalf("committed offset = %d, %v", o, ok)
	}

	// Metadata over the limit fails that partition only.
	req := commitReq(8, "g", id, gen, "t1", map[int32]int64{0: 11, 1: 21})
	big := make([]byte, 5000)
	req.Topics[0].Partitions[1].Metadata = kmsg.StringPtr(string(big))
	codes := commitCodes(c.OffsetCommit(ctx, req))
	if codes[0] != 0 || codes[1] != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("codes = %v", codes)
	}
	if o, _ := c.CommittedOffset("g", "t1", 0); o != 11 {
		t.Fatalf("partition 0 = %d, want 11", o)
	}
	if o, _ := c.CommittedOffset("g", "t1", 1); o != 20 {
		t.Fatalf("partition 1 = %d, want 20 (unchanged)", o)
	}
}

func TestOffsetCommitDuringRebalance(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	id, gen := stableMember(t, c, "g")
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { done <- join(c, ctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "rebalance", func() (bool, string) {
		return describe(t, c, "g").State == "PreparingRebalance", ""
	})
	// PreparingRebalance: the old generation may still commit.
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", id, gen, "t1", map[int32]int64{0: 5})), 0)
	r := join(c, ctx, 3, "g", id, nil)
	<-done
	// CompletingRebalance: REBALANCE_IN_PROGRESS.
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", id, r.Generation, "t1", map[int32]int64{0: 6})), kerr.RebalanceInProgress.Code)
	if o, _ := c.CommittedOffset("g", "t1", 0); o != 5 {
		t.Fatalf("offset = %d, want 5", o)
	}
}

func TestSimpleCommitsEmptyGroup(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	for _, v := range []int16{0, 1, 5, 8} {
		resp := c.OffsetCommit(ctx, commitReq(v, "simple", "", -1, "t1", map[int32]int64{0: int64(100 + v)}))
		allCodes(t, resp, 0)
		if o, ok := c.CommittedOffset("simple", "t1", 0); !ok || o != int64(100+v) {
			t.Fatalf("v%d: offset %d %v", v, o, ok)
		}
	}
	// One Append per commit request.
	if n := store.appendCount(); n != 4 {
		t.Fatalf("%d appends for 4 commits", n)
	}
	lg := c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: 4})
	if len(lg.Groups) != 1 || lg.Groups[0].Group != "simple" || lg.Groups[0].ProtocolType != "" || lg.Groups[0].GroupState != "Empty" {
		t.Fatalf("ListGroups = %+v", lg.Groups)
	}
	// Once consumers join, simple commits are refused.
	stableMember(t, c, "simple")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "simple", "", -1, "t1", map[int32]int64{0: 1})), kerr.UnknownMemberID.Code)
}

func TestOffsetCommitRetentionAndTimestamps(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	var mu sync.Mutex
	cfg := testConfig()
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := &memStore{}
	c := newTestCoordinator(t, cfg, store)
	ctx := context.Background()
	// v1 with an explicit commit timestamp, v2 with a retention time.
	req := commitReq(1, "g", "", -1, "t1", map[int32]int64{0: 1})
	req.Topics[0].Partitions[0].Timestamp = 42
	allCodes(t, c.OffsetCommit(ctx, req), 0)
	req = commitReq(2, "g", "", -1, "t2", map[int32]int64{0: 2})
	req.RetentionTimeMillis = 1000
	allCodes(t, c.OffsetCommit(ctx, req), 0)
	g := c.lockGroup("g", false)
	o1, o2 := g.offsets["t1"][0], g.offsets["t2"][0]
	g.mu.Unlock()
	if o1.commitTime != 42 || o1.expireTime != -1 || o1.leaderEpoch != -1 {
		t.Fatalf("v1 entry = %+v", o1)
	}
	if o2.commitTime != now.UnixMilli() || o2.expireTime != now.UnixMilli()+1000 {
		t.Fatalf("v2 entry = %+v", o2)
	}
}

func fetchV(t *testing.T, c *Coordinator, version int16, group string, topics []kmsg.OffsetFetchRequestTopic) *kmsg.OffsetFetchResponse {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = version
	if version >= 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		if topics != nil {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, tp := range topics {
				rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: tp.Topic, Partitions: tp.Partitions})
			}
		}
		req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	} else {
		req.Group = group
		req.Topics = topics
	}
	resp := c.OffsetFetch(context.Background(), req)
	if resp.Version != version {
		t.Fatalf("response version %d, want %d", resp.Version, version)
	}
	return resp
}

// fetched flattens a fetch response (any version) to topic/partition -> offset, epoch,
// metadata, error.
type fetchedPart struct {
	offset int64
	epoch  int32
	md     string
	code   int16
}

func fetched(resp *kmsg.OffsetFetchResponse) (map[string]fetchedPart, int16) {
	out := make(map[string]fetchedPart)
	if resp.Version >= 8 {
		if len(resp.Groups) != 1 {
			return out, -1
		}
		g := resp.Groups[0]
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = fetchedPart{p.Offset, p.LeaderEpoch, *p.Metadata, p.ErrorCode}
			}
		}
		return out, g.ErrorCode
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = fetchedPart{p.Offset, p.LeaderEpoch, *p.Metadata, p.ErrorCode}
		}
	}
	return out, resp.ErrorCode
}

func TestOffsetFetchVersions(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	id, gen := stableMember(t, c, "g")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", id, gen, "t1", map[int32]int64{0: 10, 2: 30})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", id, gen, "t2", map[int32]int64{1: 5})), 0)

	requested := []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0, 1, 2}}, {Topic: "t3", Partitions: []int32{0}}}
	for v := int16(0); v <= 8; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			got, code := fetched(fetchV(t, c, v, "g", requested))
			if code != 0 {
				t.Fatalf("error %s", errName(code))
			}
			want := map[string]fetchedPart{
				"t1/0": {10, 7, "md0", 0},
				"t1/1": {-1, -1, "", 0},
				"t1/2": {30, 7, "md2", 0},
				"t3/0": {-1, -1, "", 0},
			}
			if v < 5 { // no leader epoch before v5
				for k, p := range want {
					p.epoch = -1
					want[k] = p
				}
				for k, p := range got {
					p.epoch = -1
					got[k] = p
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			if v >= 2 {
				all, _ := fetched(fetchV(t, c, v, "g", nil))
				if len(all) != 3 || all["t2/1"].offset != 5 {
					t.Fatalf("all offsets = %v", all)
				}
			}
			// An unknown group: -1 everywhere, no error.
			none, code := fetched(fetchV(t, c, v, "unknown", requested))
			if code != 0 || len(none) != 4 || none["t1/0"].offset != -1 {
				t.Fatalf("unknown group: %v %s", none, errName(code))
			}
		})
	}

	// v8 with several groups in one request.
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "other", "", -1, "t9", map[int32]int64{3: 33})), 0)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t2", Partitions: []int32{1}}}},
		{Group: "other"}, // all
	}
	resp := c.OffsetFetch(ctx, req)
	if len(resp.Groups) != 2 || resp.Groups[0].Group != "g" || resp.Groups[1].Group != "other" {
		t.Fatalf("groups = %+v", resp.Groups)
	}
	if p := resp.Groups[0].Topics[0].Partitions[0]; p.Offset != 5 {
		t.Fatalf("g t2/1 = %d", p.Offset)
	}
	if tps := resp.Groups[1].Topics; len(tps) != 1 || tps[0].Topic != "t9" || tps[0].Partitions[0].Offset != 33 {
		t.Fatalf("other = %+v", tps)
	}
}

func TestStoreFailure(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	id, gen := stableMember(t, c, "g")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", id, gen, "t1", map[int32]int64{0: 10})), 0)

	store.setFail(errStoreDown)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", id, gen, "t1", map[int32]int64{0: 99, 1: 99})), kerr.CoordinatorNotAvailable.Code)
	if o, _ := c.CommittedOffset("g", "t1", 0); o != 10 {
		t.Fatalf("offset after failed commit = %d, want 10", o)
	}
	if _, ok := c.CommittedOffset("g", "t1", 1); ok {
		t.Fatal("failed commit created an offset")
	}
	// A simple commit that fails does not leave a group behind.
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "ghost", "", -1, "t1", map[int32]int64{0: 1})), kerr.CoordinatorNotAvailable.Code)
	if c.lockGroup("ghost", false) != nil {
		t.Fatal("failed simple commit left a group")
	}
	// A rebalance whose assignment cannot be persisted fails the sync and rebalances.
	r := join(c, ctx, 3, "g", id, nil) // leader rejoin: rebalance, completes at once
	if r.ErrorCode != 0 {
		t.Fatalf("rejoin: %s", errName(r.ErrorCode))
	}
	s := syncGroup(c, ctx, "g", id, nil, r.Generation, []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("x")}})
	if s.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("sync with store down = %s", errName(s.ErrorCode))
	}
	if st := describe(t, c, "g").State; st != "PreparingRebalance" {
		t.Fatalf("state after failed sync = %s", st)
	}
	// DeleteGroups and OffsetDelete fail without changing anything.
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "e", "", -1, "t1", map[int32]int64{0: 1})), kerr.CoordinatorNotAvailable.Code)
	store.setFail(nil)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "e", "", -1, "t1", map[int32]int64{0: 1})), 0)
	store.setFail(errStoreDown)
	dresp := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{"e"}})
	if dresp.Groups[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("DeleteGroups with store down = %s", errName(dresp.Groups[0].ErrorCode))
	}
	oresp := c.OffsetDelete(ctx, &kmsg.OffsetDeleteRequest{Group: "e", Topics: []kmsg.OffsetDeleteRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}})
	if oresp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("OffsetDelete with store down = %s", errName(oresp.ErrorCode))
	}
	if o, ok := c.CommittedOffset("e", "t1", 0); !ok || o != 1 {
		t.Fatalf("offset after failed deletes = %d %v", o, ok)
	}
	// With the store back, the member rejoins and the group stabilizes.
	store.setFail(nil)
	r = join(c, ctx, 3, "g", id, nil)
	if s := syncGroup(c, ctx, "g", id, nil, r.Generation, []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("x")}}); s.ErrorCode != 0 || string(s.MemberAssignment) != "x" {
		t.Fatalf("sync after recovery: %s %q", errName(s.ErrorCode), s.MemberAssignment)
	}
}

func TestConcurrentCommitsKeepLogOrder(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				resp := c.OffsetCommit(ctx, commitReq(8, "g", "", -1, "t1", map[int32]int64{0: int64(w*1000 + i)}))
				if code := commitCodes(resp)[0]; code != 0 {
					t.Errorf("commit: %s", errName(code))
					return
				}
			}
		}()
	}
	wg.Wait()
	mem, _ := c.CommittedOffset("g", "t1", 0)
	// The last record in the store is the offset in memory.
	c2 := New(testConfig(), store, testLogger(t))
	defer c2.Close()
	if err := c2.Load(store.records()); err != nil {
		t.Fatal(err)
	}
	if got, _ := c2.CommittedOffset("g", "t1", 0); got != mem {
		t.Fatalf("reloaded offset %d != in-memory %d", got, mem)
	}
}

func TestOffsetRetention(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	cfg := testConfig()
	cfg.OffsetsRetention = time.Hour
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := &memStore{}
	c := newTestCoordinator(t, cfg, store)
	ctx := context.Background()

	// A consumer group that became empty, and a commit-only group.
	a := newClient(t, c, "consumers", "a")
	a.leaveOnStop = true
	a.start()
	gen := waitStable(t, c, "consumers", a)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "consumers", a.state().memberID, gen, "t1", map[int32]int64{0: 1})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "simple", "", -1, "t1", map[int32]int64{0: 1})), 0)
	advance(30 * time.Minute)
	a.stop()                  // leaves: the group is Empty from now
	advance(40 * time.Minute) // simple t1 is 70 min old; consumers empty for 40 min
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "simple", "", -1, "t2", map[int32]int64{0: 2})), 0)
	c.expireOffsets(ctx)
	if _, ok := c.CommittedOffset("simple", "t1", 0); ok {
		t.Fatal("simple t1 not expired")
	}
	if _, ok := c.CommittedOffset("simple", "t2", 0); !ok {
		t.Fatal("simple t2 expired too early")
	}
	if _, ok := c.CommittedOffset("consumers", "t1", 0); !ok {
		t.Fatal("consumer group offsets expired before the group was empty for the retention")
	}
	advance(30 * time.Minute)
	c.expireOffsets(ctx)
	if _, ok := c.CommittedOffset("consumers", "t1", 0); ok {
		t.Fatal("consumer group offsets not expired")
	}
	if d := describe(t, c, "consumers"); d.State != "Dead" {
		t.Fatalf("expired empty group state %s, want Dead (removed)", d.State)
	}
	if n := c.NumGroups(); n != 1 {
		t.Fatalf("NumGroups = %d, want 1 (simple)", n)
	}
	// Tombstones reach the store: a reload agrees.
	c2 := New(cfg, store, testLogger(t))
	defer c2.Close()
	if err := c2.Load(store.records()); err != nil {
		t.Fatal(err)
	}
	if c2.NumGroups() != 1 {
		t.Fatalf("reloaded NumGroups = %d", c2.NumGroups())
	}
	if _, ok := c2.CommittedOffset("simple", "t1", 0); ok {
		t.Fatal("reloaded an expired offset")
	}
}

func TestDeleteTopicOffsets(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	id, gen := stableMember(t, c, "g1")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g1", id, gen, "gone", map[int32]int64{0: 1, 1: 2})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g1", id, gen, "kept", map[int32]int64{0: 3})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g2", "", -1, "gone", map[int32]int64{5: 4})), 0)

	store.setFail(errStoreDown)
	if err := c.DeleteTopicOffsets(ctx, "gone"); err == nil {
		t.Fatal("DeleteTopicOffsets with the store down succeeded")
	}
	if _, ok := c.CommittedOffset("g2", "gone", 5); !ok {
		t.Fatal("offset removed although its tombstone was not written")
	}
	store.setFail(nil)
	if err := c.DeleteTopicOffsets(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		g string
		p int32
	}{{"g1", 0}, {"g1", 1}, {"g2", 5}} {
		if _, ok := c.CommittedOffset(k.g, "gone", k.p); ok {
			t.Fatalf("%s gone/%d still committed", k.g, k.p)
		}
	}
	if o, ok := c.CommittedOffset("g1", "kept", 0); !ok || o != 3 {
		t.Fatalf("kept/0 = %d %v", o, ok)
	}
	c2 := newTestCoordinator(t, testConfig(), store)
	if _, ok := c2.CommittedOffset("g2", "gone", 5); ok {
		t.Fatal("reload restored a deleted topic's offset")
	}
}
