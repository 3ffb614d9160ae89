package taskrun

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/internal/testkafka"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

func TestDecompressPool(t *testing.T) {
	var dp decompressPool
	plain := bytes.Repeat([]byte("a JSON record with its schema "), 1000)
	block := s2.EncodeSnappy(nil, plain)

	// A snappy block states its decoded size: the buffer fits it exactly
	// (plus a little room).
	b := dp.GetDecompressBytes(block, kgo.CodecSnappy)
	if len(b) != 0 || cap(b) < len(plain) || cap(b) > len(plain)+len(plain)/8 {
		t.Fatalf("snappy: len %d cap %d for %d decoded bytes", len(b), cap(b), len(plain))
	}
	out, err := s2.Decode(b, block)
	if err != nil || !bytes.Equal(out, plain) || &out[0] != &b[:1][0] {
		t.Fatalf("decoding into the pooled buffer: %v", err)
	}
	dp.PutDecompressBytes(out)

	// Given back, it serves the next batch that fits (a sync.Pool may drop
	// it, so try a few times).
	reused := false
	for range 10 {
		b2 := dp.GetDecompressBytes(block, kgo.CodecSnappy)
		if cap(b2) > 0 && &b2[:1][0] == &out[0] {
			reused = true
			break
		}
		dp.PutDecompressBytes(b2)
	}
	if !reused {
		t.Error("the buffer given back was never reused")
	}

	// Other codecs get a guess; a buffer too small for a batch is not
	// handed out, and huge ones are not kept.
	if b := dp.GetDecompressBytes(make([]byte, 1000), kgo.CodecZstd); len(b) != 0 || cap(b) < 4000 {
		t.Fatalf("zstd guess: len %d cap %d", len(b), cap(b))
	}
	dp.PutDecompressBytes(make([]byte, 10))
	if b := dp.GetDecompressBytes(block, kgo.CodecSnappy); cap(b) < len(plain) {
		t.Fatalf("a buffer of %d bytes handed out for %d", cap(b), len(plain))
	}
	dp.PutDecompressBytes(make([]byte, 0, maxPooledDecompress+1))
	if b := dp.GetDecompressBytes(nil, kgo.CodecLz4); cap(b) > maxPooledDecompress {
		t.Fatal("a buffer over the limit was kept")
	}
}

// Records consumed from compressed batches reach the plugin intact while
// their decompression buffers are recycled batch after batch.
func TestSinkRunnerRecyclesDecompressionBuffers(t *testing.T) {
	addr := testkafka.Broker(t)
	const n = 20_000
	prod := client(t, addr, kgo.ProducerBatchCompression(kgo.SnappyCompression()), kgo.ProducerBatchMaxBytes(16<<10))
	pad := strings.Repeat("x", 100)
	for i := range n {
		prod.Produce(context.Background(), &kgo.Record{Topic: "recycle-in", Key: []byte(fmt.Sprint(i)), Value: fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, pad)}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := launch(t)
	out := filepath.Join(t.TempDir(), "out.txt")
	ctx := context.Background()
	if _, err := p.Plugin.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "test.Sink", Config: map[string]string{
		"topic": "x", "file": out,
		"key.converter": "org.apache.kafka.connect.storage.StringConverter", "value.converter.schemas.enable": "false",
	}}); err != nil {
		t.Fatal(p.Err(err))
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunSink(runCtx, SinkConfig{Connector: "rc", Plugin: p.Plugin, PluginErr: p.Err, Brokers: []string{addr}, Group: "connect-rc",
			Topics: []string{"recycle-in"}, Producer: prod, OffsetFlushInterval: 50 * time.Millisecond, MaxPollRecords: 500})
	}()
	adm := kadm.NewClient(client(t, addr))
	waitFor(t, 60*time.Second, "commits to reach the end", func() bool {
		o, err := adm.FetchOffsets(ctx, "connect-rc")
		if err != nil {
			return false
		}
		c, ok := o.Lookup("recycle-in", 0)
		return ok && c.At == n
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		want := fmt.Sprintf("recycle-in/0@%d %d=map[i:%d pad:%s]", i, i, i, pad)
		if sc.Text() != want {
			t.Fatalf("line %d: %q\nwant %q", i, sc.Text(), want)
		}
		i++
	}
	if i != n {
		t.Fatalf("sink wrote %d records, want %d", i, n)
	}
}
