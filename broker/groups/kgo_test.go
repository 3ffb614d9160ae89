package groups

// These tests drive the coordinator with the real franz-go client (kgo and kadm) through a
// minimal Kafka wire server: group and offset APIs go to the Coordinator, while Metadata,
// FindCoordinator, ListOffsets and Fetch are faked for a fixed set of empty topics.
// GROUPS_TEST_WIRE=1 with -v logs every request and response.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type wireServer struct {
	t      *testing.T
	c      *Coordinator
	ln     net.Listener
	topics map[string]int32
	host   string
	port   int32

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startWireServer(t *testing.T, c *Coordinator, topics map[string]int32) *wireServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	s := &wireServer{t: t, c: c, ln: ln, topics: topics, host: host, port: int32(p), conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *wireServer) addr() string { return s.ln.Addr().String() }

func (s *wireServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *wireServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

// serveConn handles one connection's requests in order, as Kafka does.
func (s *wireServer) serveConn(conn net.Conn) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func() {
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()
	var size [4]byte
	for {
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, body); err != nil {
			return
		}
		r := kbin.Reader{Src: body}
		key, version, corr := r.Int16(), r.Int16(), r.Int32()
		clientID := r.NullableString()
		req := kmsg.RequestForKey(key)
		if req == nil {
			return
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			kmsg.SkipTags(&r)
		}
		if err := req.ReadFrom(r.Src); err != nil {
			s.t.Errorf("decoding request key %d v%d: %v", key, version, err)
			return
		}
		var cid string
		if clientID != nil {
			cid = *clientID
		}
		rctx := WithClientInfo(ctx, ClientInfo{ClientID: cid, ClientHost: "/" + conn.RemoteAddr().String()})
		start := time.Now()
		resp := s.handle(rctx, req)
		if testing.Verbose() && os.Getenv("GROUPS_TEST_WIRE") != "" && key != 1 {
			s.t.Logf("%s %T v%d -> %+v (%v)", time.Now().Format("15:04:05.000"), req, version, resp, time.Since(start))
		}
		if resp == nil {
			return
		}
		out := binary.BigEndian.AppendUint32(nil, 0)
		out = binary.BigEndian.AppendUint32(out, uint32(corr))
		if resp.IsFlexible() && key != 18 { // ApiVersions answers with header v0
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// coord returns the coordinator requests go to (swapped by a simulated restart).
func (s *wireServer) coord() *Coordinator {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *wireServer) handle(ctx context.Context, req kmsg.Request) kmsg.Response {
	c := s.coord()
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range [][3]int16{
			{1, 4, 12}, {2, 1, 7}, {3, 1, 12}, {8, 0, 8}, {9, 0, 8}, {10, 0, 4}, {11, 0, 9}, {12, 0, 4},
			{13, 0, 5}, {14, 0, 5}, {15, 0, 5}, {16, 0, 4}, {18, 0, 3}, {42, 0, 2}, {47, 0, 0},
		} {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k[0], MinVersion: k[1], MaxVersion: k[2]})
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: s.host, Port: s.port}}
		resp.ControllerID = 0
		resp.ClusterID = kmsg.StringPtr("test")
		names := make([]string, 0, len(s.topics))
		if req.Topics == nil {
			for n := range s.topics {
				names = append(names, n)
			}
		} else {
			for _, rt := range req.Topics {
				names = append(names, *rt.Topic)
			}
		}
		slices.Sort(names)
		for i, n := range names {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(n)
			mt.TopicID = [16]byte{1, byte(i + 1)}
			parts, ok := s.topics[n]
			if !ok {
				mt.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
			}
			for p := range parts {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition = p
				mp.Leader = 0
				mp.Replicas = []int32{0}
				mp.ISR = []int32{0}
				mt.Partitions = append(mt.Partitions, mp)
			}
			resp.Topics = append(resp.Topics, mt)
		}
		return resp
	case *kmsg.FindCoordinatorRequest:
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.NodeID, resp.Host, resp.Port = 0, s.host, s.port
		for _, k := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, kmsg.FindCoordinatorResponseCoordinator{Key: k, NodeID: 0, Host: s.host, Port: s.port})
		}
		return resp
	case *kmsg.ListOffsetsRequest:
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			lt := kmsg.NewListOffsetsResponseTopic()
			lt.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				lp := kmsg.NewListOffsetsResponseTopicPartition()
				lp.Partition = rp.Partition
				lp.Offset = 0
				lp.Timestamp = -1
				lt.Partitions = append(lt.Partitions, lp)
			}
			resp.Topics = append(resp.Topics, lt)
		}
		return resp
	case *kmsg.FetchRequest:
		select { // nothing to return: wait a little, like a long poll
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(req.MaxWaitMillis)*time.Millisecond, 50*time.Millisecond)):
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			ft := kmsg.NewFetchResponseTopic()
			ft.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				fp := kmsg.NewFetchResponseTopicPartition()
				fp.Partition = rp.Partition
				fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = 0, 0, 0
				ft.Partitions = append(ft.Partitions, fp)
			}
			resp.Topics = append(resp.Topics, ft)
		}
		return resp
	case *kmsg.JoinGroupRequest:
		return c.JoinGroup(ctx, req)
	case *kmsg.SyncGroupRequest:
		return c.SyncGroup(ctx, req)
	case *kmsg.HeartbeatRequest:
		return c.Heartbeat(ctx, req)
	case *kmsg.LeaveGroupRequest:
		return c.LeaveGroup(ctx, req)
	case *kmsg.OffsetCommitRequest:
		return c.OffsetCommit(ctx, req)
	case *kmsg.OffsetFetchRequest:
		return c.OffsetFetch(ctx, req)
	case *kmsg.DescribeGroupsRequest:
		return c.DescribeGroups(ctx, req)
	case *kmsg.ListGroupsRequest:
		return c.ListGroups(ctx, req)
	case *kmsg.DeleteGroupsRequest:
		return c.DeleteGroups(ctx, req)
	case *kmsg.OffsetDeleteRequest:
		return c.OffsetDelete(ctx, req)
	}
	s.t.Errorf("unexpected request %T", req)
	return nil
}

