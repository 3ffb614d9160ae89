// Package kafkalog is the worker's read-to-end log over one compacted Kafka
// topic: the building block of the config, offset and status stores (Kafka
// Connect's KafkaBasedLog).
//
// A Log creates its topic if missing (cleanup.policy=compact), refuses an
// existing topic that is not compacted, consumes every partition from the
// beginning without a consumer group, and hands each record to the apply
// callback. Writes go through an idempotent producer with acks=all and
// Kafka's default key partitioning (murmur2 of the key), so records written
// by a Kafka Connect worker and by Tributary land on the same partitions.
//
// It speaks Kafka protocol only (franz-go kgo and kadm) and works against any
// Kafka-compatible broker.
//
// Wire format: none of its own. Records are stored as given (key and value
// bytes; a nil value is a tombstone); the stores built on this package
// document their record formats.
package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sentinel errors.
var (
	// ErrClosed is returned by Send, SendAll and ReadToEnd once Close was called.
	ErrClosed = errors.New("kafkalog: log closed")
	// ErrNotCompacted is returned by Open when the topic exists with a
	// cleanup.policy other than exactly "compact".
	ErrNotCompacted = errors.New("kafkalog: topic is not compacted")
	// ErrConfig is returned by Open for an invalid Config.
	ErrConfig = errors.New("kafkalog: invalid config")
)

// Config configures a Log.
type Config struct {
	// Brokers are the bootstrap servers (host:port).
	Brokers []string
	// Topic is the compacted topic backing the log.
	Topic string
	// Partitions is used when the topic is created. Kafka Connect's defaults:
	// connect-configs 1, connect-offsets 25, connect-status 5. Zero means 1.
	Partitions int32
	// ReplicationFactor is used when the topic is created; -1 (or 0) means
	// the broker's default.
	ReplicationFactor int16
	// ClientID is the Kafka client.id; empty means "tributary-kafkalog".
	ClientID string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// ExtraTopicConfigs are added to the topic configs at creation
	// (cleanup.policy is always compact and cannot be overridden).
	ExtraTopicConfigs map[string]string
	// ExtraClientOptions are appended to the franz-go client options (for
	// TLS, SASL, tuning). Options that change consumption or partitioning
	// break the Log's contract.
	ExtraClientOptions []kgo.Opt
}

// Record is one record of the log. A nil Value is a tombstone.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader
	Partition int32
	Offset    int64
	// Timestamp is the record's create time (set by the writer; now when
	// zero).
	Timestamp time.Time
}

// Log is an open read-to-end log. Its methods are safe for concurrent use.
type Log struct {
	cfg    Config
	log    *slog.Logger
	cl     *kgo.Client
	adm    *kadm.Client
	apply  func(Record)
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	closed  bool
	next    map[int32]int64 // partition -> next offset to apply
	changed chan struct{}   // closed and replaced whenever next advances
	parts   int32

	closeOnce sync.Once
	waiters   sync.WaitGroup // SendAll ack waiters, ended by Close at the latest
}

// Open creates the topic if it is missing (cleanup.policy=compact), verifies
// that an existing topic is compacted, starts consuming every partition from
// the beginning and returns once the first read to the end completed, that is
// once every record present at the time of the call has been passed to apply.
//
// apply is called from a single goroutine owned by the Log, in offset order
// within each partition (no order across partitions), with the records of
// every partition including tombstones. apply must not block for long and
// must not call ReadToEnd, Send, SendAll or Close of the same Log (ReadToEnd
// would wait for itself). apply is never called after Close returned.
func Open(ctx context.Context, cfg Config, apply func(Record)) (*Log, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" || apply == nil {
		return nil, fmt.Errorf("%w: brokers, topic and apply are required", ErrConfig)
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "tributary-kafkalog"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("topic", cfg.Topic)

	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2 for keyed records, like Kafka
		kgo.ProducerLinger(0),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.FetchMaxWait(time.Second),
	}
	opts = append(opts, cfg.ExtraClientOptions...)

	// The consuming client must not start fetching before the topic exists
	// (it would only retry), so topic setup uses a separate admin client.
	admOpts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID)}, cfg.ExtraClientOptions...)
	admCl, err := kgo.NewClient(admOpts...)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: admin client: %w", err)
	}
	parts, err := ensureTopic(ctx, kadm.NewClient(admCl), cfg, logger)
	admCl.Close()
	if err != nil {
		return nil, err
	}

	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: client: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l := &Log{
		cfg:     cfg,
		log:     logger,
		cl:      cl,
		adm:     kadm.NewClient(cl),
		apply:   apply,
		cancel:  cancel,
		done:    make(chan struct{}),
		next:    make(map[int32]int64),
		changed: make(chan struct{}),
		parts:   parts,
	}
	go l.run(runCtx)
	if err := l.ReadToEnd(ctx); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("kafkalog: initial read of %q: %w", cfg.Topic, err)
	}
	logger.Debug("log opened", "partitions", parts)
	return l, nil
}

