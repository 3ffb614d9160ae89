package groups

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memStore is an in-memory Store. fail, when set, makes Append fail without writing.
type memStore struct {
	mu      sync.Mutex
	recs    []Record
	fail    error
	appends int
}

func (s *memStore) Append(ctx context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.appends++
	for _, r := range recs {
		s.recs = append(s.recs, Record{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)})
	}
	return nil
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *memStore) records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

func (s *memStore) appendCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends
}

var errStoreDown = errors.New("store down")

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("GROUPS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testConfig() Config {
	return Config{
		MinSessionTimeout: 10 * time.Millisecond,
		MaxSessionTimeout: time.Minute,
	}
}

// newTestCoordinator returns a loaded coordinator over store, closed at the end of the test.
func newTestCoordinator(t *testing.T, cfg Config, store *memStore) *Coordinator {
	t.Helper()
	c := New(cfg, store, testLogger(t))
	t.Cleanup(func() { c.Close() })
	if err := c.Load(store.records()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func describe(t *testing.T, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	resp := c.DescribeGroups(context.Background(), req)
	if len(resp.Groups) != 1 {
		t.Fatalf("DescribeGroups returned %d groups", len(resp.Groups))
	}
	return resp.Groups[0]
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

// client simulates a group member the way kgo drives the classic protocol: join (with the
// KIP-394 retry), the leader assigns, sync, then heartbeat until told to rejoin.
type client struct {
	t            *testing.T
	c            *Coordinator
	group        string
	clientID     string
	instanceID   *string
	joinVersion  int16
	session      time.Duration
	rebalance    time.Duration
	hbEvery      time.Duration
	protocolType string
	// protocols returns the JoinGroup protocols given what the member owns now.
	protocols func(owned []byte) []kmsg.JoinGroupRequestProtocol
	// assign is the leader's assignor.
	assign func(protocol string, members []kmsg.JoinGroupResponseMember, gen int32) []kmsg.SyncGroupRequestGroupAssignment
	// rejoinAfter reports whether the member must rejoin at once after being assigned
	// (cooperative: it revoked partitions).
	rejoinAfter func(old, assigned []byte) bool
	leaveOnStop bool

	mu         sync.Mutex
	memberID   string
	generation int32
	assignment []byte
	synced     bool // has the assignment of generation and heartbeats fine
	fenced     bool
	leaderGens []int32
	joins      int

	hang   chan struct{} // closed: stop heartbeating (simulates a stuck process)
	cancel context.CancelFunc
	done   chan struct{}
}

func newClient(t *testing.T, c *Coordinator, group, clientID string) *client {
	return &client{
		t:           t,
		c:           c,
		group:       group,
		clientID:    clientID,
		joinVersion: 9,
		// Generous timeouts: a test process starved of CPU on a loaded machine must not
		// lose members. Tests that expire a member shorten its session.
		session:      1500 * time.Millisecond,
		rebalance:    3 * time.Second,
		hbEvery:      25 * time.Millisecond,
		protocolType: "consumer",
		protocols: func([]byte) []kmsg.JoinGroupRequestProtocol {
			return []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t1")}}
		},
		assign:     assignEcho,
		generation: -1,
		hang:       make(chan struct{}),
	}
}

// assignEcho gives every member the bytes "memberID@generation", so each can check that it
// received what the leader assigned to it.
func assignEcho(_ string, members []kmsg.JoinGroupResponseMember, gen int32) []kmsg.SyncGroupRequestGroupAssignment {
	var out []kmsg.SyncGroupRequestGroupAssignment
	for _, m := range members {
		out = append(out, kmsg.SyncGroupRequestGroupAssignment{
			MemberID:         m.MemberID,
			MemberAssignment: []byte(fmt.Sprintf("%s@%d", m.MemberID, gen)),
		})
	}
	return out
}

func (cl *client) start() *client {
	ctx, cancel := context.WithCancel(context.Background())
	cl.cancel = cancel
	cl.done = make(chan struct{})
	go cl.run(ctx)
	cl.t.Cleanup(cl.stop)
	return cl
}

// stop ends the member's loop (leaving the group if leaveOnStop) and waits for it.
func (cl *client) stop() {
	if cl.cancel == nil {
		return
	}
	cl.cancel()
	<-cl.done
}

func (cl *client) stopHeartbeating() { close(cl.hang) }

type clientState struct {
	memberID   string
	generation int32
	assignment []byte
	synced     bool
	fenced     bool
}

func (cl *client) state() clientState {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return clientState{cl.memberID, cl.generation, bytes.Clone(cl.assignment), cl.synced, cl.fenced}
}

func (cl *client) run(ctx context.Context) {
	defer close(cl.done)
	for ctx.Err() == nil {
		rejoin, err := cl.joinAndSync(ctx)
		if err != nil {
			if cl.state().fenced {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if rejoin {
			continue
		}
		if !cl.heartbeatLoop(ctx) {
			break
		}
	}
	if cl.leaveOnStop {
		st := cl.state()
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = 5
		req.Group = cl.group
		req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: st.memberID, InstanceID: cl.instanceID}}
		cl.c.LeaveGroup(context.Background(), req)
	}
}

func (cl *client) joinAndSync(ctx context.Context) (rejoin bool, err error) {
	cl.mu.Lock()
	cl.synced = false
	memberID, owned := cl.memberID, cl.assignment
	cl.mu.Unlock()
	for {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = cl.joinVersion
		req.Group = cl.group
		req.SessionTimeoutMillis = int32(cl.session / time.Millisecond)
		req.RebalanceTimeoutMillis = int32(cl.rebalance / time.Millisecond)
		req.MemberID = memberID
		req.InstanceID = cl.instanceID
		req.ProtocolType = cl.protocolType
		req.Protocols = cl.protocols(owned)
		resp := cl.c.JoinGroup(ctx, req)
		cl.mu.Lock()
		cl.joins++
		cl.mu.Unlock()
		switch resp.ErrorCode {
		case kerr.MemberIDRequired.Code:
			memberID = resp.MemberID
			cl.setMember(memberID)
			continue
		case kerr.UnknownMemberID.Code:
			cl.setMember("")
			return false, kerr.ErrorForCode(resp.ErrorCode)
		case kerr.FencedInstanceID.Code:
			cl.mu.Lock()
			cl.fenced = true
			cl.mu.Unlock()
			return false, kerr.ErrorForCode(resp.ErrorCode)
		case 0:
		default:
			return false, kerr.ErrorForCode(resp.ErrorCode)
		}
		memberID = resp.MemberID
		cl.setMember(memberID)
		sreq := kmsg.NewPtrSyncGroupRequest()
		sreq.Version = 5
		sreq.Group = cl.group
		sreq.Generation = resp.Generation
		sreq.MemberID = memberID
		sreq.InstanceID = cl.instanceID
		sreq.ProtocolType = kmsg.StringPtr(cl.protocolType)
		sreq.Protocol = resp.Protocol
		if resp.LeaderID == memberID && !resp.SkipAssignment {
			cl.mu.Lock()
			cl.leaderGens = append(cl.leaderGens, resp.Generation)
			cl.mu.Unlock()
			sreq.GroupAssignment = cl.assign(*resp.Protocol, resp.Members, resp.Generation)
		}
		sresp := cl.c.SyncGroup(ctx, sreq)
		switch sresp.ErrorCode {
		case 0:
		case kerr.UnknownMemberID.Code:
			cl.setMember("")
			return false, kerr.ErrorForCode(sresp.ErrorCode)
		case kerr.FencedInstanceID.Code:
			cl.mu.Lock()
			cl.fenced = true
			cl.mu.Unlock()
			return false, kerr.ErrorForCode(sresp.ErrorCode)
		default:
			return false, kerr.ErrorForCode(sresp.ErrorCode)
		}
		cl.mu.Lock()
		old := cl.assignment
		cl.generation = resp.Generation
		cl.assignment = sresp.MemberAssignment
		rejoin = cl.rejoinAfter != nil && cl.rejoinAfter(old, sresp.MemberAssignment)
		cl.synced = !rejoin
		cl.mu.Unlock()
		return rejoin, nil
	}
}

func (cl *client) setMember(id string) {
	cl.mu.Lock()
	cl.memberID = id
	cl.mu.Unlock()
}

// heartbeatLoop heartbeats until the member must rejoin (true) or must stop (false).
func (cl *client) heartbeatLoop(ctx context.Context) bool {
	tick := time.NewTicker(cl.hbEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		select {
		case <-cl.hang:
			continue
		default:
		}
		st := cl.state()
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = 4
		req.Group = cl.group
		req.Generation = st.generation
		req.MemberID = st.memberID
		req.InstanceID = cl.instanceID
		resp := cl.c.Heartbeat(ctx, req)
		switch resp.ErrorCode {
		case 0:
		case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
			return true
		case kerr.UnknownMemberID.Code:
			cl.setMember("")
			return true
		case kerr.FencedInstanceID.Code:
			cl.mu.Lock()
			cl.fenced = true
			cl.mu.Unlock()
			return false
		default:
			return true
		}
	}
}

// waitStable waits until the group is Stable with exactly the members of cls, all synced on
// the group's generation with the assignment the leader gave them (assignEcho), and returns
// that generation.
func waitStable(t *testing.T, c *Coordinator, group string, cls ...*client) int32 {
	t.Helper()
	var gen int32
	waitFor(t, 10*time.Second, "stable group of "+fmt.Sprint(len(cls)), func() (bool, string) {
		d := describe(t, c, group)
		if d.State != "Stable" || len(d.Members) != len(cls) {
			return false, fmt.Sprintf("state %s with %d members", d.State, len(d.Members))
		}
		g := c.lockGroup(group, false)
		if g == nil {
			return false, "no group"
		}
		gen = g.generation
		g.mu.Unlock()
		ids := make(map[string]bool)
		for _, m := range d.Members {
			ids[m.MemberID] = true
		}
		for i, cl := range cls {
			st := cl.state()
			if !st.synced || st.generation != gen || !ids[st.memberID] {
				return false, fmt.Sprintf("client %d: synced=%v gen=%d (group %d) member known=%v", i, st.synced, st.generation, gen, ids[st.memberID])
			}
		}
		return true, ""
	})
	return gen
}
