package perf

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestProduceConsume(t *testing.T) {
	const records = 10_000
	tests := []struct {
		name        string
		recordSize  int
		partitions  int
		acks        string
		compression string
		group       string
		consumeAll  bool // Records = 0: up to the end offsets
	}{
		{name: "idempotent 1 partition direct", recordSize: 100, partitions: 1, acks: "all"},
		{name: "3 partitions group zstd", recordSize: 1024, partitions: 3, acks: "all", compression: "zstd", group: "g1"},
		{name: "acks=1 consume to end", recordSize: 10, partitions: 2, acks: "1", consumeAll: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			brokers := newCluster(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			pc := DefaultProduceConfig()
			pc.Brokers = brokers
			pc.Topic = "t"
			pc.Records = records
			pc.RecordSize = tc.recordSize
			pc.Partitions = tc.partitions
			pc.Acks = tc.acks
			pc.Compression = tc.compression
			pr, err := Produce(ctx, pc)
			if err != nil {
				t.Fatalf("Produce: %v", err)
			}
			if pr.Records != records || pr.Bytes != int64(records*tc.recordSize) {
				t.Fatalf("produced %d records, %d bytes; want %d, %d", pr.Records, pr.Bytes, records, records*tc.recordSize)
			}
			if pr.Partitions != tc.partitions {
				t.Errorf("topic has %d partitions, want %d", pr.Partitions, tc.partitions)
			}
			if !(pr.P50 > 0 && pr.P50 <= pr.P99 && pr.P99 <= pr.P999 && pr.P999 <= pr.Max && pr.Mean > 0 && pr.Mean <= pr.Max) {
				t.Errorf("latencies not ordered: %v", pr)
			}
			if pr.Max > pr.Elapsed+time.Millisecond {
				t.Errorf("max latency %v exceeds the run's %v", pr.Max, pr.Elapsed)
			}
			if pr.RecordsPerSec <= 0 || pr.MBPerSec <= 0 {
				t.Errorf("rates not positive: %v", pr)
			}

			cc := DefaultConsumeConfig()
			cc.Brokers = brokers
			cc.Topic = "t"
			cc.Group = tc.group
			if !tc.consumeAll {
				cc.Records = records
			}
			cr, err := Consume(ctx, cc)
			if err != nil {
				t.Fatalf("Consume: %v", err)
			}
			if cr.Records != records || cr.Bytes != int64(records*tc.recordSize) {
				t.Fatalf("consumed %d records, %d bytes; want %d, %d", cr.Records, cr.Bytes, records, records*tc.recordSize)
			}
			if cr.RecordsPerSec <= 0 || cr.MBPerSec <= 0 {
				t.Errorf("rates not positive: %v", cr)
			}
		})
	}
}

func TestProduceFailureFailsRun(t *testing.T) {
	brokers := newCluster(t)
	pc := DefaultProduceConfig()
	pc.Brokers = brokers
	pc.Topic = "t"
	pc.Records = 100
	pc.RecordSize = 2000
	pc.BatchMaxBytes = 1024 // every record is too large for a batch
	_, err := Produce(context.Background(), pc)
	if !errors.Is(err, ErrProduceFailed) || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("err = %v, want ErrProduceFailed wrapping MESSAGE_TOO_LARGE", err)
	}
}

