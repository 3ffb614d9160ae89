// Package taskrun runs connector tasks: it moves records between a task's
// plugin process and Kafka. A source runner polls the plugin, produces what it
// returns, and stores source offsets once the broker acknowledged the records
// (and every record polled before them); a sink runner consumes in the
// connector's group, hands batches to the plugin, and commits consumer
// offsets only after the plugin's Flush succeeded.
package taskrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// Offset is a source partition and offset, as the JSON the plugin sent.
type Offset struct {
	PartitionJSON, OffsetJSON []byte
}

// OffsetWriter stores a connector's source offsets (the connect-offsets
// topic); Put returns once they are durable.
type OffsetWriter interface {
	Put(ctx context.Context, connector string, offsets []Offset) error
}

// SourcePlugin is the part of the plugin client a source runner uses.
type SourcePlugin interface {
	Poll(ctx context.Context, in *pluginpb.PollRequest, opts ...grpc.CallOption) (*pluginpb.PollResponse, error)
	CommitSource(ctx context.Context, in *pluginpb.CommitSourceRequest, opts ...grpc.CallOption) (*pluginpb.CommitSourceResponse, error)
}

// SourceConfig configures a source runner.
type SourceConfig struct {
	Connector string
	Task      int
	Plugin    SourcePlugin
	// PluginErr turns a plugin call's error into the task's error (the
	// plugin process's Err), so a crash reads well in the task's trace.
	PluginErr func(error) error
	Producer  *kgo.Client
	Offsets   OffsetWriter
	// OffsetFlushInterval is offset.flush.interval.ms: how often offsets of
	// acknowledged records are stored.
	OffsetFlushInterval time.Duration
	// MaxInFlight bounds the records produced but not yet acknowledged.
	MaxInFlight int
	Retry       Retry
	// LogErrors is errors.log.enable: log every record skipped by
	// errors.tolerance=all (they are always counted in the metrics).
	LogErrors bool
	// OnTopic, when set, is called the first time the task produces to a
	// topic (Kafka Connect's active topics, KIP-558).
	OnTopic func(topic string)
	// Live, when set, is asked right before each batch is produced: false
	// means the worker lost its cluster membership (another worker may run
	// this task now), and the task ends with ErrFenced without writing.
	Live    func() bool
	Logger  *slog.Logger
	Metrics *Metrics
}

// batch is one poll's records, tracked until all are acknowledged.
type batch struct {
	pending int               // records not yet acknowledged
	offsets map[string]Offset // last offset per source partition (by partition JSON)
	order   []string          // partition JSON in first-seen order

	// Set by the poller, read by the loop before producing: the records
	// to produce (their bytes alias packed), and the errors of records
	// skipped by errors.tolerance=all.
	recs    *[]kgo.Record
	packed  *[]byte
	spill   *[]byte // rebuilt shared fields of packed, which records may alias too
	skipped []string
}

// recPool recycles the record slices of batches once every record of
// theirs was acknowledged (the producer is then done with them).
var recPool sync.Pool // of *[]kgo.Record

// release hands a fully acknowledged batch's record slice and packed buffer
// back for reuse; r.mu is held.
func (b *batch) release() {
	if b.recs != nil {
		recs := (*b.recs)[:cap(*b.recs)]
		clear(recs) // drop references to the batch's bytes and the producer's contexts
		*b.recs = recs[:0]
		recPool.Put(b.recs)
		b.recs = nil
	}
	if b.packed != nil {
		plugins.ReleaseBatch(b.packed)
		b.packed = nil
	}
	if b.spill != nil {
		plugins.ReleaseSpill(b.spill)
		b.spill = nil
	}
}

