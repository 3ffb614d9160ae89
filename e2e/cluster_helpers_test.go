package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Worker clusters: several `tributary worker` processes sharing a group id,
// against a broker process (this repo's or kfake), with file pipelines
// whose sinks run several tasks.

// Membership timings of every worker of these tests: a short session so that
// failures are detected within seconds, and a departed worker's work moves
// at once.
var fastMembership = []string{
	"session.timeout.ms=6000", "heartbeat.interval.ms=1000", "rebalance.timeout.ms=20000",
	"scheduled.rebalance.max.delay.ms=0", "offset.flush.interval.ms=1000",
}

// workerNode is one worker of a workerCluster: a REST address (which is also
// its worker id, as statuses show it) that outlives its processes.
type workerNode struct {
	name   string
	hp     string // REST host:port = worker id
	url    string // http://hp
	p      *proc  // the current process
	starts int
}

// workerCluster is a group of worker processes. Its processes belong to
// owner (the top-level test), so they outlive the subtests that start them.
type workerCluster struct {
	owner   *testing.T
	dir     string
	kafka   string // bootstrap servers, comma-separated
	group   string
	sets    []string // --set key=value of every worker
	mu      sync.Mutex
	workers []*workerNode
}

func newWorkerCluster(owner *testing.T, kafka, group string, sets ...string) *workerCluster {
	return &workerCluster{owner: owner, dir: owner.TempDir(), kafka: kafka, group: group, sets: sets}
}

// addWorkers starts n new workers at once and waits until each is healthy.
func (c *workerCluster) addWorkers(t *testing.T, n int) []*workerNode {
	t.Helper()
	var ws []*workerNode
	for i := 0; i < n; i++ {
		c.mu.Lock()
		w := &workerNode{name: fmt.Sprintf("worker%d", len(c.workers)), hp: freeAddr(t)}
		w.url = "http://" + w.hp
		c.workers = append(c.workers, w)
		c.mu.Unlock()
		c.launch(t, w)
		ws = append(ws, w)
	}
	for _, w := range ws {
		waitHealthy(t, w.url, w.p, 60*time.Second)
	}
	return ws
}

// launch starts w's process (again), without waiting for it.
func (c *workerCluster) launch(t *testing.T, w *workerNode) {
	t.Helper()
	w.starts++
	args := []string{"worker", "--bootstrap-servers", c.kafka, "--group-id", c.group, "--rest-listen", w.hp, "--plugin-path", binDir}
	for _, s := range c.sets {
		args = append(args, "--set", s)
	}
	p, err := spawn(c.owner, c.dir, fmt.Sprintf("%s-run%d", w.name, w.starts), filepath.Join(binDir, "tributary"), args...)
	if err != nil {
		t.Fatal(err)
	}
	w.p = p
}

// restart starts w again on the same address and waits until it is healthy.
func (c *workerCluster) restart(t *testing.T, w *workerNode) {
	t.Helper()
	c.launch(t, w)
	waitHealthy(t, w.url, w.p, 60*time.Second)
}

// live returns the workers whose process runs.
func (c *workerCluster) live() []*workerNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*workerNode
	for _, w := range c.workers {
		if w.p != nil && !w.p.exited() {
			out = append(out, w)
		}
	}
	return out
}

func (c *workerCluster) byID(id string) *workerNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.workers {
		if w.hp == id {
			return w
		}
	}
	return nil
}

// assignmentRE matches the herder's log line for a new assignment.
var assignmentRE = regexp.MustCompile(`msg=assignment generation=(\d+) leader=http://(\S+)`)

// leader returns the worker id of the leader of the newest generation any
// live worker logged an assignment for.
func (c *workerCluster) leader() (string, error) {
	best, leader := -1, ""
	for _, w := range c.live() {
		b, err := os.ReadFile(w.p.logPath)
		if err != nil {
			return "", err
		}
		for _, m := range assignmentRE.FindAllSubmatch(b, -1) {
			if g, _ := strconv.Atoi(string(m[1])); g > best {
				best, leader = g, string(m[2])
			}
		}
	}
	if leader == "" {
		return "", fmt.Errorf("no worker logged an assignment")
	}
	return leader, nil
}

