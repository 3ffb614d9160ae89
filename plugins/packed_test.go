package plugins

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

func TestPackedProducedRoundTrip(t *testing.T) {
	in := []*pluginpb.ProducedRecord{
		{Topic: "a", Key: []byte("k"), Value: []byte("v"), TimestampMs: 1_700_000_000_000, HasPartition: true, Partition: 3,
			Headers:             []*pluginpb.Header{{Key: "h", Value: []byte("x")}, {Key: "n", ValueNull: true}},
			SourcePartitionJson: []byte(`{"f":"x"}`), SourceOffsetJson: []byte(`{"p":1}`)},
		{Topic: "a", KeyNull: true, Value: []byte{}, SourcePartitionJson: []byte(`{"f":"x"}`)},
		{Topic: "b", Key: []byte{}, ValueNull: true, TimestampMs: -5},
		{Dropped: true, Error: "bad record", SourcePartitionJson: []byte(`{"f":"x"}`), SourceOffsetJson: []byte(`{"p":9}`), KeyNull: true, ValueNull: true},
	}
	out, err := UnpackProduced(PackProduced(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d records, want %d", len(out), len(in))
	}
	for i := range in {
		if !proto.Equal(in[i], out[i]) {
			t.Fatalf("record %d: got %v want %v", i, out[i], in[i])
		}
	}
	// An empty key stays empty, not null.
	if out[2].Key == nil || out[2].KeyNull {
		t.Fatal("empty key became null")
	}
	if empty, err := UnpackProduced(PackProduced(nil)); err != nil || len(empty) != 0 {
		t.Fatalf("empty batch: %v %v", empty, err)
	}
}

func TestPackedConsumedRoundTrip(t *testing.T) {
	type rec struct {
		topic      string
		part       int32
		off, ts    int64
		typ        int32
		key, value []byte
		hk         []string
		hv         [][]byte
	}
	in := []rec{
		{"t", 0, 7, 1_700_000_000_000, 0, []byte("a"), []byte(`{"x":1}`), []string{"h"}, [][]byte{[]byte("v")}},
		{"t", 1, 8, -1, -1, nil, nil, []string{"n"}, [][]byte{nil}},
		{"u", 2, 9, 5, 1, []byte{}, []byte{}, nil, nil},
	}
	b := PackConsumed(len(in), 0, func(i int, c *ConsumedFields) {
		r := in[i]
		c.Topic, c.Partition, c.Offset, c.TimestampMs, c.TimestampType, c.Key, c.Value = r.topic, r.part, r.off, r.ts, r.typ, r.key, r.value
		c.HeaderKeys = append(c.HeaderKeys, r.hk...)
		c.HeaderValues = append(c.HeaderValues, r.hv...)
	})
	out, err := UnpackConsumed(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range in {
		o := out[i]
		if o.Topic != r.topic || o.Partition != r.part || o.Offset != r.off || o.TimestampMs != r.ts || o.TimestampType != r.typ ||
			o.KeyNull != (r.key == nil) || o.ValueNull != (r.value == nil) || string(o.Key) != string(r.key) || string(o.Value) != string(r.value) ||
			len(o.Headers) != len(r.hk) {
			t.Fatalf("record %d: %v", i, o)
		}
		for j := range r.hk {
			if o.Headers[j].Key != r.hk[j] || o.Headers[j].ValueNull != (r.hv[j] == nil) || string(o.Headers[j].Value) != string(r.hv[j]) {
				t.Fatalf("record %d header %d: %v", i, j, o.Headers[j])
			}
		}
	}
}

func TestPackedRejectsDamage(t *testing.T) {
	good := PackProduced([]*pluginpb.ProducedRecord{{Topic: "a", Key: []byte("key"), Value: []byte("value")}})
	for cut := 0; cut < len(good); cut++ {
		if _, err := UnpackProduced(good[:cut]); !errors.Is(err, ErrPacked) {
			t.Fatalf("cut at %d: %v, want ErrPacked", cut, err)
		}
	}
	if _, err := UnpackProduced(append(append([]byte(nil), good...), 0)); !errors.Is(err, ErrPacked) {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[0] = 9
	if _, err := UnpackProduced(bad); !errors.Is(err, ErrPacked) {
		t.Fatalf("wrong version: %v", err)
	}
}

// FuzzUnpack: arbitrary input never panics, and what decodes re-encodes to
// the same records.
func FuzzUnpack(f *testing.F) {
	f.Add(PackProduced([]*pluginpb.ProducedRecord{{Topic: "a", Key: []byte("k"), Value: []byte("v"), Headers: []*pluginpb.Header{{Key: "h"}}}}))
	f.Add(PackConsumed(1, 0, func(i int, c *ConsumedFields) { c.Topic, c.Key = "t", []byte("k") }))
	f.Fuzz(func(t *testing.T, b []byte) {
		if recs, err := UnpackProduced(b); err == nil {
			again, err := UnpackProduced(PackProduced(recs))
			if err != nil || len(again) != len(recs) {
				t.Fatalf("re-encoding failed: %v", err)
			}
			for i := range recs {
				if !proto.Equal(recs[i], again[i]) {
					t.Fatalf("record %d changed", i)
				}
			}
		}
		UnpackConsumed(b)
	})
}
