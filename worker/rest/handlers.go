package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/tributary-data/tributary/connect"
)

// Messages shared with Kafka Connect (its text, so scripts that grep keep working).
const (
	msgHealthy       = "Worker has completed startup and is ready to handle requests."
	msgStarting      = "Worker is still starting up."
	msgNoOffsets     = "Partitions / offsets need to be provided for an alter offsets request"
	msgNoLevel       = "Desired 'level' parameter was not specified in request."
	msgHTTPNotFound  = "HTTP 404 Not Found"
	msgHTTPNoMethod  = "HTTP 405 Method Not Allowed"
	nameConfig       = "name"
	connectorClass   = "connector.class"
	connectorSuffix  = "Connector"
	scopeWorker      = "worker"
	scopeCluster     = "cluster"
	errNotSupported  = "Cluster-wide logger level changes are not supported by this worker"
	msgNameMismatchF = "Connector name configuration (%s) doesn't match connector name in the URL (%s)"
)

// routes builds the mux. Unknown paths and wrong methods get JSON errors.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(patterns string, h func(http.ResponseWriter, *http.Request) error) {
		for _, p := range strings.Split(patterns, "|") {
			mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
				var body *bodyRecorder
				if r.Body != nil && r.Method != http.MethodGet {
					body = &bodyRecorder{r: r.Body}
					r.Body = body
				}
				err := h(w, r)
				var to *Redirect
				if errors.As(err, &to) {
					err = s.forward(w, r, body, to)
				}
				if err != nil {
					writeError(w, err)
				}
			})
		}
	}
	handle("GET /{$}", s.serverInfo)
	handle("GET /health", s.health)

	handle("GET /connectors|GET /connectors/{$}", s.listConnectors)
	handle("POST /connectors|POST /connectors/{$}", s.createConnector)
	handle("GET /connectors/{connector}", s.getConnector)
	handle("DELETE /connectors/{connector}", s.connectorAction(http.StatusNoContent, s.opts.Herder.DeleteConnector))
	handle("GET /connectors/{connector}/config", s.getConnectorConfig)
	handle("PUT /connectors/{connector}/config", s.putConnectorConfig)
	handle("PATCH /connectors/{connector}/config", s.patchConnectorConfig)
	handle("GET /connectors/{connector}/status", s.connectorStatus)
	handle("POST /connectors/{connector}/restart", s.restartConnector)
	handle("PUT /connectors/{connector}/pause", s.connectorAction(http.StatusAccepted, s.opts.Herder.PauseConnector))
	handle("PUT /connectors/{connector}/resume", s.connectorAction(http.StatusAccepted, s.opts.Herder.ResumeConnector))
	handle("PUT /connectors/{connector}/stop", s.connectorAction(http.StatusNoContent, s.opts.Herder.StopConnector))
	handle("GET /connectors/{connector}/tasks", s.taskConfigs)
	handle("POST /connectors/{connector}/tasks", s.putTaskConfigs)
	handle("GET /connectors/{connector}/tasks/{task}/status", s.taskStatus)
	handle("POST /connectors/{connector}/tasks/{task}/restart", s.restartTask)
	handle("GET /connectors/{connector}/topics", s.connectorTopics)
	handle("PUT /connectors/{connector}/topics/reset", s.connectorAction(http.StatusAccepted, s.opts.Herder.ResetConnectorTopics))
	handle("GET /connectors/{connector}/offsets", s.getOffsets)
	handle("PATCH /connectors/{connector}/offsets", s.alterOffsets)
	handle("DELETE /connectors/{connector}/offsets", s.resetOffsets)

	handle("GET /connector-plugins|GET /connector-plugins/{$}", s.listPlugins)
	handle("GET /connector-plugins/{plugin}/config", s.pluginConfig)
	handle("PUT /connector-plugins/{plugin}/config/validate", s.validateConfig)

	handle("GET /admin/loggers|GET /admin/loggers/{$}", s.listLoggers)
	handle("GET /admin/loggers/{logger}", s.getLogger)
	handle("PUT /admin/loggers/{logger}", s.setLogger)

	handle("GET /metrics", s.metrics)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: let the mux decide (404, 405 or a path-cleaning
		// redirect), then answer 404/405 in JSON.
		rec := &captureWriter{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			writeError(w, &Error{Status: http.StatusNotFound, Message: msgHTTPNotFound, Kind: ErrNotFound})
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Message: msgHTTPNoMethod})
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
		}
	})
}

