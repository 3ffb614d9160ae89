package groups

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state, as in Kafka's GroupCoordinator.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String returns Kafka's name for the state (DescribeGroups, ListGroups).
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// joinResult is what a JoinGroup caller receives; fill turns it into a response of the
// caller's version.
type joinResult struct {
	code         int16
	generation   int32
	protocolType string
	protocol     string
	leader       string
	memberID     string
	members      []kmsg.JoinGroupResponseMember
	skip         bool
}

func (r joinResult) fill(resp *kmsg.JoinGroupResponse) {
	resp.ErrorCode = r.code
	resp.MemberID = r.memberID
	resp.Generation = -1
	resp.Members = nil
	resp.LeaderID = ""
	resp.SkipAssignment = false
	if resp.Version >= 7 {
		resp.ProtocolType, resp.Protocol = nil, nil
	} else {
		resp.Protocol = kmsg.StringPtr("")
	}
	if r.code != 0 {
		return
	}
	resp.Generation = r.generation
	resp.LeaderID = r.leader
	resp.Protocol = kmsg.StringPtr(r.protocol)
	if resp.Version >= 7 {
		resp.ProtocolType = kmsg.StringPtr(r.protocolType)
	}
	if resp.Version >= 9 {
		resp.SkipAssignment = r.skip
	}
	resp.Members = r.members
}

// syncResult is what a SyncGroup caller receives.
type syncResult struct {
	code         int16
	protocolType string
	protocol     string
	assignment   []byte
}

func (r syncResult) fill(resp *kmsg.SyncGroupResponse) {
	resp.ErrorCode = r.code
	if r.code != 0 {
		return
	}
	if resp.Version >= 5 {
		resp.ProtocolType = kmsg.StringPtr(r.protocolType)
		resp.Protocol = kmsg.StringPtr(r.protocol)
	}
	resp.MemberAssignment = r.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
}

// joinWait and syncWait are parked JoinGroup/SyncGroup calls. The channel has room for the
// one result ever sent, so replying never blocks.
type joinWait struct {
	ch chan joinResult
}

type syncWait struct {
	ch chan syncResult
}

// member is a group member. All fields are guarded by the group's mu.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol // in the member's order of preference
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	seq              uint64    // join order, for deterministic iteration
	deadline         time.Time // session expiry, when not parked in join or sync

	join *joinWait // parked JoinGroup (Kafka's "awaiting join")
	sync *syncWait // parked SyncGroup (Kafka's "awaiting sync")
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protos are the member's current protocols (names, metadata, order).
func (m *member) matches(protos []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, protos, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

func (m *member) replyJoin(r joinResult) {
	if m.join != nil {
		m.join.ch <- r
		m.join = nil
	}
}

func (m *member) replySync(r syncResult) {
	if m.sync != nil {
		m.sync.ch <- r
		m.sync = nil
	}
}

// offsetEntry is one committed offset.
type offsetEntry struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // ms since epoch (Config.Now)
	expireTime  int64 // ms since epoch; -1: none (retention follows the group)
}

// group is one consumer group. See the package comment for the locks.
type group struct {
	c    *Coordinator
	name string

	storeMu sync.Mutex // serializes this group's Store writes; taken before mu
	mu      sync.Mutex // guards everything below

	state        groupState
	protocolType string // "" until the first member joins (or for commit-only groups)
	protocol     string // selected protocol of the current generation; "" when Empty
	generation   int32
	leader       string
	stateSince   time.Time // Config.Now when the state last changed (Kafka's currentStateTimestamp)

	members map[string]*member
	nextSeq uint64
	static  map[string]string    // group.instance.id -> member id
	pending map[string]time.Time // KIP-394 member ids handed out, not yet joined -> expiry

	// join phase (PreparingRebalance)
	joinDeadline   time.Time
	initialDelay   bool          // the join phase is Kafka's InitialDelayedJoin
	delayRemaining time.Duration // what is left of the rebalance timeout in that phase
	newMemberAdded bool

	// sync phase (CompletingRebalance; Stable while some members still have to sync)
	pendingSync  map[string]struct{}
	syncDeadline time.Time
	syncInFlight bool // the leader's assignment is being persisted
	leaderAssign []kmsg.SyncGroupRequestGroupAssignment

	subscribed map[string]struct{} // topics of a "consumer" group's members; nil: unknown

	offsets map[string]map[int32]offsetEntry

	metaDirty bool // group metadata changed and must be persisted by flushMeta

	timer   *time.Timer
	timerAt time.Time // when the armed timer fires; zero: not armed
}

