// Package cluster is worker cluster membership through the Kafka classic group protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup; protocol type "connect"), with Kafka
// Connect's incremental cooperative assignment of connectors and tasks (distributed mode).
//
// Workers that share a group id form a cluster. The group coordinator elects a leader; the
// leader assigns every connector and task of the latest config snapshot to the members with
// the pure function in assignor.go, so that only what must move moves: work is first revoked
// from its owner (which stops it) and assigned to its new owner in the next round. The
// metadata and assignment bytes are Kafka Connect's own (see protocol.go), so Tributary and
// Kafka Connect workers can read each other's group state.
//
// # Goroutines
//
// Join starts one member goroutine (run) and returns; Member.Close cancels it and waits for
// it. The member goroutine owns all protocol state and is the only caller of the Handler, so
// Handler calls never overlap. It owns two kinds of helper goroutines and waits for each:
//
//   - the heartbeater, started by run and stopped before run returns, which sends Heartbeat
//     every HeartbeatInterval while the member has a generation, also while run is parked in
//     JoinGroup or SyncGroup or busy in a Handler call (kgo sends Heartbeat on a connection
//     other than JoinGroup's and SyncGroup's). It only records what it learns (under mu) and
//     signals run; it never calls the Handler;
//   - one goroutine per Kafka request (roundTrip), so that run can fence itself (below) while
//     a request is outstanding. roundTrip always waits for it.
//
// # Fencing
//
// A member may run its work only while the coordinator still counts it as a member: the
// coordinator can hand the work to someone else once SessionTimeout has passed since it last
// heard from the member. The member keeps a lease, the send time of the last request whose
// answer proved membership (a Heartbeat answered with no error or REBALANCE_IN_PROGRESS, a
// successful JoinGroup or SyncGroup). When the lease is older than SessionTimeout minus a
// margin of SessionTimeout/4 (so at 3/4 of the session timeout), run revokes everything locally
// (Handler.Revoke) before doing anything else, and then rejoins. The check runs whenever run
// wakes up, so after a SIGSTOP/SIGCONT the first thing run does is fence. A Handler call
// cannot be interrupted: the lease is checked as soon as it returns (the heartbeater keeps the
// lease fresh meanwhile if the coordinator is reachable).
//
// # Leader memory
//
// Only the leader that computed the previous round knows which member ran what, so only it
// can hold a departed member's work for ScheduledRebalanceMaxDelay. When the leader itself
// leaves, the new leader assigns unowned work at once, as Kafka Connect does.
package cluster

import (
	"sort"
	"time"
)

// TaskID names one task of a connector. Task ConnectorTask (-1) stands for the connector
// instance itself in the wire format; Work keeps connectors apart.
type TaskID struct {
	Connector string
	Task      int
}

// Work is a set of connectors (instances) and tasks, sorted (connectors by name, tasks by
// connector then number).
type Work struct {
	Connectors []string
	Tasks      []TaskID
}

// Len is the number of units of work: connectors plus tasks.
func (w Work) Len() int { return len(w.Connectors) + len(w.Tasks) }

// Empty reports whether w holds nothing.
func (w Work) Empty() bool { return w.Len() == 0 }

// units returns w as a set of TaskIDs, the connector instance being task ConnectorTask.
func (w Work) units() map[TaskID]bool {
	s := make(map[TaskID]bool, w.Len())
	for _, c := range w.Connectors {
		s[TaskID{Connector: c, Task: ConnectorTask}] = true
	}
	for _, t := range w.Tasks {
		s[t] = true
	}
	return s
}

// workOf builds a normalized Work from a set of units.
func workOf(units map[TaskID]bool) Work {
	var w Work
	for u := range units {
		if u.Task == ConnectorTask {
			w.Connectors = append(w.Connectors, u.Connector)
		} else {
			w.Tasks = append(w.Tasks, u)
		}
	}
	return w.normalized()
}

// Minus returns the units of w that are not in o.
func (w Work) Minus(o Work) Work { return w.minus(o) }

// minus returns the units of w that are not in o.
func (w Work) minus(o Work) Work {
	os := o.units()
	s := w.units()
	for u := range s {
		if os[u] {
			delete(s, u)
		}
	}
	return workOf(s)
}

func (w Work) normalized() Work {
	sort.Strings(w.Connectors)
	sort.Slice(w.Tasks, func(i, j int) bool { return lessTask(w.Tasks[i], w.Tasks[j]) })
	return w
}

func lessTask(a, b TaskID) bool {
	if a.Connector != b.Connector {
		return a.Connector < b.Connector
	}
	return a.Task < b.Task
}

// Assignment is what the leader assigned to this member in one generation.
type Assignment struct {
	// Generation is the group generation of this assignment; tag offset and status writes
	// with it to tell them from those of an older owner.
	Generation int32
	// MemberID is this member's id in the group.
	MemberID string
	// LeaderID and LeaderURL name the leader (REST requests that need the leader go there).
	LeaderID, LeaderURL string
	// ConfigOffset is the config-topic offset the leader assigned from: act on Assigned only
	// after having read the config topic up to it.
	ConfigOffset int64
	// Assigned is everything this member runs from now on (the full set, not a delta).
	Assigned Work
	// Revoked is what was taken away in this round; Handler.Revoke has already stopped it
	// when Handler.Assigned sees it. It is not part of Assigned.
	Revoked Work
	// Delay is the remaining scheduled rebalance delay: work of a departed member is held
	// unassigned that long in case the member comes back. The member rejoins by itself when it
	// expires.
	Delay time.Duration
	// Error is ErrConfigMismatch when some member had read the config topic further than the
	// leader: ConfigOffset is then the highest offset any member had read, Assigned is
	// unchanged (the member keeps what it ran) and nothing is revoked. Handler.Assigned should
	// read the config topic up to ConfigOffset before returning; the member rejoins after it.
	Error int16
}

// Snapshot is the config state a worker has read: the config-topic offset it has read up to
// and the task count of every connector that should run (paused connectors still run their
// connector instance in Kafka Connect; leave out only what must not be assigned).
type Snapshot struct {
	Offset     int64
	Connectors map[string]int // connector name -> number of tasks
}
