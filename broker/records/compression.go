package records

// Compression codecs as Kafka uses them (format version 1 of this file: the
// byte formats are Kafka's and never change; the version number is for our
// choices below).
//
//	codec   attribute  wire format read                      wire format written
//	gzip    1          RFC 1952 gzip, members may be          one gzip member, default level
//	                   concatenated
//	snappy  2          a raw Snappy block, or xerial framing: one raw Snappy block (what kgo writes;
//	                   "\x82SNAPPY\x00", int32 version,       Java, librdkafka and kgo all read it)
//	                   int32 min compatible version, then
//	                   repeated (int32 big-endian length,
//	                   raw Snappy block)
//	lz4     3          an LZ4 frame (magic 0x184D2204). The   one LZ4 frame, 64 KiB independent
//	                   frame descriptor checksum may also be  blocks, content checksum, correct
//	                   Kafka's broken one (KAFKA-3160: the    descriptor checksum
//	                   xxh32 also covered the 4 magic bytes),
//	                   which magic 0 producers wrote
//	zstd    4          zstd frames (only in v2 batches)       one zstd frame, default level, 1 MiB window
//
// Decompression is bounded by Codecs.MaxDecompressedBytes: output past the
// bound fails with ErrTooLarge. A malformed input fails with ErrCorrupt.
// Snappy blocks that declare a decoded length more than 32 times their own
// size are rejected as corrupt before anything is allocated: no Snappy
// encoder can produce them (a 3-byte copy element yields at most 64 bytes).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultMaxDecompressedBytes is the decompressed size bound used when
// Codecs.MaxDecompressedBytes is zero.
const DefaultMaxDecompressedBytes = 256 << 20

// ErrUnsupportedCompression is returned, joined with ErrInvalid, for a codec
// the format does not allow (zstd in a legacy message set) and, joined with
// ErrCorrupt, for an unknown codec id (5-7). A broker may map it to
// UNSUPPORTED_COMPRESSION_TYPE.
var ErrUnsupportedCompression = errors.New("records: unsupported compression codec")

// maxPooledBuffer is the largest scratch buffer put back into the pool; larger
// ones are left to the garbage collector so that one huge batch does not pin
// memory.
const maxPooledBuffer = 8 << 20

// Codecs compresses and decompresses with pooled, reusable encoders and
// decoders, and implements the batch operations of this package (SplitProduce,
// Records, Build, DownConvert) on top of them.
//
// The zero value is ready to use; NewCodecs returns one too. A Codecs is safe
// for concurrent use by many goroutines, must not be copied after first use,
// starts no goroutines and needs no Close. Configure its fields before the
// first use and do not change them afterwards.
type Codecs struct {
	// MaxDecompressedBytes bounds the output of one decompression (one
	// batch or one legacy wrapper message); 0 means
	// DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int

	// ShallowProduceValidation, when true, makes SplitProduce skip the
	// decompression of compressed v2 batches: their records are then not
	// checked (the header and the CRC still are). Uncompressed batches are
	// always checked record by record, which costs little.
	ShallowProduceValidation bool

	gzipW sync.Pool // *gzip.Writer
	gzipR sync.Pool // *gzipReader
	lz4W  sync.Pool // *lz4.Writer
	lz4R  sync.Pool // *lz4Reader
	bufs  sync.Pool // *[]byte scratch buffers

	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
}

// NewCodecs returns a ready Codecs with default settings.
func NewCodecs() *Codecs { return new(Codecs) }

func (c *Codecs) maxOut() int {
	if c.MaxDecompressedBytes > 0 {
		return c.MaxDecompressedBytes
	}
	return DefaultMaxDecompressedBytes
}

// getBuf returns an empty pooled scratch buffer; give it back with putBuf.
func (c *Codecs) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (c *Codecs) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		c.bufs.Put(b)
	}
}

