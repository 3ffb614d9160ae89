package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The worker cluster, with real processes: a broker, three (then four)
// workers sharing a group id, and four file pipelines, each a file source
// (one task) into a 3-partition topic and a file sink with three tasks: 8
// connector instances and 16 tasks, 24 units. The subtests run in order on
// the same cluster (each leaves it settled for the next) and stop at the
// first failure.
func TestClusterMembership(t *testing.T) {
	dir := t.TempDir()
	kafka := freeAddr(t)
	startProc(t, "broker", "tributary", "broker", "--listen", kafka, "--data-dir", filepath.Join(dir, "broker"))
	c := newWorkerCluster(t, kafka, "e2e-cluster", fastMembership...)
	c.addWorkers(t, 3)
	ps := newPipelines(t, dir, 4)
	units := len(ps) * unitsPerPipeline

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SpreadEvenly", func(t *testing.T) {
			// Connectors created through different workers.
			for i, p := range ps {
				p.create(t, kafka, c.workers[i%3].url)
			}
			mustAppend(t, ps, 5000)
			pl := c.waitSettled(t, units, 60*time.Second)
			// 24 units over 3 workers: 8 each, and every worker runs tasks
			// (not only connector instances).
			for _, w := range c.live() {
				if n := len(pl.byOwner[w.hp]); n != units/3 {
					t.Errorf("%s runs %d units, want %d", w.name, n, units/3)
				}
				if pl.tasks[w.hp] < 2 {
					t.Errorf("%s runs %d tasks", w.name, pl.tasks[w.hp])
				}
			}
			waitDelivered(t, ps, 60*time.Second)
		}},
		{"Kill9FailoverWithin10s", func(t *testing.T) {
			leader, err := c.leader()
			if err != nil {
				t.Fatal(err)
			}
			var victim *workerNode
			for _, w := range c.live() {
				if w.hp != leader {
					victim = w
					break
				}
			}
			killAndFailover(t, c, ps, units, victim, 10*time.Second)
			// The worker comes back (same address, so same worker id) and
			// gets its share again.
			c.restart(t, victim)
			c.waitSettled(t, units, 60*time.Second)
			mustAppend(t, ps, 1000)
			waitDelivered(t, ps, 60*time.Second)
		}},
		{"RESTWriteViaFollower", func(t *testing.T) { restWriteViaFollower(t, c, dir, units) }},
		{"FourthWorkerJoinsWithoutRestarts", func(t *testing.T) {
			before, err := getPlacement(c.live()[0].url)
			if err != nil {
				t.Fatal(err)
			}
			pids := map[string]map[int]bool{}
			for _, w := range c.live() {
				pids[w.hp] = map[int]bool{}
				for _, pid := range pluginChildren(t, w.p.cmd.Process.Pid) {
					pids[w.hp][pid] = true
				}
			}
			nw := c.addWorkers(t, 1)[0]
			after := c.waitSettled(t, units, 60*time.Second)
			if len(after.byOwner[nw.hp]) == 0 {
				t.Fatalf("nothing moved to the new worker %s:%v", nw.hp, after)
			}
			t.Logf("moved to the new worker: %v", after.byOwner[nw.hp])
			for hp, old := range pids {
				// Everything an old worker runs now, it ran before, in the
				// same plugin process: nothing was restarted or moved
				// between old workers.
				for _, u := range after.byOwner[hp] {
					if before.owner[u] != hp {
						t.Errorf("%s moved from %s to %s (an old worker): only moves to the new worker were needed", u, before.owner[u], hp)
					}
				}
				w := c.byID(hp)
				for _, pid := range pluginChildren(t, w.p.cmd.Process.Pid) {
					if !old[pid] {
						t.Errorf("%s (%s) has a new plugin process %d: a task or connector was (re)started on it", w.name, hp, pid)
					}
				}
			}
			mustAppend(t, ps, 1000)
			waitDelivered(t, ps, 60*time.Second)
		}},
		{"PausedWorkerDoesNotWriteAfterTakeover", func(t *testing.T) { pausedWorker(t, c, ps, kafka, units) }},
		{"RollingRestartWhileDataFlows", func(t *testing.T) { rollingRestart(t, c, ps, units) }},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("%s failed: the later steps need the cluster it leaves", s.name)
		}
	}
}

// The failover on kfake (three brokers, in a process of its own): kill -9
// of the leader worker this time. kfake creates no topics on first use: the
// test creates the pipelines' topics, the workers their internal ones.
func TestClusterKfakeFailover(t *testing.T) {
	dir := t.TempDir()
	kafka := startKfake(t)
	c := newWorkerCluster(t, kafka, "e2e-kfake", fastMembership...)
	c.addWorkers(t, 3)
	ps := newPipelines(t, dir, 2)
	units := len(ps) * unitsPerPipeline
	for i, p := range ps {
		p.create(t, kafka, c.workers[i%3].url)
	}
	mustAppend(t, ps, 5000)
	c.waitSettled(t, units, 60*time.Second)
	waitDelivered(t, ps, 60*time.Second)
	leader, err := c.leader()
	if err != nil {
		t.Fatal(err)
	}
	killAndFailover(t, c, ps, units, c.byID(leader), 10*time.Second)
}

