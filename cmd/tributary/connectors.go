package main

// `tributary connectors ...`: manage a worker's connectors through its
// REST API (worker/restclient). Every subcommand takes --url (the worker),
// --output table|json and --timeout (of each request); flags may come
// before or after the positional arguments.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tributary-data/tributary/worker/rest"
	"github.com/tributary-data/tributary/worker/restclient"
)

// connSub is one `tributary connectors` subcommand.
type connSub struct {
	name, short string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func connSubs() []connSub {
	return []connSub{
		{"apply", "create or update connectors from files (-f DIR|FILE...), validated first", runConnApply},
		{"validate", "validate connector files against the worker, change nothing", runConnValidate},
		{"list", "list connectors with their class, state and tasks", runConnList},
		{"status", "show connector and task states; non-zero exit when one is FAILED", runConnStatus},
		{"pause", "pause connectors and their tasks", connAction("pause")},
		{"resume", "resume paused or stopped connectors", connAction("resume")},
		{"stop", "stop connectors and release their tasks (before an offsets change)", connAction("stop")},
		{"restart", "restart connectors (--include-tasks, --only-failed) or one task (--task N)", runConnRestart},
		{"delete", "delete connectors (their offsets stay)", connAction("delete")},
		{"offsets", "show (get) or reset a connector's offsets", runConnOffsets},
		{"plugins", "list the installed connector plugins", runConnPlugins},
		{"docs", "print plugins' config reference as Markdown", runConnDocs},
	}
}

const connSynopsis = "tributary connectors apply|validate|list|status|pause|resume|stop|restart|delete|offsets|plugins|docs [--url URL] [flags]"

func connUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\nSubcommands:\n", connSynopsis)
	for _, s := range connSubs() {
		fmt.Fprintf(w, "  %-9s %s\n", s.name, s.short)
	}
	fmt.Fprintf(w, "\nEvery subcommand takes --url (default %s, env TRIBUTARY_URL), --output table|json and --timeout.\n", restclient.DefaultURL)
	fmt.Fprintf(w, "Run 'tributary connectors <subcommand> --help' for its flags.\n")
}

// runConnectors dispatches `tributary connectors <subcommand>`.
func runConnectors(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		connUsage(stderr)
		return fmt.Errorf("%w: want a subcommand", errUsage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		connUsage(stdout)
		return nil
	}
	// The shared flags may come before the subcommand: move them after it.
	var leading []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if name != "url" && name != "output" && name != "timeout" {
			break
		}
		n := 1
		if !hasValue && len(args) > 1 {
			n = 2
		}
		leading, args = append(leading, args[:n]...), args[n:]
	}
	if len(args) == 0 {
		connUsage(stderr)
		return fmt.Errorf("%w: want a subcommand", errUsage)
	}
	for _, s := range connSubs() {
		if s.name == args[0] {
			return s.run(ctx, append(args[1:len(args):len(args)], leading...), stdout, stderr)
		}
	}
	connUsage(stderr)
	return fmt.Errorf("%w: unknown subcommand %q", errUsage, args[0])
}

// connOpts are the flags every subcommand shares.
type connOpts struct {
	url     string
	output  string
	timeout time.Duration
}

