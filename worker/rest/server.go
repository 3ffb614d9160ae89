// Package rest is the worker's HTTP API, compatible with Kafka Connect's
// REST API: same paths, status codes and JSON bodies, so that existing
// tools and scripts work unchanged. It serves a Herder (the worker's view
// of the cluster), declared here and implemented by the worker.
//
// Every error response is {"error_code": <status>, "message": "..."}; the
// status comes from the error the Herder returns (see ErrNotFound and the
// other sentinels, and Error), mapped in one place. Unknown paths are 404
// and wrong methods 405, in the same JSON shape; a panicking handler is a
// 500 in that shape too.
//
// Endpoints (success statuses as Kafka Connect's):
//
//	GET    /                                         200 ServerInfo
//	GET    /health                                   200 / 503 WorkerStatus
//	GET    /connectors[?expand=status&expand=info]   200 names, or {name: {status, info}}
//	POST   /connectors                               201 ConnectorInfo + Location
//	GET    /connectors/{c}                           200 ConnectorInfo
//	DELETE /connectors/{c}                           204
//	GET    /connectors/{c}/config                    200 config
//	PUT    /connectors/{c}/config                    200, or 201 + Location when created
//	PATCH  /connectors/{c}/config                    200 (null value deletes a key)
//	GET    /connectors/{c}/status                    200 ConnectorStateInfo
//	POST   /connectors/{c}/restart[?includeTasks=&onlyFailed=]  204, or 202 + ConnectorStateInfo
//	PUT    /connectors/{c}/pause, /resume            202
//	PUT    /connectors/{c}/stop                      204
//	GET    /connectors/{c}/tasks                     200 []TaskInfo
//	POST   /connectors/{c}/tasks                     204 (internal: task configs to the leader)
//	GET    /connectors/{c}/tasks/{t}/status          200 TaskState
//	POST   /connectors/{c}/tasks/{t}/restart         204
//	GET    /connectors/{c}/topics                    200 {c: {topics}}
//	PUT    /connectors/{c}/topics/reset              202
//	GET    /connectors/{c}/offsets                   200 ConnectorOffsets
//	PATCH  /connectors/{c}/offsets                   200 Message
//	DELETE /connectors/{c}/offsets                   200 Message
//	GET    /connector-plugins[?connectorsOnly=false] 200 []PluginInfo
//	GET    /connector-plugins/{p}/config             200 []connect.ConfigKeyInfo
//	PUT    /connector-plugins/{p}/config/validate    200 connect.ConfigInfos
//	GET    /admin/loggers                            200 {name: LoggerLevel}
//	GET    /admin/loggers/{name}                     200 LoggerLevel
//	PUT    /admin/loggers/{name}[?scope=cluster]     200 affected names (204 for cluster)
//	GET    /metrics                                  Options.Metrics
//
// Requests the Herder redirects (config writes go to the leader, restarts
// to the worker running the connector) are forwarded: see forward.go.
//
// Config bodies are decoded as Kafka decodes a Map<String,String>: numbers
// and booleans are accepted and kept as their literal text.
package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Herder is the worker's cluster view that the REST API serves. Every
// method is called from a request's goroutine with a context cancelled when
// the client goes away or the request times out (Options.RequestTimeout);
// methods must be safe for concurrent use. Errors choose the response's
// status: see ErrNotFound, ErrConflict, ErrRebalanceInProgress,
// ErrBadRequest, ErrForbidden and Error; anything else is a 500 whose
// message is the error's text.
type Herder interface {
	// ServerInfo is GET /.
	ServerInfo(ctx context.Context) (ServerInfo, error)
	// Ready returns nil once the worker has joined the group and read the
	// config topic (GET /health 200); the error text is shown otherwise (503).
	Ready(ctx context.Context) error

	// Connectors returns the names of all connectors.
	Connectors(ctx context.Context) ([]string, error)
	// ConnectorInfo returns a connector's config (PASSWORD values masked),
	// tasks and type. Also serves GET /connectors/{c}/config.
	ConnectorInfo(ctx context.Context, name string) (ConnectorInfo, error)
	// ConnectorStatus returns a connector's and its tasks' states.
	ConnectorStatus(ctx context.Context, name string) (ConnectorStateInfo, error)
	// CreateConnector creates a connector; config contains "name" equal to
	// name. initialState is "", "RUNNING", "PAUSED" or "STOPPED" ("" means
	// RUNNING). A connector that exists is a conflict.
	CreateConnector(ctx context.Context, name string, config map[string]string, initialState string) (ConnectorInfo, error)
	// PutConnectorConfig creates or replaces a connector's config; config
	// contains "name" equal to name. created reports a new connector.
	PutConnectorConfig(ctx context.Context, name string, config map[string]string) (info ConnectorInfo, created bool, err error)
	// PatchConnectorConfig merges patch into an existing connector's config;
	// a nil value deletes the key.
	PatchConnectorConfig(ctx context.Context, name string, patch map[string]*string) (ConnectorInfo, error)
	// DeleteConnector deletes a connector.
	DeleteConnector(ctx context.Context, name string) error

	// RestartConnector restarts the connector instance only (POST
	// .../restart with includeTasks=false and onlyFailed=false: 204).
	RestartConnector(ctx context.Context, name string) error
	// RestartConnectorAndTasks restarts the connector and/or its tasks as
	// Kafka's RestartRequest does and returns the status after the restart
	// was requested, with the restarting instances in RESTARTING (202).
	RestartConnectorAndTasks(ctx context.Context, name string, includeTasks, onlyFailed bool) (ConnectorStateInfo, error)
	// PauseConnector, ResumeConnector and StopConnector change the target
	// state; they are idempotent.
	PauseConnector(ctx context.Context, name string) error
	ResumeConnector(ctx context.Context, name string) error
	StopConnector(ctx context.Context, name string) error

	// TaskConfigs returns the configs of a connector's tasks.
	TaskConfigs(ctx context.Context, name string) ([]TaskInfo, error)
	// PutTaskConfigs stores a connector's task configs (Kafka Connect's
	// internal POST /connectors/{c}/tasks, used by workers to hand task
	// configs to the leader).
	PutTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error
	// TaskStatus returns one task's state.
	TaskStatus(ctx context.Context, name string, task int) (TaskState, error)
	// RestartTask restarts one task.
	RestartTask(ctx context.Context, name string, task int) error

	// ConnectorTopics returns the topics the connector has used since its
	// creation or the last reset.
	ConnectorTopics(ctx context.Context, name string) ([]string, error)
	// ResetConnectorTopics clears that set.
	ResetConnectorTopics(ctx context.Context, name string) error

	// ConnectorOffsets returns a connector's committed offsets.
	ConnectorOffsets(ctx context.Context, name string) (ConnectorOffsets, error)
	// AlterConnectorOffsets changes offsets; it is a bad request unless the
	// connector is STOPPED. offsets.Offsets is never empty.
	AlterConnectorOffsets(ctx context.Context, name string, offsets ConnectorOffsets) (Message, error)
	// ResetConnectorOffsets deletes all offsets; it is a bad request unless
	// the connector is STOPPED.
	ResetConnectorOffsets(ctx context.Context, name string) (Message, error)

	// Plugins lists the installed plugins: only connectors when
	// connectorsOnly, else also converters, transforms and predicates.
	Plugins(ctx context.Context, connectorsOnly bool) ([]PluginInfo, error)
	// PluginConfig returns a plugin's config definition.
	PluginConfig(ctx context.Context, plugin string) ([]connect.ConfigKeyInfo, error)
	// ValidateConfig validates a connector config against a plugin; config
	// contains "connector.class" naming that plugin.
	ValidateConfig(ctx context.Context, plugin string, config map[string]string) (connect.ConfigInfos, error)
}