// killAndFailover SIGKILLs victim's process group while lines flow, checks
// that every connector and task it ran is RUNNING on another worker within
// limit, and that no line is lost.
func killAndFailover(t *testing.T, c *workerCluster, ps []*filePipeline, units int, victim *workerNode, limit time.Duration) {
	t.Helper()
	var observer *workerNode
	for _, w := range c.live() {
		if w != victim {
			observer = w
			break
		}
	}
	before, err := getPlacement(observer.url)
	if err != nil {
		t.Fatal(err)
	}
	lost := before.byOwner[victim.hp]
	if len(lost) == 0 {
		t.Fatalf("the victim %s runs nothing:%v", victim.hp, before)
	}
	mustAppend(t, ps, 2000) // in flight when the worker dies
	start := time.Now()
	victim.p.kill9()
	var elapsed time.Duration
	waitFor(t, 60*time.Second, fmt.Sprintf("%d units of the killed worker RUNNING elsewhere", len(lost)), func() (bool, string) {
		pl, err := getPlacement(observer.url)
		if err != nil {
			return false, err.Error()
		}
		for _, u := range lost {
			if pl.state[u] != "RUNNING" || pl.owner[u] == victim.hp {
				return false, fmt.Sprintf("%s is %s on %s:%v", u, pl.state[u], pl.owner[u], pl)
			}
		}
		elapsed = time.Since(start)
		return true, ""
	})
	t.Logf("failover: the %d units of the kill -9ed worker %s (%s) were RUNNING on other workers %.2f s after the kill (limit %v)",
		len(lost), victim.name, victim.hp, elapsed.Seconds(), limit)
	if elapsed > limit {
		t.Errorf("failover took %.2f s, over %v", elapsed.Seconds(), limit)
	}
	mustAppend(t, ps, 2000)
	c.waitSettled(t, units, 60*time.Second)
	waitDelivered(t, ps, 60*time.Second)
}

// restWriteViaFollower creates a connector and replaces its config through a
// worker that is not the leader, and checks every worker shows both.
func restWriteViaFollower(t *testing.T, c *workerCluster, dir string, units int) {
	leader, err := c.leader()
	if err != nil {
		t.Fatal(err)
	}
	var follower *workerNode
	for _, w := range c.live() {
		if w.hp != leader {
			follower = w
			break
		}
	}
	t.Logf("leader %s; writing through %s (%s)", leader, follower.name, follower.hp)
	in := filepath.Join(dir, "follower-in.txt")
	name := "via-follower"
	createTopics(t, c.kafka, 1, "follower-t")
	cfg := map[string]string{"connector.class": "FileStreamSource", "file": in, "topic": "follower-t", "batch.size": "2000"}
	mustHTTP(t, follower.url+"/connectors", http.MethodPost, map[string]any{"name": name, "config": cfg}, http.StatusCreated)
	seen := func(want map[string]string) {
		t.Helper()
		for _, w := range c.live() {
			waitFor(t, 15*time.Second, fmt.Sprintf("%s's config on %s", name, w.name), func() (bool, string) {
				code, b, err := httpDo(w.url+"/connectors/"+name+"/config", http.MethodGet, nil)
				if err != nil || code != http.StatusOK {
					return false, fmt.Sprintf("%d %s %v", code, b, err)
				}
				var got map[string]string
				if err := json.Unmarshal(b, &got); err != nil {
					return false, err.Error()
				}
				for k, v := range want {
					if got[k] != v {
						return false, fmt.Sprintf("%s=%q, want %q: %s", k, got[k], v, b)
					}
				}
				code, b, err = httpDo(w.url+"/connectors", http.MethodGet, nil)
				return err == nil && code == http.StatusOK && strings.Contains(string(b), `"`+name+`"`), fmt.Sprintf("GET /connectors: %d %s", code, b)
			})
		}
	}
	seen(cfg)
	cfg["batch.size"] = "100"
	mustHTTP(t, follower.url+"/connectors/"+name+"/config", http.MethodPut, cfg, http.StatusOK)
	seen(cfg)
	c.waitSettled(t, units+2, 60*time.Second)
	mustHTTP(t, follower.url+"/connectors/"+name, http.MethodDelete, nil, http.StatusNoContent)
	for _, w := range c.live() {
		waitFor(t, 15*time.Second, name+" gone from "+w.name, func() (bool, string) {
			code, b, err := httpDo(w.url+"/connectors/"+name, http.MethodGet, nil)
			return err == nil && code == http.StatusNotFound, fmt.Sprintf("%d %s %v", code, b, err)
		})
	}
	c.waitSettled(t, units, 60*time.Second)
}

