package herder

// Leader-only writes, as in Kafka Connect's distributed herder: the leader
// of the worker cluster is the only writer of connector configs, task
// configs, STOPPED target states, offset changes and restart requests. A
// REST request for one of these that reaches another worker gets a
// rest.Redirect to the leader, and the REST server forwards it there. A
// connector running on a follower hands its task configs to the leader
// through the internal POST /connectors/{c}/tasks endpoint.
//
// Restarts go where the work runs: a plain connector or task restart is
// served by the worker running it (the leader knows who that is and
// redirects); a restart of a connector and its tasks (includeTasks or
// onlyFailed) is a restart request record the leader writes to the config
// topic, which every worker reads and serves for its own share (KIP-745).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tributary-data/tributary/worker/cluster"
	"github.com/tributary-data/tributary/worker/configstore"
	"github.com/tributary-data/tributary/worker/rest"
	"github.com/tributary-data/tributary/worker/statusstore"
)

// leaderWait bounds how long a leader-only request waits for a rebalance
// to end before it is answered 409 (Kafka Connect answers at once; most
// rebalances end well within this).
const leaderWait = 5 * time.Second

// requireLeader returns nil when this worker leads the cluster, else a
// rest.Redirect to the leader (URL empty, hence 409, when none is known
// after leaderWait).
func (h *Herder) requireLeader(ctx context.Context, what string) error {
	wait := time.NewTimer(leaderWait)
	defer wait.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		self, url, ok := h.member.Leadership()
		if ok {
			if self {
				return nil
			}
			return rest.NotLeader(url, "Only the leader can %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			return rest.NotLeader("", "Only the leader can %s", what)
		case <-tick.C:
		}
	}
}

// workerURL is the REST URL of the worker whose id (host:port) is id.
func workerURL(id string) string { return "http://" + id }

// PutTaskConfigs serves the internal endpoint: the leader stores task
// configs a connector produced on some worker (unless they are unchanged).
func (h *Herder) PutTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error {
	if err := h.requireLeader(ctx, "write task configs"); err != nil {
		return err
	}
	snap, _, err := h.snapshotOf(ctx, name)
	if err != nil {
		return err
	}
	if slices.EqualFunc(snap.Tasks[name], tasks, mapsEqual) && !snap.Inconsistent[name] {
		return nil
	}
	return h.configs.PutTaskConfigs(ctx, name, tasks)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// storeTaskConfigs stores a connector's task configs from the engine: on
// the leader directly, else through the leader's internal endpoint,
// retried through rebalances until ctx ends (the connector stops).
func (h *Herder) storeTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error {
	backoff := 100 * time.Millisecond
	for {
		err := h.PutTaskConfigs(ctx, name, tasks)
		var to *rest.Redirect
		if !errors.As(err, &to) {
			return err
		}
		if to.URL != "" {
			if err = h.postTaskConfigs(ctx, to.URL, name, tasks); err == nil {
				return nil
			}
			h.log.Warn("handing task configs to the leader failed; retrying", "connector", name, "leader", to.URL, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// postTaskConfigs sends task configs to the leader's internal endpoint.
func (h *Herder) postTaskConfigs(ctx context.Context, leader, name string, tasks []map[string]string) error {
	body, err := json.Marshal(tasks)
	if err != nil {
		return err
	}
	u := strings.TrimRight(leader, "/") + "/connectors/" + url.PathEscape(name) + "/tasks?forward=false"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("leader answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// restartOwner decides where a plain restart runs: nil when this worker
// runs unit; else a redirect to the worker that does (known to the
// leader) or to the leader.
func (h *Herder) restartOwner(ctx context.Context, unit cluster.TaskID, owned bool) error {
	if owned {
		return nil
	}
	if err := h.requireLeader(ctx, "route restart requests"); err != nil {
		return err
	}
	if url, ok := h.member.OwnerURL(unit); ok && url != workerURL(h.cfg.WorkerID) {
		what := fmt.Sprintf("connector %s", unit.Connector)
		if unit.Task != cluster.ConnectorTask {
			what = fmt.Sprintf("task %s-%d", unit.Connector, unit.Task)
		}
		return &rest.Redirect{URL: url, Reason: what + " runs on another worker"}
	}
	return rest.Conflict("Cannot complete request because the connector or task is not assigned to any worker at the moment (a rebalance is pending); try again shortly")
}

// owns reports whether this worker runs the connector instance (task
// cluster.ConnectorTask) or task of unit.
func (h *Herder) owns(unit cluster.TaskID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owned == nil {
		return false
	}
	if unit.Task == cluster.ConnectorTask {
		return slices.Contains(h.owned.Connectors, unit.Connector)
	}
	return slices.Contains(h.owned.Tasks, unit)
}

// onRestartRequest queues a restart request read from the config topic;
// the restarter goroutine serves this worker's share of it.
func (h *Herder) onRestartRequest(u configstore.Update) {
	h.mu.Lock()
	h.restarts = append(h.restarts, u)
	h.mu.Unlock()
	select {
	case h.restartReq <- struct{}{}:
	default:
	}
}

// restarter serves queued restart requests, one at a time.
func (h *Herder) restarter(ctx context.Context) {
	defer h.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.restartReq:
		}
		h.mu.Lock()
		queue := h.restarts
		h.restarts = nil
		h.mu.Unlock()
		for _, u := range queue {
			if ownedShare(h.ownedWork(), u.Connector) == nil {
				continue
			}
			if h.restartUnresolved(u.Connector) {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			unlock, err := h.lockEngine(rctx)
			if err == nil {
				err = h.engine.RestartConnector(rctx, u.Connector, u.IncludeTasks, u.OnlyFailed)
				unlock()
			}
			cancel()
			if err != nil && ctx.Err() == nil {
				h.log.Error("restart failed", "connector", u.Connector, "err", err)
			}
		}
	}
}

func (h *Herder) ownedWork() *cluster.Work {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owned
}

// departed is called by the cluster member when this worker leads a round:
// the work of members that left the group shows UNASSIGNED until its new
// owner reports it.
func (h *Herder) departed(ctx context.Context, gen int32, from []cluster.Departure) {
	for _, d := range from {
		id := strings.TrimPrefix(d.URL, "http://")
		st := statusstore.Status{State: statusstore.Unassigned, WorkerID: id, Generation: gen}
		for _, c := range d.Work.Connectors {
			if _, err := h.status.PutConnectorSafe(ctx, c, st); err != nil {
				h.log.Warn("writing a connector status failed", "connector", c, "err", err)
			}
		}
		for _, t := range d.Work.Tasks {
			if _, err := h.status.PutTaskSafe(ctx, t.Connector, t.Task, st); err != nil {
				h.log.Warn("writing a task status failed", "connector", t.Connector, "task", t.Task, "err", err)
			}
		}
		h.log.Info("a worker left the cluster; its work is unassigned until reassigned", "worker", id,
			"connectors", len(d.Work.Connectors), "tasks", len(d.Work.Tasks))
	}
}
