// Command tributary is Tributary's one user binary: the broker, the worker
// and the tools, as subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

type command struct {
	name  string
	short string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"broker", "run the Kafka-compatible broker", runBroker},
		{"worker", "run a Connect worker (REST API, connectors, tasks)", runWorker},
		{"dev", "run the embedded broker and one worker (Kafka :9092, REST :8083)", runDev},
		{"perf", "measure produce/consume throughput against any Kafka broker", runPerf},
		{"connectors", "manage a worker's connectors: apply files, status, pause, offsets, docs", runConnectors},
		{"topics", "list, create, describe or delete topics on any Kafka broker", runTopics},
		{"produce", "write lines from stdin to a topic (like kafka-console-producer)", runProduce},
		{"consume", "print records from topics (like kafka-console-consumer)", runConsume},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintf(stdout, "tributary %s (commit %s)\n", version, commit)
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: tributary <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'tributary <command> --help' for a command's flags.\n")
}

// errUsage marks errors caused by how the command was called (exit 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "tributary %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "tributary %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tributary: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// parseFlags parses a command's flags (no positional arguments allowed),
// then fills unset flags from their environment twins.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return applyEnv(fs)
}

// envFlags binds every flag of fs to an environment twin: --data-dir reads
// TRIBUTARY_DATA_DIR when the flag is not given. Call after fs.Parse.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, envName(f.Name), v, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "TRIBUTARY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// setUsage prints flags with their environment twins.
func setUsage(fs *flag.FlagSet, synopsis string, extra func(io.Writer)) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\nFlags (each has an environment twin, shown in brackets):\n", synopsis)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		sort.Strings(names)
		for _, n := range names {
			f := fs.Lookup(n)
			def := ""
			if f.DefValue != "" && f.DefValue != "[]" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", n, envName(n), f.Usage, def)
		}
		if extra != nil {
			extra(w)
		}
	}
}

// multiFlag collects repeated --set key=value flags.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	for _, part := range splitSet(v) {
		*m = append(*m, part)
	}
	return nil
}

// splitSet splits a TRIBUTARY_SET-style "a=1,b=2" only where a comma starts
// a new key=value; values containing commas (cleanup.policy=compact,delete)
// stay whole when the next part has no '='.
func splitSet(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if len(out) > 0 && !strings.Contains(p, "=") {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: use text or json", errUsage, format)
}
