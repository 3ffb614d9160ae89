package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/tributary-data/tributary/bench/benchreport"
)

// Row labels (the test looks for them).
const (
	rowSnapshot       = "snapshot"
	rowSnapshotSteady = "snapshot, from the first record"
	rowInserts        = "inserts"
	rowRefInserts     = "inserts, no CDC"
	rowCDC            = "CDC streaming"
	rowLag            = "CDC lag"
	rowCatchUp        = "CDC catch-up"
	rowWorkerRSS      = "worker peak RSS"
	rowPluginsRSS     = "plugin processes peak RSS"
	rowTotalRSS       = "worker + plugins peak RSS"
)

// mb converts MiB to MB (10^6 bytes), the targets' unit.
func mb(mib float64) float64 { return mib * (1 << 20) / 1e6 }

func render(o options, pgVersion string, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## cdcbench (%s): Postgres CDC source -> broker, %s snapshot rows + %s streamed rows, best of %d run(s)\n\n",
		o.variant.name, benchreport.Thousands(float64(o.rows)), benchreport.Thousands(float64(o.streamRows)), len(rs))
	durability := "fsync, synchronous_commit and full_page_writes off: not durable"
	if o.durable {
		durability = "fsync, synchronous_commit and full_page_writes on"
	}
	fmt.Fprintf(&b, "Machine: %d CPUs, %s %s/%s, shared by everything measured: PostgreSQL %s (internal/testpg, %s) on the same machine, "+
		"`tributary broker`, `tributary worker` (offset.flush.interval.ms=%d; %s) with its plugin processes "+
		"(`%s`: one for the connector instance, one for the task, and the validator the worker keeps for a minute after validating the POST), and this process (the inserting client and the pollers).\n\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, pgVersion, durability, flushMs, o.variant.what, pluginBinary)

	if len(o.extra) > 0 {
		var kv []string
		for k, v := range o.extra {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		fmt.Fprintf(&b, "**Experiment**: connector config added with --set: %s (not what users get by default).\n\n", strings.Join(kv, ", "))
	}
	b.WriteString("| measurement | what | best run | every run | target |\n|---|---|---:|---|---|\n")
	snap := benchreport.BestBy(rs, func(r result) float64 { return r.snapshotRPS() })
	fmt.Fprintf(&b, "| %s | %s existing rows (COPY-loaded before the connector existed): POST of the connector (snapshot.mode=initial) -> all of them in the topic | %.2f s, %s rows/s | %s | >= %s rows/s: %s |\n",
		rowSnapshot, benchreport.Thousands(float64(o.rows)), snap.snapshot.Seconds(), benchreport.Thousands(snap.snapshotRPS()), benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.snapshotRPS()) }),
		benchreport.Thousands(targetSnapshot), benchreport.Verdict(snap.snapshotRPS() >= targetSnapshot))
	steady := func(r result) float64 { return float64(r.rows) / (r.snapshot - r.snapFirst).Seconds() }
	ss := benchreport.BestBy(rs, steady)
	fmt.Fprintf(&b, "| %s | the same from the first record in the topic (start-up excluded: plugin processes, slot creation, exported snapshot; %.2f s) | %.2f s, %s rows/s | %s | |\n",
		rowSnapshotSteady, ss.snapFirst.Seconds(), (ss.snapshot - ss.snapFirst).Seconds(), benchreport.Thousands(steady(ss)), benchreport.Every(rs, func(r result) string { return benchreport.Thousands(steady(r)) }))
	ins := benchreport.BestBy(rs, func(r result) float64 { return r.insertRPS() })
	fmt.Fprintf(&b, "| %s | %s rows inserted while the connector streams: %d connections, COPY in transactions of %s rows, first BEGIN -> last COMMIT | %.2f s, %s rows/s | %s | |\n",
		rowInserts, benchreport.Thousands(float64(o.streamRows)), inserters, benchreport.Thousands(insertTxRows), ins.insert.Seconds(), benchreport.Thousands(ins.insertRPS()),
		benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.insertRPS()) }))
	ref := benchreport.BestBy(rs, func(r result) float64 { return r.refInsertRPS() })
	fmt.Fprintf(&b, "| %s | reference: the same inserts into another table before the connector existed (no slot, nothing decoding) | %.2f s, %s rows/s | %s | |\n",
		rowRefInserts, ref.refInsert.Seconds(), benchreport.Thousands(ref.refInsertRPS()), benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.refInsertRPS()) }))
	cdc := benchreport.BestBy(rs, func(r result) float64 { return r.cdcRPS() })
	fmt.Fprintf(&b, "| %s | first BEGIN -> all %s rows in the topic | %.2f s, %s rows/s | %s | >= %s rows/s: %s |\n",
		rowCDC, benchreport.Thousands(float64(o.streamRows)), cdc.cdc.Seconds(), benchreport.Thousands(cdc.cdcRPS()), benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.cdcRPS()) }),
		benchreport.Thousands(targetCDC), benchreport.Verdict(cdc.cdcRPS() >= targetCDC))
	lag := benchreport.BestBy(rs, func(r result) float64 { return -r.lag.Seconds() })
	fmt.Fprintf(&b, "| %s | last COMMIT -> the last record in the topic (polled every %d ms) | %.2f s | %s | |\n",
		rowLag, pollEvery.Milliseconds(), lag.lag.Seconds(), benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.2f s", r.lag.Seconds()) }))
	cu := benchreport.BestBy(rs, func(r result) float64 { return r.catchUpRPS() })
	fmt.Fprintf(&b, "| %s | rows not yet in the topic at the last COMMIT (%s in the best run), over the lag: the connector's pace with the inserts over | %s rows/s | %s | |\n",
		rowCatchUp, benchreport.Thousands(float64(int64(cu.streamRows)-cu.atCommit)), benchreport.Thousands(cu.catchUpRPS()), benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.catchUpRPS()) }))

	// Memory: the highest run (the worst case), not the best.
	w := benchreport.BestBy(rs, func(r result) float64 { return r.WorkerHWM })
	fmt.Fprintf(&b, "| %s | the worker process alone: VmHWM (highest run; %.0f MiB when the snapshot was in the topic) | %.0f MiB (%.0f MB) | %s | < %d MB: %s |\n",
		rowWorkerRSS, w.workerHWMSnap, w.WorkerHWM, mb(w.WorkerHWM), benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.WorkerHWM) }),
		targetRSSMB, benchreport.Verdict(mb(w.WorkerHWM) < targetRSSMB))
	p := benchreport.BestBy(rs, func(r result) float64 { return r.PluginsRSS })
	fmt.Fprintf(&b, "| %s | the worker's %d plugin processes: their summed VmRSS at its highest, sampled every %d ms (highest run; one process's VmHWM at most %.0f MiB) | %.0f MiB (%.0f MB) | %s | |\n",
		rowPluginsRSS, p.Plugins, memSampleEvery.Milliseconds(), p.PluginHWM, p.PluginsRSS, mb(p.PluginsRSS), benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.PluginsRSS) }))
	t := benchreport.BestBy(rs, func(r result) float64 { return r.TotalRSS })
	fmt.Fprintf(&b, "| %s | the worker and its plugin processes: summed VmRSS at its highest, sampled every %d ms (highest run) | %.0f MiB (%.0f MB) | %s | < %d MB: %s |\n",
		rowTotalRSS, memSampleEvery.Milliseconds(), t.TotalRSS, mb(t.TotalRSS), benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.TotalRSS) }),
		targetRSSMB, benchreport.Verdict(mb(t.TotalRSS) < targetRSSMB))

	b.WriteString("\nTargets (the issue's): ")
	fmt.Fprintf(&b, "CDC >= %s rows/s: %s; snapshot >= %s rows/s: %s; worker RSS < %d MB: worker alone %s, worker + plugin processes %s. PostgreSQL's memory is not counted.\n",
		benchreport.Thousands(targetCDC), benchreport.Verdict(cdc.cdcRPS() >= targetCDC), benchreport.Thousands(targetSnapshot), benchreport.Verdict(snap.snapshotRPS() >= targetSnapshot),
		targetRSSMB, benchreport.Verdict(mb(w.WorkerHWM) < targetRSSMB), benchreport.Verdict(mb(t.TotalRSS) < targetRSSMB))

	// Who used the CPUs.
	b.WriteString("\nCPU seconds by process during each phase (from /proc/PID/stat at the phase's start and end; approximate when processes come and go), and of the whole machine (/proc/stat: other processes than ours show as the difference):\n\n")
	ncpu := float64(runtime.NumCPU())
	fmt.Fprintf(&b, "| phase (run) | wall s | worker | plugin processes | broker | PostgreSQL | cdcbench (client, pollers) | ours in all | of %d CPUs | every process on the machine | of %d CPUs | iowait s | ours, CPU µs per row | ceiling on %d idle CPUs, rows/s |\n",
		runtime.NumCPU(), runtime.NumCPU(), runtime.NumCPU())
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cpuRow := func(name string, wall float64, rows int, c cpuSplit) {
		perRow := c.total() / float64(rows)
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | %.1f | %s |\n",
			name, wall, c.worker, c.plugins, c.broker, c.postgres, c.bench, c.total(), 100*c.total()/(wall*ncpu), c.machine, 100*c.machine/(wall*ncpu), c.iowait,
			perRow*1e6, benchreport.Thousands(ncpu/perRow))
	}
	cpuRow(fmt.Sprintf("snapshot (run %d)", snap.run), snap.snapshot.Seconds(), snap.rows, snap.cpuSnap)
	cpuRow(fmt.Sprintf("streaming (run %d)", cdc.run), cdc.cdc.Seconds(), cdc.streamRows, cdc.cpuStream)
	fmt.Fprintf(&b, "\nThe ceiling is %d CPUs over the CPU time our processes spent per row: the rate if the phase had the machine to itself and used every CPU fully "+
		"(for streaming it includes PostgreSQL's and the client's work of inserting).\n", runtime.NumCPU())

	b.WriteString("\nNotes:\n\n")
	fmt.Fprintf(&b, "- Rows: id bigint primary key, name text (48 bytes), amount numeric(12,2), created timestamptz, flag bool; the table's heap is %.0f bytes per row on disk (tuple header and page overhead included). "+
		"In the topic (one partition, auto-created) a record is a Debezium envelope as the converter wrote it (the default JsonConverter embeds the schema in every record): the last one has %s bytes of key + value.\n",
		float64(rs[0].tableBytes)/float64(o.rows), benchreport.Thousands(float64(rs[0].recordLen)))
	fmt.Fprintf(&b, "- The streaming inserts start %.0f s after the snapshot's last record is in the topic, on the same connector and slot (ids after the snapshot's). "+
		"The CDC rate cannot exceed the insert rate: both run at once on the same CPUs.\n", streamPause.Seconds())
	switch {
	case cdc.cdcRPS() >= 0.9*cdc.insertRPS() && cdc.lag.Seconds() < 1:
		fmt.Fprintf(&b, "- In the best CDC run the topic kept up with the inserts (CDC %s rows/s vs inserts %s rows/s, %.2f s behind at the end): the insert load bounded the CDC rate, so the figure is a lower bound of the connector's; "+
			"the catch-up row shows the connector's own pace once the inserts were over.\n", benchreport.Thousands(cdc.cdcRPS()), benchreport.Thousands(cdc.insertRPS()), cdc.lag.Seconds())
	default:
		fmt.Fprintf(&b, "- In the best CDC run the connector fell behind the inserts (CDC %s rows/s vs inserts %s rows/s; %s rows were not yet in the topic at the last COMMIT, drained in %.2f s): "+
			"the CDC path (PostgreSQL's walsender decoding; the plugin process decoding pgoutput and converting to JSON; the worker; the broker), not the load, bounded the CDC rate.\n",
			benchreport.Thousands(cdc.cdcRPS()), benchreport.Thousands(cdc.insertRPS()), benchreport.Thousands(float64(int64(cdc.streamRows)-cdc.atCommit)), cdc.lag.Seconds())
	}
	if cdc.refInsert > 0 {
		ratio := cdc.insertRPS() / cdc.refInsertRPS()
		why := "the CDC path's CPU use (the walsender's, the plugin's, the worker's, the broker's) slowed the writers: they share the CPUs"
		if ratio >= 0.9 {
			why = "the CDC path hardly slowed the writers"
		}
		fmt.Fprintf(&b, "- With the connector streaming, the inserts ran at %.0f%% of their rate without CDC (%s vs %s rows/s): %s.\n",
			100*ratio, benchreport.Thousands(cdc.insertRPS()), benchreport.Thousands(cdc.refInsertRPS()), why)
	}
	for _, ph := range []struct {
		name string
		wall float64
		c    cpuSplit
	}{{"snapshot", snap.snapshot.Seconds(), snap.cpuSnap}, {"streaming", cdc.cdc.Seconds(), cdc.cpuStream}} {
		if other := ph.c.machine - ph.c.total(); other > 0.1*ph.wall*ncpu {
			fmt.Fprintf(&b, "- During the %s phase, processes other than the measured ones used %.1f CPU s (%.0f%% of the machine): the figures were disturbed by other work on the machine.\n",
				ph.name, other, 100*other/(ph.wall*ncpu))
		}
	}
	for i, r := range rs {
		switch {
		case r.slotLag < 0:
			fmt.Fprintf(&b, "- Run %d: the replication slot had no confirmed position %.0f s after the last record.\n", i+1, r.slotWait.Seconds())
		case r.slotLag > slotSettled:
			fmt.Fprintf(&b, "- Run %d: the replication slot's confirmed position was still %s bytes behind the WAL %.0f s after the last record was in the topic: PostgreSQL keeps that WAL.\n",
				i+1, benchreport.Thousands(float64(r.slotLag)), r.slotWait.Seconds())
		}
		if r.extra != 0 {
			fmt.Fprintf(&b, "- Run %d: the topic held %d records more than the rows a second after the end (at-least-once duplicates).\n", i+1, r.extra)
		}
	}

	b.WriteString("\nEvery run:\n\n")
	for i, r := range rs {
		fmt.Fprintf(&b, "- run %d: load (COPY) %.2f s (%s rows/s), reference inserts %s rows/s; slot %s bytes behind the WAL %.1f s after the end; snapshot %.2f s, %s rows/s (first record after %.2f s); inserts %.2f s, %s rows/s; "+
			"CDC %.2f s, %s rows/s, lag %.2f s (%s rows pending at the last COMMIT); worker VmHWM %.0f MiB, plugins %.0f MiB (%d processes), together %.0f MiB\n",
			i+1, r.load.Seconds(), benchreport.Thousands(float64(r.rows)/r.load.Seconds()), benchreport.Thousands(r.refInsertRPS()), benchreport.Thousands(float64(r.slotLag)), r.slotWait.Seconds(), r.snapshot.Seconds(), benchreport.Thousands(r.snapshotRPS()), r.snapFirst.Seconds(),
			r.insert.Seconds(), benchreport.Thousands(r.insertRPS()), r.cdc.Seconds(), benchreport.Thousands(r.cdcRPS()), r.lag.Seconds(), benchreport.Thousands(float64(int64(r.streamRows)-r.atCommit)),
			r.WorkerHWM, r.PluginsRSS, r.Plugins, r.TotalRSS)
	}
	return b.String()
}
