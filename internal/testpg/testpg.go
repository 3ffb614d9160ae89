// Package testpg starts a private PostgreSQL server for tests and
// benchmarks: initdb into its own temp dir, wal_level=logical, listening on
// a free port of 127.0.0.1 only, stopped and removed afterwards. It never
// touches a server someone else runs.
//
// PostgreSQL refuses to run as root, so when the caller is root the server
// runs as the `postgres` OS user (Debian's package creates it); otherwise it
// runs as the caller. Binaries come from $TRIBUTARY_PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin, else $PATH. `make test-deps` installs
// Debian's postgresql when it is missing.
package testpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/internal/testmain"
)

// Server is a running private PostgreSQL. Close stops it and removes its
// files; it is idempotent and blocks until the server is gone.
type Server struct {
	Dir  string // owns data/, server.log and the unix socket
	Host string // 127.0.0.1
	Port int
	User string // the superuser, "postgres", trusted without a password

	bin   string
	cred  *syscall.Credential
	dbSeq atomic.Int64
	close sync.Once
	err   error
}

// Options tune a server; the zero value is what tests want.
type Options struct {
	// Conf lines appended to postgresql.conf after the defaults.
	Conf []string
	// Durable keeps fsync and synchronous_commit on (benchmarks that
	// measure a realistic server); tests turn them off for speed.
	Durable bool
}

// Start starts a server for a test and stops it when the test ends. A
// missing PostgreSQL installation fails the test with what to run.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(context.Background(), Options{})
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	return s
}

// StartServer starts a server; the caller must Close it.
func StartServer(ctx context.Context, o Options) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Host: "127.0.0.1", User: "postgres", bin: bin}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root needs the postgres OS user (apt-get install postgresql): %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run(ctx, "initdb", "-D", data, "-U", s.User, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", dir),
		"wal_level = logical",
		"max_replication_slots = 20",
		"max_wal_senders = 20",
		"max_connections = 200",
		"shared_buffers = 128MB",
		"log_min_messages = warning",
	}
	if !o.Durable {
		conf = append(conf, "fsync = off", "synchronous_commit = off", "full_page_writes = off")
	}
	conf = append(conf, o.Conf...)
	hba := "local all all trust\nlocal replication all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := s.writeFile(filepath.Join(data, "pg_hba.conf"), []byte(hba)); err != nil {
		return fail(err)
	}
	// A free port can be taken by someone else between our probe and
	// postgres' bind: retry with another one.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		lines := append([]string{fmt.Sprintf("port = %d", port)}, conf...)
		var b bytes.Buffer
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if err := s.writeFile(filepath.Join(data, "postgresql.auto.conf"), b.Bytes()); err != nil {
			return fail(err)
		}
		out, err := s.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start")
		if err == nil {
			s.Port = port
			return s, nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		lastErr = fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
		if !bytes.Contains(log, []byte("could not bind")) && !bytes.Contains(log, []byte("Address already in use")) {
			break
		}
	}
	return fail(lastErr)
}

// Main runs a test package's tests against one shared server, started
// before them and stopped after; call it from TestMain:
//
//	var server *testpg.Server
//	func TestMain(m *testing.M) { os.Exit(testpg.Main(m, &server)) }
//
// A server that cannot start fails the run before any test, saying why.
// Tests share it through NewDatabase, a fresh database each.
func Main(m *testing.M, server **Server) int {
	return testmain.Run(m, "testpg", func(ctx context.Context) (*Server, error) { return StartServer(ctx, Options{}) }, server)
}

// NewDatabase creates a database no other test of this server uses, named
// prefix plus a number, and returns its name.
func (s *Server) NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, s.dbSeq.Add(1))
	if err := s.CreateDatabase(context.Background(), name); err != nil {
		t.Fatalf("testpg: creating database %s: %v", name, err)
	}
	return name
}

// DSN returns a connection string for database db (pgx and libpq syntax).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", s.User, s.Host, s.Port, db)
}

// Connect opens a connection to database db as the superuser.
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.DSN(db))
}

// CreateDatabase creates database name.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	c, err := s.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// Exec runs SQL statements in database db, failing the test on error.
func (s *Server) Exec(t testing.TB, db string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.Connect(ctx, db)
	if err != nil {
		t.Fatalf("testpg: connecting to %s: %v", db, err)
	}
	defer c.Close(ctx)
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("testpg: %s: %v", q, err)
		}
	}
}

// PID returns the postmaster's process id (the first line of
// data/postmaster.pid), 0 when the server is not running. Every backend,
// walsender included, is its descendant.
func (s *Server) PID() int {
	b, err := os.ReadFile(filepath.Join(s.Dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Log returns the server's log so far (for failure messages).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(b)
}

// Close stops the server (fast shutdown: sessions are ended, nothing is
// lost) and removes its files.
func (s *Server) Close() error {
	s.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := s.run(ctx, "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			s.err = fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
		}
		if err := os.RemoveAll(s.Dir); err != nil && s.err == nil {
			s.err = err
		}
	})
	return s.err
}

func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Env = append(cmd.Env, "HOME="+s.Dir)
	}
	return cmd.CombinedOutput()
}

// writeFile writes a file the server's user owns.
func (s *Server) writeFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if s.cred != nil {
		return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
	}
	return nil
}

func binDir() (string, error) {
	if d := os.Getenv("TRIBUTARY_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or $PATH): run `make test-deps` (apt-get install postgresql) or set TRIBUTARY_PG_BIN")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
