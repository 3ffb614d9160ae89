// Package restclient is a typed client of a worker's Kafka Connect
// compatible REST API (see worker/rest for the server and the JSON shapes,
// which this package reuses).
//
// Every call takes a context, sends one HTTP request and returns when the
// response has been read, the context is done, or the client's per-request
// timeout passes; there are no retries. Errors:
//   - the worker answered with an error status: a *Error holding the
//     {"error_code","message"} body (match with errors.As, or the helpers
//     IsNotFound, IsConflict, IsBadRequest, StatusCode);
//   - the worker could not be reached: an *UnreachableError (matches
//     ErrUnreachable with errors.Is) whose text says so and how to fix it;
//   - anything else (timeout, a connection cut mid-response, an unreadable
//     body) wraps the underlying error with %w.
package restclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/worker/rest"
)

// DefaultURL is the REST address of a worker started with default settings
// (`tributary dev` or `tributary worker`).
const DefaultURL = "http://127.0.0.1:8083"

// DefaultHint ends the message of an UnreachableError unless Options sets
// another.
const DefaultHint = "is it running? start one with 'tributary dev'"

// Hidden is the value the worker shows instead of a password-typed config
// value (values that are ${...} references are shown as they are).
const Hidden = "[hidden]"

// ErrUnreachable is matched (errors.Is) by every UnreachableError.
var ErrUnreachable = errors.New("worker unreachable")

// Error is an error answer of the worker: its HTTP status and the message
// of its {"error_code": ..., "message": ...} body.
type Error struct {
	Code    int    // the HTTP status (Kafka Connect's error_code)
	Message string // the worker's message
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code) }

