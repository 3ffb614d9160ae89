// Package testmain runs a test package's tests around one shared server
// (the Main of testpg, testclickhouse and testredis).
package testmain

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
)

// Run starts a server with start, stores it in *server, runs the tests and
// closes the server, returning the exit code for os.Exit. A server that
// cannot start fails the run before any test, saying why (prefixed with
// name); so does one that fails to close.
func Run[S io.Closer](m *testing.M, name string, start func(context.Context) (S, error), server *S) int {
	s, err := start(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	*server = s
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
