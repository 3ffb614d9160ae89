package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

// testLoggers returns a registry with a fixed clock and a few loggers.
func testLoggers() *LevelRegistry {
	r := NewLevelRegistry(slog.LevelInfo)
	r.now = func() time.Time { return time.UnixMilli(1700000000000) }
	r.Var("worker")
	r.Var("worker.herder")
	r.Var("worker.taskrun")
	return r
}

type testServer struct {
	srv     *Server
	herder  *fakeHerder
	loggers *LevelRegistry
}

func newTestServer(t *testing.T, mutate func(*fakeHerder, *Options)) testServer {
	t.Helper()
	h := newFakeHerder()
	l := testLoggers()
	opts := Options{
		Herder:  h,
		Loggers: l,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = io.WriteString(w, "# TYPE tributary_up gauge\ntributary_up 1\n")
		}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mutate != nil {
		mutate(h, &opts)
	}
	return testServer{srv: New(opts), herder: h, loggers: l}
}

// goldenResponse renders a response as the golden file stores it: status,
// Location (if any) and the exact body bytes (JSON bodies inline, other
// bodies as a JSON string, an empty body as null).
func goldenResponse(rec *httptest.ResponseRecorder) []byte {
	var b bytes.Buffer
	b.WriteString("{\n\"status\": ")
	b.WriteString(itoa(rec.Code))
	if loc := rec.Header().Get("Location"); loc != "" {
		b.WriteString(",\n\"location\": ")
		q, _ := json.Marshal(loc)
		b.Write(q)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "" {
		b.WriteString(",\n\"content_type\": ")
		q, _ := json.Marshal(ct)
		b.Write(q)
	}
	b.WriteString(",\n\"body\": ")
	body := rec.Body.Bytes()
	switch {
	case len(body) == 0:
		b.WriteString("null")
	case strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json"):
		b.Write(body)
	default:
		q, _ := json.Marshal(string(body))
		b.Write(q)
	}
	b.WriteString("\n}\n")
	return b.Bytes()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden %s mismatch\n got: %s\nwant: %s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	notReady := func(h *fakeHerder, _ *Options) { h.notReady = errors.New("Joining the group.") }
	rebalancing := func(h *fakeHerder, _ *Options) { h.rebalancing = true }
	noExtras := func(_ *fakeHerder, o *Options) { o.Loggers = nil; o.Metrics = nil }
	running := func(h *fakeHerder, _ *Options) { h.conns["pg-sink"].state = StateRunning }

	cases := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		setup  func(*fakeHerder, *Options)
	}{
		{"root", "GET", "/", "", 200, nil},
		{"health_ok", "GET", "/health", "", 200, nil},
		{"health_starting", "GET", "/health", "", 503, notReady},

		{"connectors_list", "GET", "/connectors", "", 200, nil},
		{"connectors_list_slash", "GET", "/connectors/", "", 200, nil},
		{"connectors_expand_status_info", "GET", "/connectors?expand=status&expand=info", "", 200, nil},
		{"connectors_expand_info_status", "GET", "/connectors?expand=info&expand=status", "", 200, nil},
		{"connectors_expand_status", "GET", "/connectors?expand=status", "", 200, nil},
		{"connectors_expand_unknown", "GET", "/connectors?expand=bogus", "", 200, nil},

		{"create", "POST", "/connectors", `{"name":"new-source","config":{"connector.class":"FileStreamSource","tasks.max":1,"file":"/tmp/a <b>&c","batch.size":100,"enabled":true}}`, 201, nil},
		{"create_initial_stopped", "POST", "/connectors", `{"name":" stopped-one ","config":{"connector.class":"FileStreamSource","name":"stopped-one"},"initial_state":"stopped"}`, 201, nil},
		{"create_exists", "POST", "/connectors", `{"name":"file-source","config":{"connector.class":"FileStreamSource"}}`, 409, nil},
		{"create_rebalancing", "POST", "/connectors", `{"name":"x","config":{"connector.class":"FileStreamSource"}}`, 409, rebalancing},
		{"create_bad_json", "POST", "/connectors", `{"name":"x","config":{`, 400, nil},
		{"create_empty_body", "POST", "/connectors", ``, 400, nil},
		{"create_missing_name", "POST", "/connectors", `{"config":{"connector.class":"FileStreamSource"}}`, 400, nil},
		{"create_missing_config", "POST", "/connectors", `{"name":"x"}`, 400, nil},
		{"create_name_mismatch", "POST", "/connectors", `{"name":"x","config":{"name":"y","connector.class":"FileStreamSource"}}`, 400, nil},
		{"create_bad_initial_state", "POST", "/connectors", `{"name":"x","config":{"connector.class":"FileStreamSource"},"initial_state":"SLEEPING"}`, 400, nil},
		{"create_no_class", "POST", "/connectors", `{"name":"x","config":{"tasks.max":"1"}}`, 400, nil},
		{"create_name_not_string", "POST", "/connectors", `{"name":5,"config":{"connector.class":"FileStreamSource"}}`, 400, nil},
		{"create_object_value", "POST", "/connectors", `{"name":"x","config":{"connector.class":{"a":1}}}`, 400, nil},

		{"get_connector", "GET", "/connectors/file-source", "", 200, nil},
		{"get_connector_masked", "GET", "/connectors/pg-sink", "", 200, nil},
		{"get_connector_404", "GET", "/connectors/nope", "", 404, nil},
		{"get_config_masked", "GET", "/connectors/pg-sink/config", "", 200, nil},
		{"get_config_404", "GET", "/connectors/nope/config", "", 404, nil},
		{"put_config_create", "PUT", "/connectors/created-by-put/config", `{"connector.class":"FileStreamSource","tasks.max":"1"}`, 201, nil},
		{"put_config_update", "PUT", "/connectors/file-source/config", `{"connector.class":"FileStreamSource","tasks.max":"2","file":"/tmp/other.txt","name":"file-source"}`, 200, nil},
		{"put_config_mismatch", "PUT", "/connectors/file-source/config", `{"connector.class":"FileStreamSource","name":"other"}`, 400, nil},
		{"put_config_bad_json", "PUT", "/connectors/file-source/config", `["a"]`, 400, nil},
		{"patch_config", "PATCH", "/connectors/file-source/config", `{"file":null,"topic":"lines2","batch.size":500}`, 200, nil},
		{"patch_config_mismatch", "PATCH", "/connectors/file-source/config", `{"name":"other"}`, 400, nil},
		{"patch_config_404", "PATCH", "/connectors/nope/config", `{"a":"b"}`, 404, nil},

		{"status", "GET", "/connectors/file-source/status", "", 200, nil},
		{"status_stopped", "GET", "/connectors/pg-sink/status", "", 200, nil},
		{"status_404", "GET", "/connectors/nope/status", "", 404, nil},
		{"restart_plain", "POST", "/connectors/file-source/restart", "", 204, nil},
		{"restart_plain_explicit", "POST", "/connectors/file-source/restart?includeTasks=false&onlyFailed=false", "", 204, nil},
		{"restart_include_tasks", "POST", "/connectors/file-source/restart?includeTasks=true", "", 202, nil},
		{"restart_only_failed", "POST", "/connectors/file-source/restart?includeTasks=TRUE&onlyFailed=true", "", 202, nil},
		{"restart_bad_bool", "POST", "/connectors/file-source/restart?includeTasks=yes", "", 400, nil},
		{"restart_404", "POST", "/connectors/nope/restart", "", 404, nil},
		{"pause", "PUT", "/connectors/file-source/pause", "", 202, nil},
		{"resume", "PUT", "/connectors/file-source/resume", "", 202, nil},
		{"stop", "PUT", "/connectors/file-source/stop", "", 204, nil},
		{"pause_404", "PUT", "/connectors/nope/pause", "", 404, nil},
		{"delete", "DELETE", "/connectors/file-source", "", 204, nil},
		{"delete_404", "DELETE", "/connectors/nope", "", 404, nil},

		{"tasks", "GET", "/connectors/file-source/tasks", "", 200, nil},
		{"tasks_stopped", "GET", "/connectors/pg-sink/tasks", "", 200, nil},
		{"task_status", "GET", "/connectors/file-source/tasks/1/status", "", 200, nil},
		{"task_status_nan", "GET", "/connectors/file-source/tasks/one/status", "", 404, nil},
		{"task_status_404", "GET", "/connectors/file-source/tasks/9/status", "", 404, nil},
		{"task_restart", "POST", "/connectors/file-source/tasks/0/restart", "", 204, nil},
		{"task_restart_404", "POST", "/connectors/file-source/tasks/7/restart", "", 404, nil},

		{"topics", "GET", "/connectors/file-source/topics", "", 200, nil},
		{"topics_reset", "PUT", "/connectors/file-source/topics/reset", "", 202, nil},

		{"offsets_get", "GET", "/connectors/pg-sink/offsets", "", 200, nil},
		{"offsets_patch", "PATCH", "/connectors/pg-sink/offsets", `{"offsets":[{"partition":{"kafka_topic":"orders","kafka_partition":0},"offset":{"kafka_offset":12345678901234567}},{"partition":{"kafka_topic":"orders","kafka_partition":1},"offset":null}]}`, 200, nil},
		{"offsets_patch_not_stopped", "PATCH", "/connectors/pg-sink/offsets", `{"offsets":[{"partition":{"kafka_topic":"orders","kafka_partition":0},"offset":{"kafka_offset":1}}]}`, 400, running},
		{"offsets_patch_empty", "PATCH", "/connectors/pg-sink/offsets", `{"offsets":[]}`, 400, nil},
		{"offsets_patch_bad_json", "PATCH", "/connectors/pg-sink/offsets", `{"offsets":[}`, 400, nil},
		{"offsets_delete", "DELETE", "/connectors/pg-sink/offsets", "", 200, nil},
		{"offsets_delete_not_stopped", "DELETE", "/connectors/file-source/offsets", "", 400, nil},
		{"offsets_404", "GET", "/connectors/nope/offsets", "", 404, nil},

		{"plugins", "GET", "/connector-plugins", "", 200, nil},
		{"plugins_all", "GET", "/connector-plugins?connectorsOnly=false", "", 200, nil},
		{"plugin_config", "GET", "/connector-plugins/FileStreamSource/config", "", 200, nil},
		{"plugin_config_404", "GET", "/connector-plugins/Nope/config", "", 404, nil},
		{"validate", "PUT", "/connector-plugins/FileStreamSourceConnector/config/validate", `{"connector.class":"org.apache.kafka.connect.file.FileStreamSourceConnector","batch.size":"many"}`, 200, nil},
		{"validate_no_class", "PUT", "/connector-plugins/FileStreamSource/config/validate", `{"topic":"t","file":"f"}`, 400, nil},
		{"validate_mismatch", "PUT", "/connector-plugins/FileStreamSource/config/validate", `{"connector.class":"FileStreamSink"}`, 400, nil},

		{"loggers_list", "GET", "/admin/loggers", "", 200, nil},
		{"logger_get", "GET", "/admin/loggers/worker.herder", "", 200, nil},
		{"logger_get_404", "GET", "/admin/loggers/nope", "", 404, nil},
		{"logger_put", "PUT", "/admin/loggers/worker", `{"level":"debug"}`, 200, nil},
		{"logger_put_new", "PUT", "/admin/loggers/plugins.file", `{"level":"TRACE"}`, 200, nil},
		{"logger_put_bad_level", "PUT", "/admin/loggers/worker", `{"level":"LOUD"}`, 404, nil},
		{"logger_put_no_level", "PUT", "/admin/loggers/worker", `{"lvl":"INFO"}`, 400, nil},
		{"logger_put_cluster_unsupported", "PUT", "/admin/loggers/worker?scope=cluster", `{"level":"INFO"}`, 400, nil},
		{"loggers_disabled", "GET", "/admin/loggers", "", 404, noExtras},

		{"metrics", "GET", "/metrics", "", 200, nil},
		{"metrics_disabled", "GET", "/metrics", "", 404, noExtras},
		{"unknown_path", "GET", "/nope", "", 404, nil},
		{"wrong_method", "POST", "/health", "", 405, nil},
		{"handler_panic", "GET", "/connectors/panic", "", 500, nil},
		{"herder_error", "GET", "/connectors/boom", "", 500, nil},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case %s", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.setup)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			ts.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if rec.Code >= 400 && tc.path != "/health" {
				var em ErrorMessage
				if err := json.Unmarshal(rec.Body.Bytes(), &em); err != nil || em.ErrorCode != rec.Code || em.Message == "" {
					t.Errorf("error body %q is not {error_code:%d, message}", rec.Body, rec.Code)
				}
			}
			checkGolden(t, tc.name, goldenResponse(rec))
		})
	}
}

