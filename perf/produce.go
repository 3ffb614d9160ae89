package perf

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig configures Produce. Start from DefaultProduceConfig; a zero
// value in a field documented with a default means that default.
type ProduceConfig struct {
	// Brokers are the seed brokers, HOST:PORT. Required.
	Brokers []string
	// Topic receives the records. Required.
	Topic string
	// Records is how many records to produce; must be > 0.
	Records int
	// RecordSize is the size in bytes of each record's value (records have
	// no key). Default 100.
	RecordSize int
	// Acks is "all" (default), "1" or "0".
	Acks string
	// Idempotent enables the idempotent producer. It takes effect only
	// with Acks "all" (Kafka requires it) and is ignored otherwise.
	// DefaultProduceConfig sets it; the zero value means off.
	Idempotent bool
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// BatchMaxBytes caps a record batch before compression. Default 1 MiB
	// (below Kafka's default max.message.bytes of 1,048,588).
	BatchMaxBytes int
	// Linger is how long a partition waits for more records before its
	// batch is sent. Zero sends at once; batches still fill while earlier
	// requests are in flight, which is what matters for throughput.
	Linger time.Duration
	// MaxBufferedRecords bounds the records buffered in the client
	// (Produce blocks beyond it). Default: 8 MiB worth of records,
	// clamped to [10,000, 1,000,000].
	MaxBufferedRecords int
	// CreateTopic creates the topic first (replication factor 1;
	// an existing topic is used as is) and waits until it has leaders.
	CreateTopic bool
	// Partitions is the partition count used when creating the topic.
	// Default 1.
	Partitions int
	// Out, when not nil, receives a progress line every ProgressInterval.
	Out io.Writer
	// ProgressInterval defaults to 1 s.
	ProgressInterval time.Duration
}

// DefaultProduceConfig returns the defaults: 1,000,000 records of 100 bytes
// to topic "perf", acks=all, idempotent, no compression, 1 MiB batches, no
// linger, topic created with 1 partition. Brokers must still be set.
func DefaultProduceConfig() ProduceConfig {
	return ProduceConfig{
		Topic:            "perf",
		Records:          1_000_000,
		RecordSize:       100,
		Acks:             "all",
		Idempotent:       true,
		Compression:      "none",
		BatchMaxBytes:    mib,
		CreateTopic:      true,
		Partitions:       1,
		ProgressInterval: time.Second,
	}
}

// Validate returns a copy of c with defaults filled in, or an error wrapping
// ErrInvalidConfig that names the first bad field.
func (c ProduceConfig) Validate() (ProduceConfig, error) {
	if len(c.Brokers) == 0 {
		return c, invalid("Brokers", "at least one broker is required")
	}
	if c.Topic == "" {
		return c, invalid("Topic", "required")
	}
	if c.Records <= 0 {
		return c, invalid("Records", "must be > 0, got %d", c.Records)
	}
	switch {
	case c.RecordSize < 0:
		return c, invalid("RecordSize", "must be >= 0, got %d", c.RecordSize)
	case c.RecordSize == 0:
		c.RecordSize = 100
	}
	switch c.Acks {
	case "":
		c.Acks = "all"
	case "all", "-1":
		c.Acks = "all"
	case "1", "0":
	default:
		return c, invalid("Acks", "must be all, 1 or 0, got %q", c.Acks)
	}
	if c.Acks != "all" {
		c.Idempotent = false
	}
	c.Compression = strings.ToLower(c.Compression)
	if c.Compression == "" {
		c.Compression = "none"
	}
	if _, err := codec(c.Compression); err != nil {
		return c, err
	}
	switch {
	case c.BatchMaxBytes < 0:
		return c, invalid("BatchMaxBytes", "must be >= 0, got %d", c.BatchMaxBytes)
	case c.BatchMaxBytes == 0:
		c.BatchMaxBytes = mib
	case c.BatchMaxBytes < 512 || c.BatchMaxBytes > 1<<30:
		return c, invalid("BatchMaxBytes", "must be in [512, 1 GiB], got %d", c.BatchMaxBytes)
	}
	if c.Linger < 0 {
		return c, invalid("Linger", "must be >= 0, got %v", c.Linger)
	}
	switch {
	case c.MaxBufferedRecords < 0:
		return c, invalid("MaxBufferedRecords", "must be >= 0, got %d", c.MaxBufferedRecords)
	case c.MaxBufferedRecords == 0:
		c.MaxBufferedRecords = min(max(8*mib/max(c.RecordSize, 1), 10_000), 1_000_000)
	}
	switch {
	case c.Partitions < 0:
		return c, invalid("Partitions", "must be >= 0, got %d", c.Partitions)
	case c.Partitions == 0:
		c.Partitions = 1
	}
	switch {
	case c.ProgressInterval < 0:
		return c, invalid("ProgressInterval", "must be >= 0, got %v", c.ProgressInterval)
	case c.ProgressInterval == 0:
		c.ProgressInterval = time.Second
	}
	return c, nil
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, invalid("Compression", "must be none, gzip, snappy, lz4 or zstd, got %q", name)
}

