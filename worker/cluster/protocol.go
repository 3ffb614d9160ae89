package cluster

// Wire formats of the "connect" group protocol, version 1 ("compatible"), byte for byte as
// Kafka Connect's IncrementalCooperativeConnectProtocol writes them, so Tributary and Kafka
// Connect workers read each other's metadata and assignments. All integers are big-endian.
//
//	string          int16 length N, then N bytes of UTF-8 (N >= 0; -1 is not allowed)
//	nullable bytes  int32 length N, then N bytes; N = -1 means null
//	array of T      int32 count N, then N times T; N = -1 means null (decoded as empty)
//
// Member metadata (JoinGroup protocol "compatible", sent by every member):
//
//	Version            int16   1 (0 is accepted on decode: it has no CurrentAssignment)
//	URL                string  the worker's REST URL
//	ConfigOffset       int64   offset of the last config-topic record the worker has read
//	CurrentAssignment  nullable bytes: the member's current assignment, encoded as below
//	                   (null when it has none yet)
//
// Assignment (SyncGroup, one per member):
//
//	Version            int16   1 (0 = Kafka Connect's eager format, without Revoked/Delay)
//	Error              int16   0 none, 1 CONFIG_MISMATCH
//	Leader             string  the leader's member id
//	LeaderURL          string  the leader's REST URL
//	ConfigOffset       int64   the config-topic offset the leader assigned from
//	Assignment         array of ConnectorAssignment
//	Revoked            array of ConnectorAssignment (version >= 1; absent means empty)
//	ScheduledDelay     int32   ms until lost work is reassigned (version >= 1; absent means 0)
//
//	ConnectorAssignment:
//	  Connector        string
//	  Tasks            array of int32; -1 (ConnectorTask) is the connector instance itself
//
// Decoding is tolerant the way Kafka Connect's is: fields a version does not have take their
// defaults, and bytes after the last known field are ignored (a newer version may append
// fields). Anything truncated or malformed is an error wrapping ErrMalformed, never a panic.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Protocol names and constants of the group protocol.
const (
	// ProtocolType is the JoinGroup protocol type of Connect worker groups.
	ProtocolType = "connect"
	// ProtocolName is the one protocol offered: Kafka Connect's "compatible" (version 1).
	ProtocolName = "compatible"
	// ProtocolVersion is the version written in metadata and assignments.
	ProtocolVersion int16 = 1
	// ConnectorTask is the task number that stands for the connector instance itself.
	ConnectorTask = -1
)

// Assignment error codes (Kafka Connect's ConnectProtocol.Assignment).
const (
	ErrNone           int16 = 0
	ErrConfigMismatch int16 = 1
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("cluster: malformed connect protocol bytes")

// memberMetadata is the decoded JoinGroup metadata of one member.
type memberMetadata struct {
	Version      int16
	URL          string
	ConfigOffset int64
	Current      *wireAssignment // nil when the member sent null
}

// wireAssignment is the decoded SyncGroup assignment of one member.
type wireAssignment struct {
	Version      int16
	Error        int16
	Leader       string
	LeaderURL    string
	ConfigOffset int64
	Assigned     Work
	Revoked      Work
	DelayMillis  int32
}

func encodeMetadata(m memberMetadata) []byte {
	b := make([]byte, 0, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(ProtocolVersion))
	b = appendString(b, m.URL)
	b = binary.BigEndian.AppendUint64(b, uint64(m.ConfigOffset))
	if m.Current == nil {
		return binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // -1: null
	}
	a := encodeAssignment(*m.Current)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a)))
	return append(b, a...)
}

func decodeMetadata(b []byte) (memberMetadata, error) {
	r := reader{b: b}
	var m memberMetadata
	m.Version = r.int16()
	if r.err == nil && m.Version < 0 {
		return m, fmt.Errorf("%w: metadata version %d", ErrMalformed, m.Version)
	}
	m.URL = r.string()
	m.ConfigOffset = r.int64()
	if r.err == nil && m.Version >= 1 && !r.empty() {
		if a, ok := r.nullableBytes(); ok && r.err == nil {
			wa, err := decodeAssignment(a)
			if err != nil {
				return m, fmt.Errorf("current assignment: %w", err)
			}
			m.Current = &wa
		}
	}
	if r.err != nil {
		return m, fmt.Errorf("metadata: %w", r.err)
	}
	return m, nil
}

func encodeAssignment(a wireAssignment) []byte {
	b := make([]byte, 0, 128)
	b = binary.BigEndian.AppendUint16(b, uint16(ProtocolVersion))
	b = binary.BigEndian.AppendUint16(b, uint16(a.Error))
	b = appendString(b, a.Leader)
	b = appendString(b, a.LeaderURL)
	b = binary.BigEndian.AppendUint64(b, uint64(a.ConfigOffset))
	b = appendWork(b, a.Assigned)
	b = appendWork(b, a.Revoked)
	return binary.BigEndian.AppendUint32(b, uint32(a.DelayMillis))
}

