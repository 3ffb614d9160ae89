package plugins

// The data channel, format version 1.
//
// gRPC over HTTP/2 costs about 0.6 ms of CPU per 256 KiB message on each
// side here (framing in 16 KiB frames, flow control, buffer copies), which
// made the plugin boundary cost a fifth of the pipeline's throughput. So the
// worker gives each plugin process one more connection: a Unix socket pair,
// the child's end inherited as file descriptor 3 (environment
// TRIBUTARY_DATA_FD=3). Control stays on gRPC; only the record batches of
// Poll and Put travel on the socket, as frames:
//
//	seq     uint64, big endian: the sequence number the gRPC call names
//	length  uint32, big endian: the payload's length (at most maxMessageBytes)
//	payload the packed batch (plugins/packed.go), length bytes
//
// A plugin that can read and write fd 3 says so in StartTaskResponse
// (data_channel). Then:
//   - Poll: the worker sends PollRequest.data_seq = n; the plugin writes the
//     batch as frame n, then answers PollResponse.data_seq = n (or, with no
//     records, an empty response).
//   - Put: the worker writes the batch as frame n, then calls Put with
//     PutRequest.data_seq = n.
//
// Each side runs one reader goroutine that drains incoming frames into a
// small queue, so a writer never waits on the other side's gRPC call. A call
// cancelled after its frame was written leaves a stale frame: the next call
// (a higher sequence number) discards it. Older workers and plugins simply
// never set the fields, and batches go in the gRPC messages as before.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// DataFDEnv tells a plugin process the file descriptor of its data channel.
const DataFDEnv = "TRIBUTARY_DATA_FD"

// dataFD is the descriptor the child's end of the socket pair becomes
// (exec.Cmd.ExtraFiles[0]).
const dataFD = 3

// errDataClosed is returned once the data channel is closed or broken.
var errDataClosed = errors.New("plugins: data channel closed")

type dataFrame struct {
	seq uint64
	buf *[]byte // from batchBuffers
}

// dataConn is one end of a data channel. write may be called by one
// goroutine at a time (calls are serialized by wmu); recv by one at a time.
// Close closes the socket and waits for the reader goroutine.
type dataConn struct {
	conn    net.Conn
	wmu     sync.Mutex
	frames  chan dataFrame
	closing chan struct{} // closed by Close: the reader stops queueing
	done    chan struct{} // closed when the reader ended
	err     error         // why the reader ended; valid after done
	once    sync.Once
}

func newDataConn(c net.Conn) *dataConn {
	d := &dataConn{conn: c, frames: make(chan dataFrame, 4), closing: make(chan struct{}), done: make(chan struct{})}
	go d.read()
	return d
}

func (d *dataConn) read() {
	defer close(d.done)
	var hdr [12]byte
	for {
		if _, err := io.ReadFull(d.conn, hdr[:]); err != nil {
			d.err = err
			return
		}
		seq, n := binary.BigEndian.Uint64(hdr[:8]), binary.BigEndian.Uint32(hdr[8:])
		if n > maxMessageBytes {
			d.err = fmt.Errorf("data channel: frame %d of %d bytes exceeds %d", seq, n, maxMessageBytes)
			d.conn.Close()
			return
		}
		bp := batchBuffers.Get(int(n))
		*bp = (*bp)[:n]
		if _, err := io.ReadFull(d.conn, *bp); err != nil {
			batchBuffers.Put(bp)
			d.err = err
			return
		}
		// One call is in flight at a time, so at most a stale frame waits
		// here besides the current one.
		select {
		case d.frames <- dataFrame{seq: seq, buf: bp}:
		case <-d.closing:
			batchBuffers.Put(bp)
			d.err = errDataClosed
			return
		}
	}
}

