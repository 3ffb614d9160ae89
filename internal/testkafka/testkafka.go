// Package testkafka starts real Kafka-protocol brokers for tests: this
// repo's broker in-process on a free port, and franz-go's kfake with three
// brokers as a second implementation. Tests only: code under test still
// talks to them over the Kafka protocol, never through broker internals.
package testkafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-data/tributary/broker"
)

// Broker opens this repo's broker on 127.0.0.1:0 with its data in a temp
// dir, closed when the test ends, and returns its address.
func Broker(t testing.TB) string {
	t.Helper()
	cfg := broker.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	b, err := broker.Open(cfg, broker.Options{})
	if err != nil {
		t.Fatalf("opening the broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr()
}

// Kfake starts a kfake cluster of three brokers, closed when the test ends,
// and returns their addresses.
func Kfake(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Backend is one broker implementation a test runs against.
type Backend struct {
	Name  string
	Start func(t testing.TB) []string // bootstrap addresses
}

// Backends are this repo's broker, then kfake.
var Backends = []Backend{
	{"tributary", func(t testing.TB) []string { return []string{Broker(t)} }},
	{"kfake", Kfake},
}
