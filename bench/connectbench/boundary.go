package main

import (
	"github.com/tributary-data/tributary/bench/benchproc"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/tributary-data/tributary/connectors/file"
	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
	"github.com/tributary-data/tributary/worker/taskrun"
)

// Variants of the boundary measurement.
const (
	variantPlugin    = "plugin (gRPC)"
	variantInProcess = "in-process"
)

// slug names a variant in topic, group and file names.
func slug(variant string) string {
	if variant == variantInProcess {
		return "inprocess"
	}
	return "plugin"
}

// fileClasses are the classes bin/tributary-connector-file serves (its main
// declares the same list).
func fileClasses() []plugins.Class {
	return []plugins.Class{
		{Name: file.SourceClass, Aliases: []string{"FileStreamSource", file.KafkaSourceClass}, New: file.NewSource},
		{Name: file.SinkClass, Aliases: []string{"FileStreamSink", file.KafkaSinkClass}, New: file.NewSink},
	}
}

// taskResult is one source-only or sink-only run.
type taskResult struct {
	records   int
	elapsed   time.Duration
	taskCPU   float64 // seconds: this process (runner, and the connector when in-process) + the plugin process
	runnerCPU float64 // seconds: this process alone
	brokerCPU float64
}

func (r taskResult) rps() float64 { return float64(r.records) / r.elapsed.Seconds() }

// boundaryEnv is what every boundary run shares: one broker subprocess, the
// input file, and a topic preloaded with the same lines for the sink runs.
type boundaryEnv struct {
	o         options
	dir       string
	input     string
	broker    *benchproc.Proc
	addr      string
	pluginBin string
	sinkTopic string
}

func (e *boundaryEnv) task(ctx context.Context, variant string) (pluginpb.PluginClient, func(error) error, func(), error) {
	if variant == variantInProcess {
		return plugins.InProcess(fileClasses()...), nil, func() {}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := plugins.Launch(lctx, e.pluginBin, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	return p.Plugin, p.Err, p.Kill, nil
}

// cpuMeters start counting this process with its plugin children, and the
// broker.
func (e *boundaryEnv) cpuMeters() (task, broker *familyCPU) {
	bpid := e.broker.PID()
	return newFamilyCPU(os.Getpid(), func(pid int) bool { return pid != bpid }), newFamilyCPU(bpid, nil)
}

// preload produces the input file's lines (without their newline) to the
// sink runs' topic, as the file source would.
func (e *boundaryEnv) preload(ctx context.Context) error {
	e.sinkTopic = "sink-input"
	if err := createTopic(ctx, e.addr, e.sinkTopic); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(500_000), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	f, err := os.Open(e.input)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, lineBytes*10_000)
	var perr atomic.Value
	for {
		n, rerr := readFull(f, buf)
		for off := 0; off+lineBytes <= n; off += lineBytes {
			v := append([]byte(nil), buf[off:off+lineBytes-1]...)
			cl.Produce(ctx, &kgo.Record{Topic: e.sinkTopic, Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.CompareAndSwap(nil, err)
				}
			})
		}
		if rerr != nil {
			break
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err, _ := perr.Load().(error); err != nil {
		return fmt.Errorf("preloading %s: %w", e.sinkTopic, err)
	}
	return nil
}

func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := f.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// memOffsets stands in for the connect-offsets topic: the boundary
// measurement is about moving records, and the engine's store writes once per
// offset.flush.interval.ms, which is negligible here.
type memOffsets struct {
	mu   sync.Mutex
	last []taskrun.Offset
}

func (m *memOffsets) Put(_ context.Context, _ string, offs []taskrun.Offset) error {
	m.mu.Lock()
	m.last = offs
	m.mu.Unlock()
	return nil
}

// ackCounter is a producer hook signalling when n records were acknowledged.
type ackCounter struct {
	n, want int64
	failed  atomic.Value
	once    sync.Once
	done    chan struct{}
	at      time.Time
}

func (a *ackCounter) OnProduceRecordUnbuffered(_ *kgo.Record, err error) {
	if err != nil {
		a.failed.CompareAndSwap(nil, err)
		return
	}
	if atomic.AddInt64(&a.n, 1) == a.want {
		a.once.Do(func() { a.at = time.Now(); close(a.done) })
	}
}

// runSource moves the input file to a fresh topic through one variant, as
// the engine runs a source task: StartSourceTask, then taskrun.RunSource
// with the worker's producer settings. It ends when the broker acknowledged
// every line.
func (e *boundaryEnv) runSource(ctx context.Context, variant string, run int) (res taskResult, err error) {
	topic := fmt.Sprintf("src-%d-%s", run, slug(variant))
	if err := createTopic(ctx, e.addr, topic); err != nil {
		return res, err
	}
	client, perr, kill, err := e.task(ctx, variant)
	if err != nil {
		return res, err
	}
	defer kill()
	cfg := map[string]string{"connector.class": "FileStreamSource", "file": e.input, "topic": topic, "batch.size": "2000",
		"key.converter": stringConv, "value.converter": stringConv}
	if _, err := client.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{Class: cfg["connector.class"], Config: cfg}); err != nil {
		return res, fmt.Errorf("start source task: %w", err)
	}
	defer client.StopTask(context.WithoutCancel(ctx), &pluginpb.StopRequest{})
	acks := &ackCounter{want: int64(e.o.records), done: make(chan struct{})}
	prod, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(500_000), kgo.ProducerLinger(0), kgo.WithHooks(acks))
	if err != nil {
		return res, err
	}
	defer prod.Close()
	tcpu, bcpu := e.cpuMeters()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		errc <- taskrun.RunSource(rctx, taskrun.SourceConfig{Connector: "bench-src", Plugin: client, PluginErr: perr,
			Producer: prod, Offsets: &memOffsets{}, OffsetFlushInterval: time.Second})
	}()
	if err := e.await(ctx, acks.done, errc, tcpu, bcpu); err != nil {
		cancel()
		<-errc
		return res, fmt.Errorf("source-only %s: %w (%d of %d acknowledged)", variant, err, atomic.LoadInt64(&acks.n), e.o.records)
	}
	res = taskResult{records: e.o.records, elapsed: acks.at.Sub(start)}
	res.taskCPU, res.runnerCPU = tcpu.seconds()
	res.brokerCPU, _ = bcpu.seconds()
	cancel()
	if err := <-errc; err != nil {
		return res, fmt.Errorf("source-only %s: %w", variant, err)
	}
	if err, _ := acks.failed.Load().(error); err != nil {
		return res, fmt.Errorf("source-only %s: producing: %w", variant, err)
	}
	return res, nil
}

