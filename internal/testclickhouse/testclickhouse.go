// Package testclickhouse starts a private ClickHouse server for tests and
// benchmarks: clickhouse-server (from $TRIBUTARY_CLICKHOUSE_SERVER, else
// $PATH, else Debian's /usr/sbin/clickhouse-server) with a minimal
// config.xml and users.xml written into its own temp dir, listening on free
// tcp (native protocol) and http ports of 127.0.0.1 only, stopped by PID and
// removed afterwards. It never touches a server someone else runs.
//
// ClickHouse runs as root fine, so the server runs as the caller. User
// "default" has no password; tests that need a password-protected user get
// "tributary" with password "secret" (User and Password below). The server
// is ready when GET http://127.0.0.1:<http_port>/ping answers "Ok.".
// `make test-deps` installs Debian's clickhouse-server when it is missing.
package testclickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-data/tributary/internal/testmain"
)

// Credentials of the extra password-protected user every server has.
const (
	User     = "tributary"
	Password = "secret"
)

// Server is a running private ClickHouse. Close stops it and removes its
// files; it is idempotent and blocks until the process is gone.
type Server struct {
	Dir      string // owns config.xml, users.xml, data and logs
	Host     string // 127.0.0.1
	TCPPort  int    // native protocol (clickhouse-go)
	HTTPPort int    // HTTP interface (Query, Exec, ping)

	bin    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been waited for
	dbSeq  atomic.Int64
	close  sync.Once
	err    error
	client *http.Client
}

// Start starts a server for a test and stops it when the test ends. A
// missing ClickHouse installation fails the test with what to run.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(context.Background())
	if err != nil {
		t.Fatalf("testclickhouse: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testclickhouse: %v", err)
		}
	})
	return s
}

// Main runs a test package's tests against one shared server, started
// before them and stopped after; call it from TestMain:
//
//	var server *testclickhouse.Server
//	func TestMain(m *testing.M) { os.Exit(testclickhouse.Main(m, &server)) }
//
// A server that cannot start fails the run before any test, saying why.
// Tests share it through NewDatabase, a fresh database each.
func Main(m *testing.M, server **Server) int {
	return testmain.Run(m, "testclickhouse", func(ctx context.Context) (*Server, error) { return StartServer(ctx) }, server)
}