// kgoMember is a kgo consumer in a group, tracking what it owns through the rebalance
// callbacks.
type kgoMember struct {
	cl     *kgo.Client
	mu     sync.Mutex
	owned  map[int32]bool
	cancel context.CancelFunc
	done   chan struct{}
}

func newKgoMember(t *testing.T, addr, group, topic string, extra ...kgo.Opt) *kgoMember {
	t.Helper()
	m := &kgoMember{owned: make(map[int32]bool), done: make(chan struct{})}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(3 * time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.FetchMaxWait(50 * time.Millisecond),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			for _, p := range a[topic] {
				m.owned[p] = true
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			for _, p := range l[topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(m.close)
	return m
}

func (m *kgoMember) ownedParts() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// close stops polling and closes the client (which leaves the group unless static).
func (m *kgoMember) close() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cl.Close()
	m.cancel = nil
}

// waitKgoBalanced waits until the members own all parts partitions exactly once, balanced,
// and the group is Stable with exactly these members.
func waitKgoBalanced(t *testing.T, c *Coordinator, group string, parts int32, ms ...*kgoMember) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d kgo members to share %d partitions", len(ms), parts), func() (bool, string) {
		seen := make(map[int32]int)
		var state []string
		lo, hi := int(parts)/len(ms), (int(parts)+len(ms)-1)/len(ms)
		balanced := true
		for _, m := range ms {
			ps := m.ownedParts()
			state = append(state, fmt.Sprint(ps))
			if len(ps) < lo || len(ps) > hi {
				balanced = false
			}
			for _, p := range ps {
				seen[p]++
			}
		}
		for p := range parts {
			if seen[p] != 1 {
				return false, fmt.Sprint(state)
			}
		}
		d := describe(t, c, group)
		return balanced && d.State == "Stable" && len(d.Members) == len(ms), fmt.Sprint(state, " ", d.State, " ", len(d.Members))
	})
}

func groupGeneration(c *Coordinator, group string) int32 {
	g := c.lockGroup(group, false)
	if g == nil {
		return -1
	}
	defer g.mu.Unlock()
	return g.generation
}

