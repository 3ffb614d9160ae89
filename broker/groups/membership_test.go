package groups

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func checkEchoAssignments(t *testing.T, gen int32, cls ...*client) {
	t.Helper()
	for i, cl := range cls {
		st := cl.state()
		want := fmt.Sprintf("%s@%d", st.memberID, gen)
		if string(st.assignment) != want {
			t.Errorf("client %d assignment = %q, want %q", i, st.assignment, want)
		}
	}
}

func TestJoinSyncAndRebalanceOnNewMember(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	var cls []*client
	for i := range 3 {
		cls = append(cls, newClient(t, c, "g", fmt.Sprintf("c%d", i)).start())
	}
	gen3 := waitStable(t, c, "g", cls...)
	checkEchoAssignments(t, gen3, cls...)
	d := describe(t, c, "g")
	if d.ProtocolType != "consumer" || d.Protocol != "range" {
		t.Fatalf("protocol type/name = %q/%q", d.ProtocolType, d.Protocol)
	}
	for _, m := range d.Members {
		if !bytes.Equal(m.MemberAssignment, []byte(m.MemberID+fmt.Sprintf("@%d", gen3))) {
			t.Errorf("DescribeGroups assignment of %s = %q", m.MemberID, m.MemberAssignment)
		}
	}

	// A fourth member joins: the others learn it through heartbeats and rejoin.
	cls = append(cls, newClient(t, c, "g", "c3").start())
	gen4 := waitStable(t, c, "g", cls...)
	if gen4 <= gen3 {
		t.Fatalf("generation after 4th member = %d, want > %d", gen4, gen3)
	}
	checkEchoAssignments(t, gen4, cls...)

	// The completed sync persisted the group metadata with the assignment.
	if !storeHasGroupMeta(t, store, "g", gen4, 4) {
		t.Fatalf("store has no group metadata for generation %d with 4 members", gen4)
	}
}

// storeHasGroupMeta reports whether the last group metadata record of group has generation
// gen and n members with non-empty assignments.
func storeHasGroupMeta(t *testing.T, store *memStore, group string, gen int32, n int) bool {
	t.Helper()
	var last *kmsg.GroupMetadataValue
	for _, r := range store.records() {
		var k kmsg.GroupMetadataKey
		if len(r.Key) < 2 || r.Key[1] != 2 || k.ReadFrom(r.Key) != nil || k.Group != group {
			continue
		}
		last = nil
		if r.Value != nil {
			v := new(kmsg.GroupMetadataValue)
			if err := v.ReadFrom(r.Value); err != nil {
				t.Fatalf("decoding group metadata: %v", err)
			}
			last = v
		}
	}
	if last == nil || last.Generation != gen || len(last.Members) != n {
		return false
	}
	for _, m := range last.Members {
		if len(m.Assignment) == 0 {
			return false
		}
	}
	return true
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	a := newClient(t, c, "g", "a").start()
	b := newClient(t, c, "g", "b").start()
	d := newClient(t, c, "g", "d")
	d.session = 300 * time.Millisecond
	d.start()
	gen := waitStable(t, c, "g", a, b, d)
	gone := d.state().memberID
	start := time.Now()
	d.stopHeartbeating()
	gen2 := waitStable(t, c, "g", a, b)
	if gen2 <= gen {
		t.Fatalf("generation %d after removal, want > %d", gen2, gen)
	}
	if el := time.Since(start); el < d.session/2 {
		t.Fatalf("member removed after %v, before its session timeout %v", el, d.session)
	}
	for _, m := range describe(t, c, "g").Members {
		if m.MemberID == gone {
			t.Fatalf("expired member %s still in group", gone)
		}
	}
	checkEchoAssignments(t, gen2, a, b)
}

func TestLeaveGroup(t *testing.T) {
	for _, version := range []int16{0, 2, 3, 5} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			c := newTestCoordinator(t, testConfig(), &memStore{})
			a := newClient(t, c, "g", "a").start()
			b := newClient(t, c, "g", "b").start()
			l := newClient(t, c, "g", "l").start()
			gen := waitStable(t, c, "g", a, b, l)
			id := l.state().memberID
			l.stop()

			req := kmsg.NewPtrLeaveGroupRequest()
			req.Version = version
			req.Group = "g"
			if version < 3 {
				req.MemberID = id
			} else {
				req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id}, {MemberID: "nobody"}}
			}
			resp := c.LeaveGroup(context.Background(), req)
			if resp.ErrorCode != 0 {
				t.Fatalf("LeaveGroup error %s", errName(resp.ErrorCode))
			}
			if version >= 3 {
				if len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
					t.Fatalf("LeaveGroup members = %+v", resp.Members)
				}
			}
			gen2 := waitStable(t, c, "g", a, b)
			if gen2 <= gen {
				t.Fatalf("generation %d after leave, want > %d", gen2, gen)
			}
			// Leaving again: the member is unknown now.
			resp = c.LeaveGroup(context.Background(), req)
			if version < 3 && resp.ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("second leave = %s, want UNKNOWN_MEMBER_ID", errName(resp.ErrorCode))
			}
			if version >= 3 && resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("second leave = %s, want UNKNOWN_MEMBER_ID", errName(resp.Members[0].ErrorCode))
			}
		})
	}
}

