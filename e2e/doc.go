// Package e2e holds end-to-end tests that drive the built binaries
// (tributary and tributary-connector-*) as real processes: a broker, one or
// more workers and their plugin processes, talking over real sockets.
//
// The binaries come from the folder of $TRIBUTARY_BIN when it is set (the
// Makefile sets it to bin/tributary after `make build`); otherwise the tests
// build ./cmd/... once per test run into a temporary folder.
package e2e
