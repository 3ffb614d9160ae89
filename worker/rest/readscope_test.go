package rest

import (
	"context"
	"errors"
	"testing"
)

func TestReadOnce(t *testing.T) {
	reads := map[string]int{}
	read := func(key string, err error) func(context.Context) error {
		return func(context.Context) error { reads[key]++; return err }
	}
	// Without a scope every call reads.
	ctx := context.Background()
	ReadOnce(ctx, "configs", read("configs", nil))
	ReadOnce(ctx, "configs", read("configs", nil))
	if reads["configs"] != 2 {
		t.Fatalf("no scope: %d reads, want 2", reads["configs"])
	}
	// In a scope, once per key; a failed read is tried again.
	sc := WithReadScope(ctx)
	boom := errors.New("boom")
	if err := ReadOnce(sc, "status", read("status", boom)); err != boom {
		t.Fatalf("err %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := ReadOnce(sc, "status", read("status", nil)); err != nil {
			t.Fatal(err)
		}
		ReadOnce(sc, "configs", read("configs", nil))
	}
	if reads["status"] != 2 || reads["configs"] != 3 {
		t.Fatalf("reads %v, want status 2 (a failure, then once), configs 3 (2 + once)", reads)
	}
}