func TestLastMemberLeavingEmptiesGroupAndPersists(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	a := newClient(t, c, "g", "a")
	a.leaveOnStop = true
	a.start()
	gen := waitStable(t, c, "g", a)
	a.stop()
	d := describe(t, c, "g")
	if d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after last leave: state %s, %d members", d.State, len(d.Members))
	}
	if !storeHasGroupMeta(t, store, "g", gen+1, 0) {
		t.Fatalf("no Empty group metadata with generation %d persisted", gen+1)
	}
}

// join is a one-shot JoinGroup helper.
func join(c *Coordinator, ctx context.Context, version int16, group, memberID string, instance *string, protos ...kmsg.JoinGroupRequestProtocol) *kmsg.JoinGroupResponse {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group = group
	req.SessionTimeoutMillis = 1000
	req.RebalanceTimeoutMillis = 1000
	req.MemberID = memberID
	req.InstanceID = instance
	req.ProtocolType = "consumer"
	req.Protocols = protos
	if len(protos) == 0 {
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t1")}}
	}
	return c.JoinGroup(ctx, req)
}

func syncGroup(c *Coordinator, ctx context.Context, group, memberID string, instance *string, gen int32, assign []kmsg.SyncGroupRequestGroupAssignment) *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = group
	req.MemberID = memberID
	req.InstanceID = instance
	req.Generation = gen
	req.GroupAssignment = assign
	return c.SyncGroup(ctx, req)
}

func heartbeat(c *Coordinator, group, memberID string, instance *string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = group
	req.MemberID = memberID
	req.InstanceID = instance
	req.Generation = gen
	return c.Heartbeat(context.Background(), req).ErrorCode
}

func TestMemberIDRequired(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()

	// v4+: the first join hands out the member id.
	r := join(c, ctx, 4, "g", "", nil)
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" || r.Generation != -1 {
		t.Fatalf("v4 first join = %s member %q gen %d, want MEMBER_ID_REQUIRED with an id", errName(r.ErrorCode), r.MemberID, r.Generation)
	}
	id := r.MemberID
	r = join(c, ctx, 4, "g", id, nil)
	if r.ErrorCode != 0 || r.MemberID != id || r.LeaderID != id || r.Generation != 1 || len(r.Members) != 1 {
		t.Fatalf("v4 second join = %s member %q leader %q gen %d members %d", errName(r.ErrorCode), r.MemberID, r.LeaderID, r.Generation, len(r.Members))
	}

	// v3 and older: no MEMBER_ID_REQUIRED round. Join in the background: the group waits
	// for the existing member to rejoin.
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { done <- join(c, ctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "v3 member parked in join", func() (bool, string) {
		st := describe(t, c, "g").State
		return st == "PreparingRebalance", st
	})
	r2 := join(c, ctx, 4, "g", id, nil)
	var r3 *kmsg.JoinGroupResponse
	select {
	case r3 = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("v3 join did not complete")
	}
	if r3.ErrorCode != 0 || r3.MemberID == "" || r3.Generation != 2 || r2.Generation != 2 {
		t.Fatalf("v3 join = %s member %q gen %d (leader gen %d)", errName(r3.ErrorCode), r3.MemberID, r3.Generation, r2.Generation)
	}

	// A handed-out id that is not used within the session timeout expires.
	r = join(c, ctx, 5, "g2", "", nil)
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("v5 first join = %s", errName(r.ErrorCode))
	}
	pendingID := r.MemberID
	waitFor(t, 5*time.Second, "pending member expiry", func() (bool, string) {
		g := c.lockGroup("g2", false)
		if g == nil {
			return true, ""
		}
		defer g.mu.Unlock()
		return len(g.pending) == 0, fmt.Sprintf("%d pending", len(g.pending))
	})
	if r := join(c, ctx, 5, "g2", pendingID, nil); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("join with expired pending id = %s, want UNKNOWN_MEMBER_ID", errName(r.ErrorCode))
	}
}

