package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
)

const (
	stopGrace      = 15 * time.Second
	pollEvery      = 200 * time.Millisecond // the target's row / key count
	memSampleEvery = 200 * time.Millisecond
	statusEvery    = time.Second // connector status, process liveness
	flushMs        = 1000        // the worker's offset.flush.interval.ms
	batchSize      = 10_000      // the ClickHouse sink's batch.size
	connectorName  = "sink-bench"
	topic          = "sinkbench"
	chTable        = "sinkbench"
)

// result is one run of one sink.
type result struct {
	run       int // 1-based
	records   int
	produce   time.Duration // preloading the topic
	valueLen  int           // bytes of the last record's value
	first     time.Duration // POST -> the first row/key seen in the target
	total     time.Duration // POST -> every record in the target
	final     int64         // rows/keys in the target at the end
	workerHWM float64       // MiB, the worker's VmHWM
	memPeaks
}

func (r result) rate() float64 { return float64(r.records) / r.total.Seconds() }

// steadyRate is the rate from the first row seen (start-up excluded).
func (r result) steadyRate() float64 {
	if d := (r.total - r.first).Seconds(); d > 0 {
		return float64(r.records) / d
	}
	return 0
}

// env is one run's processes and clients.
type env struct {
	o      options
	dir    string
	broker *benchproc.Proc
	worker *benchproc.Proc
	kafka  string
	rest   string
	logf   func(string, ...any)
}

func runOnce(ctx context.Context, o options, tg targets, sink string, r int, logf func(string, ...any)) (res result, err error) {
	res.run, res.records = r, o.records
	e := &env{o: o, dir: filepath.Join(o.workDir, fmt.Sprintf("%s-run%d", sink, r)), logf: logf}
	if err := os.RemoveAll(e.dir); err != nil {
		return res, err
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return res, err
	}
	if os.Getenv("SINKBENCH_KEEP") == "" {
		defer os.RemoveAll(e.dir)
	}

	// The target, empty.
	var count func(context.Context) (int64, error)
	config := map[string]string{
		"topics":                         topic,
		"tasks.max":                      strconv.Itoa(o.partitions),
		"key.converter":                  "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
	}
	switch sink {
	case sinkClickHouse:
		db := fmt.Sprintf("sinkbench_%d", r)
		for _, q := range []string{
			"DROP DATABASE IF EXISTS " + db,
			"CREATE DATABASE " + db,
			"CREATE TABLE " + db + "." + chTable + " (id Int64, name String, amount Float64, ts Int64) ENGINE = MergeTree() ORDER BY id",
		} {
			if _, err := tg.ch.Do(ctx, q); err != nil {
				return res, err
			}
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := tg.ch.Do(dctx, "DROP DATABASE IF EXISTS "+db); err != nil {
				logf("dropping %s: %v", db, err)
			}
		}()
		count = func(ctx context.Context) (int64, error) {
			out, err := tg.ch.Do(ctx, "SELECT count() FROM "+db+"."+chTable)
			if err != nil {
				return 0, err
			}
			return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		}
		for k, v := range map[string]string{
			"connector.class":   "ClickHouseSink",
			"hostname":          tg.ch.Host,
			"port":              strconv.Itoa(tg.ch.TCPPort),
			"database":          db,
			"topic2TableMap":    topic + "=" + chTable,
			"insert.mode":       "insert",
			"auto.create":       "false",
			"batch.size":        strconv.Itoa(batchSize),
			"flush.interval.ms": "1000",
		} {
			config[k] = v
		}
	case sinkRedis:
		rc := redis.NewClient(&redis.Options{Addr: tg.rd.Addr(), Password: tg.rd.Password, DisableIdentity: true})
		defer rc.Close()
		if err := rc.FlushAll(ctx).Err(); err != nil {
			return res, err
		}
		count = func(ctx context.Context) (int64, error) { return rc.DBSize(ctx).Result() }
		for k, v := range map[string]string{
			"connector.class": "RedisSink",
			"redis.uri":       tg.rd.URI(),
			"redis.command":   "SET",
		} {
			config[k] = v
		}
	}

	defer e.stop()
	if err := e.start(ctx); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n--- connector status: %s\n--- worker log ends:\n%s", err, e.status(), benchproc.Tail(e.worker.LogPath, 3000))
		}
	}()
	logf("%s run %d: producing %s records into %s (%d partitions)", sink, r, benchreport.Thousands(float64(o.records)), topic, o.partitions)
	t0 := time.Now()
	if res.valueLen, err = e.produce(ctx); err != nil {
		return res, fmt.Errorf("producing: %w", err)
	}
	res.produce = time.Since(t0)
	logf("%s run %d: produced in %.2f s (%s records/s); creating the connector", sink, r, res.produce.Seconds(), benchreport.Thousands(float64(o.records)/res.produce.Seconds()))

	mem := startMemSampler(e.worker.PID())
	defer mem.stop()
	start := time.Now()
	if err := e.postConnector(ctx, config); err != nil {
		return res, err
	}
	var first time.Time
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	lastCheck := start
	for {
		n, err := count(ctx)
		if err != nil {
			return res, fmt.Errorf("counting: %w", err)
		}
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
		}
		if n >= int64(o.records) {
			res.total, res.first, res.final = now.Sub(start), first.Sub(start), n
			break
		}
		if now.Sub(lastCheck) >= statusEvery {
			lastCheck = now
			logf("  %s of %s in %s", benchreport.Thousands(float64(n)), benchreport.Thousands(float64(o.records)), sink)
			for _, p := range []*benchproc.Proc{e.worker, e.broker} {
				if err := p.Alive(); err != nil {
					return res, err
				}
			}
			if err := e.failed(ctx); err != nil {
				return res, err
			}
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%d of %d in %s: %w", n, o.records, sink, ctx.Err())
		case <-t.C:
		}
	}
	// More than the records would be duplicates; a flush interval later.
	if err := sleep(ctx, flushMs*time.Millisecond); err != nil {
		return res, err
	}
	if n, err := count(ctx); err == nil {
		res.final = n
	}
	res.memPeaks = mem.stop()
	_, res.workerHWM = benchproc.MemMB(e.worker.PID())
	return res, nil
}

