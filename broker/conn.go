package broker

// Connection framing (Kafka protocol): every request and response is
// prefixed by its int32 size. A request header is
//
//	api_key int16, api_version int16, correlation_id int32,
//	client_id nullable string (int16 length; -1 = null),
//	tagged fields (unsigned-varint count, then tag/size/bytes) when the
//	request version is flexible (header v2),
//
// followed by the request body, which kmsg decodes. A response is
// correlation_id int32, then an empty tagged-field section (one 0 byte)
// when the response is flexible, except for ApiVersions whose response
// header never has tags, then the body encoded by kmsg.
//
// Requests of one connection are handled one at a time and answered in
// order, as Kafka does; a reader goroutine decodes the next frames while
// one is being handled. A frame over socket.request.max.bytes, an unknown
// api key, a version the broker does not serve (other than ApiVersions,
// which answers UNSUPPORTED_VERSION with the supported ranges) or a body
// that does not decode closes that connection only.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type request struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
	host     string // the client's address, for group member descriptions
	kreq     kmsg.Request
	// release holds pooled buffers the response refers to; they go back to
	// the pool once the response is encoded.
	release [][]byte
	size    int
	recvAt  time.Time
}

type conn struct {
	b      *Broker
	nc     net.Conn
	remote string
	reqs   chan *request

	closeOnce sync.Once
	stopOnce  sync.Once
	stopping  chan struct{}
}

func newConn(b *Broker, nc net.Conn) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &conn{b: b, nc: nc, remote: nc.RemoteAddr().String(), reqs: make(chan *request, 8), stopping: make(chan struct{})}
}

// stopReading makes the connection finish the requests it has read, answer
// them, and close: used by a graceful shutdown.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.nc.SetReadDeadline(time.Now())
	})
}

func (c *conn) close() { c.closeOnce.Do(func() { c.nc.Close() }) }

// writeTimeout bounds how long one answer may take to reach the client.
const writeTimeout = 60 * time.Second

// errClose means: log and close this connection.
var errClose = errors.New("closing connection")

// serve runs the connection until it ends; it owns the reader goroutine.
func (c *conn) serve() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(c.reqs)
		if err := c.readLoop(); err != nil {
			c.b.log.Warn("closing client connection", "remote", c.remote, "err", err)
		}
	}()
	w := bufio.NewWriterSize(c.nc, 64<<10)
	failed := false
	for r := range c.reqs {
		if failed {
			continue // drain after a write failure; the reader ends when the conn closes
		}
		buf, err := c.handle(r, c.b.bufs.get(0))
		// A client that stops reading its answers must not pin this
		// connection forever.
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err == nil && len(buf) > 0 {
			_, err = w.Write(buf)
		}
		if err == nil && len(c.reqs) == 0 {
			err = w.Flush()
		}
		c.b.bufs.put(buf) // bufio copied or wrote it: no reference is kept
		if err != nil {
			if !errors.Is(err, errClose) {
				c.b.log.Debug("client connection write failed", "remote", c.remote, "err", err)
			} else {
				w.Flush()
			}
			failed = true
			c.close()
		}
	}
	w.Flush()
	c.close()
	wg.Wait()
}

func (c *conn) readLoop() error {
	var sizeBuf [4]byte
	maxBytes := c.b.cfg.SocketRequestMaxBytes
	for {
		select {
		case <-c.stopping:
			return nil
		default:
		}
		c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.ConnectionsMaxIdle))
		if _, err := io.ReadFull(c.nc, sizeBuf[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isTimeout(err) {
				return nil
			}
			return nil // reset by peer and the like are normal ends
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > maxBytes {
			c.b.metrics.badRequests.WithLabelValues("size").Inc()
			return fmt.Errorf("request size %d outside 8..%d (socket.request.max.bytes)", size, maxBytes)
		}
		body := make([]byte, size)
		c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c.nc, body); err != nil {
			return fmt.Errorf("reading a %d-byte request: %w", size, err)
		}
		r, err := c.b.parseRequest(body)
		if err != nil {
			c.b.metrics.badRequests.WithLabelValues("decode").Inc()
			if r != nil && r.key == 18 { // ApiVersions with a version we do not know: answer, then go on
				r.kreq = nil
				c.reqs <- r
				continue
			}
			return err
		}
		c.b.metrics.bytesRecv.Add(float64(size + 4))
		r.host = c.remote
		c.reqs <- r
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseRequest decodes a request frame. For an ApiVersions request of a
// version we cannot decode it returns the request (with kreq nil) and an error.
func (b *Broker) parseRequest(body []byte) (*request, error) {
	r := &request{
		key:     int16(binary.BigEndian.Uint16(body[0:])),
		version: int16(binary.BigEndian.Uint16(body[2:])),
		corrID:  int32(binary.BigEndian.Uint32(body[4:])),
		size:    len(body),
		recvAt:  time.Now(),
	}
	rest := body[8:]
	if len(rest) < 2 {
		return nil, fmt.Errorf("request header truncated")
	}
	idLen := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return nil, fmt.Errorf("request header truncated (client id)")
		}
		r.clientID = string(rest[:idLen])
		rest = rest[idLen:]
	}
	kreq := kmsg.RequestForKey(r.key)
	if kreq == nil {
		return nil, fmt.Errorf("unknown api key %d (client %q)", r.key, r.clientID)
	}
	min, max, ok := supportedVersions(r.key)
	if !ok {
		return nil, fmt.Errorf("api %s (key %d) is not supported by this broker (client %q)", kmsg.NameForKey(r.key), r.key, r.clientID)
	}
	if r.version < min || r.version > max {
		if r.key == 18 {
			return r, fmt.Errorf("ApiVersions v%d not supported", r.version)
		}
		return nil, fmt.Errorf("api %s v%d is not supported (client %q); this broker serves v%d-v%d", kmsg.NameForKey(r.key), r.version, r.clientID, min, max)
	}
	kreq.SetVersion(r.version)
	if kreq.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, fmt.Errorf("request header tags: %w", err)
		}
	}
	if err := kreq.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("decoding %s v%d (client %q): %w", kmsg.NameForKey(r.key), r.version, r.clientID, err)
	}
	r.kreq = kreq
	return r, nil
}

func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, fmt.Errorf("bad tag count")
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		if _, l = binary.Uvarint(b); l <= 0 {
			return nil, fmt.Errorf("bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < size {
			return nil, fmt.Errorf("bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// handle runs one request and appends its framed response to dst (nothing
// for acks=0 produce).
func (c *conn) handle(r *request, dst []byte) ([]byte, error) {
	b := c.b
	var resp kmsg.Response
	if r.kreq == nil { // ApiVersions of an unknown version
		resp = b.apiVersionsFallback()
	} else {
		resp = b.dispatch(r)
	}
	api := kmsg.NameForKey(r.key)
	b.metrics.requests.WithLabelValues(api).Inc()
	b.metrics.requestSeconds.WithLabelValues(api).Observe(time.Since(r.recvAt).Seconds())
	if resp == nil {
		return dst, nil
	}
	forEachErrorCode(resp, func(code int16) { b.metrics.errors.WithLabelValues(api, errName(code)).Inc() })
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.corrID))
	if resp.IsFlexible() && r.key != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	for _, buf := range r.release {
		b.bufs.put(buf)
	}
	r.release = nil
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	b.metrics.bytesSent.Add(float64(len(dst) - start))
	return dst, nil
}

// drainCtx is cancelled when shutdown begins: long polls and group waits end
// early so in-flight requests can be answered.
func (b *Broker) drainCtx() context.Context { return b.drain }
