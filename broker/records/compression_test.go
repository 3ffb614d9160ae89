package records

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
)

func testInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 200<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 20000) // ~1 MiB
	return map[string][]byte{
		"empty":  {},
		"byte":   {42},
		"text":   text,
		"random": random,
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := NewCodecs()
	for name, in := range testInputs() {
		for _, codec := range allCodecs {
			t.Run(codec.String()+"/"+name, func(t *testing.T) {
				prefix := []byte("prefix")
				comp, err := c.Compress(append([]byte(nil), prefix...), codec, in)
				requireErr(t, err, nil)
				if !bytes.HasPrefix(comp, prefix) {
					t.Fatalf("Compress did not append to dst")
				}
				out, err := c.Decompress([]byte("x"), codec, comp[len(prefix):])
				requireErr(t, err, nil)
				if out[0] != 'x' || !bytes.Equal(out[1:], in) {
					t.Fatalf("round trip mismatch: %d bytes back, want %d", len(out)-1, len(in))
				}
				if name == "text" && codec != CompressionNone && len(comp) > len(in)/4 {
					t.Fatalf("%v compressed text to %d of %d bytes", codec, len(comp), len(in))
				}
			})
		}
	}
}

func TestSnappyXerial(t *testing.T) {
	c := NewCodecs()
	in := testInputs()["text"]
	framed := xerial.Encode(nil, in) // 32 KiB chunks, as the Java client writes
	if string(framed[:8]) != xerialMagic {
		t.Fatalf("xerial.Encode did not write the xerial header")
	}
	out, err := c.DecompressSnappy(nil, framed)
	requireErr(t, err, nil)
	if !bytes.Equal(out, in) {
		t.Fatalf("xerial decode mismatch")
	}
	// Header only: empty.
	out, err = c.DecompressSnappy(nil, framed[:16])
	requireErr(t, err, nil)
	if len(out) != 0 {
		t.Fatalf("empty xerial stream decoded to %d bytes", len(out))
	}
	for name, bad := range map[string][]byte{
		"truncated chunk":  framed[:len(framed)-1],
		"truncated length": append(append([]byte(nil), framed...), 0, 0),
		"chunk too long":   append(append([]byte(nil), framed[:16]...), 0xff, 0, 0, 0, 1),
	} {
		if _, err := c.DecompressSnappy(nil, bad); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			requireErr(t, err, ErrCorrupt)
		}
	}
}

func TestSnappyClaimsBounded(t *testing.T) {
	c := NewCodecs()
	// A varint header claiming 1 GiB followed by nothing: rejected before
	// allocating.
	block := binary.AppendUvarint(nil, 1<<30)
	_, err := c.DecompressSnappy(nil, block)
	requireErr(t, err, ErrCorrupt)
	// A legitimate but large claim over the limit is ErrTooLarge.
	c = &Codecs{MaxDecompressedBytes: 1000}
	_, err = c.DecompressSnappy(nil, s2.EncodeSnappy(nil, make([]byte, 5000)))
	requireErr(t, err, ErrTooLarge)
}

func TestXXH32(t *testing.T) {
	for in, want := range map[string]uint32{
		"":    0x02CC5D05,
		"abc": 0x32D153FF,
		"Nobody inspects the spammish repetition": 0xE2293B2F,
	} {
		if got := xxh32([]byte(in)); got != want {
			t.Errorf("xxh32(%q) = %08x, want %08x", in, got, want)
		}
	}
	// And it agrees with the LZ4 writer's descriptor checksum.
	c := NewCodecs()
	frame, err := c.CompressLZ4(nil, []byte("hello"))
	requireErr(t, err, nil)
	n := lz4DescriptorEnd(frame)
	if n == 0 {
		t.Fatalf("no frame header")
	}
	if got, want := byte(xxh32(frame[4:n-1])>>8), frame[n-1]; got != want {
		t.Fatalf("descriptor checksum %02x, lz4 wrote %02x", got, want)
	}
}

func TestLZ4BrokenDescriptorChecksum(t *testing.T) {
	c := NewCodecs()
	in := testInputs()["text"][:100000]
	frame, err := c.CompressLZ4(nil, in)
	requireErr(t, err, nil)
	n := lz4DescriptorEnd(frame)

	broken := append([]byte(nil), frame...)
	broken[n-1] = byte(xxh32(broken[:n-1]) >> 8) // Kafka magic 0 style: magic bytes included
	if broken[n-1] == frame[n-1] {
		t.Skip("broken and correct checksums collide for this header")
	}
	orig := append([]byte(nil), broken...)
	out, err := c.DecompressLZ4(nil, broken)
	requireErr(t, err, nil)
	if !bytes.Equal(out, in) {
		t.Fatalf("decode mismatch")
	}
	if !bytes.Equal(orig, broken) {
		t.Fatalf("DecompressLZ4 modified its input")
	}

	wrong := append([]byte(nil), frame...)
	wrong[n-1] ^= 0x5a
	if wrong[n-1] == broken[n-1] {
		wrong[n-1] ^= 0x01
	}
	_, err = c.DecompressLZ4(nil, wrong)
	requireErr(t, err, ErrCorrupt)
}

func TestDecompressLimit(t *testing.T) {
	c := &Codecs{MaxDecompressedBytes: 10000}
	big := NewCodecs()
	in := make([]byte, 100000)
	for _, codec := range allCodecs[1:] {
		t.Run(codec.String(), func(t *testing.T) {
			comp, err := big.Compress(nil, codec, in)
			requireErr(t, err, nil)
			_, err = c.Decompress(nil, codec, comp)
			requireErr(t, err, ErrTooLarge)
			// Exactly at the limit is fine.
			comp, err = big.Compress(nil, codec, in[:10000])
			requireErr(t, err, nil)
			out, err := c.Decompress(nil, codec, comp)
			requireErr(t, err, nil)
			if len(out) != 10000 {
				t.Fatalf("%d bytes", len(out))
			}
		})
	}
}

func TestDecompressGarbage(t *testing.T) {
	c := NewCodecs()
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 64)
	for _, codec := range allCodecs[1:] {
		_, err := c.Decompress(nil, codec, garbage)
		requireErr(t, err, ErrCorrupt)
		// A truncated real stream too.
		comp, _ := c.Compress(nil, codec, testInputs()["text"][:50000])
		_, err = c.Decompress(nil, codec, comp[:len(comp)/2])
		if err == nil {
			t.Errorf("%v: truncated stream decoded", codec)
		}
	}
	_, err := c.Decompress(nil, Compression(6), garbage)
	requireErr(t, err, ErrUnsupportedCompression)
}

// TestCodecsConcurrent runs every codec from several goroutines at once on
// one Codecs (meaningful under -race).
func TestCodecsConcurrent(t *testing.T) {
	c := NewCodecs()
	in := testInputs()["text"][:200000]
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(allCodecs))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				for _, codec := range allCodecs {
					comp, err := c.Compress(nil, codec, in)
					if err == nil {
						var out []byte
						out, err = c.Decompress(nil, codec, comp)
						if err == nil && !bytes.Equal(out, in) {
							err = ErrCorrupt
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
