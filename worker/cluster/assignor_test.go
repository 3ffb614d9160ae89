package cluster

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"testing"
	"time"
)

// sim is a group as the leader sees it, applying each round's assignments the way members
// do (they then own Assigned).
type sim struct {
	t        *testing.T
	gen      int32
	members  map[string]*memberInfo
	snap     Snapshot
	memory   *leaderMemory
	now      time.Time
	maxDelay time.Duration
	last     map[string]wireAssignment
}

func newSim(t *testing.T, snap Snapshot, ids ...string) *sim {
	s := &sim{t: t, members: map[string]*memberInfo{}, snap: snap, now: time.Unix(1000, 0)}
	for _, id := range ids {
		s.add(id)
	}
	return s
}

func (s *sim) add(id string) {
	s.members[id] = &memberInfo{ID: id, URL: "http://" + id, ConfigOffset: s.snap.Offset}
}

// round runs one rebalance and applies it; it checks the invariants of every round.
func (s *sim) round() map[string]wireAssignment {
	s.t.Helper()
	var ms []memberInfo
	for _, m := range s.members {
		ms = append(ms, *m)
	}
	prevGen := s.gen
	if s.memory == nil {
		prevGen = -1
	}
	s.gen++
	res := assign(assignParams{
		Generation: s.gen, LeaderID: "leader", LeaderURL: "http://leader",
		Members: ms, Snapshot: s.snap, Memory: s.memory, PrevGeneration: prevGen,
		Now: s.now, MaxDelay: s.maxDelay,
	})
	// Invariants: nothing is assigned twice; nothing moves directly between members; a
	// member keeps everything not revoked; only desired work is assigned.
	desired := map[TaskID]bool{}
	for c, n := range s.snap.Connectors {
		for t := ConnectorTask; t < n; t++ {
			desired[TaskID{c, t}] = true
		}
	}
	// Every member that claimed a unit before the round (several when
	// ownership was duplicated): it may stay with any of them.
	ownerBefore := map[TaskID]map[string]bool{}
	for _, m := range s.members {
		for u := range m.Owned.units() {
			if ownerBefore[u] == nil {
				ownerBefore[u] = map[string]bool{}
			}
			ownerBefore[u][m.ID] = true
		}
	}
	seen := map[TaskID]string{}
	for id, a := range res.Assignments {
		if a.Error != ErrNone {
			continue
		}
		for u := range a.Assigned.units() {
			if other, dup := seen[u]; dup {
				s.t.Fatalf("gen %d: %v assigned to %s and %s", s.gen, u, other, id)
			}
			seen[u] = id
			if !desired[u] {
				s.t.Fatalf("gen %d: %v assigned to %s but not in the snapshot", s.gen, u, id)
			}
			if prev, ok := ownerBefore[u]; ok && !prev[id] {
				s.t.Fatalf("gen %d: %v moved from %v to %s in one round", s.gen, u, prev, id)
			}
		}
		owned := s.members[id].Owned
		if lost := owned.minus(a.Assigned).minus(a.Revoked); !lost.Empty() {
			s.t.Fatalf("gen %d: %s lost %v without revocation", s.gen, id, lost)
		}
		if both := a.Assigned.minus(a.Assigned.minus(a.Revoked)); !both.Empty() {
			s.t.Fatalf("gen %d: %s both assigned and revoked %v", s.gen, id, both)
		}
	}
	for id, a := range res.Assignments {
		if a.Error == ErrNone {
			s.members[id].Owned = a.Assigned
		}
	}
	s.memory = res.Memory
	s.last = res.Assignments
	return res.Assignments
}

// settle runs rounds until nobody has anything revoked (at most n rounds).
func (s *sim) settle(n int) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		as := s.round()
		revoked := false
		for _, a := range as {
			revoked = revoked || !a.Revoked.Empty()
		}
		if !revoked {
			return
		}
	}
	s.t.Fatalf("not settled after %d rounds", n)
}

func (s *sim) loads() map[string]int {
	l := map[string]int{}
	for id, m := range s.members {
		l[id] = m.Owned.Len()
	}
	return l
}

func (s *sim) assertBalanced() {
	s.t.Helper()
	lo, hi := 1<<30, -1
	total := 0
	for _, l := range s.loads() {
		lo, hi = min(lo, l), max(hi, l)
		total += l
	}
	want := 0
	for _, n := range s.snap.Connectors {
		want += n + 1
	}
	if total != want {
		s.t.Fatalf("%d units assigned, want %d: %v", total, want, s.loads())
	}
	if hi-lo > 1 {
		s.t.Fatalf("unbalanced: %v", s.loads())
	}
}

func owners(s *sim) map[TaskID]string {
	o := map[TaskID]string{}
	for id, m := range s.members {
		for u := range m.Owned.units() {
			o[u] = id
		}
	}
	return o
}

func snap4x3() Snapshot {
	return Snapshot{Offset: 10, Connectors: map[string]int{"a": 3, "b": 3, "c": 3, "d": 3}}
}

