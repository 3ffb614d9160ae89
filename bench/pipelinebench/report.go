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
	rowThroughput   = "pipeline throughput, sustained"
	rowInserts      = "inserts, sustained"
	rowDrain        = "drain after the last commit"
	rowFreshSat     = "freshness at saturation (sustained): p50 / p99 / max"
	rowFreshPaced   = "freshness below capacity (paced): p50 / p99 / max"
	rowPacedRate    = "paced rate"
	rowWorkerRSS    = "worker peak RSS"
	rowPluginsRSS   = "plugin processes peak RSS"
	rowTotalRSS     = "worker + plugins peak RSS"
	freshnessFormat = "%s / %s / %s"
)

func render(o options, sv servers, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## pipelinebench: PostgreSQL -> CDC source -> broker -> ClickHouse sink (upsert), %s rows sustained + %s rows/s paced for %s, best of %d run(s)\n\n",
		benchreport.Thousands(float64(o.rows)), benchreport.Thousands(float64(o.rate)), o.pacedDuration, len(rs))
	fmt.Fprintf(&b, "Machine: %d CPUs, %s %s/%s, shared by everything measured: PostgreSQL %s (internal/testpg: fsync, synchronous_commit and full_page_writes off, not durable), "+
		"ClickHouse %s (internal/testclickhouse), `tributary broker`, `tributary worker` (offset.flush.interval.ms=%d, the default) with its plugin processes, and this process (the writers' client side and the poller). "+
		"Connectors: PostgresCdcSource (default converters: JsonConverter with schemas, which the sink needs for struct keys and auto.create) and ClickHouseSink "+
		"(insert.mode=upsert into a ReplacingMergeTree(_version) the sink creates; %s).\n\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, sv.pgVersion, sv.chVersion, flushMs, sinkSettings(o))
	if !o.set.empty() {
		fmt.Fprintf(&b, "**Experiment**: settings added with --set: %s (not the benchmark's defaults).\n\n", strings.Join(o.set.list(), ", "))
	}

	b.WriteString("| measurement | what | best run | every run | target |\n|---|---|---:|---|---|\n")
	th := benchreport.BestBy(rs, func(r result) float64 { return r.sustained.rps() })
	fmt.Fprintf(&b, "| %s | %s rows inserted by %d connections in transactions of %s rows (COPY): first BEGIN -> the last transaction visible in ClickHouse's FINAL view | %.2f s, %s rows/s | %s | >= %s rows/s: %s |\n",
		rowThroughput, benchreport.Thousands(float64(o.rows)), o.writers, benchreport.Thousands(float64(o.txRows)), th.sustained.total.Seconds(), benchreport.Thousands(th.sustained.rps()),
		benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.sustained.rps()) }), benchreport.Thousands(targetRPS), benchreport.Verdict(th.sustained.rps() >= targetRPS))
	ins := benchreport.BestBy(rs, func(r result) float64 { return r.sustained.insertRPS() })
	fmt.Fprintf(&b, "| %s | the same inserts: first BEGIN -> last COMMIT (the load offered to the pipeline) | %.2f s, %s rows/s | %s | |\n",
		rowInserts, ins.sustained.insert.Seconds(), benchreport.Thousands(ins.sustained.insertRPS()), benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.sustained.insertRPS()) }))
	dr := benchreport.BestBy(rs, func(r result) float64 { return -r.sustained.drain.Seconds() })
	fmt.Fprintf(&b, "| %s | last COMMIT -> the last transaction visible in ClickHouse (the backlog at the end of the inserts) | %.2f s | %s | |\n",
		rowDrain, dr.sustained.drain.Seconds(), benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.2f s", r.sustained.drain.Seconds()) }))
	fs := benchreport.BestBy(rs, func(r result) float64 { return -r.sustained.fresh.p99.Seconds() })
	fmt.Fprintf(&b, "| %s | COMMIT returned to the writer -> all of the transaction's rows visible, over the %s transactions of the sustained phase: the pipeline saturated, so mostly time queued behind earlier rows | %s | %s | none (queueing, not latency) |\n",
		rowFreshSat, benchreport.Thousands(float64(fs.sustained.txs)), freshCell(fs.sustained.fresh), benchreport.Every(rs, func(r result) string { return freshCell(r.sustained.fresh) }))
	if o.rate > 0 {
		fp := bestPaced(rs)
		fmt.Fprintf(&b, "| %s | the same over the %s transactions of %d rows of the paced phase (%s rows/s for %s, below capacity): the latency of the pipeline | %s | %s | p99 < %s: %s |\n",
			rowFreshPaced, benchreport.Thousands(float64(fp.paced.txs)), o.pacedTxRows, benchreport.Thousands(float64(o.rate)), o.pacedDuration, freshCell(fp.paced.fresh),
			benchreport.Every(rs, func(r result) string { return freshCell(r.paced.fresh) }), targetFreshness, benchreport.Verdict(fp.paced.fresh.p99 < targetFreshness))
		pr := benchreport.BestBy(rs, func(r result) float64 { return r.paced.insertRPS() })
		fmt.Fprintf(&b, "| %s | rows committed per second in the paced phase (first BEGIN -> last COMMIT; target %s rows/s); transactions that began over %d ms late | %s rows/s, %d late | %s | |\n",
			rowPacedRate, benchreport.Thousands(float64(o.rate)), lateAfter.Milliseconds(), benchreport.Thousands(pr.paced.insertRPS()), pr.paced.late,
			benchreport.Every(rs, func(r result) string {
				return fmt.Sprintf("%s (%d late)", benchreport.Thousands(r.paced.insertRPS()), r.paced.late)
			}))
	} else {
		fmt.Fprintf(&b, "| %s | skipped (--rate 0) | | | p99 < %s: not measured |\n", rowFreshPaced, targetFreshness)
	}

	// Memory: the highest run (the worst case), not the best.
	w := benchreport.BestBy(rs, func(r result) float64 { return r.mem.WorkerHWM })
	fmt.Fprintf(&b, "| %s | the worker process alone: VmHWM (highest run) | %.0f MiB | %s | |\n",
		rowWorkerRSS, w.mem.WorkerHWM, benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.mem.WorkerHWM) }))
	p := benchreport.BestBy(rs, func(r result) float64 { return r.mem.PluginsRSS })
	fmt.Fprintf(&b, "| %s | the worker's plugin processes (up to %d at once: per connector an instance and a task, and a validator per binary the worker keeps for a minute after a POST): summed VmRSS at its highest, sampled every %d ms (highest run; per binary: %s) | %.0f MiB | %s | |\n",
		rowPluginsRSS, p.mem.Plugins, memSampleEvery.Milliseconds(), byBinary(p.mem.ByBinary), p.mem.PluginsRSS, benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.mem.PluginsRSS) }))
	t := benchreport.BestBy(rs, func(r result) float64 { return r.mem.TotalRSS })
	fmt.Fprintf(&b, "| %s | the worker and its plugin processes: summed VmRSS at its highest (highest run) | %.0f MiB | %s | |\n",
		rowTotalRSS, t.mem.TotalRSS, benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.mem.TotalRSS) }))

	freshVerdict := "not measured (--rate 0)"
	if o.rate > 0 {
		freshVerdict = benchreport.Verdict(bestPaced(rs).paced.fresh.p99 < targetFreshness)
	}
	fmt.Fprintf(&b, "\nTargets (the issue's): throughput >= %s rows/s from Postgres commits to ClickHouse: %s; p99 freshness < %s below capacity: %s.\n",
		benchreport.Thousands(targetRPS), benchreport.Verdict(th.sustained.rps() >= targetRPS), targetFreshness, freshVerdict)

	// Who used the CPUs.
	ncpu := float64(runtime.NumCPU())
	b.WriteString("\nCPU seconds by process during each phase (from /proc/PID/stat at the phase's start and end), and of the whole machine (/proc/stat: other processes than ours show as the difference):\n\n")
	fmt.Fprintf(&b, "| phase (run) | wall s | worker | %s | %s | other plugin processes | broker | PostgreSQL | ClickHouse | pipelinebench | ours in all | of %d CPUs | every process on the machine | of %d CPUs | ours, CPU µs per row |\n",
		sourceBinary, sinkBinary, runtime.NumCPU(), runtime.NumCPU())
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cpuRow := func(name string, ph phaseResult) {
		c, wall := ph.cpu, ph.total.Seconds()
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.2f | %.0f%% | %.1f |\n",
			name, wall, c.worker, c.source, c.sink, c.ended, c.broker, c.postgres, c.clickhouse, c.bench, c.ours(), 100*c.ours()/(wall*ncpu),
			c.machine, 100*c.machine/(wall*ncpu), 1e6*c.ours()/float64(ph.rows))
	}
	cpuRow(fmt.Sprintf("sustained (run %d)", th.run), th.sustained)
	if o.rate > 0 {
		fp := bestPaced(rs)
		cpuRow(fmt.Sprintf("paced (run %d)", fp.run), fp.paced)
	}

	b.WriteString("\nNotes:\n\n")
	fmt.Fprintf(&b, "- Freshness is measured per transaction: a writer notes when its COMMIT returned; a poller runs `SELECT intDiv(id - base, tx rows), count() ... FINAL WHERE id in [first pending, last begun) GROUP BY 1` "+
		"over HTTP every %s and marks a transaction visible at the end of the first query that counts all of its rows. The figures are late by up to one poll interval plus one query "+
		"(queries took %.1f ms on average, %.0f ms at most, in the best sustained run), never early.\n",
		o.pollEvery, th.sustained.polls.meanMs(), float64(th.sustained.polls.maxQuery.Microseconds())/1000)
	fmt.Fprintf(&b, "- Sink settings (%s): batch.size (default 10000) bounds a ClickHouse insert at saturation; flush.interval.ms (default 1000) is the longest a row waits in the sink's buffer for more rows "+
		"(checked only when Put is called: the rows of the last Put before a pause wait for the worker's next flush of the sink, every offset.flush.interval.ms=%d, "+
		"which is what the end of a burst, like the sustained phase's last rows, sees; under a steady stream Puts come every few tens of ms). The source hands over a partial batch after at most 100 ms (fixed in the connector). "+
		"The worker's producer lingers 0 ms and compresses its batches (producer.compression.type, default snappy), and the broker acknowledges after fsync (acks=all).\n", sinkSettings(o), flushMs)
	if r := th.sustained; r.insertRPS() < 1.1*r.rps() && r.drain.Seconds() < 1 {
		fmt.Fprintf(&b, "- In the best sustained run the pipeline kept up with the writers (%s vs %s rows/s, %.2f s behind at the end): the writers, sharing the CPUs, bounded the figure; the pipeline's own capacity is higher.\n",
			benchreport.Thousands(r.rps()), benchreport.Thousands(r.insertRPS()), r.drain.Seconds())
	} else {
		fmt.Fprintf(&b, "- In the best sustained run the pipeline fell behind the writers (%s vs %s rows/s committed; %.2f s to drain after the last commit): the pipeline, not the load, bounded the figure.\n",
			benchreport.Thousands(r.rps()), benchreport.Thousands(r.insertRPS()), r.drain.Seconds())
	}
	for _, r := range rs {
		for _, ph := range []struct {
			name string
			p    phaseResult
			on   bool
		}{{"sustained", r.sustained, true}, {"paced", r.paced, o.rate > 0}} {
			if !ph.on {
				continue
			}
			if ph.p.fresh.beforeCommit > 0 {
				fmt.Fprintf(&b, "- Run %d, %s: %d transactions were seen in ClickHouse before their COMMIT returned to the writer (counted as 0).\n", r.run, ph.name, ph.p.fresh.beforeCommit)
			}
			if other := ph.p.cpu.machine - ph.p.cpu.ours(); other > 0.1*ph.p.total.Seconds()*ncpu {
				fmt.Fprintf(&b, "- Run %d, %s: processes other than the measured ones used %.1f CPU s (%.0f%% of the machine): the figures were disturbed by other work on the machine.\n",
					r.run, ph.name, other, 100*other/(ph.p.total.Seconds()*ncpu))
			}
		}
		if o.rate > 0 && r.paced.late > 0 {
			fmt.Fprintf(&b, "- Run %d, paced: %d of %d transactions began more than %d ms after their time (the writers could not keep the pace).\n", r.run, r.paced.late, r.paced.txs, lateAfter.Milliseconds())
		}
		if r.stored != r.unique {
			fmt.Fprintf(&b, "- Run %d: ClickHouse stored %s rows for %s unique keys at the end (replays: at-least-once; FINAL and merges hide them).\n", r.run, benchreport.Thousands(float64(r.stored)), benchreport.Thousands(float64(r.unique)))
		}
	}

	b.WriteString("\nEvery run:\n\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "- run %d: warm-up visible %.2f s after the POSTs; sustained: inserts %.2f s (%s rows/s), all visible after %.2f s (%s rows/s), drain %.2f s, freshness p50/p99/max/mean %s / %s / %s / %s over %d transactions, %d polls",
			r.run, r.warmup.Seconds(), r.sustained.insert.Seconds(), benchreport.Thousands(r.sustained.insertRPS()), r.sustained.total.Seconds(), benchreport.Thousands(r.sustained.rps()),
			r.sustained.drain.Seconds(), ms(r.sustained.fresh.p50), ms(r.sustained.fresh.p99), ms(r.sustained.fresh.max), ms(r.sustained.fresh.mean), r.sustained.txs, r.sustained.polls.queries)
		if o.rate > 0 {
			fmt.Fprintf(&b, "; paced: %s rows/s committed, freshness p50/p99/max/mean %s / %s / %s / %s over %d transactions, %d late, %d polls",
				benchreport.Thousands(r.paced.insertRPS()), ms(r.paced.fresh.p50), ms(r.paced.fresh.p99), ms(r.paced.fresh.max), ms(r.paced.fresh.mean), r.paced.txs, r.paced.late, r.paced.polls.queries)
		}
		fmt.Fprintf(&b, "; ClickHouse rows stored %s (FINAL %s); worker VmHWM %.0f MiB, plugins %.0f MiB (%s), together %.0f MiB\n",
			benchreport.Thousands(float64(r.stored)), benchreport.Thousands(float64(r.unique)), r.mem.WorkerHWM, r.mem.PluginsRSS, byBinary(r.mem.ByBinary), r.mem.TotalRSS)
	}
	return b.String()
}

func (p pollStats) meanMs() float64 {
	if p.queries == 0 {
		return 0
	}
	return float64(p.queryTime.Microseconds()) / 1000 / float64(p.queries)
}

// sinkSettings renders the sink's write settings as configured.
func sinkSettings(o options) string {
	var kv []string
	for k, v := range sinkDefaults {
		if ov, ok := o.set.sink[k]; ok {
			v = ov
		}
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ", ")
}

func freshCell(f freshness) string {
	return fmt.Sprintf(freshnessFormat, ms(f.p50), ms(f.p99), ms(f.max))
}

// byBinary renders per-binary memory peaks, sorted by name.
func byBinary(m map[string]float64) string {
	var parts []string
	for b, v := range m {
		if b == "" {
			b = "(ended)"
		}
		parts = append(parts, fmt.Sprintf("%s %.0f MiB", b, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// bestPaced returns the run with the lowest paced p99 freshness.
func bestPaced(rs []result) result {
	return benchreport.BestBy(rs, func(r result) float64 { return -r.paced.fresh.p99.Seconds() })
}
