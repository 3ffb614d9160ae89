package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tributary-data/tributary/worker/rest"
	"github.com/tributary-data/tributary/worker/restclient"
)

// connPollInterval is how often status --wait looks at the worker.
const connPollInterval = 250 * time.Millisecond

func runConnStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := connFlagSet("status", stderr)
	wait := fs.Duration("wait", 0, "wait up to this long until every listed connector and all its tasks are RUNNING; fail as soon as one is FAILED")
	setUsage(fs, "tributary connectors status [NAME...] [--wait DURATION] [--url URL] [--output table|json]", func(w io.Writer) {
		fmt.Fprintf(w, "\nShows every connector (or the named ones): state, worker, tasks, and the first line of\n"+
			"each failure's trace. Exits 1 when a connector or task is FAILED, so that CI can gate on it.\n"+
			"With --wait, a connector is ready when it and all of its tasks (at least one) are RUNNING;\n"+
			"an unreachable worker or a connector not created yet is waited for too.\n")
	})
	names, err := parseConnArgs(fs, o, args)
	if err != nil {
		return err
	}
	if *wait < 0 {
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if *wait == 0 {
		sts, missing, err := connStatuses(ctx, c, names)
		if err != nil {
			return err
		}
		if len(sts) > 0 || len(names) == 0 || o.json() {
			if err := connPrintStatus(stdout, o, c, sts); err != nil {
				return err
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no such connector: %s", strings.Join(missing, ", "))
		}
		return connFailedError(sts)
	}
	return connWaitRunning(ctx, c, o, names, *wait, stdout)
}

// connWaitRunning polls until every connector (the named ones, or all) is
// RUNNING with all its tasks, one is FAILED, or wait passes. It prints the
// last status seen.
func connWaitRunning(ctx context.Context, c *restclient.Client, o *connOpts, names []string, wait time.Duration, stdout io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var (
		last    []rest.ConnectorStateInfo
		pending []string
		lastErr error
	)
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if last != nil {
				if err := connPrintStatus(stdout, o, c, last); err != nil {
					return err
				}
			}
			if lastErr != nil {
				return fmt.Errorf("timed out after %v: %w", wait, lastErr)
			}
			return fmt.Errorf("timed out after %v waiting for RUNNING: %s", wait, strings.Join(pending, "; "))
		case <-timer.C:
		}
		sts, missing, err := connStatuses(wctx, c, names)
		switch {
		case err == nil:
		case wctx.Err() != nil:
			continue // the deadline passed during the request
		case errors.Is(err, restclient.ErrUnreachable), restclient.StatusCode(err) >= 500, restclient.IsConflict(err):
			lastErr = err // not up yet, or rebalancing: keep waiting
			timer.Reset(connPollInterval)
			continue
		default:
			return err
		}
		last, lastErr = sts, nil
		if connAnyFailed(sts) {
			if err := connPrintStatus(stdout, o, c, sts); err != nil {
				return err
			}
			return connFailedError(sts)
		}
		pending = pending[:0]
		for _, m := range missing {
			pending = append(pending, m+": not found")
		}
		for _, st := range sts {
			pending = append(pending, connNotReady(st)...)
		}
		if len(pending) == 0 {
			return connPrintStatus(stdout, o, c, sts)
		}
		timer.Reset(connPollInterval)
	}
}

// connStatuses returns the status of the named connectors (missing: those
// the worker does not know), or of every connector, sorted by name.
func connStatuses(ctx context.Context, c *restclient.Client, names []string) (sts []rest.ConnectorStateInfo, missing []string, err error) {
	if len(names) == 0 {
		all, err := c.ConnectorsExpanded(ctx, true, false)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range connSortedKeys(all) {
			if s := all[n].Status; s != nil {
				sts = append(sts, *s)
			}
		}
		return sts, nil, nil
	}
	for _, n := range names {
		st, err := c.ConnectorStatus(ctx, n)
		if restclient.IsNotFound(err) {
			missing = append(missing, n)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sts = append(sts, st)
	}
	return sts, missing, nil
}

// connNotReady says what keeps a connector from being ready (itself and
// at least one task, all RUNNING); nil when it is.
func connNotReady(st rest.ConnectorStateInfo) []string {
	var out []string
	if st.Connector.State != rest.StateRunning {
		out = append(out, fmt.Sprintf("%s: connector %s", st.Name, st.Connector.State))
	}
	if len(st.Tasks) == 0 {
		out = append(out, st.Name+": no tasks yet")
	}
	for _, t := range st.Tasks {
		if t.State != rest.StateRunning {
			out = append(out, fmt.Sprintf("%s: task %d %s", st.Name, t.ID, t.State))
		}
	}
	return out
}

func connAnyFailed(sts []rest.ConnectorStateInfo) bool {
	return connFailedError(sts) != nil
}

// connFailedError names the FAILED connectors and tasks, nil if none.
func connFailedError(sts []rest.ConnectorStateInfo) error {
	var failed []string
	for _, st := range sts {
		if st.Connector.State == rest.StateFailed {
			failed = append(failed, st.Name)
		}
		for _, t := range st.Tasks {
			if t.State == rest.StateFailed {
				failed = append(failed, fmt.Sprintf("%s task %d", st.Name, t.ID))
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("FAILED: %s (restart with 'tributary connectors restart NAME --include-tasks --only-failed' once fixed)", strings.Join(failed, ", "))
}

// connPrintStatus prints statuses as a table followed by the first line
// of every failure's trace, or as a JSON array.
func connPrintStatus(w io.Writer, o *connOpts, c *restclient.Client, sts []rest.ConnectorStateInfo) error {
	if o.json() {
		if sts == nil {
			sts = []rest.ConnectorStateInfo{}
		}
		return connWriteJSON(w, sts)
	}
	if len(sts) == 0 {
		fmt.Fprintf(w, "no connectors on %s\n", c.URL())
		return nil
	}
	tw := connTable(w)
	fmt.Fprintf(tw, "CONNECTOR\tTYPE\tSTATE\tWORKER\tTASKS\n")
	for _, st := range sts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", st.Name, st.Type, st.Connector.State, st.Connector.WorkerID, connTaskSummary(st.Tasks))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range sts {
		if st.Connector.State == rest.StateFailed {
			fmt.Fprintf(w, "%s: connector FAILED on %s: %s\n", st.Name, st.Connector.WorkerID, connFirstLine(st.Connector.Trace))
		}
		for _, t := range st.Tasks {
			if t.State == rest.StateFailed {
				fmt.Fprintf(w, "%s: task %d FAILED on %s: %s\n", st.Name, t.ID, t.WorkerID, connFirstLine(t.Trace))
			}
		}
	}
	return nil
}

// connTaskSummary renders tasks as "2/2 RUNNING" or "1/2 RUNNING, 1 FAILED".
func connTaskSummary(tasks []rest.TaskState) string {
	count := map[string]int{}
	for _, t := range tasks {
		count[t.State]++
	}
	s := fmt.Sprintf("%d/%d %s", count[rest.StateRunning], len(tasks), rest.StateRunning)
	for _, state := range connSortedKeys(count) {
		if state != rest.StateRunning {
			s += fmt.Sprintf(", %d %s", count[state], state)
		}
	}
	return s
}

func connFirstLine(trace string) string {
	trace = strings.TrimSpace(trace)
	if trace == "" {
		return "(no trace)"
	}
	line, _, _ := strings.Cut(trace, "\n")
	return strings.TrimSpace(line)
}
