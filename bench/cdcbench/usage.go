package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tributary-data/tributary/bench/benchproc"
)

// memSampleEvery is how often the memory sampler reads /proc.
const memSampleEvery = 200 * time.Millisecond

// memPeaks are the highest memory figures seen, in MiB.
type memPeaks struct {
	workerHWM   float64 // the worker's VmHWM (the kernel's peak RSS)
	pluginsRSS  float64 // highest sum of the plugin processes' VmRSS in one sample
	pluginHWM   float64 // highest VmHWM of one plugin process
	totalRSS    float64 // highest worker VmRSS + plugins' VmRSS in one sample
	plugins     int     // most plugin processes seen in one sample
	samples     int
	workerFinal float64 // the worker's VmHWM read after the run
}

// memSampler samples the worker's and its children's (plugin processes')
// memory every memSampleEvery in a goroutine it owns; stop ends it.
type memSampler struct {
	pid  int
	mu   sync.Mutex
	p    memPeaks
	quit chan struct{}
	done chan struct{}
}

func startMemSampler(pid int) *memSampler {
	m := &memSampler{pid: pid, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(memSampleEvery)
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

func (m *memSampler) sample() {
	rss, hwm := benchproc.MemMB(m.pid)
	var sum, maxHWM float64
	kids := benchproc.ChildrenOf(m.pid)
	for _, c := range kids {
		r, h := benchproc.MemMB(c)
		sum += r
		maxHWM = max(maxHWM, h)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p.samples++
	m.p.workerHWM = max(m.p.workerHWM, hwm)
	m.p.pluginsRSS = max(m.p.pluginsRSS, sum)
	m.p.pluginHWM = max(m.p.pluginHWM, maxHWM)
	m.p.totalRSS = max(m.p.totalRSS, rss+sum)
	m.p.plugins = max(m.p.plugins, len(kids))
}

// stop ends the sampling (taking a last sample) and returns the peaks.
// The worker must still run. Idempotent.
func (m *memSampler) stop() memPeaks {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
	m.sample()
	_, hwm := benchproc.MemMB(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p.workerFinal = hwm
	m.p.workerHWM = max(m.p.workerHWM, hwm)
	return m.p
}

// pstat is what /proc/PID/stat says of one process, CPU in clock ticks.
type pstat struct {
	ppid   int
	self   int64 // utime + stime
	reaped int64 // cutime + cstime: children that ended and were waited for
}

// ticksPerSecond is USER_HZ, 100 on every Linux architecture Go supports.
const ticksPerSecond = 100

// procTable reads /proc/*/stat of every process.
func procTable() map[int]pstat {
	out := map[int]pstat{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readPstat(pid); ok {
			out[pid] = st
		}
	}
	return out
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

// cpuSplit is CPU seconds used by each party, or (cpuAt) the cumulative
// figures at one moment.
type cpuSplit struct {
	worker   float64 // the worker process itself
	plugins  float64 // its children: the plugin processes (live and ended)
	broker   float64 // the broker process and any children
	postgres float64 // the postmaster and every backend (incl. walsenders)
	bench    float64 // this process: the inserts' client side, the pollers

	machine float64 // every CPU's busy time, all processes (/proc/stat)
	iowait  float64 // every CPU's time idle waiting for I/O
}

func (c cpuSplit) total() float64 { return c.worker + c.plugins + c.broker + c.postgres + c.bench }

func (c cpuSplit) sub(o cpuSplit) cpuSplit {
	return cpuSplit{c.worker - o.worker, c.plugins - o.plugins, c.broker - o.broker, c.postgres - o.postgres, c.bench - o.bench,
		c.machine - o.machine, c.iowait - o.iowait}
}

// treeTicks is a process's CPU with its descendants': its own, its reaped
// children's, and its live children's (recursively).
func treeTicks(tab map[int]pstat, kids map[int][]int, pid int) int64 {
	st, ok := tab[pid]
	if !ok {
		return 0
	}
	t := st.self + st.reaped
	for _, c := range kids[pid] {
		t += treeTicks(tab, kids, c)
	}
	return t
}

// cpuAt reads the cumulative CPU of each party now. A child that ends
// between two readings is counted through its parent's cutime with all of
// its life's CPU, also what it used before the first reading: the figures
// are close, not exact, when processes come and go (plugin processes start
// after the first reading of a run; snapshot connections end).
func cpuAt(worker, broker, postmaster int) cpuSplit {
	tab := procTable()
	kids := map[int][]int{}
	for pid, st := range tab {
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	sec := func(t int64) float64 { return float64(t) / ticksPerSecond }
	var c cpuSplit
	if st, ok := tab[worker]; ok {
		c.worker = sec(st.self)
		c.plugins = sec(treeTicks(tab, kids, worker) - st.self)
	}
	c.broker = sec(treeTicks(tab, kids, broker))
	if postmaster > 0 {
		c.postgres = sec(treeTicks(tab, kids, postmaster))
	}
	c.bench = selfCPU()
	c.machine, c.iowait = machineCPU()
	return c
}

// machineCPU reads the busy and iowait seconds of all CPUs from the first
// line of /proc/stat (user nice system idle iowait irq softirq steal ...).
func machineCPU() (busy, iowait float64) {
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
	return float64(v[0]+v[1]+v[2]+v[5]+v[6]+v[7]) / ticksPerSecond, float64(v[4]) / ticksPerSecond
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
