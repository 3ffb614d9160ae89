package rest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// forwardingWorkers starts real HTTP servers for a leader and two followers whose
// herders redirect config writes (follower1 to the leader, follower2 to
// follower1, as a worker with a stale view of the leader would).
func forwardingWorkers(t *testing.T) (leader, follower1, follower2 testServer, urls [3]string) {
	t.Helper()
	leader = newTestServer(t, nil)
	ls := httptest.NewServer(leader.srv.Handler())
	t.Cleanup(ls.Close)
	follower1 = newTestServer(t, func(h *fakeHerder, _ *Options) { h.redirect = ls.URL })
	f1 := httptest.NewServer(follower1.srv.Handler())
	t.Cleanup(f1.Close)
	follower2 = newTestServer(t, func(h *fakeHerder, _ *Options) { h.redirect = f1.URL })
	f2 := httptest.NewServer(follower2.srv.Handler())
	t.Cleanup(f2.Close)
	t.Cleanup(func() { leader.srv.Close(); follower1.srv.Close(); follower2.srv.Close() })
	return leader, follower1, follower2, [3]string{ls.URL, f1.URL, f2.URL}
}

func httpCall(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestForwardToLeader(t *testing.T) {
	leader, follower1, _, urls := forwardingWorkers(t)
	create := `{"name":"fwd","config":{"connector.class":"FileStreamSink","topics":"t","file":"/tmp/x"}}`
	code, hdr, body := httpCall(t, "POST", urls[1]+"/connectors", create)
	if code != http.StatusCreated {
		t.Fatalf("POST via follower: %d %s", code, body)
	}
	if hdr.Get("Content-Type") != "application/json" || !strings.Contains(body, `"name":"fwd"`) {
		t.Fatalf("relayed answer: %v %s", hdr, body)
	}
	if !strings.HasPrefix(hdr.Get("Location"), urls[0]+"/connectors/fwd") {
		t.Fatalf("Location %q: want the leader's", hdr.Get("Location"))
	}
	if _, ok := leader.herder.conns["fwd"]; !ok {
		t.Fatal("the leader did not store the connector")
	}
	if _, ok := follower1.herder.conns["fwd"]; ok {
		t.Fatal("the follower stored the connector itself")
	}
	// Errors of the leader come back as they are.
	if code, _, body = httpCall(t, "POST", urls[1]+"/connectors", create); code != http.StatusConflict || !strings.Contains(body, "already exists") {
		t.Fatalf("second create: %d %s", code, body)
	}
	// PUT with a body, DELETE without, the internal task-config endpoint.
	if code, _, body = httpCall(t, "PUT", urls[1]+"/connectors/fwd2/config", `{"connector.class":"FileStreamSink","topics":"t","file":"/tmp/y"}`); code != http.StatusCreated {
		t.Fatalf("PUT via follower: %d %s", code, body)
	}
	if code, _, body = httpCall(t, "POST", urls[1]+"/connectors/fwd2/tasks", `[{"task.class":"x","n":"1"},{"n":2}]`); code != http.StatusNoContent {
		t.Fatalf("task configs via follower: %d %s", code, body)
	}
	if got := leader.herder.taskConfigs["fwd2"]; len(got) != 2 || got[1]["n"] != "2" {
		t.Fatalf("leader task configs: %v", got)
	}
	if code, _, body = httpCall(t, "DELETE", urls[1]+"/connectors/fwd2", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE via follower: %d %s", code, body)
	}
	if _, ok := leader.herder.conns["fwd2"]; ok {
		t.Fatal("the leader still has fwd2")
	}
}

func TestForwardHops(t *testing.T) {
	leader, _, _, urls := forwardingWorkers(t)
	create := func(name string) string {
		return `{"name":"` + name + `","config":{"connector.class":"FileStreamSink","topics":"t","file":"/tmp/x"}}`
	}
	// Two hops (follower2 -> follower1 -> leader) are allowed.
	if code, _, body := httpCall(t, "POST", urls[2]+"/connectors", create("two-hops")); code != http.StatusCreated {
		t.Fatalf("two hops: %d %s", code, body)
	}
	if _, ok := leader.herder.conns["two-hops"]; !ok {
		t.Fatal("two hops: not stored on the leader")
	}
	// A request already forwarded twice is not forwarded again.
	code, _, body := httpCall(t, "POST", urls[1]+"/connectors?forward=false", create("three-hops"))
	var em ErrorMessage
	if err := json.Unmarshal([]byte(body), &em); err != nil || code != http.StatusConflict || em.Message != msgTooManyHops {
		t.Fatalf("third hop: %d %s", code, body)
	}
	// No known leader (rebalance): 409 with Kafka Connect's message.
	nobody := newTestServer(t, func(h *fakeHerder, _ *Options) { h.redirect = "-" })
	rec := httptest.NewRecorder()
	nobody.srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/connectors", strings.NewReader(create("x"))))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), msgNoLeader) {
		t.Fatalf("no leader: %d %s", rec.Code, rec.Body)
	}
	// A dead leader: the follower answers 500 with the cause.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	orphan := newTestServer(t, func(h *fakeHerder, _ *Options) { h.redirect = deadURL })
	rec = httptest.NewRecorder()
	orphan.srv.Handler().ServeHTTP(rec, httptest.NewRequest("DELETE", "/connectors/file-source", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "IO Error trying to forward REST request") {
		t.Fatalf("dead leader: %d %s", rec.Code, rec.Body)
	}
}
