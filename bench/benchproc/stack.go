package benchproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Stack is what a connector benchmark run needs: `tributary broker` and
// one `tributary worker` (plugin path: the folder of the tributary binary),
// with the REST calls the benchmarks make. Stop ends both; it is
// idempotent.
type Stack struct {
	Broker, Worker *Proc
	Kafka          string // the broker's address
	REST           string // the worker's REST host:port
}

// StartStack starts a broker (data under dir) and a worker in group with
// the given --set key=value settings, and waits until the worker is
// healthy. On error it stops what it started.
func StartStack(ctx context.Context, tributary, dir, group string, sets ...string) (s *Stack, err error) {
	s = &Stack{}
	defer func() {
		if err != nil {
			s.Stop(5 * time.Second)
		}
	}()
	if s.Kafka, err = FreeAddr(); err != nil {
		return nil, err
	}
	if s.Broker, err = Start("broker", []string{tributary, "broker", "--listen", s.Kafka, "--data-dir", filepath.Join(dir, "broker-data")}, dir); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := WaitTCP(wctx, s.Kafka, s.Broker); err != nil {
		return nil, err
	}
	if s.REST, err = FreeAddr(); err != nil {
		return nil, err
	}
	argv := []string{tributary, "worker", "--bootstrap-servers", s.Kafka, "--group-id", group,
		"--rest-listen", s.REST, "--plugin-path", filepath.Dir(tributary)}
	for _, kv := range sets {
		argv = append(argv, "--set", kv)
	}
	if s.Worker, err = Start("worker", argv, dir); err != nil {
		return nil, err
	}
	hctx, hcancel := context.WithTimeout(ctx, 60*time.Second)
	defer hcancel()
	for {
		code, _, err := s.HTTP(hctx, http.MethodGet, "/health", nil)
		if err == nil && code == http.StatusOK {
			return s, nil
		}
		if err := s.Worker.Alive(); err != nil {
			return nil, err
		}
		if err := Sleep(hctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("the worker did not become healthy: %w", err)
		}
	}
}

// Stop stops the worker, then the broker, each gracefully within grace.
func (s *Stack) Stop(grace time.Duration) {
	if s.Worker != nil {
		s.Worker.Stop(grace)
	}
	if s.Broker != nil {
		s.Broker.Stop(grace)
	}
}

// HTTP calls the worker's REST API (body JSON-encoded unless nil) and
// returns the status and the response body.
func (s *Stack) HTTP(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.REST+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// PostConnector creates a connector, retrying for up to 30 s while the
// worker answers 409 (rebalancing).
func (s *Stack) PostConnector(ctx context.Context, name string, config map[string]string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b, err := s.HTTP(ctx, http.MethodPost, "/connectors", map[string]any{"name": name, "config": config})
		switch {
		case err != nil:
			return fmt.Errorf("creating connector %s: %w", name, err)
		case code == http.StatusCreated:
			return nil
		case code == http.StatusConflict && time.Now().Before(deadline):
			if err := Sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		default:
			return fmt.Errorf("creating connector %s: %d %s", name, code, strings.TrimSpace(string(b)))
		}
	}
}

// DeleteConnector deletes a connector and waits (up to 15 s) until the
// worker's plugin processes running it ended, so that stopping the worker
// afterwards (SIGTERM to its process group) does not kill them mid-task.
func (s *Stack) DeleteConnector(name string) { s.DeleteConnectors(name) }

// DeleteConnectors deletes connectors and then waits (up to 15 s) until the
// worker's plugin processes running them ended: until at most one of the
// plugin processes that ran before remains per plugin binary (the
// validator the worker keeps for a minute after a POST may live on). Give
// every connector of the stack at once: processes of one left running keep
// the wait going until its end.
func (s *Stack) DeleteConnectors(names ...string) {
	if s.Worker == nil || s.Worker.Dead() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	before := map[int]string{}
	for _, pid := range ChildrenOf(s.Worker.PID()) {
		before[pid] = Binary(pid)
	}
	deleted := 0
	for _, name := range names {
		if code, _, err := s.HTTP(ctx, http.MethodDelete, "/connectors/"+name, nil); err == nil && (code == http.StatusNoContent || code == http.StatusNotFound) {
			deleted++
		}
	}
	if deleted == 0 {
		return
	}
	for {
		alive := map[string]int{}
		most := 0
		for pid, bin := range before {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				alive[bin]++
				most = max(most, alive[bin])
			}
		}
		if most <= 1 || Sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

// Status returns a connector's status, for messages.
func (s *Stack) Status(name string) string {
	if s.REST == "" {
		return "(no worker)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, b, err := s.HTTP(ctx, http.MethodGet, "/connectors/"+name+"/status", nil)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", code, bytes.TrimSpace(b))
}

// Failed returns an error when the connector or one of its tasks is
// FAILED; nil otherwise, also when the status cannot be read (the callers'
// waits time out then).
func (s *Stack) Failed(ctx context.Context, name string) error {
	code, b, err := s.HTTP(ctx, http.MethodGet, "/connectors/"+name+"/status", nil)
	if err != nil || code != http.StatusOK {
		return nil
	}
	var st struct {
		Connector struct {
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"connector"`
		Tasks []struct {
			ID    int    `json:"id"`
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"tasks"`
	}
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	if st.Connector.State == "FAILED" {
		return fmt.Errorf("connector %s FAILED: %s", name, st.Connector.Trace)
	}
	for _, t := range st.Tasks {
		if t.State == "FAILED" {
			return fmt.Errorf("task %s/%d FAILED: %s", name, t.ID, t.Trace)
		}
	}
	return nil
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