// unit names a connector instance ("name") or a task ("name/3").
func taskUnit(conn string, task int) string { return fmt.Sprintf("%s/%d", conn, task) }

// placement is where every connector and task runs, as one worker's REST
// API reports it.
type placement struct {
	owner   map[string]string   // unit -> worker id
	state   map[string]string   // unit -> state
	byOwner map[string][]string // worker id -> units, sorted
	tasks   map[string]int      // worker id -> tasks (not connector instances)
}

// expandedStatus is GET /connectors?expand=status.
type expandedStatus map[string]struct {
	Status connectorStatus `json:"status"`
}

func getPlacement(url string) (placement, error) {
	pl := placement{owner: map[string]string{}, state: map[string]string{}, byOwner: map[string][]string{}, tasks: map[string]int{}}
	code, b, err := httpDo(url+"/connectors?expand=status", http.MethodGet, nil)
	if err != nil {
		return pl, err
	}
	if code != http.StatusOK {
		return pl, fmt.Errorf("GET /connectors?expand=status: %d %s", code, b)
	}
	var all expandedStatus
	if err := json.Unmarshal(b, &all); err != nil {
		return pl, err
	}
	add := func(unit, owner, state string) {
		pl.owner[unit], pl.state[unit] = owner, state
		pl.byOwner[owner] = append(pl.byOwner[owner], unit)
	}
	for name, st := range all {
		add(name, st.Status.Connector.WorkerID, st.Status.Connector.State)
		for _, task := range st.Status.Tasks {
			add(taskUnit(name, task.ID), task.WorkerID, task.State)
			pl.tasks[task.WorkerID]++
		}
	}
	for _, units := range pl.byOwner {
		sort.Strings(units)
	}
	return pl, nil
}

func (pl placement) String() string {
	var ids []string
	for id := range pl.byOwner {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "\n  %s: %d units (%d tasks):", id, len(pl.byOwner[id]), pl.tasks[id])
		for _, u := range pl.byOwner[id] {
			fmt.Fprintf(&b, " %s=%s", u, pl.state[u])
		}
	}
	return b.String()
}

// settledCheck reports whether, seen from every live worker, the wantUnits
// units all run (RUNNING) on live workers, spread evenly (the most and the
// least loaded live worker differ by at most one unit), and each live worker
// has exactly as many plugin processes as units it is said to run (one
// process per connector instance and per task: a task running twice, or a
// leftover instance, shows as an extra process).
func (c *workerCluster) settledCheck(t *testing.T, wantUnits int) (bool, string, placement) {
	live := c.live()
	var first placement
	for i, w := range live {
		pl, err := getPlacement(w.url)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", w.name, err), pl
		}
		if i == 0 {
			first = pl
		} else if fmt.Sprint(pl.owner, pl.state) != fmt.Sprint(first.owner, first.state) {
			return false, fmt.Sprintf("%s and %s disagree:%v\nversus%v", live[0].name, w.name, first, pl), first
		}
	}
	pl := first
	if len(pl.owner) != wantUnits {
		return false, fmt.Sprintf("%d units, want %d:%v", len(pl.owner), wantUnits, pl), pl
	}
	for u, s := range pl.state {
		if s != "RUNNING" {
			return false, fmt.Sprintf("%s is %s:%v", u, s, pl), pl
		}
		if w := c.byID(pl.owner[u]); w == nil || w.p.exited() {
			return false, fmt.Sprintf("%s runs on %q, not a live worker:%v", u, pl.owner[u], pl), pl
		}
	}
	lo, hi := wantUnits, 0
	for _, w := range live {
		n := len(pl.byOwner[w.hp])
		lo, hi = min(lo, n), max(hi, n)
		if procs := pluginChildren(t, w.p.cmd.Process.Pid); len(procs) != n {
			return false, fmt.Sprintf("%s (%s) has %d plugin processes for %d units:%v", w.name, w.hp, len(procs), n, pl), pl
		}
	}
	if hi-lo > 1 {
		return false, fmt.Sprintf("unbalanced (%d to %d units per worker):%v", lo, hi, pl), pl
	}
	return true, pl.String(), pl
}

