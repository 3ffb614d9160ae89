package connect

import "errors"

// ErrRetriable marks an error as transient: the worker retries the call
// (Poll, Put, Flush) with backoff, within the connector's
// errors.retry.timeout, instead of failing the task at once. Wrap it:
//
//	return fmt.Errorf("%w: database is restarting: %v", connect.ErrRetriable, err)
var ErrRetriable = errors.New("retriable")

// IsRetriable reports whether err is marked retriable.
func IsRetriable(err error) bool { return errors.Is(err, ErrRetriable) }
