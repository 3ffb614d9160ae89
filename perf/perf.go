// Package perf is a Kafka load generator: it produces and consumes
// synthetic records against any broker that speaks the Kafka protocol (our
// broker, kfake, Apache Kafka, Redpanda) and measures throughput and
// per-record produce latency from the client's side.
//
// It is built on franz-go's kgo and tuned so that the client costs as little
// CPU as possible, because on small machines the load generator, not the
// broker, is often the bottleneck:
//
//   - every record shares one value buffer (records carry no key);
//   - the kgo.Record of a record in flight is recycled once its promise has
//     run, so producing allocates nothing per record in the steady state;
//   - produce latency (from the Produce call to the promise) goes into a
//     fixed-size log-linear histogram (under 1% error), never a map or an
//     unbounded slice;
//   - the consumer asks for large fetches and recycles kgo's record slices
//     through kgo.WithPools.
//
// Units: MBPerSec counts MiB (1,048,576 bytes) of record values (plus keys,
// when consuming records that have them) per second, as Kafka's own
// kafka-producer-perf-test does. Wire and batch overhead are not counted.
package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Sentinel errors. Every error returned by this package that is caused by
// one of these conditions wraps the matching sentinel.
var (
	// ErrInvalidConfig reports a configuration field with a bad value; the
	// message names the field.
	ErrInvalidConfig = errors.New("perf: invalid config")
	// ErrProduceFailed reports that at least one record's produce promise
	// failed; the run is aborted at the first failure.
	ErrProduceFailed = errors.New("perf: produce failed")
	// ErrConsumeFailed reports a non-retryable fetch error.
	ErrConsumeFailed = errors.New("perf: consume failed")
	// ErrIdle reports that the consumer saw no new record for
	// ConsumeConfig.IdleTimeout before reaching its target count.
	ErrIdle = errors.New("perf: no records within the idle timeout")
	// ErrTopic reports that the topic could not be created or did not
	// become ready.
	ErrTopic = errors.New("perf: topic setup failed")
)

const mib = 1 << 20

// rates returns records per second and MiB per second.
func rates(records int, bytes int64, elapsed time.Duration) (float64, float64) {
	s := elapsed.Seconds()
	if s <= 0 {
		return 0, 0
	}
	return float64(records) / s, float64(bytes) / mib / s
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// topicReadyTimeout bounds how long EnsureTopic waits for a created topic to
// show leaders for all its partitions in metadata.
const topicReadyTimeout = 30 * time.Second

// EnsureTopic creates topic with the given number of partitions and
// replication factor 1 through cl, treating TOPIC_ALREADY_EXISTS as success,
// and then waits (polling metadata, bounded by ctx and 30 s) until every
// partition of the topic has a leader. It returns the number of partitions
// the topic has, which differs from partitions when the topic already
// existed.
func EnsureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int) (int, error) {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		msg := ""
		if resp.ErrMessage != "" {
			msg = " (" + resp.ErrMessage + ")"
		}
		return 0, fmt.Errorf("%w: creating topic %q: %w%s", ErrTopic, topic, err, msg)
	}

	ctx, cancel := context.WithTimeout(ctx, topicReadyTimeout)
	defer cancel()
	var last error
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			d := details[topic]
			switch {
			case d.Err != nil:
				err = d.Err
			case len(d.Partitions) == 0:
				err = errors.New("no partitions in metadata")
			default:
				ready := true
				for _, p := range d.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
						err = fmt.Errorf("partition %d has no leader (%v)", p.Partition, p.Err)
						break
					}
				}
				if ready {
					return len(d.Partitions), nil
				}
			}
		}
		last = err
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%w: topic %q not ready: %w (last: %v)", ErrTopic, topic, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// progress prints a line to out every interval until stop is closed; count
// returns the running total. The caller owns the goroutine: it closes stop
// and then waits on done.
func progress(out io.Writer, what string, interval time.Duration, count func() (int64, int64), stop <-chan struct{}) (done <-chan struct{}) {
	d := make(chan struct{})
	if out == nil {
		close(d)
		return d
	}
	go func() {
		defer close(d)
		t := time.NewTicker(interval)
		defer t.Stop()
		start := time.Now()
		lastT := start
		var lastN, lastB int64
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				n, b := count()
				dt := now.Sub(lastT).Seconds()
				fmt.Fprintf(out, "%s: %d records, %.0f records/s, %.2f MB/s (%.1fs elapsed)\n",
					what, n, float64(n-lastN)/dt, float64(b-lastB)/mib/dt, now.Sub(start).Seconds())
				lastT, lastN, lastB = now, n, b
			}
		}
	}()
	return d
}