// pausedWorker SIGSTOPs the process group of a worker that runs a source
// task (the worker and its plugin processes, as a paused VM would be) until
// others have taken its work over, appends lines, SIGCONTs it and appends
// more. Every line appended after the takeover must be in the topic exactly
// once, and in the sink file exactly once: a copy of a task that resumed
// (a zombie source would re-read the file from its old position, a zombie
// sink would write what its stale consumer fetched) shows as a duplicate.
// Then the statuses converge: every unit RUNNING on one worker, which has
// one plugin process for it.
func pausedWorker(t *testing.T, c *workerCluster, ps []*filePipeline, kafka string, units int) {
	pl, err := getPlacement(c.live()[0].url)
	if err != nil {
		t.Fatal(err)
	}
	// The victim runs a source task and, if some worker does, a sink task
	// too, so that both kinds of zombie could show.
	var victim *workerNode
	for _, w := range c.live() {
		var src, sink bool
		for _, u := range pl.byOwner[w.hp] {
			src = src || strings.HasPrefix(u, "src") && strings.Contains(u, "/")
			sink = sink || strings.HasPrefix(u, "sink") && strings.Contains(u, "/")
		}
		if src && (sink || victim == nil) {
			victim = w
		}
	}
	if victim == nil {
		t.Fatalf("no worker runs a source task:%v", pl)
	}
	var observer *workerNode
	for _, w := range c.live() {
		if w != victim {
			observer = w
			break
		}
	}
	lost := pl.byOwner[victim.hp]
	kinds := "source tasks only (no worker ran both kinds of task: the sink side is not exercised this time)"
	for _, u := range lost {
		if strings.HasPrefix(u, "sink") && strings.Contains(u, "/") {
			kinds = "source and sink tasks"
		}
	}
	t.Logf("pausing %s (%s), which runs %v: %s", victim.name, victim.hp, lost, kinds)
	if err := victim.p.signalGroup(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			victim.p.signalGroup(syscall.SIGCONT)
		}
	}()
	start := time.Now()
	waitFor(t, 60*time.Second, "the paused worker's units RUNNING elsewhere", func() (bool, string) {
		pl, err := getPlacement(observer.url)
		if err != nil {
			return false, err.Error()
		}
		for _, u := range lost {
			if pl.state[u] != "RUNNING" || pl.owner[u] == victim.hp {
				return false, fmt.Sprintf("%s is %s on %s:%v", u, pl.state[u], pl.owner[u], pl)
			}
		}
		return true, ""
	})
	t.Logf("taken over %.2f s after SIGSTOP", time.Since(start).Seconds())
	mark := map[*filePipeline]int{}
	for _, p := range ps {
		mark[p] = p.written()
	}
	mustAppend(t, ps, 2000)
	waitDelivered(t, ps, 60*time.Second)
	t.Logf("SIGCONT %.2f s after SIGSTOP", time.Since(start).Seconds())
	if err := victim.p.signalGroup(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	mustAppend(t, ps, 2000)
	c.waitSettled(t, units, 60*time.Second)
	mustAppend(t, ps, 1000)
	waitDelivered(t, ps, 60*time.Second)
	for _, p := range ps {
		from, to := mark[p], p.written()
		if bad, ex := exactlyOnce(topicCounts(t, kafka, p.topic), from, to); bad > 0 {
			t.Errorf("topic %s: %d of the %d lines appended after the takeover are not there exactly once (a resumed copy of a source task wrote?): %s", p.topic, bad, to-from, ex)
		}
		if err := p.tr.update(); err != nil {
			t.Fatal(err)
		}
		if bad, ex := exactlyOnce(sinkCounts(p.tr), from, to); bad > 0 {
			t.Errorf("sink file %s: %d of the %d lines appended after the takeover are not there exactly once (a resumed copy of a sink task wrote?): %s", p.out, bad, to-from, ex)
		}
	}
}

// rollingRestart stops every worker gracefully (SIGTERM) and starts it
// again, one at a time, waiting for the cluster to settle after each, while
// a writer appends lines to every input; no line may be lost.
func rollingRestart(t *testing.T, c *workerCluster, ps []*filePipeline, units int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, p := range ps {
				if _, err := p.appendLines(100); err != nil {
					werr = err
					return
				}
			}
		}
	}()
	stopWriter := func() {
		cancel()
		wg.Wait()
	}
	defer stopWriter()
	workers := c.live()
	sort.Slice(workers, func(i, j int) bool { return workers[i].name < workers[j].name })
	for _, w := range workers {
		start := time.Now()
		graceful, err := w.p.terminate(30 * time.Second)
		if !graceful {
			t.Errorf("%s did not stop cleanly on SIGTERM: %v", w.name, err)
		}
		t.Logf("%s stopped in %v; restarting it", w.name, time.Since(start).Round(time.Millisecond))
		c.restart(t, w)
		c.waitSettled(t, units, 60*time.Second)
	}
	stopWriter()
	if werr != nil {
		t.Fatal(werr)
	}
	t.Logf("%d lines per input written during the rolling restart", ps[0].written())
	waitDelivered(t, ps, 90*time.Second)
}
