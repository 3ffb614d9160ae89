package perf

import (
	"math/bits"
	"time"
)

// The latency histogram is log-linear (the HDR histogram layout): values
// below 2^subBits nanoseconds have a bucket each, and every further power of
// two is split into 2^(subBits-1) equal buckets, so a bucket's width is at
// most 1/64 of its lower bound and a reported percentile (a bucket midpoint)
// is within 0.8% of the true value. The whole uint64 range fits in 3,776
// counters (30 KiB), so
// recording costs one bits.Len64 and one increment, with no allocation and
// no bound on the number of samples.
const (
	subBits    = 7
	subCount   = 1 << subBits  // 128
	halfCount  = subCount >> 1 // 64
	numBuckets = (64-subBits+1)*halfCount + halfCount
)

// histogram records durations. It is not safe for concurrent use: the owner
// (the producer's promise callback, which kgo calls serially) is the only
// writer, and readers read it only after the writer is done.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    uint64
	min    uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	return shift*halfCount + int(v>>uint(shift))
}

// bucketMid returns the midpoint of bucket i's value range.
func bucketMid(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/halfCount - 1
	mantissa := uint64(i%halfCount + halfCount)
	lo := mantissa << uint(shift)
	return lo + (uint64(1)<<uint(shift))/2
}

func (h *histogram) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// quantile returns the q-quantile (0 < q <= 1): the smallest recorded value
// v such that at least q of the samples are <= v, to the histogram's
// precision and clamped to the exact [min, max]. It returns 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			v := bucketMid(i)
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}
