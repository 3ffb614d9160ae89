package benchproc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binary returns the base name of a process's executable as it was started
// (argv[0] in /proc/PID/cmdline), "" when the process is gone.
func Binary(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return ""
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return filepath.Base(argv0)
}

// MemPeaks are the highest memory figures a MemSampler saw, in MiB.
type MemPeaks struct {
	WorkerHWM  float64            // the worker's VmHWM (the kernel's peak RSS)
	PluginsRSS float64            // highest sum of the worker's children's VmRSS in one sample
	ByBinary   map[string]float64 // highest sum of VmRSS per child binary (Binary) in one sample
	PluginHWM  float64            // highest VmHWM of one child
	TotalRSS   float64            // highest worker VmRSS + children's VmRSS in one sample
	Plugins    int                // most children in one sample
	Samples    int
}

// MemSampler samples the memory of a worker and of its children (its
// plugin processes) in a goroutine it owns, until Stop.
type MemSampler struct {
	pid  int
	mu   sync.Mutex
	p    MemPeaks
	once sync.Once
	quit chan struct{}
	done chan struct{}
}

// StartMemSampler samples the worker pid and its children every interval.
func StartMemSampler(pid int, every time.Duration) *MemSampler {
	m := &MemSampler{pid: pid, p: MemPeaks{ByBinary: map[string]float64{}}, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.quit:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *MemSampler) sample() {
	rss, hwm := MemMB(m.pid)
	kids := ChildrenOf(m.pid)
	var sum, maxHWM float64
	by := map[string]float64{}
	for _, c := range kids {
		r, h := MemMB(c)
		sum += r
		by[Binary(c)] += r
		maxHWM = max(maxHWM, h)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p.Samples++
	m.p.WorkerHWM = max(m.p.WorkerHWM, hwm)
	m.p.PluginsRSS = max(m.p.PluginsRSS, sum)
	for b, r := range by {
		m.p.ByBinary[b] = max(m.p.ByBinary[b], r)
	}
	m.p.PluginHWM = max(m.p.PluginHWM, maxHWM)
	m.p.TotalRSS = max(m.p.TotalRSS, rss+sum)
	m.p.Plugins = max(m.p.Plugins, len(kids))
}

// Stop ends the sampling, takes a last sample (the worker should still
// run) and returns the peaks. It is idempotent and blocks until the
// sampling goroutine has ended.
func (m *MemSampler) Stop() MemPeaks {
	m.once.Do(func() {
		close(m.quit)
		<-m.done
		m.sample()
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.p
	p.ByBinary = make(map[string]float64, len(m.p.ByBinary))
	for b, r := range m.p.ByBinary {
		p.ByBinary[b] = r
	}
	return p
}

// TicksPerSecond is USER_HZ, the unit of /proc/PID/stat's CPU times: 100
// on every Linux architecture Go supports.
const TicksPerSecond = 100

// pstat is what /proc/PID/stat says of one process, CPU in clock ticks.
type pstat struct {
	ppid   int
	self   int64 // utime + stime
	reaped int64 // cutime + cstime: children that ended and were waited for
}

// CPUReading is the cumulative CPU time of every process at one moment
// (/proc/*/stat). Subtract two readings' figures for the CPU used between
// them; a child that ends in between is counted through its parent's
// reaped time with all of its life's CPU, so figures are close, not exact,
// when processes come and go.
type CPUReading struct {
	procs map[int]pstat
	kids  map[int][]int
}

// ReadCPU reads /proc/*/stat of every process.
func ReadCPU() *CPUReading {
	r := &CPUReading{procs: map[int]pstat{}, kids: map[int][]int{}}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return r
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readPstat(pid); ok {
			r.procs[pid] = st
			r.kids[st.ppid] = append(r.kids[st.ppid], pid)
		}
	}
	return r
}

func readPstat(pid int) (pstat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return pstat{}, false
	}
	// The command name (field 2) may hold spaces: fields start after ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return pstat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return pstat{}, false
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v } // field k is f[k-3]
	return pstat{ppid: int(num(4)), self: num(14) + num(15), reaped: num(16) + num(17)}, true
}

// Self returns a process's own CPU seconds (0 when it was not running).
func (r *CPUReading) Self(pid int) float64 {
	return float64(r.procs[pid].self) / TicksPerSecond
}

// Tree returns the CPU seconds of a process and its descendants: its own,
// its reaped children's, and its live children's (recursively).
func (r *CPUReading) Tree(pid int) float64 { return float64(r.treeTicks(pid)) / TicksPerSecond }

func (r *CPUReading) treeTicks(pid int) int64 {
	st, ok := r.procs[pid]
	if !ok {
		return 0
	}
	t := st.self + st.reaped
	for _, c := range r.kids[pid] {
		t += r.treeTicks(c)
	}
	return t
}

// Children lists the live children of pid at the reading.
func (r *CPUReading) Children(pid int) []int { return append([]int(nil), r.kids[pid]...) }

// MachineCPU reads the busy and iowait seconds of all CPUs from the first
// line of /proc/stat (user nice system idle iowait irq softirq steal ...).
func MachineCPU() (busy, iowait float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	return float64(v[0]+v[1]+v[2]+v[5]+v[6]+v[7]) / TicksPerSecond, float64(v[4]) / TicksPerSecond
}

// SelfCPU returns this process's user + system CPU seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
