// Package benchproc runs the subprocesses of the benchmark drivers (broker,
// workers) and reads what /Proc says of them.
package benchproc

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

// ErrExited reports that a subprocess ended before it was stopped.
var ErrExited = errors.New("process exited")

// Proc is one subprocess (the broker or a worker) in its own process group
// (a worker's plugin processes join it). Its output goes to a file, so no
// goroutine of ours reads its pipes; the one goroutine waits for it to
// exit, and stop and kill wait for that goroutine.
type Proc struct {
	Name    string
	cmd     *exec.Cmd
	LogPath string
	exited  chan struct{} // closed when cmd.Wait returned
	waitErr error         // valid after exited is closed
}

// Start starts argv with stdout and stderr in dir/<name>.log.
func Start(name string, argv []string, dir string) (*Proc, error) {
	p := &Proc{Name: name, LogPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logF, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	defer logF.Close()
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Dir = logF, logF, dir
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

func (p *Proc) PID() int { return p.cmd.Process.Pid }

func (p *Proc) Dead() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// alive returns ErrExited (with the tail of its log) once the process ended.
func (p *Proc) Alive() error {
	if p.Dead() {
		return fmt.Errorf("%s: %w (%v); its log ends:\n%s", p.Name, ErrExited, p.waitErr, Tail(p.LogPath, 2000))
	}
	return nil
}

// kill SIGKILLs the process group and waits for the process to be reaped.
// Idempotent.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// it, and returns once the process has exited. Idempotent.
func (p *Proc) Stop(grace time.Duration) {
	if !p.Dead() {
		_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
		}
	}
	p.Kill() // also any plugin process left behind
}

func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// FreeAddr returns a 127.0.0.1 address with a port free at the time.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitTCP polls until addr accepts connections, p exits, or ctx ends.
func WaitTCP(ctx context.Context, addr string, p *Proc) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if err := p.Alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on %s: %w", p.Name, addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ChildrenOf lists the pids whose parent is pid.
func ChildrenOf(pid int) []int {
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
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}

// MemMB returns VmRSS and VmHWM (peak) of a process in MiB.
func MemMB(pid int) (rss, hwm float64) {
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
