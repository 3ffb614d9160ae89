package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-data/tributary/internal/testkafka"
)

// Timeouts of the integration tests: 6 s is the smallest session timeout Kafka, kfake and
// our broker accept by default (group.min.session.timeout.ms).
const (
	testSession   = 6 * time.Second
	testHeartbeat = 200 * time.Millisecond
)

// configLog is the config topic the test workers read: the latest snapshot.
type configLog struct {
	mu     sync.Mutex
	latest Snapshot
}

func (l *configLog) set(s Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latest = Snapshot{Offset: s.Offset, Connectors: maps.Clone(s.Connectors)}
}

func (l *configLog) get() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Snapshot{Offset: l.latest.Offset, Connectors: maps.Clone(l.latest.Connectors)}
}

// worker is a test Handler: it "runs" what it is assigned and logs what it started.
type worker struct {
	log *configLog

	mu         sync.Mutex
	read       Snapshot // what this worker has read of the config log
	running    map[TaskID]bool
	started    []TaskID // units started since the last reset
	revokes    []Work
	revokedAt  []time.Time
	mismatches int
	lastError  Assignment
}

func newWorker(log *configLog) *worker {
	return &worker{log: log, read: log.get(), running: map[TaskID]bool{}}
}

func (w *worker) catchUp() {
	s := w.log.get()
	w.mu.Lock()
	w.read = s
	w.mu.Unlock()
}

func (w *worker) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.read
}

func (w *worker) Revoke(_ context.Context, work Work) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for u := range work.units() {
		delete(w.running, u)
	}
	w.revokes = append(w.revokes, work)
	w.revokedAt = append(w.revokedAt, time.Now())
}

func (w *worker) Assigned(_ context.Context, a Assignment) {
	if a.Error == ErrConfigMismatch {
		w.mu.Lock()
		w.mismatches++
		w.lastError = a
		w.mu.Unlock()
		w.catchUp() // read the config topic up to a.ConfigOffset
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	next := a.Assigned.units()
	for u := range w.running {
		if !next[u] {
			panic(fmt.Sprintf("%v still running but not assigned (not revoked first)", u))
		}
	}
	for _, u := range sortedUnits(next) {
		if !w.running[u] {
			w.started = append(w.started, u)
		}
	}
	w.running = next
}

func (w *worker) runningSet() map[TaskID]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.running)
}

func (w *worker) resetLog() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started, w.revokes, w.revokedAt = nil, nil, nil
}

type node struct {
	url string
	m   *Member
	w   *worker
}

type testCluster struct {
	t     *testing.T
	addrs []string
	group string
	log   *configLog
	delay time.Duration
	nodes map[string]*node // by URL
}

func newTestCluster(t *testing.T, addrs []string, snap Snapshot) *testCluster {
	c := &testCluster{t: t, addrs: addrs, group: "workers-" + t.Name(), log: &configLog{}, nodes: map[string]*node{}}
	c.log.set(snap)
	return c
}

func (c *testCluster) start(url string, hooks *testHooks) *node {
	c.t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = c.addrs
	cfg.GroupID = c.group
	cfg.URL = url
	cfg.SessionTimeout = testSession
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.HeartbeatInterval = testHeartbeat
	cfg.ScheduledRebalanceMaxDelay = c.delay
	cfg.hooks = hooks
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w := newWorker(c.log)
	m, err := Join(context.Background(), cfg, w)
	if err != nil {
		c.t.Fatal(err)
	}
	n := &node{url: url, m: m, w: w}
	c.nodes[url] = n
	c.t.Cleanup(func() { m.Close() })
	return n
}

func (c *testCluster) stop(url string) {
	c.t.Helper()
	if err := c.nodes[url].m.Close(); err != nil {
		c.t.Fatal(err)
	}
	delete(c.nodes, url)
}

func (c *testCluster) urls() []string {
	var us []string
	for u := range c.nodes {
		us = append(us, u)
	}
	sort.Strings(us)
	return us
}

// owners returns who runs what, failing on a unit run twice.
func (c *testCluster) owners() map[TaskID]string {
	o := map[TaskID]string{}
	for _, url := range c.urls() {
		for u := range c.nodes[url].w.runningSet() {
			if other, dup := o[u]; dup {
				c.t.Fatalf("%v runs on %s and %s", u, other, url)
			}
			o[u] = url
		}
	}
	return o
}

