package plugins

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connect/converter"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

func TestCommonPrefix(t *testing.T) {
	naive := func(a, b []byte) int {
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		return i
	}
	base := bytes.Repeat([]byte("0123456789abcdef"), 100) // 1,600 bytes
	for _, n := range []int{0, 1, 7, 8, 9, 255, 256, 257, 511, 512, 1023, 1600} {
		for _, at := range []int{0, 1, 7, 8, 9, 250, 255, 256, 300, 1000, 1599} {
			a := base[:n]
			b := append([]byte(nil), base[:n]...)
			if at < n {
				b[at] ^= 0x40
			}
			if got, want := commonPrefix(a, b), naive(a, b); got != want {
				t.Fatalf("len %d, differing at %d: %d, want %d", n, at, got, want)
			}
			if got, want := commonPrefix(a, b[:min(n, at+3)]), naive(a, b[:min(n, at+3)]); got != want {
				t.Fatalf("len %d/%d, differing at %d: %d, want %d", n, min(n, at+3), at, got, want)
			}
		}
	}
}

func TestPackVersion(t *testing.T) {
	for _, c := range []struct {
		peer int32
		want int
	}{{0, 1}, {1, 1}, {2, 2}, {3, PackedVersion}, {-1, 1}} {
		if got := PackVersion(c.peer); got != c.want {
			t.Errorf("PackVersion(%d) = %d, want %d", c.peer, got, c.want)
		}
	}
}

// cdcLike returns JSON records that share a long schema, as JsonConverter
// with schemas writes them.
func cdcLike(i int) (key, value []byte) {
	schema := `{"schema":{"type":"struct","fields":[` + strings.Repeat(`{"type":"string","optional":true,"field":"f"},`, 20) + `{"type":"int64","field":"id"}]},"payload":`
	key = fmt.Appendf(nil, `{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"k"},"payload":{"id":%d}}`, i)
	value = fmt.Appendf([]byte(schema), `{"id":%d,"f":"row %d"}}`, i, i)
	return key, value
}

func v2Produced() []*pluginpb.ProducedRecord {
	var in []*pluginpb.ProducedRecord
	for i := range 50 {
		k, v := cdcLike(i)
		r := &pluginpb.ProducedRecord{Topic: "db.public.orders", Key: k, Value: v, TimestampMs: int64(1000 + i)}
		switch i {
		case 3:
			r.KeyNull, r.Key = true, nil // a null key between shared ones
		case 4:
			r.ValueNull, r.Value = true, nil // a tombstone
		case 5:
			r.Value = []byte{} // empty, not null
		case 7:
			r.Topic = "other" // a topic change does not stop sharing
		case 9:
			r.Value = []byte(`{"short":1}`) // too short to share
		case 10:
			r.Dropped, r.Error, r.Key, r.Value = true, "bad", nil, nil
		case 49:
			r.SourcePartitionJson, r.SourceOffsetJson = []byte(`{"server":"x"}`), []byte(`{"lsn":1}`)
			r.Headers = []*pluginpb.Header{{Key: "h", Value: []byte("v")}, {Key: "n", ValueNull: true}}
		}
		in = append(in, r)
	}
	return in
}

func TestPackedV2ProducedRoundTrip(t *testing.T) {
	in := v2Produced()
	v1 := PackProducedVersion(in, 1)
	v2 := PackProducedVersion(in, 2)
	if len(v2) > len(v1)/4 {
		t.Fatalf("version 2 takes %d bytes, version 1 %d: the schemas were not shared", len(v2), len(v1))
	}
	for _, b := range [][]byte{v1, v2} {
		var out []*pluginpb.ProducedRecord
		_, spill, err := EachProduced(b, func(f *ProducedFields) {
			p := &pluginpb.ProducedRecord{Topic: f.Topic, HasPartition: f.HasPartition, Partition: f.Partition,
				Key: bytes.Clone(f.Key), KeyNull: f.Key == nil, Value: bytes.Clone(f.Value), ValueNull: f.Value == nil, TimestampMs: f.TimestampMs,
				SourcePartitionJson: f.SourcePartitionJSON, SourceOffsetJson: f.SourceOffsetJSON, Error: f.Error, Dropped: f.Dropped}
			for _, h := range f.Headers {
				p.Headers = append(p.Headers, &pluginpb.Header{Key: h.Key, Value: h.Value, ValueNull: h.Value == nil})
			}
			if f.Value != nil && len(f.Value) == 0 {
				p.Value = []byte{}
			}
			out = append(out, p)
		})
		if err != nil {
			t.Fatal(err)
		}
		if (spill != nil) != (b[0] == 2) {
			t.Fatalf("version %d: spill %v", b[0], spill)
		}
		if len(out) != len(in) {
			t.Fatalf("%d records, want %d", len(out), len(in))
		}
		for i := range in {
			want := proto.Clone(in[i]).(*pluginpb.ProducedRecord)
			if want.Dropped { // dropped records cross with empty fields
				want.Key, want.Value = []byte{}, []byte{}
			}
			if !proto.Equal(want, out[i]) {
				t.Fatalf("version %d, record %d: got %v\nwant %v", b[0], i, out[i], want)
			}
		}
		if out[5].Value == nil || out[5].ValueNull {
			t.Fatal("empty value became null")
		}
	}
}