// StatusCode returns the HTTP status of the *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsNotFound reports whether the worker answered 404 (unknown connector,
// task or plugin).
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsConflict reports whether the worker answered 409 (the connector exists
// already, or a rebalance is in progress).
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsBadRequest reports whether the worker answered 400 (an invalid config,
// an unknown connector class, an offsets change on a connector that is not
// STOPPED).
func IsBadRequest(err error) bool { return StatusCode(err) == http.StatusBadRequest }

// UnreachableError says that no connection could be made to the worker.
type UnreachableError struct {
	URL    string // the worker's base URL
	Reason string // short cause, e.g. "connection refused"
	Hint   string // what to do about it
	Err    error  // the dial error
}

func (e *UnreachableError) Error() string {
	msg := fmt.Sprintf("cannot reach the Tributary worker at %s: %s", e.URL, e.Reason)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns the dial error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes every UnreachableError match ErrUnreachable.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Options tune a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Timeout bounds each request (0: only the caller's context does).
	Timeout time.Duration
	// UnreachableHint ends the message of an UnreachableError; empty means
	// DefaultHint.
	UnreachableHint string
}

// Client talks to one worker. It is safe for concurrent use.
type Client struct {
	base    string // scheme://host[:port][/prefix], no trailing slash
	hc      *http.Client
	timeout time.Duration
	hint    string
}

// New returns a client of the worker at baseURL, e.g. http://127.0.0.1:8083
// (a missing scheme means http://). It fails on a URL that is not http(s).
func New(baseURL string, opts Options) (*Client, error) {
	raw := strings.TrimSpace(baseURL)
	if raw == "" {
		return nil, errors.New("worker URL is empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("worker URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("worker URL %q: the scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("worker URL %q has no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("worker URL %q: a query or fragment is not allowed", baseURL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	hint := opts.UnreachableHint
	if hint == "" {
		hint = DefaultHint
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), hc: hc, timeout: opts.Timeout, hint: hint}, nil
}

// URL returns the worker's base URL.
func (c *Client) URL() string { return c.base }

// ServerInfo returns GET /: the worker's version and Kafka cluster id.
func (c *Client) ServerInfo(ctx context.Context) (rest.ServerInfo, error) {
	var out rest.ServerInfo
	_, err := c.do(ctx, http.MethodGet, "/", nil, &out)
	return out, err
}

// Health returns GET /health. A worker that is still starting answers 503:
// Health then returns an *Error with Code 503 and the worker's message.
func (c *Client) Health(ctx context.Context) (rest.WorkerStatus, error) {
	var out rest.WorkerStatus
	_, err := c.do(ctx, http.MethodGet, "/health", nil, &out)
	return out, err
}

// Connectors returns the names of the connectors (GET /connectors).
func (c *Client) Connectors(ctx context.Context) ([]string, error) {
	var out []string
	_, err := c.do(ctx, http.MethodGet, "/connectors", nil, &out)
	return out, err
}

// Expanded is one connector of GET /connectors?expand=...; a member is nil
// when it was not asked for.
type Expanded struct {
	Status *rest.ConnectorStateInfo `json:"status,omitempty"`
	Info   *rest.ConnectorInfo      `json:"info,omitempty"`
}

// ConnectorsExpanded returns every connector with its status and/or info
// (GET /connectors?expand=status&expand=info), by name.
func (c *Client) ConnectorsExpanded(ctx context.Context, status, info bool) (map[string]Expanded, error) {
	q := url.Values{}
	if status {
		q.Add("expand", "status")
	}
	if info {
		q.Add("expand", "info")
	}
	if len(q) == 0 {
		return nil, errors.New("ConnectorsExpanded: ask for status, info or both")
	}
	out := map[string]Expanded{}
	_, err := c.do(ctx, http.MethodGet, "/connectors?"+q.Encode(), nil, &out)
	return out, err
}

// CreateConnector creates a connector (POST /connectors). initialState is
// "", RUNNING, PAUSED or STOPPED. A connector of that name existing already
// is a 409 *Error; an invalid config is a 400 *Error.
func (c *Client) CreateConnector(ctx context.Context, name string, config map[string]string, initialState string) (rest.ConnectorInfo, error) {
	body := struct {
		Name         string            `json:"name"`
		Config       map[string]string `json:"config"`
		InitialState string            `json:"initial_state,omitempty"`
	}{name, config, initialState}
	var out rest.ConnectorInfo
	_, err := c.do(ctx, http.MethodPost, "/connectors", body, &out)
	return out, err
}

// Connector returns GET /connectors/{name}: config (passwords masked),
// tasks and type.
func (c *Client) Connector(ctx context.Context, name string) (rest.ConnectorInfo, error) {
	var out rest.ConnectorInfo
	_, err := c.do(ctx, http.MethodGet, connPath(name, ""), nil, &out)
	return out, err
}

// ConnectorConfig returns GET /connectors/{name}/config. Password-typed
// values read Hidden unless they are ${...} references.
func (c *Client) ConnectorConfig(ctx context.Context, name string) (map[string]string, error) {
	var out map[string]string
	_, err := c.do(ctx, http.MethodGet, connPath(name, "/config"), nil, &out)
	return out, err
}

// PutConnectorConfig creates or replaces a connector's config (PUT
// /connectors/{name}/config); created reports that the connector did not
// exist before. The worker validates config first (400 when invalid).
func (c *Client) PutConnectorConfig(ctx context.Context, name string, config map[string]string) (info rest.ConnectorInfo, created bool, err error) {
	status, err := c.do(ctx, http.MethodPut, connPath(name, "/config"), config, &info)
	return info, status == http.StatusCreated, err
}

// PatchConnectorConfig changes some keys of a connector's config (PATCH
// /connectors/{name}/config); a nil value deletes its key.
func (c *Client) PatchConnectorConfig(ctx context.Context, name string, patch map[string]*string) (rest.ConnectorInfo, error) {
	var out rest.ConnectorInfo
	_, err := c.do(ctx, http.MethodPatch, connPath(name, "/config"), patch, &out)
	return out, err
}

// ConnectorStatus returns GET /connectors/{name}/status.
func (c *Client) ConnectorStatus(ctx context.Context, name string) (rest.ConnectorStateInfo, error) {
	var out rest.ConnectorStateInfo
	_, err := c.do(ctx, http.MethodGet, connPath(name, "/status"), nil, &out)
	return out, err
}

// TaskStatus returns GET /connectors/{name}/tasks/{task}/status.
func (c *Client) TaskStatus(ctx context.Context, name string, task int) (rest.TaskState, error) {
	var out rest.TaskState
	_, err := c.do(ctx, http.MethodGet, connPath(name, "/tasks/"+strconv.Itoa(task)+"/status"), nil, &out)
	return out, err
}

// PauseConnector asks for the connector and its tasks to pause (PUT
// /connectors/{name}/pause). It returns once the request is accepted; the
// state changes asynchronously.
func (c *Client) PauseConnector(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPut, connPath(name, "/pause"), nil, nil)
	return err
}

// ResumeConnector asks for a paused or stopped connector to run again (PUT
// /connectors/{name}/resume); the state changes asynchronously.
func (c *Client) ResumeConnector(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPut, connPath(name, "/resume"), nil, nil)
	return err
}

// StopConnector stops the connector and releases its tasks (PUT
// /connectors/{name}/stop); its offsets may then be changed.
func (c *Client) StopConnector(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPut, connPath(name, "/stop"), nil, nil)
	return err
}

// RestartOptions choose what POST /connectors/{name}/restart restarts.
type RestartOptions struct {
	IncludeTasks bool // restart the tasks too
	OnlyFailed   bool // restart only the instances that are FAILED
}

// RestartConnector restarts a connector (POST /connectors/{name}/restart).
// With both options false the worker answers 204 and the status is nil;
// otherwise it answers 202 with the status of what it restarts.
func (c *Client) RestartConnector(ctx context.Context, name string, opts RestartOptions) (*rest.ConnectorStateInfo, error) {
	q := url.Values{}
	q.Set("includeTasks", strconv.FormatBool(opts.IncludeTasks))
	q.Set("onlyFailed", strconv.FormatBool(opts.OnlyFailed))
	var out rest.ConnectorStateInfo
	status, err := c.do(ctx, http.MethodPost, connPath(name, "/restart")+"?"+q.Encode(), nil, &out)
	if err != nil || status == http.StatusNoContent {
		return nil, err
	}
	return &out, nil
}

// RestartTask restarts one task (POST /connectors/{name}/tasks/{task}/restart).
func (c *Client) RestartTask(ctx context.Context, name string, task int) error {
	_, err := c.do(ctx, http.MethodPost, connPath(name, "/tasks/"+strconv.Itoa(task)+"/restart"), nil, nil)
	return err
}

// DeleteConnector deletes a connector (DELETE /connectors/{name}); its
// offsets stay.
func (c *Client) DeleteConnector(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, connPath(name, ""), nil, nil)
	return err
}

// Offsets returns GET /connectors/{name}/offsets. Numbers in partitions and
// offsets are json.Number (exact).
func (c *Client) Offsets(ctx context.Context, name string) (rest.ConnectorOffsets, error) {
	var out rest.ConnectorOffsets
	_, err := c.do(ctx, http.MethodGet, connPath(name, "/offsets"), nil, &out)
	return out, err
}

// AlterOffsets changes a STOPPED connector's offsets (PATCH
// /connectors/{name}/offsets; a nil Offset resets its partition) and
// returns the worker's message. A connector that is not STOPPED is a 400
// *Error.
func (c *Client) AlterOffsets(ctx context.Context, name string, offsets rest.ConnectorOffsets) (string, error) {
	var out rest.Message
	_, err := c.do(ctx, http.MethodPatch, connPath(name, "/offsets"), offsets, &out)
	return out.Message, err
}

// ResetOffsets deletes every offset of a STOPPED connector (DELETE
// /connectors/{name}/offsets) and returns the worker's message. A
// connector that is not STOPPED is a 400 *Error.
func (c *Client) ResetOffsets(ctx context.Context, name string) (string, error) {
	var out rest.Message
	_, err := c.do(ctx, http.MethodDelete, connPath(name, "/offsets"), nil, &out)
	return out.Message, err
}

// Plugins returns GET /connector-plugins: the connector classes, plus the
// converters, transformations and predicates unless connectorsOnly.
func (c *Client) Plugins(ctx context.Context, connectorsOnly bool) ([]rest.PluginInfo, error) {
	var out []rest.PluginInfo
	_, err := c.do(ctx, http.MethodGet, "/connector-plugins?connectorsOnly="+strconv.FormatBool(connectorsOnly), nil, &out)
	return out, err
}

// PluginConfig returns a plugin's config key definitions (GET
// /connector-plugins/{plugin}/config); plugin is a class name or alias.
func (c *Client) PluginConfig(ctx context.Context, plugin string) ([]connect.ConfigKeyInfo, error) {
	var out []connect.ConfigKeyInfo
	_, err := c.do(ctx, http.MethodGet, "/connector-plugins/"+url.PathEscape(plugin)+"/config", nil, &out)
	return out, err
}

// Validate validates a connector config against plugin (PUT
// /connector-plugins/{plugin}/config/validate) without changing anything.
// config must hold connector.class, naming plugin. Validation errors are
// in the result (ErrorCount, each config's Value.Errors), not in err; an
// unknown class is a 400 *Error.
func (c *Client) Validate(ctx context.Context, plugin string, config map[string]string) (connect.ConfigInfos, error) {
	var out connect.ConfigInfos
	_, err := c.do(ctx, http.MethodPut, "/connector-plugins/"+url.PathEscape(plugin)+"/config/validate", config, &out)
	return out, err
}

// connPath is /connectors/{name}{suffix} with name escaped.
func connPath(name, suffix string) string {
	return "/connectors/" + url.PathEscape(name) + suffix
}

// maxErrorBody bounds how much of a non-JSON error body is quoted.
const maxErrorBody = 300

// do sends one request (body encoded as JSON when non-nil) and decodes a
// 2xx response into out (when non-nil and the response has a body). It
// returns the HTTP status, and an *Error for a status >= 400.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, c.transportError(ctx, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading the response: %w", c.transportError(ctx, method, path, err))
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode, decodeError(resp.StatusCode, b)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return resp.StatusCode, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: the answer of %s is not the expected JSON (is it a Tributary or Kafka Connect worker?): %w", method, path, c.base, err)
	}
	return resp.StatusCode, nil
}

