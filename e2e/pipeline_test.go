package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFilePipelineMillionLines moves 1,000,000 100-byte lines from a file
// source through a topic to a file sink, between a broker process and a
// worker process, and checks every line arrives exactly once, in order.
func TestFilePipelineMillionLines(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
		t.Logf("-short: %d lines instead of 1,000,000", n)
	}
	c := startCluster(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	writeInput(t, in, n)

	start := time.Now()
	c.startPipeline(in, out, "lines")
	lc := &lineCounter{path: out}
	c.waitLines(lc, n, 3*time.Minute)
	elapsed := time.Since(start)
	t.Logf("%d lines (%d MB) source -> topic -> sink in %v: %.0f lines/s, %.1f MB/s",
		n, n*(lineLen+1)>>20, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
		float64(n*(lineLen+1))/(1<<20)/elapsed.Seconds())
	checkSink(t, out, n, true)
}

// waitComplete waits until the sink file ends with the last input line:
// the source reads the file in order and the sink writes the topic in
// order, so every line has then arrived at least once.
func (c *cluster) waitComplete(out string, n int, timeout time.Duration) {
	c.t.Helper()
	want := []byte(makeLine(n-1) + "\n")
	waitFor(c.t, timeout, fmt.Sprintf("the last line (%d) in %s", n-1, out), func() (bool, string) {
		if c.worker.exited() {
			c.t.Fatalf("the worker exited: %v", c.worker.waitErr)
		}
		f, err := os.Open(out)
		if err != nil {
			return false, err.Error()
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() < int64(len(want)) {
			return false, fmt.Sprintf("size %d, err %v", st.Size(), err)
		}
		tail := make([]byte, len(want))
		if _, err := f.ReadAt(tail, st.Size()-int64(len(want))); err != nil && err != io.EOF {
			return false, err.Error()
		}
		return bytes.Equal(tail, want), fmt.Sprintf("size %d, tail %.20q", st.Size(), tail)
	})
}

// TestWorkerKill9MidStream kills the worker with SIGKILL while lines flow,
// restarts it, and checks that no line is lost (at-least-once: the replay
// of uncommitted work may duplicate some, which are counted and logged).
func TestWorkerKill9MidStream(t *testing.T) {
	n := 500_000
	if testing.Short() {
		n = 200_000
	}
	c := startCluster(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	writeInput(t, in, n)
	c.startPipeline(in, out, "lines")
	lc := &lineCounter{path: out}
	c.waitLines(lc, 100_000, 2*time.Minute)

	old := c.worker
	children := pluginChildren(t, old.cmd.Process.Pid)
	if len(children) == 0 {
		t.Fatalf("found no tributary-connector-file child of the worker (pid %d)", old.cmd.Process.Pid)
	}
	before, _ := lc.count()
	// SIGKILL the worker alone: its plugin processes must notice their
	// parent's death and exit on their own (no orphans). The process group
	// is killed afterwards anyway, so that no orphan keeps writing to the
	// sink file if that check fails.
	if err := syscall.Kill(old.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.done
	orphans := children
	deadline := time.Now().Add(5 * time.Second)
	for len(orphans) > 0 && time.Now().Before(deadline) {
		orphans = alive(orphans)
		time.Sleep(100 * time.Millisecond)
	}
	if len(orphans) > 0 {
		t.Errorf("%d of %d plugin processes %v outlived the SIGKILLed worker by 5 s", len(orphans), len(children), orphans)
	} else {
		t.Logf("all %d plugin processes exited with the SIGKILLed worker", len(children))
	}
	old.kill9()
	t.Logf("worker killed with %d lines in the sink", before)

	restart := time.Now()
	c.startWorker()
	c.waitRunning(srcName, 60*time.Second)
	c.waitRunning(sinkName, 60*time.Second)
	c.waitComplete(out, n, 3*time.Minute)
	t.Logf("after the restart the pipeline completed in %v", time.Since(restart).Round(time.Millisecond))
	rep := checkSink(t, out, n, false)
	t.Logf("duplicates replayed: %d (sink file: %d lines for %d input lines, %d torn)", rep.duplicates, rep.lines, n, rep.torn)
}

// alive returns the pids of pids that still run (and are not zombies).
func alive(pids []int) []int {
	var out []int
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i >= 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// TestPluginCrashMidBatchFailsTaskAndRestartRecovers SIGKILLs every plugin
// process of the worker mid-stream: the tasks must turn FAILED with a trace
// naming the plugin process's exit while the worker keeps serving REST; a
// restart of both connectors with their tasks resumes, and every line
// arrives.
func TestPluginCrashMidBatchFailsTaskAndRestartRecovers(t *testing.T) {
	n := 300_000
	c := startCluster(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	writeInput(t, in, n)
	c.startPipeline(in, out, "lines")
	lc := &lineCounter{path: out}
	c.waitLines(lc, 50_000, 2*time.Minute)

	pid := c.worker.cmd.Process.Pid
	children := pluginChildren(t, pid)
	if len(children) < 2 {
		t.Fatalf("want at least 2 tributary-connector-file children of the worker (pid %d), found %v", pid, children)
	}
	for _, child := range children {
		if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", child, err)
		}
	}
	t.Logf("killed %d plugin processes %v with %d lines in the sink", len(children), children, func() int { n, _ := lc.count(); return n }())

	for _, name := range []string{srcName, sinkName} {
		waitFor(t, 60*time.Second, name+" tasks FAILED with a plugin-exit trace", func() (bool, string) {
			st, err := c.status(name)
			if err != nil {
				return false, err.Error()
			}
			ok := len(st.Tasks) > 0
			for _, task := range st.Tasks {
				ok = ok && task.State == "FAILED" && strings.Contains(task.Trace, "plugin process exited")
			}
			return ok, fmt.Sprintf("%+v", st)
		})
		st, _ := c.status(name)
		t.Logf("%s: connector %s, task 0 %s, trace: %.300s", name, st.Connector.State, st.Tasks[0].State, st.Tasks[0].Trace)
	}
	if c.worker.exited() {
		t.Fatalf("the worker exited after its plugins died: %v", c.worker.waitErr)
	}
	mustHTTP(t, c.rest+"/", http.MethodGet, nil, http.StatusOK)

	for _, name := range []string{sinkName, srcName} {
		code, body, err := httpDo(c.rest+"/connectors/"+name+"/restart?includeTasks=true", http.MethodPost, nil)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("restart %s: status %d, err %v: %s", name, code, err, body)
		}
	}
	c.waitRunning(srcName, 60*time.Second)
	c.waitRunning(sinkName, 60*time.Second)
	c.waitComplete(out, n, 2*time.Minute)
	rep := checkSink(t, out, n, false)
	t.Logf("duplicates replayed: %d (sink file: %d lines for %d input lines, %d torn)", rep.duplicates, rep.lines, n, rep.torn)
}