// connFlagSet returns a subcommand's flag set with the shared flags.
func connFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *connOpts) {
	fs := flag.NewFlagSet("connectors "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &connOpts{}
	fs.StringVar(&o.url, "url", restclient.DefaultURL, "the worker's REST API")
	fs.StringVar(&o.output, "output", "table", "table (for people) or json (for scripts)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "limit of each request to the worker")
	return fs, o
}

// parseConnArgs parses flags given anywhere among the positional arguments
// (which it returns; "--" ends the flags), then fills unset flags from
// their environment twins and checks the shared flags.
func parseConnArgs(fs *flag.FlagSet, o *connOpts, args []string) ([]string, error) {
	if fs.Lookup("file") != nil { // -f is --file for short
		args = append([]string(nil), args...)
		for i, a := range args {
			if a == "--" {
				break
			}
			if name, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); name == "f" && strings.HasPrefix(a, "-") {
				args[i] = "--file"
				if ok {
					args[i] += "=" + v
				}
			}
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	switch o.output {
	case "table", "json":
	case "text": // the word `tributary consume` uses; TRIBUTARY_OUTPUT is shared
		o.output = "table"
	default:
		return nil, fmt.Errorf("%w: --output %q: use table or json", errUsage, o.output)
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("%w: --timeout must not be negative", errUsage)
	}
	return pos, nil
}

// client returns a client of the worker at --url.
func (o *connOpts) client() (*restclient.Client, error) {
	c, err := restclient.New(o.url, restclient.Options{
		Timeout:         o.timeout,
		UnreachableHint: "is it running? start one with 'tributary dev', or point --url / TRIBUTARY_URL at a worker",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	return c, nil
}

func (o *connOpts) json() bool { return o.output == "json" }

// connWriteJSON writes v as indented JSON.
func connWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// connTable returns a tab-separated table writer; call Flush when done.
func connTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func connNeedNames(names []string, what string) error {
	if len(names) == 0 {
		return fmt.Errorf("%w: name at least one %s", errUsage, what)
	}
	return nil
}

func runConnList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("list", stderr)
	setUsage(fs, "tributary connectors list [--url URL] [--output table|json]", func(w io.Writer) {
		fmt.Fprintf(w, "\nJSON output is the worker's GET /connectors?expand=status&expand=info.\n")
	})
	pos, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	all, err := c.ConnectorsExpanded(ctx, true, true)
	if err != nil {
		return err
	}
	if o.json() {
		return connWriteJSON(stdout, all)
	}
	if len(all) == 0 {
		fmt.Fprintf(stdout, "no connectors on %s\n", c.URL())
		return nil
	}
	tw := connTable(stdout)
	fmt.Fprintf(tw, "NAME\tTYPE\tCLASS\tSTATE\tTASKS\n")
	for _, name := range connSortedKeys(all) {
		e := all[name]
		typ, class, state, tasks := "", "", "", ""
		if e.Info != nil {
			typ, class = string(e.Info.Type), e.Info.Config["connector.class"]
		}
		if e.Status != nil {
			state, tasks = e.Status.Connector.State, connTaskSummary(e.Status.Tasks)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, typ, class, state, tasks)
	}
	return tw.Flush()
}

// connAction returns the subcommand running one per-connector operation
// (pause, resume, stop, delete) on every named connector. It tries them
// all and returns every failure.
func connAction(verb string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	past := map[string]string{"pause": "pause requested", "resume": "resume requested", "stop": "stop requested", "delete": "deleted"}[verb]
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs, o := connFlagSet(verb, stderr)
		setUsage(fs, "tributary connectors "+verb+" NAME... [--url URL]", nil)
		names, err := parseConnArgs(fs, o, args)
		if err != nil {
			return err
		}
		if err := connNeedNames(names, "connector"); err != nil {
			return err
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		op := map[string]func(context.Context, string) error{
			"pause": c.PauseConnector, "resume": c.ResumeConnector, "stop": c.StopConnector, "delete": c.DeleteConnector,
		}[verb]
		type result struct {
			Name   string `json:"name"`
			Result string `json:"result"`
			Error  string `json:"error,omitempty"`
		}
		var results []result
		var errs []error
		for _, n := range names {
			if err := op(ctx, n); err != nil {
				if errors.Is(err, restclient.ErrUnreachable) {
					return err
				}
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
				results = append(results, result{Name: n, Result: "failed", Error: err.Error()})
				continue
			}
			results = append(results, result{Name: n, Result: past})
			if !o.json() {
				fmt.Fprintf(stdout, "%s: %s\n", n, past)
			}
		}
		if o.json() {
			if err := connWriteJSON(stdout, results); err != nil {
				return err
			}
		}
		return errors.Join(errs...)
	}
}

func runConnRestart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("restart", stderr)
	includeTasks := fs.Bool("include-tasks", false, "restart the connectors' tasks too")
	onlyFailed := fs.Bool("only-failed", false, "restart only the connector and task instances that are FAILED")
	task := fs.Int("task", -1, "restart only this task of each connector (task ids: see status)")
	setUsage(fs, "tributary connectors restart NAME... [--include-tasks] [--only-failed] [--task N] [--url URL]", nil)
	names, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	if err := connNeedNames(names, "connector"); err != nil {
		return err
	}
	if *task >= 0 && (*includeTasks || *onlyFailed) {
		return fmt.Errorf("%w: --task restarts one task: it does not combine with --include-tasks or --only-failed", errUsage)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	var statuses []*rest.ConnectorStateInfo
	for _, n := range names {
		if *task >= 0 {
			if err := c.RestartTask(ctx, n, *task); err != nil {
				return fmt.Errorf("%s task %d: %w", n, *task, err)
			}
			if !o.json() {
				fmt.Fprintf(stdout, "%s: task %d restarted\n", n, *task)
			}
			continue
		}
		st, err := c.RestartConnector(ctx, n, restclient.RestartOptions{IncludeTasks: *includeTasks, OnlyFailed: *onlyFailed})
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if st != nil {
			statuses = append(statuses, st)
		}
		if o.json() {
			continue
		}
		if st == nil {
			fmt.Fprintf(stdout, "%s: connector restarted\n", n)
			continue
		}
		var restarting []string
		if st.Connector.State == rest.StateRestarting {
			restarting = append(restarting, "connector")
		}
		for _, t := range st.Tasks {
			if t.State == rest.StateRestarting {
				restarting = append(restarting, fmt.Sprintf("task %d", t.ID))
			}
		}
		if len(restarting) == 0 {
			fmt.Fprintf(stdout, "%s: nothing to restart\n", n)
		} else {
			fmt.Fprintf(stdout, "%s: restarting %s\n", n, strings.Join(restarting, ", "))
		}
	}
	if o.json() {
		if statuses == nil {
			statuses = []*rest.ConnectorStateInfo{}
		}
		return connWriteJSON(stdout, statuses)
	}
	return nil
}

func runConnOffsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("offsets", stderr)
	setUsage(fs, "tributary connectors offsets get|reset NAME [--url URL] [--output table|json]", func(w io.Writer) {
		fmt.Fprintf(w, "\nget shows the connector's offsets; reset deletes them all, so that the connector\n"+
			"starts over (source: from the beginning of its data; sink: per the consumer's\n"+
			"auto.offset.reset). Reset needs a STOPPED connector: run 'tributary connectors stop NAME' first.\n")
	})
	pos, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != "get" && pos[0] != "reset") {
		fs.Usage()
		return fmt.Errorf("%w: want: offsets get|reset NAME", errUsage)
	}
	verb, name := pos[0], pos[1]
	c, err := o.client()
	if err != nil {
		return err
	}
	if verb == "reset" {
		msg, err := c.ResetOffsets(ctx, name)
		if restclient.IsBadRequest(err) {
			return fmt.Errorf("%w\noffsets can only be reset while the connector is STOPPED: run 'tributary connectors stop %s' first, then reset again", err, name)
		}
		if err != nil {
			return err
		}
		if o.json() {
			return connWriteJSON(stdout, rest.Message{Message: msg})
		}
		fmt.Fprintf(stdout, "%s: %s\n", name, msg)
		return nil
	}
	offs, err := c.Offsets(ctx, name)
	if err != nil {
		return err
	}
	if o.json() {
		if offs.Offsets == nil {
			offs.Offsets = []rest.ConnectorOffset{}
		}
		return connWriteJSON(stdout, offs)
	}
	if len(offs.Offsets) == 0 {
		fmt.Fprintf(stdout, "%s: no offsets stored\n", name)
		return nil
	}
	tw := connTable(stdout)
	fmt.Fprintf(tw, "PARTITION\tOFFSET\n")
	for _, off := range offs.Offsets {
		p, err := json.Marshal(off.Partition)
		if err != nil {
			return err
		}
		v, err := json.Marshal(off.Offset)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\n", p, v)
	}
	return tw.Flush()
}

func runConnPlugins(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("plugins", stderr)
	all := fs.Bool("all", false, "list converters, transformations and predicates too")
	setUsage(fs, "tributary connectors plugins [--all] [--url URL] [--output table|json]", nil)
	pos, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	ps, err := c.Plugins(ctx, !*all)
	if err != nil {
		return err
	}
	if o.json() {
		if ps == nil {
			ps = []rest.PluginInfo{}
		}
		return connWriteJSON(stdout, ps)
	}
	tw := connTable(stdout)
	fmt.Fprintf(tw, "CLASS\tTYPE\tVERSION\n")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Class, p.Type, p.Version)
	}
	return tw.Flush()
}

