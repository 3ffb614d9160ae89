package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sentinel errors.
var (
	// ErrInvalidConfig is wrapped by Config.Validate errors.
	ErrInvalidConfig = errors.New("cluster: invalid config")
)

// Handler is the worker side of membership. The member goroutine calls it, one call at a
// time, with the member's context (cancelled by Close; the final Revoke of Close gets a
// fresh context bounded by SessionTimeout).
type Handler interface {
	// Snapshot returns the latest config snapshot this worker has read. Every member sends
	// its Offset in its JoinGroup metadata; the leader assigns from its own snapshot.
	Snapshot() Snapshot
	// Revoke must stop the given work (tasks flushed and committed) before returning. It is
	// called before rejoining whenever work is taken away, and with everything the member
	// runs when membership is lost, when the member fences itself and on Close.
	Revoke(ctx context.Context, w Work)
	// Assigned delivers each new assignment (see Assignment); the work in a.Revoked has
	// already been stopped through Revoke.
	Assigned(ctx context.Context, a Assignment)
}

// DepartureHandler may be implemented by a Handler. When this member leads a round, it calls
// Departed with the work the previous round had given to members that are no longer in the
// group (they died, were fenced or left), before it hands out the new assignments: statuses
// can then say the work is UNASSIGNED before its new owner reports it RUNNING. generation is
// the generation of the round that reassigns it.
type DepartureHandler interface {
	Departed(ctx context.Context, generation int32, from []Departure)
}

// Departure is the work of one member that left the group.
type Departure struct {
	URL  string // the departed member's URL
	Work Work
}

// Config configures a Member. Start from DefaultConfig.
type Config struct {
	// Client is the Kafka client the member sends its requests with; the member does not
	// close it. When nil, the member creates its own from Brokers and ClientOptions and
	// closes it on Close.
	Client        *kgo.Client
	Brokers       []string
	ClientOptions []kgo.Opt
	// GroupID is the worker cluster's group.id (required).
	GroupID string
	// URL is this worker's REST URL, advertised to the other members (required). A worker
	// that restarts with the same URL gets its work back within ScheduledRebalanceMaxDelay.
	URL string
	// SessionTimeout is session.timeout.ms (default 10 s). The broker must accept it
	// (group.min.session.timeout.ms, 6 s by default in Kafka, kfake and our broker).
	SessionTimeout time.Duration
	// RebalanceTimeout is rebalance.timeout.ms (default 60 s): how long the coordinator waits
	// for every member to rejoin.
	RebalanceTimeout time.Duration
	// HeartbeatInterval is heartbeat.interval.ms (default 3 s); it must be below
	// SessionTimeout minus the fence margin (SessionTimeout/4).
	HeartbeatInterval time.Duration
	// ScheduledRebalanceMaxDelay is scheduled.rebalance.max.delay.ms: how long the leader
	// holds the work of a departed member before giving it to others. DefaultConfig sets
	// Kafka Connect's 5 minutes; 0 reassigns at once.
	ScheduledRebalanceMaxDelay time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger

	hooks *testHooks // tests only
}

// testHooks lets in-package tests interfere with the member.
type testHooks struct {
	beforeHeartbeat func() // called by the heartbeater before each Heartbeat; may block
}

// DefaultConfig returns Kafka Connect's defaults (GroupID, URL and the client are left to
// the caller).
func DefaultConfig() Config {
	return Config{
		SessionTimeout:             10 * time.Second,
		RebalanceTimeout:           60 * time.Second,
		HeartbeatInterval:          3 * time.Second,
		ScheduledRebalanceMaxDelay: 5 * time.Minute,
	}
}

// fenceMargin is how long before its session could expire a member that has not heard from
// the coordinator revokes its work.
func (c Config) fenceMargin() time.Duration { return c.SessionTimeout / 4 }

// fenceAfter is the age of the lease at which the member fences itself.
func (c Config) fenceAfter() time.Duration { return c.SessionTimeout - c.fenceMargin() }

