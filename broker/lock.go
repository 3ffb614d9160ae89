package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataDirLocked means another broker process holds the data directory.
var ErrDataDirLocked = errors.New("data dir is in use by another broker")

// dirLock is an exclusive advisory lock (flock) on <data.dir>/.lock, held
// for the broker's lifetime so that two brokers never write one directory.
// The file holds the owner's pid, for the error message only; the kernel
// drops the lock when the process dies, so a kill -9 leaves nothing stale.
type dirLock struct{ f *os.File }

func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("broker: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(owner))
			return nil, fmt.Errorf("%w: %s (pid %s); stop that broker or choose another --data-dir", ErrDataDirLocked, dir, pid)
		}
		return nil, fmt.Errorf("broker: lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &dirLock{f: f}, nil
}

// release drops the lock. Safe to call more than once.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
