package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeConfig configures Consume. A zero value in a field documented with
// a default means that default.
type ConsumeConfig struct {
	// Brokers are the seed brokers, HOST:PORT. Required.
	Brokers []string
	// Topic is consumed from the start of every partition. Required.
	Topic string
	// Records is how many records to consume before stopping. Zero means
	// everything up to the end offsets listed when Consume starts.
	Records int
	// Group, when set, consumes as a member of this consumer group
	// (offsets reset to the start when the group has none, committed
	// automatically). Empty consumes the partitions directly.
	Group string
	// FetchMaxBytes caps a fetch response. Default 64 MiB.
	FetchMaxBytes int
	// FetchMaxPartitionBytes caps one partition's part of a fetch
	// response. Default 16 MiB (capped at FetchMaxBytes).
	FetchMaxPartitionBytes int
	// IdleTimeout fails the run when no record arrives for this long
	// before the target is reached. Default 10 s.
	IdleTimeout time.Duration
	// Out, when not nil, receives a progress line every ProgressInterval.
	Out io.Writer
	// ProgressInterval defaults to 1 s.
	ProgressInterval time.Duration
}

// DefaultConsumeConfig returns the defaults: topic "perf", everything up to
// the current end offsets, no group, 64 MiB fetches (16 MiB per partition),
// 10 s idle timeout. Brokers must still be set.
func DefaultConsumeConfig() ConsumeConfig {
	return ConsumeConfig{
		Topic:                  "perf",
		FetchMaxBytes:          64 * mib,
		FetchMaxPartitionBytes: 16 * mib,
		IdleTimeout:            10 * time.Second,
		ProgressInterval:       time.Second,
	}
}

// Validate returns a copy of c with defaults filled in, or an error wrapping
// ErrInvalidConfig that names the first bad field.
func (c ConsumeConfig) Validate() (ConsumeConfig, error) {
	if len(c.Brokers) == 0 {
		return c, invalid("Brokers", "at least one broker is required")
	}
	if c.Topic == "" {
		return c, invalid("Topic", "required")
	}
	if c.Records < 0 {
		return c, invalid("Records", "must be >= 0, got %d", c.Records)
	}
	switch {
	case c.FetchMaxBytes < 0 || c.FetchMaxBytes > 1<<30:
		return c, invalid("FetchMaxBytes", "must be in [0, 1 GiB], got %d", c.FetchMaxBytes)
	case c.FetchMaxBytes == 0:
		c.FetchMaxBytes = 64 * mib
	}
	switch {
	case c.FetchMaxPartitionBytes < 0 || c.FetchMaxPartitionBytes > 1<<30:
		return c, invalid("FetchMaxPartitionBytes", "must be in [0, 1 GiB], got %d", c.FetchMaxPartitionBytes)
	case c.FetchMaxPartitionBytes == 0:
		c.FetchMaxPartitionBytes = min(16*mib, c.FetchMaxBytes)
	}
	switch {
	case c.IdleTimeout < 0:
		return c, invalid("IdleTimeout", "must be >= 0, got %v", c.IdleTimeout)
	case c.IdleTimeout == 0:
		c.IdleTimeout = 10 * time.Second
	}
	switch {
	case c.ProgressInterval < 0:
		return c, invalid("ProgressInterval", "must be >= 0, got %v", c.ProgressInterval)
	case c.ProgressInterval == 0:
		c.ProgressInterval = time.Second
	}
	return c, nil
}

// ConsumeResult is what Consume measured.
type ConsumeResult struct {
	// Records is the number of records consumed: at least the target,
	// more if the last fetch carried more.
	Records int
	// Bytes is the key and value bytes consumed.
	Bytes int64
	// Elapsed runs from the first poll until the target was reached.
	Elapsed       time.Duration
	RecordsPerSec float64
	MBPerSec      float64 // MiB of keys and values per second
}

func (r ConsumeResult) String() string {
	return fmt.Sprintf("%d records (%d bytes) in %v: %.0f records/s, %.2f MB/s",
		r.Records, r.Bytes, r.Elapsed.Round(time.Millisecond), r.RecordsPerSec, r.MBPerSec)
}

