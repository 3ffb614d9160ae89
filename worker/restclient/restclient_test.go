package restclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The client against a real worker is tested end to end by cmd/tributary's
// connectors tests; these cover what a worker cannot show: URLs, dial
// failures, timeouts and answers from servers that are not workers.

func TestNewNormalizesTheURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8083":              "http://127.0.0.1:8083",
		"http://127.0.0.1:8083/":      "http://127.0.0.1:8083",
		"https://connect.example/api": "https://connect.example/api",
	} {
		c, err := New(in, Options{})
		if err != nil || c.URL() != want {
			t.Errorf("New(%q): %v, %v; want %s", in, c, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://h/?q=1"} {
		if _, err := New(bad, Options{}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestUnreachableWorker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(addr, Options{UnreachableHint: "start it"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Connectors(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %#v, want an UnreachableError", err)
	}
	want := "cannot reach the Tributary worker at http://" + addr + ": connection refused (start it)"
	if err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

func TestErrorsOfOtherServers(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/connectors/json":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error_code": 409, "message": "rebalancing"}`))
		case "/connectors/html":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("<html>" + strings.Repeat("x", 1000) + "</html>"))
		case "/connectors/slow":
			<-release
		default:
			w.Write([]byte("not json"))
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the slow handler
	c, err := New(srv.URL, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Connector(ctx, "json")
	var e *Error
	if !errors.As(err, &e) || e.Code != 409 || e.Message != "rebalancing" || !IsConflict(err) || IsNotFound(err) {
		t.Fatalf("err = %#v", err)
	}
	_, err = c.Connector(ctx, "html")
	if !IsNotFound(err) || len(err.Error()) > 400 || !strings.HasPrefix(err.Error(), "<html>xxx") {
		t.Fatalf("err = %v", err)
	}
	if _, err = c.Connector(ctx, "other"); err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
		t.Fatalf("err = %v", err)
	}
	if _, err = c.Connector(ctx, "slow"); err == nil || !strings.Contains(err.Error(), "did not answer within 200ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if StatusCode(errors.New("x")) != 0 {
		t.Fatal("StatusCode of a non-*Error")
	}
}
