package testredis

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestServerLifecycle(t *testing.T) {
	ctx := context.Background()
	s, err := StartServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URI(), "redis://127.0.0.1:") || s.Addr() == "" {
		t.Fatalf("URI %q Addr %q", s.URI(), s.Addr())
	}
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET k = %q, %v", v, err)
	}
	// The URI works for go-redis' own parser, as connectors use it.
	opt, err := redis.ParseURL(s.URI())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c2 := redis.NewClient(opt)
	defer c2.Close()
	if err := c2.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	dir := s.Dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s still exists: %v", dir, err)
	}
	if err := c2.Ping(ctx).Err(); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestPassword(t *testing.T) {
	ctx := context.Background()
	s := StartWith(t, Options{Password: "s3cret"})
	if err := s.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.URI(), ":s3cret@") {
		t.Fatalf("URI %q lacks the password", s.URI())
	}
	bad := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: "wrong"})
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}