// StartServer starts a server and waits (until ctx is done, at most a
// minute) for it to answer /ping; the caller must Close it.
func StartServer(ctx context.Context) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testclickhouse-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port can be taken by someone else between our probe and the
	// server's bind: retry with other ones.
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(ctx, bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func start(ctx context.Context, bin, dir string) (*Server, error) {
	tcp, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if httpPort == tcp {
		if httpPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{Dir: dir, Host: "127.0.0.1", TCPPort: tcp, HTTPPort: httpPort,
		client: &http.Client{Timeout: 2 * time.Minute}}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(configXML(dir, tcp, httpPort)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(usersXML), 0o600); err != nil {
		return nil, err
	}
	s.bin = bin
	if err := s.launch(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts the server process from s.Dir's config and waits until it
// answers /ping (at most a minute).
func (s *Server) launch(ctx context.Context) error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	s.exited = make(chan struct{})
	s.cmd = exec.Command(s.bin, "--config-file="+filepath.Join(s.Dir, "config.xml"))
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = out, out
	// Its own process group: a test's ^C does not reach it before Close.
	// Pdeathsig: a test binary that dies without Close (a panic, a
	// timeout) takes the server with it; only its temp dir is left.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	cmd, exited := s.cmd, s.exited
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // the exit status is not interesting: Close stops it
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if s.ping(ctx) == nil {
			return nil
		}
		select {
		case <-exited:
			log := s.Log()
			s.dir0() // keep dir for the retry; the caller removes it
			return fmt.Errorf("clickhouse-server exited before it was ready:\n%s", tail(log, 4000))
		case <-ctx.Done():
			s.stop()
			return fmt.Errorf("clickhouse-server not ready on http port %d: %w\n%s", s.HTTPPort, ctx.Err(), tail(s.Log(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it;
// Restart brings it back. Tests of retries use them.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill() //nolint:errcheck // it may have exited meanwhile
	<-s.exited
}

// Restart starts a killed or stopped server again on the same ports and
// data, and waits until it answers /ping.
func (s *Server) Restart(ctx context.Context) error {
	select {
	case <-s.exited:
	default:
		return errors.New("testclickhouse: Restart of a server that still runs")
	}
	return s.launch(ctx)
}

// dir0 clears the logs of a failed attempt so the next one starts clean.
func (s *Server) dir0() {
	for _, f := range []string{"stdout.log", "server.log", "server.err.log"} {
		os.Remove(filepath.Join(s.Dir, f))
	}
}

func (s *Server) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL()+"/ping", nil)
	if err != nil {
		return err
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != "Ok." {
		return fmt.Errorf("ping answered %q", b)
	}
	return nil
}

// Addr returns the native protocol address, host:tcp_port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.TCPPort)) }

func (s *Server) httpURL() string {
	return "http://" + net.JoinHostPort(s.Host, strconv.Itoa(s.HTTPPort))
}

// NewDatabase creates a database no other test of this server uses, named
// prefix plus a number, and returns its name.
func (s *Server) NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, s.dbSeq.Add(1))
	if _, err := s.Do(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testclickhouse: creating database %s: %v", name, err)
	}
	return name
}

// Do runs one SQL statement over the HTTP interface as user default and
// returns the result in ClickHouse's TabSeparated format. Statements
// needing a database name it in the SQL (db.table).
func (s *Server) Do(ctx context.Context, sql string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.httpURL()+"/?"+url.Values{"user": {"default"}}.Encode(), strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", sql, bytes.TrimSpace(b))
	}
	return string(b), nil
}

// Exec runs SQL statements, failing the test on error.
func (s *Server) Exec(t testing.TB, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range sql {
		if _, err := s.Do(ctx, q); err != nil {
			t.Fatalf("testclickhouse: %v", err)
		}
	}
}

// Query runs a query and returns its rows as lines of tab-separated values
// (ClickHouse's TabSeparated escaping), failing the test on error.
func (s *Server) Query(t testing.TB, sql string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.Do(ctx, sql)
	if err != nil {
		t.Fatalf("testclickhouse: %v", err)
	}
	out = strings.TrimSuffix(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// PID returns the clickhouse-server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Log returns the server's logs so far (for failure messages).
func (s *Server) Log() string {
	var b strings.Builder
	for _, f := range []string{"stdout.log", "server.err.log"} {
		data, _ := os.ReadFile(filepath.Join(s.Dir, f))
		b.Write(data)
	}
	return b.String()
}

// Close stops the server (SIGTERM, then SIGKILL after 20 s) and removes its
// files. It is idempotent and blocks until the process has exited.
func (s *Server) Close() error {
	s.close.Do(func() {
		s.stop()
		if err := os.RemoveAll(s.Dir); err != nil {
			s.err = err
		}
	})
	return s.err
}

// stop ends the process by its PID and waits for it.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited meanwhile
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill() //nolint:errcheck // as above
		<-s.exited
	}
}

func binary() (string, error) {
	if b := os.Getenv("TRIBUTARY_CLICKHOUSE_SERVER"); b != "" {
		return b, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err == nil {
		return "/usr/sbin/clickhouse-server", nil
	}
	return "", errors.New("ClickHouse is not installed (no clickhouse-server in $PATH or /usr/sbin): run `make test-deps` (apt-get install clickhouse-server) or set TRIBUTARY_CLICKHOUSE_SERVER")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// configXML is the server config (root tag <yandex>, as 18.16 wants it;
// newer servers accept it too).
func configXML(dir string, tcp, httpPort int) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>%[1]s/server.log</log>
        <errorlog>%[1]s/server.err.log</errorlog>
        <size>100M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>%[2]d</http_port>
    <tcp_port>%[3]d</tcp_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
`, dir, httpPort, tcp)
}

const usersXML = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <tributary>
            <password>secret</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </tributary>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
