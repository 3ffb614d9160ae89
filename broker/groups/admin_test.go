package groups

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestLoadInProgress(t *testing.T) {
	c := New(testConfig(), &memStore{}, testLogger(t))
	defer c.Close()
	ctx := context.Background()
	want := kerr.CoordinatorLoadInProgress.Code
	if r := join(c, ctx, 5, "g", "", nil); r.ErrorCode != want {
		t.Fatalf("JoinGroup = %s", errName(r.ErrorCode))
	}
	if r := syncGroup(c, ctx, "g", "m", nil, 1, nil); r.ErrorCode != want {
		t.Fatalf("SyncGroup = %s", errName(r.ErrorCode))
	}
	if code := heartbeat(c, "g", "m", nil, 1); code != want {
		t.Fatalf("Heartbeat = %s", errName(code))
	}
	if r := c.LeaveGroup(ctx, &kmsg.LeaveGroupRequest{Version: 1, Group: "g", MemberID: "m"}); r.ErrorCode != want {
		t.Fatalf("LeaveGroup = %s", errName(r.ErrorCode))
	}
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", "", -1, "t", map[int32]int64{0: 1})), want)
	if _, code := fetched(fetchV(t, c, 5, "g", nil)); code != want {
		t.Fatalf("OffsetFetch v5 = %s", errName(code))
	}
	if _, code := fetched(fetchV(t, c, 8, "g", nil)); code != want {
		t.Fatalf("OffsetFetch v8 = %s", errName(code))
	}
	if got, _ := fetched(fetchV(t, c, 1, "g", []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}})); got["t/0"].code != want {
		t.Fatalf("OffsetFetch v1 = %v", got)
	}
	if r := c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: 4}); r.ErrorCode != want {
		t.Fatalf("ListGroups = %s", errName(r.ErrorCode))
	}
	if r := c.DescribeGroups(ctx, &kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"g"}}); r.Groups[0].ErrorCode != want {
		t.Fatalf("DescribeGroups = %s", errName(r.Groups[0].ErrorCode))
	}
	if r := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{"g"}}); r.Groups[0].ErrorCode != want {
		t.Fatalf("DeleteGroups = %s", errName(r.Groups[0].ErrorCode))
	}
	if r := c.OffsetDelete(ctx, &kmsg.OffsetDeleteRequest{Group: "g"}); r.ErrorCode != want {
		t.Fatalf("OffsetDelete = %s", errName(r.ErrorCode))
	}
	if err := c.Load(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(nil); err != ErrAlreadyLoaded {
		t.Fatalf("second Load = %v", err)
	}
	if r := join(c, ctx, 5, "g", "", nil); r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("JoinGroup after Load = %s", errName(r.ErrorCode))
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	store := &memStore{}
	c := New(testConfig(), store, testLogger(t))
	if err := c.Load(nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := newClient(t, c, "g", "a")
	a.instanceID = kmsg.StringPtr("inst-a")
	a.session = 5 * time.Second // survives the test goroutine's pauses
	a.start()
	b := newClient(t, c, "g", "b")
	b.session = 300 * time.Millisecond // expires after the restart
	b.start()
	gen := waitStable(t, c, "g", a, b)
	before := describe(t, c, "g")
	sa, sb := a.state(), b.state()
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", sa.memberID, gen, "t1", map[int32]int64{0: 100, 1: 200})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "g", sb.memberID, gen, "t1", map[int32]int64{1: 201})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "simple", "", -1, "t2", map[int32]int64{3: 7})), 0)
	a.stop()
	b.stop()
	c.Close() // the broker stops

	// The broker restarts: a new coordinator loads what was stored.
	c2 := newTestCoordinator(t, testConfig(), store)
	for _, tc := range []struct {
		group, topic string
		part         int32
		want         int64
	}{{"g", "t1", 0, 100}, {"g", "t1", 1, 201}, {"simple", "t2", 3, 7}} {
		if o, ok := c2.CommittedOffset(tc.group, tc.topic, tc.part); !ok || o != tc.want {
			t.Fatalf("%s %s/%d = %d %v, want %d", tc.group, tc.topic, tc.part, o, ok, tc.want)
		}
	}
	got, _ := fetched(fetchV(t, c2, 8, "g", nil))
	if got["t1/0"].md != "md0" || got["t1/0"].epoch != 7 {
		t.Fatalf("restored offset metadata/epoch = %+v", got["t1/0"])
	}
	after := describe(t, c2, "g")
	if after.State != "Stable" || after.Protocol != before.Protocol || after.ProtocolType != before.ProtocolType || len(after.Members) != 2 {
		t.Fatalf("restored group: %s %s/%s %d members", after.State, after.ProtocolType, after.Protocol, len(after.Members))
	}
	byID := func(d kmsg.DescribeGroupsResponseGroup) map[string]kmsg.DescribeGroupsResponseGroupMember {
		out := make(map[string]kmsg.DescribeGroupsResponseGroupMember)
		for _, m := range d.Members {
			out[m.MemberID] = m
		}
		return out
	}
	bm, am := byID(before), byID(after)
	for id, m := range bm {
		r, ok := am[id]
		if !ok || !bytes.Equal(r.MemberAssignment, m.MemberAssignment) || !bytes.Equal(r.ProtocolMetadata, m.ProtocolMetadata) ||
			!strPtrEqual(r.InstanceID, m.InstanceID) || r.ClientID != m.ClientID {
			t.Fatalf("member %s not restored: before %+v after %+v", id, m, r)
		}
	}
	g := c2.lockGroup("g", false)
	gotGen := g.generation
	g.mu.Unlock()
	if gotGen != gen {
		t.Fatalf("restored generation %d, want %d", gotGen, gen)
	}

	// a carries on with its member id and generation (as kgo does after reconnecting); b
	// never comes back and is removed after its session timeout, which rebalances the group.
	if code := heartbeat(c2, "g", sa.memberID, kmsg.StringPtr("inst-a"), gen); code != 0 {
		t.Fatalf("heartbeat after restart = %s", errName(code))
	}
	allCodes(t, c2.OffsetCommit(ctx, commitReq(8, "g", sa.memberID, gen, "t1", map[int32]int64{0: 101})), 0)
	waitFor(t, 5*time.Second, "b removed and rebalance", func() (bool, string) {
		code := heartbeat(c2, "g", sa.memberID, kmsg.StringPtr("inst-a"), gen)
		return code == kerr.RebalanceInProgress.Code, errName(code)
	})
	r := join(c2, ctx, 5, "g", sa.memberID, kmsg.StringPtr("inst-a"))
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 || r.LeaderID != sa.memberID {
		t.Fatalf("rejoin after restart: %s gen %d members %d leader %q", errName(r.ErrorCode), r.Generation, len(r.Members), r.LeaderID)
	}
}

func TestLoadSkipsBadRecordsAndAppliesTombstones(t *testing.T) {
	good := offsetRecord("g", "t", 0, offsetEntry{offset: 5, leaderEpoch: -1, expireTime: -1})
	recs := []Record{
		{Key: []byte{0}}, // too short
		{Key: offsetKey("g", "t", 1), Value: []byte{0, 3, 1}}, // truncated value
		{Key: []byte{0, 9, 1, 2}, Value: []byte{1}},           // another record kind
		good,
		offsetRecord("g", "t", 2, offsetEntry{offset: 6, leaderEpoch: -1, expireTime: -1}),
		{Key: offsetKey("g", "t", 2)}, // tombstone
		offsetRecord("gone", "t", 0, offsetEntry{offset: 1, leaderEpoch: -1, expireTime: -1}),
		{Key: offsetKey("gone", "t", 0)},
		{Key: groupMetaKey("gone")},
	}
	store := &memStore{recs: recs}
	c := newTestCoordinator(t, testConfig(), store)
	if o, ok := c.CommittedOffset("g", "t", 0); !ok || o != 5 {
		t.Fatalf("t/0 = %d %v", o, ok)
	}
	if _, ok := c.CommittedOffset("g", "t", 2); ok {
		t.Fatal("tombstoned offset loaded")
	}
	if c.NumGroups() != 1 {
		t.Fatalf("NumGroups = %d, want 1", c.NumGroups())
	}
}

func TestLoadReadsKafkaV0Keys(t *testing.T) {
	// Key version 0 and value versions 0-2 as older Kafka brokers wrote them.
	k := kmsg.NewOffsetCommitKey()
	k.Version = 0
	k.Group, k.Topic, k.Partition = "old", "t", 4
	v := kmsg.NewOffsetCommitValue()
	v.Version = 1
	v.Offset, v.Metadata, v.CommitTimestamp, v.ExpireTimestamp = 77, "m", 1000, 2000
	gv := kmsg.NewGroupMetadataValue()
	gv.Version = 0
	gv.ProtocolType = "consumer"
	gv.Generation = 3
	c := newTestCoordinator(t, testConfig(), &memStore{recs: []Record{
		{Key: k.AppendTo(nil), Value: v.AppendTo(nil)},
		{Key: groupMetaKey("old"), Value: gv.AppendTo(nil)},
	}})
	g := c.lockGroup("old", false)
	if g == nil {
		t.Fatal("group not loaded")
	}
	o, gen, ptype := g.offsets["t"][4], g.generation, g.protocolType
	g.mu.Unlock()
	if o.offset != 77 || o.metadata != "m" || o.expireTime != 2000 || o.leaderEpoch != -1 || gen != 3 || ptype != "consumer" {
		t.Fatalf("loaded %+v gen %d type %q", o, gen, ptype)
	}
}

func TestDeleteGroups(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	id, gen := stableMember(t, c, "busy")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "busy", id, gen, "t1", map[int32]int64{0: 1})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "idle", "", -1, "t1", map[int32]int64{0: 1, 1: 2})), 0)

	resp := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{"busy", "idle", "missing", "idle"}})
	want := []int16{kerr.NonEmptyGroup.Code, 0, kerr.GroupIDNotFound.Code, kerr.GroupIDNotFound.Code}
	for i, g := range resp.Groups {
		if g.ErrorCode != want[i] {
			t.Errorf("group %s: %s, want %s", g.Group, errName(g.ErrorCode), errName(want[i]))
		}
	}
	if _, ok := c.CommittedOffset("idle", "t1", 0); ok {
		t.Fatal("deleted group's offsets still there")
	}
	// Tombstones: both offsets and the group metadata.
	tomb := map[string]bool{}
	for _, r := range store.records() {
		if r.Value == nil {
			tomb[string(r.Key)] = true
		}
	}
	for _, k := range [][]byte{offsetKey("idle", "t1", 0), offsetKey("idle", "t1", 1), groupMetaKey("idle")} {
		if !tomb[string(k)] {
			t.Fatalf("missing tombstone for key %x", k)
		}
	}
	// The busy group empties, then can be deleted.
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "busy"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id}}
	c.LeaveGroup(ctx, req)
	if r := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 0, Groups: []string{"busy"}}); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete emptied group: %s", errName(r.Groups[0].ErrorCode))
	}
	if c.NumGroups() != 0 {
		t.Fatalf("NumGroups = %d", c.NumGroups())
	}
	// A reload sees nothing.
	c2 := newTestCoordinator(t, testConfig(), store)
	if c2.NumGroups() != 0 {
		t.Fatalf("reloaded NumGroups = %d", c2.NumGroups())
	}
	// The name can be reused.
	if _, gen := stableMember(t, c, "busy"); gen != 1 {
		t.Fatalf("recreated group generation %d", gen)
	}
}