// The packer keeps what it shares from: the caller may reuse the bytes of
// each record it adds.
func TestProducedPackerCallerReusesBuffers(t *testing.T) {
	var want [][]byte
	buf := []byte{}
	p := newProducedPacker(&buf, 20, 2)
	scratch := make([]byte, 0, 4096)
	for i := range 20 {
		_, v := cdcLike(i)
		want = append(want, v)
		scratch = append(scratch[:0], v...)
		p.add(&pluginpb.ProducedRecord{Topic: "t", KeyNull: true, Value: scratch})
		for j := range scratch {
			scratch[j] = 'X'
		}
	}
	out, err := UnpackProduced(p.bytes())
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !bytes.Equal(out[i].Value, want[i]) {
			t.Fatalf("record %d: %q", i, out[i].Value)
		}
	}
}

func TestPackedV2ConsumedRoundTrip(t *testing.T) {
	type rec struct{ key, value []byte }
	var in []rec
	for i := range 30 {
		k, v := cdcLike(i)
		switch i {
		case 2:
			k = nil
		case 3:
			v = nil
		case 4:
			v = []byte{}
		}
		in = append(in, rec{k, v})
	}
	fill := func(i int, c *ConsumedFields) {
		c.Topic, c.Partition, c.Offset, c.TimestampMs = "t", int32(i%3), int64(i), int64(i*10)
		c.Key, c.Value = in[i].key, in[i].value
		if i == 7 {
			c.HeaderKeys, c.HeaderValues = append(c.HeaderKeys, "h"), append(c.HeaderValues, []byte("x"))
		}
	}
	v1 := AppendConsumed(nil, 1, len(in), fill)
	v2 := AppendConsumed(nil, 2, len(in), fill)
	if len(v2) > len(v1)/4 {
		t.Fatalf("version 2 takes %d bytes, version 1 %d: the schemas were not shared", len(v2), len(v1))
	}
	for _, b := range [][]byte{v1, v2} {
		seen := 0
		_, spill, err := EachConsumed(b, func(i int, c *ConsumedFields) error {
			seen++
			if c.Topic != "t" || c.Partition != int32(i%3) || c.Offset != int64(i) || c.TimestampMs != int64(i*10) {
				t.Fatalf("record %d: %+v", i, c)
			}
			if (c.Key == nil) != (in[i].key == nil) || !bytes.Equal(c.Key, in[i].key) {
				t.Fatalf("record %d key %q, want %q", i, c.Key, in[i].key)
			}
			if (c.Value == nil) != (in[i].value == nil) || !bytes.Equal(c.Value, in[i].value) {
				t.Fatalf("record %d value %q, want %q", i, c.Value, in[i].value)
			}
			if i == 7 && (len(c.HeaderKeys) != 1 || string(c.HeaderValues[0]) != "x") {
				t.Fatalf("record 7 headers %v %q", c.HeaderKeys, c.HeaderValues)
			}
			return nil
		})
		if err != nil || seen != len(in) {
			t.Fatalf("version %d: %d records, %v", b[0], seen, err)
		}
		if (spill != nil) != (b[0] == 2) {
			t.Fatalf("version %d: spill %v", b[0], spill)
		}
	}
}