// ensureTopic creates the topic or verifies the existing one; it returns the
// partition count.
func ensureTopic(ctx context.Context, adm *kadm.Client, cfg Config, logger *slog.Logger) (int32, error) {
	configs := map[string]*string{}
	for k, v := range cfg.ExtraTopicConfigs {
		configs[k] = &v
	}
	compact := "compact"
	configs["cleanup.policy"] = &compact

	resp, err := adm.CreateTopic(ctx, cfg.Partitions, cfg.ReplicationFactor, configs, cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		logger.Info("created compacted topic", "partitions", cfg.Partitions)
	case errors.Is(err, kerr.TopicAlreadyExists):
		if err := verifyCompacted(ctx, adm, cfg.Topic, logger); err != nil {
			return 0, err
		}
	default:
		if resp.ErrMessage != "" {
			return 0, fmt.Errorf("kafkalog: create topic %q: %w (%s)", cfg.Topic, err, resp.ErrMessage)
		}
		return 0, fmt.Errorf("kafkalog: create topic %q: %w", cfg.Topic, err)
	}
	return partitionCount(ctx, adm, cfg.Topic)
}

// verifyCompacted fails unless the topic's cleanup.policy is exactly
// "compact", as Kafka Connect requires for its internal topics. Brokers that
// cannot describe configs are given the benefit of the doubt, as in Kafka.
func verifyCompacted(ctx context.Context, adm *kadm.Client, topic string, logger *slog.Logger) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil && len(rcs) > 0 {
		err = rcs[0].Err
	}
	if err != nil {
		if errors.Is(err, kerr.UnsupportedVersion) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
			errors.Is(err, kerr.ClusterAuthorizationFailed) {
			logger.Warn("cannot verify cleanup.policy of existing topic", "err", err)
			return nil
		}
		return fmt.Errorf("kafkalog: describe configs of %q: %w", topic, err)
	}
	policy := ""
	for _, c := range rcs[0].Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	var set []string
	for p := range strings.SplitSeq(policy, ",") {
		if p = strings.TrimSpace(strings.ToLower(p)); p != "" {
			set = append(set, p)
		}
	}
	if len(set) == 1 && set[0] == "compact" {
		return nil
	}
	return fmt.Errorf("%w: topic %q must have cleanup.policy=compact to keep Connect's internal state durable, "+
		"but it has cleanup.policy=%s; change the topic's cleanup.policy to compact or configure another topic",
		ErrNotCompacted, topic, policy)
}

func partitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			d := td[topic]
			if d.Err == nil && len(d.Partitions) > 0 {
				return int32(len(d.Partitions)), nil
			}
			err = d.Err
			if err == nil {
				err = errors.New("no partitions in metadata")
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("kafkalog: metadata of %q: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run is the consumer goroutine: it owns every call of apply.
func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	for {
		fs := l.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				l.log.Warn("fetch error", "partition", p, "err", err)
			}
		})
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			for _, r := range ftp.Records {
				l.apply(Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp})
			}
			last := ftp.Records[len(ftp.Records)-1].Offset
			l.mu.Lock()
			if last+1 > l.next[ftp.Partition] {
				l.next[ftp.Partition] = last + 1
				close(l.changed)
				l.changed = make(chan struct{})
			}
			l.mu.Unlock()
		})
	}
}

// Partitions returns the topic's partition count, as seen at Open.
func (l *Log) Partitions() int32 { return l.parts }

// Topic returns the topic name.
func (l *Log) Topic() string { return l.cfg.Topic }

