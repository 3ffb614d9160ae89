package engine

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// TaskGaugePrefix starts the name of every gauge a task exports itself.
const TaskGaugePrefix = "tributary_connector_task_"

// gaugeTimeout bounds how long a scrape waits for one task's gauges.
const gaugeTimeout = 2 * time.Second

// TaskGauges returns a Prometheus collector of the gauges running tasks
// export themselves (connect.MetricsReporter: a replication slot's lag,
// say), asked from their plugin processes at each scrape and exported as
// tributary_connector_task_<name>{connector,task}. A task that does not
// answer in time, or whose plugin predates the Metrics call, exports none.
func (e *Engine) TaskGauges() prometheus.Collector { return taskGauges{e} }

type taskGauges struct{ e *Engine }

// Describe sends nothing: the gauges are known only when tasks report
// them (an unchecked collector).
func (taskGauges) Describe(chan<- *prometheus.Desc) {}

func (g taskGauges) Collect(ch chan<- prometheus.Metric) {
	type running struct {
		id     taskID
		plugin pluginpb.PluginClient
	}
	var rs []running
	g.e.mu.Lock()
	for id, rt := range g.e.tasks {
		if p := rt.plugin.Load(); p != nil && rt.get() == StateRunning {
			rs = append(rs, running{id, *p})
		}
	}
	g.e.mu.Unlock()
	descs := map[string]*prometheus.Desc{} // one help text per name in a scrape
	for _, r := range rs {
		ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
		resp, err := r.plugin.Metrics(ctx, &pluginpb.MetricsRequest{})
		cancel()
		if err != nil {
			continue
		}
		for _, m := range resp.Metrics {
			d := descs[m.Name]
			if d == nil {
				d = prometheus.NewDesc(TaskGaugePrefix+m.Name, m.Help, []string{"connector", "task"}, nil)
				descs[m.Name] = d
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, m.Value, r.id.connector, strconv.Itoa(r.id.task))
		}
	}
}