func newGroup(c *Coordinator, name string) *group {
	return &group{
		c:          c,
		name:       name,
		state:      stateEmpty,
		stateSince: c.cfg.Now(),
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]time.Time),
		offsets:    make(map[string]map[int32]offsetEntry),
	}
}

func (g *group) setState(s groupState) {
	g.state = s
	g.stateSince = g.c.cfg.Now()
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return ms
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// candidates returns the protocols every member supports.
func (g *group) candidates() map[string]struct{} {
	count := make(map[string]int)
	for _, m := range g.members {
		seen := make(map[string]bool, len(m.protocols))
		for _, p := range m.protocols {
			if !seen[p.Name] {
				seen[p.Name] = true
				count[p.Name]++
			}
		}
	}
	out := make(map[string]struct{})
	for name, n := range count {
		if n == len(g.members) {
			out[name] = struct{}{}
		}
	}
	return out
}

// supportsProtocols is Kafka's GroupMetadata.supportsProtocols: a group without members
// takes any protocol type and non-empty protocol list; otherwise the protocol type must be
// the group's and one of the protocols must be supported by every member.
func (g *group) supportsProtocols(protocolType string, protos []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protos) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidates()
	for _, p := range protos {
		if _, ok := cands[p.Name]; ok {
			return true
		}
	}
	return false
}

// selectProtocol is Kafka's vote: every member votes for its most preferred protocol among
// those all members support; the most votes wins (ties go to the protocol voted for first
// in join order).
func (g *group) selectProtocol() string {
	cands := g.candidates()
	votes := make(map[string]int)
	var order []string
	for _, m := range g.sortedMembers() {
		for _, p := range m.protocols {
			if _, ok := cands[p.Name]; ok {
				if votes[p.Name] == 0 {
					order = append(order, p.Name)
				}
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, name := range order {
		if votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

// computeSubscribed records the topics a "consumer" group's members subscribe to (for
// OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC and retention); nil if unknown.
func (g *group) computeSubscribed() {
	g.subscribed = nil
	if g.protocolType != "consumer" || len(g.members) == 0 {
		return
	}
	topics := make(map[string]struct{})
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return
		}
		for _, t := range md.Topics {
			topics[t] = struct{}{}
		}
	}
	g.subscribed = topics
}

// validateMember is Kafka's validateCurrentMember: with an instance id, it must map to
// memberID (else FENCED_INSTANCE_ID, or UNKNOWN_MEMBER_ID if unmapped); the member must exist.
func (g *group) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case cur != memberID:
			return kerr.FencedInstanceID.Code
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// addMember adds a new member (parked in join with w) and rebalances.
func (g *group) addMember(m *member, w *joinWait, now time.Time) {
	g.nextSeq++
	m.seq = g.nextSeq
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	m.join = w
	m.deadline = now.Add(m.sessionTimeout)
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.maybePrepareRebalance(now)
	g.tryCompleteJoin(now)
}

// updateMember records a known member's new JoinGroup and parks it in join with w.
func (g *group) updateMember(m *member, p *joinParams, w *joinWait) {
	if m.join != nil && m.join != w {
		// A newer JoinGroup of the same member replaces a parked one.
		m.replyJoin(joinResult{code: kerr.RebalanceInProgress.Code, memberID: m.id})
	}
	m.protocols = p.protocols
	m.sessionTimeout = p.session
	m.rebalanceTimeout = p.rebalance
	if p.client.ClientID != "" || p.client.ClientHost != "" {
		m.clientID, m.clientHost = p.client.ClientID, p.client.ClientHost
	}
	m.join = w
}

// dropMember removes m without any state transition: parked calls get code.
func (g *group) dropMember(m *member, code int16) {
	m.replyJoin(joinResult{code: code, memberID: m.id})
	m.replySync(syncResult{code: code})
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMember is Kafka's removeMemberAndUpdateGroup.
func (g *group) removeMember(m *member, now time.Time) {
	g.dropMember(m, kerr.UnknownMemberID.Code)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance(now)
	case statePreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

func (g *group) maybePrepareRebalance(now time.Time) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		g.prepareRebalance(now)
	}
}

// prepareRebalance starts a join phase: members parked in sync get REBALANCE_IN_PROGRESS.
func (g *group) prepareRebalance(now time.Time) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.replySync(syncResult{code: kerr.RebalanceInProgress.Code})
				m.deadline = now.Add(m.sessionTimeout)
			}
		}
	}
	g.pendingSync = nil
	g.syncDeadline = time.Time{}
	g.syncInFlight = false
	g.leaderAssign = nil
	rt := g.maxRebalanceTimeout()
	if delay := g.c.cfg.InitialRebalanceDelay; g.state == stateEmpty && delay > 0 {
		delay = min(delay, rt)
		g.initialDelay = true
		g.newMemberAdded = false
		g.delayRemaining = rt - delay
		g.joinDeadline = now.Add(delay)
	} else {
		g.initialDelay = false
		g.joinDeadline = now.Add(rt)
	}
	g.setState(statePreparingRebalance)
	g.tryCompleteJoin(now)
}

