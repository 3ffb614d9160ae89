package plugins

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// ErrValidatorsClosed is returned by Validators.Do after Close.
var ErrValidatorsClosed = errors.New("plugins: validators closed")

// Validators keeps one plugin process per binary for calls that need no
// connector instance of their own (Validate), so that creating or updating
// a connector does not pay for starting a process (about 20-30 ms of CPU
// here, most of a POST /connectors). A process is started on first use,
// shared by concurrent calls, and ended after it has been idle for the
// idle time, or when a call finds it dead (the next call starts another).
// Its processes carry RoleEnv=RoleValidator. Close ends them all; it is
// idempotent and blocks until they are gone.
//
// Isolation is unchanged where it matters: connector and task instances
// still run in processes of their own; a validation that crashes its
// process fails only the validations in flight.
type Validators struct {
	logger *slog.Logger
	idle   time.Duration
	launch func(ctx context.Context, path string, logger *slog.Logger) (*Process, error)

	mu     sync.Mutex // guards procs and closed; held while a process starts
	procs  map[string]*sharedProcess
	closed bool
	timers sync.WaitGroup // idle timers scheduled or running
}

type sharedProcess struct {
	p     *Process
	users int
	timer *time.Timer // set while idle
}

// NewValidators returns an empty pool; idle <= 0 means one minute.
func NewValidators(logger *slog.Logger, idle time.Duration) *Validators {
	if idle <= 0 {
		idle = time.Minute
	}
	return &Validators{logger: logger, idle: idle, procs: map[string]*sharedProcess{},
		launch: func(ctx context.Context, path string, logger *slog.Logger) (*Process, error) {
			return launchRole(ctx, path, logger, RoleValidator)
		}}
}

// Do calls f with the plugin process serving the binary at path, starting
// it if needed. f's errors should go through the Process's Err, as for
// any plugin call.
func (v *Validators) Do(ctx context.Context, path string, f func(*Process) error) error {
	sp, err := v.get(ctx, path)
	if err != nil {
		return err
	}
	err = f(sp.p)
	v.put(path, sp)
	return err
}

func (v *Validators) get(ctx context.Context, path string) (*sharedProcess, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, ErrValidatorsClosed
	}
	sp := v.procs[path]
	if sp != nil && sp.p.Exited() {
		v.drop(path, sp).Kill() // already dead: quick
		sp = nil
	}
	if sp == nil {
		p, err := v.launch(ctx, path, v.logger)
		if err != nil {
			return nil, err
		}
		sp = &sharedProcess{p: p}
		v.procs[path] = sp
	}
	if sp.timer != nil && sp.timer.Stop() {
		v.timers.Done()
	}
	sp.timer = nil
	sp.users++
	return sp, nil
}

// put returns a process after a call: a dead one is dropped, an idle one
// gets its idle timer.
func (v *Validators) put(path string, sp *sharedProcess) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sp.users--
	if v.procs[path] != sp {
		return // dropped meanwhile (Close, or found dead)
	}
	if sp.p.Exited() {
		v.drop(path, sp).Kill() // already dead: quick
		return
	}
	if sp.users == 0 {
		v.timers.Add(1)
		sp.timer = time.AfterFunc(v.idle, func() {
			defer v.timers.Done()
			v.mu.Lock()
			var idle *Process
			if v.procs[path] == sp && sp.users == 0 {
				idle = v.drop(path, sp)
			}
			v.mu.Unlock()
			if idle != nil {
				idle.Kill() // outside the lock: a graceful exit takes a moment
			}
		})
	}
}

// drop removes sp and returns its process for the caller to Kill; v.mu is
// held. Calls still using it fail as calls into a dead plugin do.
func (v *Validators) drop(path string, sp *sharedProcess) *Process {
	delete(v.procs, path)
	if sp.timer != nil && sp.timer.Stop() {
		v.timers.Done()
	}
	sp.timer = nil
	return sp.p
}

// Close ends every process. Idempotent; blocks until they are gone.
func (v *Validators) Close() error {
	v.mu.Lock()
	v.closed = true
	var kill []*Process
	for path, sp := range v.procs {
		kill = append(kill, v.drop(path, sp))
	}
	v.mu.Unlock()
	for _, p := range kill {
		p.Kill()
	}
	v.timers.Wait()
	return nil
}

// Validate runs the connector class's ConfigDef and Validate in the
// binary's shared process. A call that finds the process dead (it may
// have died since the last call, unnoticed) is tried once more in a new
// one: validation has no side effects.
func (v *Validators) Validate(ctx context.Context, path string, req *pluginpb.ValidateRequest) (*pluginpb.ValidateResponse, error) {
	var resp *pluginpb.ValidateResponse
	call := func(p *Process) error {
		var err error
		resp, err = p.Plugin.Validate(ctx, req)
		return p.Err(err)
	}
	err := v.Do(ctx, path, call)
	if errors.Is(err, ErrPluginExited) && ctx.Err() == nil {
		err = v.Do(ctx, path, call)
	}
	return resp, err
}