// rowValue is the JSON value of record i: about 100 bytes.
func rowValue(i int) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"name":"customer-`...)
	b = append(b, fmt.Sprintf("%010d", i)...)
	b = append(b, `-abcdefghijklmnopqrstuv","amount":`...)
	b = strconv.AppendFloat(b, float64(i%1_000_000)/100+0.01, 'f', 2, 64)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, 1_700_000_000_000+int64(i), 10)
	return append(b, '}')
}

// produce creates the topic and fills it with o.records records; it
// returns the last value's length.
func (e *env) produce(ctx context.Context) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(e.o.partitions), 1, nil, topic)
	if err != nil {
		return 0, err
	}
	if resp.Err != nil {
		return 0, fmt.Errorf("creating topic %s: %w", topic, resp.Err)
	}
	var (
		once     sync.Once
		firstErr error
		failed   atomic.Bool
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			once.Do(func() { firstErr = err })
			failed.Store(true)
		}
	}
	var last int
	for i := 0; i < e.o.records && !failed.Load(); i++ {
		v := rowValue(i)
		last = len(v)
		cl.Produce(ctx, &kgo.Record{Key: []byte("id-" + strconv.Itoa(i)), Value: v}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if failed.Load() {
		return 0, firstErr
	}
	return last, nil
}

// start starts the broker and the worker and waits until the worker is
// healthy.
func (e *env) start(ctx context.Context) error {
	var err error
	if e.kafka, err = benchproc.FreeAddr(); err != nil {
		return err
	}
	e.broker, err = benchproc.Start("broker", []string{e.o.tributary, "broker", "--listen", e.kafka, "--data-dir", filepath.Join(e.dir, "broker-data")}, e.dir)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := benchproc.WaitTCP(wctx, e.kafka, e.broker); err != nil {
		return err
	}
	if e.rest, err = benchproc.FreeAddr(); err != nil {
		return err
	}
	e.worker, err = benchproc.Start("worker", []string{e.o.tributary, "worker", "--bootstrap-servers", e.kafka, "--group-id", "sinkbench",
		"--rest-listen", e.rest, "--plugin-path", filepath.Dir(e.o.tributary),
		"--set", "offset.flush.interval.ms=" + strconv.Itoa(flushMs)}, e.dir)
	if err != nil {
		return err
	}
	hctx, hcancel := context.WithTimeout(ctx, 60*time.Second)
	defer hcancel()
	for {
		code, _, err := e.http(hctx, http.MethodGet, "/health", nil)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err := e.worker.Alive(); err != nil {
			return err
		}
		if err := sleep(hctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("the worker did not become healthy: %w", err)
		}
	}
}

// stop deletes the connector (the worker stops its plugin processes
// gracefully), then stops the worker and the broker. Idempotent.
func (e *env) stop() {
	if e.worker != nil && !e.worker.Dead() && e.rest != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		before := benchproc.ChildrenOf(e.worker.PID())
		if code, _, err := e.http(ctx, http.MethodDelete, "/connectors/"+connectorName, nil); err == nil && code == http.StatusNoContent {
			for {
				alive := 0
				for _, pid := range before {
					if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
						alive++
					}
				}
				// The validator process the worker keeps after a POST may live on.
				if alive <= 1 || sleep(ctx, 100*time.Millisecond) != nil {
					break
				}
			}
		}
		cancel()
	}
	if e.worker != nil {
		e.worker.Stop(stopGrace)
	}
	if e.broker != nil {
		e.broker.Stop(stopGrace)
	}
}

