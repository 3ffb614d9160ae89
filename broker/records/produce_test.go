package records

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestSplitProduceV2(t *testing.T) {
	c := NewCodecs()
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := testRecords(100, 50)
			b1 := mustBuild(t, c, freshHeader(codec), recs)
			b2 := mustBuild(t, c, freshHeader(codec), recs[:1])
			blob := append(append([]byte(nil), b1...), b2...)
			batches, err := c.SplitProduce(blob, len(b1))
			requireErr(t, err, nil)
			if len(batches) != 2 {
				t.Fatalf("%d batches", len(batches))
			}
			if &batches[0].Raw[0] != &blob[0] || &batches[1].Raw[0] != &blob[len(b1)] {
				t.Fatalf("Raw does not alias blob")
			}
			for i, want := range [][]byte{b1, b2} {
				if !bytes.Equal(batches[i].Raw, want) || batches[i].Header.Size() != len(want) {
					t.Fatalf("batch %d differs", i)
				}
			}
			_, got, err := c.Records(batches[0].Raw)
			requireErr(t, err, nil)
			sameRecords(t, got, recs)
		})
	}
	// Empty blobs are not an error here.
	batches, err := c.SplitProduce(nil, 100)
	if err != nil || batches != nil {
		t.Fatalf("nil blob: %v %v", batches, err)
	}
}

func TestSplitProduceV2Errors(t *testing.T) {
	c := NewCodecs()
	recs := testRecords(20, 20)
	good := mustBuild(t, c, freshHeader(0), recs)
	goodLZ4 := mustBuild(t, c, freshHeader(CompressionLZ4), recs)
	mutate := func(src []byte, f func(b []byte)) []byte {
		b := append([]byte(nil), src...)
		f(b)
		return b
	}
	build := func(h BatchHeader, recs []Record) []byte { return mustBuild(t, c, h, recs) }
	resign := func(src []byte, f func(b []byte)) []byte { // change, then fix the CRC
		return mutate(src, func(b []byte) { f(b); SetCRC(b) })
	}
	withHeader := func(f func(h *BatchHeader)) []byte {
		h := freshHeader(0)
		f(&h)
		return build(h, recs)
	}
	for name, tc := range map[string]struct {
		blob []byte
		max  int
		want error
	}{
		"ok":                    {good, len(good), nil},
		"no max":                {good, 0, nil},
		"flipped record byte":   {mutate(good, func(b []byte) { b[len(b)-3] ^= 1 }), 0, ErrCorrupt},
		"flipped header byte":   {mutate(good, func(b []byte) { b[30] ^= 1 }), 0, ErrCorrupt},
		"flipped compressed":    {mutate(goodLZ4, func(b []byte) { b[len(b)/2] ^= 0x40 }), 0, ErrCorrupt},
		"truncated":             {good[:len(good)-1], 0, ErrCorrupt},
		"truncated header":      {good[:40], 0, ErrCorrupt},
		"tiny":                  {good[:5], 0, ErrCorrupt},
		"trailing garbage":      {append(append([]byte(nil), good...), 1, 2, 3), 0, ErrCorrupt},
		"trailing 20 bytes":     {append(append([]byte(nil), good...), make([]byte, 20)...), 0, ErrCorrupt},
		"too large":             {good, len(good) - 1, ErrTooLarge},
		"short length field":    {mutate(good, func(b []byte) { binary.BigEndian.PutUint32(b[8:], 20) }), 0, ErrCorrupt},
		"negative length field": {mutate(good, func(b []byte) { binary.BigEndian.PutUint32(b[8:], 0xffffff00) }), 0, ErrCorrupt},
		"unknown magic":         {mutate(good, func(b []byte) { b[16] = 3 }), 0, ErrCorrupt},
		"zero records": {func() []byte {
			h := freshHeader(0)
			return build(h, nil)
		}(), 0, ErrInvalid},
		"last offset delta": {withHeader(func(h *BatchHeader) { h.LastOffsetDelta = 25 }), 0, ErrInvalid},
		"control": {withHeader(func(h *BatchHeader) {
			h.Attributes |= AttrControl | AttrTransactional
			h.ProducerID, h.BaseSequence = 1, 0
		}), 0, ErrInvalid},
		"transactional without pid": {withHeader(func(h *BatchHeader) { h.Attributes |= AttrTransactional }), 0, ErrInvalid},
		"pid without sequence":      {withHeader(func(h *BatchHeader) { h.ProducerID = 5 }), 0, ErrInvalid},
		"idempotent ok":             {withHeader(func(h *BatchHeader) { h.ProducerID, h.BaseSequence = 5, 0 }), 0, nil},
		"gap in offset deltas": {func() []byte {
			rs := append([]Record(nil), recs...)
			rs[19].OffsetDelta = 25
			h := freshHeader(0)
			b := build(h, rs)
			return resign(b, func(b []byte) { binary.BigEndian.PutUint32(b[23:], 19) })
		}(), 0, ErrInvalid},
		"gap compressed": {func() []byte {
			rs := append([]Record(nil), recs...)
			rs[19].OffsetDelta = 25
			b := build(freshHeader(CompressionZstd), rs)
			return resign(b, func(b []byte) { binary.BigEndian.PutUint32(b[23:], 19) })
		}(), 0, ErrInvalid},
		"count too high": {resign(good, func(b []byte) {
			binary.BigEndian.PutUint32(b[57:], 21)
			binary.BigEndian.PutUint32(b[23:], 20)
		}), 0, ErrCorrupt},
		"record garbage with good crc": {resign(good, func(b []byte) { b[HeaderSize+4] = 0x7e }), 0, ErrCorrupt}, // key length 63
		"compressed garbage with good crc": {resign(goodLZ4, func(b []byte) {
			copy(b[HeaderSize+4:], bytes.Repeat([]byte{0xaa}, 30))
		}), 0, ErrCorrupt},
		"unknown codec":  {resign(good, func(b []byte) { b[22] |= 6 }), 0, ErrUnsupportedCompression},
		"v2 then legacy": {append(append([]byte(nil), good...), legacyMsg(1, 0, 0, 5, nil, []byte("v"))...), 0, ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			batches, err := c.SplitProduce(tc.blob, tc.max)
			requireErr(t, err, tc.want)
			if err == nil && len(batches) == 0 {
				t.Fatalf("no batches")
			}
			if err != nil && batches != nil {
				t.Fatalf("batches returned with an error")
			}
		})
	}
}