func TestAssignInitialBalanced(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	as := s.round()
	for id, a := range as {
		if !a.Revoked.Empty() || a.Error != 0 || a.DelayMillis != 0 || a.ConfigOffset != 10 || a.Leader != "leader" {
			t.Fatalf("%s: unexpected %+v", id, a)
		}
	}
	s.assertBalanced()
	for id, l := range s.loads() {
		if l < 5 || l > 6 {
			t.Fatalf("%s has %d units", id, l)
		}
	}
	// Each connector's 4 units are spread: no member has more than 2 of one connector.
	for id, m := range s.members {
		per := map[string]int{}
		for u := range m.Owned.units() {
			per[u.Connector]++
		}
		for c, n := range per {
			if n > 2 {
				t.Fatalf("%s has %d units of %s", id, n, c)
			}
		}
	}
	// Deterministic: the same input gives the same output.
	a1 := assign(assignParams{Generation: 1, Members: []memberInfo{{ID: "x", URL: "u1"}, {ID: "y", URL: "u2"}}, Snapshot: snap4x3()})
	a2 := assign(assignParams{Generation: 1, Members: []memberInfo{{ID: "y", URL: "u2"}, {ID: "x", URL: "u1"}}, Snapshot: snap4x3()})
	if !reflect.DeepEqual(a1.Assignments, a2.Assignments) {
		t.Fatal("not deterministic")
	}
	// A second round changes nothing.
	before := owners(s)
	as = s.round()
	for id, a := range as {
		if !a.Revoked.Empty() {
			t.Fatalf("%s: revoked %v in a stable round", id, a.Revoked)
		}
	}
	if !reflect.DeepEqual(before, owners(s)) {
		t.Fatal("work moved in a stable round")
	}
}

func TestAssignNewMemberOnlyMovesToIt(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.round()
	before := owners(s)
	s.add("m4")
	as := s.round()
	revoked := 0
	for id, a := range as {
		revoked += a.Revoked.Len()
		if id == "m4" && !a.Assigned.Empty() {
			t.Fatalf("m4 got work in the revoking round: %v", a.Assigned)
		}
	}
	if revoked != 4 {
		t.Fatalf("revoked %d units, want 4 (16 units over 4 members)", revoked)
	}
	s.settle(3)
	s.assertBalanced()
	for u, o := range owners(s) {
		if o != before[u] && o != "m4" {
			t.Fatalf("%v moved from %s to %s", u, before[u], o)
		}
	}
	if s.loads()["m4"] != 4 {
		t.Fatalf("loads %v", s.loads())
	}
}

func TestAssignRevokesDeletedWork(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.round()
	before := owners(s)
	s.snap = Snapshot{Offset: 11, Connectors: map[string]int{"a": 3, "b": 1, "c": 3}} // d deleted, b shrinks
	for _, m := range s.members {
		m.ConfigOffset = 11
	}
	as := s.round()
	var revoked []TaskID
	for _, a := range as {
		revoked = append(revoked, sortedUnits(a.Revoked.units())...)
	}
	gone := map[TaskID]bool{{"b", 1}: true, {"b", 2}: true, {"d", -1}: true, {"d", 0}: true, {"d", 1}: true, {"d", 2}: true}
	for _, u := range revoked {
		if !gone[u] && before[u] != "" {
			// Balancing may revoke more; it must not revoke what stays put unless unbalanced.
			t.Logf("also revoked for balance: %v", u)
		}
	}
	for u := range gone {
		if o, ok := owners(s)[u]; ok {
			t.Fatalf("%v still owned by %s", u, o)
		}
	}
	s.settle(3)
	s.assertBalanced()
}

func TestAssignGrowthAddsWithoutMoving(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.round()
	before := owners(s)
	s.snap = Snapshot{Offset: 12, Connectors: map[string]int{"a": 3, "b": 3, "c": 3, "d": 3, "e": 2}}
	as := s.round()
	for id, a := range as {
		if !a.Revoked.Empty() {
			t.Fatalf("%s: revoked %v", id, a.Revoked)
		}
	}
	for u, o := range before {
		if owners(s)[u] != o {
			t.Fatalf("%v moved", u)
		}
	}
	s.assertBalanced()
}

func TestAssignLostWorkNoDelay(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.round()
	before := owners(s)
	delete(s.members, "m2")
	as := s.round()
	for id, a := range as {
		if a.DelayMillis != 0 {
			t.Fatalf("%s: delay %d", id, a.DelayMillis)
		}
	}
	s.assertBalanced()
	for u, o := range owners(s) {
		if before[u] != "m2" && before[u] != o {
			t.Fatalf("%v moved from %s to %s", u, before[u], o)
		}
	}
}

