package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// fuzzCodecs bounds decompression low so that compression bombs stay cheap.
func fuzzCodecs() *Codecs { return &Codecs{MaxDecompressedBytes: 1 << 20} }

func isSentinel(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge)
}

// fuzzSeeds returns valid v2 batches and legacy message sets.
func fuzzSeeds(t testing.TB) [][]byte {
	c := NewCodecs()
	var seeds [][]byte
	for _, codec := range allCodecs {
		seeds = append(seeds, mustBuild(t, c, freshHeader(codec), testRecords(8, 10)))
	}
	two := append(mustBuild(t, c, freshHeader(0), testRecords(2, 3)), mustBuild(t, c, freshHeader(CompressionLZ4), testRecords(3, 3))...)
	seeds = append(seeds, two)
	for _, magic := range []int8{0, 1} {
		set := append(legacyMsg(magic, 0, 0, 10, []byte("k"), []byte("v")), legacyMsg(magic, 0, 1, 11, nil, []byte("w"))...)
		seeds = append(seeds, set)
		for _, codec := range []Compression{CompressionGzip, CompressionSnappy, CompressionLZ4} {
			comp, err := c.Compress(nil, codec, set)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, legacyMsg(magic, int8(codec), 1, 12, nil, comp))
		}
	}
	return seeds
}

func FuzzSplitProduce(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, int32(0), true)
		f.Add(s, int32(len(s)-i%2), false)
	}
	c := fuzzCodecs()
	f.Fuzz(func(t *testing.T, blob []byte, maxBytes int32, fixCRCs bool) {
		if fixCRCs {
			// Mutations nearly always break a checksum first; repairing
			// them lets the fuzzer reach the record checks.
			fixChecksums(blob)
		}
		isV2 := len(blob) > 16 && blob[16] == 2
		batches, err := c.SplitProduce(blob, int(maxBytes))
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			if batches != nil {
				t.Fatalf("batches with an error")
			}
			return
		}
		for i, b := range batches {
			if err := VerifyCRC(b.Raw); err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
			h, err := ParseHeader(b.Raw)
			if err != nil || h != b.Header || len(b.Raw) != h.Size() {
				t.Fatalf("batch %d: header %+v vs %+v (%v), %d raw bytes", i, h, b.Header, err, len(b.Raw))
			}
			if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 || h.IsControl() {
				t.Fatalf("batch %d: accepted header %+v", i, h)
			}
			if isV2 && maxBytes > 0 && h.Size() > int(maxBytes) {
				t.Fatalf("batch %d of %d bytes over max %d", i, h.Size(), maxBytes)
			}
			_, recs, err := c.Records(b.Raw)
			if err != nil {
				t.Fatalf("accepted batch %d does not decode: %v", i, err)
			}
			if len(recs) != int(h.NumRecords) {
				t.Fatalf("batch %d: %d records, header says %d", i, len(recs), h.NumRecords)
			}
			for j, r := range recs {
				if r.OffsetDelta != int32(j) {
					t.Fatalf("batch %d record %d: offset delta %d", i, j, r.OffsetDelta)
				}
			}
		}
	})
}

// fixChecksums recomputes, in place, the CRC of each whole top-level v2 batch
// or legacy message of blob.
func fixChecksums(blob []byte) {
	for len(blob) >= LengthOffset+5 {
		size := entrySize(blob)
		if size < LengthOffset+5 || size > int64(len(blob)) {
			return
		}
		switch blob[16] {
		case 2:
			if size >= HeaderSize {
				SetCRC(blob)
			}
		case 0, 1:
			binary.BigEndian.PutUint32(blob[12:], crc32.ChecksumIEEE(blob[16:size]))
		}
		blob = blob[size:]
	}
}