// Validate returns a normalized copy of c (zero timeouts replaced by the defaults, a nil
// Logger by a discarding one), or an error wrapping ErrInvalidConfig naming the bad field.
func (c Config) Validate() (Config, error) {
	d := DefaultConfig()
	if c.SessionTimeout == 0 {
		c.SessionTimeout = d.SessionTimeout
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = d.RebalanceTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	bad := func(field, why string) (Config, error) {
		return c, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	switch {
	case c.Client == nil && len(c.Brokers) == 0:
		return bad("Client", "is nil and Brokers is empty")
	case c.GroupID == "":
		return bad("GroupID", "is empty")
	case c.URL == "":
		return bad("URL", "is empty")
	case c.SessionTimeout < 0 || c.SessionTimeout > (1<<31-1)*time.Millisecond:
		return bad("SessionTimeout", "is out of range")
	case c.RebalanceTimeout < 0 || c.RebalanceTimeout > (1<<31-1)*time.Millisecond:
		return bad("RebalanceTimeout", "is out of range")
	case c.HeartbeatInterval < 0 || c.HeartbeatInterval >= c.fenceAfter():
		return bad("HeartbeatInterval", fmt.Sprintf("%v must be below SessionTimeout*3/4 (%v)", c.HeartbeatInterval, c.fenceAfter()))
	case c.ScheduledRebalanceMaxDelay < 0:
		return bad("ScheduledRebalanceMaxDelay", "is negative")
	}
	return c, nil
}

// Member is this worker's membership in the worker cluster. Its methods are safe for
// concurrent use.
type Member struct {
	cfg       Config
	h         Handler
	log       *slog.Logger
	client    *kgo.Client
	ownClient bool

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	rejoinCh  chan struct{} // Rejoin -> run, buffered 1
	hbWake    chan struct{} // heartbeater -> run, buffered 1
	epoch     time.Time     // monotonic base of lease
	lease     atomic.Int64  // ns since epoch: send time of the last request proving membership

	mu          sync.Mutex // guards the fields below (written by run, read by all)
	coordinator int32      // coordinator node id, -1 unknown
	memberID    string
	generation  int32 // -1 while the member has no generation
	current     Assignment
	assigned    bool              // current holds a real assignment
	owners      map[TaskID]string // leader only: unit -> owner URL in the last round it led
	hbEvent     *hbEvent          // last notable heartbeat answer, consumed by run

	// Owned by run.
	memory     *leaderMemory
	lastGen    int32 // generation of the last assignment applied
	mismatches int   // consecutive CONFIG_MISMATCH rounds
}

// hbEvent is a Heartbeat that failed or asked for a rebalance.
type hbEvent struct {
	memberID   string
	generation int32
	code       int16
	err        error
}

// Join validates cfg and starts the member goroutine, which joins the group and keeps the
// membership until Close (or until ctx is cancelled; Close must still be called to release
// it). It does not wait for the first assignment: that arrives through h.Assigned.
func Join(ctx context.Context, cfg Config, h Handler) (*Member, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidConfig)
	}
	m := &Member{
		cfg:         cfg,
		h:           h,
		log:         cfg.Logger.With("group", cfg.GroupID, "url", cfg.URL),
		client:      cfg.Client,
		done:        make(chan struct{}),
		rejoinCh:    make(chan struct{}, 1),
		hbWake:      make(chan struct{}, 1),
		epoch:       time.Now(),
		coordinator: -1,
		generation:  -1,
		lastGen:     -1,
	}
	if m.client == nil {
		opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOptions...)
		if m.client, err = kgo.NewClient(opts...); err != nil {
			return nil, fmt.Errorf("cluster: creating the Kafka client: %w", err)
		}
		m.ownClient = true
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	stop := context.AfterFunc(ctx, cancel)
	go func() {
		defer stop()
		m.run(runCtx)
	}()
	return m, nil
}

// Rejoin asks for a rebalance, e.g. after the config topic changed (new connectors or task
// counts). It does not block. A follower whose metadata (config offset, assignment) did not
// change gets the current generation back without a rebalance; the leader always rebalances.
func (m *Member) Rejoin() {
	select {
	case m.rejoinCh <- struct{}{}:
	default:
	}
}

// Leader returns the leader's member id and URL of the current assignment; ok is false
// before the first assignment.
func (m *Member) Leader() (id, url string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current.LeaderID, m.current.LeaderURL, m.assigned
}

