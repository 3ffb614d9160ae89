package engine

import (
	"context"
	"testing"
	"time"
)

func TestLaunchGateOrder(t *testing.T) {
	g := newLaunchGate(1)
	ctx := context.Background()
	if err := g.acquire(ctx, launchTask); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	start := func(name string, prio int) {
		go func() {
			if err := g.acquire(ctx, prio); err != nil {
				t.Error(err)
				return
			}
			got <- name
			g.release()
		}()
	}
	// A connector queues first, then a task: the task goes first anyway.
	start("connector", launchConnector)
	waitWaiting(t, g, launchConnector, 1)
	start("task", launchTask)
	waitWaiting(t, g, launchTask, 1)
	g.release()
	if a, b := <-got, <-got; a != "task" || b != "connector" {
		t.Fatalf("order %s, %s; want task, connector", a, b)
	}
	if g.free != 1 {
		t.Fatalf("free = %d after everything released, want 1", g.free)
	}
}

func TestLaunchGateCancel(t *testing.T) {
	g := newLaunchGate(1)
	if err := g.acquire(context.Background(), launchTask); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.acquire(ctx, launchConnector) }()
	waitWaiting(t, g, launchConnector, 1)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("acquire succeeded after its context ended")
	}
	g.release()
	if g.free != 1 || len(g.waiting[launchConnector]) != 0 {
		t.Fatalf("free %d, waiting %d; want 1, 0", g.free, len(g.waiting[launchConnector]))
	}
}

func waitWaiting(t *testing.T, g *launchGate, prio, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		k := len(g.waiting[prio])
		g.mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting at priority %d, want %d", k, prio, n)
		}
		time.Sleep(time.Millisecond)
	}
}
