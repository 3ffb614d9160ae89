// Package groups is the consumer group coordinator of the single-node broker.
//
// It implements Kafka's classic group protocol (JoinGroup v0-v9, SyncGroup v0-v5,
// Heartbeat v0-v4, LeaveGroup v0-v5), committed offsets (OffsetCommit v0-v8,
// OffsetFetch v0-v8) and the group admin APIs (DescribeGroups v0-v5, ListGroups v0-v4,
// DeleteGroups v0-v2, OffsetDelete v0). This is the protocol franz-go (kgo), librdkafka,
// kafkajs and Kafka Connect workers (protocol type "connect") use. The state machine follows
// Kafka's GroupCoordinator: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead,
// with KIP-394 (MEMBER_ID_REQUIRED on JoinGroup v4+), KIP-345 static membership
// (group.instance.id), KIP-814 (SkipAssignment for a static leader rejoining, JoinGroup v9)
// and Kafka's protocol vote.
//
// Group state and committed offsets persist through a Store (the broker backs it with the
// internal compacted topic __consumer_offsets) in Kafka's own record formats, documented in
// records.go; Load replays them at start-up.
//
// # Concurrency
//
// Every group has two locks and the coordinator one:
//
//  1. group.storeMu serializes the group's Store.Append calls together with the in-memory
//     change that follows a successful append, so the order of a group's records in the
//     store is the order in which their changes were applied in memory.
//  2. group.mu guards all of the group's state (members, generation, offsets, waiters, timer).
//  3. Coordinator.mu guards the group map and the Close/timer hand-off; it is a leaf lock.
//
// Lock order: storeMu, then mu, then Coordinator.mu. Nothing is acquired while holding
// Coordinator.mu, and storeMu is never acquired while holding mu. Store.Append is always
// called with storeMu held. The frequent writers (OffsetCommit, the leader's SyncGroup,
// metadata flushes) release mu during the append so heartbeats keep flowing; the rare ones
// (DeleteGroups, OffsetDelete, DeleteTopicOffsets, the retention sweep) keep mu across it,
// which makes them atomic with their checks.
//
// JoinGroup and SyncGroup park the caller on a buffered channel (a waiter) owned by the
// member; whoever completes the round (another request, or the group's timer) sends the
// result. A caller whose context ends stops waiting; its waiter stays registered, exactly as
// Kafka keeps the member "awaiting join" after its connection drops, and the result is
// dropped. Each group has at most one timer (time.AfterFunc) armed at the group's earliest
// deadline (session, pending member, join phase, pending sync); the coordinator owns one
// sweeper goroutine for offset retention. Close stops them all and waits.
//
// Session, rebalance and pending-member deadlines use the real monotonic clock; Config.Now
// is used only for the timestamps that are stored (commit timestamps, the state timestamp)
// and for offset retention.
package groups

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinel errors.
var (
	// ErrClosed is returned by Load after Close.
	ErrClosed = errors.New("groups: coordinator closed")
	// ErrAlreadyLoaded is returned by a second call to Load.
	ErrAlreadyLoaded = errors.New("groups: coordinator already loaded")
	// ErrInvalidConfig is wrapped by Config.Validate errors.
	ErrInvalidConfig = errors.New("groups: invalid config")
)

// Config configures a Coordinator. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// MinSessionTimeout is group.min.session.timeout.ms (default 6 s): JoinGroup with a
	// shorter session timeout fails with INVALID_SESSION_TIMEOUT.
	MinSessionTimeout time.Duration
	// MaxSessionTimeout is group.max.session.timeout.ms (default 30 min).
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: when an Empty group starts
	// rebalancing, the join phase waits this long (extended while new members keep arriving,
	// bounded by the rebalance timeout) so that a fleet starting together forms one
	// generation. Kafka's default is 3 s; ours is 0 (no delay: the join phase ends as soon as
	// every known member has joined), because a single-node development broker mostly serves
	// one or a few clients and kgo rejoins quickly anyway. A negative value means 0.
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is offsets.retention.minutes (default 7 days): committed offsets of a
	// group that has been empty this long (or, for groups that only commit, offsets not
	// committed for this long) are deleted.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms (default 10 min):
	// how often the retention sweep runs.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes (default 4096): a commit whose
	// metadata is longer fails for that partition with OFFSET_METADATA_TOO_LARGE.
	OffsetMetadataMaxBytes int
	// Now is the wall clock used for stored timestamps and retention (default time.Now).
	Now func() time.Time
}

// DefaultConfig returns Kafka's defaults, except InitialRebalanceDelay (0, see Config).
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		InitialRebalanceDelay:         0,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		OffsetMetadataMaxBytes:        4096,
		Now:                           time.Now,
	}
}

