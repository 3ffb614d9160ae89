package taskrun

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// TestSourceStopsWritingWhenFenced: once Live reports false (the worker
// lost its membership), the runner produces nothing more and ends with
// ErrFenced.
func TestSourceStopsWritingWhenFenced(t *testing.T) {
	addr := testkafka.Broker(t)
	p := launch(t)
	ctx := context.Background()
	if _, err := p.Plugin.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{Class: "test.Source", Config: map[string]string{
		"topic": "fenced-out", "task": "0", "batch": "100",
		"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}}); err != nil {
		t.Fatal(p.Err(err))
	}
	prod := client(t, addr, kgo.RequiredAcks(kgo.AllISRAcks()))
	var live atomic.Bool
	live.Store(true)
	offs := &memOffsets{}
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		done <- RunSource(runCtx, SourceConfig{Connector: "src", Plugin: p.Plugin, PluginErr: p.Err, Producer: prod, Offsets: offs,
			OffsetFlushInterval: 50 * time.Millisecond, Live: live.Load})
	}()
	end := func() int64 {
		o, err := kadm.NewClient(prod).ListEndOffsets(ctx, "fenced-out")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		o.Each(func(l kadm.ListedOffset) { n += l.Offset })
		return n
	}
	waitFor(t, 20*time.Second, "records produced", func() bool { return end() > 1000 })
	live.Store(false)
	select {
	case err := <-done:
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("RunSource ended with %v, want ErrFenced", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fenced runner kept running")
	}
	// Nothing is produced after the runner ended (what was in flight when
	// Live turned false had already been handed to the producer).
	n := end()
	time.Sleep(300 * time.Millisecond)
	if m := end(); m != n {
		t.Fatalf("%d records produced after the runner ended", m-n)
	}
}
