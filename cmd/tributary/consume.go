package main

// tributary consume: kafka-console-consumer for any Kafka broker. Text output
// follows kafka-console-consumer's default formatter (fields joined by the
// key separator, "null" for a null key or value); json output is one object
// per line.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// topicList collects --topic values, repeated or comma-separated.
type topicList []string

func (l *topicList) String() string { return strings.Join(*l, ",") }
func (l *topicList) Set(v string) error {
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			*l = append(*l, t)
		}
	}
	return nil
}

type consumeFormat struct {
	json                            bool
	sep                             string
	key, headers, offset, timestamp bool
}

func runConsume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKafkaFlagSet("consume", stderr)
	brokers := brokersFlag(fs)
	var topics topicList
	fs.Var(&topics, "topic", "topic to read, repeatable or comma-separated (required)")
	group := fs.String("group", "", "consume in this consumer group and commit the offsets of printed records (default: no group, no commits)")
	fromBeginning := fs.Bool("from-beginning", false, "start at the earliest offset (with --group: only where the group has no committed offset); default: only new records")
	maxMessages := fs.Int("max-messages", 0, "stop after printing N records (0: no limit)")
	idle := fs.Duration("timeout", 0, "stop when no record arrives for this long (0: wait until Ctrl-C)")
	var f consumeFormat
	fs.BoolVar(&f.key, "print-key", false, "print the key before the value (text output)")
	fs.BoolVar(&f.headers, "print-headers", false, "print the headers as k:v,k2:v2 or NO_HEADERS (text output)")
	fs.BoolVar(&f.offset, "print-offset", false, "print Partition:P and Offset:O (text output)")
	fs.BoolVar(&f.timestamp, "print-timestamp", false, "print CreateTime:MS or LogAppendTime:MS (text output)")
	fs.StringVar(&f.sep, "key-separator", "", "separator between the printed fields (text output; default a tab)")
	output := fs.String("output", "text", "text or json ({\"topic\",\"partition\",\"offset\",\"timestamp\",\"key\",\"value\",\"headers\"} per line)")
	setUsage(fs, "tributary consume --brokers HOST:PORT --topic T [--topic T2] [--group G] [--from-beginning] [--max-messages N] [--timeout D] [--print-key] [--print-headers] [--print-offset] [--key-separator SEP] [--output text|json]", func(w io.Writer) {
		fmt.Fprint(w, "\nPrints records to standard output, one per line, until --max-messages, --timeout\n"+
			"or Ctrl-C; the count goes to standard error. With --group, the offsets of the\n"+
			"printed records are committed, so the next run with the group starts after them.\n")
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(topics) == 0 {
		return fmt.Errorf("%w: --topic is required", errUsage)
	}
	if *maxMessages < 0 {
		return fmt.Errorf("%w: --max-messages %d: want 0 (no limit) or more", errUsage, *maxMessages)
	}
	if *idle < 0 {
		return fmt.Errorf("%w: --timeout must not be negative", errUsage)
	}
	switch *output {
	case "text":
	case "json":
		f.json = true
	default:
		return fmt.Errorf("%w: --output %q: use text or json", errUsage, *output)
	}
	if f.sep == "" {
		f.sep = "\t"
	}
	reset := kgo.NewOffset().AtEnd()
	if *fromBeginning {
		reset = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(reset)}
	if *group != "" {
		// Only printed records are marked, and only marked offsets are
		// committed: records fetched past --max-messages stay unconsumed.
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.AutoCommitMarks())
	}
	cl, err := newKafkaClient(*brokers, opts...)
	if err != nil {
		return err
	}
	missing, err := missingTopics(ctx, cl, *brokers, topics)
	if err != nil {
		cl.Close()
		return err
	}
	for _, t := range missing {
		fmt.Fprintf(stderr, "topic %q does not exist (yet): waiting for it\n", t)
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	n, stopped, runErr := consumeLoop(ctx, cl, out, f, *maxMessages, *idle, *group != "", *brokers)
	if err := out.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("writing the output: %w", err)
	}
	if *group != "" {
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		if err := cl.CommitMarkedOffsets(commitCtx); err != nil && runErr == nil {
			runErr = fmt.Errorf("committing the offsets of group %q: %w", *group, kafkaErr(err, "", *brokers, nil))
		}
		cancel()
	}
	cl.Close()
	fmt.Fprintf(stderr, "consumed %d records%s\n", n, stopped)
	return runErr
}