// captureWriter buffers a response.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

// decodeBody decodes a JSON request body into v; a malformed or empty body
// is a bad request.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("Request body exceeds %d bytes", tooBig.Limit)}
		}
		return BadRequest("Cannot read request body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return BadRequest("Request body is empty; a JSON document is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return BadRequest("%s", jsonErrorMessage(err))
	}
	if dec.More() {
		return BadRequest("Malformed JSON in request body: unexpected data after the JSON document")
	}
	return nil
}

// jsonErrorMessage describes a body decoding error in JSON terms (never Go
// type names).
func jsonErrorMessage(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var val *valueTypeError
	switch {
	case errors.As(err, &val):
		return val.msg
	case errors.As(err, &syn):
		return fmt.Sprintf("Malformed JSON in request body at offset %d: %s", syn.Offset, syn.Error())
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "Malformed JSON in request body: unexpected end of input"
	case errors.As(err, &typ):
		where := ""
		if typ.Field != "" {
			where = fmt.Sprintf(" for field %q", typ.Field)
		}
		return fmt.Sprintf("Cannot deserialize JSON %s%s: expected %s", typ.Value, where, jsonKind(typ.Type))
	}
	return "Malformed JSON in request body: " + err.Error()
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}

// boolParam parses an optional boolean query parameter ("true"/"false",
// any case).
func boolParam(r *http.Request, name string, def bool) (bool, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return def, nil
	}
	switch v := q.Get(name); strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		return def, nil
	default:
		return false, BadRequest("Invalid value %s for query parameter %s: must be true or false", v, name)
	}
}

// location is the absolute URL of a connector, as JAX-RS renders a
// relative Location.
func location(r *http.Request, name string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/connectors/" + url.PathEscape(name)
}

