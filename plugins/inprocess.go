package plugins

import (
	"bytes"
	"context"
	"io"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// InProcess returns a client served by the very server a plugin process
// runs (Serve's), called directly in this process: no process, no network,
// no serialization. It exists to measure what the plugin boundary costs
// (bench/connectbench) and for tests; a worker always runs connectors in
// plugin processes, so a crash fails only that connector or task.
//
// Contract, differing from a gRPC client only where a process boundary
// would hide it:
//   - Requests and responses are passed by pointer, not copied: the caller
//     must not change a request or its byte slices during the call, nor
//     after it, except a put request's packed batch, which it may reuse
//     once Put returned, as over gRPC (the client copies it when a
//     ByteArrayConverter would hand the task the batch's bytes as they
//     are). Responses belong to the caller.
//   - ctx is the server's context: cancelling it cancels the call.
//   - A panic in connector code becomes a codes.Internal error carrying the
//     stack, as Serve's interceptors make it.
//   - ConnectorEvents and SinkEvents run the server's handler in a
//     goroutine owned by the returned stream; it ends when the call's
//     context is done or the instance stops (StopConnector, StopTask), and
//     Recv then returns io.EOF (or codes.Canceled when ctx was cancelled,
//     as gRPC does). Cancel ctx to end a stream early.
//
// Call options are ignored. One client serves one connector or task
// instance, like one plugin process.
func InProcess(classes ...Class) pluginpb.PluginClient {
	return &inProcessClient{s: newServer(classes)}
}

type inProcessClient struct{ s *server }

// unary calls h as a gRPC server would: a panic becomes an Internal error,
// and a failed call returns no response.
func unary[Req, Resp any](ctx context.Context, method string, h func(context.Context, *Req) (*Resp, error), req *Req) (resp *Resp, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, status.Errorf(codes.Internal, "panic in %s: %v\n%s", method, r, debug.Stack())
		}
	}()
	resp, err = h(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (c *inProcessClient) Describe(ctx context.Context, in *pluginpb.DescribeRequest, _ ...grpc.CallOption) (*pluginpb.DescribeResponse, error) {
	return unary(ctx, "Describe", c.s.Describe, in)
}

func (c *inProcessClient) Validate(ctx context.Context, in *pluginpb.ValidateRequest, _ ...grpc.CallOption) (*pluginpb.ValidateResponse, error) {
	return unary(ctx, "Validate", c.s.Validate, in)
}

func (c *inProcessClient) StartConnector(ctx context.Context, in *pluginpb.StartConnectorRequest, _ ...grpc.CallOption) (*pluginpb.StartConnectorResponse, error) {
	return unary(ctx, "StartConnector", c.s.StartConnector, in)
}

func (c *inProcessClient) TaskConfigs(ctx context.Context, in *pluginpb.TaskConfigsRequest, _ ...grpc.CallOption) (*pluginpb.TaskConfigsResponse, error) {
	return unary(ctx, "TaskConfigs", c.s.TaskConfigs, in)
}

func (c *inProcessClient) ConnectorEvents(ctx context.Context, in *pluginpb.ConnectorEventsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[pluginpb.ConnectorEvent], error) {
	return startStream(ctx, "ConnectorEvents", c.s.ConnectorEvents, in), nil
}

func (c *inProcessClient) StopConnector(ctx context.Context, in *pluginpb.StopRequest, _ ...grpc.CallOption) (*pluginpb.StopResponse, error) {
	return unary(ctx, "StopConnector", c.s.StopConnector, in)
}

func (c *inProcessClient) StartSourceTask(ctx context.Context, in *pluginpb.StartSourceTaskRequest, _ ...grpc.CallOption) (*pluginpb.StartTaskResponse, error) {
	return unary(ctx, "StartSourceTask", c.s.StartSourceTask, in)
}

func (c *inProcessClient) Poll(ctx context.Context, in *pluginpb.PollRequest, _ ...grpc.CallOption) (*pluginpb.PollResponse, error) {
	return unary(ctx, "Poll", c.s.Poll, in)
}

func (c *inProcessClient) CommitSource(ctx context.Context, in *pluginpb.CommitSourceRequest, _ ...grpc.CallOption) (*pluginpb.CommitSourceResponse, error) {
	return unary(ctx, "CommitSource", c.s.CommitSource, in)
}

func (c *inProcessClient) StartSinkTask(ctx context.Context, in *pluginpb.StartSinkTaskRequest, _ ...grpc.CallOption) (*pluginpb.StartTaskResponse, error) {
	return unary(ctx, "StartSinkTask", c.s.StartSinkTask, in)
}

func (c *inProcessClient) OpenPartitions(ctx context.Context, in *pluginpb.PartitionsRequest, _ ...grpc.CallOption) (*pluginpb.PartitionsResponse, error) {
	return unary(ctx, "OpenPartitions", c.s.OpenPartitions, in)
}

func (c *inProcessClient) ClosePartitions(ctx context.Context, in *pluginpb.PartitionsRequest, _ ...grpc.CallOption) (*pluginpb.PartitionsResponse, error) {
	return unary(ctx, "ClosePartitions", c.s.ClosePartitions, in)
}

func (c *inProcessClient) Put(ctx context.Context, in *pluginpb.PutRequest, _ ...grpc.CallOption) (*pluginpb.PutResponse, error) {
	if _, pipe, _, err := c.s.sinkTask(); err == nil && len(in.Packed) > 0 && !pipe.copiesInput() {
		// The task may keep the bytes it was given (a ByteArray
		// converter hands them over as they are), and the caller may
		// reuse its request buffer after the call, as over gRPC.
		in = &pluginpb.PutRequest{Packed: bytes.Clone(in.Packed)}
	}
	return unary(ctx, "Put", c.s.Put, in)
}

func (c *inProcessClient) Flush(ctx context.Context, in *pluginpb.FlushRequest, _ ...grpc.CallOption) (*pluginpb.FlushResponse, error) {
	return unary(ctx, "Flush", c.s.Flush, in)
}

func (c *inProcessClient) SinkEvents(ctx context.Context, in *pluginpb.SinkEventsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[pluginpb.SinkEvent], error) {
	return startStream(ctx, "SinkEvents", c.s.SinkEvents, in), nil
}

func (c *inProcessClient) StopTask(ctx context.Context, in *pluginpb.StopRequest, _ ...grpc.CallOption) (*pluginpb.StopResponse, error) {
	return unary(ctx, "StopTask", c.s.StopTask, in)
}

func (c *inProcessClient) Metrics(ctx context.Context, in *pluginpb.MetricsRequest, _ ...grpc.CallOption) (*pluginpb.MetricsResponse, error) {
	return unary(ctx, "Metrics", c.s.Metrics, in)
}

// chanStream is both ends of an in-process server-streaming call: the
// handler's Send hands each message to the client's Recv over an
// unbuffered channel.
type chanStream[T any] struct {
	parent context.Context // the caller's
	ctx    context.Context // the stream's: parent's child, cancelled when the handler returns
	cancel context.CancelFunc
	msgs   chan *T
	done   chan struct{} // closed when the handler returned; err is then set
	err    error
}

// startStream runs handler in a goroutine owned by the returned stream: it
// ends when ctx is done or the handler returns on its own.
func startStream[Req, T any](ctx context.Context, method string, handler func(*Req, grpc.ServerStreamingServer[T]) error, req *Req) *chanStream[T] {
	sctx, cancel := context.WithCancel(ctx)
	s := &chanStream[T]{parent: ctx, ctx: sctx, cancel: cancel, msgs: make(chan *T), done: make(chan struct{})}
	go func() {
		// Deferred in this order: err is set, then done closed, then
		// the stream's context released.
		defer cancel()
		defer close(s.done)
		defer func() {
			if r := recover(); r != nil {
				s.err = status.Errorf(codes.Internal, "panic in %s: %v\n%s", method, r, debug.Stack())
			}
		}()
		s.err = handler(req, serverSide[T]{s})
	}()
	return s
}

// Recv returns the next message; after the handler returned, its error, or
// io.EOF when it ended cleanly (codes.Canceled when ctx was cancelled).
func (s *chanStream[T]) Recv() (*T, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-s.done:
	case <-s.ctx.Done():
		// The handler notices the cancellation through its context and
		// returns; Send gives up on a cancelled context.
	}
	select {
	case <-s.done:
		if s.err != nil {
			return nil, s.err
		}
	default:
	}
	if err := s.parent.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	return nil, io.EOF
}

