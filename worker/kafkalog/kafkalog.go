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
	Partition int32
	Offset    int64
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
	admCl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID))
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
				l.apply(Record{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp})
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
// Progress is measured by the offsets of applied records: if the tail of a
// partition holds only records the consumer never returns (transaction
// markers; Tributary's stores write none), ReadToEnd waits until ctx ends.
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
	for {
		l.mu.Lock()
		behind := false
		for p, end := range want {
			if l.next[p] < end {
				behind = true
				break
			}
		}
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if !behind {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-l.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("kafkalog: read to end of %q: %w", l.cfg.Topic, ctx.Err())
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
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: l.cfg.Topic, Key: r.Key, Value: r.Value}
	}
	if err := l.cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		if l.isClosed() || errors.Is(err, kgo.ErrClientClosed) {
			return ErrClosed
		}
		return fmt.Errorf("kafkalog: produce to %q: %w", l.cfg.Topic, err)
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
		l.cl.Close()
	})
	return nil
}