// await waits for done while sampling the CPU meters, failing when the
// runner ends first or ctx ends.
func (e *boundaryEnv) await(ctx context.Context, done <-chan struct{}, errc <-chan error, meters ...*familyCPU) error {
	tick := time.NewTicker(samplePeriod)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case err := <-errc:
			if err == nil {
				err = errors.New("the task runner ended early")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			for _, m := range meters {
				m.sample()
			}
			if err := e.broker.Alive(); err != nil {
				return err
			}
		}
	}
}

// countingSink passes calls to the plugin, counting what Put accepted; the
// first Flush to succeed once every record was put marks the end.
type countingSink struct {
	taskrun.SinkPlugin
	put, want int64
	allPut    chan struct{} // closed when want records were put
	putOnce   sync.Once
	flushed   chan struct{} // closed when a flush after allPut succeeded
	flushOnce sync.Once
	at        time.Time
}

func (c *countingSink) Put(ctx context.Context, in *pluginpb.PutRequest, opts ...grpc.CallOption) (*pluginpb.PutResponse, error) {
	resp, err := c.SinkPlugin.Put(ctx, in, opts...)
	n := len(in.Records)
	if len(in.Packed) > 0 {
		n, _ = plugins.PackedCount(in.Packed)
	}
	if err == nil && atomic.AddInt64(&c.put, int64(n-len(resp.Failed))) >= c.want {
		c.putOnce.Do(func() { close(c.allPut) })
	}
	return resp, err
}

func (c *countingSink) Flush(ctx context.Context, in *pluginpb.FlushRequest, opts ...grpc.CallOption) (*pluginpb.FlushResponse, error) {
	resp, err := c.SinkPlugin.Flush(ctx, in, opts...)
	if err == nil && atomic.LoadInt64(&c.put) >= c.want {
		c.flushOnce.Do(func() { c.at = time.Now(); close(c.flushed) })
	}
	return resp, err
}

// runSink moves the preloaded topic to a fresh file through one variant, as
// the engine runs a sink task: StartSinkTask, then taskrun.RunSink in a
// fresh consumer group. It ends when every record was put and flushed (the
// file fsynced): once all are put the runner is stopped, which flushes at
// once instead of at the next offset.flush.interval.ms.
func (e *boundaryEnv) runSink(ctx context.Context, variant string, run int) (res taskResult, err error) {
	out := filepath.Join(e.dir, fmt.Sprintf("sink-%d-%s.txt", run, slug(variant)))
	defer os.Remove(out)
	client, perr, kill, err := e.task(ctx, variant)
	if err != nil {
		return res, err
	}
	defer kill()
	cfg := map[string]string{"connector.class": "FileStreamSink", "file": out, "topics": e.sinkTopic,
		"key.converter": stringConv, "value.converter": stringConv}
	if _, err := client.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: cfg["connector.class"], Config: cfg}); err != nil {
		return res, fmt.Errorf("start sink task: %w", err)
	}
	defer client.StopTask(context.WithoutCancel(ctx), &pluginpb.StopRequest{})
	cs := &countingSink{SinkPlugin: client, want: int64(e.o.records), allPut: make(chan struct{}), flushed: make(chan struct{})}
	tcpu, bcpu := e.cpuMeters()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		errc <- taskrun.RunSink(rctx, taskrun.SinkConfig{Connector: "bench-sink", Plugin: cs, PluginErr: perr,
			Brokers: []string{e.addr}, Group: fmt.Sprintf("connect-bench-sink-%d-%s", run, slug(variant)),
			Topics: []string{e.sinkTopic}, OffsetFlushInterval: time.Second})
	}()
	if err := e.await(ctx, cs.allPut, errc, tcpu, bcpu); err != nil {
		cancel()
		<-errc
		return res, fmt.Errorf("sink-only %s: %w (%d of %d put)", variant, err, atomic.LoadInt64(&cs.put), e.o.records)
	}
	cancel() // the runner's final flush follows at once
	rerr := <-errc
	select {
	case <-cs.flushed:
	default:
		return res, fmt.Errorf("sink-only %s: the final flush did not succeed: %v", variant, rerr)
	}
	res = taskResult{records: e.o.records, elapsed: cs.at.Sub(start)}
	res.taskCPU, res.runnerCPU = tcpu.seconds()
	res.brokerCPU, _ = bcpu.seconds()
	if rerr != nil {
		return res, fmt.Errorf("sink-only %s: %w", variant, rerr)
	}
	n, err := countLines(out)
	if err != nil {
		return res, err
	}
	if n != e.o.records {
		return res, fmt.Errorf("sink-only %s: the file holds %d lines, want %d", variant, n, e.o.records)
	}
	return res, nil
}