// RunSource runs a source task until ctx is done (nil: stopped) or it fails.
// Before returning it waits for outstanding records and stores the offsets
// of everything acknowledged.
func RunSource(ctx context.Context, cfg SourceConfig) error {
	if cfg.OffsetFlushInterval <= 0 {
		cfg.OffsetFlushInterval = time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 20_000
	}
	if cfg.PluginErr == nil {
		cfg.PluginErr = func(err error) error { return err }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &sourceRunner{cfg: cfg, acked: make(chan struct{}, 1)}
	err := r.loop(ctx)
	if ctx.Err() != nil {
		// Stopped: a call cut short by the stop is no failure; the drain
		// below reports what really went wrong.
		err = nil
	}
	// Drain: wait for what was produced, then store its offsets.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if ferr := cfg.Producer.Flush(drainCtx); ferr != nil && err == nil {
		err = fmt.Errorf("waiting for produced records: %w", ferr)
	}
	if cerr := r.commit(drainCtx); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil || errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

type sourceRunner struct {
	cfg SourceConfig

	mu       sync.Mutex
	queue    []*batch // in poll order
	inFlight int
	prodErr  error
	acked    chan struct{} // signalled when an acknowledgement frees room

	lastFlush time.Time
	acks      atomic.Int64    // acknowledged since the last metrics update
	topics    map[string]bool // topics produced to (loop goroutine only)
}

// polled is one Poll's outcome, handed from the poller to the loop.
type polled struct {
	b        *batch // the decoded batch (nil when the call failed)
	n        int    // records polled
	took     time.Duration
	err      error // the Poll call failed
	badBatch error // the reply's packed batch could not be decoded
}

// loop produces what the poller polls. The poller runs one Poll ahead, so
// the plugin prepares the next batch while this goroutine produces the
// current one; it is owned by loop, which waits for it.
func (r *sourceRunner) loop(ctx context.Context) error {
	r.lastFlush = time.Now()
	pctx, cancel := context.WithCancel(ctx)
	batches := make(chan polled, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		r.poller(pctx, batches)
	}()
	defer func() {
		cancel()
		for range batches { // unblock and drain the poller
		}
		wg.Wait()
	}()
	for {
		var p polled
		var ok bool
		select {
		case p, ok = <-batches:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return ctx.Err()
		}
		if p.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.mu.Lock()
			perr := r.prodErr
			r.mu.Unlock()
			if perr != nil {
				return perr // the poller stopped because producing failed
			}
			return fmt.Errorf("poll: %w", r.cfg.PluginErr(p.err))
		}
		if p.badBatch != nil {
			return fmt.Errorf("poll: %w", p.badBatch)
		}
		if err := r.produce(ctx, p.b); err != nil {
			return err
		}
		r.cfg.Metrics.observePoll(r.cfg.Connector, r.cfg.Task, p.n, p.took)
		r.cfg.Metrics.recordOut(r.cfg.Connector, r.cfg.Task, int(r.acks.Swap(0)))
		if time.Since(r.lastFlush) >= r.cfg.OffsetFlushInterval {
			if err := r.commit(ctx); err != nil {
				return err
			}
		}
	}
}

