package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// Class declares one connector class a plugin binary serves.
type Class struct {
	// Name is the full class name the worker and users refer to.
	Name string
	// Aliases are other accepted names: a short name, and the class names of
	// the connectors this one replaces (e.g. Debezium's).
	Aliases []string
	// New returns a new connect.SourceConnector or connect.SinkConnector.
	New func() connect.Connector
}

// Serve runs a connector plugin process serving classes, and returns only
// when the worker ends it. A connector binary's main is just:
//
//	func main() { plugins.Serve(plugins.Class{Name: "...", New: myconnector.New}) }
//
// Started by hand (not by a worker), it explains that and exits with 1.
func Serve(classes ...Class) {
	if os.Getenv(handshake.MagicCookieKey) != handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "This is a Tributary connector plugin: a worker runs it. Put it in the worker's plugin.path (--plugin-path).\n")
		os.Exit(1)
	}
	if os.Getenv("GOGC") == "" {
		// A plugin's heap is small (a batch or two) and its allocation
		// rate high: a higher GC target trades a few MB for CPU, as the
		// worker does (cmd/tributary's tuneGC).
		debug.SetGCPercent(400)
	}
	srv := newServer(classes)
	srv.recyclePuts = true // every request arrives through batchCodec
	if path := os.Getenv(cpuProfileEnv); path != "" {
		srv.stopProfile = startCPUProfile(fmt.Sprintf("%s.%d", path, os.Getpid()))
	}
	stop := make(chan struct{})
	watched := exitWithParent(stop, time.Second)
	defer func() { close(stop); <-watched }()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{pluginName: &grpcPlugin{impl: srv}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.UnaryInterceptor(recoverUnary), grpc.StreamInterceptor(recoverStream),
				grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxSendMsgSize(maxMessageBytes),
				grpc.ForceServerCodecV2(newBatchCodec()),
				grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(windowBytes),
				grpc.WriteBufferSize(socketBufferBytes), grpc.ReadBufferSize(socketBufferBytes))
			return grpc.NewServer(opts...)
		},
	})
}

// exitWithParent ends the plugin process (exit status 3) when the worker
// that started it dies without stopping it (kill -9, OOM kill): go-plugin
// does not notice, and the orphan would otherwise live on, holding its
// files and connections. A dead parent shows as a changed parent pid (the
// orphan is re-parented), checked every interval. Closing stop ends the
// watch; the returned channel is closed when the watching goroutine is done.
func exitWithParent(stop <-chan struct{}, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	parent := os.Getppid()
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if os.Getppid() != parent {
					fmt.Fprintf(os.Stderr, "tributary plugin: the worker (pid %d) is gone; exiting\n", parent)
					os.Exit(3)
				}
			}
		}
	}()
	return done
}

// cpuProfileEnv, set in a plugin's environment, makes it write a CPU
// profile to $TRIBUTARY_PLUGIN_CPUPROFILE.<pid> from start until its task
// or connector stops (for benchmarks: go tool pprof reads it).
const cpuProfileEnv = "TRIBUTARY_PLUGIN_CPUPROFILE"

func startCPUProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tributary plugin: %s: %v\n", cpuProfileEnv, err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "tributary plugin: %s: %v\n", cpuProfileEnv, err)
		f.Close()
		return nil
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// maxMessageBytes bounds one gRPC message (a batch of records).
const maxMessageBytes = 256 << 20

// HTTP/2 flow-control windows and socket buffers of the boundary's gRPC
// connection, both sides: a batch of a few MB crosses in one go instead of
// waiting for window updates (gRPC's default is a 64 KiB window grown by
// estimation); the connection is a local socket to one peer.
const (
	windowBytes       = 16 << 20
	socketBufferBytes = 256 << 10
)

// A panic in connector code becomes an error carrying the stack, so the
// worker fails the task with a readable trace; the worker then stops the
// process, since its state is no longer trustworthy.
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = status.Errorf(codes.Internal, "panic in %s: %v\n%s", info.FullMethod, r, debug.Stack())
		}
	}()
	return h(ctx, req)
}

func recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = status.Errorf(codes.Internal, "panic in %s: %v\n%s", info.FullMethod, r, debug.Stack())
		}
	}()
	return h(srv, ss)
}

// server serves one connector or task instance: the process model gives
// each its own process.
type server struct {
	pluginpb.UnimplementedPluginServer
	classes []Class

	pollMu sync.Mutex // held by Poll; guards next
	// next delivers the batch being prefetched (nil: none). pollCtx is
	// the prefetches' context; StopTask cancels it (pollCancel, nil once
	// stopped; guarded by mu) and waits for the last prefetch started
	// (prefetched is closed when it ended; guarded by mu).
	next       chan pollResult
	pollCtx    context.Context
	pollCancel context.CancelFunc
	prefetched chan struct{}
	putMu      sync.Mutex // held by Put
	mu         sync.Mutex
	connector  connect.Connector
	connEvents chan *pluginpb.ConnectorEvent
	source     connect.SourceTask
	sink       connect.SinkTask
	pipe       *pipeline
	// packVersion is the packed batch version Poll writes: the highest
	// both this build and the worker read (StartSourceTask).
	packVersion int
	// packedPerRecord is the last poll's packed bytes per record (with
	// room to spare), to size the next batch's buffer.
	packedPerRecord atomic.Int64
	sinkCtx         *sinkContext
	stopped         chan struct{}
	stopOnce        sync.Once
	// stopProfile ends the CPU profile (cpuProfileEnv) when the task stops.
	stopProfile func()
	// recyclePuts: a put request's packed buffer is this process's own
	// (decoded by batchCodec) and may go back to batchBuffers after Put;
	// false in-process, where it is the caller's.
	recyclePuts bool
}

