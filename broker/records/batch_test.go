package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBuildRecordsRoundTrip(t *testing.T) {
	c := NewCodecs()
	sets := map[string][]Record{
		"one":  {{Key: []byte("k"), Value: []byte("v")}},
		"null": {{}},
		"many": testRecords(500, 100),
		"negative ts delta": {
			{OffsetDelta: 0, TimestampDelta: 0, Value: []byte("a")},
			{OffsetDelta: 1, TimestampDelta: -5000, Value: []byte("b")},
		},
	}
	for name, recs := range sets {
		for _, codec := range allCodecs {
			t.Run(codec.String()+"/"+name, func(t *testing.T) {
				h := freshHeader(codec)
				h.BaseOffset = 1234
				h.ProducerID, h.ProducerEpoch, h.BaseSequence = 77, 3, 1000
				b := mustBuild(t, c, h, recs)
				requireErr(t, VerifyCRC(b), nil)
				got, out, err := c.Records(b)
				requireErr(t, err, nil)
				sameRecords(t, out, recs)
				if got.Size() != len(b) || got.NumRecords != int32(len(recs)) ||
					got.LastOffsetDelta != int32(len(recs)-1) || got.Compression() != codec ||
					got.BaseOffset != 1234 || got.ProducerID != 77 || got.ProducerEpoch != 3 ||
					got.BaseSequence != 1000 || got.FirstTimestamp != h.FirstTimestamp {
					t.Fatalf("header %+v", got)
				}
				var maxTS int64
				for i, r := range recs {
					if ts := h.FirstTimestamp + r.TimestampDelta; i == 0 || ts > maxTS {
						maxTS = ts
					}
				}
				if got.MaxTimestamp != maxTS {
					t.Fatalf("max timestamp %d, want %d", got.MaxTimestamp, maxTS)
				}
			})
		}
	}
}

// TestBuildMatchesKmsg checks Build's encoding byte for byte against a batch
// laid out with kmsg.RecordBatch and kmsg.Record as franz-go does.
func TestBuildMatchesKmsg(t *testing.T) {
	c := NewCodecs()
	recs := testRecords(50, 30)
	want := kmsgBatch(recs, 1_700_000_000_000)
	got := mustBuild(t, c, freshHeader(CompressionNone), recs)
	if !bytes.Equal(got, want) {
		t.Fatalf("Build differs from the kmsg encoding:\n got %x\nwant %x", got[:80], want[:80])
	}
	// kmsg decodes what Build wrote.
	var rb kmsg.RecordBatch
	requireErr(t, rb.ReadFrom(got), nil)
	if rb.NumRecords != 50 || rb.Magic != 2 {
		t.Fatalf("kmsg read %+v", rb)
	}
}

func TestBuildKeepsOffsetSpan(t *testing.T) {
	c := NewCodecs()
	h := freshHeader(CompressionLZ4)
	h.LastOffsetDelta = 9 // the original batch held offsets 0..9
	h.MaxTimestamp = 42
	recs := []Record{{OffsetDelta: 2, Value: []byte("x")}, {OffsetDelta: 5, TimestampDelta: 7, Value: []byte("y")}}
	b := mustBuild(t, c, h, recs)
	got, out, err := c.Records(b)
	requireErr(t, err, nil)
	sameRecords(t, out, recs)
	if got.LastOffsetDelta != 9 || got.NumRecords != 2 || got.MaxTimestamp != h.FirstTimestamp+7 {
		t.Fatalf("header %+v", got)
	}
	// A compacted-away batch: no records, span and timestamp kept.
	b = mustBuild(t, c, h, nil)
	got, out, err = c.Records(b)
	requireErr(t, err, nil)
	if len(out) != 0 || got.LastOffsetDelta != 9 || got.NumRecords != 0 || got.MaxTimestamp != 42 {
		t.Fatalf("empty batch header %+v, %d records", got, len(out))
	}
	// LogAppendTime batches keep the header's MaxTimestamp.
	h.Attributes |= AttrLogAppendTime
	got, _, err = c.Records(mustBuild(t, c, h, recs))
	requireErr(t, err, nil)
	if got.MaxTimestamp != 42 {
		t.Fatalf("LogAppendTime max timestamp %d", got.MaxTimestamp)
	}
}

func TestBuildErrors(t *testing.T) {
	c := NewCodecs()
	for name, tc := range map[string]struct {
		h    BatchHeader
		recs []Record
		want error
	}{
		"unordered":    {freshHeader(0), []Record{{OffsetDelta: 1}, {OffsetDelta: 1}}, ErrInvalid},
		"negative":     {freshHeader(0), []Record{{OffsetDelta: -1}}, ErrInvalid},
		"bad codec":    {freshHeader(5), []Record{{}}, ErrUnsupportedCompression},
		"decreasing":   {freshHeader(0), []Record{{OffsetDelta: 3}, {OffsetDelta: 2}}, ErrInvalid},
		"control ok":   {BatchHeader{Attributes: AttrControl | AttrTransactional, ProducerID: 5}, []Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}}, nil},
		"zstd allowed": {freshHeader(CompressionZstd), []Record{{}}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Build(tc.h, tc.recs)
			requireErr(t, err, tc.want)
		})
	}
}

