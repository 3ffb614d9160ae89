package broker

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func rawFrame(key, version int16, corr int32, body []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// expectClosed asserts the broker closes the connection after frame.
func expectClosed(t *testing.T, addr string, frame []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(frame)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection not closed by the broker: %v", err)
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	b := startBroker(t, "", "socket.request.max.bytes", "1048576")
	createTopic(t, b.Addr(), "alive", 1, nil)
	healthy := newClient(t, b.Addr(), kgo.DefaultProduceTopic("alive"))

	huge := binary.BigEndian.AppendUint32(nil, 64<<20)
	expectClosed(t, b.Addr(), huge)
	expectClosed(t, b.Addr(), binary.BigEndian.AppendUint32(nil, 0xffffffff))             // negative size
	expectClosed(t, b.Addr(), rawFrame(999, 0, 1, nil))                                   // unknown api key
	expectClosed(t, b.Addr(), rawFrame(0, 99, 1, nil))                                    // unsupported Produce version
	expectClosed(t, b.Addr(), rawFrame(3, 1, 1, []byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3})) // Metadata with a bogus array length

	if err := healthy.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Value: []byte("still here")}).FirstErr(); err != nil {
		t.Fatalf("healthy client failed after bad frames: %v", err)
	}
}

func TestApiVersionsFallbackForNewerClients(t *testing.T) {
	b := startBroker(t, "")
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(rawFrame(18, 99, 7, []byte{0, 0, 0}))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		t.Fatalf("correlation id %d, want 7", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) < 20 {
		t.Fatalf("error %d with %d keys, want UNSUPPORTED_VERSION and the supported ranges", resp.ErrorCode, len(resp.ApiKeys))
	}
}

func TestMetricsEndpoint(t *testing.T) {
	b := startBroker(t, "")
	createTopic(t, b.Addr(), "m", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("m"))
	if err := cl.ProduceSync(testCtx(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if p := rawProduce(t, newClient(t, b.Addr()), "no-such-topic", batch(-1, -1, -1, "x")); p.ErrorCode == 0 {
		t.Fatal("produce to a missing topic succeeded")
	}
	resp, err := http.Get("http://" + b.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`tributary_broker_requests_total{api="Produce"}`,
		`tributary_broker_partition_size_bytes{partition="0",topic="m"}`,
		`tributary_broker_partition_high_watermark{partition="0",topic="m"} 1`,
		`tributary_broker_fsync_seconds_count`,
		`tributary_broker_produced_records_total 1`,
		`tributary_broker_groups`,
		`tributary_broker_connections`,
		`tributary_broker_errors_total{api="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"} 1`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// FuzzParseRequest feeds arbitrary frames to the request decoder: it must
// never panic, and whatever it accepts has a known key and version.
func FuzzParseRequest(f *testing.F) {
	for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(), kmsg.NewPtrFetchRequest(), kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrJoinGroupRequest()} {
		for _, v := range []int16{0, 3, 9, 12} {
			if v > req.MaxVersion() {
				continue
			}
			req.SetVersion(v)
			fr := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
			frame := fr.AppendRequest(nil, req, 1)
			f.Add(frame[4:])
		}
	}
	b := &Broker{}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < 8 {
			return
		}
		r, err := b.parseRequest(body)
		if err != nil || r == nil {
			return
		}
		min, max, ok := supportedVersions(r.key)
		if !ok || r.version < min || r.version > max || r.kreq == nil {
			t.Fatalf("accepted key %d v%d", r.key, r.version)
		}
	})
}