// ProduceResult is what Produce measured.
type ProduceResult struct {
	// Records is the number of records acknowledged.
	Records int
	// Bytes is the value bytes acknowledged (Records * RecordSize).
	Bytes int64
	// Elapsed runs from the first Produce call until the last promise.
	Elapsed       time.Duration
	RecordsPerSec float64
	MBPerSec      float64 // MiB of values per second
	// Latency of each record, from its Produce call (which may block while
	// the client buffer is full) to its promise: percentiles within 1%,
	// Max and Mean exact.
	P50, P99, P999, Max, Mean time.Duration
	// Partitions is the topic's partition count when the topic was created
	// (or found) by Produce, else 0.
	Partitions int
}

func (r ProduceResult) String() string {
	return fmt.Sprintf("%d records (%d bytes) in %v: %.0f records/s, %.2f MB/s; latency p50 %v, p99 %v, p99.9 %v, max %v",
		r.Records, r.Bytes, r.Elapsed.Round(time.Millisecond), r.RecordsPerSec, r.MBPerSec,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.P999.Round(time.Microsecond), r.Max.Round(time.Microsecond))
}

// inflight is one record handed to kgo. Its address doubles as the record's
// Context so that the promise finds the start time without a lookup; it is
// recycled once the promise has run. kgo may still call the context's
// methods after the promise (it keeps a batch's first context), so they
// read only p, which is set when the inflight is allocated and never
// changes, and p.ctx, which is set before the first Produce and never
// changes.
type inflight struct {
	rec   kgo.Record
	start time.Time
	p     *producer
}

func (f *inflight) Deadline() (time.Time, bool) { return f.p.ctx.Deadline() }
func (f *inflight) Done() <-chan struct{}       { return f.p.ctx.Done() }
func (f *inflight) Err() error                  { return f.p.ctx.Err() }
func (f *inflight) Value(key any) any           { return f.p.ctx.Value(key) }

// producer holds the state shared between Produce's loop and kgo's promise
// goroutine. hist and the latency sums are written only by the promise
// (kgo calls promises serially) and read after wg.Wait.
type producer struct {
	hist   histogram
	acked  atomic.Int64
	failed atomic.Bool

	errOnce  sync.Once
	firstErr error
	nFailed  atomic.Int64

	wg     sync.WaitGroup
	pool   sync.Pool
	ctx    context.Context // the run's context, never reassigned
	cancel context.CancelFunc
	size   int64
}

func (p *producer) promise(r *kgo.Record, err error) {
	f := r.Context.(*inflight)
	lat := time.Since(f.start)
	if err != nil {
		p.nFailed.Add(1)
		p.errOnce.Do(func() {
			p.firstErr = fmt.Errorf("record to %s[%d]: %w", r.Topic, r.Partition, err)
			p.failed.Store(true)
			p.cancel()
		})
	} else {
		p.hist.record(lat)
		p.acked.Add(1)
	}
	f.rec = kgo.Record{}
	p.pool.Put(f)
	p.wg.Done()
}

