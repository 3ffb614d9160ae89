package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// ErrPluginExited is wrapped by errors of calls into a plugin process that
// has died: the task or connector using it fails with the process's last
// words (a panic trace, say) in the message.
var ErrPluginExited = errors.New("plugin process exited")

// Process is one running plugin process (one connector or task instance).
// Kill ends it; Kill is idempotent and blocks until the process is gone.
type Process struct {
	Path   string
	Plugin pluginpb.PluginClient

	client *plugin.Client
	cmd    *exec.Cmd
	stderr *tailWriter
	once   sync.Once
}

// RoleEnv names the environment variable telling what a plugin process
// serves: unset for a connector or task instance, RoleValidator for the
// process a worker keeps to validate configs (Validators). Operators and
// tests can tell the processes apart by it (/proc/<pid>/environ).
const (
	RoleEnv       = "TRIBUTARY_PLUGIN_ROLE"
	RoleValidator = "validator"
)

// Launch starts the plugin binary at path and connects to it. The process
// lives until Kill (ctx bounds only the start-up).
func Launch(ctx context.Context, path string, logger *slog.Logger) (*Process, error) {
	return launchRole(ctx, path, logger, "")
}

func launchRole(ctx context.Context, path string, logger *slog.Logger, role string) (*Process, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tail := &tailWriter{max: 64 << 10} // room for a crash's first line ahead of every goroutine's stack
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	if role != "" {
		cmd.Env = append(cmd.Env, RoleEnv+"="+role)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{pluginName: &grpcPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclogAdapter(logger.With("plugin", filepath.Base(path))),
		Stderr:           tail, // the process's fd 2: runtime crashes and panics
		SyncStderr:       tail, // what connector code writes to os.Stderr (go-plugin forwards it over gRPC)
		SyncStdout:       tail,
		StartTimeout:     startTimeout(ctx),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes),
			grpc.ForceCodecV2(newBatchCodec())),
			grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(windowBytes),
			grpc.WithWriteBufferSize(socketBufferBytes), grpc.WithReadBufferSize(socketBufferBytes)},
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("starting plugin %s: %w%s", path, err, tail.lastWords())
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("starting plugin %s: %w", path, err)
	}
	return &Process{Path: path, Plugin: raw.(pluginpb.PluginClient), client: client, cmd: cmd, stderr: tail}, nil
}

func startTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 30 * time.Second
}

// Exited reports whether the process has ended (never, for InProcessLauncher's).
func (p *Process) Exited() bool { return p.client != nil && p.client.Exited() }

// Kill ends the process (gracefully, then forcibly) and waits for it.
func (p *Process) Kill() {
	if p.client != nil {
		p.once.Do(p.client.Kill)
	}
}

// Launcher starts the plugin serving a binary's classes: Launch, or
// InProcessLauncher's for benchmarks.
type Launcher func(ctx context.Context, path string, logger *slog.Logger) (*Process, error)

// InProcessLauncher returns a Launcher that serves every binary's classes
// from classes, linked into this process (InProcess): no process and no
// isolation, so a crash in connector code is a crash of this process. It
// exists to measure what the plugin boundary costs in a whole pipeline
// (bench/connectbench); workers never use it.
func InProcessLauncher(classes ...Class) Launcher {
	return func(_ context.Context, path string, _ *slog.Logger) (*Process, error) {
		return &Process{Path: path, Plugin: InProcess(classes...)}, nil
	}
}

// Err turns the error of a call into the plugin into the error a task or
// connector fails with: the connector's own message for errors it returned,
// and ErrPluginExited with the process's last stderr lines when it died.
func (p *Process) Err(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if p.client != nil && (ok && st.Code() == codes.Unavailable || p.Exited()) {
		// Give the process a moment to be reaped so its last words are in.
		for i := 0; i < 50 && !p.Exited(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if p.Exited() {
			// Its stderr is copied asynchronously: let the last lines arrive.
			p.stderr.settle(200 * time.Millisecond)
			how := "ended"
			if ps := p.cmd.ProcessState; ps != nil {
				how = ps.String() // "exit status 3", "signal: killed"
			}
			return fmt.Errorf("%w (%s, %s)%s", ErrPluginExited, filepath.Base(p.Path), how, p.stderr.lastWords())
		}
	}
	if ok {
		return errors.New(st.Message())
	}
	return err
}

// IsRetriable reports whether a plugin call failed with an error the
// connector marked retriable (connect.ErrRetriable): the call may be retried.
func IsRetriable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Aborted
}

