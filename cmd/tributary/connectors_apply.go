package main

// `tributary connectors apply` and `validate`: connector configs kept in
// files (worker/connectorfile) made true on a worker, validated first.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/worker/connectorfile"
	"github.com/tributary-data/tributary/worker/restclient"
)

const connFilesHelp = `
Files: -f (--file) takes files and directories (repeatable; extra arguments are files too). A
directory means every *.json and *.properties file in it, sorted, not recursive. A file
holds one connector, as the POST /connectors body {"name": "x", "config": {...}}, as a
flat JSON config {"name": "x", "connector.class": ...}, or as a Kafka Connect standalone
.properties file with a name= line. JSON numbers and booleans are taken as strings.
`

// connCheck is the validation of one connector file.
type connCheck struct {
	Name       string         `json:"name"`
	File       string         `json:"file"`
	Class      string         `json:"class"`
	ErrorCount int            `json:"error_count"`
	Errors     []connKeyError `json:"errors,omitempty"`
	// passwords are the PASSWORD-typed keys of the connector's class.
	passwords map[string]bool
}

// connKeyError is the errors of one config key ("" for the whole config).
type connKeyError struct {
	Key    string   `json:"key"`
	Errors []string `json:"errors"`
}

// connLoadAndValidate reads the files named by -f and the arguments, and
// validates every connector on the worker. err is a failure to read the
// files or to talk to the worker; validation errors are in the checks.
func connLoadAndValidate(ctx context.Context, c *restclient.Client, paths []string) ([]connectorfile.Connector, []connCheck, error) {
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("%w: give the connector files or directories with -f", errUsage)
	}
	conns, err := connectorfile.Load(paths)
	if err != nil {
		return nil, nil, err
	}
	checks := make([]connCheck, 0, len(conns))
	for _, cn := range conns {
		ch := connCheck{Name: cn.Name, File: cn.File, Class: cn.Config["connector.class"], passwords: map[string]bool{}}
		if strings.TrimSpace(ch.Class) == "" {
			ch.Errors = []connKeyError{{Key: "connector.class", Errors: []string{`Missing required configuration "connector.class" which has no default value.`}}}
			ch.ErrorCount = 1
			checks = append(checks, ch)
			continue
		}
		infos, err := c.Validate(ctx, ch.Class, cn.Config)
		if restclient.IsBadRequest(err) || restclient.IsNotFound(err) { // e.g. an unknown class
			var e *restclient.Error
			errors.As(err, &e)
			ch.Errors = []connKeyError{{Key: "connector.class", Errors: []string{e.Message}}}
			ch.ErrorCount = 1
			checks = append(checks, ch)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("validating %s (%s): %w", cn.Name, cn.File, err)
		}
		ch.ErrorCount = infos.ErrorCount
		for _, ci := range infos.Configs {
			if ci.Definition != nil && ci.Definition.Type == string(connect.TypePassword) {
				ch.passwords[ci.Definition.Name] = true
			}
			if len(ci.Value.Errors) > 0 {
				ch.Errors = append(ch.Errors, connKeyError{Key: ci.Value.Name, Errors: ci.Value.Errors})
			}
		}
		if ch.ErrorCount == 0 && len(ch.Errors) > 0 {
			ch.ErrorCount = len(ch.Errors)
		}
		checks = append(checks, ch)
	}
	return conns, checks, nil
}

// connPrintChecks prints each connector's errors by key (or "valid" lines
// when all is true) and returns the number of connectors with errors.
func connPrintChecks(w io.Writer, checks []connCheck, all bool) int {
	bad := 0
	for _, ch := range checks {
		if ch.ErrorCount == 0 {
			if all {
				fmt.Fprintf(w, "%s (%s): valid, %s\n", ch.Name, ch.File, ch.Class)
			}
			continue
		}
		bad++
		fmt.Fprintf(w, "%s (%s): %d error(s)\n", ch.Name, ch.File, ch.ErrorCount)
		for _, ke := range ch.Errors {
			key := ke.Key
			if key == "" {
				key = "(config)"
			}
			for _, e := range ke.Errors {
				fmt.Fprintf(w, "    %s: %s\n", key, strings.ReplaceAll(strings.TrimSpace(e), "\n", "\n      "))
			}
		}
	}
	return bad
}