// converged reports whether every member is at the same generation with no delay pending
// and everything in the snapshot runs exactly once.
func (c *testCluster) converged() (bool, string) {
	snap := c.log.get()
	want := 0
	for _, n := range snap.Connectors {
		want += n + 1
	}
	gen := int32(-2)
	for _, url := range c.urls() {
		a := c.nodes[url].m.Current()
		if gen != -2 && a.Generation != gen {
			return false, "generations differ"
		}
		gen = a.Generation
		if a.Delay > 0 || a.Error != 0 || !a.Revoked.Empty() {
			return false, fmt.Sprintf("%s: delay %v error %d revoked %v", url, a.Delay, a.Error, a.Revoked)
		}
		if a.ConfigOffset != snap.Offset {
			return false, "old config offset"
		}
	}
	o := c.owners()
	if len(o) != want {
		return false, fmt.Sprintf("%d of %d units run", len(o), want)
	}
	for u := range o {
		if n, ok := snap.Connectors[u.Connector]; !ok || u.Task >= n {
			return false, fmt.Sprintf("%v runs but was deleted", u)
		}
	}
	return true, ""
}

func (c *testCluster) waitConverged(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := c.converged()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not converged after %v: %s; owners %v", within, why, c.loads())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *testCluster) loads() map[string]int {
	l := map[string]int{}
	for _, url := range c.urls() {
		l[url] = len(c.nodes[url].w.runningSet())
	}
	return l
}

func (c *testCluster) assertBalanced(lo, hi int) {
	c.t.Helper()
	for url, l := range c.loads() {
		if l < lo || l > hi {
			c.t.Fatalf("%s runs %d units, want %d-%d: %v", url, l, lo, hi, c.loads())
		}
	}
}

func (c *testCluster) resetLogs() {
	for _, n := range c.nodes {
		n.w.resetLog()
	}
}

// assertOnlyStarted fails if any member other than those in allowed started something since
// the last resetLogs.
func (c *testCluster) assertOnlyStarted(allowed ...string) {
	c.t.Helper()
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for url, n := range c.nodes {
		n.w.mu.Lock()
		started := append([]TaskID(nil), n.w.started...)
		n.w.mu.Unlock()
		if !ok[url] && len(started) > 0 {
			c.t.Fatalf("%s started %v: work moved to a member it should not move to", url, started)
		}
	}
}

func snap4x3at(offset int64) Snapshot {
	return Snapshot{Offset: offset, Connectors: map[string]int{"a": 3, "b": 3, "c": 3, "d": 3}}
}

// TestClusterLifecycle: 3 members balance 16 units; a 4th takes work from the others and
// nothing else moves; new connectors are added without moving anything; a member that
// leaves has its work reassigned at once (delay 0).
func TestClusterLifecycle(t *testing.T) {
	for _, b := range testkafka.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t, b.Start(t), snap4x3at(10))
			for _, u := range []string{"w1", "w2", "w3"} {
				c.start("http://"+u, nil)
			}
			c.waitConverged(15 * time.Second)
			c.assertBalanced(5, 6)
			leaderID, leaderURL, ok := c.nodes["http://w1"].m.Leader()
			if !ok || leaderID == "" || leaderURL == "" {
				t.Fatalf("no leader: %q %q %v", leaderID, leaderURL, ok)
			}

			// A 4th member joins: work moves to it only.
			before := c.owners()
			c.resetLogs()
			c.start("http://w4", nil)
			c.waitConverged(15 * time.Second)
			c.assertBalanced(4, 4)
			c.assertOnlyStarted("http://w4")
			for u, o := range c.owners() {
				if o != before[u] && o != "http://w4" {
					t.Fatalf("%v moved from %s to %s", u, before[u], o)
				}
			}

			// The snapshot grows: new work is assigned, nothing is revoked.
			before = c.owners()
			c.resetLogs()
			s := snap4x3at(11)
			s.Connectors["e"] = 2
			s.Connectors["f"] = 0
			c.log.set(s)
			for _, n := range c.nodes {
				n.w.catchUp()
			}
			c.nodes["http://w2"].m.Rejoin()
			c.waitConverged(15 * time.Second)
			c.assertBalanced(5, 6)
			for u, o := range before {
				if c.owners()[u] != o {
					t.Fatalf("%v moved from %s", u, o)
				}
			}
			for url, n := range c.nodes {
				if len(n.w.revokes) > 0 {
					t.Fatalf("%s had %v revoked", url, n.w.revokes)
				}
			}

			// A member leaves: its work is reassigned at once, nothing else moves.
			before = c.owners()
			gen := c.nodes["http://w1"].m.Generation()
			c.stop("http://w3")
			start := time.Now()
			c.waitConverged(15 * time.Second)
			t.Logf("reassigned %v after w3 left", time.Since(start))
			c.assertBalanced(6, 7)
			for u, o := range c.owners() {
				if before[u] != "http://w3" && before[u] != o {
					t.Fatalf("%v moved from %s to %s", u, before[u], o)
				}
			}
			if g := c.nodes["http://w1"].m.Generation(); g <= gen {
				t.Fatalf("generation %d after %d", g, gen)
			}
		})
	}
}

