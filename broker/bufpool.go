package broker

import "sync"

// bufPool recycles the large byte buffers of fetch reads and encoded
// responses, so that serving consumers does not allocate (and zero) a
// multi-megabyte buffer per request. Buffers under 64 KiB are not worth
// pooling; over 64 MiB they are not kept.
type bufPool struct{ p sync.Pool }

const (
	minPooled = 64 << 10
	maxPooled = 64 << 20
)

// get returns an empty buffer with at least min capacity.
func (bp *bufPool) get(min int) []byte {
	if v, ok := bp.p.Get().(*[]byte); ok {
		if b := *v; cap(b) >= min {
			return b[:0]
		}
		// Too small for this use: leave it to the garbage collector.
	}
	return make([]byte, 0, max(min, minPooled))
}

// put gives a buffer back; the caller must hold no reference into it.
func (bp *bufPool) put(b []byte) {
	if cap(b) < minPooled || cap(b) > maxPooled {
		return
	}
	b = b[:0]
	bp.p.Put(&b)
}