// allJoined is Kafka's hasAllMembersJoined.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// tryCompleteJoin ends the join phase early once every member has joined (not during the
// initial delay, which always runs its course).
func (g *group) tryCompleteJoin(now time.Time) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin(now)
	}
}

// electJoinedLeader is Kafka's maybeElectNewJoinedLeader.
func (g *group) electJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// completeJoin is Kafka's onCompleteJoin: dynamic members that did not rejoin are removed,
// the generation advances, and every joined member gets its JoinGroup response (the leader
// with all members' metadata).
func (g *group) completeJoin(now time.Time) {
	for _, m := range g.sortedMembers() {
		if m.join == nil && m.instanceID == nil {
			g.dropMember(m, kerr.UnknownMemberID.Code)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined are left: wait another rebalance
		// timeout for them (or for their sessions to expire).
		g.initialDelay = false
		g.joinDeadline = now.Add(g.maxRebalanceTimeout())
		return
	}
	g.initialDelay = false
	g.joinDeadline = time.Time{}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.subscribed = nil
		g.setState(stateEmpty)
		g.metaDirty = true
		return
	}
	g.protocol = g.selectProtocol()
	g.setState(stateCompletingRebalance)
	g.computeSubscribed()
	g.pendingSync = make(map[string]struct{}, len(g.members))
	leaderMembers := g.memberMetadata()
	for _, m := range g.sortedMembers() {
		if m.join != nil {
			r := g.currentJoinResult(m.id)
			if m.id == g.leader {
				r.members = leaderMembers
			}
			m.replyJoin(r)
		}
		m.deadline = now.Add(m.sessionTimeout)
		g.pendingSync[m.id] = struct{}{}
	}
	g.syncDeadline = now.Add(g.maxRebalanceTimeout())
}

// currentJoinResult is the successful join result of the current generation for memberID,
// without the member list.
func (g *group) currentJoinResult(memberID string) joinResult {
	return joinResult{
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
		memberID:     memberID,
	}
}

// memberMetadata is the member list a leader receives (Kafka's currentMemberMetadata).
func (g *group) memberMetadata() []kmsg.JoinGroupResponseMember {
	ms := g.sortedMembers()
	out := make([]kmsg.JoinGroupResponseMember, 0, len(ms))
	for _, m := range ms {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(g.protocol)
		out = append(out, jm)
	}
	return out
}

// emptyAssignment is what a member the leader assigned nothing gets: a valid empty
// ConsumerMemberAssignment for "consumer" groups (some clients cannot decode zero bytes),
// zero bytes otherwise.
func (g *group) emptyAssignment() []byte {
	if g.protocolType == "consumer" {
		a := kmsg.NewConsumerMemberAssignment()
		return a.AppendTo(nil)
	}
	return []byte{}
}

