package herder_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
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

	// A worker leaves: everything runs on the other two within seconds.
	gone := ws[1]
	gone.close()
	start := time.Now()
	waitFor(t, 20*time.Second, "the departed worker's work running elsewhere", func() (bool, string) {
		o := owners(ws[0])
		if len(o[gone.id]) > 0 || len(o[ws[0].id])+len(o[ws[2].id]) != 12 {
			return false, fmt.Sprint(o)
		}
		for _, n := range names {
			st := ws[0].status(n)
			if st.Connector.State != "RUNNING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RUNNING" {
				return false, fmt.Sprintf("%s: %+v", n, st)
			}
		}
		return true, ""
	})
	t.Logf("failover after a graceful leave: %v", time.Since(start).Round(time.Millisecond))
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
