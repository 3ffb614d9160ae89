package cluster

// The leader's incremental cooperative assignor, after Kafka Connect's
// IncrementalCooperativeAssignor. assign is a pure function of the members' JoinGroup
// metadata, the leader's config snapshot, the leader's memory of the previous round and the
// time; it never moves work that does not need to move. One round:
//
//  1. CONFIG_MISMATCH: if any member has read the config topic further than the leader's
//     snapshot, nobody's work changes; every member gets error CONFIG_MISMATCH and the highest
//     offset, reads up to it and rejoins (the leader too, so the next round assigns from the
//     newer snapshot). Kafka Connect's leader re-reads its config first; this is the simple
//     equivalent.
//  2. Ownership comes from what members report (their current assignment in the metadata).
//     Work of deleted connectors and tasks beyond a connector's new task count is revoked; a
//     unit claimed by two members stays with the first (by member id) and is revoked from the
//     others.
//  3. Lost work: units the leader assigned in the previous round to a member that is no longer
//     in the group, and that nobody owns now. They stay unassigned until
//     ScheduledRebalanceMaxDelay has passed since they were found lost, and Delay tells every
//     member how long that is; a member with the same URL that joins meanwhile (the worker
//     restarted) gets them back; once the delay is over they go to the least-loaded members.
//     With a zero delay they are reassigned at once. The leader's memory counts only if it is
//     of the generation this leader last completed: after a leader change (or a failed round)
//     the memory is dropped, and work nobody owns is assigned at once, as in Kafka Connect.
//  4. Unassigned work (new connectors and tasks, expired lost work, work revoked in the
//     previous round) goes to the least-loaded member (load = connectors + tasks), ties broken
//     by how many units of the same connector the member has (to spread a connector's tasks),
//     then by member id. Units are visited in order: connectors by name, the connector
//     instance first, then its tasks by number.
//  5. Balance: while no lost work is held, members above their fair share (total/members,
//     the more loaded members get the remainder) have the excess revoked (units they owned
//     before this round, from their most represented connector, highest task first, the
//     connector instance last). Revoked work is assigned in the next round, which the members
//     that lost something start at once after stopping it. Balanced means max - min <= 1.

import (
	"sort"
	"time"
)

// memberInfo is one group member as the leader sees it in JoinGroup.
type memberInfo struct {
	ID           string
	URL          string
	ConfigOffset int64
	Owned        Work // the member's current assignment
}

// lostUnit is lost work held for its former owner.
type lostUnit struct {
	URL      string    // the former owner's URL
	Deadline time.Time // when it goes to someone else
}

// leaderMemory is what a leader remembers of the round it computed last.
type leaderMemory struct {
	Generation int32
	URLs       map[string]string          // member id -> URL
	Assigned   map[string]map[TaskID]bool // member id -> full assignment
	Lost       map[TaskID]lostUnit
}

type assignParams struct {
	Generation          int32
	LeaderID, LeaderURL string
	Members             []memberInfo
	Snapshot            Snapshot
	// Memory is the leader's memory of the previous round; nil, or of another generation
	// than PrevGeneration, means none.
	Memory         *leaderMemory
	PrevGeneration int32 // the generation this leader last completed
	Now            time.Time
	MaxDelay       time.Duration
}

type assignResult struct {
	Assignments map[string]wireAssignment // by member id
	Memory      *leaderMemory
}

