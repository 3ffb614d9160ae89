package taskrun

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// decompressPool recycles the buffers a sink runner's consumer decompresses
// fetched batches into (kgo.PoolDecompressBytes). The runner recycles every
// record once its put is done (kgo.Record.Recycle); when all records of a
// batch were recycled, the consumer zeroes the batch's buffer and puts it
// back here. A reused buffer is resident and warm in cache, where a fresh
// one costs page faults and cache misses for every byte consumed (the
// decompressed batches are most of what a sink runner allocates). Records
// that are never recycled (a put that failed, a batch dropped by a
// rebalance) just leave their buffer to the garbage collector.
//
// Safe for concurrent use (the consumer decompresses on its own goroutines).
type decompressPool struct {
	p sync.Pool // of *[]byte
}

var _ kgo.PoolDecompressBytes = (*decompressPool)(nil)

// maxPooledDecompress is the largest buffer kept (a producer's batch is
// usually at most 1 MiB uncompressed); bigger ones are left to the GC.
const maxPooledDecompress = 8 << 20

// snappyXerialPrefix starts snappy data in Kafka Java's framing, whose
// decoded size is not in a header.
var snappyXerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// GetDecompressBytes returns an empty buffer for decompressing compressed:
// with room for its decoded size when the codec states it (snappy blocks),
// else for a guess the consumer grows past if needed.
func (dp *decompressPool) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	need := 4 * len(compressed)
	if codec == kgo.CodecSnappy && !bytes.HasPrefix(compressed, snappyXerialPrefix) {
		if n, err := s2.DecodedLen(compressed); err == nil && n <= maxPooledDecompress {
			need = n
		}
	}
	if bp, ok := dp.p.Get().(*[]byte); ok && cap(*bp) >= need {
		return (*bp)[:0]
	} // a buffer too small is dropped: the pool converges on ones that fit
	// A little room over the need lets the buffer serve slightly bigger
	// batches later.
	return make([]byte, 0, need+need/8)
}

// PutDecompressBytes takes a buffer back (the consumer zeroed it).
func (dp *decompressPool) PutDecompressBytes(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledDecompress {
		return
	}
	b = b[:0]
	dp.p.Put(&b)
}