func newServer(classes []Class) *server {
	return &server{classes: classes, connEvents: make(chan *pluginpb.ConnectorEvent, 64), stopped: make(chan struct{})}
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, errConfig) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if connect.IsRetriable(err) {
		return status.Error(codes.Aborted, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

func (s *server) class(name string) (Class, error) {
	for _, c := range s.classes {
		if c.Name == name {
			return c, nil
		}
		for _, a := range c.Aliases {
			if a == name {
				return c, nil
			}
		}
	}
	return Class{}, status.Errorf(codes.NotFound, "this plugin has no connector class %q", name)
}

// Metrics returns the running task's own gauges (connect.MetricsReporter),
// dropping any whose name is not a valid Prometheus name suffix.
func (s *server) Metrics(context.Context, *pluginpb.MetricsRequest) (*pluginpb.MetricsResponse, error) {
	s.mu.Lock()
	var r connect.MetricsReporter
	switch {
	case s.source != nil:
		r, _ = s.source.(connect.MetricsReporter)
	case s.sink != nil:
		r, _ = s.sink.(connect.MetricsReporter)
	}
	s.mu.Unlock()
	resp := &pluginpb.MetricsResponse{}
	if r == nil {
		return resp, nil
	}
	for _, m := range r.Metrics() {
		if validMetricName(m.Name) {
			resp.Metrics = append(resp.Metrics, &pluginpb.Metric{Name: m.Name, Help: m.Help, Value: m.Value})
		}
	}
	return resp, nil
}

func validMetricName(n string) bool {
	if n == "" || len(n) > 100 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (s *server) Describe(ctx context.Context, _ *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	resp := &pluginpb.DescribeResponse{ProtocolVersion: ProtocolVersion}
	for _, c := range s.classes {
		inst := c.New()
		cc := &pluginpb.ConnectorClass{Class: c.Name, Aliases: c.Aliases, Version: inst.Version()}
		switch inst.(type) {
		case connect.SourceConnector:
			cc.Type = pluginpb.ConnectorType_CONNECTOR_TYPE_SOURCE
		case connect.SinkConnector:
			cc.Type = pluginpb.ConnectorType_CONNECTOR_TYPE_SINK
		default:
			return nil, status.Errorf(codes.FailedPrecondition, "class %s is neither a source nor a sink connector", c.Name)
		}
		def, err := json.Marshal(inst.ConfigDef().Describe())
		if err != nil {
			return nil, toStatus(err)
		}
		cc.ConfigDefJson = def
		for _, k := range inst.ConfigDef().Keys() {
			if k.Type == connect.TypePassword {
				cc.PasswordKeys = append(cc.PasswordKeys, k.Name)
				cc.PasswordKeys = append(cc.PasswordKeys, k.Aliases...)
			}
		}
		resp.Classes = append(resp.Classes, cc)
	}
	return resp, nil
}

func (s *server) Validate(ctx context.Context, req *pluginpb.ValidateRequest) (*pluginpb.ValidateResponse, error) {
	c, err := s.class(req.Class)
	if err != nil {
		return nil, err
	}
	inst := c.New()
	errs := map[string][]string{}
	_, defErrs := inst.ConfigDef().Parse(req.Config)
	for k, m := range defErrs {
		errs[k] = append(errs[k], m...)
	}
	if len(defErrs) == 0 {
		more, err := inst.Validate(ctx, req.Config)
		if err != nil {
			return nil, toStatus(err)
		}
		for k, m := range more {
			errs[k] = append(errs[k], m...)
		}
	}
	resp := &pluginpb.ValidateResponse{Errors: map[string]*pluginpb.KeyErrors{}}
	for k, m := range errs {
		if len(m) > 0 {
			resp.Errors[k] = &pluginpb.KeyErrors{Messages: m}
		}
	}
	return resp, nil
}

// connectorContext forwards a connector's requests as events.
type connectorContext struct{ s *server }

func (c connectorContext) RequestTaskReconfiguration() {
	select {
	case c.s.connEvents <- &pluginpb.ConnectorEvent{Event: &pluginpb.ConnectorEvent_RequestTaskReconfiguration{RequestTaskReconfiguration: true}}:
	default: // a reconfiguration is already queued
	}
}

func (c connectorContext) RaiseError(err error) {
	select {
	case c.s.connEvents <- &pluginpb.ConnectorEvent{Event: &pluginpb.ConnectorEvent_RaisedError{RaisedError: err.Error()}}:
	default:
	}
}

func (s *server) StartConnector(ctx context.Context, req *pluginpb.StartConnectorRequest) (*pluginpb.StartConnectorResponse, error) {
	c, err := s.class(req.Class)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connector != nil || s.source != nil || s.sink != nil {
		return nil, status.Error(codes.FailedPrecondition, "this plugin process already runs an instance")
	}
	inst := c.New()
	if err := inst.Start(ctx, connectorContext{s}, req.Config); err != nil {
		return nil, toStatus(err)
	}
	s.connector = inst
	return &pluginpb.StartConnectorResponse{}, nil
}

func (s *server) TaskConfigs(ctx context.Context, req *pluginpb.TaskConfigsRequest) (*pluginpb.TaskConfigsResponse, error) {
	s.mu.Lock()
	conn := s.connector
	s.mu.Unlock()
	if conn == nil {
		return nil, status.Error(codes.FailedPrecondition, "the connector is not started")
	}
	cfgs, err := conn.TaskConfigs(ctx, int(req.MaxTasks))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pluginpb.TaskConfigsResponse{}
	for _, c := range cfgs {
		resp.Tasks = append(resp.Tasks, &pluginpb.TaskConfig{Config: c})
	}
	return resp, nil
}

func (s *server) ConnectorEvents(_ *pluginpb.ConnectorEventsRequest, stream pluginpb.Plugin_ConnectorEventsServer) error {
	for {
		select {
		case ev := <-s.connEvents:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		case <-s.stopped:
			return nil
		}
	}
}

// markStopped closes s.stopped (once) and ends a CPU profile.
func (s *server) markStopped() {
	s.stopOnce.Do(func() {
		close(s.stopped)
		if s.stopProfile != nil {
			s.stopProfile()
		}
	})
}

func (s *server) StopConnector(ctx context.Context, _ *pluginpb.StopRequest) (*pluginpb.StopResponse, error) {
	s.mu.Lock()
	conn := s.connector
	s.connector = nil
	s.mu.Unlock()
	s.markStopped()
	if conn == nil {
		return &pluginpb.StopResponse{}, nil
	}
	return &pluginpb.StopResponse{}, toStatus(conn.Stop(ctx))
}

// sourceContext serves a source task the offsets the worker passed at start.
type sourceContext struct{ offsets map[string]map[string]any }

func (c *sourceContext) Offsets(_ context.Context, partitions []map[string]any) ([]connect.PartitionOffset, error) {
	var out []connect.PartitionOffset
	for _, p := range partitions {
		key, err := EncodeOffsetJSON(p)
		if err != nil {
			return nil, err
		}
		if off, ok := c.offsets[string(key)]; ok {
			out = append(out, connect.PartitionOffset{Partition: p, Offset: off})
		}
	}
	return out, nil
}

func (s *server) StartSourceTask(ctx context.Context, req *pluginpb.StartSourceTaskRequest) (*pluginpb.StartTaskResponse, error) {
	c, err := s.class(req.Class)
	if err != nil {
		return nil, err
	}
	conn, ok := c.New().(connect.SourceConnector)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s is not a source connector", c.Name)
	}
	pipe, err := newPipeline(req.Config)
	if err != nil {
		return nil, toStatus(err)
	}
	sc := &sourceContext{offsets: map[string]map[string]any{}}
	for _, po := range req.Offsets {
		p, err := DecodeOffsetJSON(po.PartitionJson)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "stored source partition %s: %v", po.PartitionJson, err)
		}
		off, err := DecodeOffsetJSON(po.OffsetJson)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "stored source offset %s: %v", po.OffsetJson, err)
		}
		key, _ := EncodeOffsetJSON(p)
		sc.offsets[string(key)] = off
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connector != nil || s.source != nil || s.sink != nil {
		return nil, status.Error(codes.FailedPrecondition, "this plugin process already runs an instance")
	}
	task := conn.NewTask()
	if err := task.Start(ctx, sc, req.Config); err != nil {
		return nil, toStatus(err)
	}
	s.source, s.pipe, s.packVersion = task, pipe, PackVersion(req.PackedVersion)
	s.pollCtx, s.pollCancel = context.WithCancel(context.Background())
	return &pluginpb.StartTaskResponse{}, nil
}