// Compress appends src compressed with codec to dst. CompressionNone appends
// src unchanged.
func (c *Codecs) Compress(dst []byte, codec Compression, src []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return append(dst, src...), nil
	case CompressionGzip:
		return c.CompressGzip(dst, src)
	case CompressionSnappy:
		return c.CompressSnappy(dst, src)
	case CompressionLZ4:
		return c.CompressLZ4(dst, src)
	case CompressionZstd:
		return c.CompressZstd(dst, src)
	}
	return dst, fmt.Errorf("%w: %w: %v", ErrInvalid, ErrUnsupportedCompression, codec)
}

// Decompress appends src decompressed with codec to dst. CompressionNone
// appends src unchanged. It fails with ErrCorrupt on malformed input and with
// ErrTooLarge when the output would exceed MaxDecompressedBytes.
func (c *Codecs) Decompress(dst []byte, codec Compression, src []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return append(dst, src...), nil
	case CompressionGzip:
		return c.DecompressGzip(dst, src)
	case CompressionSnappy:
		return c.DecompressSnappy(dst, src)
	case CompressionLZ4:
		return c.DecompressLZ4(dst, src)
	case CompressionZstd:
		return c.DecompressZstd(dst, src)
	}
	return dst, fmt.Errorf("%w: %w: %v", ErrCorrupt, ErrUnsupportedCompression, codec)
}

// appendWriter is an io.Writer appending to a slice; it lets the streaming
// encoders write straight into the caller's dst.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// readAllBounded appends everything r yields to dst, failing with ErrTooLarge
// past max bytes and with ErrCorrupt on a read error.
func readAllBounded(dst []byte, r io.Reader, limit int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			grow := max(len(dst)-start, 16<<10)
			if room := start + limit + 1 - len(dst); grow > room {
				grow = room
			}
			dst = slices.Grow(dst, grow)
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], fmt.Errorf("%w: decompressed size over %d bytes", ErrTooLarge, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
}

// ----- gzip -----

type gzipReader struct {
	r   gzip.Reader
	src bytes.Reader
}

// CompressGzip appends src gzip-compressed (default level) to dst.
func (c *Codecs) CompressGzip(dst, src []byte) ([]byte, error) {
	w := &appendWriter{b: dst}
	gz, ok := c.gzipW.Get().(*gzip.Writer)
	if ok {
		gz.Reset(w)
	} else {
		gz = gzip.NewWriter(w)
	}
	_, err := gz.Write(src)
	if err == nil {
		err = gz.Close()
	}
	gz.Reset(nil)
	c.gzipW.Put(gz)
	if err != nil {
		return dst, fmt.Errorf("records: gzip: %w", err)
	}
	return w.b, nil
}

// DecompressGzip appends the gzip-decompressed src to dst.
func (c *Codecs) DecompressGzip(dst, src []byte) ([]byte, error) {
	gr, ok := c.gzipR.Get().(*gzipReader)
	if !ok {
		gr = new(gzipReader)
	}
	defer c.gzipR.Put(gr)
	gr.src.Reset(src)
	defer gr.src.Reset(nil)
	if err := gr.r.Reset(&gr.src); err != nil {
		return dst, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
	}
	return readAllBounded(dst, &gr.r, c.maxOut())
}

// ----- snappy -----

// xerialMagic starts a xerial-framed snappy stream; the header is the magic,
// then int32 version and int32 minimum compatible version.
const (
	xerialMagic     = "\x82SNAPPY\x00"
	xerialHeaderLen = 16
)

// maxSnappyRatio bounds the decoded length a snappy block may declare,
// relative to its own size (see the file comment).
const maxSnappyRatio = 32

// CompressSnappy appends src as one raw Snappy block to dst.
func (c *Codecs) CompressSnappy(dst, src []byte) ([]byte, error) {
	dst = slices.Grow(dst, s2.MaxEncodedLen(len(src)))
	out := s2.EncodeSnappy(dst[len(dst):cap(dst)], src)
	return dst[:len(dst)+len(out)], nil
}

// DecompressSnappy appends the decoded src to dst; src is either a raw Snappy
// block or a xerial-framed stream.
func (c *Codecs) DecompressSnappy(dst, src []byte) ([]byte, error) {
	limit := c.maxOut()
	if len(src) >= xerialHeaderLen && string(src[:len(xerialMagic)]) == xerialMagic {
		return decodeXerial(dst, src[xerialHeaderLen:], limit)
	}
	return decodeSnappyBlock(dst, src, limit)
}

