package herder_test

// Test harness: a real broker (in-process), the real file plugin binary
// (built once per test run), a real herder and the real REST handler
// served over HTTP. Tests talk to the worker only through its REST API,
// with the JSON bodies Kafka Connect users send.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/worker/herder"
	"github.com/tributary-data/tributary/worker/rest"
)

var (
	buildOnce sync.Once
	pluginDir string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

// filePluginDir builds the real file connector plugin once per test run and
// returns the plugin.path folder holding it.
func filePluginDir(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		pluginDir, buildErr = os.MkdirTemp("", "herder-plugins-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "tributary-connector-file"), "../../cmd/tributary-connector-file").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the file plugin: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pluginDir
}

// worker is a herder served over HTTP.
type worker struct {
	t    *testing.T
	h    *herder.Herder
	srv  *httptest.Server
	url  string
	id   string // the worker id statuses show: the REST server's host:port
	once sync.Once
}

// handlerSwap lets the HTTP server start (and so know its address, the
// worker id) before the herder it serves is opened.
type handlerSwap struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *handlerSwap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// startWorker opens a herder of group on the broker at addr and serves its
// REST API; it is closed at cleanup (or earlier with close).
func startWorker(t *testing.T, addr, group string) *worker {
	t.Helper()
	return startWorkerWith(t, addr, group, nil)
}

// startWorkerWith starts a worker whose herder config edit may change.
func startWorkerWith(t *testing.T, addr, group string, edit func(*herder.Config)) *worker {
	t.Helper()
	swap := &handlerSwap{}
	srv := httptest.NewServer(swap)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := srv.Listener.Addr().String()
	cfg := herder.Config{
		Brokers: []string{addr}, GroupID: group, WorkerID: id, PluginPath: filePluginDir(t),
		ConfigTopic: group + "-configs", OffsetTopic: group + "-offsets", StatusTopic: group + "-status",
		ReplicationFactor: -1, OffsetFlushInterval: 200 * time.Millisecond, Version: "test",
	}
	if edit != nil {
		edit(&cfg)
	}
	h, err := herder.Open(ctx, cfg)
	if err != nil {
		srv.Close()
		t.Fatalf("opening the herder: %v", err)
	}
	swap.mu.Lock()
	swap.h = rest.New(rest.Options{Herder: h, RequestTimeout: 30 * time.Second}).Handler()
	swap.mu.Unlock()
	w := &worker{t: t, h: h, srv: srv, url: srv.URL, id: id}
	t.Cleanup(w.close)
	return w
}

// close stops serving and closes the herder (tasks store their offsets).
func (w *worker) close() {
	w.once.Do(func() {
		w.srv.Close()
		if err := w.h.Close(); err != nil {
			w.t.Errorf("closing the herder: %v", err)
		}
	})
}

// do sends a request; body is sent as is when a string, else as JSON.
func (w *worker) do(method, path string, body any) (int, []byte, http.Header) {
	w.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, w.url+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, out, resp.Header
}

// expect sends a request, checks the status and decodes the body into out
// (unless nil); it returns the raw body.
func (w *worker) expect(method, path string, body any, want int, out any) []byte {
	w.t.Helper()
	code, raw, _ := w.do(method, path, body)
	if code != want {
		w.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			w.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return raw
}

// apiError is Kafka Connect's error body.
type apiError struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// expectError checks an error response's status and that its message
// contains every one of parts.
func (w *worker) expectError(method, path string, body any, want int, parts ...string) apiError {
	w.t.Helper()
	var e apiError
	w.expect(method, path, body, want, &e)
	if e.ErrorCode != want {
		w.t.Errorf("%s %s: error_code %d, want %d", method, path, e.ErrorCode, want)
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			w.t.Errorf("%s %s: message %q does not contain %q", method, path, e.Message, p)
		}
	}
	return e
}

type taskState struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace"`
}

type connectorStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"connector"`
	Tasks []taskState `json:"tasks"`
	Type  string      `json:"type"`
}

type connectorOffsets struct {
	Offsets []struct {
		Partition map[string]any `json:"partition"`
		Offset    map[string]any `json:"offset"`
	} `json:"offsets"`
}

// status reads a connector's status (it must exist).
func (w *worker) status(name string) connectorStatus {
	w.t.Helper()
	var st connectorStatus
	w.expect("GET", "/connectors/"+name+"/status", nil, http.StatusOK, &st)
	return st
}

// waitState waits until the connector is in state and, when tasks is not
// empty, its (one or more) tasks are all in tasks.
func (w *worker) waitState(name, state, tasks string) connectorStatus {
	w.t.Helper()
	var st connectorStatus
	waitFor(w.t, 20*time.Second, fmt.Sprintf("%s to be %s with tasks %q", name, state, tasks), func() (bool, string) {
		st = w.status(name)
		if st.Connector.State != state {
			return false, fmt.Sprintf("%+v", st)
		}
		if tasks == "" {
			return true, ""
		}
		if len(st.Tasks) == 0 {
			return false, fmt.Sprintf("%+v", st)
		}
		for _, ts := range st.Tasks {
			if ts.State != tasks {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
	return st
}

// offsets reads a connector's offsets.
func (w *worker) offsets(name string) connectorOffsets {
	w.t.Helper()
	var o connectorOffsets
	w.expect("GET", "/connectors/"+name+"/offsets", nil, http.StatusOK, &o)
	return o
}

// createRequest is the body of POST /connectors.
type createRequest struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

// createSource creates a file source of file into topic (class as users
// give it: the short alias) and waits for its task to run.
func (w *worker) createSource(name, file, topic string) {
	w.t.Helper()
	w.expect("POST", "/connectors", createRequest{Name: name, Config: map[string]string{
		"connector.class": "FileStreamSource", "file": file, "topic": topic,
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
	}}, http.StatusCreated, nil)
	w.waitState(name, "RUNNING", "RUNNING")
}

// createSink creates a file sink of topics into file (Kafka's class name)
// and waits for its task to run.
func (w *worker) createSink(name, file, topics string) {
	w.t.Helper()
	w.expect("POST", "/connectors", createRequest{Name: name, Config: map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "file": file, "topics": topics,
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
	}}, http.StatusCreated, nil)
	w.waitState(name, "RUNNING", "RUNNING")
}

// waitFor polls cond every 50 ms until it holds or timeout passes; cond's
// string describes the last state seen, for the failure message.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readLines returns a file's complete lines (none when it does not exist).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil
	}
	return strings.Split(s, "\n")
}

// appendLines appends lines to path, creating it.
func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

// waitLines waits until path holds exactly want.
func waitLines(t *testing.T, path string, want []string) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%s to hold %q", path, want), func() (bool, string) {
		got := readLines(t, path)
		return strings.Join(got, "\n") == strings.Join(want, "\n"), fmt.Sprintf("%q", got)
	})
}

// numbered returns prefix-1 ... prefix-n.
func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