// do runs one request against a server's handler.
func do(t *testing.T, s *Server, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, r))
	return rec
}

func TestStateChangesReachHerder(t *testing.T) {
	ts := newTestServer(t, nil)
	steps := []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/connectors/file-source/stop", "", 204},
		{"GET", "/connectors/file-source/status", "", 200},
		{"PATCH", "/connectors/file-source/offsets", `{"offsets":[{"partition":{"filename":"/tmp/in.txt"},"offset":{"position":7}}]}`, 200},
		{"GET", "/connectors/file-source/offsets", "", 200},
		{"DELETE", "/connectors/file-source", "", 204},
		{"GET", "/connectors/file-source", "", 404},
	}
	for _, s := range steps {
		rec := do(t, ts.srv, s.method, s.path, s.body)
		if rec.Code != s.status {
			t.Fatalf("%s %s: status %d, want %d: %s", s.method, s.path, rec.Code, s.status, rec.Body)
		}
		switch s.path + " " + s.method {
		case "/connectors/file-source/status GET":
			if !strings.Contains(rec.Body.String(), `"state":"STOPPED"`) {
				t.Errorf("status after stop: %s", rec.Body)
			}
		case "/connectors/file-source/offsets GET":
			if got, want := rec.Body.String(), `{"offsets":[{"partition":{"filename":"/tmp/in.txt"},"offset":{"position":7}}]}`; got != want {
				t.Errorf("offsets after alter: %s, want %s", got, want)
			}
		}
	}
}

