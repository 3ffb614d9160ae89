package main

import (
	"github.com/tributary-data/tributary/bench/benchproc"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// worker is one worker process and its REST address (also its worker id).
type worker struct {
	name string
	hp   string
	p    *benchproc.Proc
}

func (w *worker) url() string { return "http://" + w.hp }

// cluster is a broker process and worker processes sharing a group id.
type cluster struct {
	o       options
	dir     string
	kafka   string
	broker  *benchproc.Proc
	workers []*worker
}

const stopGrace = 10 * time.Second

// startCluster starts a broker that accepts short session timeouts and
// o.workers workers, and waits until every worker is healthy.
func startCluster(ctx context.Context, o options, dir string) (*cluster, error) {
	c := &cluster{o: o, dir: dir}
	var err error
	if c.kafka, err = benchproc.FreeAddr(); err != nil {
		return nil, err
	}
	c.broker, err = benchproc.Start("broker", []string{o.tributary, "broker", "--listen", c.kafka, "--data-dir", filepath.Join(dir, "broker-data"),
		"--set", "group.min.session.timeout.ms=1000"}, dir)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := benchproc.WaitTCP(wctx, c.kafka, c.broker); err != nil {
		c.stop()
		return nil, err
	}
	if err := createTopic(wctx, c.kafka, benchTopic); err != nil {
		c.stop()
		return nil, err
	}
	for i := 0; i < o.workers; i++ {
		hp, err := benchproc.FreeAddr()
		if err != nil {
			c.stop()
			return nil, err
		}
		w := &worker{name: fmt.Sprintf("worker%d", i), hp: hp}
		w.p, err = benchproc.Start(w.name, []string{o.tributary, "worker", "--bootstrap-servers", c.kafka, "--group-id", "clusterbench",
			"--rest-listen", hp, "--plugin-path", filepath.Dir(o.tributary),
			"--set", "session.timeout.ms=" + strconv.FormatInt(o.session.Milliseconds(), 10),
			"--set", "heartbeat.interval.ms=" + strconv.FormatInt(o.heartbeat.Milliseconds(), 10),
			"--set", "scheduled.rebalance.max.delay.ms=0", "--set", "offset.flush.interval.ms=1000"}, dir)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.workers = append(c.workers, w)
	}
	hctx, hcancel := context.WithTimeout(ctx, 60*time.Second)
	defer hcancel()
	for _, w := range c.workers {
		for {
			code, _, err := httpDo(w.url()+"/health", http.MethodGet, nil)
			if err == nil && code == http.StatusOK {
				break
			}
			if err := w.p.Alive(); err != nil {
				c.stop()
				return nil, err
			}
			if err := benchproc.Sleep(hctx, 50*time.Millisecond); err != nil {
				c.stop()
				return nil, fmt.Errorf("%s not healthy: %w", w.name, err)
			}
		}
	}
	return c, nil
}

// stop stops every process (workers first) and waits for them.
func (c *cluster) stop() {
	for _, w := range c.workers {
		w.p.Stop(stopGrace)
	}
	if c.broker != nil {
		c.broker.Stop(stopGrace)
	}
}

func (c *cluster) live() []*worker {
	var out []*worker
	for _, w := range c.workers {
		if !w.p.Dead() {
			out = append(out, w)
		}
	}
	return out
}

const benchTopic = "clusterbench"

func createTopic(ctx context.Context, kafka, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func httpDo(url, method string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// createConnectors creates n file source connectors (each tailing its own
// empty file into benchTopic) through the workers' REST APIs in turn,
// retrying a 409 (rebalance in progress). It returns the retries.
func (c *cluster) createConnectors(ctx context.Context, n int) (retries int, err error) {
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("conn%03d", i)
		in := filepath.Join(c.dir, name+".txt")
		if err := os.WriteFile(in, nil, 0o644); err != nil {
			return retries, err
		}
		body := map[string]any{"name": name, "config": map[string]string{
			"connector.class": "FileStreamSource", "file": in, "topic": benchTopic,
			"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter": "org.apache.kafka.connect.storage.StringConverter",
		}}
		w := c.workers[i%len(c.workers)]
		for {
			code, b, err := httpDo(w.url()+"/connectors", http.MethodPost, body)
			if err != nil {
				return retries, fmt.Errorf("POST /connectors %s to %s: %w", name, w.name, err)
			}
			if code == http.StatusCreated {
				break
			}
			if code != http.StatusConflict {
				return retries, fmt.Errorf("POST /connectors %s to %s: %d %s", name, w.name, code, b)
			}
			if gc, _, _ := httpDo(w.url()+"/connectors/"+name, http.MethodGet, nil); gc == http.StatusOK {
				break // an earlier attempt created it
			}
			retries++
			if err := benchproc.Sleep(ctx, 50*time.Millisecond); err != nil {
				return retries, err
			}
		}
	}
	return retries, nil
}

// placement is where each unit ("name" for a connector instance, "name/N"
// for a task) runs and in what state, as one worker reports it.
type placement struct {
	owner   map[string]string
	state   map[string]string
	byOwner map[string][]string
}

func getPlacement(url string) (placement, error) {
	pl := placement{owner: map[string]string{}, state: map[string]string{}, byOwner: map[string][]string{}}
	code, b, err := httpDo(url+"/connectors?expand=status", http.MethodGet, nil)
	if err != nil {
		return pl, err
	}
	if code != http.StatusOK {
		return pl, fmt.Errorf("GET /connectors?expand=status: %d %s", code, b)
	}
	type state struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	}
	var all map[string]struct {
		Status struct {
			Connector state `json:"connector"`
			Tasks     []struct {
				ID int `json:"id"`
				state
			} `json:"tasks"`
		} `json:"status"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return pl, err
	}
	add := func(unit string, s state) {
		pl.owner[unit], pl.state[unit] = s.WorkerID, s.State
		pl.byOwner[s.WorkerID] = append(pl.byOwner[s.WorkerID], unit)
	}
	for name, st := range all {
		add(name, st.Status.Connector)
		for _, t := range st.Status.Tasks {
			add(fmt.Sprintf("%s/%d", name, t.ID), t.state)
		}
	}
	return pl, nil
}

// waitAllRunning polls every 50 ms until want units run (RUNNING) on live
// workers, as the first live worker reports it.
func (c *cluster) waitAllRunning(ctx context.Context, want int) (placement, error) {
	liveIDs := map[string]bool{}
	for _, w := range c.live() {
		liveIDs[w.hp] = true
	}
	var last string
	for {
		pl, err := getPlacement(c.live()[0].url())
		if err == nil {
			ok := len(pl.owner) == want
			for u, s := range pl.state {
				if s != "RUNNING" || !liveIDs[pl.owner[u]] {
					ok = false
					last = fmt.Sprintf("%s is %s on %q", u, s, pl.owner[u])
					break
				}
			}
			if ok {
				return pl, nil
			}
			if len(pl.owner) != want {
				last = fmt.Sprintf("%d units of %d", len(pl.owner), want)
			}
		} else {
			last = err.Error()
		}
		for _, w := range c.live() {
			if err := w.p.Alive(); err != nil {
				return pl, err
			}
		}
		if err := benchproc.Sleep(ctx, 50*time.Millisecond); err != nil {
			return pl, fmt.Errorf("waiting for %d units RUNNING: %w (last: %s)", want, err, last)
		}
	}
}

var assignmentRE = regexp.MustCompile(`msg=assignment generation=(\d+) leader=http://(\S+)`)

// leader returns the worker id of the leader of the newest generation the
// live workers logged.
func (c *cluster) leader() string {
	best, leader := -1, ""
	for _, w := range c.live() {
		b, _ := os.ReadFile(w.p.LogPath)
		for _, m := range assignmentRE.FindAllSubmatch(b, -1) {
			if g, _ := strconv.Atoi(string(m[1])); g > best {
				best, leader = g, string(m[2])
			}
		}
	}
	return leader
}