// write sends payload as frame seq.
func (d *dataConn) write(seq uint64, payload []byte) error {
	if len(payload) > maxMessageBytes {
		return fmt.Errorf("data channel: a batch of %d bytes exceeds %d", len(payload), maxMessageBytes)
	}
	var hdr [12]byte
	binary.BigEndian.PutUint64(hdr[:8], seq)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(payload)))
	d.wmu.Lock()
	defer d.wmu.Unlock()
	bufs := net.Buffers{hdr[:], payload}
	if _, err := bufs.WriteTo(d.conn); err != nil {
		return status.Errorf(codes.Unavailable, "data channel: %v", err)
	}
	return nil
}

// recv returns the payload of frame seq (a batchBuffers buffer the caller
// owns), discarding older frames.
func (d *dataConn) recv(ctx context.Context, seq uint64) ([]byte, error) {
	for {
		select {
		case f := <-d.frames:
			switch {
			case f.seq < seq:
				batchBuffers.Put(f.buf) // a cancelled call's batch
			case f.seq == seq:
				return *f.buf, nil
			default:
				batchBuffers.Put(f.buf)
				return nil, fmt.Errorf("data channel: frame %d arrived while waiting for %d", f.seq, seq)
			}
		case <-d.done:
			// Frames read before the end are still queued.
			select {
			case f := <-d.frames:
				if f.seq == seq {
					return *f.buf, nil
				}
				batchBuffers.Put(f.buf)
				continue
			default:
			}
			return nil, status.Errorf(codes.Unavailable, "data channel: %v", d.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close closes the socket and waits for the reader. Idempotent.
func (d *dataConn) Close() error {
	var err error
	d.once.Do(func() {
		close(d.closing)
		err = d.conn.Close()
		<-d.done
		for len(d.frames) > 0 {
			batchBuffers.Put((<-d.frames).buf)
		}
	})
	return err
}

// dataClient is the worker's client of a plugin process with a data
// channel: Poll and Put move their batches on it once the task's start
// said the plugin can (StartTaskResponse.data_channel); everything else is
// the gRPC client's.
type dataClient struct {
	pluginpb.PluginClient
	d   *dataConn
	on  atomic.Bool
	seq atomic.Uint64
}

func (c *dataClient) StartSourceTask(ctx context.Context, in *pluginpb.StartSourceTaskRequest, opts ...grpc.CallOption) (*pluginpb.StartTaskResponse, error) {
	resp, err := c.PluginClient.StartSourceTask(ctx, in, opts...)
	c.on.Store(err == nil && resp.DataChannel)
	return resp, err
}

func (c *dataClient) StartSinkTask(ctx context.Context, in *pluginpb.StartSinkTaskRequest, opts ...grpc.CallOption) (*pluginpb.StartTaskResponse, error) {
	resp, err := c.PluginClient.StartSinkTask(ctx, in, opts...)
	c.on.Store(err == nil && resp.DataChannel)
	return resp, err
}

func (c *dataClient) Poll(ctx context.Context, in *pluginpb.PollRequest, opts ...grpc.CallOption) (*pluginpb.PollResponse, error) {
	if !c.on.Load() {
		return c.PluginClient.Poll(ctx, in, opts...)
	}
	seq := c.seq.Add(1)
	resp, err := c.PluginClient.Poll(ctx, &pluginpb.PollRequest{MaxRecords: in.MaxRecords, DataSeq: seq}, opts...)
	if err != nil || resp.DataSeq == 0 {
		return resp, err
	}
	if resp.DataSeq != seq {
		return nil, fmt.Errorf("data channel: the plugin answered poll %d with frame %d", seq, resp.DataSeq)
	}
	if resp.Packed, err = c.d.recv(ctx, seq); err != nil {
		return nil, err
	}
	resp.DataSeq = 0
	return resp, nil
}

func (c *dataClient) Put(ctx context.Context, in *pluginpb.PutRequest, opts ...grpc.CallOption) (*pluginpb.PutResponse, error) {
	if !c.on.Load() || len(in.Packed) == 0 {
		return c.PluginClient.Put(ctx, in, opts...)
	}
	seq := c.seq.Add(1)
	if err := c.d.write(seq, in.Packed); err != nil {
		return nil, err
	}
	return c.PluginClient.Put(ctx, &pluginpb.PutRequest{DataSeq: seq}, opts...)
}