func snappyDecodedLen(block []byte, limit int) (int, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return 0, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if n > maxSnappyRatio*len(block)+64 {
		return 0, fmt.Errorf("%w: snappy block of %d bytes claims %d decoded bytes", ErrCorrupt, len(block), n)
	}
	if n > limit {
		return 0, fmt.Errorf("%w: decompressed size %d over %d bytes", ErrTooLarge, n, limit)
	}
	return n, nil
}

func decodeSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := snappyDecodedLen(block, limit)
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, n)
	if _, err := s2.Decode(dst[len(dst):len(dst)+n], block); err != nil {
		return dst, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	return dst[:len(dst)+n], nil
}

// decodeXerial decodes the chunks that follow a xerial header.
func decodeXerial(dst, src []byte, limit int) ([]byte, error) {
	// First pass: check the framing and sum the decoded lengths so that dst
	// grows once.
	total := 0
	for rem := src; len(rem) > 0; {
		if len(rem) < 4 {
			return dst, fmt.Errorf("%w: xerial: truncated chunk length", ErrCorrupt)
		}
		size := binary.BigEndian.Uint32(rem)
		rem = rem[4:]
		if uint64(size) > uint64(len(rem)) {
			return dst, fmt.Errorf("%w: xerial: chunk of %d bytes past the end", ErrCorrupt, size)
		}
		n, err := snappyDecodedLen(rem[:size], limit)
		if err != nil {
			return dst, err
		}
		if total += n; total > limit {
			return dst, fmt.Errorf("%w: decompressed size over %d bytes", ErrTooLarge, limit)
		}
		rem = rem[size:]
	}
	start := len(dst)
	dst = slices.Grow(dst, total)
	for len(src) > 0 {
		size := binary.BigEndian.Uint32(src)
		block := src[4 : 4+size]
		src = src[4+size:]
		n, _ := s2.DecodedLen(block)
		if _, err := s2.Decode(dst[len(dst):len(dst)+n], block); err != nil {
			return dst[:start], fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
		dst = dst[:len(dst)+n]
	}
	return dst, nil
}

// ----- lz4 -----

const lz4FrameMagic = 0x184D2204

// lz4Reader is a pooled LZ4 frame decoder and what it reads from: a copy of
// the frame header (with a repaired checksum) followed by the rest of src.
type lz4Reader struct {
	r    *lz4.Reader
	src  prefixReader
	head [4 + 15]byte
}

// prefixReader reads a, then b.
type prefixReader struct{ a, b []byte }

func (p *prefixReader) Read(out []byte) (int, error) {
	if len(p.a) > 0 {
		n := copy(out, p.a)
		p.a = p.a[n:]
		return n, nil
	}
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	n := copy(out, p.b)
	p.b = p.b[n:]
	return n, nil
}

// CompressLZ4 appends src as one LZ4 frame (64 KiB independent blocks, content
// checksum) to dst.
func (c *Codecs) CompressLZ4(dst, src []byte) ([]byte, error) {
	w := &appendWriter{b: dst}
	lw, ok := c.lz4W.Get().(*lz4.Writer)
	if ok {
		lw.Reset(w)
	} else {
		lw = lz4.NewWriter(w)
		if err := lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			return dst, fmt.Errorf("records: lz4: %w", err)
		}
	}
	_, err := lw.Write(src)
	if err == nil {
		err = lw.Close()
	}
	lw.Reset(nil)
	c.lz4W.Put(lw)
	if err != nil {
		return dst, fmt.Errorf("records: lz4: %w", err)
	}
	return w.b, nil
}