// assign computes one round of assignments. See the comment at the top of the file.
func assign(p assignParams) assignResult {
	members := append([]memberInfo(nil), p.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	res := assignResult{Assignments: make(map[string]wireAssignment, len(members))}
	base := wireAssignment{
		Version:      ProtocolVersion,
		Leader:       p.LeaderID,
		LeaderURL:    p.LeaderURL,
		ConfigOffset: p.Snapshot.Offset,
	}
	mem := p.Memory
	if mem != nil && mem.Generation != p.PrevGeneration {
		mem = nil
	}

	// 1. CONFIG_MISMATCH.
	maxOffset := p.Snapshot.Offset
	for _, m := range members {
		if m.ConfigOffset > maxOffset {
			maxOffset = m.ConfigOffset
		}
	}
	if maxOffset > p.Snapshot.Offset {
		next := &leaderMemory{Generation: p.Generation, URLs: map[string]string{}, Assigned: map[string]map[TaskID]bool{}, Lost: map[TaskID]lostUnit{}}
		if mem != nil {
			for u, l := range mem.Lost {
				next.Lost[u] = l
			}
		}
		for _, m := range members {
			a := base
			a.Error = ErrConfigMismatch
			a.ConfigOffset = maxOffset
			res.Assignments[m.ID] = a
			next.URLs[m.ID] = m.URL
			next.Assigned[m.ID] = m.Owned.units()
		}
		res.Memory = next
		return res
	}

	// 2. Ownership, revocation of what no longer exists and of duplicates.
	desired := map[TaskID]bool{}
	var order []TaskID
	conns := make([]string, 0, len(p.Snapshot.Connectors))
	for c := range p.Snapshot.Connectors {
		conns = append(conns, c)
	}
	sort.Strings(conns)
	for _, c := range conns {
		for t := ConnectorTask; t < p.Snapshot.Connectors[c]; t++ {
			u := TaskID{Connector: c, Task: t}
			desired[u] = true
			order = append(order, u)
		}
	}
	owner := map[TaskID]string{}
	kept := make(map[string]map[TaskID]bool, len(members)) // owned before this round, kept
	assigned := make(map[string]map[TaskID]bool, len(members))
	revoked := make(map[string]map[TaskID]bool, len(members))
	perConn := make(map[string]map[string]int, len(members)) // member -> connector -> units
	byURL := map[string]string{}
	present := map[string]bool{}
	for _, m := range members {
		present[m.ID] = true
		if _, ok := byURL[m.URL]; !ok {
			byURL[m.URL] = m.ID
		}
		kept[m.ID], assigned[m.ID], revoked[m.ID], perConn[m.ID] = map[TaskID]bool{}, map[TaskID]bool{}, map[TaskID]bool{}, map[string]int{}
		owned := m.Owned.units()
		for _, u := range sortedUnits(owned) {
			if _, dup := owner[u]; dup || !desired[u] {
				revoked[m.ID][u] = true
				continue
			}
			owner[u] = m.ID
			kept[m.ID][u] = true
			assigned[m.ID][u] = true
			perConn[m.ID][u.Connector]++
		}
	}
	give := func(id string, u TaskID) {
		owner[u] = id
		assigned[id][u] = true
		perConn[id][u.Connector]++
	}

	// 3. Lost work.
	lost := map[TaskID]lostUnit{}
	if mem != nil {
		for u, l := range mem.Lost {
			lost[u] = l
		}
		for id, units := range mem.Assigned {
			if present[id] {
				continue
			}
			for u := range units {
				if _, ok := lost[u]; !ok {
					lost[u] = lostUnit{URL: mem.URLs[id], Deadline: p.Now.Add(p.MaxDelay)}
				}
			}
		}
	}
	var unassigned []TaskID
	var delay time.Duration
	for _, u := range order {
		if _, ok := owner[u]; ok {
			delete(lost, u)
			continue
		}
		if l, ok := lost[u]; ok {
			if id, back := byURL[l.URL]; back && len(members) > 0 {
				give(id, u)
				delete(lost, u)
				continue
			}
			if p.MaxDelay > 0 && p.Now.Before(l.Deadline) {
				if d := l.Deadline.Sub(p.Now); delay == 0 || d < delay {
					delay = d
				}
				continue
			}
			delete(lost, u)
		}
		unassigned = append(unassigned, u)
	}
	for u := range lost {
		if !desired[u] {
			delete(lost, u)
		}
	}

	// 4. Unassigned work to the least-loaded members.
	if len(members) > 0 {
		for _, u := range unassigned {
			best := ""
			for _, m := range members {
				if best == "" || lessLoaded(len(assigned[m.ID]), perConn[m.ID][u.Connector], m.ID,
					len(assigned[best]), perConn[best][u.Connector], best) {
					best = m.ID
				}
			}
			give(best, u)
		}
	}

	// 5. Balance by revoking the excess from overloaded members.
	if len(lost) == 0 && len(members) > 1 {
		total := 0
		for _, m := range members {
			total += len(assigned[m.ID])
		}
		byLoad := append([]memberInfo(nil), members...)
		sort.SliceStable(byLoad, func(i, j int) bool {
			return len(assigned[byLoad[i].ID]) > len(assigned[byLoad[j].ID])
		})
		q, r := total/len(members), total%len(members)
		for i, m := range byLoad {
			share := q
			if i < r {
				share++
			}
			for excess := len(assigned[m.ID]) - share; excess > 0; excess-- {
				u, ok := pickRevocation(kept[m.ID], perConn[m.ID])
				if !ok {
					break
				}
				delete(kept[m.ID], u)
				delete(assigned[m.ID], u)
				perConn[m.ID][u.Connector]--
				revoked[m.ID][u] = true
			}
		}
	}

	next := &leaderMemory{Generation: p.Generation, URLs: map[string]string{}, Assigned: map[string]map[TaskID]bool{}, Lost: lost}
	for _, m := range members {
		a := base
		a.Assigned = workOf(assigned[m.ID])
		a.Revoked = workOf(revoked[m.ID])
		a.DelayMillis = int32(min(delay.Milliseconds()+1, 1<<31-1))
		if delay == 0 {
			a.DelayMillis = 0
		}
		res.Assignments[m.ID] = a
		next.URLs[m.ID] = m.URL
		next.Assigned[m.ID] = assigned[m.ID]
	}
	res.Memory = next
	return res
}

// lessLoaded orders candidate members for a unit: total load, then units of the same
// connector, then id.
func lessLoaded(load, conn int, id string, bLoad, bConn int, bID string) bool {
	if load != bLoad {
		return load < bLoad
	}
	if conn != bConn {
		return conn < bConn
	}
	return id < bID
}

// pickRevocation chooses the unit to take from a member: from the connector it has most
// units of (ties by name), its highest task, the connector instance last.
func pickRevocation(kept map[TaskID]bool, perConn map[string]int) (TaskID, bool) {
	var best TaskID
	found := false
	for u := range kept {
		if !found {
			best, found = u, true
			continue
		}
		cu, cb := perConn[u.Connector], perConn[best.Connector]
		switch {
		case cu != cb:
			if cu > cb {
				best = u
			}
		case u.Connector != best.Connector:
			if u.Connector < best.Connector {
				best = u
			}
		case u.Task > best.Task:
			best = u
		}
	}
	return best, found
}

func sortedUnits(s map[TaskID]bool) []TaskID {
	out := make([]TaskID, 0, len(s))
	for u := range s {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return lessTask(out[i], out[j]) })
	return out
}
