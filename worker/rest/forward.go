package rest

// Request forwarding, as Kafka Connect's HerderRequestHandler does it. A
// Herder method that must run elsewhere (config writes on the leader,
// restarts where the connector runs) returns a *Redirect; the Server then
// sends the same request (method, path, query, body) to the Redirect's URL
// and relays the answer (status, Content-Type, Location, body).
//
// The query parameter "forward" bounds the hops: a request from a client
// has none and may be forwarded with forward=true; a request that came with
// forward=true may be forwarded once more with forward=false; one that came
// with forward=false is answered 409 instead ("Cannot complete request
// because of a conflicting operation (e.g. worker rebalance)"): the
// cluster's view changed under the request and the client should retry.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const (
	msgNoLeader    = "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway."
	msgTooManyHops = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"
)

// bodyRecorder keeps what a handler read of the request body, so that the
// request can be forwarded after the handler decoded it.
type bodyRecorder struct {
	r   io.ReadCloser
	buf bytes.Buffer
}

func (b *bodyRecorder) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.buf.Write(p[:n])
	return n, err
}

func (b *bodyRecorder) Close() error { return b.r.Close() }

// all returns the whole body: what was read plus the rest.
func (b *bodyRecorder) all() ([]byte, error) {
	if _, err := io.Copy(&b.buf, b.r); err != nil {
		return nil, err
	}
	return b.buf.Bytes(), nil
}

// forward serves r from the worker the Redirect names.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body *bodyRecorder, to *Redirect) error {
	q := r.URL.Query()
	next := "true"
	switch q.Get("forward") {
	case "":
	case "true":
		next = "false"
	default:
		return Conflict("%s", msgTooManyHops)
	}
	if to.URL == "" {
		return &Error{Status: http.StatusConflict, Message: msgNoLeader, Kind: ErrRebalanceInProgress}
	}
	base, err := url.Parse(strings.TrimRight(to.URL, "/"))
	if err != nil || base.Host == "" {
		return fmt.Errorf("forwarding to %q: not a worker URL", to.URL)
	}
	var payload []byte
	if body != nil {
		if payload, err = body.all(); err != nil {
			return BadRequest("Cannot read request body: %v", err)
		}
	}
	q.Set("forward", next)
	target := *base
	target.Path = base.Path + r.URL.Path
	target.RawPath = ""
	if r.URL.RawPath != "" {
		target.RawPath = base.EscapedPath() + r.URL.RawPath
	}
	target.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), bytes.NewReader(payload))
	if err != nil {
		return err
	}
	for _, h := range []string{"Content-Type", "Accept", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	s.log.Debug("rest: forwarding", "method", r.Method, "to", target.String(), "reason", to.Reason)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("IO Error trying to forward REST request: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("IO Error reading the forwarded answer of %s: %w", base.Host, err)
	}
	for _, h := range []string{"Content-Type", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
	return nil
}
