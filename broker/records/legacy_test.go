package records

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// parsedMessage is a message of a down-converted set, read back with kmsg.
type parsedMessage struct {
	offset     int64
	attrs      int8
	ts         int64
	key, value []byte
}

// parseMessageSet reads a legacy message set with kmsg, checking sizes and
// CRCs.
func parseMessageSet(t *testing.T, b []byte, magic int8) []parsedMessage {
	t.Helper()
	var out []parsedMessage
	for len(b) > 0 {
		size := int(binary.BigEndian.Uint32(b[8:]))
		m := b[:12+size]
		b = b[12+size:]
		if got, want := crc32.ChecksumIEEE(m[16:]), binary.BigEndian.Uint32(m[12:]); got != want {
			t.Fatalf("message %d: crc %08x, want %08x", len(out), want, got)
		}
		if int8(m[16]) != magic {
			t.Fatalf("message %d: magic %d", len(out), m[16])
		}
		if magic == 0 {
			var v kmsg.MessageV0
			requireErr(t, v.ReadFrom(m), nil)
			if int(v.MessageSize) != 14+len(v.Key)+len(v.Value) {
				t.Fatalf("message size %d", v.MessageSize)
			}
			out = append(out, parsedMessage{v.Offset, v.Attributes, -1, v.Key, v.Value})
		} else {
			var v kmsg.MessageV1
			requireErr(t, v.ReadFrom(m), nil)
			if int(v.MessageSize) != 22+len(v.Key)+len(v.Value) {
				t.Fatalf("message size %d", v.MessageSize)
			}
			out = append(out, parsedMessage{v.Offset, v.Attributes, v.Timestamp, v.Key, v.Value})
		}
	}
	return out
}

func TestDownConvert(t *testing.T) {
	c := NewCodecs()
	type want struct {
		offset     int64
		ts         int64
		logAppend  bool
		key, value []byte
	}
	var (
		chunk []byte
		wants []want
	)
	add := func(h BatchHeader, recs []Record) {
		chunk = append(chunk, mustBuild(t, c, h, recs)...)
		if h.IsControl() {
			return
		}
		lat := h.Attributes&AttrLogAppendTime != 0
		for _, r := range recs {
			ts := h.FirstTimestamp + r.TimestampDelta
			if lat {
				ts = h.MaxTimestamp
			}
			wants = append(wants, want{h.BaseOffset + int64(r.OffsetDelta), ts, lat, r.Key, r.Value})
		}
	}
	for i, codec := range allCodecs {
		h := freshHeader(codec)
		h.BaseOffset = int64(100 * i)
		add(h, testRecords(30, 20))
	}
	ctl := BatchHeader{BaseOffset: 600, Attributes: AttrControl | AttrTransactional, ProducerID: 3, BaseSequence: -1}
	add(ctl, []Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	lat := freshHeader(CompressionGzip)
	lat.BaseOffset, lat.Attributes, lat.MaxTimestamp = 700, lat.Attributes|AttrLogAppendTime, 1_800_000_000_000
	add(lat, testRecords(5, 5))
	compacted := freshHeader(CompressionNone)
	compacted.BaseOffset, compacted.LastOffsetDelta = 800, 9
	add(compacted, []Record{{OffsetDelta: 3, Key: []byte("k3"), Value: []byte("v3")}, {OffsetDelta: 8, Key: []byte("k8")}})
	partial := mustBuild(t, c, freshHeader(0), testRecords(3, 3))
	chunk = append(chunk, partial[:len(partial)-5]...) // ignored

	for _, magic := range []int8{0, 1} {
		t.Run(Compression(magic).String(), func(t *testing.T) {
			out, err := c.DownConvert(chunk, magic)
			requireErr(t, err, nil)
			got := parseMessageSet(t, out, magic)
			if len(got) != len(wants) {
				t.Fatalf("%d messages, want %d", len(got), len(wants))
			}
			for i, w := range wants {
				g := got[i]
				wantTS, wantAttrs := w.ts, int8(0)
				if magic == 0 {
					wantTS = -1
				} else if w.logAppend {
					wantAttrs = legacyAttrLogAppendTime
				}
				if g.offset != w.offset || g.ts != wantTS || g.attrs != wantAttrs ||
					!sameBytes(g.key, w.key) || !sameBytes(g.value, w.value) {
					t.Fatalf("message %d: %+v, want %+v", i, g, w)
				}
			}
			// Old producers' sets convert back: what we serve, we can take.
			batches, err := c.SplitProduce(out, 0)
			requireErr(t, err, nil)
			_, recs, err := c.Records(batches[0].Raw)
			requireErr(t, err, nil)
			if len(recs) != len(wants) {
				t.Fatalf("%d records back, want %d", len(recs), len(wants))
			}
			for i, w := range wants {
				if !sameBytes(recs[i].Key, w.key) || !sameBytes(recs[i].Value, w.value) {
					t.Fatalf("record %d back: %+v", i, recs[i])
				}
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		_, err := c.DownConvert(chunk, 2)
		requireErr(t, err, ErrInvalid)
		bad := append([]byte(nil), chunk...)
		binary.BigEndian.PutUint32(bad[57:], 1000) // record count of the first batch
		_, err = c.DownConvert(bad, 1)
		requireErr(t, err, ErrCorrupt)
		out, err := c.DownConvert(mustBuild(t, c, ctl, []Record{{}}), 1)
		requireErr(t, err, nil)
		if out == nil || len(out) != 0 {
			t.Fatalf("control-only chunk gave %x", out)
		}
	})
}
