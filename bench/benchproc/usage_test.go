package benchproc

import (
	"os"
	"testing"
	"time"
)

// TestReadingsOfSelf checks the /proc parsing against this process.
func TestReadingsOfSelf(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	st, ok := readPstat(os.Getpid())
	if !ok || st.ppid != os.Getppid() || st.self <= 0 {
		t.Fatalf("implausible stat %+v, %v (ppid %d)", st, ok, os.Getppid())
	}
	r := ReadCPU()
	if r.Self(os.Getpid()) <= 0 || r.Tree(os.Getpid()) < r.Self(os.Getpid()) {
		t.Fatalf("ReadCPU: self %v, tree %v", r.Self(os.Getpid()), r.Tree(os.Getpid()))
	}
	if busy, _ := MachineCPU(); busy <= 0 {
		t.Fatalf("MachineCPU busy %v", busy)
	}
	if SelfCPU() <= 0 {
		t.Fatal("SelfCPU is not positive")
	}
	m := StartMemSampler(os.Getpid(), 10*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	p := m.Stop()
	if p.WorkerHWM <= 0 || p.TotalRSS <= 0 || p.Samples < 2 || m.Stop().Samples != p.Samples {
		t.Fatalf("implausible peaks %+v", p)
	}
}