// Validate returns a normalized copy of c (zero fields replaced by defaults, a negative
// InitialRebalanceDelay by 0), or an error wrapping ErrInvalidConfig that names the bad field.
func (c Config) Validate() (Config, error) {
	d := DefaultConfig()
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = d.MinSessionTimeout
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = d.MaxSessionTimeout
	}
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = d.OffsetsRetention
	}
	if c.OffsetsRetentionCheckInterval == 0 {
		c.OffsetsRetentionCheckInterval = d.OffsetsRetentionCheckInterval
	}
	if c.OffsetMetadataMaxBytes == 0 {
		c.OffsetMetadataMaxBytes = d.OffsetMetadataMaxBytes
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	switch {
	case c.MinSessionTimeout < 0:
		return c, fmt.Errorf("%w: MinSessionTimeout (group.min.session.timeout.ms) is negative", ErrInvalidConfig)
	case c.MaxSessionTimeout < c.MinSessionTimeout:
		return c, fmt.Errorf("%w: MaxSessionTimeout (group.max.session.timeout.ms) %v is below MinSessionTimeout %v",
			ErrInvalidConfig, c.MaxSessionTimeout, c.MinSessionTimeout)
	case c.OffsetsRetention < 0:
		return c, fmt.Errorf("%w: OffsetsRetention (offsets.retention.minutes) is negative", ErrInvalidConfig)
	case c.OffsetsRetentionCheckInterval < 0:
		return c, fmt.Errorf("%w: OffsetsRetentionCheckInterval (offsets.retention.check.interval.ms) is negative", ErrInvalidConfig)
	case c.OffsetMetadataMaxBytes < 0:
		return c, fmt.Errorf("%w: OffsetMetadataMaxBytes (offset.metadata.max.bytes) is negative", ErrInvalidConfig)
	}
	return c, nil
}

// Store is where group state persists: the broker backs it with the internal compacted
// topic __consumer_offsets. Append must return only once the records are durable (fsynced);
// an error means they must be treated as not written. Append may be called concurrently for
// different groups; calls for one group are serialized.
type Store interface {
	Append(ctx context.Context, recs []Record) error
}

// Record is one __consumer_offsets record (formats in records.go). A nil Value is a
// tombstone.
type Record struct{ Key, Value []byte }

// ClientInfo identifies the connection a request came from. The dispatcher attaches it to
// the request context with WithClientInfo; it is used for new member ids (clientID-UUID, as
// Kafka does) and shown by DescribeGroups.
type ClientInfo struct {
	ClientID   string
	ClientHost string
}

type clientInfoKey struct{}

// WithClientInfo returns a context carrying ci for JoinGroup.
func WithClientInfo(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, ci)
}

func clientInfoFrom(ctx context.Context) ClientInfo {
	ci, _ := ctx.Value(clientInfoKey{}).(ClientInfo)
	return ci
}

// Coordinator is the group coordinator. Create it with New, call Load once with the
// records read back from the Store, then serve requests; until Load returns, every handler
// answers COORDINATOR_LOAD_IN_PROGRESS. Handlers are safe for concurrent use. After Close,
// handlers answer COORDINATOR_NOT_AVAILABLE.
type Coordinator struct {
	cfg   Config
	store Store
	log   *slog.Logger

	ctx    context.Context // cancelled by Close: store writes not tied to one request
	cancel context.CancelFunc
	done   chan struct{} // closed by Close: wakes parked JoinGroup/SyncGroup callers

	loaded atomic.Bool
	closed atomic.Bool

	mu      sync.Mutex // leaf lock; guards groups and loading, orders wg.Add against Close
	groups  map[string]*group
	loading bool           // Load has started
	wg      sync.WaitGroup // timer callbacks in flight and the sweeper

	closeOnce sync.Once
}

// New returns a Coordinator. An invalid cfg (see Config.Validate) is logged and replaced by
// DefaultConfig (keeping cfg.Now). A nil logger discards logs. New starts the retention
// sweeper; Close stops it.
func New(cfg Config, store Store, logger *slog.Logger) *Coordinator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	norm, err := cfg.Validate()
	if err != nil {
		logger.Error("invalid group coordinator config, using defaults", "err", err)
		now := norm.Now
		norm = DefaultConfig()
		norm.Now = now
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{
		cfg:    norm,
		store:  store,
		log:    logger,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		groups: make(map[string]*group),
	}
	c.wg.Add(1)
	go c.sweeper()
	return c
}