func TestForEachBatch(t *testing.T) {
	c := NewCodecs()
	var chunk []byte
	for i, codec := range []Compression{CompressionNone, CompressionSnappy, CompressionZstd} {
		h := freshHeader(codec)
		h.BaseOffset = int64(i * 10)
		chunk = append(chunk, mustBuild(t, c, h, testRecords(10, 10))...)
	}
	whole := len(chunk)
	next := mustBuild(t, c, freshHeader(0), testRecords(3, 3))
	for cut := 0; cut < len(next); cut += 7 { // every partial tail is ignored
		var offsets []int64
		err := ForEachBatch(append(chunk[:whole:whole], next[:cut]...), func(b Batch) error {
			requireErr(t, VerifyCRC(b.Raw), nil)
			if len(b.Raw) != b.Header.Size() || cap(b.Raw) != len(b.Raw) {
				t.Fatalf("raw of %d bytes (cap %d) for size %d", len(b.Raw), cap(b.Raw), b.Header.Size())
			}
			offsets = append(offsets, b.Header.BaseOffset)
			return nil
		})
		requireErr(t, err, nil)
		if len(offsets) != 3 || offsets[2] != 20 {
			t.Fatalf("cut %d: offsets %v", cut, offsets)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := ForEachBatch(chunk, func(Batch) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("fn error not returned as is: %v after %d", err, n)
	}
	bad := append([]byte(nil), chunk...)
	binary.BigEndian.PutUint32(bad[8:], 10) // length shorter than a header
	requireErr(t, ForEachBatch(bad, func(Batch) error { return nil }), ErrCorrupt)
	bad[16] = 1
	requireErr(t, ForEachBatch(bad, func(Batch) error { return nil }), ErrInvalid)
}

func TestRecordsErrors(t *testing.T) {
	c := NewCodecs()
	good := mustBuild(t, c, freshHeader(0), testRecords(5, 10))
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	setCount := func(n uint32) []byte {
		return mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], n); return b })
	}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"truncated":       {good[:len(good)-1], ErrShort},
		"too few records": {setCount(6), ErrCorrupt},
		"extra bytes":     {setCount(4), ErrCorrupt},
		"negative count":  {setCount(0xffffffff), ErrCorrupt},
		"huge count":      {setCount(0x7fffffff), ErrCorrupt},
		"bad record len": {mutate(func(b []byte) []byte {
			b[HeaderSize] = 0x7f // first record's length varint
			return b
		}), ErrCorrupt},
		"garbage compressed": {mutate(func(b []byte) []byte {
			b[22] |= byte(CompressionGzip)
			return b
		}), ErrCorrupt},
		"magic": {mutate(func(b []byte) []byte { b[16] = 1; return b }), ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := c.Records(tc.b)
			requireErr(t, err, tc.want)
		})
	}
}

func TestRecordsControlBatch(t *testing.T) {
	c := NewCodecs()
	key := (&kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeCommit}).AppendTo(nil)
	val := (&kmsg.EndTxnMarker{CoordinatorEpoch: 7}).AppendTo(nil)
	h := BatchHeader{BaseOffset: 100, Attributes: AttrControl | AttrTransactional, ProducerID: 9, ProducerEpoch: 1, BaseSequence: -1, FirstTimestamp: 5}
	b := mustBuild(t, c, h, []Record{{Key: key, Value: val}})
	got, recs, err := c.Records(b)
	requireErr(t, err, nil)
	if !got.IsControl() || !got.IsTransactional() || len(recs) != 1 {
		t.Fatalf("header %+v, %d records", got, len(recs))
	}
	var k kmsg.ControlRecordKey
	requireErr(t, k.ReadFrom(recs[0].Key), nil)
	var m kmsg.EndTxnMarker
	requireErr(t, m.ReadFrom(recs[0].Value), nil)
	if k.Type != kmsg.ControlRecordKeyTypeCommit || m.CoordinatorEpoch != 7 {
		t.Fatalf("control record %+v %+v", k, m)
	}
}

func TestVarints(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 63, -64, 64, 1 << 20, -1 << 20, 1<<31 - 1, -1 << 31} {
		b := binary.AppendVarint(nil, int64(v))
		if len(b) != varintLen(v) {
			t.Fatalf("varintLen(%d) = %d, want %d", v, varintLen(v), len(b))
		}
		u, n := uvarint32(b)
		if n != len(b) || zigzag32(u) != v {
			t.Fatalf("uvarint32 of %d: %d, %d", v, zigzag32(u), n)
		}
	}
	for _, v := range []int64{0, -1, 1 << 40, -1 << 63, 1<<63 - 1} {
		b := binary.AppendVarint(nil, v)
		if len(b) != varlongLen(v) {
			t.Fatalf("varlongLen(%d) = %d, want %d", v, varlongLen(v), len(b))
		}
		u, n := uvarint64(b)
		if n != len(b) || int64(u>>1)^-int64(u&1) != v {
			t.Fatalf("uvarint64 of %d", v)
		}
	}
	// Overlong and out-of-range encodings are rejected as kmsg rejects them.
	if _, n := uvarint32([]byte{0xff, 0xff, 0xff, 0xff, 0x10}); n > 0 {
		t.Fatalf("accepted a 33-bit varint")
	}
	if _, n := uvarint32([]byte{0x80, 0x80}); n != 0 {
		t.Fatalf("truncated varint: n = %d", n)
	}
}