func TestKgoCooperativeSticky(t *testing.T) {
	store := &memStore{}
	c := newTestCoordinator(t, testConfig(), store)
	srv := startWireServer(t, c, map[string]int32{"t1": 6})
	coop := kgo.Balancers(kgo.CooperativeStickyBalancer())
	a := newKgoMember(t, srv.addr(), "kg", "t1", coop)
	b := newKgoMember(t, srv.addr(), "kg", "t1", coop)
	d := newKgoMember(t, srv.addr(), "kg", "t1", coop)
	waitKgoBalanced(t, c, "kg", 6, a, b, d)
	if p := describe(t, c, "kg").Protocol; p != "cooperative-sticky" {
		t.Fatalf("protocol %q", p)
	}

	e := newKgoMember(t, srv.addr(), "kg", "t1", coop)
	waitKgoBalanced(t, c, "kg", 6, a, b, d, e)

	// A member owning partition 0 commits through kgo.
	ctx := context.Background()
	var owner *kgoMember
	for _, m := range []*kgoMember{a, b, d, e} {
		if slices.Contains(m.ownedParts(), 0) {
			owner = m
		}
	}
	owner.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"t1": {0: {Epoch: -1, Offset: 42}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				t.Errorf("commit: %v", err)
				return
			}
			for _, tp := range resp.Topics {
				for _, p := range tp.Partitions {
					if p.ErrorCode != 0 {
						t.Errorf("commit %s/%d: %s", tp.Topic, p.Partition, errName(p.ErrorCode))
					}
				}
			}
		})
	if o, ok := c.CommittedOffset("kg", "t1", 0); !ok || o != 42 {
		t.Fatalf("committed offset %d %v", o, ok)
	}

	// A member leaves (kgo sends LeaveGroup on Close): the others take over its partitions.
	d.close()
	waitKgoBalanced(t, c, "kg", 6, a, b, e)

	// kadm sees the group and its offsets.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	lg, err := adm.ListGroups(ctx)
	if err != nil || len(lg) != 1 || lg["kg"].State != "Stable" {
		t.Fatalf("kadm ListGroups: %v %+v", err, lg)
	}
	dg, err := adm.DescribeGroups(ctx, "kg")
	if err != nil || len(dg["kg"].Members) != 3 {
		t.Fatalf("kadm DescribeGroups: %v %+v", err, dg)
	}
	offs, err := adm.FetchOffsets(ctx, "kg")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("t1", 0); !ok || o.At != 42 {
		t.Fatalf("kadm FetchOffsets t1/0 = %+v %v", o, ok)
	}
	a.close()
	b.close()
	e.close()
	waitFor(t, 5*time.Second, "group empty", func() (bool, string) {
		st := describe(t, c, "kg").State
		return st == "Empty", st
	})
	del, err := adm.DeleteGroups(ctx, "kg")
	if err != nil || del["kg"].Err != nil {
		t.Fatalf("kadm DeleteGroups: %v %+v", err, del)
	}
}

func TestKgoEagerRange(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	srv := startWireServer(t, c, map[string]int32{"t1": 5})
	rng := kgo.Balancers(kgo.RangeBalancer())
	a := newKgoMember(t, srv.addr(), "eg", "t1", rng)
	b := newKgoMember(t, srv.addr(), "eg", "t1", rng)
	waitKgoBalanced(t, c, "eg", 5, a, b)
	d := newKgoMember(t, srv.addr(), "eg", "t1", rng)
	waitKgoBalanced(t, c, "eg", 5, a, b, d)
	if p := describe(t, c, "eg").Protocol; p != "range" {
		t.Fatalf("protocol %q", p)
	}
}