func runConnDocs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("docs", stderr)
	setUsage(fs, "tributary connectors docs [PLUGIN...] [--url URL] [--output table|json]", func(w io.Writer) {
		fmt.Fprintf(w, "\nPrints the config reference of the named plugins (class names or aliases such as\n"+
			"FileStreamSource), or of every installed connector plugin, as Markdown; with\n"+
			"--output json, the worker's key definitions by plugin.\n")
	})
	names, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	ps, err := c.Plugins(ctx, true)
	if err != nil {
		return err
	}
	byClass := map[string]rest.PluginInfo{}
	for _, p := range ps {
		byClass[p.Class] = p
	}
	if len(names) == 0 {
		for _, p := range ps {
			names = append(names, p.Class)
		}
	}
	out := map[string]any{}
	if !o.json() {
		fmt.Fprintf(stdout, "# Connector configuration reference\n")
	}
	for _, n := range names {
		keys, err := c.PluginConfig(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if o.json() {
			out[n] = keys
			continue
		}
		fmt.Fprintf(stdout, "\n## %s\n\n", n)
		if p, ok := byClass[n]; ok {
			fmt.Fprintf(stdout, "Type: %s", p.Type)
			if p.Version != "" {
				fmt.Fprintf(stdout, ", version %s", p.Version)
			}
			fmt.Fprintf(stdout, ".\n\n")
		}
		if len(keys) == 0 {
			fmt.Fprintf(stdout, "No config keys of its own.\n")
			continue
		}
		fmt.Fprintf(stdout, "| Key | Type | Default | Importance | Group | Documentation |\n|---|---|---|---|---|---|\n")
		for _, k := range keys {
			def := "*required*"
			switch {
			case k.DefaultValue != nil && *k.DefaultValue == "":
				def = `""`
			case k.DefaultValue != nil:
				def = "`" + connMDCell(*k.DefaultValue) + "`"
			case !k.Required:
				def = "*none*"
			}
			group := ""
			if k.Group != nil {
				group = *k.Group
			}
			fmt.Fprintf(stdout, "| `%s` | %s | %s | %s | %s | %s |\n", connMDCell(k.Name), strings.ToLower(k.Type), def,
				strings.ToLower(k.Importance), connMDCell(group), connMDCell(k.Documentation))
		}
	}
	if o.json() {
		return connWriteJSON(stdout, out)
	}
	return nil
}

// connMDCell makes s safe inside a Markdown table cell.
func connMDCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func connSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