func FuzzRecords(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) > 16 && s[16] == 2 {
			f.Add(s)
		}
	}
	c := fuzzCodecs()
	f.Fuzz(func(t *testing.T, b []byte) {
		h, recs, err := c.Records(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if int(h.NumRecords) != len(recs) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		// What decodes re-encodes to the same records, when Build accepts
		// their offsets.
		rebuilt, err := c.Build(h, recs)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Build: %v", err)
			}
			return
		}
		h2, recs2, err := c.Records(rebuilt)
		if err != nil {
			t.Fatalf("rebuilt batch does not decode: %v", err)
		}
		if err := VerifyCRC(rebuilt); err != nil {
			t.Fatal(err)
		}
		if h2.NumRecords != h.NumRecords || h2.Attributes != h.Attributes || h2.FirstTimestamp != h.FirstTimestamp {
			t.Fatalf("rebuilt header %+v from %+v", h2, h)
		}
		sameRecords(t, recs2, recs)
	})
}

func FuzzDownConvert(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) > 16 && s[16] == 2 {
			f.Add(s, false)
			f.Add(s, true)
		}
	}
	c := fuzzCodecs()
	f.Fuzz(func(t *testing.T, chunk []byte, v1 bool) {
		magic := int8(0)
		if v1 {
			magic = 1
		}
		out, err := c.DownConvert(chunk, magic)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		for len(out) > 0 {
			if len(out) < LengthOffset+5 {
				t.Fatalf("%d trailing bytes", len(out))
			}
			m, n, err := parseLegacy(out)
			if err != nil || m.magic != magic || m.attrs&legacyCodecMask != 0 {
				t.Fatalf("bad message %+v: %v", m, err)
			}
			out = out[n:]
		}
	})
}

// benchBatch returns a ~1 MiB v2 batch of 100-byte records with realistic,
// moderately compressible values.
func benchBatch(b *testing.B, c *Codecs, codec Compression) ([]byte, int, int) {
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"alpha", "beta", "gamma", "delta", "user", "order", "id", "status", "ok", "amount", "\"", ":", ","}
	var recs []Record
	raw := 0
	for raw < 1<<20 {
		v := make([]byte, 0, 100)
		for len(v) < 100 {
			if rng.IntN(4) == 0 {
				v = fmt.Appendf(v, "%d", rng.Uint32())
			} else {
				v = append(v, words[rng.IntN(len(words))]...)
			}
		}
		v = v[:100]
		recs = append(recs, Record{OffsetDelta: int32(len(recs)), Key: fmt.Appendf(nil, "k%d", len(recs)), Value: v})
		raw += 100 + 8
	}
	h := freshHeader(codec)
	h.ProducerID, h.BaseSequence = 1, 0
	return mustBuild(b, c, h, recs), len(recs), raw
}

// BenchmarkSplitProduce measures produce validation of one ~1 MiB batch of
// 100-byte records. MB/s is relative to the uncompressed record bytes.
func BenchmarkSplitProduce(b *testing.B) {
	for _, tc := range []struct {
		name    string
		codec   Compression
		shallow bool
	}{
		{"none", CompressionNone, false},
		{"lz4", CompressionLZ4, false},
		{"lz4-shallow", CompressionLZ4, true},
		{"snappy", CompressionSnappy, false},
		{"zstd", CompressionZstd, false},
		{"gzip", CompressionGzip, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := &Codecs{ShallowProduceValidation: tc.shallow}
			blob, n, raw := benchBatch(b, c, tc.codec)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.SplitProduce(blob, 2<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(len(blob)), "wire-bytes")
		})
	}
}

// BenchmarkRecords measures full decoding of the same batches.
func BenchmarkRecords(b *testing.B) {
	for _, codec := range []Compression{CompressionNone, CompressionLZ4} {
		b.Run(codec.String(), func(b *testing.B) {
			c := NewCodecs()
			blob, n, raw := benchBatch(b, c, codec)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			var recs []Record
			for b.Loop() {
				var err error
				if _, recs, err = c.AppendRecords(recs[:0], blob); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