func TestSplitProduceShallow(t *testing.T) {
	c := &Codecs{ShallowProduceValidation: true}
	good := mustBuild(t, c, freshHeader(CompressionLZ4), testRecords(20, 20))
	bad := append([]byte(nil), good...)
	copy(bad[HeaderSize+4:], bytes.Repeat([]byte{0xaa}, 30))
	SetCRC(bad)
	if _, err := c.SplitProduce(bad, 0); err != nil {
		t.Fatalf("shallow validation decompressed: %v", err)
	}
	// Uncompressed records are still checked.
	plain := mustBuild(t, c, freshHeader(0), testRecords(20, 20))
	plain[HeaderSize+4] = 0x7e // first key's length: 63, past the record
	SetCRC(plain)
	_, err := c.SplitProduce(plain, 0)
	requireErr(t, err, ErrCorrupt)
}

func TestSplitProduceLegacy(t *testing.T) {
	c := NewCodecs()
	type msg struct {
		ts         int64
		key, value []byte
	}
	msgs := []msg{
		{1000, []byte("k0"), []byte("v0")},
		{1005, nil, []byte("v1")},
		{999, []byte("k2"), nil},
		{1010, []byte{}, []byte{}},
	}
	set := func(magic int8, relOffsets bool) []byte {
		var b []byte
		for i, m := range msgs {
			off := int64(i)
			if !relOffsets {
				off = 500 + int64(i)
			}
			b = append(b, legacyMsg(magic, 0, off, m.ts, m.key, m.value)...)
		}
		return b
	}
	wrap := func(magic int8, codec Compression, inner []byte, ts int64, attrs int8) []byte {
		comp, err := c.Compress(nil, codec, inner)
		requireErr(t, err, nil)
		return legacyMsg(magic, int8(codec)|attrs, int64(len(msgs)-1), ts, nil, comp)
	}
	for _, magic := range []int8{0, 1} {
		for _, codec := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4} {
			t.Run(Compression(magic).String()+"-"+codec.String(), func(t *testing.T) {
				blob := set(magic, false)
				if codec != CompressionNone {
					blob = wrap(magic, codec, set(magic, magic == 1), 2000, 0)
				}
				batches, err := c.SplitProduce(blob, 0)
				requireErr(t, err, nil)
				if len(batches) != 1 {
					t.Fatalf("%d batches", len(batches))
				}
				b := batches[0]
				requireErr(t, VerifyCRC(b.Raw), nil)
				h, recs, err := c.Records(b.Raw)
				requireErr(t, err, nil)
				if h.Compression() != codec || h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 ||
					h.NumRecords != 4 || h.LastOffsetDelta != 3 || h.IsControl() || h.IsTransactional() ||
					h.Attributes&AttrLogAppendTime != 0 {
					t.Fatalf("header %+v", h)
				}
				// The converted batch passes produce validation itself.
				if _, err := c.SplitProduce(b.Raw, 0); err != nil {
					t.Fatalf("converted batch does not validate: %v", err)
				}
				wantMax := int64(1010)
				if magic == 0 {
					wantMax = -1
				}
				if h.MaxTimestamp != wantMax {
					t.Fatalf("max timestamp %d, want %d", h.MaxTimestamp, wantMax)
				}
				for i, m := range msgs {
					r := recs[i]
					wantTS := m.ts
					if magic == 0 {
						wantTS = -1
					}
					if r.OffsetDelta != int32(i) || h.FirstTimestamp+r.TimestampDelta != wantTS ||
						!sameBytes(r.Key, m.key) || !sameBytes(r.Value, m.value) || len(r.Headers) != 0 {
						t.Fatalf("record %d: %+v (ts %d), want %+v", i, r, h.FirstTimestamp+r.TimestampDelta, m)
					}
				}
			})
		}
	}

	t.Run("magic0-lz4-broken-checksum", func(t *testing.T) {
		comp, _ := c.CompressLZ4(nil, set(0, false))
		n := lz4DescriptorEnd(comp)
		comp[n-1] = byte(xxh32(comp[:n-1]) >> 8)
		blob := legacyMsg(0, int8(CompressionLZ4), 3, 0, nil, comp)
		batches, err := c.SplitProduce(blob, 0)
		requireErr(t, err, nil)
		_, recs, err := c.Records(batches[0].Raw)
		requireErr(t, err, nil)
		if len(recs) != 4 || string(recs[0].Value) != "v0" {
			t.Fatalf("records %+v", recs)
		}
	})

	t.Run("log-append-time-wrapper", func(t *testing.T) {
		blob := wrap(1, CompressionGzip, set(1, true), 7777, legacyAttrLogAppendTime)
		batches, err := c.SplitProduce(blob, 0)
		requireErr(t, err, nil)
		h, recs, err := c.Records(batches[0].Raw)
		requireErr(t, err, nil)
		for _, r := range recs {
			if h.FirstTimestamp+r.TimestampDelta != 7777 {
				t.Fatalf("timestamp %d, want the wrapper's", h.FirstTimestamp+r.TimestampDelta)
			}
		}
	})

	t.Run("mixed-set", func(t *testing.T) {
		// Uncompressed magic 0, a snappy magic 1 wrapper, uncompressed magic 1:
		// one batch of 6 records, codec snappy (the last compressed one).
		blob := legacyMsg(0, 0, 0, 0, []byte("a"), []byte("1"))
		blob = append(blob, wrap(1, CompressionSnappy, set(1, true), 0, 0)...)
		blob = append(blob, legacyMsg(1, 0, 0, 3000, []byte("z"), []byte("9"))...)
		batches, err := c.SplitProduce(blob, 0)
		requireErr(t, err, nil)
		h, recs, err := c.Records(batches[0].Raw)
		requireErr(t, err, nil)
		if len(recs) != 6 || h.Compression() != CompressionSnappy || string(recs[0].Key) != "a" ||
			string(recs[5].Key) != "z" || h.FirstTimestamp != -1 || h.MaxTimestamp != 3000 {
			t.Fatalf("header %+v, %d records", h, len(recs))
		}
		for i, r := range recs {
			if r.OffsetDelta != int32(i) {
				t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
			}
		}
	})
}