// poller polls the plugin until ctx is done or a poll fails, waiting for
// room under MaxInFlight before each poll.
func (r *sourceRunner) poller(ctx context.Context, out chan<- polled) {
	for ctx.Err() == nil {
		if err := r.waitRoom(ctx); err != nil {
			if ctx.Err() == nil {
				out <- polled{err: err}
			}
			return
		}
		start := time.Now()
		var resp *pluginpb.PollResponse
		err := r.cfg.Retry.call(ctx, r.cfg.Logger, "poll", pollTimeout, func(ctx context.Context) (err error) {
			resp, err = r.cfg.Plugin.Poll(ctx, &pluginpb.PollRequest{})
			return err
		})
		p := polled{took: time.Since(start), err: err}
		if err == nil {
			// Decoding here keeps it off the producing goroutine.
			p.b, p.n, p.badBatch = decodeBatch(resp)
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *sourceRunner) waitRoom(ctx context.Context) error {
	for {
		r.mu.Lock()
		full, perr := r.inFlight >= r.cfg.MaxInFlight, r.prodErr
		r.mu.Unlock()
		if perr != nil {
			return perr
		}
		if !full {
			return nil
		}
		select {
		case <-r.acked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// decodeBatch turns a poll's reply into a batch: the records to produce,
// straight from the packed bytes (no message per record), and the last
// source offset per partition.
func decodeBatch(resp *pluginpb.PollResponse) (*batch, int, error) {
	b := &batch{offsets: map[string]Offset{}}
	// Every record without a timestamp gets the poll's time (what the
	// producer would give it, read once per batch rather than per record).
	now := time.Now()
	var recs *[]kgo.Record
	if rp, ok := recPool.Get().(*[]kgo.Record); ok {
		recs = rp
	} else {
		recs = new([]kgo.Record)
	}
	b.recs = recs
	add := func(p *plugins.ProducedFields) {
		// Plugins send the source partition only with the offset of its
		// last record in the batch (plugins.pipeline); others send it on
		// every record: either way the last one per partition wins.
		if len(p.SourcePartitionJSON) > 0 {
			k := string(p.SourcePartitionJSON)
			if _, seen := b.offsets[k]; !seen {
				b.order = append(b.order, k)
			}
			// Copies: the decoded fields alias the whole packed batch,
			// which is reused once the batch is acknowledged.
			b.offsets[k] = Offset{PartitionJSON: []byte(k), OffsetJSON: bytes.Clone(p.SourceOffsetJSON)}
		}
		if p.Dropped {
			if p.Error != "" {
				b.skipped = append(b.skipped, p.Error)
			}
			return
		}
		rec := kgo.Record{Topic: p.Topic, Key: p.Key, Value: p.Value, Timestamp: now}
		if p.HasPartition {
			rec.Partition = p.Partition
		}
		if p.TimestampMs > 0 {
			rec.Timestamp = time.UnixMilli(p.TimestampMs)
		}
		if len(p.Headers) > 0 {
			rec.Headers = make([]kgo.RecordHeader, len(p.Headers))
			for i, h := range p.Headers {
				rec.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
		*recs = append(*recs, rec)
	}
	if len(resp.Packed) > 0 {
		if cap(*recs) == 0 {
			if n, err := plugins.PackedCount(resp.Packed); err == nil {
				*recs = make([]kgo.Record, 0, n)
			}
		}
		n, spill, err := plugins.EachProduced(resp.Packed, add)
		if err != nil {
			return nil, 0, err
		}
		packed := resp.Packed
		b.packed, b.spill = &packed, spill
		return b, n, nil
	}
	var f plugins.ProducedFields
	for _, pr := range resp.Records {
		f = plugins.ProducedFields{Topic: pr.Topic, HasPartition: pr.HasPartition, Partition: pr.Partition,
			TimestampMs: pr.TimestampMs, SourcePartitionJSON: pr.SourcePartitionJson, SourceOffsetJSON: pr.SourceOffsetJson,
			Error: pr.Error, Dropped: pr.Dropped, Headers: f.Headers[:0]}
		if !pr.KeyNull {
			f.Key = nonNil(pr.Key)
		}
		if !pr.ValueNull {
			f.Value = nonNil(pr.Value)
		}
		for _, h := range pr.Headers {
			var v []byte
			if !h.ValueNull {
				v = nonNil(h.Value)
			}
			f.Headers = append(f.Headers, plugins.PackedHeader{Key: h.Key, Value: v})
		}
		add(&f)
	}
	return b, len(resp.Records), nil
}

func (r *sourceRunner) produce(ctx context.Context, b *batch) error {
	if r.cfg.Live != nil && !r.cfg.Live() {
		b.release()
		return ErrFenced
	}
	for _, e := range b.skipped {
		r.cfg.Metrics.recordError(r.cfg.Connector, r.cfg.Task)
		if r.cfg.LogErrors {
			r.cfg.Logger.Warn("record skipped (errors.tolerance=all)", "error", e)
		}
	}
	recs := *b.recs
	if len(recs) == 0 && len(b.order) == 0 {
		b.release()
		return nil
	}
	b.pending = len(recs)
	r.mu.Lock()
	r.queue = append(r.queue, b)
	r.inFlight += b.pending
	if b.pending == 0 {
		b.release()
	}
	r.mu.Unlock()
	// One callback for the batch's records; the last acknowledgement
	// releases the batch's buffers, so nothing here touches them after
	// the last Produce.
	ack := func(_ *kgo.Record, err error) { r.ack(b, err) }
	for i := range recs {
		rec := &recs[i]
		if r.cfg.OnTopic != nil && !r.topics[rec.Topic] {
			if r.topics == nil {
				r.topics = map[string]bool{}
			}
			r.topics[rec.Topic] = true
			r.cfg.OnTopic(rec.Topic)
		}
		r.cfg.Producer.Produce(ctx, rec, ack)
	}
	return nil
}

// nonNil keeps an empty (not null) key or value distinct from null.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (r *sourceRunner) ack(b *batch, err error) {
	r.mu.Lock()
	if err != nil && r.prodErr == nil {
		r.prodErr = fmt.Errorf("producing to Kafka: %w", err)
	}
	b.pending--
	r.inFlight--
	if b.pending == 0 {
		b.release()
	}
	r.mu.Unlock()
	if err == nil {
		r.acks.Add(1)
	}
	select {
	case r.acked <- struct{}{}:
	default:
	}
}

// commit stores the offsets of the longest prefix of fully acknowledged
// batches, then tells the task (CommitSource) what is durable.
func (r *sourceRunner) commit(ctx context.Context) error {
	r.lastFlush = time.Now()
	r.mu.Lock()
	if r.prodErr != nil {
		err := r.prodErr
		r.mu.Unlock()
		return err
	}
	latest := map[string]Offset{}
	var order []string
	n := 0
	for _, b := range r.queue {
		if b.pending > 0 {
			break
		}
		for _, k := range b.order {
			if _, seen := latest[k]; !seen {
				order = append(order, k)
			}
			latest[k] = b.offsets[k]
		}
		n++
	}
	r.queue = r.queue[n:]
	r.mu.Unlock()
	if len(order) == 0 {
		return nil
	}
	offs := make([]Offset, 0, len(order))
	committed := make([]*pluginpb.PartitionOffset, 0, len(order))
	for _, k := range order {
		o := latest[k]
		offs = append(offs, o)
		committed = append(committed, &pluginpb.PartitionOffset{PartitionJson: o.PartitionJSON, OffsetJson: o.OffsetJSON})
	}
	if err := r.cfg.Offsets.Put(ctx, r.cfg.Connector, offs); err != nil {
		return fmt.Errorf("storing source offsets: %w", err)
	}
	if _, err := r.cfg.Plugin.CommitSource(ctx, &pluginpb.CommitSourceRequest{Committed: committed}); err != nil {
		return fmt.Errorf("commit: %w", r.cfg.PluginErr(err))
	}
	return nil
}
