package herder

// Cluster membership: the herder is a member of its group.id's worker
// cluster (worker/cluster) and runs only what the leader assigned to it.
// The member goroutine calls memberHandler; the reconciler calls Rejoin
// when the set of connectors or their task counts change, so that the
// leader assigns the new work.

import (
	"context"
	"time"

	"github.com/tributary-data/tributary/worker/cluster"
	"github.com/tributary-data/tributary/worker/configstore"
	"github.com/tributary-data/tributary/worker/engine"
)

// ClusterConfig holds the membership timings (Kafka Connect's worker keys);
// zero values take Kafka Connect's defaults.
type ClusterConfig struct {
	SessionTimeout             time.Duration // session.timeout.ms (10 s)
	HeartbeatInterval          time.Duration // heartbeat.interval.ms (3 s)
	RebalanceTimeout           time.Duration // rebalance.timeout.ms (60 s)
	ScheduledRebalanceMaxDelay time.Duration // scheduled.rebalance.max.delay.ms (5 min); negative: 0
}

func (c ClusterConfig) member(cfg Config) cluster.Config {
	mc := cluster.DefaultConfig()
	mc.Brokers, mc.ClientOptions, mc.GroupID, mc.Logger = cfg.Brokers, cfg.ClientOptions, cfg.GroupID, cfg.Logger
	mc.URL = "http://" + cfg.WorkerID
	if c.SessionTimeout > 0 {
		mc.SessionTimeout = c.SessionTimeout
	}
	if c.HeartbeatInterval > 0 {
		mc.HeartbeatInterval = c.HeartbeatInterval
	}
	if c.RebalanceTimeout > 0 {
		mc.RebalanceTimeout = c.RebalanceTimeout
	}
	if c.ScheduledRebalanceMaxDelay > 0 {
		mc.ScheduledRebalanceMaxDelay = c.ScheduledRebalanceMaxDelay
	} else if c.ScheduledRebalanceMaxDelay < 0 {
		mc.ScheduledRebalanceMaxDelay = 0
	}
	return mc
}

// memberHandler is the herder's side of membership (cluster.Handler).
type memberHandler struct{ h *Herder }

// Snapshot is what this worker has read of the config topic: every
// connector (stopped ones too: their instance reports STOPPED) with its
// committed task count.
func (m memberHandler) Snapshot() cluster.Snapshot {
	return workOf(m.h.configs.Snapshot())
}

func workOf(snap configstore.State) cluster.Snapshot {
	conns := make(map[string]int, len(snap.Connectors))
	for name := range snap.Connectors {
		conns[name] = len(snap.Tasks[name])
	}
	return cluster.Snapshot{Offset: snap.Offset, Connectors: conns}
}

// Revoke stops w before returning (tasks store their offsets as they stop).
func (m memberHandler) Revoke(ctx context.Context, w cluster.Work) {
	h := m.h
	h.mu.Lock()
	if h.owned != nil {
		rest := h.owned.Minus(w)
		h.owned = &rest
	}
	h.mu.Unlock()
	h.log.Info("work revoked", "connectors", w.Connectors, "tasks", len(w.Tasks))
	h.apply(ctx)
}

// Assigned runs the new assignment once this worker has read the config
// topic as far as the leader had.
func (m memberHandler) Assigned(ctx context.Context, a cluster.Assignment) {
	h := m.h
	if h.configs.Snapshot().Offset < a.ConfigOffset {
		if err := h.configs.ReadToEnd(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("reading the config topic for an assignment failed", "err", err, "config_offset", a.ConfigOffset)
		}
	}
	if a.Error != 0 {
		return // the member rejoins with what it read
	}
	h.mu.Lock()
	owned := a.Assigned
	h.owned = &owned
	h.mu.Unlock()
	h.log.Info("assignment", "generation", a.Generation, "leader", a.LeaderURL, "connectors", a.Assigned.Connectors,
		"tasks", len(a.Assigned.Tasks), "revoked", a.Revoked.Len(), "delay", a.Delay)
	h.apply(ctx)
}

// Departed marks the work of members that left as UNASSIGNED (leader only,
// before the work is handed out again).
func (m memberHandler) Departed(ctx context.Context, generation int32, from []cluster.Departure) {
	m.h.departed(ctx, generation, from)
}

// ownedShare returns this worker's part of connector name, nil when it
// owns none of it.
func ownedShare(owned *cluster.Work, name string) *engine.Owned {
	if owned == nil {
		return nil
	}
	var o *engine.Owned
	for _, c := range owned.Connectors {
		if c == name {
			o = &engine.Owned{Connector: true, Tasks: map[int]bool{}}
		}
	}
	for _, t := range owned.Tasks {
		if t.Connector == name {
			if o == nil {
				o = &engine.Owned{Tasks: map[int]bool{}}
			}
			o.Tasks[t.Task] = true
		}
	}
	return o
}
