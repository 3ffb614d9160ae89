package cluster

import (
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func sampleAssignment() wireAssignment {
	return wireAssignment{
		Version: ProtocolVersion, Error: ErrConfigMismatch, Leader: "leader-1", LeaderURL: "http://l:8083",
		ConfigOffset: 42,
		Assigned:     Work{Connectors: []string{"a"}, Tasks: []TaskID{{"a", 0}, {"b", 2}}},
		Revoked:      Work{Connectors: []string{"c"}, Tasks: []TaskID{{"c", 1}}},
		DelayMillis:  1500,
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	for _, a := range []wireAssignment{sampleAssignment(), {Version: ProtocolVersion}} {
		got, err := decodeAssignment(encodeAssignment(a))
		if err != nil {
			t.Fatal(err)
		}
		if got.Assigned.Len() != a.Assigned.Len() || got.Revoked.Len() != a.Revoked.Len() {
			t.Fatalf("got %+v, want %+v", got, a)
		}
		got.Assigned, got.Revoked, a.Assigned, a.Revoked = Work{}, Work{}, Work{}, Work{}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("got %+v, want %+v", got, a)
		}
	}
	got, _ := decodeAssignment(encodeAssignment(sampleAssignment()))
	if !reflect.DeepEqual(got.Assigned, sampleAssignment().Assigned) || !reflect.DeepEqual(got.Revoked, sampleAssignment().Revoked) {
		t.Fatalf("work: %+v", got)
	}
}

// TestAssignmentBytes pins the exact bytes: Kafka Connect's ASSIGNMENT_V1 layout.
func TestAssignmentBytes(t *testing.T) {
	a := wireAssignment{Leader: "L", LeaderURL: "U", ConfigOffset: 7,
		Assigned: Work{Connectors: []string{"c"}, Tasks: []TaskID{{"c", 0}}}, DelayMillis: 5}
	want := "0001" + "0000" + "00014c" + "000155" + "0000000000000007" +
		"00000001" + "000163" + "00000002" + "ffffffff" + "00000000" + // [{c, [-1, 0]}]
		"00000000" + // revoked: []
		"00000005"
	if got := hex.EncodeToString(encodeAssignment(a)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	md := encodeMetadata(memberMetadata{URL: "U", ConfigOffset: -1})
	if got := hex.EncodeToString(md); got != "0001"+"000155"+"ffffffffffffffff"+"ffffffff" {
		t.Fatalf("metadata %s", got)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	cur := sampleAssignment()
	cur.Error, cur.DelayMillis, cur.Revoked = 0, 0, Work{}
	for _, m := range []memberMetadata{
		{Version: 1, URL: "http://w1:8083", ConfigOffset: 99, Current: &cur},
		{Version: 1, URL: "", ConfigOffset: -1},
	} {
		got, err := decodeMetadata(encodeMetadata(m))
		if err != nil {
			t.Fatal(err)
		}
		if got.URL != m.URL || got.ConfigOffset != m.ConfigOffset || (got.Current == nil) != (m.Current == nil) {
			t.Fatalf("got %+v, want %+v", got, m)
		}
		if m.Current != nil && !reflect.DeepEqual(got.Current.Assigned, m.Current.Assigned) {
			t.Fatalf("current %+v", got.Current)
		}
	}
}

// TestDecodeOlderVersions reads version 0 layouts (Kafka Connect's eager protocol): no
// current assignment in metadata, no revoked or delay in assignments.
func TestDecodeOlderVersions(t *testing.T) {
	md, err := hex.DecodeString("0000" + "000155" + "0000000000000003")
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMetadata(md)
	if err != nil || m.URL != "U" || m.ConfigOffset != 3 || m.Current != nil {
		t.Fatalf("%+v %v", m, err)
	}
	full := encodeAssignment(wireAssignment{Leader: "L", LeaderURL: "U", Assigned: Work{Connectors: []string{"c"}}})
	v0 := append([]byte{0, 0}, full[2:len(full)-8]...) // version 0, without revoked and delay
	a, err := decodeAssignment(v0)
	if err != nil || len(a.Assigned.Connectors) != 1 || a.Version != 0 {
		t.Fatalf("%+v %v", a, err)
	}
}

func TestDecodeTruncated(t *testing.T) {
	cur := sampleAssignment()
	for name, b := range map[string][]byte{
		"assignment": encodeAssignment(sampleAssignment()),
		"metadata":   encodeMetadata(memberMetadata{URL: "http://x", ConfigOffset: 5, Current: &cur}),
	} {
		decode := func(b []byte) error {
			if name == "assignment" {
				_, err := decodeAssignment(b)
				return err
			}
			_, err := decodeMetadata(b)
			return err
		}
		for n := 0; n < len(b); n++ {
			err := decode(b[:n])
			// Trailing optional fields may be cut at a field boundary (older versions);
			// anything else must fail.
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s[:%d]: %v does not wrap ErrMalformed", name, n, err)
			}
		}
		if err := decode(b[:3]); err == nil {
			t.Fatalf("%s[:3] decoded", name)
		}
	}
}

func TestDecodeGarbage(t *testing.T) {
	for _, h := range []string{
		"",
		"ff",
		"ffff",                               // negative version
		"0001ffff",                           // negative string length
		"00010000" + "7fff",                  // string longer than the bytes
		"0001000000000000000000000000000000", // assignment with a short array count
		"0001" + "0000" + "0000" + "0000" + "0000000000000000" + "7fffffff",                                    // huge array count
		"0001" + "0000" + "0000" + "0000" + "0000000000000000" + "00000001" + "0000" + "00000001" + "fffffffe", // task -2
		"0001" + "0000" + "0000" + "0000" + "0000000000000000" + "00000000" + "00000000" + "ffffffff",          // negative delay
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeAssignment(b); err == nil {
			t.Errorf("assignment %q decoded", h)
		}
	}
	for _, h := range []string{"", "0001", "0001000178", "0001000155000000000000000000000005", "000100015500000000000000007ffffffe"} {
		b, _ := hex.DecodeString(h)
		if _, err := decodeMetadata(b); err == nil {
			t.Errorf("metadata %q decoded", h)
		}
	}
}

func FuzzDecode(f *testing.F) {
	cur := sampleAssignment()
	f.Add(encodeAssignment(sampleAssignment()))
	f.Add(encodeMetadata(memberMetadata{URL: "http://x", ConfigOffset: 5, Current: &cur}))
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := decodeAssignment(b); err == nil {
			// What decodes re-encodes to something that decodes to the same work.
			a2, err := decodeAssignment(encodeAssignment(a))
			if err != nil {
				t.Fatalf("re-decoding: %v", err)
			}
			if !reflect.DeepEqual(a.Assigned.units(), a2.Assigned.units()) || !reflect.DeepEqual(a.Revoked.units(), a2.Revoked.units()) {
				t.Fatalf("work changed: %+v vs %+v", a, a2)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		if m, err := decodeMetadata(b); err == nil {
			if _, err := decodeMetadata(encodeMetadata(m)); err != nil && len(m.URL) <= 0x7fff {
				t.Fatalf("re-decoding metadata: %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}
