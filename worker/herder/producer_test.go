package herder

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProducerCodec(t *testing.T) {
	for _, c := range []struct {
		name string
		want kgo.CompressionCodec
	}{
		{"", kgo.SnappyCompression()}, {"snappy", kgo.SnappyCompression()}, {"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()}, {"LZ4", kgo.Lz4Compression()}, {" zstd ", kgo.ZstdCompression()},
	} {
		got, err := producerCodec(c.name)
		if err != nil || got != c.want {
			t.Errorf("producerCodec(%q) = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := producerCodec("brotli"); err == nil {
		t.Error("producerCodec(brotli): no error")
	}
}