func decodeAssignment(b []byte) (wireAssignment, error) {
	r := reader{b: b}
	var a wireAssignment
	a.Version = r.int16()
	if r.err == nil && a.Version < 0 {
		return a, fmt.Errorf("%w: assignment version %d", ErrMalformed, a.Version)
	}
	a.Error = r.int16()
	a.Leader = r.string()
	a.LeaderURL = r.string()
	a.ConfigOffset = r.int64()
	a.Assigned = r.work()
	if a.Version >= 1 && r.err == nil && !r.empty() {
		a.Revoked = r.work()
		if r.err == nil && !r.empty() {
			a.DelayMillis = r.int32()
			if r.err == nil && a.DelayMillis < 0 {
				return a, fmt.Errorf("%w: negative scheduled delay %d", ErrMalformed, a.DelayMillis)
			}
		}
	}
	if r.err != nil {
		return a, fmt.Errorf("assignment: %w", r.err)
	}
	return a, nil
}

func appendString(b []byte, s string) []byte {
	if len(s) > 0x7FFF {
		s = s[:0x7FFF] // cannot happen for ids and URLs; keeps the encoding valid
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendWork writes w as an array of ConnectorAssignment, one entry per connector (sorted),
// the connector instance (-1) first when it is part of w, then its tasks in order.
func appendWork(b []byte, w Work) []byte {
	byConn := map[string][]int32{}
	for _, c := range w.Connectors {
		byConn[c] = append(byConn[c], ConnectorTask)
	}
	for _, t := range w.Tasks {
		byConn[t.Connector] = append(byConn[t.Connector], int32(t.Task))
	}
	names := make([]string, 0, len(byConn))
	for c := range byConn {
		names = append(names, c)
	}
	sort.Strings(names)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, c := range names {
		ts := byConn[c]
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		b = appendString(b, c)
		b = binary.BigEndian.AppendUint32(b, uint32(len(ts)))
		for _, t := range ts {
			b = binary.BigEndian.AppendUint32(b, uint32(t))
		}
	}
	return b
}

// reader decodes big-endian fields; the first error sticks and later reads return zeros.
type reader struct {
	b   []byte
	err error
}

func (r *reader) empty() bool { return len(r.b) == 0 }

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: %s needs %d bytes, %d left", ErrMalformed, what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) int16() int16 {
	v := r.take(2, "int16")
	if v == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(v))
}

func (r *reader) int32() int32 {
	v := r.take(4, "int32")
	if v == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(v))
}

func (r *reader) int64() int64 {
	v := r.take(8, "int64")
	if v == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (r *reader) string() string {
	n := r.int16()
	if r.err == nil && n < 0 {
		r.err = fmt.Errorf("%w: string length %d", ErrMalformed, n)
	}
	return string(r.take(int(n), "string"))
}

// nullableBytes returns the bytes and whether they are non-null.
func (r *reader) nullableBytes() ([]byte, bool) {
	n := r.int32()
	if r.err != nil {
		return nil, false
	}
	if n == -1 {
		return nil, false
	}
	if n < 0 {
		r.err = fmt.Errorf("%w: bytes length %d", ErrMalformed, n)
		return nil, false
	}
	return r.take(int(n), "bytes"), true
}

// arrayLen reads an array count; null (-1) is 0. minElem bounds the count by the bytes left
// so a garbage count cannot make us allocate.
func (r *reader) arrayLen(minElem int) int {
	n := r.int32()
	if r.err != nil || n == -1 {
		return 0
	}
	if n < 0 || int(n) > len(r.b)/minElem {
		r.err = fmt.Errorf("%w: array count %d with %d bytes left", ErrMalformed, n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) work() Work {
	var w Work
	n := r.arrayLen(2 + 4) // empty connector name + empty task array
	seen := map[TaskID]bool{}
	for i := 0; i < n && r.err == nil; i++ {
		c := r.string()
		nt := r.arrayLen(4)
		for j := 0; j < nt && r.err == nil; j++ {
			t := int(r.int32())
			if r.err != nil {
				break
			}
			if t < ConnectorTask {
				r.err = fmt.Errorf("%w: task number %d of connector %q", ErrMalformed, t, c)
				break
			}
			id := TaskID{Connector: c, Task: t}
			if seen[id] {
				continue
			}
			seen[id] = true
			if t == ConnectorTask {
				w.Connectors = append(w.Connectors, c)
			} else {
				w.Tasks = append(w.Tasks, id)
			}
		}
	}
	return w.normalized()
}