func TestOffsetDelete(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	// A consumer group subscribed to t1, with offsets for t1 and t2.
	id, gen := stableMember(t, c, "cg")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "cg", id, gen, "t1", map[int32]int64{0: 1})), 0)
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "cg", id, gen, "t2", map[int32]int64{0: 1, 1: 1})), 0)
	del := func(group string, topics ...string) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		for _, tp := range topics {
			req.Topics = append(req.Topics, kmsg.OffsetDeleteRequestTopic{Topic: tp, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}, {Partition: 1}}})
		}
		return c.OffsetDelete(ctx, req)
	}
	resp := del("cg", "t1", "t2")
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetDelete = %s", errName(resp.ErrorCode))
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			want := int16(0)
			if tp.Topic == "t1" {
				want = kerr.GroupSubscribedToTopic.Code
			}
			if p.ErrorCode != want {
				t.Fatalf("%s/%d: %s, want %s", tp.Topic, p.Partition, errName(p.ErrorCode), errName(want))
			}
		}
	}
	if _, ok := c.CommittedOffset("cg", "t1", 0); !ok {
		t.Fatal("subscribed topic's offset deleted")
	}
	if _, ok := c.CommittedOffset("cg", "t2", 0); ok {
		t.Fatal("t2 offset not deleted")
	}
	if !slices.ContainsFunc(store.records(), func(r Record) bool { return r.Value == nil && bytes.Equal(r.Key, offsetKey("cg", "t2", 1)) }) {
		t.Fatal("no tombstone for cg t2/1")
	}

	// A non-consumer group with members: NON_EMPTY_GROUP.
	jreq := kmsg.NewPtrJoinGroupRequest()
	jreq.Version = 3
	jreq.Group = "connect-cluster"
	jreq.SessionTimeoutMillis = 400
	jreq.ProtocolType = "connect"
	jreq.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "sessioned", Metadata: []byte("x")}}
	jr := c.JoinGroup(ctx, jreq)
	if jr.ErrorCode != 0 || jr.ProtocolType != nil { // v3 has no protocol type in the response
		t.Fatalf("connect join: %s %v", errName(jr.ErrorCode), jr.ProtocolType)
	}
	if s := syncGroup(c, ctx, "connect-cluster", jr.MemberID, nil, jr.Generation, nil); s.ErrorCode != 0 || len(s.MemberAssignment) != 0 {
		t.Fatalf("connect sync: %s %q", errName(s.ErrorCode), s.MemberAssignment)
	}
	if r := del("connect-cluster", "t1"); r.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("OffsetDelete on a busy connect group = %s", errName(r.ErrorCode))
	}
	if r := del("missing", "t1"); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("OffsetDelete on a missing group = %s", errName(r.ErrorCode))
	}
	// An empty group: everything goes.
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "empty", "", -1, "t1", map[int32]int64{0: 1})), 0)
	if r := del("empty", "t1"); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetDelete on an empty group = %+v", r)
	}
	if _, ok := c.CommittedOffset("empty", "t1", 0); ok {
		t.Fatal("empty group's offset not deleted")
	}
}