// Produce creates the topic if asked, produces cfg.Records records of
// cfg.RecordSize bytes and waits until every one is acknowledged. It blocks
// until done; cancelling ctx aborts the run (records in flight are failed)
// and returns ctx's error. Any failed record fails the run: the first
// failure cancels the remaining records and Produce returns an error wrapping
// ErrProduceFailed together with the partial result. The client is closed
// before Produce returns.
func Produce(ctx context.Context, cfg ProduceConfig) (ProduceResult, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return ProduceResult{}, err
	}
	comp, _ := codec(cfg.Compression)
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerBatchMaxBytes(int32(cfg.BatchMaxBytes)),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchCompression(comp),
		// Let a cancelled run fail in-flight records instead of waiting
		// for them forever: nothing is re-produced, so no duplicates.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.DisableClientMetrics(),
	}
	switch cfg.Acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !cfg.Idempotent {
		// Five requests in flight, as the idempotent producer and the
		// Java client's default allow.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("perf: creating client: %w", err)
	}
	closeClient := sync.OnceFunc(cl.Close)
	defer closeClient()

	var res ProduceResult
	if cfg.CreateTopic {
		n, err := EnsureTopic(ctx, cl, cfg.Topic, cfg.Partitions)
		if err != nil {
			return res, err
		}
		res.Partitions = n
	}

	// One value shared by every record: random upper-case letters, as
	// Kafka's perf tool uses, so compression has realistic work to do.
	value := make([]byte, cfg.RecordSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = 'A' + byte(rng.IntN(26))
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &producer{ctx: runCtx, cancel: cancel, size: int64(cfg.RecordSize)}
	p.pool.New = func() any { return &inflight{p: p} }

	stop := make(chan struct{})
	done := progress(cfg.Out, "produce", cfg.ProgressInterval, func() (int64, int64) {
		n := p.acked.Load()
		return n, n * p.size
	}, stop)

	start := time.Now()
	for i := 0; i < cfg.Records; i++ {
		if i&1023 == 0 && (p.failed.Load() || runCtx.Err() != nil) {
			break
		}
		f := p.pool.Get().(*inflight)
		f.rec.Value = value
		f.rec.Context = f
		f.start = time.Now()
		// Stamping the record ourselves saves kgo a second clock read.
		f.rec.Timestamp = f.start
		p.wg.Add(1)
		cl.Produce(runCtx, &f.rec, p.promise)
	}
	flushErr := cl.Flush(runCtx)
	if flushErr != nil {
		// Cancelled: fail whatever is still buffered so that every
		// promise runs and wg.Wait returns.
		cancel()
		closeClient()
	}
	p.wg.Wait()
	res.Elapsed = time.Since(start)
	close(stop)
	<-done

	res.Records = int(p.acked.Load())
	res.Bytes = int64(res.Records) * p.size
	res.RecordsPerSec, res.MBPerSec = rates(res.Records, res.Bytes, res.Elapsed)
	res.P50 = p.hist.quantile(0.50)
	res.P99 = p.hist.quantile(0.99)
	res.P999 = p.hist.quantile(0.999)
	res.Max = time.Duration(p.hist.max)
	res.Mean = p.hist.mean()

	switch {
	case p.firstErr != nil && ctx.Err() == nil:
		return res, fmt.Errorf("%w: %d of %d records failed, first: %w", ErrProduceFailed, p.nFailed.Load(), cfg.Records, p.firstErr)
	case ctx.Err() != nil:
		return res, fmt.Errorf("perf: produce interrupted after %d of %d records: %w", res.Records, cfg.Records, ctx.Err())
	case flushErr != nil:
		return res, fmt.Errorf("%w: flush: %w", ErrProduceFailed, flushErr)
	}
	return res, nil
}
