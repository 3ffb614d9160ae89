package herder_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/worker/herder"
)

// TestWorkerRestart closes a worker while a file is being written and
// opens a new one on the same internal topics: every connector comes back
// in its target state, the source resumes from its stored offset and the
// sink from its committed one, so no line is lost and the few duplicates
// are bounded by one offset flush interval.
func TestWorkerRestart(t *testing.T) {
	addr := testkafka.Broker(t)
	dir := t.TempDir()
	in, out, idle := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt"), filepath.Join(dir, "idle.txt")
	appendLines(t, idle, "never-read")

	w1 := startWorker(t, addr, "restart-test")
	w1.createSource("rs-src", in, "rs-lines")
	w1.createSink("rs-sink", out, "rs-lines")
	// Two sources of another file into the same topic, created paused and
	// stopped (Kafka's initial_state): their file must never be read.
	for _, c := range []struct{ name, state string }{{"rs-idle", "PAUSED"}, {"rs-stopped", "STOPPED"}} {
		w1.expect("POST", "/connectors", fmt.Sprintf(`{"name":%q,"initial_state":%q,"config":{"connector.class":"FileStreamSource",
			"file":%q,"topic":"rs-lines","value.converter":"org.apache.kafka.connect.storage.StringConverter"}}`, c.name, c.state, idle),
			http.StatusCreated, nil)
	}
	w1.waitState("rs-idle", "PAUSED", "")
	w1.waitState("rs-stopped", "STOPPED", "")

	// A writer appends a line every 5 ms across the restart.
	const every = 5 * time.Millisecond
	stop, done := make(chan struct{}), make(chan error, 1)
	written := 0
	go func(stop <-chan struct{}) {
		f, err := os.OpenFile(in, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			written++
			if _, err := fmt.Fprintf(f, "w-%d\n", written); err != nil {
				done <- err
				return
			}
		}
	}(stop)
	stopWriter := func() {
		if stop != nil {
			close(stop)
			stop = nil
			if err := <-done; err != nil {
				t.Errorf("the writer failed: %v", err)
			}
		}
	}
	defer stopWriter()

	waitFor(t, 10*time.Second, "lines to flow before the restart", func() (bool, string) {
		n := len(readLines(t, out))
		return n >= 20, fmt.Sprint(n, " lines")
	})
	w1.close()
	time.Sleep(300 * time.Millisecond) // the writer carries on while no worker runs

	w2 := startWorker(t, addr, "restart-test")
	var names []string
	w2.expect("GET", "/connectors", nil, http.StatusOK, &names)
	if want := []string{"rs-idle", "rs-sink", "rs-src", "rs-stopped"}; !slices.Equal(names, want) {
		t.Errorf("connectors after the restart = %v, want %v", names, want)
	}
	for _, n := range []string{"rs-src", "rs-sink"} {
		waitFor(t, 20*time.Second, n+" to run on the new worker", func() (bool, string) {
			st := w2.status(n)
			ok := st.Connector.State == "RUNNING" && st.Connector.WorkerID == w2.id && len(st.Tasks) == 1 &&
				st.Tasks[0].State == "RUNNING" && st.Tasks[0].WorkerID == w2.id
			return ok, fmt.Sprintf("%+v", st)
		})
	}
	w2.waitState("rs-idle", "PAUSED", "")
	w2.waitState("rs-stopped", "STOPPED", "")
	time.Sleep(200 * time.Millisecond)
	stopWriter()

	want := numbered("w", 1, written)
	var got []string
	waitFor(t, 20*time.Second, fmt.Sprintf("all %d lines in the sink file", written), func() (bool, string) {
		got = readLines(t, out)
		seen := map[string]bool{}
		for _, l := range got {
			seen[l] = true
		}
		for _, l := range want {
			if !seen[l] {
				return false, fmt.Sprintf("%d lines, %s missing", len(got), l)
			}
		}
		return true, ""
	})
	// Lines arrive in order; a duplicate can only be a replay of a suffix.
	dups, next := 0, 1
	for _, l := range got {
		var n int
		if _, err := fmt.Sscanf(l, "w-%d", &n); err != nil {
			t.Fatalf("unexpected line %q", l)
		}
		if n < next {
			dups++
			continue
		}
		if n != next {
			t.Fatalf("line %s arrived before w-%d", l, next)
		}
		next++
	}
	maxDups := int(200*time.Millisecond/every) + 1
	t.Logf("%d lines written, %d delivered, %d duplicates", written, len(got), dups)
	if dups > maxDups {
		t.Errorf("%d duplicates, want at most one flush interval's worth (%d)", dups, maxDups)
	}
	if strings.Contains(strings.Join(got, "\n"), "never-read") {
		t.Errorf("a paused or stopped connector's file was delivered")
	}

	// The new worker still serves the source's offset and moves new lines.
	appendLines(t, in, "after-restart")
	waitFor(t, 10*time.Second, "a line appended after the restart", func() (bool, string) {
		l := readLines(t, out)
		return len(l) > 0 && l[len(l)-1] == "after-restart", fmt.Sprint(len(l), " lines")
	})
	size, err := os.Stat(in)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the stored source offset to reach the file's end", func() (bool, string) {
		o := w2.offsets("rs-src")
		return len(o.Offsets) == 1 && o.Offsets[0].Offset["position"] == float64(size.Size()), fmt.Sprintf("%+v", o)
	})
}

// Open against an unreachable broker fails with an error (the worker command
// retries), releasing what it opened: it must not panic.
func TestOpenWithoutKafkaFailsCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	h, err := herder.Open(ctx, herder.Config{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", WorkerID: "w:1", PluginPath: filePluginDir(t),
		ConfigTopic: "c", OffsetTopic: "o", StatusTopic: "s"})
	if err == nil {
		h.Close()
		t.Fatal("Open succeeded without a broker")
	}
}