func TestListGroupsStatesFilter(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	stableMember(t, c, "stable")
	allCodes(t, c.OffsetCommit(ctx, commitReq(8, "empty", "", -1, "t", map[int32]int64{0: 1})), 0)
	r := join(c, ctx, 3, "completing", "", nil) // joined, not synced
	if r.ErrorCode != 0 {
		t.Fatal(errName(r.ErrorCode))
	}
	tests := []struct {
		version int16
		states  []string
		want    []string
	}{
		{0, nil, []string{"completing", "empty", "stable"}},
		{3, []string{"Stable"}, []string{"completing", "empty", "stable"}}, // no filter before v4
		{4, nil, []string{"completing", "empty", "stable"}},
		{4, []string{"Stable"}, []string{"stable"}},
		{4, []string{"empty", "COMPLETINGREBALANCE"}, []string{"completing", "empty"}},
		{4, []string{"Dead"}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("v%d %v", tt.version, tt.states), func(t *testing.T) {
			resp := c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: tt.version, StatesFilter: tt.states})
			var got []string
			for _, g := range resp.Groups {
				got = append(got, g.Group)
				if tt.version >= 4 && g.GroupState == "" {
					t.Errorf("no state for %s", g.Group)
				}
			}
			if resp.ErrorCode != 0 || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("groups %v (%s), want %v", got, errName(resp.ErrorCode), tt.want)
			}
		})
	}
}