func TestGenerationAndMemberChecks(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	r := join(c, ctx, 3, "g", "", nil)
	if r.ErrorCode != 0 {
		t.Fatalf("join: %s", errName(r.ErrorCode))
	}
	id, gen := r.MemberID, r.Generation
	tests := []struct {
		name   string
		member string
		gen    int32
		want   int16
	}{
		{"wrong generation", id, gen + 1, kerr.IllegalGeneration.Code},
		{"unknown member", "nobody", gen, kerr.UnknownMemberID.Code},
		{"leader syncs", id, gen, 0},
	}
	for _, tt := range tests {
		t.Run("sync "+tt.name, func(t *testing.T) {
			resp := syncGroup(c, ctx, "g", tt.member, nil, tt.gen, []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("x")}})
			if resp.ErrorCode != tt.want {
				t.Fatalf("SyncGroup = %s, want %s", errName(resp.ErrorCode), errName(tt.want))
			}
		})
	}
	for _, tt := range tests[:2] {
		t.Run("heartbeat "+tt.name, func(t *testing.T) {
			if got := heartbeat(c, "g", tt.member, nil, tt.gen); got != tt.want {
				t.Fatalf("Heartbeat = %s, want %s", errName(got), errName(tt.want))
			}
		})
	}
	if got := heartbeat(c, "g", id, nil, gen); got != 0 {
		t.Fatalf("Heartbeat = %s", errName(got))
	}
	if got := heartbeat(c, "nogroup", id, nil, gen); got != kerr.UnknownMemberID.Code {
		t.Fatalf("Heartbeat on unknown group = %s", errName(got))
	}
	if r := join(c, ctx, 5, "nogroup", "someid", nil); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("JoinGroup with a member id on an unknown group = %s", errName(r.ErrorCode))
	}
	// SyncGroup v5 with the wrong protocol name.
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = "g", id, gen
	req.Protocol = kmsg.StringPtr("roundrobin")
	if resp := c.SyncGroup(ctx, req); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("SyncGroup with wrong protocol = %s", errName(resp.ErrorCode))
	}
}

func TestJoinValidation(t *testing.T) {
	c := newTestCoordinator(t, Config{MinSessionTimeout: 100 * time.Millisecond, MaxSessionTimeout: time.Second}, &memStore{})
	ctx := context.Background()
	if r := join(c, ctx, 3, "g", "", nil); r.ErrorCode != 0 {
		t.Fatalf("join: %s", errName(r.ErrorCode))
	}
	base := func() *kmsg.JoinGroupRequest {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 5
		req.Group = "g"
		req.SessionTimeoutMillis = 400
		req.ProtocolType = "consumer"
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		return req
	}
	tests := []struct {
		name string
		mod  func(*kmsg.JoinGroupRequest)
		want int16
	}{
		{"empty group id", func(r *kmsg.JoinGroupRequest) { r.Group = "" }, kerr.InvalidGroupID.Code},
		{"session too short", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 50 }, kerr.InvalidSessionTimeout.Code},
		{"session too long", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 5000 }, kerr.InvalidSessionTimeout.Code},
		{"other protocol type", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" }, kerr.InconsistentGroupProtocol.Code},
		{"no common protocol", func(r *kmsg.JoinGroupRequest) {
			r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin"}}
		}, kerr.InconsistentGroupProtocol.Code},
		{"no protocols", func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }, kerr.InconsistentGroupProtocol.Code},
		{"empty protocol type on new group", func(r *kmsg.JoinGroupRequest) { r.Group = "new"; r.ProtocolType = "" }, kerr.InconsistentGroupProtocol.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := base()
			tt.mod(req)
			if r := c.JoinGroup(ctx, req); r.ErrorCode != tt.want {
				t.Fatalf("JoinGroup = %s, want %s", errName(r.ErrorCode), errName(tt.want))
			}
		})
	}
}

