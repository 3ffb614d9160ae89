package engine

import (
	"context"
	"runtime"
	"sync"
)

// Launch priorities: when many units start at once (a worker joined, or
// took over a dead worker's work), tasks move data and connector instances
// only steer them, so tasks get the machine first.
const (
	launchTask = iota
	launchConnector
	launchPriorities
)

// launchGate bounds how many plugin processes start at once and hands free
// slots to waiting tasks before waiting connector instances. Starting a
// plugin process is CPU-bound (exec, the Go runtime and gRPC set-up in the
// child, the handshake in the worker): starting 60 at once on 2 cores makes
// every one of them slow, and the first task runs only when nearly all have
// started; a few at a time, tasks first, gets tasks running in about half
// the time, and nothing is slower in total.
type launchGate struct {
	mu      sync.Mutex
	free    int
	waiting [launchPriorities][]chan struct{}
}

func newLaunchGate(n int) *launchGate {
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	return &launchGate{free: n}
}

// acquire waits for a slot; the caller must release it once its process
// started (or failed to). It fails only when ctx is done.
func (g *launchGate) acquire(ctx context.Context, prio int) error {
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.waiting[prio] = append(g.waiting[prio], ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		for i, w := range g.waiting[prio] {
			if w == ch {
				g.waiting[prio] = append(g.waiting[prio][:i], g.waiting[prio][i+1:]...)
				return ctx.Err()
			}
		}
		// The slot was handed to us as ctx ended: pass it on.
		g.releaseLocked()
		return ctx.Err()
	}
}

func (g *launchGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked()
}

func (g *launchGate) releaseLocked() {
	for p := range g.waiting {
		if len(g.waiting[p]) > 0 {
			ch := g.waiting[p][0]
			g.waiting[p] = g.waiting[p][1:]
			close(ch) // the slot goes straight to the waiter
			return
		}
	}
	g.free++
}