// ReadToEnd lists the end offsets of every partition and returns once the
// consumer applied every record below them, so that all writes acknowledged
// before the call are visible to apply's side effects. It must not be called
// from apply.
//
// Progress is measured by the offsets of applied records. When a partition
// stays behind its end offset without progress for probeAfter, ReadToEnd
// fetches that partition directly from the last applied offset: if no
// record the consumer would return lies between (the tail holds only
// transaction markers, or batches emptied by compaction), the partition
// counts as read up to where that fetch ended, as a Kafka consumer's
// position would.
func (l *Log) ReadToEnd(ctx context.Context) error {
	if l.isClosed() {
		return ErrClosed
	}
	ends, err := l.adm.ListEndOffsets(ctx, l.cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if l.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("kafkalog: list end offsets of %q: %w", l.cfg.Topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	probe := time.NewTimer(probeAfter)
	defer probe.Stop()
	for {
		l.mu.Lock()
		behind := map[int32]int64{}
		for p, end := range want {
			if l.next[p] < end {
				behind[p] = l.next[p]
			}
		}
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if len(behind) == 0 {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
			probe.Reset(probeAfter) // Go 1.23+ timers: Reset discards a pending expiry
		case <-probe.C:
			l.probe(ctx, behind)
			probe.Reset(probeAfter)
		case <-l.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("kafkalog: read to end of %q: %w", l.cfg.Topic, ctx.Err())
		}
	}
}

// probeAfter is how long ReadToEnd waits without progress before probing.
const probeAfter = 250 * time.Millisecond

// probe fetches each lagging partition from its next offset (one fetch, no
// wait) and, when the fetched range holds no record the consumer would
// return, advances the partition's position past it. Errors only delay
// ReadToEnd; they are logged at debug level.
func (l *Log) probe(ctx context.Context, behind map[int32]int64) {
	md, err := l.adm.Metadata(ctx, l.cfg.Topic)
	if err != nil {
		l.log.Debug("probe: metadata", "err", err)
		return
	}
	td, ok := md.Topics[l.cfg.Topic]
	if !ok || td.Err != nil {
		l.log.Debug("probe: topic metadata", "err", td.Err)
		return
	}
	for p, from := range behind {
		pd, ok := td.Partitions[p]
		if !ok || pd.Leader < 0 {
			continue
		}
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = l.cfg.Topic
		rt.TopicID = td.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = from
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, l.cl.Broker(int(pd.Leader)))
		if err != nil {
			l.log.Debug("probe: fetch", "partition", p, "err", err)
			continue
		}
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				fr := &resp.Topics[i].Partitions[j]
				if fr.Partition != p || fr.ErrorCode != 0 {
					continue
				}
				fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
					Offset: from, Topic: l.cfg.Topic, Partition: p,
				}, fr, kgo.DefaultDecompressor(), nil)
				if fp.Err != nil || len(fp.Records) > 0 || next <= from {
					continue // records to wait for, or nothing learned
				}
				l.mu.Lock()
				if next > l.next[p] {
					l.log.Debug("probe: skipping records the consumer does not return", "partition", p, "from", from, "to", next)
					l.next[p] = next
					close(l.changed)
					l.changed = make(chan struct{})
				}
				l.mu.Unlock()
			}
		}
	}
}

// Send writes one record (nil value: a tombstone) and returns once the broker
// acknowledged it (acks=all). The record is partitioned by the murmur2 hash
// of its key, as Kafka's default partitioner does.
func (l *Log) Send(ctx context.Context, key, value []byte) error {
	return l.SendAll(ctx, []Record{{Key: key, Value: value}})
}

// SendAll writes the records (only Key and Value are used) in order and
// returns once all were acknowledged, or with the first error. Records with
// the same key keep their order; the idempotent producer keeps the order of
// every partition across retries.
func (l *Log) SendAll(ctx context.Context, recs []Record) error {
	if l.isClosed() {
		return ErrClosed
	}
	if len(recs) == 0 {
		return nil
	}
	// Wait for the acknowledgements or ctx, whichever comes first: the
	// client retries a send while the broker is unreachable, and a caller
	// with a deadline (a status write at shutdown) must not wait forever.
	// Records given up on this way stay in the client until they are sent
	// or Close aborts them; the waiter goroutine ends with the last ack.
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	wg.Add(len(recs))
	for _, r := range recs {
		kr := &kgo.Record{Topic: l.cfg.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
		l.cl.Produce(ctx, kr, func(_ *kgo.Record, err error) {
			if err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
			wg.Done()
		})
	}
	acked := make(chan struct{})
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.waiters.Add(1) // under mu: Close sets closed under mu before it waits
	}
	l.mu.Unlock()
	if closed {
		return ErrClosed // Close aborts the records just given to the client
	}
	go func() {
		defer l.waiters.Done()
		wg.Wait()
		close(acked)
	}()
	select {
	case <-acked:
	case <-ctx.Done():
		return fmt.Errorf("kafkalog: produce to %q: %w", l.cfg.Topic, ctx.Err())
	}
	if first != nil {
		if l.isClosed() || errors.Is(first, kgo.ErrClientClosed) {
			return ErrClosed
		}
		return fmt.Errorf("kafkalog: produce to %q: %w", l.cfg.Topic, first)
	}
	return nil
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close stops the consumer, waits for its goroutine (no apply call runs after
// Close returns) and closes the client. It is idempotent.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.cancel()
		<-l.done
		l.cl.Close() // aborts unsent records: every SendAll waiter ends
		l.waiters.Wait()
	})
	return nil
}