// connFilesFlag adds --file (-f for short, see parseConnArgs) to fs.
func connFilesFlag(fs *flag.FlagSet) *multiPathFlag {
	var f multiPathFlag
	fs.Var(&f, "file", "connector file or directory, repeatable; -f for short")
	return &f
}

// multiPathFlag collects repeated -f values (paths are never split).
type multiPathFlag []string

func (m *multiPathFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiPathFlag) Set(v string) error { *m = append(*m, v); return nil }

func runConnValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("validate", stderr)
	files := connFilesFlag(fs)
	setUsage(fs, "tributary connectors validate -f DIR|FILE... [--url URL] [--output table|json]", func(w io.Writer) {
		fmt.Fprint(w, connFilesHelp+"\nEach connector is validated by the worker (PUT /connector-plugins/{class}/config/validate);\nnothing is changed. Exits 1 when any connector has errors.\n")
	})
	pos, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	_, checks, err := connLoadAndValidate(ctx, c, append(*files, pos...))
	if err != nil {
		return err
	}
	var bad int
	if o.json() {
		for _, ch := range checks {
			if ch.ErrorCount > 0 {
				bad++
			}
		}
		if err := connWriteJSON(stdout, checks); err != nil {
			return err
		}
	} else {
		bad = connPrintChecks(stdout, checks, true)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d connector(s) have config errors", bad, len(checks))
	}
	return nil
}

// connChange is one key's difference between the worker and a file.
type connChange struct {
	Op  string  `json:"op"` // "+" added, "-" removed, "~" changed
	Key string  `json:"key"`
	Old *string `json:"old,omitempty"`
	New *string `json:"new,omitempty"`
}

// connPlan is what apply does (or would do) to one connector.
type connPlan struct {
	Name       string       `json:"name"`
	File       string       `json:"file,omitempty"`
	Action     string       `json:"action"` // create, update, unchanged, delete
	Forced     bool         `json:"forced,omitempty"`
	Changes    []connChange `json:"changes,omitempty"`
	Uncompared []string     `json:"uncompared,omitempty"` // hidden values assumed equal
	Done       bool         `json:"done"`                 // the change was made
	conn       connectorfile.Connector
}

// connDiff compares the worker's config of a connector with the file's.
// A password value the worker hides is taken as equal to a literal value
// in the file (it cannot be compared): such keys are returned in
// uncompared. Values of password keys (pw, or hidden by the worker) are
// shown as [hidden] unless they are ${...} references.
func connDiff(current, desired map[string]string, pw map[string]bool) (changes []connChange, uncompared []string) {
	show := func(k, v string) *string {
		if (pw[k] || current[k] == restclient.Hidden) && !strings.HasPrefix(v, "${") {
			v = restclient.Hidden
		}
		return &v
	}
	keys := map[string]bool{}
	for k := range current {
		keys[k] = true
	}
	for k := range desired {
		keys[k] = true
	}
	for _, k := range connSortedKeys(keys) {
		cur, inCur := current[k]
		des, inDes := desired[k]
		switch {
		case !inCur:
			changes = append(changes, connChange{Op: "+", Key: k, New: show(k, des)})
		case !inDes:
			changes = append(changes, connChange{Op: "-", Key: k, Old: show(k, cur)})
		case cur == des:
		case cur == restclient.Hidden && !strings.HasPrefix(des, "${"):
			uncompared = append(uncompared, k)
		default:
			changes = append(changes, connChange{Op: "~", Key: k, Old: show(k, cur), New: show(k, des)})
		}
	}
	return changes, uncompared
}

func runConnApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("apply", stderr)
	files := connFilesFlag(fs)
	dryRun := fs.Bool("dry-run", false, "print what would change, key by key, and change nothing")
	prune := fs.Bool("prune", false, "delete the connectors on the worker that are not in the files")
	force := fs.Bool("force", false, "rewrite every connector's config, even when it looks unchanged")
	setUsage(fs, "tributary connectors apply -f DIR|FILE... [--dry-run] [--prune] [--force] [--url URL] [--output table|json]", func(w io.Writer) {
		fmt.Fprint(w, connFilesHelp+`
Every connector is validated first; if any has errors, they are printed by connector and key
and nothing is changed. Then each connector whose config differs from the worker's is created
or updated (PUT /connectors/{name}/config); the others are reported unchanged. Password values
are hidden by the worker and cannot be compared: keep them out of files as ${env:VAR} or
${file:/path:key} references, or use --force.
`)
	})
	pos, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	conns, checks, err := connLoadAndValidate(ctx, c, append(*files, pos...))
	if err != nil {
		return err
	}
	bad := 0
	for _, ch := range checks {
		if ch.ErrorCount > 0 {
			bad++
		}
	}
	if bad > 0 {
		if o.json() {
			if err := connWriteJSON(stdout, map[string]any{"valid": false, "connectors": checks}); err != nil {
				return err
			}
		} else {
			connPrintChecks(stdout, checks, false)
		}
		return fmt.Errorf("%d of %d connector(s) have config errors; nothing was changed", bad, len(checks))
	}

	existing, err := c.Connectors(ctx)
	if err != nil {
		return err
	}
	onWorker := map[string]bool{}
	for _, n := range existing {
		onWorker[n] = true
	}
	var plans []*connPlan
	inFiles := map[string]bool{}
	for i, cn := range conns {
		inFiles[cn.Name] = true
		p := &connPlan{Name: cn.Name, File: cn.File, conn: cn}
		if !onWorker[cn.Name] {
			p.Action = "create"
			p.Changes, _ = connDiff(nil, cn.Config, checks[i].passwords)
		} else {
			cur, err := c.ConnectorConfig(ctx, cn.Name)
			if err != nil && !restclient.IsNotFound(err) {
				return fmt.Errorf("reading the config of %s: %w", cn.Name, err)
			}
			p.Changes, p.Uncompared = connDiff(cur, cn.Config, checks[i].passwords)
			switch {
			case err != nil: // deleted since it was listed
				p.Action = "create"
			case len(p.Changes) > 0:
				p.Action = "update"
			case *force:
				p.Action, p.Forced = "update", true
			default:
				p.Action = "unchanged"
			}
		}
		plans = append(plans, p)
	}
	var extra []string
	for _, n := range existing {
		if !inFiles[n] {
			extra = append(extra, n)
		}
	}
	if *prune {
		sort.Strings(extra)
		for _, n := range extra {
			plans = append(plans, &connPlan{Name: n, Action: "delete"})
		}
		extra = nil
	}

	var notes []string
	for _, p := range plans {
		if len(p.Uncompared) > 0 && !p.Forced {
			notes = append(notes, fmt.Sprintf("%s: %s hidden by the worker and could not be compared with the file; assumed unchanged "+
				"(use --force to rewrite it, or keep secrets out of files with ${env:VAR} or ${file:/path:key} references)",
				p.Name, connKeysPhrase(p.Uncompared)))
		}
	}
	if len(extra) > 0 {
		notes = append(notes, fmt.Sprintf("on the worker but not in the files (left alone; --prune deletes them): %s", strings.Join(extra, ", ")))
	}

	// Make the changes (unless --dry-run), reporting as we go; stop at the
	// first failure.
	var applyErr error
	for _, p := range plans {
		if !*dryRun {
			if err := connExecute(ctx, c, p); err != nil {
				applyErr = fmt.Errorf("%s: %w", p.Name, err)
				break
			}
		}
		if !o.json() {
			connPrintPlan(stdout, p, *dryRun)
		}
	}
	count := map[string]int{}
	for _, p := range plans {
		if *dryRun || p.Done || p.Action == "unchanged" {
			count[p.Action]++
		}
	}
	if o.json() {
		out := map[string]any{"dry_run": *dryRun, "connectors": plans, "notes": append([]string{}, notes...),
			"summary": map[string]int{"created": count["create"], "updated": count["update"], "unchanged": count["unchanged"], "deleted": count["delete"]}}
		if err := connWriteJSON(stdout, out); err != nil {
			return err
		}
		return applyErr
	}
	for _, n := range notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run, nothing was changed: would create %d, update %d, delete %d; %d unchanged\n",
			count["create"], count["update"], count["delete"], count["unchanged"])
	} else {
		fmt.Fprintf(stdout, "created %d, updated %d, unchanged %d, deleted %d\n",
			count["create"], count["update"], count["unchanged"], count["delete"])
	}
	return applyErr
}