// Leadership tells whether this member leads the group (self) and the leader's URL, as of
// the last assignment: during a rebalance the leader normally stays the leader (the
// coordinator keeps it when it rejoins). ok is false while the member has no assignment or
// no generation (before its first assignment, after it lost its membership or fenced
// itself): who leads is not known then.
func (m *Member) Leadership() (self bool, leaderURL string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.assigned || m.generation < 0 {
		return false, "", false
	}
	return m.current.LeaderID == m.current.MemberID, m.current.LeaderURL, true
}

// OwnerURL returns the URL of the member that runs u, as assigned in the last round this
// member led; ok is false when this member is not the leader or nobody runs u.
func (m *Member) OwnerURL(u TaskID) (url string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.assigned || m.current.LeaderID != m.current.MemberID {
		return "", false
	}
	url, ok = m.owners[u]
	return url, ok
}

// Live reports whether the member may run work now: its last proof of membership is younger
// than the fence threshold (3/4 of the session timeout). Writers check it right before a
// write, so that a process resumed after a pause (SIGSTOP, a long GC, a VM freeze) writes
// nothing before the member goroutine has fenced it.
func (m *Member) Live() bool {
	return time.Duration(m.now()-m.lease.Load()) < m.cfg.fenceAfter()
}

// Generation returns the generation of the current assignment (-1 before the first one).
func (m *Member) Generation() int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.assigned {
		return -1
	}
	return m.current.Generation
}

// Current returns the current assignment: Assigned is what the member runs now (empty
// after it fenced itself or lost its membership).
func (m *Member) Current() Assignment {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// Close stops the member: it revokes everything (Handler.Revoke), leaves the group
// (LeaveGroup, so the leader reassigns at once instead of after the session timeout) and
// closes the client if the member created it. It blocks until the member goroutine is done
// and is idempotent.
func (m *Member) Close() error {
	m.closeOnce.Do(m.cancel)
	<-m.done
	return nil
}

func (m *Member) now() int64 { return int64(time.Since(m.epoch)) }

// renew extends the lease to a request sent at sent (ns since epoch).
func (m *Member) renew(sent int64) {
	for {
		old := m.lease.Load()
		if sent <= old || m.lease.CompareAndSwap(old, sent) {
			return
		}
	}
}

// run is the member goroutine.
func (m *Member) run(ctx context.Context) {
	defer close(m.done)
	var wg sync.WaitGroup
	hbCtx, hbCancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.heartbeater(hbCtx)
	}()
	m.loop(ctx)
	hbCancel()
	wg.Wait()
	m.shutdown()
}

// loop keeps the membership until ctx ends.
func (m *Member) loop(ctx context.Context) {
	needJoin := true
	var rejoinTimer *time.Timer
	stopTimer := func() {
		if rejoinTimer != nil {
			rejoinTimer.Stop()
			rejoinTimer = nil
		}
	}
	defer stopTimer()
	for ctx.Err() == nil {
		if m.checkFence(ctx) {
			needJoin = true
		}
		if needJoin {
			rejoinNow, rejoinIn := m.rebalance(ctx)
			needJoin = rejoinNow
			stopTimer()
			if rejoinIn > 0 {
				rejoinTimer = time.NewTimer(rejoinIn)
			}
			continue
		}
		m.mu.Lock()
		noCoordinator := m.coordinator < 0
		m.mu.Unlock()
		if noCoordinator {
			if _, err := m.findCoordinator(ctx); err != nil {
				m.sleep(ctx, 200*time.Millisecond)
			}
			continue
		}
		var timerC <-chan time.Time
		if rejoinTimer != nil {
			timerC = rejoinTimer.C
		}
		fence := m.fenceTimer()
		select {
		case <-ctx.Done():
		case <-m.rejoinCh:
			needJoin = true
		case <-timerC:
			rejoinTimer = nil
			needJoin = true
		case <-m.hbWake:
			needJoin = m.onHeartbeatEvent(ctx)
		case <-fence.C:
		}
		fence.Stop()
	}
}

// fenceTimer fires when the lease reaches fenceAfter (never while the member runs nothing).
func (m *Member) fenceTimer() *time.Timer {
	if m.current.Assigned.Empty() {
		t := time.NewTimer(time.Hour)
		return t
	}
	d := time.Duration(m.lease.Load()+int64(m.cfg.fenceAfter())-m.now()) + time.Millisecond
	return time.NewTimer(max(d, 0))
}