// DecompressLZ4 appends the decoded LZ4 frame src to dst. A frame descriptor
// checksum computed the broken Kafka way (over the magic bytes too) is
// accepted.
func (c *Codecs) DecompressLZ4(dst, src []byte) ([]byte, error) {
	lr, ok := c.lz4R.Get().(*lz4Reader)
	if !ok {
		lr = &lz4Reader{r: lz4.NewReader(nil)}
	}
	defer c.lz4R.Put(lr)
	lr.src = prefixReader{b: src}
	if n := lz4DescriptorEnd(src); n > 0 {
		// The header is copied and its checksum repaired only if it is
		// Kafka's broken one; src itself is never written.
		hc := src[n-1]
		if hc != byte(xxh32(src[4:n-1])>>8) && hc == byte(xxh32(src[:n-1])>>8) {
			copy(lr.head[:], src[:n])
			lr.head[n-1] = byte(xxh32(src[4:n-1]) >> 8)
			lr.src = prefixReader{a: lr.head[:n], b: src[n:]}
		}
	}
	defer func() { lr.src = prefixReader{} }()
	lr.r.Reset(&lr.src)
	return readAllBounded(dst, lr.r, c.maxOut())
}

// lz4DescriptorEnd returns the length of the LZ4 frame header at the start of
// src (magic, descriptor and its checksum byte), or 0 if src does not start
// with a whole frame header.
func lz4DescriptorEnd(src []byte) int {
	if len(src) < 7 || binary.LittleEndian.Uint32(src) != lz4FrameMagic {
		return 0
	}
	flg := src[4]
	n := 4 + 2 + 1 // magic, FLG, BD, HC
	if flg&0x08 != 0 {
		n += 8 // content size
	}
	if flg&0x01 != 0 {
		n += 4 // dictionary id
	}
	if len(src) < n {
		return 0
	}
	return n
}

// xxh32 is XXH32 with seed 0, used only to check and repair LZ4 frame
// descriptor checksums (a few bytes), so it favors brevity over speed.
func xxh32(b []byte) uint32 {
	var (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	round := func(acc, in uint32) uint32 { return bits.RotateLeft32(acc+in*p2, 13) * p1 }
	n := len(b)
	var h uint32
	if n >= 16 {
		v1, v2, v3, v4 := p1+p2, p2, uint32(0), 0-p1
		for len(b) >= 16 {
			v1 = round(v1, binary.LittleEndian.Uint32(b[0:]))
			v2 = round(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = round(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = round(v4, binary.LittleEndian.Uint32(b[12:]))
			b = b[16:]
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = p5
	}
	h += uint32(n)
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * p3
		h = bits.RotateLeft32(h, 17) * p4
	}
	for _, x := range b {
		h += uint32(x) * p5
		h = bits.RotateLeft32(h, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}

// ----- zstd -----

func (c *Codecs) zstdInit() error {
	c.zstdOnce.Do(func() {
		c.zstdEnc, c.zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(0), // GOMAXPROCS concurrent EncodeAll calls
			zstd.WithWindowSize(1<<20),
			zstd.WithZeroFrames(true),
		)
		if c.zstdErr != nil {
			return
		}
		limit := uint64(c.maxOut())
		c.zstdDec, c.zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(limit),
			zstd.WithDecoderMaxWindow(max(min(limit, 128<<20), zstd.MinWindowSize)),
		)
	})
	if c.zstdErr != nil {
		return fmt.Errorf("records: zstd: %w", c.zstdErr)
	}
	return nil
}

// CompressZstd appends src as one zstd frame to dst.
func (c *Codecs) CompressZstd(dst, src []byte) ([]byte, error) {
	if err := c.zstdInit(); err != nil {
		return dst, err
	}
	return c.zstdEnc.EncodeAll(src, dst), nil
}

// DecompressZstd appends the decoded zstd frames of src to dst.
func (c *Codecs) DecompressZstd(dst, src []byte) ([]byte, error) {
	if err := c.zstdInit(); err != nil {
		return dst, err
	}
	start := len(dst)
	out, err := c.zstdDec.DecodeAll(src, dst)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst[:start], fmt.Errorf("%w: zstd: %w", ErrTooLarge, err)
	case err != nil:
		return dst[:start], fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	case len(out)-start > c.maxOut():
		return dst[:start], fmt.Errorf("%w: decompressed size over %d bytes", ErrTooLarge, c.maxOut())
	}
	return out, nil
}
