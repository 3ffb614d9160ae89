package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// errExited reports that a broker process ended before it was stopped.
var errExited = errors.New("broker process exited")

// proc is one broker subprocess. Its stdout and stderr go to files in its
// work directory, so no goroutine of ours reads its pipes; the only
// goroutine is the one waiting for it to exit, which stop waits for.
type proc struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	stdout  string
	stderr  string
	exited  chan struct{} // closed when cmd.Wait returned
	waitErr error         // valid after exited is closed
}

// startProc starts argv with stdout and stderr redirected to files in dir.
func startProc(name string, argv []string, dir string) (*proc, error) {
	p := &proc{
		name:   name,
		stdout: dir + "/stdout.log",
		stderr: dir + "/stderr.log",
		exited: make(chan struct{}),
	}
	outF, err := os.Create(p.stdout)
	if err != nil {
		return nil, err
	}
	defer outF.Close()
	errF, err := os.Create(p.stderr)
	if err != nil {
		return nil, err
	}
	defer errF.Close()
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = outF
	p.cmd.Stderr = errF
	p.cmd.Dir = dir
	// Its own process group, so a Ctrl-C aimed at us reaches it only
	// through stop (SIGTERM, then SIGKILL).
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

// stop sends SIGTERM, waits up to grace, then SIGKILLs, and returns once the
// process has exited. It is idempotent. The error reports an unclean exit.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-t.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, grace)
}

func (p *proc) exitErr() error {
	if p.waitErr != nil {
		return fmt.Errorf("%s: %w", p.name, p.waitErr)
	}
	return nil
}

// stderrTail returns the last lines of the process's stderr, for errors.
func (p *proc) stderrTail() string {
	b, err := os.ReadFile(p.stderr)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n  stderr of " + p.name + ":\n    " + strings.Join(lines, "\n    ")
}

// waitListening polls the stdout file for kfakeserver's "listening ADDR".
func (p *proc) waitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(p.stdout); err == nil {
			line, _, _ := bytes.Cut(b, []byte("\n"))
			if addr, ok := strings.CutPrefix(string(line), "listening "); ok && bytes.Contains(b, []byte("\n")) {
				p.addr = strings.TrimSpace(addr)
				return nil
			}
		}
		if err := p.pause(ctx, deadline); err != nil {
			return fmt.Errorf("waiting for %s to print its address: %w", p.name, err)
		}
	}
}

// waitReady pings the broker (an ApiVersions round trip through kgo) until
// it answers, the process exits, ctx ends or timeout passes.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DisableClientMetrics(), kgo.RetryTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = cl.Ping(pctx)
		cancel()
		if last == nil {
			return nil
		}
		if err := p.pause(ctx, deadline); err != nil {
			return fmt.Errorf("waiting for %s at %s to answer: %w (last ping: %v)", p.name, p.addr, err, last)
		}
	}
}

// pause sleeps 50 ms unless the process exits, ctx ends or deadline passes.
func (p *proc) pause(ctx context.Context, deadline time.Time) error {
	if time.Now().After(deadline) {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-p.exited:
		return fmt.Errorf("%w: %v", errExited, p.waitErr)
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// usage is a snapshot of a process's CPU time and memory.
type usage struct {
	cpu   float64 // user+system seconds
	rssMB float64 // VmRSS
	hwmMB float64 // VmHWM, the peak RSS since the process started
}

// readUsage reads utime+stime (fields 14 and 15 of /proc/PID/stat, in
// clock ticks of clkTck per second) and VmRSS/VmHWM of /proc/PID/status.
func readUsage(pid int, clkTck float64) (usage, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return usage{}, err
	}
	// comm (field 2) is parenthesized and may hold spaces: split after
	// the last ')'. fields[0] is then field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return usage{}, fmt.Errorf("parsing /proc/%d/stat: no ')'", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return usage{}, fmt.Errorf("parsing /proc/%d/stat: %d fields", pid, len(fields))
	}
	ut, err1 := strconv.ParseUint(fields[14-3], 10, 64)
	st, err2 := strconv.ParseUint(fields[15-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return usage{}, fmt.Errorf("parsing /proc/%d/stat: %w", pid, err)
	}
	u := usage{cpu: float64(ut+st) / clkTck}

	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return usage{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return usage{}, fmt.Errorf("parsing %s in /proc/%d/status: %w", k, pid, err)
		}
		if k == "VmRSS" {
			u.rssMB = kb / 1024
		} else {
			u.hwmMB = kb / 1024
		}
	}
	return u, sc.Err()
}

// selfCPU returns this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// clockTicks returns CLK_TCK from `getconf CLK_TCK`, or 100 (the value on
// every Linux architecture Go supports) when getconf is unavailable.
func clockTicks() (float64, string) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v, "getconf CLK_TCK"
		}
	}
	return 100, "assumed (getconf unavailable)"
}
