package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tributary-data/tributary/perf"
)

func runPerf(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "produce" && args[0] != "consume") {
		fmt.Fprintf(stderr, "Usage: tributary perf produce|consume --brokers HOST:PORT --topic T --records N [flags]\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: want a subcommand: produce or consume", errUsage)
	}
	if args[0] == "produce" {
		return runPerfProduce(ctx, args[1:], stdout, stderr)
	}
	return runPerfConsume(ctx, args[1:], stdout, stderr)
}

func perfErr(err error) error {
	if errors.Is(err, perf.ErrInvalidConfig) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

func runPerfProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := perf.DefaultProduceConfig()
	fs := flag.NewFlagSet("perf produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated HOST:PORT seed brokers")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic to produce to")
	fs.IntVar(&cfg.Records, "records", cfg.Records, "number of records")
	fs.IntVar(&cfg.RecordSize, "record-size", cfg.RecordSize, "bytes per record value")
	fs.StringVar(&cfg.Acks, "acks", cfg.Acks, "all, 1 or 0")
	fs.BoolVar(&cfg.Idempotent, "idempotent", cfg.Idempotent, "idempotent producer (with acks=all)")
	fs.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.IntVar(&cfg.BatchMaxBytes, "batch-max-bytes", cfg.BatchMaxBytes, "largest batch the producer builds (0: 1 MiB)")
	fs.DurationVar(&cfg.Linger, "linger", cfg.Linger, "how long to wait to fill a batch")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions when the topic is created")
	fs.BoolVar(&cfg.CreateTopic, "create-topic", cfg.CreateTopic, "create the topic when missing")
	setUsage(fs, "tributary perf produce --brokers HOST:PORT --topic T --records N --record-size B [--acks all]", nil)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Brokers = strings.Split(*brokers, ",")
	cfg.Out = stderr
	cfg.ProgressInterval = time.Second
	res, err := perf.Produce(ctx, cfg)
	if err != nil {
		return perfErr(err)
	}
	fmt.Fprintln(stdout, res)
	return nil
}

func runPerfConsume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := perf.DefaultConsumeConfig()
	fs := flag.NewFlagSet("perf consume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated HOST:PORT seed brokers")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic to consume")
	fs.IntVar(&cfg.Records, "records", cfg.Records, "records to read (0: up to the end offsets at start)")
	fs.StringVar(&cfg.Group, "group", "", "consume in this consumer group (default: read partitions directly)")
	fs.IntVar(&cfg.FetchMaxBytes, "fetch-max-bytes", cfg.FetchMaxBytes, "largest fetch response (0: 64 MiB)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "fail when no record arrives for this long")
	fs.Int("record-size", 0, "ignored (accepted so produce and consume take the same flags)")
	setUsage(fs, "tributary perf consume --brokers HOST:PORT --topic T --records N", nil)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Brokers = strings.Split(*brokers, ",")
	cfg.Out = stderr
	cfg.ProgressInterval = time.Second
	res, err := perf.Consume(ctx, cfg)
	if err != nil {
		return perfErr(err)
	}
	fmt.Fprintln(stdout, res)
	return nil
}