// checkFence revokes everything when the lease is too old; it reports whether it did.
func (m *Member) checkFence(ctx context.Context) bool {
	if m.current.Assigned.Empty() {
		return false
	}
	age := time.Duration(m.now() - m.lease.Load())
	if age < m.cfg.fenceAfter() {
		return false
	}
	m.log.Warn("no proof of membership for too long: revoking all work before the session can expire",
		"since_last_heartbeat", age, "session_timeout", m.cfg.SessionTimeout)
	m.revokeAll(ctx)
	// The coordinator may still count this member, with the work the
	// leader gave it; rejoining under the same id with unchanged metadata
	// would not start a rebalance and the work would stay unassigned.
	// Leave, and join again as a new member.
	m.leave(ctx)
	return true
}

// leave sends LeaveGroup (best effort, bounded by the heartbeat interval
// so a fence is not held up by an unreachable coordinator) and forgets the
// member id and generation.
func (m *Member) leave(ctx context.Context) {
	m.mu.Lock()
	coord, id := m.coordinator, m.memberID
	m.mu.Unlock()
	if id != "" {
		lctx, cancel := context.WithTimeout(ctx, m.cfg.HeartbeatInterval)
		if coord < 0 {
			coord, _ = m.findCoordinator(lctx)
		}
		if coord >= 0 {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.MemberID = m.cfg.GroupID, id
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = id
			req.Members = []kmsg.LeaveGroupRequestMember{lm}
			if _, err := m.client.Broker(int(coord)).Request(lctx, req); err != nil {
				m.log.Debug("LeaveGroup failed", "err", err)
			}
		}
		cancel()
	}
	m.mu.Lock()
	m.generation = -1
	m.memberID = ""
	m.mu.Unlock()
}

// revokeAll stops everything the member runs.
func (m *Member) revokeAll(ctx context.Context) {
	all := m.current.Assigned
	if all.Empty() {
		return
	}
	m.h.Revoke(ctx, all)
	m.mu.Lock()
	m.current.Assigned = Work{}
	m.current.Revoked = all
	m.mu.Unlock()
}

// lose handles a lost membership: revoke everything and forget the generation (and the
// member id when reset is set).
func (m *Member) lose(ctx context.Context, reset bool, why string) {
	m.log.Info("membership lost: revoking all work and rejoining", "reason", why)
	m.revokeAll(ctx)
	m.mu.Lock()
	m.generation = -1
	if reset {
		m.memberID = ""
	}
	m.mu.Unlock()
}

// sleep waits d, fencing if needed meanwhile.
func (m *Member) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		fence := m.fenceTimer()
		select {
		case <-ctx.Done():
			fence.Stop()
			return
		case <-t.C:
			fence.Stop()
			return
		case <-fence.C:
			m.checkFence(ctx)
		}
	}
}

// roundTrip sends req to broker (or to any broker when broker < 0) in a goroutine it waits
// for, bounded by timeout, and fences meanwhile if the lease runs out.
func (m *Member) roundTrip(ctx context.Context, broker int32, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		resp kmsg.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if broker < 0 {
			r.resp, r.err = m.client.Request(rctx, req)
		} else {
			r.resp, r.err = m.client.Broker(int(broker)).Request(rctx, req)
		}
		ch <- r
	}()
	for {
		fence := m.fenceTimer()
		select {
		case r := <-ch:
			fence.Stop()
			return r.resp, r.err
		case <-fence.C:
			m.checkFence(ctx)
		}
	}
}