// Poll returns the task's next batch, converted and packed. After a
// successful poll the next one is prepared at once in the background
// (prefetch, owned by the server: StopTask ends and waits for it), so the
// task reads and converts while the worker receives and produces the
// batch just returned; the next Poll call takes it.
func (s *server) Poll(ctx context.Context, req *pluginpb.PollRequest) (*pluginpb.PollResponse, error) {
	s.mu.Lock()
	task, pipe, pctx, version := s.source, s.pipe, s.pollCtx, s.packVersion
	s.mu.Unlock()
	if task == nil {
		return nil, status.Error(codes.FailedPrecondition, "the source task is not started")
	}
	// One poll at a time: SourceTask.Poll is not for concurrent use, and
	// the pipeline reuses its buffers batch after batch.
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	var res pollResult
	if s.next != nil {
		select {
		case res = <-s.next:
			s.next = nil
		case <-ctx.Done():
			// The prefetched batch stays for the next call.
			return nil, toStatus(ctx.Err())
		}
	} else {
		res = s.pollOnce(ctx, task, pipe, version)
	}
	if res.err == nil {
		// Started under s.mu, so StopTask sees every prefetch started
		// and none starts after it.
		s.mu.Lock()
		if s.pollCancel != nil {
			next, done := make(chan pollResult, 1), make(chan struct{})
			s.next, s.prefetched = next, done
			go func() {
				defer close(done)
				next <- s.pollOnce(pctx, task, pipe, version)
			}()
		}
		s.mu.Unlock()
	}
	if res.err != nil {
		return nil, res.err
	}
	return &pluginpb.PollResponse{Packed: res.packed}, nil
}

