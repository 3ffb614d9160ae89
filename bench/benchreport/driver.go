package benchreport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ErrUsage marks a command-line error: a driver's Parse wraps it in its
// errors so that tests can tell them from others (Run treats every error
// of Parse as a usage error).
var ErrUsage = errors.New("usage")

// Options are what Driver needs of a driver's parsed command line.
type Options interface {
	// Output returns the file the report is also written to ("" for none)
	// and how long the benchmark may take (zero or less: no limit).
	Output() (out string, timeout time.Duration)
}

// Driver is a benchmark driver's command: it parses the command line,
// runs the benchmark and writes the report it returns (markdown) to
// stdout and to the --out file.
type Driver[O Options] struct {
	// Name is the command's name, the prefix of its error messages
	// ("sinkbench: ...").
	Name string
	// Parse reads the arguments (without the program name), writing flag
	// help and flag errors to stderr. Any error it returns is a usage
	// error: Run prints it and returns 2.
	Parse func(args []string, stderr io.Writer) (O, error)
	// Bench runs the benchmark until ctx ends, writing progress to
	// progress, and returns the report.
	Bench func(ctx context.Context, o O, progress io.Writer) (string, error)
}

// Main runs the command with the process's arguments, stdout and stderr,
// SIGINT and SIGTERM cancelling the benchmark, and exits with Run's code.
func (d Driver[O]) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := d.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run parses args, runs the benchmark within the timeout, prints the
// report to stdout and writes it to the --out file. It returns the exit
// code: 0, 1 when the benchmark or writing the report failed, 2 on a usage
// error; errors go to stderr as "<Name>: <error>".
func (d Driver[O]) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := d.Parse(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
		return 2
	}
	out, timeout := o.Output()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	report, err := d.Bench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
		return 1
	}
	fmt.Fprint(stdout, report)
	if out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
			return 1
		}
	}
	return 0
}

// Progress returns a printf for a driver's progress lines: each one is
// written to w as a line starting with the time of day (15:04:05).
func Progress(w io.Writer) func(format string, a ...any) {
	return func(format string, a ...any) {
		fmt.Fprintf(w, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// WorkDir returns the directory a driver's runs put their data in: dir,
// created if need be and kept, or when dir is "" a new temporary
// directory named prefix*. The caller calls cleanup when done with it; it
// removes only a temporary directory.
func WorkDir(dir, prefix string) (path string, cleanup func(), err error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}