// TestClusterScheduledDelay: with a delay, a departed member's work is held; a worker that
// comes back with the same URL gets it back; otherwise it is reassigned after the delay.
func TestClusterScheduledDelay(t *testing.T) {
	for _, b := range testkafka.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			const delay = 2 * time.Second
			c := newTestCluster(t, b.Start(t), snap4x3at(10))
			c.delay = delay
			for _, u := range []string{"w1", "w2", "w3"} {
				c.start("http://"+u, nil)
			}
			c.waitConverged(15 * time.Second)

			// The leader's memory of who ran what is what lets it hold lost work: a new
			// leader has none and reassigns at once (as in Kafka Connect), so followers go.
			_, leader, _ := c.nodes["http://w1"].m.Leader()
			var followers []string
			for _, u := range c.urls() {
				if u != leader {
					followers = append(followers, u)
				}
			}
			a, b := followers[0], followers[1]

			// a restarts within the delay: it gets exactly its work back.
			before := c.owners()
			c.stop(a)
			waitFor(t, 5*time.Second, func() bool { return c.nodes[leader].m.Current().Delay > 0 })
			c.start(a, nil)
			c.waitConverged(10 * time.Second)
			for u, o := range c.owners() {
				if before[u] != o {
					t.Fatalf("%v moved from %s to %s", u, before[u], o)
				}
			}

			// b goes away for good: its work is held for the delay, then reassigned.
			c.stop(b)
			left := time.Now()
			waitFor(t, 5*time.Second, func() bool { return c.nodes[leader].m.Current().Delay > 0 })
			if n := len(c.owners()); n == 16 {
				t.Fatal("lost work reassigned during the delay")
			}
			c.waitConverged(delay + 10*time.Second)
			if el := time.Since(left); el < delay-200*time.Millisecond {
				t.Fatalf("reassigned after %v, before the %v delay", el, delay)
			}
			c.assertBalanced(8, 8)
		})
	}
}

// TestClusterFencing: a member whose heartbeats stop revokes everything itself before its
// session could expire, then recovers once heartbeats resume.
func TestClusterFencing(t *testing.T) {
	for _, b := range testkafka.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t, b.Start(t), snap4x3at(10))
			var paused atomic.Bool // w1's heartbeats are paused while set
			c.start("http://w1", &testHooks{beforeHeartbeat: func() {
				for paused.Load() {
					time.Sleep(5 * time.Millisecond)
				}
			}})
			t.Cleanup(func() { paused.Store(false) }) // runs before the members' Close
			c.start("http://w2", nil)
			c.waitConverged(15 * time.Second)
			w1 := c.nodes["http://w1"]
			had := w1.w.runningSet()
			if len(had) == 0 {
				t.Fatal("w1 runs nothing")
			}
			w1.w.resetLog()
			paused.Store(true)
			pausedAt := time.Now() // the last heartbeat was sent before this
			waitFor(t, testSession, func() bool {
				w1.w.mu.Lock()
				defer w1.w.mu.Unlock()
				return len(w1.w.revokes) > 0
			})
			w1.w.mu.Lock()
			first, at := w1.w.revokes[0], w1.w.revokedAt[0]
			w1.w.mu.Unlock()
			if el := at.Sub(pausedAt); el >= testSession-time.Second {
				t.Fatalf("revoked %v after the last heartbeat; the session is %v", el, testSession)
			}
			if got := first.units(); len(got) != len(had) {
				t.Fatalf("revoked %v, ran %v", first, had)
			}
			paused.Store(false)
			c.waitConverged(20 * time.Second)
		})
	}
}

