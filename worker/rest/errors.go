package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Errors a Herder returns to choose the HTTP status of a failed request.
// Match them with errors.Is; wrap them with %w to add a message (the
// response's "message" is the error's text). Any other error is a 500.
var (
	// ErrNotFound: unknown connector, task, plugin or logger (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the connector already exists, or a concurrent operation
	// prevents the request (409).
	ErrConflict = errors.New("conflict")
	// ErrRebalanceInProgress: the request cannot be served while the group
	// rebalances or the config is stale (409). It matches ErrConflict too.
	ErrRebalanceInProgress = fmt.Errorf("%w: rebalance in progress", ErrConflict)
	// ErrBadRequest: the request is invalid, e.g. an invalid connector
	// config or an offsets change while the connector is not STOPPED (400).
	ErrBadRequest = errors.New("bad request")
	// ErrForbidden: the operation is disabled by the worker's config (403),
	// e.g. topic tracking.
	ErrForbidden = errors.New("forbidden")
)

// Error is an error with an explicit HTTP status and message; the response
// is {"error_code": Status, "message": Message}. Use the constructors.
type Error struct {
	Status  int
	Message string
	// Kind is the sentinel the error matches with errors.Is (may be nil).
	Kind error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel the error matches with errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// NotFound returns a 404 error (matches ErrNotFound) with a formatted message.
func NotFound(format string, args ...any) error {
	return &Error{Status: http.StatusNotFound, Message: fmt.Sprintf(format, args...), Kind: ErrNotFound}
}

// Conflict returns a 409 error (matches ErrConflict) with a formatted message.
func Conflict(format string, args ...any) error {
	return &Error{Status: http.StatusConflict, Message: fmt.Sprintf(format, args...), Kind: ErrConflict}
}

// RebalanceInProgress returns a 409 error (matches ErrRebalanceInProgress
// and ErrConflict) with Kafka Connect's message.
func RebalanceInProgress() error {
	return &Error{Status: http.StatusConflict, Kind: ErrRebalanceInProgress,
		Message: "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)"}
}

// Redirect is returned by a Herder method when another worker must serve
// the request: the leader, for config writes, or the worker that runs a
// connector, for restarts. The Server forwards the request there as Kafka
// Connect does (at most two hops: see Server), and answers 409 when URL is
// empty (no leader is known during a rebalance).
type Redirect struct {
	URL    string // base URL of the worker to ask, e.g. http://10.0.0.2:8083
	Reason string
}

func (e *Redirect) Error() string {
	if e.URL == "" {
		return e.Reason + " (no leader is known at the moment)"
	}
	return e.Reason + " (ask " + e.URL + ")"
}

// NotLeader returns a Redirect to the leader at url.
func NotLeader(url, format string, args ...any) error {
	return &Redirect{URL: url, Reason: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 error (matches ErrBadRequest) with a formatted message.
func BadRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Kind: ErrBadRequest}
}

// Forbidden returns a 403 error (matches ErrForbidden) with a formatted message.
func Forbidden(format string, args ...any) error {
	return &Error{Status: http.StatusForbidden, Message: fmt.Sprintf(format, args...), Kind: ErrForbidden}
}

// errorResponse maps any error to its status and body. It is the only place
// where errors become HTTP statuses.
func errorResponse(err error) (int, ErrorMessage) {
	status := http.StatusInternalServerError
	msg := err.Error()
	var e *Error
	switch {
	case errors.As(err, &e):
		status, msg = e.Status, e.Message
		if err != error(e) {
			msg = err.Error() // wrapped with more context
		}
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ErrBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, context.DeadlineExceeded):
		msg = "Request timed out"
	case errors.Is(err, context.Canceled):
		msg = "Request interrupted"
	}
	return status, ErrorMessage{ErrorCode: status, Message: msg}
}
