package testpg

import (
	"context"
	"os"
	"testing"
)

func TestStartServer(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	if err := s.CreateDatabase(ctx, "mirror"); err != nil {
		t.Fatal(err)
	}
	c, err := s.Connect(ctx, "mirror")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var level string
	if err := c.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	dir := s.Dir
	c.Close(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still exists after Close", dir)
	}
}