func TestPackedV2RejectsDamage(t *testing.T) {
	good := PackProducedVersion(v2Produced()[:3], 2)
	for cut := 0; cut < len(good); cut++ {
		if _, err := UnpackProduced(good[:cut]); !errors.Is(err, ErrPacked) {
			t.Fatalf("cut at %d: %v, want ErrPacked", cut, err)
		}
	}
	if _, err := UnpackProduced(good); err != nil {
		t.Fatal(err)
	}
	spillAt := 2 // version, count (3: one byte)
	declared := binary.LittleEndian.Uint32(good[spillAt:])
	for _, spill := range []uint32{0, declared - 1, declared + 1, maxSpill + 1} {
		bad := bytes.Clone(good)
		binary.LittleEndian.PutUint32(bad[spillAt:], spill)
		if _, err := UnpackProduced(bad); !errors.Is(err, ErrPacked) {
			t.Fatalf("spill %d declared (%d right): %v, want ErrPacked", spill, declared, err)
		}
	}
	// Shared fields in a version 1 batch.
	bad := bytes.Clone(good)
	bad[0] = 1
	if _, err := UnpackProduced(append(bad[:spillAt:spillAt], bad[spillAt+4:]...)); !errors.Is(err, ErrPacked) {
		t.Fatalf("shared field in version 1: %v", err)
	}
	// A field sharing more than the last one has.
	var b []byte
	b = append(b, 2, 2, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, fNewTopic|fValue)
	b = appendBytes(b, []byte("t"))
	b = appendBytes(b, []byte("abc"))
	b = binary.AppendUvarint(b, 0) // headers
	b = binary.AppendUvarint(b, fValue|fValueShared)
	b = binary.AppendUvarint(b, 4)
	b = appendBytes(b, []byte("x"))
	b = binary.AppendUvarint(b, 0)
	binary.LittleEndian.PutUint32(b[2:], 5)
	if _, err := UnpackProduced(b); !errors.Is(err, ErrPacked) {
		t.Fatalf("over-long share: %v", err)
	}
	// The same with a share that fits decodes.
	b[len(b)-4] = 2
	binary.LittleEndian.PutUint32(b[2:], 3)
	if out, err := UnpackProduced(b); err != nil || string(out[1].Value) != "abx" {
		t.Fatalf("share of 2: %v %v", out, err)
	}
}