// Binary is a plugin binary found in plugin.path and what it serves.
type Binary struct {
	Path    string
	Classes []*pluginpb.ConnectorClass
}

// Discover finds the plugin binaries (executables named
// tributary-connector-*) in dir and asks each what it serves. A binary that
// fails to answer is reported in the returned error but does not hide the
// others.
func Discover(ctx context.Context, dir string, logger *slog.Logger) ([]*Binary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin.path %s: %w", dir, err)
	}
	var out []*Binary
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), BinaryPrefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if info, err := e.Info(); err != nil || info.Mode()&0o111 == 0 {
			continue
		}
		b, err := describe(ctx, path, logger)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, errors.Join(errs...)
}

func describe(ctx context.Context, path string, logger *slog.Logger) (*Binary, error) {
	p, err := Launch(ctx, path, logger)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	resp, err := p.Plugin.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("plugin %s: describe: %w", path, p.Err(err))
	}
	if resp.ProtocolVersion != ProtocolVersion {
		return nil, fmt.Errorf("plugin %s speaks protocol %d; this worker speaks %d: rebuild the plugin against this release", path, resp.ProtocolVersion, ProtocolVersion)
	}
	return &Binary{Path: path, Classes: resp.Classes}, nil
}

// tailWriter keeps the last max bytes written (a plugin's stderr).
type tailWriter struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	t.total += int64(len(p))
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// settle waits until nothing was written for a short while, or max.
func (t *tailWriter) settle(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		t.mu.Lock()
		n := t.total
		t.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		t.mu.Lock()
		same := n == t.total
		t.mu.Unlock()
		if same {
			return
		}
	}
}

// lastWords returns the kept stderr, prefixed for appending to an error.
// go-plugin's own JSON log lines are left out: they are logged already.
func (t *tailWriter) lastWords() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(string(t.buf), "\n") {
		if strings.HasPrefix(line, `{"@level"`) || strings.TrimSpace(line) == "" {
			continue
		}
		keep = append(keep, line)
	}
	if len(keep) == 0 {
		return ""
	}
	return "; its last output:\n" + strings.Join(keep, "\n")
}

// hclogAdapter routes go-plugin's hclog output into slog.
func hclogAdapter(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "plugin",
		Level:  hclog.Info,
		Output: slogWriter{l},
	})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if msg != "" {
		w.l.Debug(msg)
	}
	return len(p), nil
}

// ErrUnknownClass is wrapped when no installed plugin serves a class.
var ErrUnknownClass = errors.New("unknown connector class")

// Registry maps connector classes and aliases to the binaries serving them.
type Registry struct {
	byName map[string]registered
	all    []*pluginpb.ConnectorClass
}

type registered struct {
	path  string
	class *pluginpb.ConnectorClass
}

// NewRegistry indexes discovered binaries. When two binaries claim a name,
// the first (by path) keeps it.
func NewRegistry(bins []*Binary) *Registry {
	r := &Registry{byName: map[string]registered{}}
	for _, b := range bins {
		for _, c := range b.Classes {
			r.all = append(r.all, c)
			for _, n := range append([]string{c.Class}, c.Aliases...) {
				if _, taken := r.byName[n]; !taken {
					r.byName[n] = registered{b.Path, c}
				}
			}
		}
	}
	return r
}

// Binary returns the binary serving class (a class name or an alias).
func (r *Registry) Binary(class string) (string, pluginpb.ConnectorType, error) {
	c, ok := r.byName[class]
	if !ok {
		var names []string
		for _, c := range r.all {
			names = append(names, c.Class)
		}
		sort.Strings(names)
		return "", 0, fmt.Errorf("%w %q: installed classes are %s", ErrUnknownClass, class, strings.Join(names, ", "))
	}
	return c.path, c.class.Type, nil
}

// Class returns the description of a class or alias.
func (r *Registry) Class(class string) (*pluginpb.ConnectorClass, bool) {
	c, ok := r.byName[class]
	return c.class, ok
}

// Classes lists every installed class.
func (r *Registry) Classes() []*pluginpb.ConnectorClass {
	return append([]*pluginpb.ConnectorClass(nil), r.all...)
}
