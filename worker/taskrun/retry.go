package taskrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tributary-data/tributary/plugins"
)

// ErrFenced ends a task whose worker lost its cluster membership (see
// SourceConfig.Live): it wrote nothing more; the worker stops the task.
var ErrFenced = errors.New("taskrun: this worker lost its cluster membership; the task stopped writing")

// Retry is a connector's policy for calls into the plugin that fail with a
// retriable error (connect.ErrRetriable), from errors.retry.timeout and
// errors.retry.delay.max.ms.
type Retry struct {
	// Timeout is how long a call is retried: 0 not at all (Kafka Connect's
	// default), negative forever.
	Timeout time.Duration
	// MaxDelay caps the backoff between attempts (default 60 s).
	MaxDelay time.Duration
	// CallTimeout overrides the per-call deadlines below (tests).
	CallTimeout time.Duration
}

// Call deadlines: a plugin that does not answer within them is treated as
// hung, and its task fails (a restart replaces the process).
const (
	pollTimeout  = 2 * time.Minute
	writeTimeout = 10 * time.Minute // Put and Flush: sinks may write big batches
)

// errHung is wrapped when a plugin call exceeded its deadline.
var errHung = errors.New("the plugin did not answer in time (it may hang)")

// call runs fn with a deadline and the retry policy.
func (r Retry) call(ctx context.Context, logger *slog.Logger, what string, limit time.Duration, fn func(context.Context) error) error {
	delay := 300 * time.Millisecond
	maxDelay := r.MaxDelay
	if maxDelay <= 0 {
		maxDelay = 60 * time.Second
	}
	if r.CallTimeout > 0 {
		limit = r.CallTimeout
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, limit)
		began := time.Now()
		err := fn(cctx)
		// The plugin side learns the deadline too (grpc-timeout) and may
		// cancel the stream a moment before this context expires: an
		// answer-less call that used (nearly) all its time hung as well.
		expired := ctx.Err() == nil && (cctx.Err() == context.DeadlineExceeded || err != nil && time.Since(began) >= limit-limit/20)
		cancel()
		if err == nil {
			return nil
		}
		if expired {
			return fmt.Errorf("%s: %w: no answer within %v", what, errHung, limit)
		}
		if !plugins.IsRetriable(err) || r.Timeout == 0 || (r.Timeout > 0 && time.Since(start)+delay > r.Timeout) {
			return err
		}
		logger.Warn("retriable failure; retrying", "call", what, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, maxDelay)
	}
}