func TestProtocolVote(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	prefs := [][]string{
		{"range", "roundrobin", "cooperative-sticky"},
		{"cooperative-sticky", "roundrobin"},
		{"roundrobin", "cooperative-sticky", "range"},
	}
	var cls []*client
	for i, p := range prefs {
		cl := newClient(t, c, "g", fmt.Sprintf("c%d", i))
		cl.protocols = func([]byte) []kmsg.JoinGroupRequestProtocol {
			var out []kmsg.JoinGroupRequestProtocol
			for _, name := range p {
				out = append(out, kmsg.JoinGroupRequestProtocol{Name: name, Metadata: consumerMeta("t1")})
			}
			return out
		}
		cls = append(cls, cl.start())
	}
	waitStable(t, c, "g", cls...)
	// Candidates: roundrobin, cooperative-sticky. Votes: c0 roundrobin, c1
	// cooperative-sticky, c2 roundrobin.
	if d := describe(t, c, "g"); d.Protocol != "roundrobin" {
		t.Fatalf("selected protocol %q, want roundrobin", d.Protocol)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	a := join(c, ctx, 3, "g", "", nil)
	if s := syncGroup(c, ctx, "g", a.MemberID, nil, a.Generation, nil); s.ErrorCode != 0 {
		t.Fatalf("sync a: %s", errName(s.ErrorCode))
	}
	// b joins: a must rejoin within the rebalance timeout; it only heartbeats.
	bDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { bDone <- join(c, ctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "rebalance in progress", func() (bool, string) {
		code := heartbeat(c, "g", a.MemberID, nil, a.Generation)
		return code == kerr.RebalanceInProgress.Code, errName(code)
	})
	start := time.Now()
	stopHB := make(chan struct{})
	hbDone := make(chan struct{})
	go func() { // a keeps its session alive but never rejoins
		defer close(hbDone)
		for {
			select {
			case <-stopHB:
				return
			case <-time.After(20 * time.Millisecond):
				heartbeat(c, "g", a.MemberID, nil, a.Generation)
			}
		}
	}()
	var b *kmsg.JoinGroupResponse
	select {
	case b = <-bDone:
	case <-time.After(5 * time.Second):
		t.Fatal("b's join never completed")
	}
	close(stopHB)
	<-hbDone
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("join phase ended after %v, before the rebalance timeout", el)
	}
	if b.ErrorCode != 0 || b.LeaderID != b.MemberID || len(b.Members) != 1 || b.Generation != a.Generation+1 {
		t.Fatalf("b join = %s leader %q members %d gen %d", errName(b.ErrorCode), b.LeaderID, len(b.Members), b.Generation)
	}
	if code := heartbeat(c, "g", a.MemberID, nil, a.Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("a heartbeat after removal = %s", errName(code))
	}
}

func TestPendingSyncTimeout(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	// Two members join in one round; the follower never syncs.
	r1 := join(c, ctx, 3, "g", "", nil)
	if s := syncGroup(c, ctx, "g", r1.MemberID, nil, r1.Generation, nil); s.ErrorCode != 0 {
		t.Fatalf("sync: %s", errName(s.ErrorCode))
	}
	done := make(chan *kmsg.JoinGroupResponse, 2)
	go func() { done <- join(c, ctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "rebalance", func() (bool, string) {
		return heartbeat(c, "g", r1.MemberID, nil, r1.Generation) == kerr.RebalanceInProgress.Code, ""
	})
	go func() { done <- join(c, ctx, 3, "g", r1.MemberID, nil) }()
	var leader, follower *kmsg.JoinGroupResponse
	for range 2 {
		r := <-done
		if r.ErrorCode != 0 {
			t.Fatalf("join: %s", errName(r.ErrorCode))
		}
		if r.MemberID == r.LeaderID {
			leader = r
		} else {
			follower = r
		}
	}
	if leader == nil || follower == nil {
		t.Fatal("expected one leader and one follower")
	}
	s := syncGroup(c, ctx, "g", leader.MemberID, nil, leader.Generation, assignEcho("", leader.Members, leader.Generation))
	if s.ErrorCode != 0 {
		t.Fatalf("leader sync: %s", errName(s.ErrorCode))
	}
	// The leader keeps heartbeating; after the rebalance timeout the follower that never
	// synced is removed and the group rebalances.
	waitFor(t, 5*time.Second, "rebalance after pending sync timeout", func() (bool, string) {
		code := heartbeat(c, "g", leader.MemberID, nil, leader.Generation)
		return code == kerr.RebalanceInProgress.Code, errName(code)
	})
	if code := heartbeat(c, "g", follower.MemberID, nil, follower.Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("follower heartbeat = %s, want UNKNOWN_MEMBER_ID", errName(code))
	}
}

func TestFollowerSyncWaitsForLeader(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	r1 := join(c, ctx, 3, "g", "", nil)
	syncGroup(c, ctx, "g", r1.MemberID, nil, r1.Generation, nil)
	done := make(chan *kmsg.JoinGroupResponse, 2)
	go func() { done <- join(c, ctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "rebalance", func() (bool, string) {
		return heartbeat(c, "g", r1.MemberID, nil, r1.Generation) == kerr.RebalanceInProgress.Code, ""
	})
	go func() { done <- join(c, ctx, 3, "g", r1.MemberID, nil) }()
	var leader, follower *kmsg.JoinGroupResponse
	for range 2 {
		r := <-done
		if r.MemberID == r.LeaderID {
			leader = r
		} else {
			follower = r
		}
	}
	fDone := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { fDone <- syncGroup(c, ctx, "g", follower.MemberID, nil, follower.Generation, nil) }()
	// The follower is parked until the leader syncs.
	waitFor(t, 5*time.Second, "follower parked in sync", func() (bool, string) {
		g := c.lockGroup("g", false)
		defer g.mu.Unlock()
		m := g.members[follower.MemberID]
		return m != nil && m.sync != nil, ""
	})
	select {
	case <-fDone:
		t.Fatal("follower sync returned before the leader's")
	default:
	}
	s := syncGroup(c, ctx, "g", leader.MemberID, nil, leader.Generation, assignEcho("", leader.Members, leader.Generation))
	if s.ErrorCode != 0 {
		t.Fatalf("leader sync: %s", errName(s.ErrorCode))
	}
	fs := <-fDone
	if fs.ErrorCode != 0 || string(fs.MemberAssignment) != fmt.Sprintf("%s@%d", follower.MemberID, follower.Generation) {
		t.Fatalf("follower sync = %s %q", errName(fs.ErrorCode), fs.MemberAssignment)
	}
	if fs.Protocol == nil || *fs.Protocol != "range" || fs.ProtocolType == nil || *fs.ProtocolType != "consumer" {
		t.Fatalf("sync v5 protocol fields = %v/%v", fs.ProtocolType, fs.Protocol)
	}
}

func TestStaticMemberRejoinKeepsAssignment(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	ctx := context.Background()
	instA, instB := kmsg.StringPtr("inst-a"), kmsg.StringPtr("inst-b")

	a := newClient(t, c, "g", "a")
	a.instanceID = instA
	a.start()
	b := newClient(t, c, "g", "b")
	b.instanceID = instB
	b.start()
	gen := waitStable(t, c, "g", a, b)
	bOld := b.state()
	b.stop() // the process of b dies without leaving (static members do not leave)

	// b restarts: same instance id, no member id, same metadata.
	for _, version := range []int16{5, 9} {
		r := join(c, ctx, version, "g", "", instB)
		if r.ErrorCode != 0 {
			t.Fatalf("v%d static rejoin: %s", version, errName(r.ErrorCode))
		}
		if r.Generation != gen || r.MemberID == bOld.memberID {
			t.Fatalf("v%d static rejoin: gen %d (want %d), member %q (old %q)", version, r.Generation, gen, r.MemberID, bOld.memberID)
		}
		s := syncGroup(c, ctx, "g", r.MemberID, instB, r.Generation, nil)
		if s.ErrorCode != 0 || !bytes.Equal(s.MemberAssignment, bOld.assignment) {
			t.Fatalf("v%d static sync: %s %q, want old assignment %q", version, errName(s.ErrorCode), s.MemberAssignment, bOld.assignment)
		}
		// The previous incarnation is fenced.
		if code := heartbeat(c, "g", bOld.memberID, instB, gen); code != kerr.FencedInstanceID.Code {
			t.Fatalf("old incarnation heartbeat = %s, want FENCED_INSTANCE_ID", errName(code))
		}
		if code := heartbeat(c, "g", r.MemberID, instB, gen); code != 0 {
			t.Fatalf("new incarnation heartbeat = %s", errName(code))
		}
		bOld.memberID = r.MemberID
	}
	// No rebalance happened: a is still synced on the same generation.
	if st := a.state(); !st.synced || st.generation != gen {
		t.Fatalf("a: synced=%v gen=%d, want gen %d", st.synced, st.generation, gen)
	}
	if d := describe(t, c, "g"); d.State != "Stable" {
		t.Fatalf("state %s", d.State)
	}
}

func TestStaticLeaderRejoin(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	inst := kmsg.StringPtr("leader")
	r := join(c, ctx, 9, "g", "", inst)
	if r.ErrorCode != 0 || r.LeaderID != r.MemberID {
		t.Fatalf("static join: %s leader %q", errName(r.ErrorCode), r.LeaderID)
	}
	if s := syncGroup(c, ctx, "g", r.MemberID, inst, r.Generation, []kmsg.SyncGroupRequestGroupAssignment{{MemberID: r.MemberID, MemberAssignment: []byte("mine")}}); s.ErrorCode != 0 {
		t.Fatalf("sync: %s", errName(s.ErrorCode))
	}
	// v9: the rejoining leader learns it leads, with the members, and skips assignment.
	r9 := join(c, ctx, 9, "g", "", inst)
	if r9.ErrorCode != 0 || !r9.SkipAssignment || r9.LeaderID != r9.MemberID || len(r9.Members) != 1 || r9.Generation != r.Generation {
		t.Fatalf("v9 leader rejoin: %s skip=%v leader %q member %q members %d gen %d", errName(r9.ErrorCode), r9.SkipAssignment, r9.LeaderID, r9.MemberID, len(r9.Members), r9.Generation)
	}
	// v5: the old leader id is returned so the member does not reassign.
	r5 := join(c, ctx, 5, "g", "", inst)
	if r5.ErrorCode != 0 || r5.LeaderID != r9.MemberID || r5.MemberID == r9.MemberID || len(r5.Members) != 0 {
		t.Fatalf("v5 leader rejoin: %s leader %q member %q members %d", errName(r5.ErrorCode), r5.LeaderID, r5.MemberID, len(r5.Members))
	}
	s := syncGroup(c, ctx, "g", r5.MemberID, inst, r5.Generation, nil)
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "mine" {
		t.Fatalf("sync after rejoin: %s %q", errName(s.ErrorCode), s.MemberAssignment)
	}
}

func TestStaticDuplicateInstanceFenced(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	inst := kmsg.StringPtr("dup")
	first := newClient(t, c, "g", "first")
	first.instanceID = inst
	first.start()
	waitStable(t, c, "g", first)
	// A second process with the same instance id takes over; the first is fenced.
	second := newClient(t, c, "g", "second")
	second.instanceID = inst
	second.start()
	waitFor(t, 5*time.Second, "first fenced", func() (bool, string) {
		return first.state().fenced, ""
	})
	waitStable(t, c, "g", second)
	// A JoinGroup with the fenced id and the instance id is fenced too.
	if r := join(c, context.Background(), 5, "g", first.state().memberID, inst); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("join with fenced member id = %s", errName(r.ErrorCode))
	}
}

func TestStaticMemberRemovedByInstanceID(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	a := newClient(t, c, "g", "a").start()
	s := newClient(t, c, "g", "s")
	s.instanceID = kmsg.StringPtr("static-1")
	s.start()
	gen := waitStable(t, c, "g", a, s)
	s.stop()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 4
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: kmsg.StringPtr("static-1")}}
	resp := c.LeaveGroup(context.Background(), req)
	if resp.ErrorCode != 0 || len(resp.Members) != 1 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %+v", resp)
	}
	if gen2 := waitStable(t, c, "g", a); gen2 <= gen {
		t.Fatalf("generation %d, want > %d", gen2, gen)
	}
}