func (m *Member) findCoordinator(ctx context.Context) (int32, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = m.cfg.GroupID
	req.CoordinatorKeys = []string{m.cfg.GroupID}
	resp, err := m.roundTrip(ctx, -1, req, m.cfg.SessionTimeout)
	if err != nil {
		return -1, fmt.Errorf("finding the coordinator: %w", err)
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	code, node := r.ErrorCode, r.NodeID
	if len(r.Coordinators) > 0 {
		code, node = r.Coordinators[0].ErrorCode, r.Coordinators[0].NodeID
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return -1, fmt.Errorf("finding the coordinator: %w", err)
	}
	m.mu.Lock()
	m.coordinator = node
	m.mu.Unlock()
	return node, nil
}

func (m *Member) forgetCoordinator() {
	m.mu.Lock()
	m.coordinator = -1
	m.mu.Unlock()
}

// currentWire is the member's current assignment as sent in its metadata.
func (m *Member) currentWire() *wireAssignment {
	if !m.assigned {
		return nil
	}
	return &wireAssignment{
		Version:      ProtocolVersion,
		Leader:       m.current.LeaderID,
		LeaderURL:    m.current.LeaderURL,
		ConfigOffset: m.current.ConfigOffset,
		Assigned:     m.current.Assigned,
	}
}

// rebalance joins and syncs until an assignment is applied or ctx ends. It returns whether
// to rejoin at once (work was revoked) or after rejoinIn (scheduled delay, config mismatch).
func (m *Member) rebalance(ctx context.Context) (rejoinNow bool, rejoinIn time.Duration) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			m.sleep(ctx, backoff)
			if ctx.Err() != nil {
				return false, 0
			}
		}
		m.checkFence(ctx)
		done, retryNow, now, in := m.joinAndSync(ctx)
		if done {
			return now, in
		}
		switch {
		case retryNow:
			backoff = 0
		case backoff == 0:
			backoff = 100 * time.Millisecond
		default:
			backoff = min(2*backoff, 2*time.Second)
		}
	}
	return false, 0
}

// errCode handles a group error code from JoinGroup, SyncGroup or Heartbeat; it reports
// whether to retry at once.
func (m *Member) errCode(ctx context.Context, code int16, api string) (retryNow bool) {
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
		m.forgetCoordinator()
		return false
	case kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code:
		m.lose(ctx, true, api+": "+kerr.ErrorForCode(code).Error())
		return true
	case kerr.IllegalGeneration.Code:
		m.lose(ctx, false, api+": "+kerr.ErrorForCode(code).Error())
		return true
	case kerr.RebalanceInProgress.Code:
		return true
	}
	m.log.Warn("group request failed", "api", api, "err", kerr.ErrorForCode(code))
	return false
}

// joinAndSync runs one JoinGroup + SyncGroup and applies the result. done is set once an
// assignment is applied.
func (m *Member) joinAndSync(ctx context.Context) (done, retryNow, rejoinNow bool, rejoinIn time.Duration) {
	m.mu.Lock()
	coord := m.coordinator
	m.mu.Unlock()
	if coord < 0 {
		var err error
		if coord, err = m.findCoordinator(ctx); err != nil {
			m.log.Debug("no coordinator yet", "err", err)
			return false, false, false, 0
		}
	}

	snap := m.h.Snapshot()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = m.cfg.GroupID
	join.SessionTimeoutMillis = int32(m.cfg.SessionTimeout.Milliseconds())
	join.RebalanceTimeoutMillis = int32(m.cfg.RebalanceTimeout.Milliseconds())
	m.mu.Lock()
	join.MemberID = m.memberID
	m.mu.Unlock()
	join.ProtocolType = ProtocolType
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = ProtocolName
	proto.Metadata = encodeMetadata(memberMetadata{URL: m.cfg.URL, ConfigOffset: snap.Offset, Current: m.currentWire()})
	join.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
	sent := m.now()
	r, err := m.roundTrip(ctx, coord, join, m.cfg.RebalanceTimeout+m.cfg.SessionTimeout)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Debug("JoinGroup failed", "err", err)
			m.forgetCoordinator()
		}
		return false, false, false, 0
	}
	jr := r.(*kmsg.JoinGroupResponse)
	if jr.ErrorCode == kerr.MemberIDRequired.Code {
		m.mu.Lock()
		m.memberID = jr.MemberID
		m.mu.Unlock()
		return false, true, false, 0
	}
	if jr.ErrorCode != 0 {
		return false, m.errCode(ctx, jr.ErrorCode, "JoinGroup"), false, 0
	}
	if jr.Protocol != nil && *jr.Protocol != ProtocolName {
		m.log.Error("the group chose a protocol this member does not speak", "protocol", *jr.Protocol)
		return false, false, false, 0
	}
	m.renew(sent)
	m.log.Debug("joined", "generation", jr.Generation, "member", jr.MemberID, "leader", jr.LeaderID)
	m.mu.Lock()
	m.memberID, m.generation = jr.MemberID, jr.Generation
	m.mu.Unlock()

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group = m.cfg.GroupID
	sync.Generation = jr.Generation
	sync.MemberID = jr.MemberID
	sync.ProtocolType = kmsg.StringPtr(ProtocolType)
	sync.Protocol = kmsg.StringPtr(ProtocolName)
	var memory *leaderMemory
	if jr.LeaderID == jr.MemberID {
		memory, sync.GroupAssignment = m.lead(ctx, jr)
	}
	sent = m.now()
	r, err = m.roundTrip(ctx, coord, sync, m.cfg.RebalanceTimeout+m.cfg.SessionTimeout)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Debug("SyncGroup failed", "err", err)
			m.forgetCoordinator()
		}
		return false, false, false, 0
	}
	sr := r.(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 {
		return false, m.errCode(ctx, sr.ErrorCode, "SyncGroup"), false, 0
	}
	m.renew(sent)
	wa, err := decodeAssignment(sr.MemberAssignment)
	if err != nil {
		m.log.Error("undecodable assignment; rejoining", "err", err)
		return false, false, false, 0
	}
	if memory != nil {
		m.memory = memory
		owners := map[TaskID]string{}
		for id, units := range memory.Assigned {
			for u := range units {
				owners[u] = memory.URLs[id]
			}
		}
		m.mu.Lock()
		m.owners = owners
		m.mu.Unlock()
	}
	rejoinNow, rejoinIn = m.apply(ctx, jr.Generation, jr.MemberID, wa)
	return true, false, rejoinNow, rejoinIn
}

