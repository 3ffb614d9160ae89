package taskrun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A broker that restarts or cannot be reached for a while must not fail a
// sink task (the consumer retries); what no retry cures must.
func TestFatalConsumeErr(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err   error
		fatal bool
	}{
		{&kgo.ErrGroupSession{Err: fmt.Errorf("unable to dial: %w", dial)}, false},
		{&kgo.ErrGroupSession{Err: kerr.RebalanceInProgress}, false},
		{&kgo.ErrGroupSession{Err: kerr.GroupAuthorizationFailed}, true},
		{&kgo.ErrDataLoss{Topic: "t", ConsumedTo: 10, ResetTo: 5}, false},
		{kerr.NotLeaderForPartition, false},
		{kerr.TopicAuthorizationFailed, true},
		{fmt.Errorf("fetching: %w", dial), false},
		{io.ErrUnexpectedEOF, false},
		{errors.New("something unknown"), true},
	} {
		if got := fatalConsumeErr(tc.err); got != tc.fatal {
			t.Errorf("fatalConsumeErr(%v) = %v, want %v", tc.err, got, tc.fatal)
		}
	}
}