func TestDescribeGroups(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := WithClientInfo(context.Background(), ClientInfo{ClientID: "my-client", ClientHost: "/127.0.0.1"})
	r := join(c, ctx, 5, "g", "", kmsg.StringPtr("i1"))
	if r.ErrorCode != 0 {
		t.Fatal(errName(r.ErrorCode))
	}
	d := describe(t, c, "g")
	if d.State != "CompletingRebalance" || d.Protocol != "" || len(d.Members) != 1 || len(d.Members[0].MemberAssignment) != 0 {
		t.Fatalf("completing: %+v", d)
	}
	syncGroup(c, ctx, "g", r.MemberID, kmsg.StringPtr("i1"), r.Generation, []kmsg.SyncGroupRequestGroupAssignment{{MemberID: r.MemberID, MemberAssignment: []byte("asg")}})
	d = describe(t, c, "g")
	m := d.Members[0]
	if d.State != "Stable" || d.Protocol != "range" || m.ClientID != "my-client" || m.ClientHost != "/127.0.0.1" ||
		m.InstanceID == nil || *m.InstanceID != "i1" || string(m.MemberAssignment) != "asg" || !bytes.Equal(m.ProtocolMetadata, consumerMeta("t1")) {
		t.Fatalf("stable: %+v member %+v", d, m)
	}
	if m.MemberID[:len("i1-")] != "i1-" {
		t.Fatalf("static member id %q does not start with the instance id", m.MemberID)
	}
	if d := describe(t, c, "missing"); d.State != "Dead" || d.ErrorCode != 0 {
		t.Fatalf("missing group: %+v", d)
	}
}