func TestRestartCallsRightHerderMethod(t *testing.T) {
	tests := []struct {
		query string
		want  string
	}{
		{"", "RestartConnector file-source"},
		{"?includeTasks=false", "RestartConnector file-source"},
		{"?includeTasks=true", "RestartConnectorAndTasks file-source true false"},
		{"?onlyFailed=true", "RestartConnectorAndTasks file-source false true"},
		{"?includeTasks=true&onlyFailed=true", "RestartConnectorAndTasks file-source true true"},
	}
	for _, tt := range tests {
		ts := newTestServer(t, nil)
		do(t, ts.srv, "POST", "/connectors/file-source/restart"+tt.query, "")
		if len(ts.herder.calls) != 1 || ts.herder.calls[0] != tt.want {
			t.Errorf("query %q: calls %v, want [%s]", tt.query, ts.herder.calls, tt.want)
		}
	}
}

func TestCreatePassesInitialStateAndName(t *testing.T) {
	ts := newTestServer(t, nil)
	rec := do(t, ts.srv, "POST", "/connectors", `{"name":"p","config":{"connector.class":"FileStreamSource"},"initial_state":"Paused"}`)
	if rec.Code != 201 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := ts.herder.calls; len(got) != 1 || got[0] != "CreateConnector p PAUSED" {
		t.Errorf("calls %v", got)
	}
	if got := ts.herder.conns["p"].config["name"]; got != "p" {
		t.Errorf("config name %q, want p (put by the REST layer)", got)
	}
	if loc := rec.Header().Get("Location"); loc != "http://example.com/connectors/p" {
		t.Errorf("Location %q", loc)
	}
}