func TestAssignLostWorkDelayed(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.maxDelay = time.Minute
	s.round()
	before := owners(s)
	lostN := s.loads()["m2"]
	delete(s.members, "m2")

	as := s.round()
	for id, a := range as {
		if a.DelayMillis < 59_000 || a.DelayMillis > 60_001 {
			t.Fatalf("%s: delay %d ms, want about 60000", id, a.DelayMillis)
		}
	}
	if got := s.loads()["m1"] + s.loads()["m3"]; got != 16-lostN {
		t.Fatalf("lost work was reassigned before the delay: %v", s.loads())
	}

	// Half-way: still held, with the remaining delay.
	s.now = s.now.Add(30 * time.Second)
	as = s.round()
	if d := as["m1"].DelayMillis; d < 29_000 || d > 30_001 {
		t.Fatalf("delay %d ms, want about 30000", d)
	}
	// After the delay: reassigned to the others, and nothing else moves.
	s.now = s.now.Add(31 * time.Second)
	as = s.round()
	if as["m1"].DelayMillis != 0 {
		t.Fatalf("delay %d after expiry", as["m1"].DelayMillis)
	}
	s.assertBalanced()
	for u, o := range owners(s) {
		if before[u] != "m2" && before[u] != o {
			t.Fatalf("%v moved from %s to %s", u, before[u], o)
		}
	}
}

func TestAssignLostWorkReturnsToSameURL(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.maxDelay = time.Minute
	s.round()
	before := owners(s)
	delete(s.members, "m2")
	s.round()
	// The worker restarts: new member id, same URL.
	s.members["m2b"] = &memberInfo{ID: "m2b", URL: "http://m2", ConfigOffset: 10}
	s.now = s.now.Add(10 * time.Second)
	as := s.round()
	for id, a := range as {
		if a.DelayMillis != 0 || !a.Revoked.Empty() {
			t.Fatalf("%s: %+v", id, a)
		}
	}
	for u, o := range owners(s) {
		want := before[u]
		if want == "m2" {
			want = "m2b"
		}
		if o != want {
			t.Fatalf("%v owned by %s, want %s", u, o, want)
		}
	}
	s.assertBalanced()
}

func TestAssignConfigMismatch(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.round()
	before := owners(s)
	s.members["m2"].ConfigOffset = 15 // read further than the leader
	as := s.round()
	for id, a := range as {
		if a.Error != ErrConfigMismatch || a.ConfigOffset != 15 || !a.Assigned.Empty() || !a.Revoked.Empty() {
			t.Fatalf("%s: %+v", id, a)
		}
	}
	// The leader catches up; members keep their work throughout and the memory is valid.
	s.snap.Offset = 15
	for _, m := range s.members {
		m.ConfigOffset = 15
	}
	s.round()
	if !reflect.DeepEqual(before, owners(s)) {
		t.Fatal("work moved")
	}
	if s.memory.Generation != s.gen {
		t.Fatal("memory not carried over")
	}
}

func TestAssignStaleMemoryIgnored(t *testing.T) {
	s := newSim(t, snap4x3(), "m1", "m2", "m3")
	s.maxDelay = time.Minute
	s.round()
	delete(s.members, "m2")
	s.memory.Generation = 99 // of another leader's era
	as := s.round()
	if as["m1"].DelayMillis != 0 {
		t.Fatal("stale memory used")
	}
	s.assertBalanced()
}

func TestAssignDuplicateOwnership(t *testing.T) {
	s := newSim(t, Snapshot{Offset: 1, Connectors: map[string]int{"a": 1}}, "m1", "m2")
	both := Work{Connectors: []string{"a"}, Tasks: []TaskID{{"a", 0}}}
	s.members["m1"].Owned = both
	s.members["m2"].Owned = both
	as := s.round()
	// m2's claims are revoked; m1 keeps them (less one revoked for balance).
	if as["m2"].Revoked.Len() != 2 || as["m1"].Assigned.Len()+as["m1"].Revoked.Len() != 2 {
		t.Fatalf("%+v", as)
	}
	s.settle(2)
	s.assertBalanced()
}

func TestAssignNoMembers(t *testing.T) {
	res := assign(assignParams{Snapshot: snap4x3()})
	if len(res.Assignments) != 0 {
		t.Fatal(res.Assignments)
	}
}

// TestAssignRandom runs random sequences of membership and config changes; sim.round checks
// the per-round invariants, and each settled state must be balanced.
func TestAssignRandom(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		s := newSim(t, Snapshot{Offset: 1, Connectors: map[string]int{}}, "m0")
		next := 1
		for step := 0; step < 12; step++ {
			switch rng.Intn(4) {
			case 0:
				s.add(fmt.Sprintf("m%d", next))
				next++
			case 1:
				if len(s.members) > 1 {
					ids := make([]string, 0, len(s.members))
					for id := range s.members {
						ids = append(ids, id)
					}
					sort.Strings(ids)
					delete(s.members, ids[rng.Intn(len(ids))])
				}
			default:
				s.snap.Offset++
				s.snap.Connectors[fmt.Sprintf("c%d", rng.Intn(6))] = rng.Intn(5)
				if rng.Intn(4) == 0 {
					delete(s.snap.Connectors, fmt.Sprintf("c%d", rng.Intn(6)))
				}
				for _, m := range s.members {
					m.ConfigOffset = s.snap.Offset
				}
			}
			s.settle(4)
			s.assertBalanced()
		}
	}
}
