package main

import (
	"os"
	"runtime/debug"
)

// tuneGC raises the garbage collector's target for the worker's
// record-moving processes when the user did not set GOGC: their heaps are
// small and their allocation rate high, and the default (100) spent a
// quarter of the CPU in GC in the connect benchmark. 400 trades some memory
// (tens of MB) for that CPU.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
