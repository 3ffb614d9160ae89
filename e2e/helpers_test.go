package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/plugins"
)

// binDir is the folder holding tributary and tributary-connector-file, set
// by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, cleanup, err := findBinaries()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer cleanup()
	defer func() { kfakeCleanup() }()
	binDir = dir
	return m.Run()
}

// findBinaries returns the folder of $TRIBUTARY_BIN when set, else builds
// ./cmd/... from the repository root into a temporary folder.
func findBinaries() (string, func(), error) {
	nothing := func() {}
	if b := os.Getenv("TRIBUTARY_BIN"); b != "" {
		dir := filepath.Dir(b)
		for _, name := range []string{"tributary", "tributary-connector-file"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return "", nothing, fmt.Errorf("TRIBUTARY_BIN=%s: %w (run `make build` first)", b, err)
			}
		}
		return dir, nothing, nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", nothing, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", nothing, fmt.Errorf("repository root not found at %s: %w", root, err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", nothing, fmt.Errorf("the go tool is needed to build the binaries (or set TRIBUTARY_BIN): %w", err)
	}
	dir, err := os.MkdirTemp("", "tributary-e2e-bin-")
	if err != nil {
		return "", nothing, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nothing, fmt.Errorf("go build ./cmd/...: %w\n%s", err, out)
	}
	return dir, cleanup, nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a binary running as its own process group (so that killing the
// group also kills the plugin processes it started). Its stdout and stderr
// go to a log file, printed when the test fails.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when cmd.Wait returned
	waitErr error         // set before done is closed
}

// startProc starts bin/<binary> args... and registers a cleanup that kills
// its process group and waits for it.
func startProc(t *testing.T, name, binary string, args ...string) *proc {
	t.Helper()
	p, err := spawn(t, t.TempDir(), name, filepath.Join(binDir, binary), args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// spawn starts path args... with its output in logDir/<name>.log and
// registers on owner a cleanup that kills its process group, waits for it,
// and prints its log when owner failed. Unlike startProc it reports errors
// instead of failing the test, so that a subtest may start processes that
// outlive it (owner being the parent test).
func spawn(owner *testing.T, logDir, name, path string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{t: owner, name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	owner.Cleanup(func() {
		p.signalGroup(syscall.SIGCONT) // a stopped process group dies of SIGKILL too, but be explicit
		p.kill9()
		if owner.Failed() {
			p.printLog(150)
		}
	})
	return p, nil
}

// signalGroup sends sig to the process group (the process and the plugin
// processes it started).
func (p *proc) signalGroup(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// terminate sends SIGTERM to the process alone (not its group: a worker
// stops its plugin processes itself) and waits up to grace for it to exit.
// It reports whether the process exited on its own, with status 0; if it
// did not exit in time the group is killed. Either way, the process group
// is killed afterwards, so that no orphan survives.
func (p *proc) terminate(grace time.Duration) (graceful bool, err error) {
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		graceful = true
		err = p.waitErr
	case <-time.After(grace):
		err = fmt.Errorf("%s (pid %d) still running %v after SIGTERM", p.name, p.cmd.Process.Pid, grace)
	}
	p.kill9()
	return graceful && err == nil, err
}

// kill9 sends SIGKILL to the process group and waits for the leader to be
// reaped. It is idempotent.
func (p *proc) kill9() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s (pid %d) still running 30 s after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// printLog prints the last lines of the process's output; E2E_LOG_LINES
// raises the count (to debug a failure).
func (p *proc) printLog(lines int) {
	if n, err := strconv.Atoi(os.Getenv("E2E_LOG_LINES")); err == nil && n > lines {
		lines = n
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		p.t.Logf("%s log: %v", p.name, err)
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	p.t.Logf("---- last %d lines of %s (pid %d) output ----\n%s\n---- end of %s output ----",
		len(all), p.name, p.cmd.Process.Pid, strings.Join(all, "\n"), p.name)
}

// cluster is a broker process and one worker process.
type cluster struct {
	t       *testing.T
	dir     string
	kafka   string
	rest    string // http://host:port
	restHP  string
	group   string
	broker  *proc
	worker  *proc
	workers int // workers started so far (names their logs)
}

// startCluster starts a broker and a worker (offset.flush.interval.ms=1000)
// and waits until the worker is healthy.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), kafka: freeAddr(t), restHP: freeAddr(t), group: "e2e-" + strings.ToLower(t.Name())}
	c.rest = "http://" + c.restHP
	c.broker = startProc(t, "broker", "tributary", "broker", "--listen", c.kafka, "--data-dir", filepath.Join(c.dir, "broker"))
	c.startWorker()
	return c
}

// startWorker starts (or restarts) the worker with the same group id, REST
// address and broker, and waits for /health.
func (c *cluster) startWorker() {
	c.t.Helper()
	c.workers++
	c.worker = startProc(c.t, fmt.Sprintf("worker%d", c.workers), "tributary", "worker",
		"--bootstrap-servers", c.kafka, "--group-id", c.group, "--rest-listen", c.restHP,
		"--plugin-path", binDir, "--set", "offset.flush.interval.ms=1000")
	waitHealthy(c.t, c.rest, c.worker, 60*time.Second)
}

// waitHealthy polls GET /health until 200, failing early if p exits.
func waitHealthy(t *testing.T, base string, p *proc, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "GET /health 200", func() (bool, string) {
		if p.exited() {
			t.Fatalf("%s exited before becoming healthy: %v", p.name, p.waitErr)
		}
		code, body, err := httpDo(base+"/health", http.MethodGet, nil)
		return err == nil && code == http.StatusOK, fmt.Sprintf("status %d %s err %v", code, body, err)
	})
}

// waitFor polls cond every 100 ms until it holds or timeout passes; the
// string cond returns describes the last state for the failure message.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// httpDo sends body (JSON-encoded unless nil) and returns the status and
// response body.
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

// mustHTTP is httpDo that fails the test unless the status is want.
func mustHTTP(t *testing.T, url, method string, body any, want int) []byte {
	t.Helper()
	code, b, err := httpDo(url, method, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, code, want, b)
	}
	return b
}

// connectorStatus is GET /connectors/{c}/status.
type connectorStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID       int    `json:"id"`
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"tasks"`
}

func (c *cluster) status(name string) (connectorStatus, error) {
	var st connectorStatus
	code, b, err := httpDo(c.rest+"/connectors/"+name+"/status", http.MethodGet, nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("status %d: %s", code, b)
	}
	return st, json.Unmarshal(b, &st)
}

// waitRunning waits until the connector and all its tasks (at least one)
// are RUNNING.
func (c *cluster) waitRunning(name string, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, name+" RUNNING", func() (bool, string) {
		st, err := c.status(name)
		if err != nil {
			return false, err.Error()
		}
		ok := st.Connector.State == "RUNNING" && len(st.Tasks) > 0
		for _, task := range st.Tasks {
			ok = ok && task.State == "RUNNING"
		}
		return ok, fmt.Sprintf("%+v", st)
	})
}

// createTopic creates a one-partition topic, so the sink sees the source's
// order.
func createTopic(t *testing.T, kafka, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("creating topic %s: %v", topic, resp.Err)
	}
}

const (
	srcName  = "file-src"
	sinkName = "file-sink"
)

// startPipeline creates the topic and a file source (batch.size 2000) and
// file sink connector between in and out, and waits until both run.
func (c *cluster) startPipeline(in, out, topic string) {
	c.t.Helper()
	createTopic(c.t, c.kafka, topic)
	str := "org.apache.kafka.connect.storage.StringConverter"
	mustHTTP(c.t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": srcName, "config": map[string]string{
		"connector.class": "FileStreamSource", "file": in, "topic": topic, "batch.size": "2000",
		"key.converter": str, "value.converter": str,
	}}, http.StatusCreated)
	mustHTTP(c.t, c.rest+"/connectors", http.MethodPost, map[string]any{"name": sinkName, "config": map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "file": out, "topics": topic,
		"key.converter": str, "value.converter": str,
	}}, http.StatusCreated)
	c.waitRunning(srcName, 60*time.Second)
	c.waitRunning(sinkName, 60*time.Second)
}

// Input lines are lineLen bytes plus '\n': a 10-digit sequence number, '|',
// and a filler letter that depends on the number, so a mangled line is
// caught.
const lineLen = 99

func makeLine(seq int) string {
	return fmt.Sprintf("%010d|%s", seq, strings.Repeat(string(rune('a'+seq%26)), lineLen-11))
}

// writeInput writes lines 0..n-1 to path.
func writeInput(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		w.WriteString(makeLine(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// lineCounter counts the newlines of a growing file incrementally.
type lineCounter struct {
	path  string
	off   int64
	lines int
}

func (lc *lineCounter) count() (int, error) {
	f, err := os.Open(lc.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return lc.lines, err
	}
	defer f.Close()
	if _, err := f.Seek(lc.off, io.SeekStart); err != nil {
		return lc.lines, err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		lc.lines += bytes.Count(buf[:n], []byte{'\n'})
		lc.off += int64(n)
		if err == io.EOF {
			return lc.lines, nil
		}
		if err != nil {
			return lc.lines, err
		}
	}
}

// sinkReport is what checkSink found in the sink file.
type sinkReport struct {
	lines      int // lines in the file
	duplicates int // lines whose sequence number appeared before
	torn       int // lines that started with the torn tail of a line cut by a crash
}

// checkSink verifies that the sink file holds every line 0..n-1 and that
// their first occurrences are in order. With exact, it also requires no
// duplicates and no torn lines. A crash may leave a partial line (the sink
// writes buffered bytes that need not end at a line boundary) that the
// replay then continues: such a line is counted as torn and its complete
// last lineLen bytes are taken as the record.
func checkSink(t *testing.T, path string, n int, exact bool) sinkReport {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	seen := make([]bool, n)
	next := 0 // the sequence number the next first occurrence must have
	var rep sinkReport
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for sc.Scan() {
		rep.lines++
		line := sc.Text()
		if len(line) > lineLen {
			rep.torn++
			t.Logf("sink line %d: torn line of %d bytes (a crash cut a line; the replay continued it): %.40q...", rep.lines, len(line), line)
			line = line[len(line)-lineLen:]
		}
		seq, err := strconv.Atoi(strings.SplitN(line, "|", 2)[0])
		if err != nil || seq < 0 || seq >= n || line != makeLine(seq) {
			problem("line %d: unexpected content %.60q", rep.lines, line)
			continue
		}
		if seen[seq] {
			rep.duplicates++
			continue
		}
		if seq != next {
			problem("line %d: first occurrence of %d where %d was expected (out of order or missing)", rep.lines, seq, next)
		}
		seen[seq] = true
		next = seq + 1
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	missing := 0
	for i, ok := range seen {
		if !ok {
			if missing == 0 {
				problem("line %d is missing (first missing)", i)
			}
			missing++
		}
	}
	if len(problems) > 0 || exact && (rep.duplicates > 0 || rep.torn > 0) {
		t.Errorf("sink file %s: %d lines, %d missing, %d duplicates, %d torn; first problems:\n%s",
			path, rep.lines, missing, rep.duplicates, rep.torn, strings.Join(problems, "\n"))
	}
	return rep
}

// waitLines waits until the sink file has at least n lines, failing early
// if the worker exits.
func (c *cluster) waitLines(lc *lineCounter, n int, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, fmt.Sprintf("%d lines in %s", n, lc.path), func() (bool, string) {
		if c.worker.exited() {
			c.t.Fatalf("the worker exited: %v", c.worker.waitErr)
		}
		got, err := lc.count()
		return err == nil && got >= n, fmt.Sprintf("%d lines (err %v)", got, err)
	})
}

// pluginChildren returns the pids of the processes whose parent is pid and
// whose command line runs tributary-connector-file, except validators.
func pluginChildren(t *testing.T, pid int) []int {
	t.Helper()
	return pluginChildrenOf(t, pid, "tributary-connector-file")
}

// pluginChildrenOf returns the pids of the processes whose parent is pid
// and whose command line runs the plugin binary, except validators.
func pluginChildrenOf(t *testing.T, pid int, binary string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("reading /proc (this test needs Linux procfs): %v", err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(binary)) {
			continue
		}
		// The worker's kept validator process (plugins.Validators) runs
		// no connector or task.
		if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err != nil || bytes.Contains(env, []byte(plugins.RoleEnv+"="+plugins.RoleValidator)) {
			continue
		}
		out = append(out, child)
	}
	return out
}