// assignmentFromLeader maps the leader's SyncGroup assignment onto the current members.
func (g *group) assignmentFromLeader() map[string][]byte {
	out := make(map[string][]byte, len(g.members))
	for _, a := range g.leaderAssign {
		if _, ok := g.members[a.MemberID]; ok && len(a.MemberAssignment) > 0 {
			out[a.MemberID] = a.MemberAssignment
		}
	}
	for id := range g.members {
		if _, ok := out[id]; !ok {
			out[id] = g.emptyAssignment()
		}
	}
	return out
}

// onTimer processes every deadline that has passed.
func (g *group) onTimer(now time.Time) {
	for id, dl := range g.pending {
		if !now.Before(dl) {
			delete(g.pending, id)
		}
	}
	for _, m := range g.sortedMembers() {
		if g.members[m.id] == nil {
			continue // removed by an earlier iteration's rebalance completion
		}
		if m.join == nil && m.sync == nil && !now.Before(m.deadline) {
			g.c.log.Info("group member session expired", "group", g.name, "member", m.id)
			g.removeMember(m, now)
		}
	}
	if g.state == statePreparingRebalance && !g.joinDeadline.IsZero() && !now.Before(g.joinDeadline) {
		if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
			d := min(g.c.cfg.InitialRebalanceDelay, g.delayRemaining)
			g.delayRemaining -= d
			g.newMemberAdded = false
			g.joinDeadline = now.Add(d)
		} else {
			g.initialDelay = false
			g.completeJoin(now)
		}
	}
	if (g.state == stateCompletingRebalance || g.state == stateStable) && len(g.pendingSync) > 0 &&
		!g.syncDeadline.IsZero() && !now.Before(g.syncDeadline) {
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				g.c.log.Info("group member did not sync in time", "group", g.name, "member", id)
				g.dropMember(m, kerr.UnknownMemberID.Code)
			}
		}
		g.pendingSync = nil
		g.prepareRebalance(now)
	}
	// Still pending members: the join phase may be able to end now.
	g.tryCompleteJoin(now)
}

// nextDeadline is the earliest time onTimer has something to do; zero if none.
func (g *group) nextDeadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, dl := range g.pending {
		consider(dl)
	}
	for _, m := range g.members {
		if m.join == nil && m.sync == nil {
			consider(m.deadline)
		}
	}
	if g.state == statePreparingRebalance {
		consider(g.joinDeadline)
	}
	if (g.state == stateCompletingRebalance || g.state == stateStable) && len(g.pendingSync) > 0 {
		consider(g.syncDeadline)
	}
	return next
}

// arm makes sure the timer fires by the next deadline. A timer that fires early is
// harmless (fire re-arms), so arm only ever moves the timer earlier. Called with mu held.
func (g *group) arm() {
	if g.state == stateDead || g.c.closed.Load() {
		return
	}
	next := g.nextDeadline()
	if next.IsZero() || (!g.timerAt.IsZero() && !next.Before(g.timerAt)) {
		return
	}
	d := max(time.Until(next), 0)
	g.timerAt = next
	if g.timer == nil {
		g.timer = time.AfterFunc(d, g.fire)
	} else {
		g.timer.Reset(d)
	}
}

func (g *group) stopTimer() {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.timerAt = time.Time{}
}

// fire is the timer callback.
func (g *group) fire() {
	c := g.c
	if !c.acquire() {
		return
	}
	defer c.wg.Done()
	g.mu.Lock()
	if g.state == stateDead {
		g.mu.Unlock()
		return
	}
	g.timerAt = time.Time{}
	g.onTimer(time.Now())
	if c.release(g) {
		c.flushMeta(g)
	}
}

// kill marks g Dead and forgets it: parked calls get COORDINATOR_NOT_AVAILABLE. Called with
// mu held, on a group without members.
func (g *group) kill() {
	for _, m := range g.members {
		g.dropMember(m, kerr.CoordinatorNotAvailable.Code)
	}
	g.state = stateDead
	g.stopTimer()
	g.c.forget(g)
}
