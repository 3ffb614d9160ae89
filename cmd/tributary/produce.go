package main

// tributary produce: kafka-console-producer for any Kafka broker. Each input
// line is one record; with --key-separator the line splits at the first
// separator into key and value (kafka-console-producer's parse.key and
// key.separator).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func runProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKafkaFlagSet("produce", stderr)
	brokers := brokersFlag(fs)
	topic := fs.String("topic", "", "topic to write to (required)")
	file := fs.String("file", "-", "read lines from this file (-: standard input)")
	keySep := fs.String("key-separator", "", "split each line at the first SEP into key and value (use $'\\t' for a tab); without it every line is a value with no key")
	var headers multiFlag
	fs.Var(&headers, "header", "header key=value added to every record, repeatable")
	acks := fs.String("acks", "all", "all, 1 or 0")
	partition := fs.Int("partition", -1, "write every record to this partition (-1: by key hash; records without keys are spread)")
	deliveryTimeout := fs.Duration("delivery-timeout", 30*time.Second, "fail a record the brokers have not acknowledged within this time")
	setUsage(fs, "tributary produce --brokers HOST:PORT --topic T [--file F] [--key-separator SEP] [--header k=v ...] [--acks all|1|0] [--partition N]", func(w io.Writer) {
		fmt.Fprint(w, "\nReads one record per line from standard input (or --file) until end of input (Ctrl-D)\n"+
			"or Ctrl-C, waits for the brokers to acknowledge them, and reports the count on\n"+
			"standard error. Exits 1 if any record failed, naming its line.\n")
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *topic == "" {
		return fmt.Errorf("%w: --topic is required", errUsage)
	}
	if *partition < -1 {
		return fmt.Errorf("%w: --partition %d: want a partition number, or -1", errUsage, *partition)
	}
	if *deliveryTimeout <= 0 {
		return fmt.Errorf("%w: --delivery-timeout must be positive", errUsage)
	}
	hdrs := make([]kgo.RecordHeader, 0, len(headers))
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: --header %q: want key=value", errUsage, h)
		}
		hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(*topic),
		kgo.AllowAutoTopicCreation(), // as kafka-console-producer: the broker's auto.create.topics.enable decides
		kgo.RecordDeliveryTimeout(*deliveryTimeout),
	}
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return fmt.Errorf("%w: --acks %q: use all, 1 or 0", errUsage, *acks)
	}
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}

	in, fromStdin := io.Reader(os.Stdin), *file == "-"
	if !fromStdin {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("%w: --file: %v", errUsage, err)
		}
		defer f.Close()
		in = f
	}
	cl, err := newKafkaClient(*brokers, opts...)
	if err != nil {
		return err
	}

	if _, err := missingTopics(ctx, cl, *brokers, []string{*topic}); err != nil {
		cl.Close()
		return err
	}

	var res produceResult
	var pending sync.WaitGroup // one per record handed to the client, done in its promise
	lines, stop, readerDone := make(chan lineBatch, 4), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerDone)
		readLines(in, lines, stop)
	}()
	var readErr error
	interrupted := false
read:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break read
		case b := <-lines:
			for _, l := range b.lines {
				r := &kgo.Record{Value: l.text, Headers: hdrs, Partition: int32(*partition)}
				if *keySep != "" {
					k, v, ok := bytes.Cut(l.text, []byte(*keySep))
					if !ok {
						res.fail(l.n, fmt.Errorf("no key separator %q in the line", *keySep))
						continue
					}
					r.Key, r.Value = k, v
				}
				pending.Add(1)
				n := l.n
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					defer pending.Done()
					if err != nil {
						res.fail(n, kafkaErr(err, "", *brokers, nil))
						return
					}
					res.succeed()
				})
			}
			if b.err != nil {
				if b.err != io.EOF {
					readErr = b.err
				}
				break read
			}
		}
	}
	close(stop)
	// The reader is done or about to be, except when Ctrl-C came while it
	// waits for a line from a terminal or pipe: a blocking read of standard
	// input cannot be interrupted, so then it is left to the process's exit.
	if !interrupted || !fromStdin {
		<-readerDone
	}

	// Records already handed over are still delivered after Ctrl-C; each
	// fails on its own after --delivery-timeout, and Close fails the rest.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *deliveryTimeout+5*time.Second)
	flushErr := cl.Flush(flushCtx)
	cancel()
	cl.Close()
	pending.Wait()

	ok, failed, firsts := res.summary()
	fmt.Fprintf(stderr, "produced %d records to topic %q", ok, *topic)
	if interrupted {
		fmt.Fprint(stderr, " (interrupted)")
	}
	fmt.Fprintln(stderr)
	if readErr != nil {
		return fmt.Errorf("reading the input: %w", readErr)
	}
	if failed == 0 {
		if flushErr != nil {
			return fmt.Errorf("waiting for acknowledgements: %w", flushErr)
		}
		return nil
	}
	fmt.Fprintf(stderr, "%d records failed:\n", failed)
	for _, f := range firsts {
		fmt.Fprintf(stderr, "  line %d: %v\n", f.line, f.err)
	}
	if failed > len(firsts) {
		fmt.Fprintf(stderr, "  ... and %d more\n", failed-len(firsts))
	}
	return fmt.Errorf("%d of %d records failed (first: line %d: %w)", failed, ok+failed, firsts[0].line, firsts[0].err)
}

// produceResult counts acknowledged and failed records; promises update it
// from the client's goroutines.
type produceResult struct {
	mu     sync.Mutex
	ok     int
	failed int
	firsts []lineErr // the first few failures, in the order they happened
}

type lineErr struct {
	line int
	err  error
}

const reportedFailures = 10

func (r *produceResult) succeed() {
	r.mu.Lock()
	r.ok++
	r.mu.Unlock()
}

func (r *produceResult) fail(line int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	if len(r.firsts) < reportedFailures {
		r.firsts = append(r.firsts, lineErr{line, err})
	}
}

func (r *produceResult) summary() (ok, failed int, firsts []lineErr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok, r.failed, r.firsts
}

type inputLine struct {
	n    int // 1-based line number
	text []byte
}

// lineBatch is lines read together; err (io.EOF at the end) comes with the
// last batch.
type lineBatch struct {
	lines []inputLine
	err   error
}

const maxBatchLines = 512

// readLines sends in's lines (without their line ending) to out in batches:
// a batch goes out when it is full or when the input has nothing more
// buffered, so lines typed at a terminal are sent at once. It returns after
// sending the batch carrying the read error (io.EOF at the end), or when
// stop is closed.
func readLines(in io.Reader, out chan<- lineBatch, stop <-chan struct{}) {
	br := bufio.NewReaderSize(in, 64<<10)
	var batch []inputLine
	n := 0
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			n++
			b = bytes.TrimSuffix(b, []byte("\n"))
			b = bytes.TrimSuffix(b, []byte("\r"))
			batch = append(batch, inputLine{n, b})
		}
		if err == nil && len(batch) < maxBatchLines && br.Buffered() > 0 {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			err = fmt.Errorf("line %d: %w", n+1, err)
		}
		select {
		case out <- lineBatch{batch, err}:
		case <-stop:
			return
		}
		if err != nil {
			return
		}
		batch = nil
	}
}