func TestConsumeIdleTimeout(t *testing.T) {
	brokers := newCluster(t)
	pc := DefaultProduceConfig()
	pc.Brokers, pc.Topic, pc.Records = brokers, "t", 10
	if _, err := Produce(context.Background(), pc); err != nil {
		t.Fatal(err)
	}
	cc := DefaultConsumeConfig()
	cc.Brokers, cc.Topic, cc.Records = brokers, "t", 20
	cc.IdleTimeout = 300 * time.Millisecond
	res, err := Consume(context.Background(), cc)
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("err = %v, want ErrIdle", err)
	}
	if res.Records != 10 {
		t.Errorf("partial result has %d records, want 10", res.Records)
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultProduceConfig()
	ok.Brokers = []string{"127.0.0.1:9092"}
	tests := []struct {
		name  string
		edit  func(*ProduceConfig)
		field string // empty: valid
		check func(ProduceConfig) bool
	}{
		{name: "defaults", edit: func(*ProduceConfig) {}},
		{name: "no brokers", edit: func(c *ProduceConfig) { c.Brokers = nil }, field: "Brokers"},
		{name: "no topic", edit: func(c *ProduceConfig) { c.Topic = "" }, field: "Topic"},
		{name: "zero records", edit: func(c *ProduceConfig) { c.Records = 0 }, field: "Records"},
		{name: "bad acks", edit: func(c *ProduceConfig) { c.Acks = "2" }, field: "Acks"},
		{name: "bad compression", edit: func(c *ProduceConfig) { c.Compression = "brotli" }, field: "Compression"},
		{name: "tiny batch", edit: func(c *ProduceConfig) { c.BatchMaxBytes = 100 }, field: "BatchMaxBytes"},
		{name: "acks=1 turns idempotence off", edit: func(c *ProduceConfig) { c.Acks = "1" },
			check: func(c ProduceConfig) bool { return !c.Idempotent }},
		{name: "zero values get defaults", edit: func(c *ProduceConfig) {
			*c = ProduceConfig{Brokers: c.Brokers, Topic: "x", Records: 1}
		}, check: func(c ProduceConfig) bool {
			return c.RecordSize == 100 && c.Acks == "all" && c.Compression == "none" && c.BatchMaxBytes == mib &&
				c.Partitions == 1 && c.MaxBufferedRecords >= 10_000
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			got, err := c.Validate()
			if tc.field != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil && !tc.check(got) {
				t.Errorf("normalized config wrong: %+v", got)
			}
		})
	}
	if _, err := (ConsumeConfig{Brokers: ok.Brokers}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("consume config without topic: err = %v", err)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
	}{
		{name: "single", samples: []time.Duration{1234 * time.Microsecond}},
		{name: "small values", samples: []time.Duration{0, 1, 2, 3, 50, 127, 128, 129}},
		{name: "uniform", samples: func() []time.Duration {
			r := rand.New(rand.NewPCG(3, 4))
			s := make([]time.Duration, 100_000)
			for i := range s {
				s[i] = time.Duration(r.Int64N(int64(50 * time.Millisecond)))
			}
			return s
		}()},
		{name: "heavy tail", samples: func() []time.Duration {
			r := rand.New(rand.NewPCG(5, 6))
			s := make([]time.Duration, 50_000)
			for i := range s {
				s[i] = time.Duration(r.ExpFloat64() * float64(time.Millisecond))
			}
			s[0] = time.Hour
			return s
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, d := range tc.samples {
				h.record(d)
			}
			sorted := slices.Clone(tc.samples)
			slices.Sort(sorted)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				idx := int(q*float64(len(sorted))+0.999999) - 1
				want := sorted[max(idx, 0)]
				got := h.quantile(q)
				diff := got - want
				if diff < 0 {
					diff = -diff
				}
				if float64(diff) > 0.01*float64(want)+1 {
					t.Errorf("q%v = %v, want %v within 1%%", q, got, want)
				}
			}
			if time.Duration(h.max) != sorted[len(sorted)-1] {
				t.Errorf("max = %v, want %v", time.Duration(h.max), sorted[len(sorted)-1])
			}
		})
	}
}

func TestHistogramBucketsContiguous(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1 << 20, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		i := bucketOf(v)
		if i < prev || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d (prev %d, buckets %d)", v, i, prev, numBuckets)
		}
		prev = i
		mid := bucketMid(i)
		if bucketOf(mid) != i {
			t.Errorf("bucketMid(%d) = %d lies in bucket %d", i, mid, bucketOf(mid))
		}
	}
}
