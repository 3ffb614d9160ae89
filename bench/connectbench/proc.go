package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// errExited reports that a subprocess ended before it was stopped.
var errExited = errors.New("process exited")

// proc is one subprocess (a broker or a worker). Its output goes to files in
// its directory, so no goroutine of ours reads its pipes; the one goroutine
// waits for it to exit, and stop waits for that goroutine.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when cmd.Wait returned
	waitErr error         // valid after exited is closed
}

// startProc starts argv with stdout and stderr in dir/<name>.log.
func startProc(name string, argv []string, dir string) (*proc, error) {
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logF, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logF.Close()
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Dir = logF, logF, dir
	// Its own process group: a Ctrl-C aimed at us reaches it through stop.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive returns errExited (with the tail of its log) once the process ended.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s: %w (%v); its log ends:\n%s", p.name, errExited, p.waitErr, tail(p.logPath, 2000))
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// it, and returns once the process has exited. Idempotent.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freeAddr returns a 127.0.0.1 address with a port free at the time.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitTCP polls until addr accepts connections, p exits, or ctx ends.
func waitTCP(ctx context.Context, addr string, p *proc) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if err := p.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on %s: %w", p.name, addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

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

// childrenOf lists the pids whose parent is pid.
func childrenOf(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(c); err == nil && st.ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

// comm returns a process's command name (at most 15 bytes).
func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// memMB returns VmRSS and VmHWM (peak) of a process in MiB.
func memMB(pid int) (rss, hwm float64) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			key string
			dst *float64
		}{{"VmRSS:", &rss}, {"VmHWM:", &hwm}} {
			if strings.HasPrefix(line, k.key) {
				fs := strings.Fields(line[len(k.key):])
				if len(fs) > 0 {
					kb, _ := strconv.ParseFloat(fs[0], 64)
					*k.dst = kb / 1024
				}
			}
		}
	}
	return rss, hwm
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
		for _, c := range childrenOf(f.pid) {
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
		if _, hwm := memMB(c); hwm > f.peakMB {
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
