package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/tributary-data/tributary/broker/records"
)

func TestProduceConsumeEveryCodec(t *testing.T) {
	b := startBroker(t, "")
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			createTopic(t, b.Addr(), topic, 3, nil)
			p := newClient(t, b.Addr(), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			const n = 3000
			var recs []*kgo.Record
			for i := 0; i < n; i++ {
				recs = append(recs, &kgo.Record{
					Key:     []byte(fmt.Sprintf("k%d", i%50)),
					Value:   bytes.Repeat([]byte{byte('a' + i%26)}, 100+i%300),
					Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}},
				})
			}
			if err := p.ProduceSync(testCtx(t, 20*time.Second), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, b.Addr(), topic, n)
			if len(got) != n {
				t.Fatalf("got %d records, want %d", len(got), n)
			}
			seen := map[string]bool{}
			for _, r := range got {
				i := string(r.Headers[0].Value)
				var idx int
				fmt.Sscan(i, &idx)
				if want := recs[idx]; !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) {
					t.Fatalf("record %d differs", idx)
				}
				seen[i] = true
			}
			if len(seen) != n {
				t.Fatalf("%d distinct records, want %d", len(seen), n)
			}
		})
	}
}

// Old clients: kgo capped at the versions of Kafka 0.9 (Produce v1 / Fetch v1:
// magic 0 message sets) and 0.10.2 (Produce v2 / Fetch v3: magic 1).
func TestLegacyMessageFormats(t *testing.T) {
	b := startBroker(t, "")
	for _, tc := range []struct {
		name string
		v    *kversion.Versions
	}{
		{"kafka-0.9-magic0", kversion.V0_9_0()},
		{"kafka-0.10.2-magic1", kversion.V0_10_2()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "legacy-" + tc.name
			createTopic(t, b.Addr(), topic, 1, nil)
			for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression()} {
				p := newClient(t, b.Addr(), kgo.MaxVersions(tc.v), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()))
				var recs []*kgo.Record
				for i := 0; i < 200; i++ {
					recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i))})
				}
				if err := p.ProduceSync(testCtx(t, 20*time.Second), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			// An old fetcher gets down-converted message sets; a new one the stored batches.
			for _, fetcher := range []*kversion.Versions{tc.v, kversion.Stable()} {
				got := consumeAll(t, b.Addr(), topic, 600, kgo.MaxVersions(fetcher))
				if len(got) != 600 {
					t.Fatalf("got %d, want 600", len(got))
				}
				for i, r := range got {
					if r.Offset != int64(i) {
						t.Fatalf("record %d has offset %d", i, r.Offset)
					}
					if want := fmt.Sprintf("value-%d", i%200); string(r.Value) != want {
						t.Fatalf("record %d = %q, want %q", i, r.Value, want)
					}
				}
			}
		})
	}
}