// TestCooperativeRebalance drives two-phase cooperative rebalances like kgo's
// cooperative-sticky balancer: members send their owned partitions in their metadata, the
// leader withholds partitions that must move until their owner has revoked them, and a
// member that revoked something rejoins at once.
func TestCooperativeRebalance(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	const parts = 6
	encodeOwned := func(owned []int32) []byte {
		m := kmsg.NewConsumerMemberMetadata()
		m.Version = 1
		m.Topics = []string{"t1"}
		if len(owned) > 0 {
			m.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "t1", Partitions: owned}}
		}
		return m.AppendTo(nil)
	}
	decodeAssign := func(b []byte) []int32 {
		var a kmsg.ConsumerMemberAssignment
		if len(b) == 0 || a.ReadFrom(b) != nil {
			return nil
		}
		var out []int32
		for _, t := range a.Topics {
			out = append(out, t.Partitions...)
		}
		return out
	}
	encodeAssign := func(ps []int32) []byte {
		a := kmsg.NewConsumerMemberAssignment()
		if len(ps) > 0 {
			a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t1", Partitions: ps}}
		}
		return a.AppendTo(nil)
	}
	assign := func(_ string, members []kmsg.JoinGroupResponseMember, _ int32) []kmsg.SyncGroupRequestGroupAssignment {
		owner := make(map[int32]string)
		owned := make(map[string][]int32)
		for _, m := range members {
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(m.ProtocolMetadata); err != nil {
				t.Errorf("leader cannot decode metadata: %v", err)
			}
			for _, op := range md.OwnedPartitions {
				for _, p := range op.Partitions {
					owner[p] = m.MemberID
					owned[m.MemberID] = append(owned[m.MemberID], p)
				}
			}
		}
		// Sticky target: keep up to quota of what is owned, hand out the rest.
		quota := (parts + len(members) - 1) / len(members)
		target := make(map[string][]int32)
		taken := make(map[int32]bool)
		for _, m := range members {
			for _, p := range owned[m.MemberID] {
				if len(target[m.MemberID]) < quota && !taken[p] {
					target[m.MemberID] = append(target[m.MemberID], p)
					taken[p] = true
				}
			}
		}
		for p := int32(0); p < parts; p++ {
			if taken[p] {
				continue
			}
			best := ""
			for _, m := range members {
				if best == "" || len(target[m.MemberID]) < len(target[best]) {
					best = m.MemberID
				}
			}
			target[best] = append(target[best], p)
			taken[p] = true
		}
		// Cooperative: a partition still owned by another member is withheld this round.
		var out []kmsg.SyncGroupRequestGroupAssignment
		for _, m := range members {
			var give []int32
			for _, p := range target[m.MemberID] {
				if o, ok := owner[p]; ok && o != m.MemberID {
					continue
				}
				give = append(give, p)
			}
			out = append(out, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: encodeAssign(give)})
		}
		return out
	}
	newCoop := func(name string) *client {
		cl := newClient(t, c, "g", name)
		cl.protocols = func(owned []byte) []kmsg.JoinGroupRequestProtocol {
			return []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: encodeOwned(decodeAssign(owned))}}
		}
		cl.assign = assign
		cl.rejoinAfter = func(old, assigned []byte) bool {
			now := make(map[int32]bool)
			for _, p := range decodeAssign(assigned) {
				now[p] = true
			}
			for _, p := range decodeAssign(old) {
				if !now[p] {
					return true // revoked something: rejoin at once
				}
			}
			return false
		}
		return cl
	}
	checkOwnership := func(cls ...*client) {
		t.Helper()
		seen := make(map[int32]int)
		for i, cl := range cls {
			ps := decodeAssign(cl.state().assignment)
			if len(ps) < parts/len(cls) || len(ps) > (parts+len(cls)-1)/len(cls) {
				t.Errorf("client %d owns %v: not balanced", i, ps)
			}
			for _, p := range ps {
				seen[p]++
			}
		}
		for p := int32(0); p < parts; p++ {
			if seen[p] != 1 {
				t.Errorf("partition %d owned %d times", p, seen[p])
			}
		}
	}
	waitBalanced := func(cls ...*client) int32 {
		t.Helper()
		var gen int32
		waitFor(t, 10*time.Second, "balanced cooperative group", func() (bool, string) {
			d := describe(t, c, "g")
			if d.State != "Stable" || len(d.Members) != len(cls) {
				return false, d.State
			}
			total := 0
			for _, cl := range cls {
				st := cl.state()
				if !st.synced {
					return false, "unsynced"
				}
				total += len(decodeAssign(st.assignment))
				gen = st.generation
			}
			return total == parts, fmt.Sprintf("%d partitions assigned", total)
		})
		return gen
	}
	a := newCoop("a").start()
	gen1 := waitBalanced(a)
	checkOwnership(a)
	b := newCoop("b").start()
	gen2 := waitBalanced(a, b)
	checkOwnership(a, b)
	// One rebalance to revoke, a second to hand the revoked partitions to b.
	if gen2 < gen1+2 {
		t.Fatalf("generation %d -> %d: expected two cooperative rounds", gen1, gen2)
	}
	d := newCoop("d").start()
	waitBalanced(a, b, d)
	checkOwnership(a, b, d)
}

