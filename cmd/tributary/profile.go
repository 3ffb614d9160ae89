package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv, set in the environment of `tributary worker` or
// `tributary broker`, makes the process write a CPU profile to
// $TRIBUTARY_CPUPROFILE.<command>.<pid> from start until a clean shutdown
// (for benchmarks: go tool pprof reads it). Plugins have their own
// variable, TRIBUTARY_PLUGIN_CPUPROFILE (package plugins).
const cpuProfileEnv = "TRIBUTARY_CPUPROFILE"

// startCPUProfile starts the CPU profile cpuProfileEnv asks for, if any,
// and returns the function that stops it and closes the file (a no-op
// when there is no profile); call it once, at shutdown. A profile that cannot be started is reported on
// stderr and otherwise ignored: it never stops the command.
func startCPUProfile(command string, stderr io.Writer) (stop func()) {
	prefix := os.Getenv(cpuProfileEnv)
	if prefix == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s.%s.%d", prefix, command, os.Getpid())
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "tributary: %s: %v\n", cpuProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "tributary: %s: %v\n", cpuProfileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "tributary: %s: %v\n", cpuProfileEnv, err)
		}
	}
}
