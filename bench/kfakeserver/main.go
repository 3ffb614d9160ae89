// Command kfakeserver hosts a single-broker kfake cluster (franz-go's
// in-memory fake Kafka) as a process, so that benchmarks can drive it over
// TCP exactly like any other broker and measure its CPU and memory from
// /proc.
//
// Usage:
//
//	kfakeserver [--listen 127.0.0.1:0] [--data-dir DIR [--sync-writes]]
//	            [--seed-topics a,b --seed-partitions N] [--blackhole-produce]
//
// Once listening it prints exactly one line to stdout,
// "listening HOST:PORT" (the real address when the port was 0), and then
// serves until SIGINT or SIGTERM, when it closes the cluster (persisting
// state when --data-dir is set) and exits 0. Errors go to stderr, exit 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "`HOST:PORT` to listen on (port 0 picks a free port)")
	dataDir := flag.String("data-dir", "", "persist the cluster's state in `DIR` (default: memory only)")
	syncWrites := flag.Bool("sync-writes", false, "with --data-dir, fsync every produced batch")
	seedTopics := flag.String("seed-topics", "", "comma-separated `topics` to create at start")
	blackhole := flag.Bool("blackhole-produce", false, "acknowledge produced records without storing them (measures the client's ceiling)")
	seedPartitions := flag.Int("seed-partitions", 1, "partitions of each seeded topic and of auto-created topics")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *syncWrites && *dataDir == "" {
		return fmt.Errorf("--sync-writes needs --data-dir")
	}

	// kfake always binds 127.0.0.1:<port>; ListenFn lets us bind the
	// requested address instead (metadata advertises the bound address).
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(*seedPartitions),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, *listen)
		}),
	}
	if *blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	if *seedTopics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*seedPartitions), strings.Split(*seedTopics, ",")...))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("listening %s\n", c.ListenAddrs()[0])
	<-ctx.Done()
	return nil
}