// prefetchStopWait bounds how long StopTask waits for a prefetching Poll
// to return before it calls the task's Stop regardless.
const prefetchStopWait = 5 * time.Second

// pollResult is one batch polled, converted and packed, or why not.
type pollResult struct {
	packed []byte
	err    error
}

// pollOnce polls the task and converts and packs what it returns in the
// packed batch format version. A panic in connector code becomes an error
// carrying the stack, as in a call.
func (s *server) pollOnce(ctx context.Context, task connect.SourceTask, pipe *pipeline, version int) (res pollResult) {
	defer func() {
		if r := recover(); r != nil {
			res = pollResult{err: status.Errorf(codes.Internal, "panic in %s: %v\n%s", pluginpb.Plugin_Poll_FullMethodName, r, debug.Stack())}
		}
	}()
	recs, err := task.Poll(ctx)
	if err != nil {
		return pollResult{err: toStatus(err)}
	}
	keys, last, err := pipe.partitionKeys(recs)
	if err != nil {
		return pollResult{err: toStatus(err)}
	}
	// Each record is converted into one scratch record and packed at once,
	// into a buffer sized for the bytes per record of the last batch.
	perRecord := max(s.packedPerRecord.Load(), 128)
	packer := newProducedPacker(batchBuffers.Get(len(recs)*int(perRecord)+16), len(recs), version)
	var scratch pluginpb.ProducedRecord
	for i := range recs {
		if err := pipe.fromSource(&recs[i], keys[i], last[i], &scratch); err != nil {
			return pollResult{err: toStatus(err)}
		}
		packer.add(&scratch)
	}
	packed := packer.bytes()
	if len(recs) > 0 {
		s.packedPerRecord.Store(int64(len(packed)/len(recs)) * 9 / 8)
	}
	return pollResult{packed: packed}
}

func (s *server) CommitSource(ctx context.Context, req *pluginpb.CommitSourceRequest) (*pluginpb.CommitSourceResponse, error) {
	s.mu.Lock()
	task := s.source
	s.mu.Unlock()
	if task == nil {
		return nil, status.Error(codes.FailedPrecondition, "the source task is not started")
	}
	var committed []connect.PartitionOffset
	for _, po := range req.Committed {
		p, err := DecodeOffsetJSON(po.PartitionJson)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "source partition: %v", err)
		}
		o, err := DecodeOffsetJSON(po.OffsetJson)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "source offset: %v", err)
		}
		committed = append(committed, connect.PartitionOffset{Partition: p, Offset: o})
	}
	return &pluginpb.CommitSourceResponse{}, toStatus(task.Commit(ctx, committed))
}

func (s *server) StopTask(ctx context.Context, _ *pluginpb.StopRequest) (*pluginpb.StopResponse, error) {
	s.mu.Lock()
	src, snk, cancelPoll, prefetched := s.source, s.sink, s.pollCancel, s.prefetched
	s.source, s.sink, s.pollCancel = nil, nil, nil
	s.mu.Unlock()
	s.markStopped()
	var err error
	if cancelPoll != nil {
		cancelPoll() // no further prefetch; one under way is told to end
	}
	if src != nil {
		// Tasks expect Stop after their last Poll returned (the worker
		// stops polling first): wait for a prefetch under way, which its
		// cancelled context ends, before Stop. A Poll that ignores its
		// context and waits for Stop is stopped when the call's time is
		// up (as Kafka Connect stops a task while poll() blocks).
		if prefetched != nil {
			wait, cancel := context.WithTimeout(ctx, prefetchStopWait)
			select {
			case <-prefetched:
			case <-wait.Done():
			}
			cancel()
		}
		err = src.Stop(ctx)
		if prefetched != nil {
			select {
			case <-prefetched:
			case <-ctx.Done():
			}
		}
	}
	if snk != nil {
		err = snk.Stop(ctx)
	}
	return &pluginpb.StopResponse{}, toStatus(err)
}
