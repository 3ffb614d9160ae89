package groups

// Membership APIs of the classic group protocol:
//   JoinGroup v0-v9 (v4+: KIP-394 MEMBER_ID_REQUIRED; v5+: group.instance.id; v9: SkipAssignment)
//   SyncGroup v0-v5 (v5: protocol type and name checked and returned)
//   Heartbeat v0-v4
//   LeaveGroup v0-v5 (v3+: batch of members, by member id or instance id)

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinParams is a decoded, validated JoinGroup request.
type joinParams struct {
	version      int16
	memberID     string
	instanceID   *string
	protocolType string
	protocols    []kmsg.JoinGroupRequestProtocol
	session      time.Duration
	rebalance    time.Duration
	client       ClientInfo
}

func (p *joinParams) newMember(id string) *member {
	return &member{
		id:               id,
		instanceID:       p.instanceID,
		clientID:         p.client.ClientID,
		clientHost:       p.client.ClientHost,
		protocolType:     p.protocolType,
		protocols:        p.protocols,
		sessionTimeout:   p.session,
		rebalanceTimeout: p.rebalance,
	}
}

// JoinGroup handles JoinGroup v0-v9. It blocks until the join phase of the rebalance ends
// (every member rejoined, or the rebalance timeout passed); if ctx ends first (or the
// coordinator closes) it returns COORDINATOR_NOT_AVAILABLE and the member stays joined, as
// Kafka does when a connection drops. The client id and host for new members come from
// WithClientInfo. A v4+ dynamic member without a member id gets MEMBER_ID_REQUIRED with its
// assigned id and must join again with it within its session timeout.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	fail := func(code int16) *kmsg.JoinGroupResponse {
		joinResult{code: code, memberID: req.MemberID}.fill(resp)
		return resp
	}
	if code := c.serving(); code != 0 {
		return fail(code)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	p := &joinParams{
		version:      req.Version,
		memberID:     req.MemberID,
		protocolType: req.ProtocolType,
		protocols:    req.Protocols,
		session:      msDur(req.SessionTimeoutMillis),
		client:       clientInfoFrom(ctx),
	}
	if req.Version >= 5 {
		p.instanceID = req.InstanceID
	}
	if p.session < c.cfg.MinSessionTimeout || p.session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	p.rebalance = p.session
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		p.rebalance = msDur(req.RebalanceTimeoutMillis)
	}
	if p.protocolType == "" || len(p.protocols) == 0 {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	// Only a member without an id may create the group (Kafka answers UNKNOWN_MEMBER_ID to
	// a known id for an unknown group).
	g := c.lockGroup(req.Group, req.MemberID == "")
	if g == nil {
		if c.closed.Load() {
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		return fail(kerr.UnknownMemberID.Code)
	}
	res, w := g.join(p, time.Now())
	if c.release(g) {
		c.flushMeta(g)
	}
	if res != nil {
		res.fill(resp)
		return resp
	}
	select {
	case r := <-w.ch:
		r.fill(resp)
	case <-ctx.Done():
		return fail(kerr.CoordinatorNotAvailable.Code)
	case <-c.done:
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	return resp
}

// join is Kafka's handleJoinGroup after validation. It returns either an immediate result
// or a waiter that receives the result when the join phase ends. Called with mu held.
func (g *group) join(p *joinParams, now time.Time) (*joinResult, *joinWait) {
	fail := func(code int16) (*joinResult, *joinWait) {
		return &joinResult{code: code, memberID: p.memberID}, nil
	}
	if !g.supportsProtocols(p.protocolType, p.protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	w := &joinWait{ch: make(chan joinResult, 1)}

	if p.memberID == "" {
		if p.instanceID != nil {
			if oldID, ok := g.static[*p.instanceID]; ok && g.members[oldID] != nil {
				return g.replaceStatic(oldID, p, w, now)
			}
			// Static members join directly, without MEMBER_ID_REQUIRED.
			g.addMember(p.newMember(newMemberID(*p.instanceID)), w, now)
			return nil, w
		}
		id := newMemberID(p.client.ClientID)
		if p.version >= 4 {
			g.pending[id] = now.Add(p.session)
			return &joinResult{code: kerr.MemberIDRequired.Code, memberID: id}, nil
		}
		g.addMember(p.newMember(id), w, now)
		return nil, w
	}

	if _, ok := g.pending[p.memberID]; ok {
		delete(g.pending, p.memberID)
		g.addMember(p.newMember(p.memberID), w, now)
		return nil, w
	}
	if code := g.validateMember(p.memberID, p.instanceID); code != 0 {
		return fail(code)
	}
	m := g.members[p.memberID]
	switch g.state {
	case statePreparingRebalance:
		g.updateMember(m, p, w)
		g.tryCompleteJoin(now)
		return nil, w
	case stateCompletingRebalance:
		if m.matches(p.protocols) {
			// A retried join: the same answer again.
			r := g.currentJoinResult(m.id)
			if m.id == g.leader {
				r.members = g.memberMetadata()
			}
			return &r, nil
		}
		g.updateMember(m, p, w)
		g.prepareRebalance(now)
		return nil, w
	case stateStable:
		if m.id != g.leader && m.matches(p.protocols) {
			// A follower with unchanged metadata gets the current generation; only the
			// leader or a changed subscription starts a rebalance.
			r := g.currentJoinResult(m.id)
			return &r, nil
		}
		g.updateMember(m, p, w)
		g.prepareRebalance(now)
		return nil, w
	}
	return fail(kerr.UnknownMemberID.Code)
}

// replaceStatic handles a static member joining without a member id while its instance id
// maps to a current member (Kafka's updateStaticMemberAndRebalance): the old member id is
// fenced (its parked calls get FENCED_INSTANCE_ID), the member takes a new id and keeps its
// assignment. In a Stable group whose selected protocol does not change there is no
// rebalance: the member gets the current generation at once (before v9 with the old leader
// id, so a rejoining leader does not reassign; v9+ tells the leader SkipAssignment).
func (g *group) replaceStatic(oldID string, p *joinParams, w *joinWait, now time.Time) (*joinResult, *joinWait) {
	m := g.members[oldID]
	currentLeader := g.leader
	newID := newMemberID(*p.instanceID)
	m.replyJoin(joinResult{code: kerr.FencedInstanceID.Code, memberID: oldID})
	m.replySync(syncResult{code: kerr.FencedInstanceID.Code})
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	if g.leader == oldID {
		g.leader = newID
	}
	g.static[*p.instanceID] = newID
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	m.deadline = now.Add(p.session)
	g.updateMember(m, p, w)
	g.c.log.Info("static member replaced", "group", g.name, "instance", *p.instanceID, "old", oldID, "new", newID)

	switch g.state {
	case stateStable:
		if g.selectProtocol() == g.protocol {
			m.join = nil
			g.metaDirty = true
			r := g.currentJoinResult(newID)
			if p.version >= 9 {
				if g.leader == newID {
					r.members = g.memberMetadata()
					r.skip = true
				}
			} else {
				r.leader = currentLeader
			}
			return &r, nil
		}
		g.prepareRebalance(now)
	case stateCompletingRebalance:
		// The leader may already be assigning with the old id: rebalance.
		g.prepareRebalance(now)
	case statePreparingRebalance:
		g.tryCompleteJoin(now)
	}
	return nil, w
}

// SyncGroup handles SyncGroup v0-v5. A follower that syncs before the leader blocks until
// the leader's assignment is persisted (or the round is abandoned: REBALANCE_IN_PROGRESS);
// the leader's call returns once its assignment is durable. If ctx ends first it returns
// COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if code := c.serving(); code != 0 {
		return fail(code)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g := c.lockGroup(req.Group, false)
	if g == nil {
		if c.closed.Load() {
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		return fail(kerr.UnknownMemberID.Code)
	}
	res, w, persist := g.syncGroup(req, time.Now())
	gen := g.generation
	if c.release(g) {
		c.flushMeta(g)
	}
	if res != nil {
		res.fill(resp)
		return resp
	}
	if persist {
		c.persistAssignment(g, gen)
	}
	select {
	case r := <-w.ch:
		r.fill(resp)
	case <-ctx.Done():
		return fail(kerr.CoordinatorNotAvailable.Code)
	case <-c.done:
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	return resp
}

// syncGroup is Kafka's doSyncGroup. persist is set when the caller is the leader of a
// CompletingRebalance group and must persist the assignment. Called with mu held.
func (g *group) syncGroup(req *kmsg.SyncGroupRequest, now time.Time) (res *syncResult, w *syncWait, persist bool) {
	fail := func(code int16) (*syncResult, *syncWait, bool) {
		return &syncResult{code: code}, nil, false
	}
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	if code := g.validateMember(req.MemberID, instanceID); code != 0 {
		return fail(code)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if req.Version >= 5 {
		if req.ProtocolType != nil && *req.ProtocolType != g.protocolType {
			return fail(kerr.InconsistentGroupProtocol.Code)
		}
		if req.Protocol != nil && *req.Protocol != g.protocol {
			return fail(kerr.InconsistentGroupProtocol.Code)
		}
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		m.replySync(syncResult{code: kerr.RebalanceInProgress.Code}) // a retried sync replaces the parked one
		w = &syncWait{ch: make(chan syncResult, 1)}
		m.sync = w
		delete(g.pendingSync, m.id)
		if m.id == g.leader && !g.syncInFlight {
			g.syncInFlight = true
			g.leaderAssign = req.GroupAssignment
			persist = true
		}
		return nil, w, persist
	case stateStable:
		delete(g.pendingSync, m.id)
		m.deadline = now.Add(m.sessionTimeout)
		a := m.assignment
		if a == nil {
			a = g.emptyAssignment()
		}
		return &syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: a}, nil, false
	}
	return fail(kerr.UnknownMemberID.Code)
}

// persistAssignment writes the group metadata with the leader's assignment of generation gen
// and, once durable, hands every parked SyncGroup its assignment and makes the group Stable.
// If the write fails, parked syncs get COORDINATOR_NOT_AVAILABLE and the group rebalances.
// Called without g's locks.
func (c *Coordinator) persistAssignment(g *group, gen int32) {
	g.storeMu.Lock()
	g.mu.Lock()
	if g.state != stateCompletingRebalance || g.generation != gen || !g.syncInFlight {
		// The round was abandoned meanwhile; its parked calls were answered.
		dirty := c.release(g)
		g.storeMu.Unlock()
		if dirty {
			c.flushMeta(g)
		}
		return
	}
	assign := g.assignmentFromLeader()
	rec := g.metadataRecord(func(m *member) []byte { return assign[m.id] })
	g.mu.Unlock()

	err := c.store.Append(c.ctx, []Record{rec})

	g.mu.Lock()
	now := time.Now()
	if g.state == stateCompletingRebalance && g.generation == gen && g.syncInFlight {
		g.syncInFlight = false
		g.leaderAssign = nil
		if err != nil {
			c.log.Warn("persisting group assignment failed", "group", g.name, "generation", gen, "err", err)
			for _, m := range g.members {
				if m.sync != nil {
					m.replySync(syncResult{code: kerr.CoordinatorNotAvailable.Code})
					m.deadline = now.Add(m.sessionTimeout)
				}
			}
			g.prepareRebalance(now)
		} else {
			for _, m := range g.members {
				m.assignment = assign[m.id]
				if m.sync != nil {
					m.replySync(syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment})
					m.deadline = now.Add(m.sessionTimeout)
				}
			}
			g.metaDirty = false
			g.setState(stateStable)
		}
	}
	dirty := c.release(g)
	g.storeMu.Unlock()
	if dirty {
		c.flushMeta(g)
	}
}

// Heartbeat handles Heartbeat v0-v4: REBALANCE_IN_PROGRESS tells a member of the current
// generation to rejoin; ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID as Kafka.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if code := c.serving(); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroup(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		if c.closed.Load() {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return resp
	}
	resp.ErrorCode = g.heartbeat(req, time.Now())
	if c.release(g) {
		c.flushMeta(g)
	}
	return resp
}

func (g *group) heartbeat(req *kmsg.HeartbeatRequest, now time.Time) int16 {
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	if code := g.validateMember(req.MemberID, instanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		m.deadline = now.Add(m.sessionTimeout)
		return kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		m.deadline = now.Add(m.sessionTimeout)
		return 0
	}
	return kerr.UnknownMemberID.Code
}

// LeaveGroup handles LeaveGroup v0-v5. v0-v2 carry one member id and answer with the
// top-level error; v3+ carry members (by member id, or by instance id alone for an
// administrative removal of a static member) and answer per member.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	groupErr := func(code int16) *kmsg.LeaveGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if code := c.serving(); code != 0 {
		return groupErr(code)
	}
	if req.Group == "" {
		return groupErr(kerr.InvalidGroupID.Code)
	}
	codes := make([]int16, len(leaving))
	g := c.lockGroup(req.Group, false)
	if g == nil {
		if c.closed.Load() {
			return groupErr(kerr.CoordinatorNotAvailable.Code)
		}
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
	} else {
		now := time.Now()
		for i, lm := range leaving {
			codes[i] = g.leave(lm, now)
		}
		if c.release(g) {
			c.flushMeta(g)
		}
	}
	if req.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		rm.ErrorCode = codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (g *group) leave(lm kmsg.LeaveGroupRequestMember, now time.Time) int16 {
	if lm.MemberID == "" {
		if lm.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		id, ok := g.static[*lm.InstanceID]
		if !ok || g.members[id] == nil {
			return kerr.UnknownMemberID.Code
		}
		g.c.log.Info("static member removed by LeaveGroup", "group", g.name, "instance", *lm.InstanceID)
		g.removeMember(g.members[id], now)
		return 0
	}
	if _, ok := g.pending[lm.MemberID]; ok {
		delete(g.pending, lm.MemberID)
		g.tryCompleteJoin(now)
		return 0
	}
	if code := g.validateMember(lm.MemberID, lm.InstanceID); code != 0 {
		return code
	}
	g.removeMember(g.members[lm.MemberID], now)
	return 0
}