// FuzzUnpackV2: arbitrary input never panics, and what decodes re-encodes,
// in either version, to the same records.
func FuzzUnpackV2(f *testing.F) {
	f.Add(PackProducedVersion(v2Produced()[:4], 2))
	f.Add(AppendConsumed(nil, 2, 3, func(i int, c *ConsumedFields) {
		c.Topic, c.Key, c.Value = "t", []byte("k"), bytes.Repeat([]byte("v"), 40+i)
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if recs, err := UnpackProduced(b); err == nil {
			for _, v := range []int{1, 2} {
				again, err := UnpackProduced(PackProducedVersion(recs, v))
				if err != nil || len(again) != len(recs) {
					t.Fatalf("re-encoding in version %d failed: %v", v, err)
				}
				for i := range recs {
					if !proto.Equal(recs[i], again[i]) {
						t.Fatalf("version %d: record %d changed", v, i)
					}
				}
			}
		}
		UnpackConsumed(b)
	})
}

// A batch that rebuilds far more than its own size spills into several
// chunks; records rebuilt in earlier chunks stay intact.
func TestPackedV2SpillChunks(t *testing.T) {
	big := bytes.Repeat([]byte("s"), 10_000)
	var in []*pluginpb.ProducedRecord
	for i := range 200 {
		in = append(in, &pluginpb.ProducedRecord{Topic: "t", KeyNull: true, Value: fmt.Appendf(bytes.Clone(big), "%d", i)})
	}
	b := PackProducedVersion(in, 2)
	if len(b)*firstChunkRatio+firstChunkMin > 200*10_000 {
		t.Fatalf("batch of %d bytes: the spill fits one chunk, the test needs more", len(b))
	}
	var got [][]byte
	_, spill, err := EachProduced(b, func(f *ProducedFields) { got = append(got, f.Value) })
	if err != nil || spill == nil {
		t.Fatalf("spill %v, %v", spill, err)
	}
	for i := range in {
		if !bytes.Equal(got[i], in[i].Value) {
			t.Fatalf("record %d changed", i)
		}
	}
}

// Transient decoding (a Put whose converters copy) rebuilds shared fields
// record by record in scratch, with no spill.
func TestPackedV2Transient(t *testing.T) {
	fill := func(i int, c *ConsumedFields) {
		k, v := cdcLike(i)
		c.Topic, c.Offset, c.Key, c.Value = "t", int64(i), k, v
	}
	b := AppendConsumed(nil, 2, 20, fill)
	_, spill, err := eachConsumed(b, true, func(i int, c *ConsumedFields) error {
		k, v := cdcLike(i)
		if !bytes.Equal(c.Key, k) || !bytes.Equal(c.Value, v) {
			t.Fatalf("record %d: %q %q", i, c.Key, c.Value)
		}
		return nil
	})
	if err != nil || spill != nil {
		t.Fatalf("spill %v, %v", spill, err)
	}
}

// A plugin writes version 2 only to a worker that said it reads it, and a
// sink plugin says it reads version 2.
func TestPackedVersionNegotiation(t *testing.T) {
	str := "org.apache.kafka.connect.storage.StringConverter"
	for _, worker := range []int32{0, 1, 2} {
		task := &seqSource{stopped: make(chan struct{})}
		cl := InProcess(Class{Name: "seq", New: func() connect.Connector { return &seqConnector{task: task} }})
		ctx := ctxT(t)
		if _, err := cl.StartSourceTask(ctx, &pluginpb.StartSourceTaskRequest{Class: "seq", PackedVersion: worker,
			Config: map[string]string{"key.converter": str, "value.converter": str}}); err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Poll(ctx, &pluginpb.PollRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := int(resp.Packed[0]), PackVersion(worker); got != want {
			t.Errorf("worker reading up to %d: batch version %d, want %d", worker, got, want)
		}
		if recs, err := UnpackProduced(resp.Packed); err != nil || len(recs) != 3 {
			t.Errorf("worker reading up to %d: %d records, %v", worker, len(recs), err)
		}
		if _, err := cl.StopTask(ctx, &pluginpb.StopRequest{}); err != nil {
			t.Fatal(err)
		}
	}

	var kept []connect.SinkRecord
	cl := InProcess(Class{Name: "keep", New: func() connect.Connector { return &keepConnector{kept: &kept} }})
	ctx := ctxT(t)
	started, err := cl.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "keep", Config: map[string]string{"key.converter": str, "value.converter": str}})
	if err != nil {
		t.Fatal(err)
	}
	if started.PackedVersion != PackedVersion {
		t.Fatalf("a sink plugin says it reads version %d, want %d", started.PackedVersion, PackedVersion)
	}
}

// Put reads version 2 batches: converters that copy get fields rebuilt in
// scratch (transient), a ByteArray converter's records keep aliasing the
// spill, which Put then leaves alone.
func TestPutReadsVersion2(t *testing.T) {
	for _, conv := range []string{"org.apache.kafka.connect.storage.StringConverter", converter.ByteArrayClass} {
		var kept []connect.SinkRecord
		cl := InProcess(Class{Name: "keep", New: func() connect.Connector { return &keepConnector{kept: &kept} }})
		ctx := ctxT(t)
		if _, err := cl.StartSinkTask(ctx, &pluginpb.StartSinkTaskRequest{Class: "keep", Config: map[string]string{"key.converter": conv, "value.converter": conv}}); err != nil {
			t.Fatal(err)
		}
		const batches, per = 3, 40
		for b := range batches {
			buf := AppendConsumed(nil, 2, per, func(i int, c *ConsumedFields) {
				k, v := cdcLike(b*per + i)
				c.Topic, c.Offset, c.Key, c.Value = "t", int64(b*per+i), k, v
			})
			if _, err := cl.Put(ctx, &pluginpb.PutRequest{Packed: buf}); err != nil {
				t.Fatal(err)
			}
		}
		if len(kept) != batches*per {
			t.Fatalf("%s: %d records kept", conv, len(kept))
		}
		for i, r := range kept {
			k, v := cdcLike(i)
			gotK, gotV := fmt.Sprint(r.Key), fmt.Sprint(r.Value)
			if b, ok := r.Key.([]byte); ok {
				gotK, gotV = string(b), string(r.Value.([]byte))
			}
			if gotK != string(k) || gotV != string(v) {
				t.Fatalf("%s: record %d: %q %q", conv, i, gotK, gotV)
			}
		}
	}
}
