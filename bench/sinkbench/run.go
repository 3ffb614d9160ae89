package main

import (
	"context"
	"fmt"
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
	run                int // 1-based
	records            int
	produce            time.Duration // preloading the topic
	valueLen           int           // bytes of the last record's value
	first              time.Duration // POST -> the first row/key seen in the target
	total              time.Duration // POST -> every record in the target
	final              int64         // rows/keys in the target at the end
	benchproc.MemPeaks               // the worker's and the plugin processes' (its children's)
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
	o    options
	dir  string
	st   *benchproc.Stack // broker and worker
	logf func(string, ...any)
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
			err = fmt.Errorf("%w\n--- connector status: %s\n--- worker log ends:\n%s", err, e.st.Status(connectorName), benchproc.Tail(e.st.Worker.LogPath, 3000))
		}
	}()
	logf("%s run %d: producing %s records into %s (%d partitions)", sink, r, benchreport.Thousands(float64(o.records)), topic, o.partitions)
	t0 := time.Now()
	if res.valueLen, err = e.produce(ctx); err != nil {
		return res, fmt.Errorf("producing: %w", err)
	}
	res.produce = time.Since(t0)
	logf("%s run %d: produced in %.2f s (%s records/s); creating the connector", sink, r, res.produce.Seconds(), benchreport.Thousands(float64(o.records)/res.produce.Seconds()))

	mem := benchproc.StartMemSampler(e.st.Worker.PID(), memSampleEvery)
	defer mem.Stop()
	start := time.Now()
	if err := e.st.PostConnector(ctx, connectorName, config); err != nil {
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
			for _, p := range []*benchproc.Proc{e.st.Worker, e.st.Broker} {
				if err := p.Alive(); err != nil {
					return res, err
				}
			}
			if err := e.st.Failed(ctx, connectorName); err != nil {
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
	if err := benchproc.Sleep(ctx, flushMs*time.Millisecond); err != nil {
		return res, err
	}
	if n, err := count(ctx); err == nil {
		res.final = n
	}
	res.MemPeaks = mem.Stop()
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.st.Kafka), kgo.DefaultProduceTopic(topic),
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

// start starts the broker and the worker.
func (e *env) start(ctx context.Context) (err error) {
	e.st, err = benchproc.StartStack(ctx, e.o.tributary, e.dir, "sinkbench", "offset.flush.interval.ms="+strconv.Itoa(flushMs))
	return err
}

// stop deletes the connector (the worker stops its plugin processes
// gracefully), then stops the worker and the broker. Idempotent.
func (e *env) stop() {
	if e.st != nil {
		e.st.DeleteConnector(connectorName)
		e.st.Stop(stopGrace)
	}
}
