package herder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/worker/herder"
)

// Three workers of one group share the connectors: each runs some, every
// connector and task runs exactly once (its status names its owner), and
// when a worker leaves, its work runs on the others and no line is lost.
func TestWorkersShareAndTakeOverWork(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend.Name, func(t *testing.T) {
			testShareAndTakeOver(t, backend.Start(t)[0])
		})
	}
}

func testShareAndTakeOver(t *testing.T, addr string) {
	fast := func(c *herder.Config) {
		c.Cluster = herder.ClusterConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
			ScheduledRebalanceMaxDelay: -1}
	}
	// kfake does not create topics on first use (Kafka and this broker
	// do by default): create them.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(context.Background(), 1, -1, nil, "share-t0", "share-t1", "share-t2"); err != nil {
		t.Fatal(err)
	}
	group := "share"
	ws := []*worker{startWorkerWith(t, addr, group, fast), startWorkerWith(t, addr, group, fast), startWorkerWith(t, addr, group, fast)}
	dir := t.TempDir()
	const pairs = 3
	in := func(i int) string { return filepath.Join(dir, fmt.Sprintf("in%d.txt", i)) }
	out := func(i int) string { return filepath.Join(dir, fmt.Sprintf("out%d.txt", i)) }
	var names []string
	for i := 0; i < pairs; i++ {
		appendLines(t, in(i), numbered(fmt.Sprintf("p%d", i), 0, 99)...)
		// Requests go to different workers: any worker takes config writes.
		ws[i%3].createSource(fmt.Sprintf("src%d", i), in(i), fmt.Sprintf("share-t%d", i))
		ws[(i+1)%3].createSink(fmt.Sprintf("snk%d", i), out(i), fmt.Sprintf("share-t%d", i))
		names = append(names, fmt.Sprintf("src%d", i), fmt.Sprintf("snk%d", i))
	}
	owners := func(from *worker) map[string][]string {
		byWorker := map[string][]string{}
		for _, n := range names {
			st := from.status(n)
			byWorker[st.Connector.WorkerID] = append(byWorker[st.Connector.WorkerID], n)
			for _, ts := range st.Tasks {
				byWorker[ts.WorkerID] = append(byWorker[ts.WorkerID], fmt.Sprintf("%s-%d", n, ts.ID))
			}
		}
		return byWorker
	}
	// 6 connectors + 6 tasks over 3 workers: 4 units each once settled.
	waitFor(t, 30*time.Second, "work spread over the three workers", func() (bool, string) {
		o := owners(ws[0])
		for _, w := range ws {
			if len(o[w.id]) != 4 {
				return false, fmt.Sprint(o)
			}
		}
		for _, n := range names {
			st := ws[2].status(n)
			if st.Connector.State != "RUNNING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RUNNING" {
				return false, fmt.Sprintf("%s: %+v", n, st)
			}
		}
		return true, ""
	})
	for i := 0; i < pairs; i++ {
		waitLines(t, out(i), numbered(fmt.Sprintf("p%d", i), 0, 99))
	}

	// Restarting a task works from any worker: the request reaches the
	// worker running it (through the leader).
	hist := &statusHistory{addr: addr, topic: group + "-status"}
	mark := hist.end(t)
	for _, w := range ws {
		w.expect("POST", "/connectors/src0/tasks/0/restart", nil, http.StatusNoContent, nil)
		w.expect("POST", "/connectors/src0/restart", nil, http.StatusNoContent, nil)
	}
	waitFor(t, 10*time.Second, "three restarts of src0's task and instance, by their owners", func() (bool, string) {
		recs := hist.since(t, mark)
		n, c := recs.count("src0", 0, "RESTARTING"), recs.count("src0", -1, "RESTARTING")
		return n == 3 && c == 3, fmt.Sprintf("task RESTARTING %d, connector RESTARTING %d", n, c)
	})
	// A restart with includeTasks is a restart request every worker serves.
	mark = hist.end(t)
	ws[1].expect("POST", "/connectors/snk1/restart?includeTasks=true", nil, http.StatusAccepted, nil)
	waitFor(t, 10*time.Second, "snk1 and its task restarted", func() (bool, string) {
		recs := hist.since(t, mark)
		return recs.count("snk1", 0, "RESTARTING") == 1 && recs.count("snk1", -1, "RESTARTING") == 1, fmt.Sprint(recs)
	})
	ws[0].waitState("src0", "RUNNING", "RUNNING")
	ws[0].waitState("snk1", "RUNNING", "RUNNING")

	// Task reconfiguration through a follower (each request goes to a
	// different worker, so at least one is forwarded to the leader):
	// only that connector's work restarts; other work may move to keep
	// the workers balanced (14 units now), but nothing restarts in place.
	ownerBefore := map[string]string{}
	for _, n := range names {
		st := ws[0].status(n)
		ownerBefore[n+"/-1"] = st.Connector.WorkerID
		for _, ts := range st.Tasks {
			ownerBefore[fmt.Sprintf("%s/%d", n, ts.ID)] = ts.WorkerID
		}
	}
	mark = hist.end(t)
	ws[2].expect("PUT", "/connectors/snk2/config", map[string]string{
		"connector.class": "FileStreamSink", "file": out(2), "topics": "share-t2", "tasks.max": "3",
		"key.converter":   "org.apache.kafka.connect.storage.StringConverter",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
	}, http.StatusOK, nil)
	waitFor(t, 20*time.Second, "snk2 with three RUNNING tasks", func() (bool, string) {
		st := ws[0].status("snk2")
		if len(st.Tasks) != 3 {
			return false, fmt.Sprintf("%+v", st)
		}
		for _, ts := range st.Tasks {
			if ts.State != "RUNNING" {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
	time.Sleep(500 * time.Millisecond) // let any stray restart show
	for _, rec := range hist.since(t, mark) {
		unit := fmt.Sprintf("%s/%d", rec.connector, rec.task)
		if rec.connector != "snk2" && rec.state() == "RUNNING" && rec.worker() == ownerBefore[unit] {
			t.Errorf("reconfiguring snk2 restarted %s in place: %s", rec.key, rec.value)
		}
	}

	// A worker leaves: everything runs on the other two within seconds.
	gone := ws[1]
	gone.close()
	start := time.Now()
	waitFor(t, 20*time.Second, "the departed worker's work running elsewhere", func() (bool, string) {
		o := owners(ws[0])
		if len(o[gone.id]) > 0 || len(o[ws[0].id])+len(o[ws[2].id]) != 14 {
			return false, fmt.Sprint(o)
		}
		for _, n := range names {
			st := ws[0].status(n)
			if st.Connector.State != "RUNNING" || len(st.Tasks) == 0 {
				return false, fmt.Sprintf("%s: %+v", n, st)
			}
			for _, ts := range st.Tasks {
				if ts.State != "RUNNING" {
					return false, fmt.Sprintf("%s: %+v", n, st)
				}
			}
		}
		return true, ""
	})
	t.Logf("failover after a graceful leave: %v", time.Since(start).Round(time.Millisecond))
	// Its tasks went UNASSIGNED (written by it as it stopped them, and by
	// the leader) before RUNNING on their new owner.
	recs := hist.since(t, nil)
	moved := 0
	for _, n := range names {
		last := recs.lastByWorker(n, 0, gone.id)
		if last == nil {
			continue
		}
		moved++
		if last.state() != "UNASSIGNED" {
			t.Errorf("%s-0: the departed worker's last status is %s", n, last.value)
		}
	}
	if moved == 0 {
		t.Error("the departed worker ran no task (the test proves nothing)")
	}
	for i := 0; i < pairs; i++ {
		appendLines(t, in(i), numbered(fmt.Sprintf("p%d", i), 100, 199)...)
	}
	for i := 0; i < pairs; i++ {
		got := readLinesEventually(t, out(i), 200)
		want := numbered(fmt.Sprintf("p%d", i), 0, 199)
		if missing := missingLines(got, want); len(missing) > 0 {
			t.Fatalf("out%d lost %d lines, first %q", i, len(missing), missing[0])
		}
	}
}

// readLinesEventually waits until path holds at least n lines.
func readLinesEventually(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	waitFor(t, 20*time.Second, fmt.Sprintf("%d lines in %s", n, path), func() (bool, string) {
		lines = readLines(t, path)
		return len(lines) >= n, fmt.Sprintf("%d lines", len(lines))
	})
	return lines
}

func missingLines(got, want []string) []string {
	have := map[string]bool{}
	for _, l := range got {
		have[l] = true
	}
	var missing []string
	for _, l := range want {
		if !have[l] {
			missing = append(missing, l)
		}
	}
	sort.Strings(missing)
	return missing
}

// statusHistory reads the status topic's records (every write, not just
// the latest per key) with a plain Kafka client.
type statusHistory struct {
	addr, topic string
}

type statusRecord struct {
	key, value, connector string
	task                  int // -1: the connector instance
	offset                int64
	partition             int32
}

func (r statusRecord) state() string {
	var v struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal([]byte(r.value), &v)
	return v.State
}

func (r statusRecord) worker() string {
	var v struct {
		WorkerID string `json:"worker_id"`
	}
	_ = json.Unmarshal([]byte(r.value), &v)
	return v.WorkerID
}

type statusRecords []statusRecord

func (rs statusRecords) count(connector string, task int, state string) int {
	n := 0
	for _, r := range rs {
		if r.connector == connector && r.task == task && r.state() == state {
			n++
		}
	}
	return n
}

// lastByWorker returns the last status of connector's task written by worker.
func (rs statusRecords) lastByWorker(connector string, task int, worker string) *statusRecord {
	var last *statusRecord
	for i := range rs {
		if rs[i].connector == connector && rs[i].task == task && rs[i].worker() == worker {
			last = &rs[i]
		}
	}
	return last
}

// end returns the topic's end offsets: a mark for since.
func (h *statusHistory) end(t *testing.T) map[int32]int64 {
	mark := map[int32]int64{}
	for _, r := range h.since(t, nil) {
		mark[r.partition] = max(mark[r.partition], r.offset+1)
	}
	return mark
}

// since returns the records written after mark (nil: all), in partition
// then offset order (write order per key).
func (h *statusHistory) since(t *testing.T, mark map[int32]int64) statusRecords {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, h.topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	offs := map[int32]kgo.Offset{}
	for p := range want {
		offs[p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{h.topic: offs})
	got := map[int32]int64{}
	var all statusRecords
	for len(want) > 0 {
		done := true
		for p, end := range want {
			if got[p] < end {
				done = false
			}
		}
		if done {
			break
		}
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v", h.topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = r.Offset + 1
			if r.Offset >= want[r.Partition] || r.Offset < mark[r.Partition] {
				return
			}
			rec := statusRecord{key: string(r.Key), value: string(r.Value), offset: r.Offset, partition: r.Partition, task: -1}
			switch {
			case strings.HasPrefix(rec.key, "status-connector-"):
				rec.connector = strings.TrimPrefix(rec.key, "status-connector-")
			case strings.HasPrefix(rec.key, "status-task-"):
				rest := strings.TrimPrefix(rec.key, "status-task-")
				i := strings.LastIndexByte(rest, '-')
				rec.connector = rest[:i]
				rec.task, _ = strconv.Atoi(rest[i+1:])
			default:
				return
			}
			all = append(all, rec)
		})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].partition != all[j].partition {
			return all[i].partition < all[j].partition
		}
		return all[i].offset < all[j].offset
	})
	return all
}
