package taskrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// SinkPlugin is the part of the plugin client a sink runner uses.
type SinkPlugin interface {
	OpenPartitions(ctx context.Context, in *pluginpb.PartitionsRequest, opts ...grpc.CallOption) (*pluginpb.PartitionsResponse, error)
	ClosePartitions(ctx context.Context, in *pluginpb.PartitionsRequest, opts ...grpc.CallOption) (*pluginpb.PartitionsResponse, error)
	Put(ctx context.Context, in *pluginpb.PutRequest, opts ...grpc.CallOption) (*pluginpb.PutResponse, error)
	Flush(ctx context.Context, in *pluginpb.FlushRequest, opts ...grpc.CallOption) (*pluginpb.FlushResponse, error)
	SinkEvents(ctx context.Context, in *pluginpb.SinkEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[pluginpb.SinkEvent], error)
}

// SinkConfig configures a sink runner.
type SinkConfig struct {
	Connector string
	Task      int
	Plugin    SinkPlugin
	PluginErr func(error) error
	// Brokers and ClientOpts build the task's consumer (group Group, which
	// Kafka Connect names connect-<connector>).
	Brokers     []string
	ClientOpts  []kgo.Opt
	Group       string
	Topics      []string
	TopicsRegex string
	// DLQ: failed records (errors.tolerance=all) go to DLQTopic through
	// Producer, with Kafka Connect's __connect.errors.* headers when
	// DLQContextHeaders. Empty DLQTopic: they are only logged and counted.
	Producer          *kgo.Client
	DLQTopic          string
	DLQContextHeaders bool
	// OffsetFlushInterval is offset.flush.interval.ms: how often the task
	// is flushed and its consumer offsets committed.
	OffsetFlushInterval time.Duration
	MaxPollRecords      int
	Retry               Retry
	// LogErrors is errors.log.enable: log every record sent to the DLQ or
	// skipped (they are always counted in the metrics).
	LogErrors bool
	// PackedVersion is the highest packed batch version the plugin reads
	// (StartTaskResponse.packed_version; 0: 1): Put batches are written in
	// the highest version both sides read.
	PackedVersion int32
	// Live, when set, is asked right before each Put: false means the
	// worker lost its cluster membership, and the task ends with ErrFenced
	// without writing.
	Live    func() bool
	Logger  *slog.Logger
	Metrics *Metrics
}

// RunSink runs a sink task until ctx is done (nil: stopped) or it fails.
// On the way out it flushes the task and commits what was flushed.
func RunSink(ctx context.Context, cfg SinkConfig) error {
	if cfg.OffsetFlushInterval <= 0 {
		cfg.OffsetFlushInterval = time.Second
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 10_000
	}
	if cfg.PluginErr == nil {
		cfg.PluginErr = func(err error) error { return err }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Topics) == 0 && cfg.TopicsRegex == "" {
		return errors.New("sink task has neither topics nor topics.regex")
	}
	r := &sinkRunner{cfg: cfg, next: map[tp]int64{}, committed: map[tp]int64{}}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A crashed worker's partitions move after 10 s rather than the
		// consumer default of 45 s.
		kgo.SessionTimeout(10 * time.Second), kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.WithPools(&r.decompressed),
	}, cfg.ClientOpts...)
	if cfg.TopicsRegex != "" {
		if _, err := regexp.Compile(cfg.TopicsRegex); err != nil {
			return fmt.Errorf("topics.regex %q: %w", cfg.TopicsRegex, err)
		}
		// A regex subscription finds new topics only when metadata is
		// refreshed: every 10 s rather than the client default of 5 min,
		// so a topic a CDC source creates for a new table reaches the sink
		// at once. Worker-level client options set earlier still win.
		opts = append([]kgo.Opt{kgo.MetadataMaxAge(10 * time.Second)}, opts...)
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(cfg.TopicsRegex))
	} else {
		opts = append(opts, kgo.ConsumeTopics(cfg.Topics...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("sink consumer: %w", err)
	}
	r.cl = cl
	evCtx, stopEvents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.events(evCtx) }()

	err = r.loop(ctx)
	if ctx.Err() != nil {
		err = nil // stopped: calls cut short by the stop are no failure
	}
	stopEvents()
	wg.Wait()
	// Last flush and commit of what was put; then leave the group.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err == nil || ctx.Err() != nil {
		if ferr := r.flush(final); ferr != nil && (err == nil || ctx.Err() != nil) {
			err = ferr
		}
	}
	cl.CloseAllowingRebalance()
	if err == nil || errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