func TestKgoStaticMemberRestart(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), &memStore{})
	srv := startWireServer(t, c, map[string]int32{"t1": 4})
	coop := kgo.Balancers(kgo.CooperativeStickyBalancer())
	members := map[string]*kgoMember{
		"a": newKgoMember(t, srv.addr(), "sg", "t1", coop, kgo.InstanceID("a")),
		"b": newKgoMember(t, srv.addr(), "sg", "t1", coop, kgo.InstanceID("b")),
	}
	waitKgoBalanced(t, c, "sg", 4, members["a"], members["b"])
	gen := groupGeneration(c, "sg")
	// Restart the follower. (A restarted static *leader* is told SkipAssignment (KIP-814);
	// kgo then recomputes the plan from the members' last join metadata and rejoins when it
	// differs, which real Kafka answers with a rebalance too.)
	g := c.lockGroup("sg", false)
	leaderInstance := *g.members[g.leader].instanceID
	g.mu.Unlock()
	stay, restart := "a", "b"
	if leaderInstance == "b" {
		stay, restart = "b", "a"
	}
	owned := members[restart].ownedParts()

	// A static member does not leave on Close; its successor with the same instance id takes
	// over its partitions without a rebalance.
	members[restart].close()
	if d := describe(t, c, "sg"); len(d.Members) != 2 {
		t.Fatalf("static member left on close: %d members", len(d.Members))
	}
	successor := newKgoMember(t, srv.addr(), "sg", "t1", coop, kgo.InstanceID(restart))
	waitKgoBalanced(t, c, "sg", 4, members[stay], successor)
	if got := successor.ownedParts(); fmt.Sprint(got) != fmt.Sprint(owned) {
		t.Fatalf("restarted static member owns %v, before %v", got, owned)
	}
	if g2 := groupGeneration(c, "sg"); g2 != gen {
		t.Fatalf("generation %d -> %d: the static restart rebalanced", gen, g2)
	}
}

func TestKgoRestartCoordinator(t *testing.T) {
	// The broker restarts under a running consumer: the new coordinator loads the store, and
	// the consumer carries on (heartbeats with its member id) or rejoins, with its commits.
	store := &memStore{}
	c := New(testConfig(), store, testLogger(t))
	if err := c.Load(nil); err != nil {
		t.Fatal(err)
	}
	srv := startWireServer(t, c, map[string]int32{"t1": 2})
	a := newKgoMember(t, srv.addr(), "rg", "t1")
	waitKgoBalanced(t, c, "rg", 2, a)
	ctx := context.Background()
	a.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"t1": {1: {Epoch: -1, Offset: 9}}}, nil)
	if o, _ := c.CommittedOffset("rg", "t1", 1); o != 9 {
		t.Fatalf("committed %d", o)
	}
	// Swap the coordinator behind the same listener, as a restarted broker would.
	gen := groupGeneration(c, "rg")
	c.Close()
	c2 := New(testConfig(), store, testLogger(t))
	defer c2.Close()
	loaded := time.Now()
	if err := c2.Load(store.records()); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.c = c2
	for conn := range srv.conns {
		conn.Close() // connections drop with the broker
	}
	srv.mu.Unlock()
	if o, ok := c2.CommittedOffset("rg", "t1", 1); !ok || o != 9 {
		t.Fatalf("offset after restart %d %v", o, ok)
	}
	// The consumer reconnects and carries on: its heartbeats reach the restored member.
	waitFor(t, 10*time.Second, "heartbeat after restart", func() (bool, string) {
		g := c2.lockGroup("rg", false)
		defer g.mu.Unlock()
		for _, m := range g.members {
			return m.deadline.After(loaded.Add(m.sessionTimeout)), "no heartbeat yet"
		}
		return false, "no member"
	})
	waitKgoBalanced(t, c2, "rg", 2, a)
	if g2 := groupGeneration(c2, "rg"); g2 != gen {
		t.Fatalf("generation %d after restart, want %d", g2, gen)
	}
	// The member is still able to commit with the restored or renewed generation.
	var commitErr error
	a.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"t1": {1: {Epoch: -1, Offset: 10}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil && resp.Topics[0].Partitions[0].ErrorCode != 0 {
				commitErr = fmt.Errorf("%s", errName(resp.Topics[0].Partitions[0].ErrorCode))
			}
		})
	if commitErr != nil {
		t.Fatalf("commit after restart: %v", commitErr)
	}
	if o, _ := c2.CommittedOffset("rg", "t1", 1); o != 10 {
		t.Fatalf("committed after restart %d", o)
	}
	a.close() // leaves through c2
	if st := describe(t, c2, "rg").State; st != "Empty" {
		t.Fatalf("state after leave %s", st)
	}
}