func TestConnectorNameEscaping(t *testing.T) {
	ts := newTestServer(t, nil)
	rec := do(t, ts.srv, "POST", "/connectors", `{"name":"a b/c","config":{"connector.class":"FileStreamSource"}}`)
	if rec.Code != 201 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if loc := rec.Header().Get("Location"); loc != "http://example.com/connectors/a%20b%2Fc" {
		t.Errorf("Location %q", loc)
	}
	rec = do(t, ts.srv, "GET", "/connectors/a%20b%2Fc", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name":"a b/c"`) {
		t.Errorf("GET escaped name: %d %s", rec.Code, rec.Body)
	}
}

func TestLoggerLevelsApply(t *testing.T) {
	ts := newTestServer(t, nil)
	v := ts.loggers.Var("worker.taskrun")
	rec := do(t, ts.srv, "PUT", "/admin/loggers/worker", `{"level":"DEBUG"}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if v.Level() != slog.LevelDebug {
		t.Errorf("child level %v, want DEBUG", v.Level())
	}
	if ts.loggers.Var("worker.herder.sub").Level() != slog.LevelDebug {
		t.Errorf("new descendant does not inherit its ancestor's level")
	}
	if ts.loggers.Var("other").Level() != slog.LevelInfo {
		t.Errorf("unrelated logger changed")
	}
	do(t, ts.srv, "PUT", "/admin/loggers/root", `{"level":"ERROR"}`)
	if ts.loggers.Var("other").Level() != slog.LevelError || v.Level() != slog.LevelError {
		t.Errorf("root did not apply to all")
	}
}

func TestClusterScopedLogger(t *testing.T) {
	h := &clusterHerder{fakeHerder: newFakeHerder()}
	s := New(Options{Herder: h, Loggers: testLoggers(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec := do(t, s, "PUT", "/admin/loggers/worker?scope=cluster", `{"level":"warn"}`)
	if rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("status %d body %q, want 204 and no body", rec.Code, rec.Body)
	}
	if len(h.set) != 1 || h.set[0] != "worker=WARN" {
		t.Errorf("cluster calls %v", h.set)
	}
}

func TestParseLevelRoundTrip(t *testing.T) {
	for _, n := range []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"} {
		l, canon, ok := ParseLevel(strings.ToLower(n))
		if !ok || canon != n || LevelName(l) != n {
			t.Errorf("%s: got %v %q %v (name %s)", n, l, canon, ok, LevelName(l))
		}
	}
	if _, _, ok := ParseLevel("verbose"); ok {
		t.Error("verbose accepted")
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{NotFound("Connector %s not found", "x"), 404, "Connector x not found"},
		{Conflict("Connector x already exists"), 409, "Connector x already exists"},
		{RebalanceInProgress(), 409, "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)"},
		{BadRequest("bad"), 400, "bad"},
		{Forbidden("Topic tracking is disabled."), 403, "Topic tracking is disabled."},
		{errors.New("x: " + ErrNotFound.Error()), 500, "x: not found"},
		{wrap(ErrNotFound, "connector x"), 404, "connector x: not found"},
		{wrap(ErrRebalanceInProgress, "put"), 409, "put: conflict: rebalance in progress"},
		{wrap(BadRequest("inner"), "outer"), 400, "outer: inner"},
		{context.DeadlineExceeded, 500, "Request timed out"},
		{errors.New("disk on fire"), 500, "disk on fire"},
	}
	for _, tt := range tests {
		status, em := errorResponse(tt.err)
		if status != tt.status || em.ErrorCode != tt.status || em.Message != tt.msg {
			t.Errorf("%v: got %d %+v, want %d %q", tt.err, status, em, tt.status, tt.msg)
		}
	}
	if !errors.Is(RebalanceInProgress(), ErrConflict) || !errors.Is(RebalanceInProgress(), ErrRebalanceInProgress) {
		t.Error("RebalanceInProgress does not match its sentinels")
	}
	if errors.Is(NotFound("x"), ErrConflict) {
		t.Error("NotFound matches ErrConflict")
	}
}

func wrap(err error, msg string) error { return &wrapped{msg: msg, err: err} }

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// slowHerder blocks ConnectorInfo until its context ends.
type slowHerder struct {
	*fakeHerder
	entered chan struct{}
	exited  chan struct{}
}

func newSlowHerder() *slowHerder {
	return &slowHerder{fakeHerder: newFakeHerder(), entered: make(chan struct{}), exited: make(chan struct{})}
}

func (s *slowHerder) ConnectorInfo(ctx context.Context, name string) (ConnectorInfo, error) {
	close(s.entered)
	defer close(s.exited)
	<-ctx.Done()
	return ConnectorInfo{}, ctx.Err()
}

func TestRequestTimeout(t *testing.T) {
	h := newSlowHerder()
	s := New(Options{Herder: h, RequestTimeout: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec := do(t, s, "GET", "/connectors/x", "")
	if rec.Code != 500 || rec.Body.String() != `{"error_code":500,"message":"Request timed out"}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

func TestStartServeClose(t *testing.T) {
	ts := newTestServer(t, func(_ *fakeHerder, o *Options) { o.Listen = "127.0.0.1:0" })
	if ts.srv.Addr() != nil {
		t.Fatal("Addr before Start")
	}
	if err := ts.srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	base := "http://" + ts.srv.Addr().String()
	resp, err := http.Get(base + "/connectors/panic")
	if err != nil {
		t.Fatalf("panic dropped the connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(b), `"error_code":500`) {
		t.Errorf("panic: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Post(base+"/connectors", "application/json",
		strings.NewReader(`{"name":"n","config":{"connector.class":"FileStreamSource"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := base + "/connectors/n"; resp.StatusCode != 201 || resp.Header.Get("Location") != want {
		t.Errorf("create: %d Location %q, want 201 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ts.srv.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Error("server still serving after Close")
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	h := newSlowHerder()
	s := New(Options{Herder: h, Listen: "127.0.0.1:0", ShutdownTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/connectors/x")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached the herder")
	}
	start := time.Now()
	err := s.Close() // graceful phase times out, then connections are closed
	if err == nil {
		t.Error("Close with a stuck request returned nil, want the shutdown timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case <-h.exited:
	default:
		t.Error("Close returned while a handler was still inside the herder")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("client never finished")
	}
}

func TestCloseBeforeStart(t *testing.T) {
	s := New(Options{Herder: newFakeHerder()})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestConfigMapCoercion(t *testing.T) {
	var m configMap
	if err := json.Unmarshal([]byte(`{"a":"x","b":1.50,"c":true,"d":null,"e":-3}`), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "x", "b": "1.50", "c": "true", "e": "-3"}
	got := m.strings()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if v, ok := m["d"]; !ok || v != nil {
		t.Errorf("null value not kept as nil")
	}
	for _, bad := range []string{`{"a":[1]}`, `{"a":{"b":1}}`, `[1]`, `"s"`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestRequestLogging(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(Options{Herder: newFakeHerder(), Logger: logger})
	do(t, s, "GET", "/connectors/nope?x=1", "")
	do(t, s, "GET", "/connectors/panic", "")
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d log lines, want 3 (request, panic, request): %s", len(lines), buf.Bytes())
	}
	if lines[0]["level"] != "DEBUG" || lines[0]["path"] != "/connectors/nope?x=1" || lines[0]["status"] != float64(404) {
		t.Errorf("request log %v", lines[0])
	}
	if lines[1]["level"] != "ERROR" || lines[1]["panic"] != "fake herder panic" {
		t.Errorf("panic log %v", lines[1])
	}
	if lines[2]["status"] != float64(500) {
		t.Errorf("panicking request logged with status %v, want 500", lines[2]["status"])
	}
}
