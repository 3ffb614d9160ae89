package commitlog

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/tributary-data/tributary/broker/records"
)

// BenchmarkAppendDurable: 4 concurrent appenders, each appending a 1 MiB
// batch of 100-byte records and waiting for its durability (acks=all).
// MB/s is the durable append throughput.
func BenchmarkAppendDurable(b *testing.B) {
	const appenders = 4
	const recordSize = 100
	recs := make([]records.Record, 0, 1<<20/recordSize)
	for i := range cap(recs) {
		recs = append(recs, records.Record{OffsetDelta: int32(i), Value: bytes.Repeat([]byte{byte(i)}, recordSize)})
	}
	h := records.BatchHeader{FirstTimestamp: baseTS, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	tmpl, err := testCodecs.Build(h, recs)
	if err != nil {
		b.Fatal(err)
	}
	l, err := Open(b.TempDir(), DefaultConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(int64(len(tmpl)))
	b.ResetTimer()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	per := (b.N + appenders - 1) / appenders
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Append keeps no reference to a batch once it returns (it only
			// sets the header's base offset), so each appender reuses one.
			raw := bytes.Clone(tmpl)
			for range per {
				res, err := l.Append([]records.Batch{{Raw: raw}})
				if err == nil {
					err = l.WaitDurable(context.Background(), res.LastOffset+1)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}