// waitSettled waits for settledCheck and returns the placement.
func (c *workerCluster) waitSettled(t *testing.T, wantUnits int, timeout time.Duration) placement {
	t.Helper()
	var pl placement
	start := time.Now()
	what := fmt.Sprintf("%d units RUNNING, balanced over %d workers, one plugin process each", wantUnits, len(c.live()))
	deadline := time.Now().Add(timeout)
	for {
		ok, state, p := c.settledCheck(t, wantUnits)
		pl = p
		if ok {
			break
		}
		if time.Now().After(deadline) {
			var hist []string
			for u, s := range p.state {
				if s != "RUNNING" {
					hist = append(hist, statusHistory(t, c.kafka, u))
				}
			}
			t.Fatalf("timed out after %v waiting for %s; last state: %s\n%s", timeout, what, state, strings.Join(hist, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("settled in %v:%v", time.Since(start).Round(time.Millisecond), pl)
	return pl
}

// createConnector POSTs a connector to url, retrying while the cluster
// answers 409 (a rebalance in progress) unless the connector exists by then.
func createConnector(t *testing.T, url, name string, config map[string]string) {
	t.Helper()
	waitFor(t, 30*time.Second, "POST /connectors "+name, func() (bool, string) {
		code, b, err := httpDo(url+"/connectors", http.MethodPost, map[string]any{"name": name, "config": config})
		if err == nil && code == http.StatusConflict {
			if c, _, _ := httpDo(url+"/connectors/"+name, http.MethodGet, nil); c == http.StatusOK {
				return true, ""
			}
		}
		if err == nil && code != http.StatusCreated && code != http.StatusConflict {
			t.Fatalf("POST /connectors %s: %d %s", name, code, b)
		}
		return err == nil && code == http.StatusCreated, fmt.Sprintf("%d %s %v", code, b, err)
	})
}

// createTopics creates topics with the given partition count.
func createTopics(t *testing.T, kafka string, partitions int32, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatalf("creating topics %v: %v", topics, err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			t.Fatalf("creating topic %s: %v", r.Topic, r.Err)
		}
	}
}

// filePipeline is a file source (one task) into a topic of 3 partitions and
// a file sink with 3 tasks out of it: the sink's tasks append whole lines to
// the same file, in no particular order.
type filePipeline struct {
	src, sink, topic string
	in, out          string
	mu               sync.Mutex
	next             int // lines appended to in so far
	tr               *sinkTracker
}

const sinkTasks = 3

// unitsPerPipeline: the two connector instances, the source task and the
// sink's tasks.
const unitsPerPipeline = 2 + 1 + sinkTasks

func newPipelines(t *testing.T, dir string, n int) []*filePipeline {
	var ps []*filePipeline
	for i := 0; i < n; i++ {
		p := &filePipeline{src: fmt.Sprintf("src%d", i), sink: fmt.Sprintf("sink%d", i), topic: fmt.Sprintf("lines%d", i),
			in: filepath.Join(dir, fmt.Sprintf("in%d.txt", i)), out: filepath.Join(dir, fmt.Sprintf("out%d.txt", i))}
		p.tr = &sinkTracker{path: p.out}
		if err := os.WriteFile(p.in, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// create creates the pipeline's topic (3 partitions) and connectors,
// through the REST API of url.
func (p *filePipeline) create(t *testing.T, kafka, url string) {
	t.Helper()
	createTopics(t, kafka, 3, p.topic)
	str := "org.apache.kafka.connect.storage.StringConverter"
	createConnector(t, url, p.src, map[string]string{
		"connector.class": "FileStreamSource", "file": p.in, "topic": p.topic, "batch.size": "2000",
		"key.converter": str, "value.converter": str,
	})
	createConnector(t, url, p.sink, map[string]string{
		"connector.class": "FileStreamSink", "file": p.out, "topics": p.topic, "tasks.max": strconv.Itoa(sinkTasks),
		"key.converter": str, "value.converter": str,
	})
}

// appendLines appends the next k lines to the input file in one write and
// returns the first one's number.
func (p *filePipeline) appendLines(k int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b bytes.Buffer
	for i := p.next; i < p.next+k; i++ {
		b.WriteString(makeLine(i))
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(p.in, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	first := p.next
	p.next += k
	return first, nil
}

func (p *filePipeline) written() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

func mustAppend(t *testing.T, ps []*filePipeline, k int) {
	t.Helper()
	for _, p := range ps {
		if _, err := p.appendLines(k); err != nil {
			t.Fatal(err)
		}
	}
}

// sinkTracker reads a growing sink file incrementally and counts the
// occurrences of every line number. Lines are whole (the file sink writes
// whole lines); a partial last line is kept until its newline arrives.
type sinkTracker struct {
	path     string
	off      int64
	partial  []byte
	count    []uint16 // occurrences per line number
	distinct int
	dups     int
	bad      []string // the first malformed lines
}

func (s *sinkTracker) update() error {
	f, err := os.Open(s.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		s.off += int64(n)
		data := append(s.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			s.line(string(data[:i]))
			data = data[i+1:]
		}
		s.partial = append([]byte(nil), data...)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *sinkTracker) line(l string) {
	seq, err := strconv.Atoi(strings.SplitN(l, "|", 2)[0])
	if err != nil || seq < 0 || l != makeLine(seq) {
		if len(s.bad) < 5 {
			s.bad = append(s.bad, fmt.Sprintf("%.60q", l))
		}
		return
	}
	for len(s.count) <= seq {
		s.count = append(s.count, 0)
	}
	s.count[seq]++
	if s.count[seq] == 1 {
		s.distinct++
	} else {
		s.dups++
	}
}

// missing describes the first missing line numbers below n.
func (s *sinkTracker) missing(n int) string {
	var miss []string
	total := 0
	for i := 0; i < n; i++ {
		if i >= len(s.count) || s.count[i] == 0 {
			if len(miss) < 10 {
				miss = append(miss, strconv.Itoa(i))
			}
			total++
		}
	}
	return fmt.Sprintf("%d missing (first: %s)", total, strings.Join(miss, ","))
}

// waitDelivered waits until every line written to each pipeline's input so
// far is in its sink file, and fails on a malformed line.
func waitDelivered(t *testing.T, ps []*filePipeline, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	for _, p := range ps {
		want := p.written()
		waitFor(t, timeout-time.Since(start), fmt.Sprintf("%d lines of %s in %s", want, p.in, p.out), func() (bool, string) {
			if err := p.tr.update(); err != nil {
				return false, err.Error()
			}
			if len(p.tr.bad) > 0 {
				t.Fatalf("%s: malformed lines: %v", p.out, p.tr.bad)
			}
			return p.tr.distinct >= want, fmt.Sprintf("%d of %d distinct lines, %d duplicates; %s", p.tr.distinct, want, p.tr.dups, p.tr.missing(want))
		})
	}
	var dups []string
	for _, p := range ps {
		dups = append(dups, fmt.Sprintf("%s %d lines + %d duplicates", p.out[len(filepath.Dir(p.out))+1:], p.tr.distinct, p.tr.dups))
	}
	t.Logf("delivered within %v: %s", time.Since(start).Round(time.Millisecond), strings.Join(dups, ", "))
}

// topicCounts reads a topic from the start to its current end and counts
// the occurrences of every line number.
func topicCounts(t *testing.T, kafka, topic string) []int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	var counts []int
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (partitions left: %v)", topic, ctx.Err(), remaining)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset == end-1 {
				delete(remaining, r.Partition)
			}
			seq, err := strconv.Atoi(strings.SplitN(string(r.Value), "|", 2)[0])
			if err != nil || seq < 0 || string(r.Value) != makeLine(seq) {
				t.Fatalf("%s partition %d offset %d: unexpected value %.60q", topic, r.Partition, r.Offset, r.Value)
			}
			for len(counts) <= seq {
				counts = append(counts, 0)
			}
			counts[seq]++
		})
	}
	return counts
}

// exactlyOnce checks that the lines [from, to) occur exactly once in counts
// and returns a description of those that do not.
func exactlyOnce(counts []int, from, to int) (bad int, desc string) {
	var ex []string
	for i := from; i < to; i++ {
		n := 0
		if i < len(counts) {
			n = counts[i]
		}
		if n != 1 {
			bad++
			if len(ex) < 10 {
				ex = append(ex, fmt.Sprintf("%d x%d", i, n))
			}
		}
	}
	return bad, strings.Join(ex, ", ")
}

func sinkCounts(tr *sinkTracker) []int {
	out := make([]int, len(tr.count))
	for i, c := range tr.count {
		out[i] = int(c)
	}
	return out
}

// Kfake: a kfake cluster of three brokers as its own process
// (testdata/kfakecluster, built once on first use).
var (
	kfakeOnce sync.Once
	kfakeBin  string
	kfakeErr  error
)

func buildKfake(t *testing.T) string {
	t.Helper()
	kfakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tributary-e2e-kfake-")
		if err != nil {
			kfakeErr = err
			return
		}
		kfakeCleanup = func() { os.RemoveAll(dir) }
		kfakeBin = filepath.Join(dir, "kfakecluster")
		cmd := exec.Command("go", "build", "-o", kfakeBin, "./testdata/kfakecluster")
		if out, err := cmd.CombinedOutput(); err != nil {
			kfakeErr = fmt.Errorf("go build ./e2e/testdata/kfakecluster: %w\n%s", err, out)
		}
	})
	if kfakeErr != nil {
		t.Fatal(kfakeErr)
	}
	return kfakeBin
}

// kfakeCleanup removes the kfake build folder; TestMain calls it.
var kfakeCleanup = func() {}

// startKfake starts a 3-broker kfake process and returns the bootstrap
// servers (comma-separated).
func startKfake(t *testing.T) string {
	t.Helper()
	bin := buildKfake(t)
	p, err := spawn(t, t.TempDir(), "kfake", bin, "--brokers", "3")
	if err != nil {
		t.Fatal(err)
	}
	var addrs string
	waitFor(t, 30*time.Second, "kfake listening", func() (bool, string) {
		if p.exited() {
			t.Fatalf("kfake exited: %v", p.waitErr)
		}
		b, _ := os.ReadFile(p.logPath)
		line, _, ok := strings.Cut(string(b), "\n")
		if ok && strings.HasPrefix(line, "listening ") {
			addrs = strings.TrimPrefix(line, "listening ")
			return true, ""
		}
		return false, string(b)
	})
	return addrs
}

// statusHistory returns every record of the status topic (connect-status)
// about a unit ("conn" or "conn/task"), oldest first: who wrote which state
// with which generation, to explain a unit stuck in a state.
func statusHistory(t *testing.T, kafka, unit string) string {
	key := "status-connector-" + unit
	if i := strings.LastIndexByte(unit, '/'); i >= 0 {
		key = "status-task-" + unit[:i] + "-" + unit[i+1:]
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...), kgo.ConsumeTopics("connect-status"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Sprintf("status history of %s: %v", unit, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lines := []string{"status history of " + unit + " (" + key + "):"}
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == key {
				lines = append(lines, fmt.Sprintf("  %s offset %d: %s", r.Timestamp.Format("15:04:05.000"), r.Offset, r.Value))
			}
		})
	}
	return strings.Join(lines, "\n")
}
