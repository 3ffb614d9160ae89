package testclickhouse

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestStartServer(t *testing.T) {
	s := Start(t)
	db := s.NewDatabase(t, "harness")
	s.Exec(t, "CREATE TABLE "+db+".t (id UInt32, s String) ENGINE = MergeTree ORDER BY id",
		"INSERT INTO "+db+".t VALUES (1, 'a'), (2, 'b')")
	got := s.Query(t, "SELECT id, s FROM "+db+".t ORDER BY id")
	if strings.Join(got, "|") != "1\ta|2\tb" {
		t.Fatalf("rows = %q", got)
	}
	if v := s.Query(t, "SELECT version()"); len(v) != 1 || v[0] == "" {
		t.Fatalf("version() = %q", v)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q", s.Addr())
	}
	dir, pid := s.Dir, s.cmd.Process.Pid
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still exists after Close", dir)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Fatalf("server process %d still exists after Close", pid)
	}
}
