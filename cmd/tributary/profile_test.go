package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestStartCPUProfile(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "cpu")
	t.Setenv(cpuProfileEnv, prefix)
	var stderr bytes.Buffer
	stop := startCPUProfile("worker", &stderr)
	stop()
	path := fmt.Sprintf("%s.worker.%d", prefix, os.Getpid())
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no profile: %v (stderr %q)", err, stderr.String())
	}
	if st.Size() == 0 {
		t.Fatalf("%s is empty", path)
	}

	// Unset: nothing is written; an unwritable path is reported, not fatal.
	t.Setenv(cpuProfileEnv, "")
	startCPUProfile("broker", &stderr)()
	t.Setenv(cpuProfileEnv, filepath.Join(t.TempDir(), "missing", "cpu"))
	stderr.Reset()
	startCPUProfile("broker", &stderr)()
	if stderr.Len() == 0 {
		t.Fatal("an unwritable profile path was not reported")
	}
}
