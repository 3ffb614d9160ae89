package records

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestSplitProduceFranzGo runs franz-go's real producer against kfake,
// captures the records blobs of its Produce requests, and checks that
// SplitProduce accepts them and Records gives back what was produced: v2
// batches with every codec (idempotent, the kgo default), and legacy message
// sets (Produce v1 = magic 0, Produce v2 = magic 1) with every codec they
// allow, which kfake does not accept, so the test answers those requests.
func TestSplitProduceFranzGo(t *testing.T) {
	codecs := map[Compression]kgo.CompressionCodec{
		CompressionNone:   kgo.NoCompression(),
		CompressionGzip:   kgo.GzipCompression(),
		CompressionSnappy: kgo.SnappyCompression(),
		CompressionLZ4:    kgo.Lz4Compression(),
		CompressionZstd:   kgo.ZstdCompression(),
	}
	versions := []struct {
		name   string
		magic  int8
		max    *kversion.Versions
		stream bool
	}{
		{"v2", 2, nil, false},
		{"v2-streaming", 2, nil, true}, // snappy is xerial-framed then
		{"magic1", 1, kversion.V0_10_0(), false},
		{"magic0", 0, kversion.V0_9_0(), false},
	}
	for _, v := range versions {
		for _, codec := range allCodecs {
			if v.magic < 2 && codec == CompressionZstd || v.stream && codec == CompressionNone {
				continue
			}
			t.Run(v.name+"/"+codec.String(), func(t *testing.T) {
				t.Parallel()
				testFranzGoProduce(t, v.magic, v.max, v.stream, codecs[codec], codec)
			})
		}
	}
}

func testFranzGoProduce(t *testing.T, magic int8, maxVersions *kversion.Versions, stream bool, kcodec kgo.CompressionCodec, codec Compression) {
	const topic = "t"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	var (
		mu    sync.Mutex
		blobs [][]byte
	)
	cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				mu.Lock()
				blobs = append(blobs, append([]byte(nil), rp.Records...))
				mu.Unlock()
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if req.Version >= 3 {
			return nil, nil, false // kfake handles modern produce itself
		}
		return resp, nil, true
	})

	if maxVersions != nil {
		// kfake advertises Produce v3+ only; old clients that ask
		// (Kafka 0.10 has ApiVersions) are told the old versions.
		cluster.ControlKey(int16(kmsg.ApiVersions), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			cluster.KeepControl()
			resp := kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
			maxVersions.EachMaxKeyVersion(func(key, version int16) {
				k := kmsg.NewApiVersionsResponseApiKey()
				k.ApiKey, k.MaxVersion = key, version
				resp.ApiKeys = append(resp.ApiKeys, k)
			})
			return resp, nil, true
		})
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kcodec),
		kgo.ProducerLinger(50 * time.Millisecond),
	}
	if stream {
		// Small batches pile up behind the in-flight request and get
		// merged by the streaming compressor.
		opts = append(opts, kgo.StreamingCompression(), kgo.ProducerBatchMaxBytes(2048))
	}
	if maxVersions != nil {
		opts = append(opts, kgo.MaxVersions(maxVersions), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	base := time.UnixMilli(1_700_000_000_000)
	var produced []*kgo.Record
	for i := range 300 {
		r := &kgo.Record{
			Key:       []byte(fmt.Sprintf("key-%d", i%13)),
			Value:     []byte(fmt.Sprintf("value %d %s", i, "some compressible text some compressible text")),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
		switch i % 5 {
		case 1:
			r.Key = nil
		case 2:
			r.Value = nil
		case 3:
			if magic == 2 {
				r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("hv")}}
			}
		}
		produced = append(produced, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first record alone teaches the client the produce version, which
	// streaming compression waits for.
	if err := cl.ProduceSync(ctx, produced[:1]...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := cl.ProduceSync(ctx, produced[1:]...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	c := NewCodecs()
	var got []Record
	var gotTS []int64
	sawCodec, sawXerial := false, false
	mu.Lock()
	defer mu.Unlock()
	for _, blob := range blobs {
		if len(blob) > 16 && int8(blob[16]) != magic {
			t.Fatalf("franz-go sent magic %d, want %d", blob[16], magic)
		}
		batches, err := c.SplitProduce(blob, 1<<20)
		if err != nil {
			t.Fatalf("SplitProduce of a franz-go blob: %v", err)
		}
		for _, b := range batches {
			h, recs, err := c.Records(b.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if magic == 2 && (h.ProducerID < 0 || h.BaseSequence < 0) {
				t.Fatalf("idempotent batch with producer id %d, sequence %d", h.ProducerID, h.BaseSequence)
			}
			sawCodec = sawCodec || h.Compression() == codec
			sawXerial = sawXerial || codec == CompressionSnappy && string(b.Raw[HeaderSize:HeaderSize+8]) == xerialMagic
			for _, r := range recs {
				got = append(got, r)
				gotTS = append(gotTS, h.FirstTimestamp+r.TimestampDelta)
			}
		}
	}
	if !sawCodec {
		t.Fatalf("no batch with codec %v", codec)
	}
	if stream && codec == CompressionSnappy && !sawXerial {
		t.Fatalf("streaming snappy batches were not xerial-framed")
	}
	if len(got) != len(produced) {
		t.Fatalf("%d records decoded, %d produced", len(got), len(produced))
	}
	for i, p := range produced {
		r := got[i]
		wantTS := p.Timestamp.UnixMilli()
		if magic == 0 {
			wantTS = -1
		}
		if !sameBytes(r.Key, p.Key) || !sameBytes(r.Value, p.Value) || gotTS[i] != wantTS || len(r.Headers) != len(p.Headers) {
			t.Fatalf("record %d: %+v ts %d, produced key %q value %q ts %d", i, r, gotTS[i], p.Key, p.Value, wantTS)
		}
		for j, h := range p.Headers {
			if r.Headers[j].Key != h.Key || !sameBytes(r.Headers[j].Value, h.Value) {
				t.Fatalf("record %d header %d: %+v", i, j, r.Headers[j])
			}
		}
	}
}
