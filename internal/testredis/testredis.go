// Package testredis starts a private Redis server for tests and benchmarks:
// redis-server from $TRIBUTARY_REDIS_SERVER or $PATH, run in the foreground
// as a child process this package owns, listening on a free port of
// 127.0.0.1 only, with no persistence (no RDB saves, no AOF) and its
// own temp dir. Close stops it (SHUTDOWN NOSAVE, then SIGTERM, then
// SIGKILL), waits for the process and removes the dir. It never touches a
// server someone else runs. `make test-deps` (apt-get install redis-server)
// installs it when missing.
package testredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/internal/testmain"
)

// Server is a running private redis-server. Close stops it and removes its
// files; it is idempotent and blocks until the process has exited.
type Server struct {
	Dir      string // working dir: server.log lives here
	Host     string // 127.0.0.1
	Port     int
	Password string // requirepass; "" when none

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
	close  sync.Once
	err    error
}

// Options tune a server; the zero value is what tests want.
type Options struct {
	// Password, when set, is required of clients (requirepass).
	Password string
	// Args are extra redis-server arguments ("--maxmemory", "10mb", ...).
	Args []string
}

// Start starts a server for a test and stops it when the test ends. A
// missing redis-server fails the test saying what to install.
func Start(t testing.TB) *Server { t.Helper(); return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := StartServer(context.Background(), o)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testredis: %v", err)
		}
	})
	return s
}

// StartServer starts a server; the caller must Close it. ctx bounds the
// start only, not the server's life.
func StartServer(ctx context.Context, o ...Options) (*Server, error) {
	var opt Options
	if len(o) > 0 {
		opt = o[0]
	}
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testredis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port can be taken by someone else between our probe and the
	// server's bind: retry with another one.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s := &Server{Dir: dir, Host: "127.0.0.1", Port: port, Password: opt.Password}
		err = s.start(ctx, bin, opt)
		if err == nil {
			return s, nil
		}
		lastErr = err
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		if !strings.Contains(string(log), "Address already in use") {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *Server) start(ctx context.Context, bin string, o Options) error {
	args := []string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.Dir,
		"--daemonize", "no", "--logfile", filepath.Join(s.Dir, "server.log"),
		"--protected-mode", "no",
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password)
	}
	args = append(args, o.Args...)
	// Not CommandContext: the server outlives ctx, which bounds the start.
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	// Own process group, so a ^C to the test run reaches us first and the
	// server is stopped by Close rather than racing with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
			return fmt.Errorf("redis-server exited at start: %s\n%s", cmd.ProcessState, log)
		default:
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on port %d did not answer PING: %v", s.Port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) ping(ctx context.Context) error {
	c := redis.NewClient(s.options())
	defer c.Close()
	return c.Ping(ctx).Err()
}

func (s *Server) options() *redis.Options {
	return &redis.Options{Addr: s.Addr(), Password: s.Password, DisableIdentity: true, MaxRetries: -1}
}

// Main runs a test package's tests against one shared server, started
// before them and stopped after; call it from TestMain:
//
//	var server *testredis.Server
//	func TestMain(m *testing.M) { os.Exit(testredis.Main(m, &server)) }
//
// A server that cannot start fails the run before any test, saying why.
// Tests sharing it should use keys of their own (or FLUSHALL in series).
func Main(m *testing.M, server **Server) int {
	return testmain.Run(m, "testredis", func(ctx context.Context) (*Server, error) { return StartServer(ctx) }, server)
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// URI returns redis://[:password@]127.0.0.1:port.
func (s *Server) URI() string {
	if s.Password != "" {
		return fmt.Sprintf("redis://:%s@%s", s.Password, s.Addr())
	}
	return "redis://" + s.Addr()
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.options())
	t.Cleanup(func() { c.Close() })
	return c
}

// Log returns the server's log so far (for failure messages).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(b)
}

// Close stops the server (SHUTDOWN NOSAVE; SIGTERM and then SIGKILL when it
// does not exit in time), waits for the process and removes its dir.
func (s *Server) Close() error {
	s.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c := redis.NewClient(s.options())
		// SHUTDOWN closes the connection instead of answering: an error is expected.
		_ = c.Do(ctx, "shutdown", "nosave").Err()
		c.Close()
		cancel()
		if !s.wait(5 * time.Second) {
			s.cmd.Process.Signal(syscall.SIGTERM)
			if !s.wait(5 * time.Second) {
				s.kill()
				s.err = fmt.Errorf("redis-server on port %d did not stop: killed", s.Port)
			}
		}
		if err := os.RemoveAll(s.Dir); err != nil && s.err == nil {
			s.err = err
		}
	})
	return s.err
}

func (s *Server) wait(d time.Duration) bool {
	select {
	case <-s.exited:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *Server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

func binary() (string, error) {
	if p := os.Getenv("TRIBUTARY_REDIS_SERVER"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	return "", errors.New("redis-server is not installed (not in $PATH): run `make test-deps` (apt-get install redis-server) or set TRIBUTARY_REDIS_SERVER")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