func (s *Server) serverInfo(w http.ResponseWriter, r *http.Request) error {
	info, err := s.opts.Herder.ServerInfo(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Herder.Ready(r.Context()); err != nil {
		msg := msgStarting
		if t := err.Error(); t != "" {
			msg += " " + t
		}
		writeJSON(w, http.StatusServiceUnavailable, WorkerStatus{Status: "starting", Message: msg})
		return nil
	}
	writeJSON(w, http.StatusOK, WorkerStatus{Status: "healthy", Message: msgHealthy})
	return nil
}

func (s *Server) listConnectors(w http.ResponseWriter, r *http.Request) error {
	ctx := WithReadScope(r.Context()) // one read of each topic for every connector listed
	names, err := s.opts.Herder.Connectors(ctx)
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	q := r.URL.Query()
	if !q.Has("expand") {
		writeJSON(w, http.StatusOK, names)
		return nil
	}
	// Expansions in the order first requested (Kafka's HashMap keeps
	// "status" and "info" in one bucket, in insertion order).
	var expand []string
	for _, e := range q["expand"] {
		if (e == "status" || e == "info") && !contains(expand, e) {
			expand = append(expand, e)
		}
	}
	out := make(map[string]json.RawMessage, len(names))
	for _, name := range names {
		var obj bytes.Buffer
		obj.WriteByte('{')
		skip := false
		for i, e := range expand {
			var v any
			switch e {
			case "status":
				st, err := s.opts.Herder.ConnectorStatus(ctx, name)
				if err != nil {
					if errors.Is(err, ErrNotFound) { // deleted meanwhile
						skip = true
						break
					}
					return err
				}
				v = normalizeStatus(st)
			case "info":
				info, err := s.opts.Herder.ConnectorInfo(ctx, name)
				if err != nil {
					if errors.Is(err, ErrNotFound) {
						skip = true
						break
					}
					return err
				}
				v = normalizeInfo(info)
			}
			if skip {
				break
			}
			b, err := marshal(v)
			if err != nil {
				return err
			}
			if i > 0 {
				obj.WriteByte(',')
			}
			fmt.Fprintf(&obj, "%q:", e)
			obj.Write(b)
		}
		if skip {
			continue
		}
		obj.WriteByte('}')
		out[name] = obj.Bytes()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) createConnector(w http.ResponseWriter, r *http.Request) error {
	var req createConnectorRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	name := ""
	if req.Name != nil {
		name = strings.TrimSpace(*req.Name)
	}
	if name == "" {
		return BadRequest("Connector name must be provided in the request's \"name\" field")
	}
	if req.Config == nil || *req.Config == nil {
		return BadRequest("Connector config must be provided in the request's \"config\" field")
	}
	config := req.Config.strings()
	if err := checkName(name, config); err != nil {
		return err
	}
	initial := ""
	if req.InitialState != nil {
		initial = strings.ToUpper(*req.InitialState)
		switch initial {
		case StateRunning, StatePaused, StateStopped:
		default:
			return BadRequest("Invalid initial_state %s: must be one of RUNNING, PAUSED, STOPPED", *req.InitialState)
		}
	}
	info, err := s.opts.Herder.CreateConnector(r.Context(), name, config, initial)
	if err != nil {
		return err
	}
	w.Header().Set("Location", location(r, name))
	writeJSON(w, http.StatusCreated, normalizeInfo(info))
	return nil
}

// checkName checks that config's "name", if any, equals the connector's
// name and sets it otherwise, as Kafka's checkAndPutConnectorConfigName.
func checkName(name string, config map[string]string) error {
	if included, ok := config[nameConfig]; ok {
		if included != name {
			return BadRequest(msgNameMismatchF, included, name)
		}
		return nil
	}
	config[nameConfig] = name
	return nil
}

func (s *Server) getConnector(w http.ResponseWriter, r *http.Request) error {
	info, err := s.opts.Herder.ConnectorInfo(r.Context(), r.PathValue("connector"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalizeInfo(info))
	return nil
}

func (s *Server) getConnectorConfig(w http.ResponseWriter, r *http.Request) error {
	info, err := s.opts.Herder.ConnectorInfo(r.Context(), r.PathValue("connector"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalizeInfo(info).Config)
	return nil
}

func (s *Server) putConnectorConfig(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("connector")
	var body configMap
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body == nil {
		return BadRequest("Connector config must be a JSON object")
	}
	config := body.strings()
	if err := checkName(name, config); err != nil {
		return err
	}
	info, created, err := s.opts.Herder.PutConnectorConfig(r.Context(), name, config)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		w.Header().Set("Location", location(r, name))
		status = http.StatusCreated
	}
	writeJSON(w, status, normalizeInfo(info))
	return nil
}

func (s *Server) patchConnectorConfig(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("connector")
	var body configMap
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body == nil {
		return BadRequest("Connector config patch must be a JSON object")
	}
	if v, ok := body[nameConfig]; ok && v != nil && *v != name {
		return BadRequest(msgNameMismatchF, *v, name)
	}
	info, err := s.opts.Herder.PatchConnectorConfig(r.Context(), name, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalizeInfo(info))
	return nil
}

func (s *Server) connectorStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.opts.Herder.ConnectorStatus(r.Context(), r.PathValue("connector"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalizeStatus(st))
	return nil
}

func (s *Server) restartConnector(w http.ResponseWriter, r *http.Request) error {
	includeTasks, err := boolParam(r, "includeTasks", false)
	if err != nil {
		return err
	}
	onlyFailed, err := boolParam(r, "onlyFailed", false)
	if err != nil {
		return err
	}
	name := r.PathValue("connector")
	if !includeTasks && !onlyFailed {
		if err := s.opts.Herder.RestartConnector(r.Context(), name); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	st, err := s.opts.Herder.RestartConnectorAndTasks(r.Context(), name, includeTasks, onlyFailed)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, normalizeStatus(st))
	return nil
}

func (s *Server) taskConfigs(w http.ResponseWriter, r *http.Request) error {
	tasks, err := s.opts.Herder.TaskConfigs(r.Context(), r.PathValue("connector"))
	if err != nil {
		return err
	}
	if tasks == nil {
		tasks = []TaskInfo{}
	}
	for i := range tasks {
		if tasks[i].Config == nil {
			tasks[i].Config = map[string]string{}
		}
	}
	writeJSON(w, http.StatusOK, tasks)
	return nil
}

// taskID parses {task}; a non-number is 404 as Jersey answers an
// unconvertible path parameter.
// putTaskConfigs is Kafka Connect's internal endpoint through which a
// worker running a connector hands the connector's task configs to the
// leader, the only writer of the config topic.
func (s *Server) putTaskConfigs(w http.ResponseWriter, r *http.Request) error {
	var body []configMap
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	tasks := make([]map[string]string, len(body))
	for i, c := range body {
		if c == nil {
			return BadRequest("Task config %d must be a JSON object", i)
		}
		tasks[i] = c.strings()
	}
	if err := s.opts.Herder.PutTaskConfigs(r.Context(), r.PathValue("connector"), tasks); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func taskID(r *http.Request) (int, error) {
	t, err := strconv.Atoi(r.PathValue("task"))
	if err != nil {
		return 0, &Error{Status: http.StatusNotFound, Message: msgHTTPNotFound, Kind: ErrNotFound}
	}
	return t, nil
}

func (s *Server) taskStatus(w http.ResponseWriter, r *http.Request) error {
	task, err := taskID(r)
	if err != nil {
		return err
	}
	st, err := s.opts.Herder.TaskStatus(r.Context(), r.PathValue("connector"), task)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) restartTask(w http.ResponseWriter, r *http.Request) error {
	task, err := taskID(r)
	if err != nil {
		return err
	}
	if err := s.opts.Herder.RestartTask(r.Context(), r.PathValue("connector"), task); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) connectorTopics(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("connector")
	topics, err := s.opts.Herder.ConnectorTopics(r.Context(), name)
	if err != nil {
		return err
	}
	if topics == nil {
		topics = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]activeTopics{name: {Topics: topics}})
	return nil
}

func (s *Server) getOffsets(w http.ResponseWriter, r *http.Request) error {
	offs, err := s.opts.Herder.ConnectorOffsets(r.Context(), r.PathValue("connector"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalizeOffsets(offs))
	return nil
}

func (s *Server) alterOffsets(w http.ResponseWriter, r *http.Request) error {
	var body *ConnectorOffsets
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body == nil || len(body.Offsets) == 0 {
		return BadRequest(msgNoOffsets)
	}
	msg, err := s.opts.Herder.AlterConnectorOffsets(r.Context(), r.PathValue("connector"), *body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, msg)
	return nil
}

func (s *Server) resetOffsets(w http.ResponseWriter, r *http.Request) error {
	msg, err := s.opts.Herder.ResetConnectorOffsets(r.Context(), r.PathValue("connector"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, msg)
	return nil
}

func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request) error {
	connectorsOnly, err := boolParam(r, "connectorsOnly", true)
	if err != nil {
		return err
	}
	plugins, err := s.opts.Herder.Plugins(r.Context(), connectorsOnly)
	if err != nil {
		return err
	}
	if plugins == nil {
		plugins = []PluginInfo{}
	}
	writeJSON(w, http.StatusOK, plugins)
	return nil
}

func (s *Server) pluginConfig(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.opts.Herder.PluginConfig(r.Context(), r.PathValue("plugin"))
	if err != nil {
		return err
	}
	if keys == nil {
		writeJSON(w, http.StatusOK, []struct{}{})
		return nil
	}
	writeJSON(w, http.StatusOK, keys)
	return nil
}

// normalizedPluginName drops a "Connector" suffix, as Kafka's
// ConnectorPluginsResource does before comparing plugin names.
func normalizedPluginName(n string) string {
	if len(n) > len(connectorSuffix) && strings.HasSuffix(n, connectorSuffix) {
		return n[:len(n)-len(connectorSuffix)]
	}
	return n
}

// javaMapString renders a config as Java's Map.toString (keys sorted).
func javaMapString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + m[k])
	}
	b.WriteByte('}')
	return b.String()
}

func (s *Server) validateConfig(w http.ResponseWriter, r *http.Request) error {
	plugin := r.PathValue("plugin")
	var body configMap
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body == nil {
		return BadRequest("Connector config must be a JSON object")
	}
	config := body.strings()
	class, ok := config[connectorClass]
	if !ok {
		return BadRequest("Connector config %s contains no connector type", javaMapString(config))
	}
	if !strings.HasSuffix(normalizedPluginName(class), normalizedPluginName(plugin)) {
		return BadRequest("Included connector type %s does not match request type %s", class, plugin)
	}
	infos, err := s.opts.Herder.ValidateConfig(r.Context(), plugin, config)
	if err != nil {
		return err
	}
	if infos.Groups == nil {
		infos.Groups = []string{}
	}
	if infos.Configs == nil {
		infos.Configs = []connect.ConfigInfo{}
	}
	writeJSON(w, http.StatusOK, infos)
	return nil
}

func (s *Server) loggers() (Loggers, error) {
	if s.opts.Loggers == nil {
		return nil, &Error{Status: http.StatusNotFound, Message: msgHTTPNotFound, Kind: ErrNotFound}
	}
	return s.opts.Loggers, nil
}

func (s *Server) listLoggers(w http.ResponseWriter, r *http.Request) error {
	l, err := s.loggers()
	if err != nil {
		return err
	}
	all := l.All()
	if all == nil {
		all = map[string]LoggerLevel{}
	}
	writeJSON(w, http.StatusOK, all)
	return nil
}

func (s *Server) getLogger(w http.ResponseWriter, r *http.Request) error {
	l, err := s.loggers()
	if err != nil {
		return err
	}
	name := r.PathValue("logger")
	lvl, ok := l.Level(name)
	if !ok {
		return NotFound("Logger %s not found.", name)
	}
	writeJSON(w, http.StatusOK, lvl)
	return nil
}

func (s *Server) setLogger(w http.ResponseWriter, r *http.Request) error {
	l, err := s.loggers()
	if err != nil {
		return err
	}
	name := r.PathValue("logger")
	var body configMap
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	lv, ok := body["level"]
	if !ok || lv == nil {
		return BadRequest(msgNoLevel)
	}
	_, level, ok := ParseLevel(*lv)
	if !ok {
		return NotFound("invalid log level '%s'.", *lv) // Kafka answers 404 here
	}
	scope := r.URL.Query().Get("scope")
	if strings.EqualFold(scope, scopeCluster) {
		cl, ok := s.opts.Herder.(ClusterLoggers)
		if !ok {
			return BadRequest(errNotSupported)
		}
		if err := cl.SetClusterLoggerLevel(r.Context(), name, level); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if scope != "" && !strings.EqualFold(scope, scopeWorker) {
		s.log.Warn("rest: invalid logger scope; using worker scope", "scope", scope)
	}
	affected, err := l.SetLevel(name, level)
	if err != nil {
		return err
	}
	if affected == nil {
		affected = []string{}
	}
	writeJSON(w, http.StatusOK, affected)
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Metrics == nil {
		return &Error{Status: http.StatusNotFound, Message: msgHTTPNotFound, Kind: ErrNotFound}
	}
	s.opts.Metrics.ServeHTTP(w, r)
	return nil
}

// connectorAction serves the endpoints that run one herder operation on the
// path's connector and answer a bare status (delete, pause, resume, stop,
// topics/reset).
func (s *Server) connectorAction(status int, op func(ctx context.Context, name string) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := op(r.Context(), r.PathValue("connector")); err != nil {
			return err
		}
		w.WriteHeader(status)
		return nil
	}
}