// Options configures a Server. Herder is required.
type Options struct {
	Herder Herder
	// Loggers serves /admin/loggers; nil: those paths are 404.
	Loggers Loggers
	// Metrics serves GET /metrics (e.g. promhttp.Handler()); nil: 404.
	Metrics http.Handler
	// Logger receives request logs (debug) and handler panics (error);
	// nil: slog.Default().
	Logger *slog.Logger
	// Listen is the address Start listens on; "": ":8083".
	Listen string
	// RequestTimeout bounds each Herder call; 0: 90s, as Kafka Connect.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds Close's graceful phase, after which open
	// connections are closed; 0: 10s.
	ShutdownTimeout time.Duration
	// MaxBodyBytes limits request bodies; 0: 8 MiB.
	MaxBodyBytes int64
}

// Server is the REST server. Build it with New; Handler can be used
// without Start (tests, embedding).
type Server struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler
	client  *http.Client // forwards requests to other workers

	mu       sync.Mutex
	closed   bool
	srv      *http.Server
	ln       net.Listener
	done     chan struct{} // closed when the serving goroutine returns
	serveErr error

	closeOnce sync.Once
	closeErr  error

	// baseCtx is the parent of every request's context when served by
	// Start; Close cancels it once the graceful phase is over.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	// inflight counts running handlers (guarded by flightMu); Close waits
	// for it to reach zero.
	flightMu sync.Mutex
	flightCV *sync.Cond
	inflight int
}