func (e *env) http(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.rest+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// postConnector creates the connector, retrying while the worker answers
// 409 (rebalancing).
func (e *env) postConnector(ctx context.Context, config map[string]string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b, err := e.http(ctx, http.MethodPost, "/connectors", map[string]any{"name": connectorName, "config": config})
		switch {
		case err != nil:
			return fmt.Errorf("creating connector %s: %w", connectorName, err)
		case code == http.StatusCreated:
			return nil
		case code == http.StatusConflict && time.Now().Before(deadline):
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		default:
			return fmt.Errorf("creating connector %s: %d %s", connectorName, code, strings.TrimSpace(string(b)))
		}
	}
}

// status returns the connector's status for messages.
func (e *env) status() string {
	if e.rest == "" {
		return "(no worker)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, b, err := e.http(ctx, http.MethodGet, "/connectors/"+connectorName+"/status", nil)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", code, bytes.TrimSpace(b))
}

// failed returns an error when the connector or one of its tasks FAILED.
func (e *env) failed(ctx context.Context) error {
	code, b, err := e.http(ctx, http.MethodGet, "/connectors/"+connectorName+"/status", nil)
	if err != nil || code != http.StatusOK {
		return nil // transient (or not yet known): the wait times out otherwise
	}
	var st struct {
		Connector struct {
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"connector"`
		Tasks []struct {
			ID    int    `json:"id"`
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"tasks"`
	}
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	if st.Connector.State == "FAILED" {
		return fmt.Errorf("connector %s FAILED: %s", connectorName, st.Connector.Trace)
	}
	for _, t := range st.Tasks {
		if t.State == "FAILED" {
			return fmt.Errorf("task %s/%d FAILED: %s", connectorName, t.ID, t.Trace)
		}
	}
	return nil
}

// memPeaks are the highest memory figures of the plugin processes, in MiB.
type memPeaks struct {
	pluginsRSS float64 // highest sum of their VmRSS in one sample
	pluginHWM  float64 // highest VmHWM of one of them
	plugins    int     // most of them in one sample
}

// memSampler samples the worker's children every memSampleEvery.
type memSampler struct {
	once sync.Once
	quit chan struct{}
	done chan struct{}
	p    memPeaks
}

func startMemSampler(worker int) *memSampler {
	m := &memSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(memSampleEvery)
		defer t.Stop()
		for {
			kids := benchproc.ChildrenOf(worker)
			var sum float64
			for _, pid := range kids {
				rss, hwm := benchproc.MemMB(pid)
				sum += rss
				m.p.pluginHWM = max(m.p.pluginHWM, hwm)
			}
			m.p.pluginsRSS = max(m.p.pluginsRSS, sum)
			m.p.plugins = max(m.p.plugins, len(kids))
			select {
			case <-m.quit:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// stop ends the sampling and returns the peaks. Idempotent.
func (m *memSampler) stop() memPeaks {
	m.once.Do(func() { close(m.quit) })
	<-m.done
	return m.p
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
