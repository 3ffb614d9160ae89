package main

import (
	"github.com/tributary-data/tributary/bench/benchproc"

	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// stat is what /proc/<pid>/stat tells of a process's CPU time, in clock
// ticks (USER_HZ, 100 on Linux).
type stat struct {
	ppid      int
	self      int64 // utime + stime
	children  int64 // cutime + cstime: children that ended and were reaped
	startTime int64 // distinguishes a reused pid
}

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	// The command name (field 2) may hold spaces: fields start after ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field k is f[k-3].
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return stat{ppid: int(num(4)), self: num(14) + num(15), children: num(16) + num(17), startTime: num(22)}, nil
}

// ticksPerSecond is USER_HZ: 100 on every Linux architecture Go supports
// (the kernel reports times to user space in these units regardless of HZ).
const ticksPerSecond = 100

// comm returns a process's command name (at most 15 bytes).
func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// familyCPU accounts the CPU time of a process and its children (plugin
// processes): the process's own time, its reaped children's (cutime,
// cstime), and the live children's own time, sampled so that a child that
// ends between two samples is still counted (through cutime once reaped).
// Finding the children means reading every /proc/<pid>/stat, which costs
// this process measurable CPU, so the list is refreshed at most every
// rescanEvery; known children are read at every sample.
type familyCPU struct {
	pid      int
	filter   func(pid int) bool // which children count; nil: all
	base     int64
	baseSelf int64 // the process's own share of base
	lastSelf int64
	reaped   int64
	known    []int              // children found by the last scan
	scanned  time.Time          // when
	live     map[[2]int64]int64 // {pid, starttime} -> ticks at last sample
	peakMB   float64            // highest VmHWM among the children seen
}

const rescanEvery = time.Second

func newFamilyCPU(pid int, filter func(int) bool) *familyCPU {
	f := &familyCPU{pid: pid, filter: filter, live: map[[2]int64]int64{}}
	f.base = f.sample()
	f.baseSelf = f.lastSelf
	return f
}

// sample reads the family's current total in ticks.
func (f *familyCPU) sample() int64 {
	if time.Since(f.scanned) >= rescanEvery {
		f.known, f.scanned = f.known[:0], time.Now()
		for _, c := range benchproc.ChildrenOf(f.pid) {
			if f.filter == nil || f.filter(c) {
				f.known = append(f.known, c)
			}
		}
	}
	// Read the children before the parent: a child reaped in between is
	// then counted twice (briefly, until the next sample) rather than lost.
	seen := map[[2]int64]bool{}
	for _, c := range f.known {
		st, err := readStat(c)
		if err != nil || st.ppid != f.pid {
			continue // ended (and reaped: counted in cutime below)
		}
		k := [2]int64{int64(c), st.startTime}
		f.live[k] = st.self
		seen[k] = true
		if _, hwm := benchproc.MemMB(c); hwm > f.peakMB {
			f.peakMB = hwm
		}
	}
	for k := range f.live {
		if !seen[k] {
			delete(f.live, k)
		}
	}
	if st, err := readStat(f.pid); err == nil {
		f.lastSelf, f.reaped = st.self, st.children
	}
	total := f.lastSelf + f.reaped
	for _, t := range f.live {
		total += t
	}
	return total
}

// seconds returns the CPU seconds used since newFamilyCPU, sampling now
// (with a fresh scan for children): in all, and by the process itself
// (the rest is its children's).
func (f *familyCPU) seconds() (total, self float64) {
	f.scanned = time.Time{}
	t := f.sample()
	return float64(t-f.base) / ticksPerSecond, float64(f.lastSelf-f.baseSelf) / ticksPerSecond
}