type tp struct {
	topic     string
	partition int32
}

type sinkRunner struct {
	cfg SinkConfig
	cl  *kgo.Client

	// mu serializes calls into the plugin (the loop and the group's
	// assignment callbacks) and guards the offsets below.
	mu        sync.Mutex
	next      map[tp]int64 // next offset after records handed to Put
	committed map[tp]int64
	lastFlush time.Time
	// failed is the first error of a group callback; commitReq is set
	// when the task asked for a commit. Atomic: the loop reads them
	// while a put holds mu.
	failed    atomic.Pointer[error]
	commitReq atomic.Bool
	// lastConsumeWarn limits the warnings of transient consumer errors.
	lastConsumeWarn time.Time
	// decompressed recycles the consumer's decompression buffers.
	decompressed decompressPool
	// packedRatio is the last put batch's packed size over its records'
	// (loop goroutine only), to size the next one's buffer.
	packedRatio float64
}

// consumeWarnEvery is the least time between two warnings of transient
// consumer errors.
const consumeWarnEvery = 5 * time.Second

// fatalConsumeErr tells the consumer errors that must fail the task from
// the ones franz-go recovers from by itself: a broker that cannot be
// reached or restarts, a group that must be rejoined, retriable Kafka
// errors, data loss it already reset past (logged). What is left (an
// authorization failure, an invalid group, a non-retriable Kafka error,
// anything unknown) fails the task with the error.
func fatalConsumeErr(err error) bool {
	var gs *kgo.ErrGroupSession
	if errors.As(err, &gs) {
		var ke *kerr.Error
		if errors.As(gs.Err, &ke) {
			switch ke {
			case kerr.GroupAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed,
				kerr.SaslAuthenticationFailed, kerr.InvalidGroupID, kerr.UnsupportedVersion:
				return true
			}
		}
		return false // the client keeps trying to join
	}
	var dl *kgo.ErrDataLoss
	if errors.As(err, &dl) {
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return !ke.Retriable
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return false
	}
	return true
}

// maxKeptPutBuffer bounds the put buffer a sink runner keeps between batches.
const maxKeptPutBuffer = 16 << 20

