package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var allCodecs = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}

// testRecords returns n records with varied keys, values and headers,
// including a null key, a tombstone and an empty value.
func testRecords(n, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{
			OffsetDelta:    int32(i),
			TimestampDelta: int64(i * 3),
			Key:            []byte(fmt.Sprintf("key-%d", i%97)),
			Value:          bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
		}
		switch i % 7 {
		case 1:
			r.Key = nil
		case 2:
			r.Value = nil // tombstone
		case 3:
			r.Value = []byte{}
		case 4:
			r.Headers = []kmsg.Header{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}}
		}
		recs[i] = r
	}
	return recs
}

// freshHeader is a header template for a new batch with the given codec.
func freshHeader(codec Compression) BatchHeader {
	return BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           int16(codec),
		FirstTimestamp:       1_700_000_000_000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
}

func mustBuild(t testing.TB, c *Codecs, h BatchHeader, recs []Record) []byte {
	t.Helper()
	b, err := c.Build(h, recs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

// kmsgBatch encodes an uncompressed v2 batch the way franz-go's producer
// lays it out, with kmsg.RecordBatch and kmsg.Record only.
func kmsgBatch(recs []Record, firstTS int64) []byte {
	var payload []byte
	for _, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      r.OffsetDelta,
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		body := kr.AppendTo(nil)[1:] // encoded with Length 0 (one byte): drop it
		kr.Length = int32(len(body))
		payload = kr.AppendTo(payload)
	}
	rb := kmsg.RecordBatch{
		Length:               int32(49 + len(payload)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       firstTS,
		MaxTimestamp:         firstTS + recs[len(recs)-1].TimestampDelta,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              payload,
	}
	b := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

// legacyMessage encodes one magic 0 or 1 message with kmsg, CRC included.
func legacyMsg(magic int8, attrs int8, offset, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, MessageSize: int32(14 + len(key) + len(value)), Attributes: attrs, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, MessageSize: int32(22 + len(key) + len(value)), Magic: 1, Attributes: attrs, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b
}

func requireErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func sameRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.OffsetDelta != w.OffsetDelta || g.TimestampDelta != w.TimestampDelta {
			t.Fatalf("record %d: offset/ts delta %d/%d, want %d/%d", i, g.OffsetDelta, g.TimestampDelta, w.OffsetDelta, w.TimestampDelta)
		}
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Fatalf("record %d: key/value %q/%q (nil %v/%v), want %q/%q (nil %v/%v)", i,
				g.Key, g.Value, g.Key == nil, g.Value == nil, w.Key, w.Value, w.Key == nil, w.Value == nil)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

// sameBytes compares contents and nullness.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
