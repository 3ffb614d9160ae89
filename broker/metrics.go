package broker

// Prometheus metrics, served at /metrics on metrics.listen. Names:
//
//	tributary_broker_received_bytes_total, tributary_broker_sent_bytes_total   (all requests/responses)
//	tributary_broker_produced_bytes_total, tributary_broker_produced_records_total
//	tributary_broker_requests_total{api}, tributary_broker_request_seconds{api}
//	tributary_broker_errors_total{api,error}        (error codes answered, per partition/member)
//	tributary_broker_bad_requests_total{reason}     (connections closed for bad frames)
//	tributary_broker_connections                    (open client connections)
//	tributary_broker_fsync_seconds                  (histogram of every fsync)
//	tributary_broker_partition_size_bytes{topic,partition}
//	tributary_broker_partition_log_end_offset{topic,partition}, ..._log_start_offset, ..._high_watermark
//	tributary_broker_groups                         (consumer groups known)

import (
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-data/tributary/broker/commitlog"
)

type metrics struct {
	reg            *prometheus.Registry
	bytesRecv      prometheus.Counter
	bytesSent      prometheus.Counter
	bytesIn        prometheus.Counter
	recordsIn      prometheus.Counter
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	errors         *prometheus.CounterVec
	badRequests    *prometheus.CounterVec
	connections    prometheus.Gauge
	fsyncSeconds   prometheus.Histogram
}

func newMetrics(b *Broker) *metrics {
	const ns = "tributary_broker"
	m := &metrics{
		reg:            prometheus.NewRegistry(),
		bytesRecv:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "received_bytes_total", Help: "Bytes of requests received."}),
		bytesSent:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "sent_bytes_total", Help: "Bytes of responses sent."}),
		bytesIn:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "produced_bytes_total", Help: "Bytes of record batches appended."}),
		recordsIn:      prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "produced_records_total", Help: "Records appended."}),
		requests:       prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total", Help: "Requests handled, by API."}, []string{"api"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_seconds", Help: "Time from receiving a request to its response, by API.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
		errors:         prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "errors_total", Help: "Error codes answered, by API and Kafka error name (one per topic, partition or member that has one)."}, []string{"api", "error"}),
		badRequests:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "bad_requests_total", Help: "Connections closed for an undecodable or oversized request."}, []string{"reason"}),
		connections:    prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "connections", Help: "Open client connections."}),
		fsyncSeconds:   prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "fsync_seconds", Help: "Latency of fsync calls.", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14)}),
	}
	m.reg.MustRegister(m.bytesRecv, m.bytesSent, m.bytesIn, m.recordsIn, m.requests, m.requestSeconds, m.errors, m.badRequests, m.connections, m.fsyncSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &stateCollector{b: b})
	return m
}

func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

func (m *metrics) observeFsync(d time.Duration) { m.fsyncSeconds.Observe(d.Seconds()) }

var (
	descSize   = prometheus.NewDesc("tributary_broker_partition_size_bytes", "Bytes on disk of a partition's log.", []string{"topic", "partition"}, nil)
	descLEO    = prometheus.NewDesc("tributary_broker_partition_log_end_offset", "Next offset a partition assigns.", []string{"topic", "partition"}, nil)
	descLSO    = prometheus.NewDesc("tributary_broker_partition_log_start_offset", "First offset a partition holds.", []string{"topic", "partition"}, nil)
	descHW     = prometheus.NewDesc("tributary_broker_partition_high_watermark", "End of a partition's fsynced data.", []string{"topic", "partition"}, nil)
	descGroups = prometheus.NewDesc("tributary_broker_groups", "Consumer groups known to the coordinator.", nil, nil)
)

// stateCollector reports partition and group state at scrape time.
type stateCollector struct{ b *Broker }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSize
	ch <- descLEO
	ch <- descLSO
	ch <- descHW
	ch <- descGroups
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.b.topics == nil || c.b.groups == nil {
		return
	}
	for _, t := range c.b.topics.List() {
		for p := int32(0); p < t.NumPartitions(); p++ {
			l := t.Partition(p)
			if l == nil {
				continue
			}
			ps := strconv.Itoa(int(p))
			ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(l.Size()), t.Name, ps)
			ch <- prometheus.MustNewConstMetric(descLEO, prometheus.GaugeValue, float64(l.LogEndOffset()), t.Name, ps)
			ch <- prometheus.MustNewConstMetric(descLSO, prometheus.GaugeValue, float64(l.LogStartOffset()), t.Name, ps)
			ch <- prometheus.MustNewConstMetric(descHW, prometheus.GaugeValue, float64(l.HighWatermark()), t.Name, ps)
		}
	}
	ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(c.b.groups.NumGroups()))
}

// timedFS measures every fsync for the fsync latency histogram.
type timedFS struct {
	commitlog.FS
	observe func(time.Duration)
}

func (t timedFS) OpenFile(name string, flag int, perm os.FileMode) (commitlog.File, error) {
	f, err := t.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return timedFile{File: f, observe: t.observe}, nil
}

func (t timedFS) SyncDir(path string) error {
	start := time.Now()
	err := t.FS.SyncDir(path)
	t.observe(time.Since(start))
	return err
}

type timedFile struct {
	commitlog.File
	observe func(time.Duration)
}

func (f timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.observe(time.Since(start))
	return err
}