// lead computes the assignments of a round this member leads.
func (m *Member) lead(ctx context.Context, jr *kmsg.JoinGroupResponse) (*leaderMemory, []kmsg.SyncGroupRequestGroupAssignment) {
	snap := m.h.Snapshot()
	m.reportDepartures(ctx, jr, snap)
	members := make([]memberInfo, 0, len(jr.Members))
	for _, jm := range jr.Members {
		info := memberInfo{ID: jm.MemberID, ConfigOffset: -1}
		md, err := decodeMetadata(jm.ProtocolMetadata)
		if err != nil {
			m.log.Warn("undecodable member metadata; treating the member as owning nothing", "member", jm.MemberID, "err", err)
		} else {
			info.URL, info.ConfigOffset = md.URL, md.ConfigOffset
			if md.Current != nil {
				info.Owned = md.Current.Assigned
			}
		}
		members = append(members, info)
	}
	res := assign(assignParams{
		Generation:     jr.Generation,
		LeaderID:       jr.MemberID,
		LeaderURL:      m.cfg.URL,
		Members:        members,
		Snapshot:       snap,
		Memory:         m.memory,
		PrevGeneration: m.lastGen,
		Now:            time.Now(),
		MaxDelay:       m.cfg.ScheduledRebalanceMaxDelay,
	})
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(res.Assignments))
	for _, info := range members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = info.ID
		a.MemberAssignment = encodeAssignment(res.Assignments[info.ID])
		out = append(out, a)
	}
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		for _, info := range members {
			a := res.Assignments[info.ID]
			m.log.Debug("assigned", "generation", jr.Generation, "member", info.ID, "member_url", info.URL,
				"owned", info.Owned.Len(), "assigned", a.Assigned.Len(), "revoked", a.Revoked.Len(), "delay_ms", a.DelayMillis, "error", a.Error)
		}
	}
	return res.Memory, out
}

// apply hands an assignment to the Handler: revoke what is taken away, then Assigned.
func (m *Member) apply(ctx context.Context, gen int32, memberID string, wa wireAssignment) (rejoinNow bool, rejoinIn time.Duration) {
	if m.assigned && gen == m.lastGen {
		// The same generation again (a follower rejoined without changes): nothing new.
		return false, 0
	}
	a := Assignment{
		Generation:   gen,
		MemberID:     memberID,
		LeaderID:     wa.Leader,
		LeaderURL:    wa.LeaderURL,
		ConfigOffset: wa.ConfigOffset,
		Delay:        time.Duration(wa.DelayMillis) * time.Millisecond,
		Error:        wa.Error,
	}
	if wa.Error != ErrNone {
		a.Assigned = m.current.Assigned
		m.setCurrent(a, gen)
		m.mismatches++
		m.log.Info("config mismatch: reading the config topic further before rejoining",
			"config_offset", wa.ConfigOffset, "error", wa.Error)
		m.h.Assigned(ctx, a)
		return false, min(50*time.Millisecond<<min(m.mismatches-1, 6), 2*time.Second)
	}
	m.mismatches = 0
	stop := m.current.Assigned.minus(wa.Assigned)
	if !stop.Empty() {
		m.h.Revoke(ctx, stop)
	}
	a.Assigned, a.Revoked = wa.Assigned, stop
	m.setCurrent(a, gen)
	m.h.Assigned(ctx, a)
	if !wa.Revoked.Empty() || !stop.Empty() {
		return true, 0
	}
	if a.Delay > 0 {
		return false, a.Delay + 10*time.Millisecond
	}
	return false, 0
}