// TestClusterConfigMismatch: a member that has read the config topic further than the leader
// makes the round fail with CONFIG_MISMATCH; everyone reads further and the next round
// assigns the new work.
func TestClusterConfigMismatch(t *testing.T) {
	for _, b := range testkafka.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t, b.Start(t), snap4x3at(10))
			c.start("http://w1", nil)
			c.waitConverged(15 * time.Second)
			if id, _, _ := c.nodes["http://w1"].m.Leader(); id != c.nodes["http://w1"].m.Current().MemberID {
				t.Fatal("w1 is not the leader")
			}
			// w2 starts having read a newer config than w1 (the leader).
			s := snap4x3at(12)
			s.Connectors["e"] = 1
			c.log.set(s)
			w2 := c.start("http://w2", nil)
			c.waitConverged(15 * time.Second)
			w1 := c.nodes["http://w1"]
			w1.w.mu.Lock()
			mism, last := w1.w.mismatches, w1.w.lastError
			w1.w.mu.Unlock()
			if mism == 0 || last.ConfigOffset != 12 {
				t.Fatalf("leader saw %d mismatches, last %+v", mism, last)
			}
			w2.w.mu.Lock()
			defer w2.w.mu.Unlock()
			if w2.w.mismatches == 0 {
				t.Fatal("w2 saw no mismatch")
			}
		})
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Brokers, good.GroupID, good.URL = []string{"x:9092"}, "g", "http://w"
	if _, err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no brokers":  func(c *Config) { c.Brokers = nil },
		"no group":    func(c *Config) { c.GroupID = "" },
		"no url":      func(c *Config) { c.URL = "" },
		"heartbeat":   func(c *Config) { c.HeartbeatInterval = c.SessionTimeout },
		"delay":       func(c *Config) { c.ScheduledRebalanceMaxDelay = -1 },
		"session big": func(c *Config) { c.SessionTimeout = 1 << 62 },
	} {
		c := good
		mut(&c)
		if _, err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	m, err := Join(context.Background(), good, nil)
	if err == nil {
		m.Close()
		t.Fatal("nil handler accepted")
	}
}

// TestCloseIdempotent: Close twice, concurrently, and after ctx cancellation.
func TestCloseIdempotent(t *testing.T) {
	addr := testkafka.Broker(t)
	c := newTestCluster(t, []string{addr}, snap4x3at(1))
	n := c.start("http://w1", nil)
	c.waitConverged(10 * time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.m.Close()
		}()
	}
	wg.Wait()
	if len(n.w.runningSet()) != 0 {
		t.Fatal("still running after Close")
	}
	if n.m.Generation() != -1 && n.m.Current().Assigned.Len() != 0 {
		t.Fatal("assignment kept after Close")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cfg := DefaultConfig()
	cfg.Brokers, cfg.GroupID, cfg.URL = []string{addr}, "g2", "http://w2"
	cfg.SessionTimeout, cfg.HeartbeatInterval = testSession, testHeartbeat
	m, err := Join(ctx, cfg, newWorker(c.log))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		t.Fatal("member did not stop when its context was cancelled")
	}
	m.Close()
}

// TestFenceOnWake: a member whose lease went stale while it was stopped (SIGSTOP) sees it as
// soon as it wakes: its fence timer is already due, and the check revokes everything.
func TestFenceOnWake(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers, cfg.GroupID, cfg.URL = []string{"unused:9092"}, "g", "http://w"
	cfg, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(&configLog{})
	work := Work{Connectors: []string{"a"}, Tasks: []TaskID{{"a", 0}}}
	w.running = work.units()
	m := &Member{cfg: cfg, h: w, log: cfg.Logger, epoch: time.Now().Add(-time.Minute)}
	m.current.Assigned = work
	m.renew(int64(50 * time.Second)) // last proof of membership 10 s ago; the session is 10 s
	if m.Live() {
		t.Fatal("Live with a lease as old as the session")
	}
	timer := m.fenceTimer()
	select {
	case <-timer.C:
	case <-time.After(100 * time.Millisecond):
		t.Fatal("fence timer not due at once")
	}
	if !m.checkFence(context.Background()) {
		t.Fatal("did not fence")
	}
	if len(w.runningSet()) != 0 || !m.current.Assigned.Empty() || len(w.revokes) != 1 {
		t.Fatalf("running %v, revokes %v", w.runningSet(), w.revokes)
	}
	// A fresh lease does not fence.
	m.current.Assigned = work
	m.renew(m.now())
	if m.checkFence(context.Background()) {
		t.Fatal("fenced with a fresh lease")
	}
	if !m.Live() {
		t.Fatal("not Live with a fresh lease")
	}
	// Live turns false at 3/4 of the session, when the member fences.
	m.lease.Store(m.now() - int64(cfg.fenceAfter()) - int64(time.Millisecond))
	if m.Live() {
		t.Fatal("Live past the fence threshold")
	}
}