// connExecute makes one plan's change on the worker. A 409 means the
// cluster is rebalancing (or has no leader yet): the change is retried
// every half second for up to conflictRetry, as a worker that just started
// or lost a member answers so for a few seconds.
func connExecute(ctx context.Context, c *restclient.Client, p *connPlan) error {
	ctx, cancel := context.WithTimeout(ctx, conflictRetry)
	defer cancel()
	for {
		err := connExecuteOnce(ctx, c, p)
		if err == nil || !restclient.IsConflict(err) {
			return err
		}
		if p.Action == "create" && p.conn.InitialState != "" {
			// POST answers 409 also when the connector exists: then it
			// was created meanwhile (by an earlier attempt, or by someone
			// else), and a PUT makes its config ours.
			if _, gerr := c.Connector(ctx, p.Name); gerr == nil {
				p.Action = "update"
				continue
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still after retrying until: %v)", err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// conflictRetry bounds how long apply retries a change answered with 409.
const conflictRetry = time.Minute

func connExecuteOnce(ctx context.Context, c *restclient.Client, p *connPlan) error {
	var err error
	switch p.Action {
	case "unchanged":
		return nil
	case "delete":
		err = c.DeleteConnector(ctx, p.Name)
	case "create":
		if p.conn.InitialState != "" {
			_, err = c.CreateConnector(ctx, p.Name, p.conn.Config, p.conn.InitialState)
			break
		}
		var created bool
		_, created, err = c.PutConnectorConfig(ctx, p.Name, p.conn.Config)
		if err == nil && !created {
			p.Action = "update" // created by someone else in the meantime
		}
	case "update":
		_, _, err = c.PutConnectorConfig(ctx, p.Name, p.conn.Config)
	default:
		return fmt.Errorf("unknown action %q", p.Action)
	}
	if err != nil {
		return err
	}
	p.Done = true
	return nil
}

// connPrintPlan prints one connector's line and, for a dry run or an
// update, its changes key by key.
func connPrintPlan(w io.Writer, p *connPlan, dryRun bool) {
	verb := map[string][2]string{
		"create": {"created", "would be created"}, "update": {"updated", "would be updated"},
		"unchanged": {"unchanged", "unchanged"}, "delete": {"deleted (not in the files)", "would be deleted (not in the files)"},
	}[p.Action]
	line := verb[0]
	if dryRun {
		line = verb[1]
	}
	if p.Forced {
		line += " (--force: no difference seen)"
	}
	if p.File != "" {
		line += " [" + p.File + "]"
	}
	fmt.Fprintf(w, "%s: %s\n", p.Name, line)
	if p.Action == "update" || (dryRun && p.Action == "create") {
		for _, ch := range p.Changes {
			switch ch.Op {
			case "+":
				fmt.Fprintf(w, "    + %s: %q\n", ch.Key, *ch.New)
			case "-":
				fmt.Fprintf(w, "    - %s: %q\n", ch.Key, *ch.Old)
			default:
				fmt.Fprintf(w, "    ~ %s: %q -> %q\n", ch.Key, *ch.Old, *ch.New)
			}
		}
	}
}

// connKeysPhrase renders keys as "a is" or "a, b are".
func connKeysPhrase(keys []string) string {
	if len(keys) == 1 {
		return keys[0] + " is"
	}
	return strings.Join(keys, ", ") + " are"
}
