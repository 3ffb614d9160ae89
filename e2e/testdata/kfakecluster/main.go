// Command kfakecluster hosts a kfake cluster (franz-go's in-memory fake
// Kafka) of --brokers brokers as a process, for the e2e tests that run the
// worker cluster against a second Kafka implementation. (bench/kfakeserver
// hosts a single broker.)
//
// Once listening it prints one line to stdout, "listening HOST:PORT,...",
// then serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	brokers := flag.Int("brokers", 3, "number of brokers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := kfake.NewCluster(kfake.NumBrokers(*brokers))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakecluster:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Printf("listening %s\n", strings.Join(c.ListenAddrs(), ","))
	<-ctx.Done()
}