// rawProduce sends one Produce request with the given records blob.
func rawProduce(t *testing.T, cl *kgo.Client, topic string, blob []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = blob
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// batch builds a v2 batch with the given producer id/epoch/sequence.
func batch(pid int64, epoch int16, seq int32, values ...string) []byte {
	now := time.Now().UnixMilli()
	h := records.BatchHeader{Magic: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, FirstTimestamp: now, MaxTimestamp: now}
	var recs []records.Record
	for i, v := range values {
		recs = append(recs, records.Record{OffsetDelta: int32(i), Key: []byte(v), Value: []byte(v)})
	}
	raw, err := records.NewCodecs().Build(h, recs)
	if err != nil {
		panic(err)
	}
	return raw
}

func TestIdempotentProducerDedupAndGaps(t *testing.T) {
	b := startBroker(t, "")
	createTopic(t, b.Addr(), "idem", 1, nil)
	cl := newClient(t, b.Addr())
	ipReq := kmsg.NewPtrInitProducerIDRequest()
	ipResp, err := ipReq.RequestWith(testCtx(t, 5*time.Second), cl)
	if err != nil || ipResp.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ipResp.ErrorCode)
	}
	pid, epoch := ipResp.ProducerID, ipResp.ProducerEpoch

	first := rawProduce(t, cl, "idem", batch(pid, epoch, 0, "a", "b", "c"))
	if first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first produce: code %d base %d", first.ErrorCode, first.BaseOffset)
	}
	second := rawProduce(t, cl, "idem", batch(pid, epoch, 3, "d"))
	if second.ErrorCode != 0 || second.BaseOffset != 3 {
		t.Fatalf("second produce: code %d base %d", second.ErrorCode, second.BaseOffset)
	}
	// A retry of the first batch is acknowledged with its original offset and not written again.
	retry := rawProduce(t, cl, "idem", batch(pid, epoch, 0, "a", "b", "c"))
	if retry.ErrorCode != 0 || retry.BaseOffset != 0 {
		t.Fatalf("retried produce: code %d base %d, want 0 and base 0", retry.ErrorCode, retry.BaseOffset)
	}
	// A gap in sequences is refused.
	gap := rawProduce(t, cl, "idem", batch(pid, epoch, 10, "x"))
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", gap.ErrorCode)
	}
	got := consumeAll(t, b.Addr(), "idem", 4)
	if len(got) != 4 || string(got[3].Value) != "d" {
		t.Fatalf("log holds %d records, want exactly a b c d", len(got))
	}
	lo := listOffset(t, cl, "idem", -1)
	if lo != 4 {
		t.Fatalf("high watermark %d, want 4 (no duplicate written)", lo)
	}
}

func listOffset(t *testing.T, cl *kgo.Client, topic string, ts int64) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

func TestProduceBadInput(t *testing.T) {
	b := startBroker(t, "", "message.max.bytes", "2000")
	createTopic(t, b.Addr(), "bad", 1, nil)
	cl := newClient(t, b.Addr())

	good := batch(-1, -1, -1, "ok")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	if p := rawProduce(t, cl, "bad", corrupt); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("bad CRC: code %d, want CORRUPT_MESSAGE", p.ErrorCode)
	}
	big := batch(-1, -1, -1, string(bytes.Repeat([]byte("x"), 5000)))
	if p := rawProduce(t, cl, "bad", big); p.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("big batch: code %d, want MESSAGE_TOO_LARGE", p.ErrorCode)
	}
	if p := rawProduce(t, cl, "bad", good[:len(good)-3]); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("truncated batch: code %d, want CORRUPT_MESSAGE", p.ErrorCode)
	}
	if p := rawProduce(t, cl, "no-such-topic", good); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: code %d, want UNKNOWN_TOPIC_OR_PARTITION", p.ErrorCode)
	}
	// Compacted topics need keys.
	createTopic(t, b.Addr(), "bad-compacted", 1, map[string]*string{"cleanup.policy": strp("compact")})
	keyless, _ := records.NewCodecs().Build(records.BatchHeader{Magic: 2, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []records.Record{{Value: []byte("no key")}})
	if p := rawProduce(t, cl, "bad-compacted", keyless); p.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("keyless record on compacted topic: code %d, want INVALID_RECORD", p.ErrorCode)
	}
	// After all that, the good batch still goes in and nothing bad was stored.
	if p := rawProduce(t, cl, "bad", good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("good batch: code %d base %d", p.ErrorCode, p.BaseOffset)
	}
}

func TestLogAppendTime(t *testing.T) {
	b := startBroker(t, "")
	createTopic(t, b.Addr(), "lat", 1, map[string]*string{"message.timestamp.type": strp("LogAppendTime")})
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("lat"))
	old := time.Now().Add(-48 * time.Hour)
	if err := p.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Value: []byte("v"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, b.Addr(), "lat", 1)
	if time.Since(got[0].Timestamp) > time.Minute || got[0].Attrs.TimestampType() != 1 {
		t.Fatalf("timestamp %v type %d, want the broker's append time", got[0].Timestamp, got[0].Attrs.TimestampType())
	}
}