// loop consumes and hands batches to the plugin. A put runs in a goroutine
// owned by the loop while the loop polls and packs the next batch, so the
// plugin writes one batch while the worker prepares the next; there is at
// most one put under way, and the loop waits for it before a flush, before
// the next put and before returning. The put goroutine is handed r.mu
// locked, so the group's callbacks (revoke, lost) wait for it: a revoked
// partition's last put is done, and flushed, before it is closed.
func (r *sinkRunner) loop(ctx context.Context) error {
	r.lastFlush = time.Now()
	var (
		inflight chan putDone // the put under way; nil: none
		spare    []byte       // packing buffer not used by a put
	)
	wait := func() error {
		if inflight == nil {
			return nil
		}
		d := <-inflight
		inflight = nil
		if d.err == nil && cap(d.buf) <= maxKeptPutBuffer {
			spare = d.buf // the plugin read it all: reuse it
		}
		// Nothing refers to the records any more (the request holds
		// copies, and the loop read their offsets before this wait):
		// their decompression buffers go back to the pool.
		for _, rec := range d.recs {
			rec.Recycle()
		}
		return d.err
	}
	defer wait() //nolint:errcheck // only on error paths, which report their own error
	for {
		// A poll waits at most until the next flush is due, so that what
		// was put gets flushed and committed even when no more records come.
		pctx, cancel := context.WithDeadline(ctx, r.lastFlush.Add(r.cfg.OffsetFlushInterval))
		fs := r.cl.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			r.cl.AllowRebalance()
			return ctx.Err()
		}
		var ferr, transientErr error
		fs.EachError(func(t string, p int32, err error) {
			switch {
			case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			case !fatalConsumeErr(err):
				transientErr = err
			case ferr == nil:
				ferr = fmt.Errorf("consuming %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			r.cl.AllowRebalance()
			return ferr
		}
		recs := fs.Records()
		if transientErr != nil {
			// The client retries these itself (the broker restarting, the
			// group being rejoined): log them, at most every few seconds,
			// and go on; a poll of nothing but errors waits a little
			// rather than spinning.
			if now := time.Now(); now.Sub(r.lastConsumeWarn) >= consumeWarnEvery {
				r.lastConsumeWarn = now
				r.cfg.Logger.Warn("consumer error; the client retries", "err", transientErr)
			}
			if len(recs) == 0 {
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
		var err error
		if len(recs) > 0 {
			var req *pluginpb.PutRequest
			req, spare = r.pack(recs, spare)
			err = wait()
			if err == nil {
				r.mu.Lock() // handed to the put goroutine, which unlocks it
				done := make(chan putDone, 1)
				inflight = done
				go func() {
					d := r.putLocked(ctx, recs, req)
					d.recs = recs
					done <- d
				}()
				fs.EachPartition(func(p kgo.FetchTopicPartition) {
					if n := len(p.Records); n > 0 {
						r.cfg.Metrics.setLag(r.cfg.Connector, r.cfg.Task, p.Topic, p.Partition, p.HighWatermark-p.Records[n-1].Offset-1)
					}
				})
			}
		}
		if err == nil && (time.Since(r.lastFlush) >= r.cfg.OffsetFlushInterval || r.commitReq.Swap(false)) {
			if err = wait(); err == nil {
				err = r.flush(ctx)
			}
		}
		r.cl.AllowRebalance()
		if err != nil {
			return err
		}
		if failed := r.failed.Load(); failed != nil {
			return *failed
		}
	}
}

// putDone is the outcome of a put, with the buffer its request was packed in
// and the records it put.
type putDone struct {
	err  error
	buf  []byte
	recs []*kgo.Record
}

// pack encodes recs for the plugin, into buf when it is large enough.
func (r *sinkRunner) pack(recs []*kgo.Record, buf []byte) (*pluginpb.PutRequest, []byte) {
	version := plugins.PackVersion(r.cfg.PackedVersion)
	size := 16
	for _, rec := range recs {
		size += 24 + len(rec.Key) + len(rec.Value)
	}
	full := size
	if version >= 2 && r.packedRatio > 0 {
		// Shared prefixes make the batch a fraction of the records'
		// size: expect the fraction of the last batch, with room to spare
		// (a batch that outgrows it grows its buffer as it is packed).
		size = int(float64(size)*r.packedRatio*1.25) + 64<<10
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size+size/4)
	}
	req := &pluginpb.PutRequest{Packed: plugins.AppendConsumed(buf[:0], version, len(recs), func(i int, c *plugins.ConsumedFields) {
		rec := recs[i]
		c.Topic, c.Partition, c.Offset = rec.Topic, rec.Partition, rec.Offset
		c.TimestampMs, c.TimestampType = rec.Timestamp.UnixMilli(), int32(rec.Attrs.TimestampType())
		c.Key, c.Value = rec.Key, rec.Value
		for _, h := range rec.Headers {
			c.HeaderKeys = append(c.HeaderKeys, h.Key)
			c.HeaderValues = append(c.HeaderValues, h.Value)
		}
	})}
	r.packedRatio = float64(len(req.Packed)) / float64(full)
	return req, nil
}

// putLocked hands a batch to the plugin, sends the records it failed to
// the dead letter queue, and then counts the batch's offsets as put (for
// the next flush). It is called with r.mu held and unlocks it.
func (r *sinkRunner) putLocked(ctx context.Context, recs []*kgo.Record, req *pluginpb.PutRequest) putDone {
	defer r.mu.Unlock()
	r.cfg.Metrics.recordIn(r.cfg.Connector, r.cfg.Task, len(recs))
	if r.cfg.Live != nil && !r.cfg.Live() {
		return putDone{err: ErrFenced}
	}
	start := time.Now()
	var resp *pluginpb.PutResponse
	err := r.cfg.Retry.call(ctx, r.cfg.Logger, "put", writeTimeout, func(ctx context.Context) (err error) {
		resp, err = r.cfg.Plugin.Put(ctx, req)
		return err
	})
	if err != nil {
		// The transport may still hold the request: its buffer is not reused.
		return putDone{err: fmt.Errorf("put: %w", r.cfg.PluginErr(err))}
	}
	// The call succeeded, so the plugin has read the whole request.
	done := putDone{buf: req.Packed}
	r.cfg.Metrics.observe(r.cfg.Connector, r.cfg.Task, "put", time.Since(start))
	r.cfg.Metrics.recordOut(r.cfg.Connector, r.cfg.Task, len(recs)-len(resp.Failed))
	for _, f := range resp.Failed {
		r.cfg.Metrics.recordError(r.cfg.Connector, r.cfg.Task)
		if f.Index < 0 || int(f.Index) >= len(recs) {
			done.err = fmt.Errorf("put: the plugin reported record %d failed in a batch of %d", f.Index, len(recs))
			return done
		}
		rec := recs[f.Index]
		if r.cfg.LogErrors {
			r.cfg.Logger.Warn("record failed and was skipped (errors.tolerance=all)", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "stage", f.Stage, "error", f.Error)
		}
		// Before the offsets count as put: a flush must not commit a
		// failed record's offset before it is safe in the queue.
		if err := r.deadLetter(ctx, rec, f); err != nil {
			done.err = err
			return done
		}
	}
	for _, rec := range recs {
		r.next[tp{rec.Topic, rec.Partition}] = rec.Offset + 1
	}
	return done
}

// deadLetter sends a failed record, as consumed, to the dead letter queue
// and waits for the acknowledgement, so that its offset is only committed
// once it is safe there.
func (r *sinkRunner) deadLetter(ctx context.Context, rec *kgo.Record, f *pluginpb.FailedRecord) error {
	if r.cfg.DLQTopic == "" || r.cfg.Producer == nil {
		return nil
	}
	// Copies: rec's bytes live in a recycled decompression buffer, and a
	// produce cut short by ctx may leave the record in the producer after
	// the batch's records were recycled.
	out := &kgo.Record{Topic: r.cfg.DLQTopic, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value), Timestamp: rec.Timestamp}
	for _, h := range rec.Headers {
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	if r.cfg.DLQContextHeaders {
		for _, h := range [][2]string{
			{"__connect.errors.topic", rec.Topic},
			{"__connect.errors.partition", strconv.Itoa(int(rec.Partition))},
			{"__connect.errors.offset", strconv.FormatInt(rec.Offset, 10)},
			{"__connect.errors.connector.name", r.cfg.Connector},
			{"__connect.errors.task.id", strconv.Itoa(r.cfg.Task)},
			{"__connect.errors.stage", f.Stage},
			{"__connect.errors.exception.message", f.Error},
		} {
			out.Headers = append(out.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
	}
	if err := r.cfg.Producer.ProduceSync(ctx, out).FirstErr(); err != nil {
		return fmt.Errorf("writing to the dead letter queue %s: %w", r.cfg.DLQTopic, err)
	}
	return nil
}

// flush asks the plugin to make everything put durable, then commits the
// consumer offsets of it.
func (r *sinkRunner) flush(ctx context.Context) error {
	r.lastFlush = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushLocked(ctx, nil)
}

// flushLocked flushes and commits the partitions in only (all when nil).
func (r *sinkRunner) flushLocked(ctx context.Context, only map[tp]bool) error {
	req := &pluginpb.FlushRequest{}
	commit := map[string]map[int32]kgo.EpochOffset{}
	for p, off := range r.next {
		if only != nil && !only[p] {
			continue
		}
		req.Offsets = append(req.Offsets, &pluginpb.PartitionOffsetNext{Partition: &pluginpb.TopicPartition{Topic: p.topic, Partition: p.partition}, NextOffset: off})
		if r.committed[p] == off {
			continue
		}
		if commit[p.topic] == nil {
			commit[p.topic] = map[int32]kgo.EpochOffset{}
		}
		commit[p.topic][p.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	if len(req.Offsets) == 0 {
		return nil
	}
	start := time.Now()
	if err := r.cfg.Retry.call(ctx, r.cfg.Logger, "flush", writeTimeout, func(ctx context.Context) error {
		_, err := r.cfg.Plugin.Flush(ctx, req)
		return err
	}); err != nil {
		return fmt.Errorf("flush: %w", r.cfg.PluginErr(err))
	}
	r.cfg.Metrics.observe(r.cfg.Connector, r.cfg.Task, "flush", time.Since(start))
	if len(commit) == 0 {
		return nil
	}
	var cerr error
	r.cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsgOffsetCommitRequest, resp *kmsgOffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 && cerr == nil {
					cerr = fmt.Errorf("committing %s/%d: %w", t.Topic, p.Partition, kerrForCode(p.ErrorCode))
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("committing consumer offsets: %w", cerr)
	}
	for t, ps := range commit {
		for p, eo := range ps {
			r.committed[tp{t, p}] = eo.Offset
		}
	}
	return nil
}

func toPB(m map[string][]int32) *pluginpb.PartitionsRequest {
	req := &pluginpb.PartitionsRequest{}
	for t, ps := range m {
		for _, p := range ps {
			req.Partitions = append(req.Partitions, &pluginpb.TopicPartition{Topic: t, Partition: p})
		}
	}
	return req
}

func (r *sinkRunner) assigned(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.cfg.Plugin.OpenPartitions(ctx, toPB(m)); err != nil {
		r.fail(fmt.Errorf("open partitions: %w", r.cfg.PluginErr(err)))
	}
}

// revoked flushes and commits the partitions being taken away before they
// move, then closes them in the task.
func (r *sinkRunner) revoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	only := map[tp]bool{}
	for t, ps := range m {
		for _, p := range ps {
			only[tp{t, p}] = true
		}
	}
	if err := r.flushLocked(ctx, only); err != nil {
		r.fail(err)
	}
	r.closeLocked(ctx, m, only)
}

// lost: the partitions already belong to someone else; nothing may be
// committed for them any more.
func (r *sinkRunner) lost(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	only := map[tp]bool{}
	for t, ps := range m {
		for _, p := range ps {
			only[tp{t, p}] = true
		}
	}
	r.closeLocked(ctx, m, only)
}

func (r *sinkRunner) closeLocked(ctx context.Context, m map[string][]int32, only map[tp]bool) {
	if _, err := r.cfg.Plugin.ClosePartitions(ctx, toPB(m)); err != nil {
		r.fail(fmt.Errorf("close partitions: %w", r.cfg.PluginErr(err)))
	}
	for p := range only {
		delete(r.next, p)
		delete(r.committed, p)
	}
}

func (r *sinkRunner) fail(err error) {
	r.failed.CompareAndSwap(nil, &err)
}

// events applies the task's requests to its consumer until ctx is done.
func (r *sinkRunner) events(ctx context.Context) {
	stream, err := r.cfg.Plugin.SinkEvents(ctx, &pluginpb.SinkEventsRequest{})
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.Warn("sink task events unavailable", "err", err)
		}
		return
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) {
				r.cfg.Logger.Debug("sink task events ended", "err", err)
			}
			return
		}
		switch e := ev.Event.(type) {
		case *pluginpb.SinkEvent_Pause:
			r.cl.PauseFetchPartitions(fromPB(e.Pause))
		case *pluginpb.SinkEvent_Resume:
			r.cl.ResumeFetchPartitions(fromPB(e.Resume))
		case *pluginpb.SinkEvent_Rewind:
			p := e.Rewind.GetPartition()
			r.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.GetTopic(): {p.GetPartition(): {Epoch: -1, Offset: e.Rewind.NextOffset}}})
		case *pluginpb.SinkEvent_RequestCommit:
			r.commitReq.Store(true)
		}
	}
}

func fromPB(req *pluginpb.PartitionsRequest) map[string][]int32 {
	m := map[string][]int32{}
	for _, p := range req.GetPartitions() {
		m[p.Topic] = append(m[p.Topic], p.Partition)
	}
	return m
}