func TestSplitProduceLegacyErrors(t *testing.T) {
	c := NewCodecs()
	plain := legacyMsg(1, 0, 0, 5, []byte("k"), []byte("value"))
	inner := append(legacyMsg(1, 0, 0, 5, nil, []byte("a")), legacyMsg(1, 0, 1, 5, nil, []byte("b"))...)
	wrapped := func(magic int8, codec Compression, inner []byte) []byte {
		comp, err := c.Compress(nil, codec, inner)
		requireErr(t, err, nil)
		return legacyMsg(magic, int8(codec), 1, 5, nil, comp)
	}
	flip := func(src []byte, i int) []byte {
		b := append([]byte(nil), src...)
		b[i] ^= 1
		return b
	}
	for name, tc := range map[string]struct {
		blob []byte
		max  int
		want error
	}{
		"ok":                 {plain, len(plain), nil},
		"crc":                {flip(plain, len(plain)-1), 0, ErrCorrupt},
		"crc field":          {flip(plain, 13), 0, ErrCorrupt},
		"truncated":          {plain[:len(plain)-1], 0, ErrCorrupt},
		"trailing":           {append(append([]byte(nil), plain...), 0, 0, 0), 0, ErrCorrupt},
		"too large":          {plain, len(plain) - 1, ErrTooLarge},
		"wrapper too large":  {wrapped(1, CompressionGzip, inner), 30, ErrTooLarge},
		"inner crc":          {wrapped(1, CompressionGzip, flip(inner, 30)), 0, ErrCorrupt},
		"inner truncated":    {wrapped(1, CompressionSnappy, inner[:len(inner)-2]), 0, ErrCorrupt},
		"inner magic":        {wrapped(1, CompressionLZ4, legacyMsg(0, 0, 0, 0, nil, []byte("x"))), 0, ErrInvalid},
		"nested compression": {wrapped(1, CompressionGzip, wrapped(1, CompressionGzip, inner)), 0, ErrInvalid},
		"zstd":               {wrapped(1, CompressionZstd, inner), 0, ErrUnsupportedCompression},
		"codec 7":            {legacyMsg(1, 7, 0, 0, nil, []byte("x")), 0, ErrCorrupt},
		"null wrapper value": {legacyMsg(1, int8(CompressionGzip), 0, 0, nil, nil), 0, ErrCorrupt},
		"garbage wrapper":    {legacyMsg(0, int8(CompressionGzip), 0, 0, nil, []byte("not gzip at all")), 0, ErrCorrupt},
		"empty wrapper":      {wrapped(1, CompressionGzip, nil), 0, ErrInvalid},
		"legacy then v2": {append(append([]byte(nil), plain...),
			mustBuild(t, c, freshHeader(0), testRecords(1, 1))...), 0, ErrInvalid},
		"size below minimum": {func() []byte {
			b := append([]byte(nil), plain...)
			binary.BigEndian.PutUint32(b[8:], 10)
			return b
		}(), 0, ErrCorrupt},
		"size overstates fields": {func() []byte {
			b := append(append([]byte(nil), plain...), 0)
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
			binary.BigEndian.PutUint32(b[12:], crc32IEEE(b[16:]))
			return b
		}(), 0, ErrCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			batches, err := c.SplitProduce(tc.blob, tc.max)
			requireErr(t, err, tc.want)
			if err == nil && len(batches) != 1 {
				t.Fatalf("%d batches", len(batches))
			}
		})
	}
}
