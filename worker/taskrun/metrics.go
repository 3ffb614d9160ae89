package taskrun

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-connector, per-task Prometheus metrics of the task
// runners. A nil *Metrics records nothing.
//
//	tributary_task_records_in_total{connector,task}   records read (source: polled; sink: consumed)
//	tributary_task_records_out_total{connector,task}  records delivered (source: acknowledged by Kafka; sink: Put)
//	tributary_task_errors_total{connector,task}        records skipped or sent to the DLQ by errors.tolerance=all
//	tributary_task_batch_seconds{connector,task,op}    latency of poll/put/flush calls into the plugin
//	tributary_task_offset_lag{connector,task,topic,partition}  sink: records consumed but not yet committed
type Metrics struct {
	in, out, errs *prometheus.CounterVec
	batch         *prometheus.HistogramVec
	lag           *prometheus.GaugeVec
}

// NewMetrics registers the task metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"connector", "task"}
	m := &Metrics{
		in:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_task_records_in_total", Help: "Records read by a task (source: polled; sink: consumed)."}, l),
		out:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_task_records_out_total", Help: "Records delivered by a task (source: acknowledged by Kafka; sink: put)."}, l),
		errs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_task_errors_total", Help: "Records a task skipped or sent to the dead letter queue."}, l),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tributary_task_batch_seconds", Help: "Latency of poll, put and flush calls into the plugin.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, append(l, "op")),
		lag:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tributary_task_offset_lag", Help: "Sink: records consumed but not yet committed, per partition."}, append(l, "topic", "partition")),
	}
	reg.MustRegister(m.in, m.out, m.errs, m.batch, m.lag)
	return m
}

func (m *Metrics) observePoll(connector string, task, n int, d time.Duration) {
	if m == nil {
		return
	}
	t := strconv.Itoa(task)
	m.in.WithLabelValues(connector, t).Add(float64(n))
	m.batch.WithLabelValues(connector, t, "poll").Observe(d.Seconds())
}

func (m *Metrics) observe(connector string, task int, op string, d time.Duration) {
	if m == nil {
		return
	}
	m.batch.WithLabelValues(connector, strconv.Itoa(task), op).Observe(d.Seconds())
}

func (m *Metrics) recordIn(connector string, task, n int) {
	if m != nil {
		m.in.WithLabelValues(connector, strconv.Itoa(task)).Add(float64(n))
	}
}

func (m *Metrics) recordOut(connector string, task, n int) {
	if m != nil {
		m.out.WithLabelValues(connector, strconv.Itoa(task)).Add(float64(n))
	}
}

func (m *Metrics) recordError(connector string, task int) {
	if m != nil {
		m.errs.WithLabelValues(connector, strconv.Itoa(task)).Inc()
	}
}

func (m *Metrics) setLag(connector string, task int, topic string, partition int32, lag int64) {
	if m != nil {
		m.lag.WithLabelValues(connector, strconv.Itoa(task), topic, strconv.Itoa(int(partition))).Set(float64(lag))
	}
}