// consumeLoop prints records until max records, idle time without a record,
// or ctx's end. It returns the count and why it stopped (" (no record for
// 5s)") or the error that stopped it.
func consumeLoop(ctx context.Context, cl *kgo.Client, out *bufio.Writer, f consumeFormat, max int, idle time.Duration, mark bool, brokers string) (int, string, error) {
	n := 0
	var line []byte
	for max == 0 || n < max {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, idle)
		}
		want := 0
		if max > 0 {
			want = max - n
		}
		fetches := cl.PollRecords(pollCtx, want)
		cancel()
		var werr error
		fetches.EachRecord(func(r *kgo.Record) {
			if werr != nil || (max > 0 && n >= max) {
				return // not marked: the group's next run gets it
			}
			line = formatRecord(line[:0], r, f)
			if _, werr = out.Write(line); werr == nil {
				n++
				if mark {
					cl.MarkCommitRecords(r)
				}
			}
		})
		if werr == nil {
			werr = out.Flush()
		}
		if werr != nil {
			return n, "", fmt.Errorf("writing the output: %w", werr)
		}
		switch {
		case ctx.Err() != nil:
			return n, " (interrupted)", nil
		case pollCtx.Err() != nil && fetches.NumRecords() == 0:
			return n, fmt.Sprintf(" (no record for %s)", idle), nil
		case fetches.IsClientClosed():
			return n, "", errors.New("the client was closed")
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			where := fe.Topic
			if fe.Partition >= 0 {
				where = fmt.Sprintf("%s partition %d", fe.Topic, fe.Partition)
			}
			return n, "", fmt.Errorf("topic %s: %w", where, kafkaErr(fe.Err, "", brokers, nil))
		}
	}
	return n, "", nil
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"` // milliseconds since the epoch
	Key       *string      `json:"key"`       // null for a null key
	Value     *string      `json:"value"`     // null for a tombstone
	Headers   []jsonHeader `json:"headers"`
}

func optString(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// formatRecord appends r's output line, newline included, to dst.
func formatRecord(dst []byte, r *kgo.Record, f consumeFormat) []byte {
	if f.json {
		jr := jsonRecord{
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(),
			Key: optString(r.Key), Value: optString(r.Value), Headers: make([]jsonHeader, 0, len(r.Headers)),
		}
		for _, h := range r.Headers {
			jr.Headers = append(jr.Headers, jsonHeader{h.Key, string(h.Value)})
		}
		b, _ := json.Marshal(jr) // cannot fail: strings and numbers only
		return append(append(dst, b...), '\n')
	}
	if f.timestamp {
		kind := "CreateTime:"
		if r.Attrs.TimestampType() == 1 {
			kind = "LogAppendTime:"
		}
		dst = fmt.Appendf(dst, "%s%d%s", kind, r.Timestamp.UnixMilli(), f.sep)
	}
	if f.offset {
		dst = fmt.Appendf(dst, "Partition:%d%sOffset:%d%s", r.Partition, f.sep, r.Offset, f.sep)
	}
	if f.headers {
		if len(r.Headers) == 0 {
			dst = append(dst, "NO_HEADERS"...)
		}
		for i, h := range r.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(append(append(dst, h.Key...), ':'), h.Value...)
		}
		dst = append(dst, f.sep...)
	}
	if f.key {
		dst = appendNullable(dst, r.Key)
		dst = append(dst, f.sep...)
	}
	dst = appendNullable(dst, r.Value)
	return append(dst, '\n')
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}