// reportDepartures tells a DepartureHandler what the members of the previous round that
// are not in this one ran (still existing work only), before the round hands it out again.
func (m *Member) reportDepartures(ctx context.Context, jr *kmsg.JoinGroupResponse, snap Snapshot) {
	dh, ok := m.h.(DepartureHandler)
	mem := m.memory
	if !ok || mem == nil || mem.Generation != m.lastGen {
		return
	}
	present := make(map[string]bool, len(jr.Members))
	for _, jm := range jr.Members {
		present[jm.MemberID] = true
	}
	var out []Departure
	for _, id := range sortedKeys(mem.Assigned) {
		if present[id] {
			continue
		}
		units := map[TaskID]bool{}
		for u := range mem.Assigned[id] {
			if n, ok := snap.Connectors[u.Connector]; ok && u.Task < n {
				units[u] = true
			}
		}
		if len(units) > 0 {
			out = append(out, Departure{URL: mem.URLs[id], Work: workOf(units)})
		}
	}
	if len(out) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, m.cfg.SessionTimeout/2)
	defer cancel()
	dh.Departed(dctx, jr.Generation, out)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (m *Member) setCurrent(a Assignment, gen int32) {
	m.mu.Lock()
	m.current, m.assigned = a, true
	m.mu.Unlock()
	m.lastGen = gen
}

// heartbeater sends Heartbeat every HeartbeatInterval while the member has a generation.
func (m *Member) heartbeater(ctx context.Context) {
	t := time.NewTicker(m.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.cfg.hooks != nil && m.cfg.hooks.beforeHeartbeat != nil {
			m.cfg.hooks.beforeHeartbeat()
		}
		m.mu.Lock()
		coord, id, gen := m.coordinator, m.memberID, m.generation
		m.mu.Unlock()
		if coord < 0 || id == "" || gen < 0 {
			continue
		}
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = m.cfg.GroupID, id, gen
		sent := m.now()
		hctx, cancel := context.WithTimeout(ctx, max(m.cfg.HeartbeatInterval, m.cfg.SessionTimeout/4))
		r, err := m.client.Broker(int(coord)).Request(hctx, req)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var code int16
		if err == nil {
			code = r.(*kmsg.HeartbeatResponse).ErrorCode
			if code == 0 || code == kerr.RebalanceInProgress.Code {
				m.renew(sent)
			}
		}
		if err != nil || code != 0 {
			m.mu.Lock()
			m.hbEvent = &hbEvent{memberID: id, generation: gen, code: code, err: err}
			m.mu.Unlock()
			select {
			case m.hbWake <- struct{}{}:
			default:
			}
		}
	}
}

// onHeartbeatEvent acts on the last notable heartbeat; it reports whether to rejoin.
func (m *Member) onHeartbeatEvent(ctx context.Context) bool {
	m.mu.Lock()
	ev := m.hbEvent
	m.hbEvent = nil
	current := ev != nil && ev.memberID == m.memberID && ev.generation == m.generation
	m.mu.Unlock()
	if !current {
		return false
	}
	if ev.err != nil {
		m.log.Debug("heartbeat failed", "err", ev.err)
		m.forgetCoordinator()
		return false
	}
	switch ev.code {
	case kerr.RebalanceInProgress.Code:
		return true
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
		m.forgetCoordinator()
		return false
	}
	m.errCode(ctx, ev.code, "Heartbeat")
	return true
}

// shutdown revokes everything and leaves the group; called by run after the loop ended.
func (m *Member) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.SessionTimeout)
	defer cancel()
	m.revokeAll(ctx)
	m.leave(ctx)
	if m.ownClient {
		m.client.Close()
	}
}
