package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/tributary-data/tributary/bench/benchreport"
)

// Row labels (the test looks for them).
const (
	rowClickHouse        = "ClickHouse sink"
	rowClickHouseSteady  = "ClickHouse sink, from the first row"
	rowClickHouseWorker  = "ClickHouse: worker peak RSS"
	rowClickHousePlugins = "ClickHouse: plugin processes peak RSS"
	rowRedis             = "Redis sink"
	rowRedisSteady       = "Redis sink, from the first key"
	rowRedisWorker       = "Redis: worker peak RSS"
	rowRedisPlugins      = "Redis: plugin processes peak RSS"
)

func render(o options, chVersion string, results map[string][]result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## sinkbench: broker -> worker -> sink connector -> target, %s records, %d partitions, best of %d run(s)\n\n",
		benchreport.Thousands(float64(o.records)), o.partitions, o.runs)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s %s/%s, shared by everything measured: `tributary broker`, `tributary worker` (offset.flush.interval.ms=%d) with its plugin processes, "+
		"the target servers (internal/testclickhouse, internal/testredis) and this process (the pollers). "+
		"Each run preloads the topic from this process before the connector exists: string keys id-<n>, values of about 100 bytes of JSON without schema "+
		"(id, name, amount, ts), read with key.converter=StringConverter and value.converter=JsonConverter, schemas.enable=false, tasks.max=%d.\n\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, flushMs, o.partitions)
	b.WriteString("| measurement | what | best run | every run | target |\n|---|---|---:|---|---|\n")

	type sinkRows struct {
		sink, row, steady, worker, plugins, unit, what, target string
		want                                                   float64
	}
	for _, s := range []sinkRows{
		{sinkClickHouse, rowClickHouse, rowClickHouseSteady, rowClickHouseWorker, rowClickHousePlugins, "rows",
			fmt.Sprintf("ClickHouseSink (insert.mode=insert, batch.size=%s) into a MergeTree table sinkbench created (schemaless records cannot auto-create it; ClickHouse %s): POST of the connector -> SELECT count() = every record (polled every %d ms)",
				benchreport.Thousands(batchSize), chVersion, pollEvery.Milliseconds()),
			"rows/s", targetClickHouse},
		{sinkRedis, rowRedis, rowRedisSteady, rowRedisWorker, rowRedisPlugins, "ops",
			fmt.Sprintf("RedisSink (redis.command=SET, key %s:<record key>, value the JSON object): POST of the connector -> DBSIZE = every record (polled every %d ms)", topic, pollEvery.Milliseconds()),
			"ops/s", targetRedis},
	} {
		rs := results[s.sink]
		if len(rs) == 0 {
			continue
		}
		best := benchreport.BestBy(rs, result.rate)
		fmt.Fprintf(&b, "| %s | %s | %.2f s, %s %s/s | %s | >= %s %s: %s |\n",
			s.row, s.what, best.total.Seconds(), benchreport.Thousands(best.rate()), s.unit,
			benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.rate()) }),
			benchreport.Thousands(s.want), s.target, benchreport.Verdict(best.rate() >= s.want))
		st := benchreport.BestBy(rs, result.steadyRate)
		fmt.Fprintf(&b, "| %s | the same from the first one seen (start-up excluded: plugin processes, consumer group join; %.2f s) | %.2f s, %s %s/s | %s | |\n",
			s.steady, st.first.Seconds(), (st.total - st.first).Seconds(), benchreport.Thousands(st.steadyRate()), s.unit,
			benchreport.Every(rs, func(r result) string { return benchreport.Thousands(r.steadyRate()) }))
		w := benchreport.BestBy(rs, func(r result) float64 { return r.WorkerHWM })
		fmt.Fprintf(&b, "| %s | the worker process alone: VmHWM at the end of the measurement (highest run) | %.0f MiB | %s | |\n",
			s.worker, w.WorkerHWM, benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.WorkerHWM) }))
		p := benchreport.BestBy(rs, func(r result) float64 { return r.PluginsRSS })
		fmt.Fprintf(&b, "| %s | the worker's %d plugin processes (connector instance, task(s), validator): summed VmRSS at its highest, sampled every %d ms (highest run; one process's VmHWM at most %.0f MiB) | %.0f MiB | %s | |\n",
			s.plugins, p.Plugins, memSampleEvery.Milliseconds(), p.PluginHWM, p.PluginsRSS, benchreport.Every(rs, func(r result) string { return fmt.Sprintf("%.0f MiB", r.PluginsRSS) }))
	}

	b.WriteString("\nNotes:\n\n")
	for _, s := range o.sinks {
		for _, r := range results[s] {
			if r.final != int64(r.records) {
				fmt.Fprintf(&b, "- %s run %d: the target held %s rows/keys a second after the end, for %s records (duplicates: at-least-once).\n",
					s, r.run, benchreport.Thousands(float64(r.final)), benchreport.Thousands(float64(r.records)))
			}
		}
	}
	b.WriteString("- The ClickHouse and Redis servers run on the same machine and their CPU and memory are not counted; the rates include the target's work.\n")

	b.WriteString("\nEvery run:\n\n")
	for _, s := range o.sinks {
		for _, r := range results[s] {
			fmt.Fprintf(&b, "- %s run %d: preload %.2f s (%s records/s, values of %d bytes); first write after %.2f s; all in %.2f s, %s/s (%s/s from the first); %s in the target at the end; worker VmHWM %.0f MiB, plugins %.0f MiB (%d processes)\n",
				s, r.run, r.produce.Seconds(), benchreport.Thousands(float64(r.records)/r.produce.Seconds()), r.valueLen, r.first.Seconds(), r.total.Seconds(),
				benchreport.Thousands(r.rate()), benchreport.Thousands(r.steadyRate()), benchreport.Thousands(float64(r.final)), r.WorkerHWM, r.PluginsRSS, r.Plugins)
		}
	}
	return b.String()
}