// Close stops the coordinator: parked JoinGroup/SyncGroup calls return
// COORDINATOR_NOT_AVAILABLE, timers are stopped and the sweeper exits. It blocks until every
// goroutine and timer callback the coordinator owns has returned. It is idempotent and always
// returns nil. Store writes in flight for a request still complete in that request's goroutine.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		gs := make([]*group, 0, len(c.groups))
		for _, g := range c.groups {
			gs = append(gs, g)
		}
		c.mu.Unlock()
		c.cancel()
		close(c.done)
		for _, g := range gs {
			g.mu.Lock()
			g.stopTimer()
			g.mu.Unlock()
		}
	})
	c.wg.Wait()
	return nil
}

// NumGroups returns the number of groups the coordinator knows (any state but Dead).
func (c *Coordinator) NumGroups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.groups)
}

// CommittedOffset returns the offset committed by group for topic/partition, and whether
// there is one.
func (c *Coordinator) CommittedOffset(group, topic string, partition int32) (int64, bool) {
	c.mu.Lock()
	g := c.groups[group]
	c.mu.Unlock()
	if g == nil {
		return 0, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateDead {
		return 0, false
	}
	o, ok := g.offsets[topic][partition]
	return o.offset, ok
}

// serving returns the error code every handler answers with while the coordinator is not
// serving, or 0.
func (c *Coordinator) serving() int16 {
	switch {
	case c.closed.Load():
		return kerr.CoordinatorNotAvailable.Code
	case !c.loaded.Load():
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// acquire registers a timer callback with Close; it returns false once Close started.
func (c *Coordinator) acquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	return true
}

// groupPtr returns the group named name, creating it (Empty) if create is set. It returns
// nil if the group does not exist and create is unset, or if the coordinator is closed.
func (c *Coordinator) groupPtr(name string, create bool) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	g := c.groups[name]
	if g == nil && create {
		g = newGroup(c, name)
		c.groups[name] = g
	}
	return g
}

// forget removes g from the group map if it is still the group under its name. Called after
// g turned Dead, with or without g.mu held.
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	c.mu.Unlock()
}

// lockGroup returns the live group named name with g.mu held, creating it if create is
// set; nil if there is no such group (or the coordinator is closed).
func (c *Coordinator) lockGroup(name string, create bool) *group {
	for {
		g := c.groupPtr(name, create)
		if g == nil {
			return nil
		}
		g.mu.Lock()
		if g.state != stateDead {
			return g
		}
		g.mu.Unlock()
		c.forget(g)
	}
}

// lockGroupStore is lockGroup that also takes g.storeMu (before g.mu).
func (c *Coordinator) lockGroupStore(name string, create bool) *group {
	for {
		g := c.groupPtr(name, create)
		if g == nil {
			return nil
		}
		g.storeMu.Lock()
		g.mu.Lock()
		if g.state != stateDead {
			return g
		}
		g.mu.Unlock()
		g.storeMu.Unlock()
		c.forget(g)
	}
}

// release arms g's timer, unlocks g.mu and reports whether g has group metadata waiting to
// be persisted (the caller then calls flushMeta once it holds no group lock).
func (c *Coordinator) release(g *group) bool {
	g.arm()
	dirty := g.metaDirty
	g.mu.Unlock()
	return dirty
}

// flushMeta persists g's group metadata if it changed since it was last written (the group
// turned Empty, or a static member was replaced). It must be called without g's locks. A
// failure is logged and retried at the next flush; the in-memory group stays authoritative.
func (c *Coordinator) flushMeta(g *group) {
	g.storeMu.Lock()
	defer g.storeMu.Unlock()
	g.mu.Lock()
	if !g.metaDirty || g.state == stateDead {
		g.mu.Unlock()
		return
	}
	g.metaDirty = false
	if g.state != stateEmpty && g.state != stateStable {
		// Mid-rebalance: the next completed sync (or Empty) writes the metadata.
		g.mu.Unlock()
		return
	}
	rec := g.metadataRecord(func(m *member) []byte { return m.assignment })
	g.mu.Unlock()
	if err := c.store.Append(c.ctx, []Record{rec}); err != nil {
		c.log.Warn("persisting group metadata failed", "group", g.name, "err", err)
		g.mu.Lock()
		g.metaDirty = true
		g.mu.Unlock()
	}
}

// sweeper runs the offset retention sweep every OffsetsRetentionCheckInterval until Close.
func (c *Coordinator) sweeper() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if c.loaded.Load() {
				c.expireOffsets(c.ctx)
			}
		}
	}
}

// newMemberID returns prefix-UUID (Kafka's member id format).
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	if prefix == "" {
		prefix = "member"
	}
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func msDur(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
