package rest

import (
	"context"
	"sync"
)

// A read scope lets one REST request read each internal topic to its end
// once instead of once per connector: GET /connectors?expand=status over
// 100 connectors then costs two round trips to the broker, not 200, and
// its answer is one consistent view. Handlers that only read open one
// (WithReadScope); a herder reads through ReadOnce. Requests that write
// must not: they read again after their write to see it.
type readScopeKey struct{}

type readScope struct {
	mu   sync.Mutex
	done map[any]bool
}

// WithReadScope returns ctx carrying a new read scope.
func WithReadScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, readScopeKey{}, &readScope{done: map[any]bool{}})
}

// ReadOnce calls read(ctx), unless ctx carries a read scope in which read
// already succeeded for key (the store it reads, say).
func ReadOnce(ctx context.Context, key any, read func(context.Context) error) error {
	sc, _ := ctx.Value(readScopeKey{}).(*readScope)
	if sc == nil {
		return read(ctx)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.done[key] {
		return nil
	}
	if err := read(ctx); err != nil {
		return err
	}
	sc.done[key] = true
	return nil
}