// ErrServerClosed is returned by Start after Close.
var ErrServerClosed = errors.New("rest: server closed")

// New returns a Server for opts. It panics if opts.Herder is nil.
func New(opts Options) *Server {
	if opts.Herder == nil {
		panic("rest: Options.Herder is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Listen == "" {
		opts.Listen = ":8083"
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 90 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	s := &Server{opts: opts, log: opts.Logger, client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.flightCV = sync.NewCond(&s.flightMu)
	s.handler = s.middleware(s.routes())
	return s
}

// Handler returns the API's handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Listen and serves in a goroutine owned by the
// Server (Close waits for it). It returns once the listener is bound, so
// Addr is valid; it fails if called twice or after Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.srv != nil {
		return errors.New("rest: server already started")
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("rest: listen %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	s.srv = srv
	done := make(chan struct{})
	s.done = done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("rest: serve failed", "err", err)
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	}()
	s.log.Info("rest: listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address after Start, nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close shuts the server down: it stops accepting, waits up to
// ShutdownTimeout for in-flight requests, then cancels the contexts of the
// remaining requests and closes their connections, and returns once the
// serving goroutine and every handler have returned (Herder methods must
// honour their context). It returns the graceful phase's error (e.g. the
// deadline, when requests had to be cut short). Idempotent; later calls
// return the first call's result. Safe before Start; after Close, Start
// fails with ErrServerClosed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv, done := s.srv, s.done
		s.mu.Unlock()
		var err error
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
			err = srv.Shutdown(ctx)
			cancel()
			s.cancelBase()
			if err != nil {
				err = errors.Join(err, srv.Close())
			}
			<-done
		}
		s.cancelBase()
		s.flightMu.Lock()
		for s.inflight > 0 {
			s.flightCV.Wait()
		}
		s.flightMu.Unlock()
		s.client.CloseIdleConnections()
		s.mu.Lock()
		s.closeErr = errors.Join(err, s.serveErr)
		s.mu.Unlock()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware adds request logging, panic recovery and the request timeout.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.flightMu.Lock()
		s.inflight++
		s.flightMu.Unlock()
		defer func() {
			s.flightMu.Lock()
			s.inflight--
			if s.inflight == 0 {
				s.flightCV.Broadcast()
			}
			s.flightMu.Unlock()
		}()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value, compared as net/http does
					panic(v)
				}
				s.log.Error("rest: handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if sw.status == 0 {
					writeError(sw, fmt.Errorf("internal error: %v", v))
				}
			}
			s.log.Debug("rest: request", "method", r.Method, "path", r.URL.RequestURI(),
				"status", sw.status, "duration", time.Since(start))
		}()
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)
		}
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// writeJSON writes v as compact JSON without HTML escaping and without a
// trailing newline, as Jackson does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status, em := errorResponse(fmt.Errorf("encoding response: %w", err))
		b, _ = marshal(em)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func marshal(v any) ([]byte, error) {
	var buf jsonBuffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.b
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return b, nil
}

type jsonBuffer struct{ b []byte }

func (j *jsonBuffer) Write(p []byte) (int, error) {
	j.b = append(j.b, p...)
	return len(p), nil
}

// writeError writes err's {"error_code","message"} with its status.
func writeError(w http.ResponseWriter, err error) {
	status, em := errorResponse(err)
	writeJSON(w, status, em)
}