func (s *chanStream[T]) Header() (metadata.MD, error) { return metadata.MD{}, nil }
func (s *chanStream[T]) Trailer() metadata.MD         { return metadata.MD{} }
func (s *chanStream[T]) CloseSend() error             { return nil }
func (s *chanStream[T]) Context() context.Context     { return s.ctx }
func (s *chanStream[T]) SendMsg(any) error {
	return status.Error(codes.Internal, "in-process stream: the request was already sent")
}

// RecvMsg receives into m, which must be a *T.
func (s *chanStream[T]) RecvMsg(m any) error {
	dst, ok := m.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "in-process stream: RecvMsg into %T", m)
	}
	msg, err := s.Recv()
	if err != nil {
		return err
	}
	src, ok := any(msg).(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "in-process stream: %T is not a protobuf message", msg)
	}
	proto.Reset(dst)
	proto.Merge(dst, src)
	return nil
}

// serverSide is the handler's end of a chanStream.
type serverSide[T any] struct{ s *chanStream[T] }

func (ss serverSide[T]) Send(m *T) error {
	select {
	case ss.s.msgs <- m:
		return nil
	case <-ss.s.ctx.Done():
		return status.FromContextError(ss.s.ctx.Err()).Err()
	}
}

func (ss serverSide[T]) SetHeader(metadata.MD) error  { return nil }
func (ss serverSide[T]) SendHeader(metadata.MD) error { return nil }
func (ss serverSide[T]) SetTrailer(metadata.MD)       {}
func (ss serverSide[T]) Context() context.Context     { return ss.s.ctx }

func (ss serverSide[T]) SendMsg(m any) error {
	t, ok := m.(*T)
	if !ok {
		return status.Errorf(codes.Internal, "in-process stream: SendMsg of %T", m)
	}
	return ss.Send(t)
}

func (ss serverSide[T]) RecvMsg(any) error {
	return status.Error(codes.Internal, "in-process stream: a server-streaming handler has no message to receive")
}
