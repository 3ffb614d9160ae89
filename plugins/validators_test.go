package plugins

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// One kept process serves validations, is marked as the validator, is
// replaced when it died, ends when idle, and Close ends it.
func TestValidatorsKeepOneProcess(t *testing.T) {
	path := filepath.Join(pluginDir(t), BinaryPrefix+"test")
	v := NewValidators(nil, 500*time.Millisecond)
	t.Cleanup(func() { v.Close() })
	ctx := ctxT(t)
	validate := func() int {
		t.Helper()
		resp, err := v.Validate(ctx, path, &pluginpb.ValidateRequest{Class: "TestSource", Config: map[string]string{"batch": "0"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Errors["batch"].GetMessages()) == 0 {
			t.Fatalf("no error for batch=0: %v", resp.Errors)
		}
		pid := 0
		v.Do(ctx, path, func(p *Process) error { pid = p.cmd.Process.Pid; return nil })
		return pid
	}
	first := validate()
	if again := validate(); again != first {
		t.Fatalf("second validation ran in process %d, want the kept %d", again, first)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", first))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte(RoleEnv+"="+RoleValidator)) {
		t.Fatalf("the validator process lacks %s=%s", RoleEnv, RoleValidator)
	}
	// A dead process is replaced by the next call.
	syscall.Kill(first, syscall.SIGKILL)
	waitGone(t, first)
	second := validate()
	if second == first {
		t.Fatal("a dead validator was used again")
	}
	// Idle for longer than the idle time: the process ends.
	waitGone(t, second)
	third := validate()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if alive(third) {
		t.Fatalf("process %d still runs after Close", third)
	}
	if err := v.Do(ctx, path, func(*Process) error { return nil }); err != ErrValidatorsClosed {
		t.Fatalf("Do after Close: %v, want ErrValidatorsClosed", err)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !bytes.Contains(b, []byte(") Z "))
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