// recordPool recycles the []kgo.Record slices kgo decodes fetched batches
// into (kgo.PoolRecords); records are handed back with Record.Recycle.
type recordPool struct {
	mu   sync.Mutex
	free [][]kgo.Record
}

func (p *recordPool) GetRecords(n int) []kgo.Record {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if s := p.free[i]; cap(s) >= n {
			p.free[i] = p.free[len(p.free)-1]
			p.free[len(p.free)-1] = nil
			p.free = p.free[:len(p.free)-1]
			p.mu.Unlock()
			return s[:0]
		}
	}
	p.mu.Unlock()
	return make([]kgo.Record, 0, n)
}

func (p *recordPool) PutRecords(s []kgo.Record) {
	p.mu.Lock()
	if len(p.free) < 256 {
		p.free = append(p.free, s)
	}
	p.mu.Unlock()
}

// Consume reads cfg.Topic from the start until cfg.Records records (or,
// with Records zero, everything up to the end offsets listed at the start)
// have arrived. It blocks until then, until ctx is cancelled (returning
// ctx's error), until a non-retryable fetch error (ErrConsumeFailed), or
// until no record arrived for IdleTimeout (ErrIdle); the partial result is
// returned with the error. The client is closed before Consume returns.
func Consume(ctx context.Context, cfg ConsumeConfig) (ConsumeResult, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return ConsumeResult{}, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(int32(cfg.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(cfg.FetchMaxPartitionBytes)),
		kgo.BrokerMaxReadBytes(int32(min(max(100*mib, 2*cfg.FetchMaxBytes), 1<<30+mib))),
		kgo.WithPools(new(recordPool)),
		kgo.DisableClientMetrics(),
	}
	if cfg.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(cfg.Group))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("perf: creating client: %w", err)
	}
	defer cl.Close()

	target := int64(cfg.Records)
	if target == 0 {
		if target, err = available(ctx, cl, cfg.Topic); err != nil {
			return ConsumeResult{}, err
		}
	}

	var count, bytes atomic.Int64
	stop := make(chan struct{})
	done := progress(cfg.Out, "consume", cfg.ProgressInterval, func() (int64, int64) {
		return count.Load(), bytes.Load()
	}, stop)
	defer func() {
		close(stop)
		<-done
	}()

	result := func(elapsed time.Duration) ConsumeResult {
		r := ConsumeResult{Records: int(count.Load()), Bytes: bytes.Load(), Elapsed: elapsed}
		r.RecordsPerSec, r.MBPerSec = rates(r.Records, r.Bytes, r.Elapsed)
		return r
	}

	start := time.Now()
	lastRecord := start
	var n, b int64
	for n < target {
		pollCtx, cancel := context.WithDeadline(ctx, lastRecord.Add(cfg.IdleTimeout))
		fetches := cl.PollFetches(pollCtx)
		cancel()
		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("%w: %s[%d]: %w", ErrConsumeFailed, topic, partition, err)
			}
		})
		before := n
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			b += int64(len(r.Value) + len(r.Key))
			r.Recycle()
		})
		count.Store(n)
		bytes.Store(b)
		now := time.Now()
		switch {
		case n > before:
			lastRecord = now
		case ctx.Err() != nil:
			return result(now.Sub(start)), fmt.Errorf("perf: consume interrupted after %d of %d records: %w", n, target, ctx.Err())
		case fetchErr != nil:
			return result(now.Sub(start)), fetchErr
		case fetches.IsClientClosed():
			return result(now.Sub(start)), fmt.Errorf("%w: client closed", ErrConsumeFailed)
		case now.Sub(lastRecord) >= cfg.IdleTimeout:
			return result(now.Sub(start)), fmt.Errorf("%w: %d of %d records after %v idle", ErrIdle, n, target, cfg.IdleTimeout)
		}
		if fetchErr != nil {
			return result(now.Sub(start)), fetchErr
		}
	}
	return result(time.Since(start)), nil
}

// available sums end minus start offsets over topic's partitions.
func available(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: listing end offsets of %q: %w", ErrConsumeFailed, topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: listing start offsets of %q: %w", ErrConsumeFailed, topic, err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		total += o.Offset - s.Offset
	})
	if total == 0 {
		return 0, fmt.Errorf("%w: topic %q is empty", ErrConsumeFailed, topic)
	}
	return total, nil
}