func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 150 * time.Millisecond
	c := newTestCoordinator(t, cfg, &memStore{})
	ctx := context.Background()
	done := make(chan *kmsg.JoinGroupResponse, 3)
	start := time.Now()
	for range 3 {
		go func() { done <- join(c, ctx, 3, "g", "", nil) }()
	}
	for range 3 {
		r := <-done
		if r.ErrorCode != 0 || r.Generation != 1 {
			t.Fatalf("join = %s gen %d, want one generation 1 for all", errName(r.ErrorCode), r.Generation)
		}
		if r.LeaderID == r.MemberID && len(r.Members) != 3 {
			t.Fatalf("leader sees %d members", len(r.Members))
		}
	}
	if el := time.Since(start); el < cfg.InitialRebalanceDelay {
		t.Fatalf("join completed after %v, before the initial delay", el)
	}
}

func TestJoinReturnsOnContextAndClose(t *testing.T) {
	c := New(testConfig(), &memStore{}, testLogger(t))
	if err := c.Load(nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A long rebalance timeout, so that the join phases below end only by Close.
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 3
	req.Group = "g"
	req.SessionTimeoutMillis = 30000
	req.RebalanceTimeoutMillis = 30000
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t1")}}
	r := c.JoinGroup(ctx, req)
	syncGroup(c, ctx, "g", r.MemberID, nil, r.Generation, nil)

	// A second member parks in join (the first has not rejoined); its context ends.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { done <- join(c, cctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "parked join", func() (bool, string) {
		return heartbeat(c, "g", r.MemberID, nil, r.Generation) == kerr.RebalanceInProgress.Code, ""
	})
	cancel()
	if got := <-done; got.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("cancelled join = %s", errName(got.ErrorCode))
	}

	// Another parks; Close wakes it.
	go func() { done <- join(c, ctx, 3, "g", "", nil) }()
	waitFor(t, 5*time.Second, "second parked join", func() (bool, string) {
		g := c.lockGroup("g", false)
		defer g.mu.Unlock()
		n := 0
		for _, m := range g.members {
			if m.join != nil {
				n++
			}
		}
		return n == 2, fmt.Sprint(n)
	})
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case got := <-done:
		if got.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("join during Close = %s", errName(got.ErrorCode))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the parked join")
	}
	<-closed
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := join(c, ctx, 3, "g", "", nil); got.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("join after Close = %s", errName(got.ErrorCode))
	}
}