// decodeError turns an error response into an *Error: the worker's
// {"error_code","message"} body, or the start of any other body.
func decodeError(status int, b []byte) *Error {
	var em struct {
		ErrorCode int     `json:"error_code"`
		Message   *string `json:"message"`
	}
	if json.Unmarshal(b, &em) == nil && em.Message != nil {
		return &Error{Code: status, Message: *em.Message}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > maxErrorBody {
		msg = msg[:maxErrorBody] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Code: status, Message: msg}
}

// transportError explains a failed round trip: no connection (an
// UnreachableError), the per-request timeout, or the caller's context.
func (c *Client) transportError(ctx context.Context, method, path string, err error) error {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		reason := "cannot resolve " + dns.Name
		if dns.IsNotFound {
			reason = "no such host " + dns.Name
		}
		return &UnreachableError{URL: c.base, Reason: reason, Hint: c.hint, Err: err}
	case errors.As(err, &op) && op.Op == "dial":
		reason := op.Err.Error()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			reason = "connection refused"
		case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
			reason = "no route to host"
		case op.Timeout():
			reason = "connection timed out"
		}
		return &UnreachableError{URL: c.base, Reason: reason, Hint: c.hint, Err: err}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && c.timeout > 0:
		return fmt.Errorf("%s %s: the worker at %s did not answer within %v: %w", method, path, c.base, c.timeout, err)
	}
	return fmt.Errorf("%s %s at %s: %w", method, path, c.base, err)
}