func strPtrEqual(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// TestEveryVersionRoundTrips calls each handler at every supported version and checks that
// the response has the request's version and survives kmsg encoding and decoding.
func TestEveryVersionRoundTrips(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	roundTrip := func(t *testing.T, resp kmsg.Response, version int16) {
		t.Helper()
		if resp.GetVersion() != version {
			t.Fatalf("%T version %d, want %d", resp, resp.GetVersion(), version)
		}
		fresh := resp.RequestKind().ResponseKind()
		fresh.SetVersion(version)
		if err := fresh.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Fatalf("%T v%d does not decode: %v", resp, version, err)
		}
	}
	for v := int16(0); v <= 9; v++ {
		t.Run(fmt.Sprintf("join-sync-heartbeat-v%d", v), func(t *testing.T) {
			group := fmt.Sprintf("g%d", v)
			r := join(c, ctx, v, group, "", nil)
			roundTrip(t, r, v)
			if v >= 4 {
				if r.ErrorCode != kerr.MemberIDRequired.Code {
					t.Fatalf("v%d first join = %s", v, errName(r.ErrorCode))
				}
				r = join(c, ctx, v, group, r.MemberID, nil)
				roundTrip(t, r, v)
			}
			if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != r.MemberID {
				t.Fatalf("v%d join = %s gen %d", v, errName(r.ErrorCode), r.Generation)
			}
			if (v >= 7) != (r.ProtocolType != nil) {
				t.Fatalf("v%d protocol type %v", v, r.ProtocolType)
			}
			sv := min(v, 5)
			sreq := kmsg.NewPtrSyncGroupRequest()
			sreq.Version = sv
			sreq.Group, sreq.MemberID, sreq.Generation = group, r.MemberID, r.Generation
			sreq.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: r.MemberID, MemberAssignment: []byte("x")}}
			s := c.SyncGroup(ctx, sreq)
			roundTrip(t, s, sv)
			if s.ErrorCode != 0 || string(s.MemberAssignment) != "x" {
				t.Fatalf("sync v%d = %s %q", sv, errName(s.ErrorCode), s.MemberAssignment)
			}
			hv := min(v, 4)
			hreq := kmsg.NewPtrHeartbeatRequest()
			hreq.Version = hv
			hreq.Group, hreq.MemberID, hreq.Generation = group, r.MemberID, r.Generation
			h := c.Heartbeat(ctx, hreq)
			roundTrip(t, h, hv)
			if h.ErrorCode != 0 {
				t.Fatalf("heartbeat v%d = %s", hv, errName(h.ErrorCode))
			}
			cv := min(v, 8)
			creq := commitReq(cv, group, r.MemberID, r.Generation, "t", map[int32]int64{0: 5})
			if cv == 0 {
				creq = commitReq(cv, "simple", "", -1, "t", map[int32]int64{0: 5})
			}
			cr := c.OffsetCommit(ctx, creq)
			roundTrip(t, cr, cv)
			allCodes(t, cr, 0)
			fr := fetchV(t, c, cv, group, nil)
			if cv < 2 {
				fr = fetchV(t, c, cv, "simple", []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}})
			}
			roundTrip(t, fr, cv)
			if got, _ := fetched(fr); got["t/0"].offset != 5 {
				t.Fatalf("fetch v%d = %v", cv, got)
			}
			lv := min(v, 5)
			lreq := kmsg.NewPtrLeaveGroupRequest()
			lreq.Version = lv
			lreq.Group = group
			lreq.MemberID = r.MemberID
			lreq.Members = []kmsg.LeaveGroupRequestMember{{MemberID: r.MemberID}}
			lr := c.LeaveGroup(ctx, lreq)
			roundTrip(t, lr, lv)
			if lr.ErrorCode != 0 || (lv >= 3 && lr.Members[0].ErrorCode != 0) {
				t.Fatalf("leave v%d = %+v", lv, lr)
			}
		})
	}
	for v := int16(0); v <= 5; v++ {
		r := c.DescribeGroups(ctx, &kmsg.DescribeGroupsRequest{Version: v, Groups: []string{"g9", "missing"}})
		roundTrip(t, r, v)
	}
	for v := int16(0); v <= 4; v++ {
		r := c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: v})
		roundTrip(t, r, v)
		if len(r.Groups) != 11 {
			t.Fatalf("ListGroups v%d: %d groups", v, len(r.Groups))
		}
	}
	for v := int16(0); v <= 2; v++ {
		r := c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: v, Groups: []string{fmt.Sprintf("g%d", v)}})
		roundTrip(t, r, v)
		if r.Groups[0].ErrorCode != 0 {
			t.Fatalf("DeleteGroups v%d = %s", v, errName(r.Groups[0].ErrorCode))
		}
	}
	r := c.OffsetDelete(ctx, &kmsg.OffsetDeleteRequest{Version: 0, Group: "g5", Topics: []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}})
	roundTrip(t, r, 0)
	if r.ErrorCode != 0 {
		t.Fatalf("OffsetDelete = %s", errName(r.ErrorCode))
	}
}