// TestStaticMemberKeptThroughRebalance: a static member that does not rejoin during a join
// phase stays in the group (Kafka removes only dynamic members then); the leader assigns it
// and it picks up the new generation when it comes back.
func TestStaticMemberKeptThroughRebalance(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	ctx := context.Background()
	inst := kmsg.StringPtr("s")
	sreq := kmsg.NewPtrJoinGroupRequest()
	sreq.Version = 5
	sreq.Group = "g"
	sreq.SessionTimeoutMillis = 10000
	sreq.RebalanceTimeoutMillis = 200
	sreq.InstanceID = inst
	sreq.ProtocolType = "consumer"
	sreq.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t1")}}
	s := c.JoinGroup(ctx, sreq)
	if s.ErrorCode != 0 || s.LeaderID != s.MemberID {
		t.Fatalf("static join: %s", errName(s.ErrorCode))
	}
	syncGroup(c, ctx, "g", s.MemberID, inst, s.Generation, nil)

	// A dynamic member joins; the static one does not rejoin (it is restarting).
	d := join(c, ctx, 3, "g", "", nil)
	if d.ErrorCode != 0 || d.Generation != s.Generation+1 || d.LeaderID != d.MemberID || len(d.Members) != 2 {
		t.Fatalf("dynamic join: %s gen %d leader %q members %d", errName(d.ErrorCode), d.Generation, d.LeaderID, len(d.Members))
	}
	if code := heartbeat(c, "g", s.MemberID, inst, s.Generation); code != kerr.IllegalGeneration.Code {
		t.Fatalf("static heartbeat with the old generation = %s", errName(code))
	}
	// It rejoins with its id: same metadata during CompletingRebalance gets the current
	// generation, and its sync waits for the leader's.
	s2 := join(c, ctx, 5, "g", s.MemberID, inst)
	if s2.ErrorCode != 0 || s2.Generation != d.Generation {
		t.Fatalf("static rejoin: %s gen %d", errName(s2.ErrorCode), s2.Generation)
	}
	done := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { done <- syncGroup(c, ctx, "g", s.MemberID, inst, s2.Generation, nil) }()
	if r := syncGroup(c, ctx, "g", d.MemberID, nil, d.Generation, assignEcho("", d.Members, d.Generation)); r.ErrorCode != 0 {
		t.Fatalf("leader sync: %s", errName(r.ErrorCode))
	}
	if r := <-done; r.ErrorCode != 0 || string(r.MemberAssignment) != fmt.Sprintf("%s@%d", s.MemberID, d.Generation) {
		t.Fatalf("static sync: %s %q", errName(r.ErrorCode), r.MemberAssignment)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero is defaults", Config{}, ""},
		{"negative delay is zero", Config{InitialRebalanceDelay: -time.Second}, ""},
		{"max below min", Config{MinSessionTimeout: time.Minute, MaxSessionTimeout: time.Second}, "MaxSessionTimeout"},
		{"negative min", Config{MinSessionTimeout: -1}, "MinSessionTimeout"},
		{"negative retention", Config{OffsetsRetention: -1}, "OffsetsRetention"},
		{"negative check interval", Config{OffsetsRetentionCheckInterval: -1}, "OffsetsRetentionCheckInterval"},
		{"negative metadata size", Config{OffsetMetadataMaxBytes: -1}, "OffsetMetadataMaxBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				d := DefaultConfig()
				if got.MinSessionTimeout != d.MinSessionTimeout || got.MaxSessionTimeout != d.MaxSessionTimeout ||
					got.OffsetsRetention != d.OffsetsRetention || got.InitialRebalanceDelay != 0 || got.Now == nil {
					t.Fatalf("normalized = %+v", got)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
	// New falls back to defaults on an invalid config.
	c := New(Config{MinSessionTimeout: time.Minute, MaxSessionTimeout: time.Second}, &memStore{}, nil)
	defer c.Close()
	if c.cfg.MaxSessionTimeout != DefaultConfig().MaxSessionTimeout {
		t.Fatalf("New kept an invalid config: %+v", c.cfg)
	}
}
