package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// sinkContext is a sink task's view of its consumer: the assignment it was
// given, and requests forwarded to the worker as events.
type sinkContext struct {
	mu       sync.Mutex
	assigned map[connect.TopicPartition]bool
	events   chan *pluginpb.SinkEvent

	// During a Put (guarded by mu): the records handed to the task, the
	// index of each in the request, whether errant records are tolerated,
	// and the ones the task reported (connect.ErrantRecordReporter).
	putting    bool
	putRecs    []connect.SinkRecord
	putIndex   []int32
	tolerate   bool
	putFailed  []*pluginpb.FailedRecord
	putMatched map[int]bool
}

// stageTaskPut names the stage of records a task reported as errant, as
// Kafka Connect's ErrantRecordReporter does.
const stageTaskPut = "TASK_PUT"

// Report implements connect.ErrantRecordReporter.
func (c *sinkContext) Report(rec *connect.SinkRecord, cause error) error {
	if cause == nil {
		cause = errors.New("reported as errant without a cause")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.putting {
		return fmt.Errorf("an errant record can only be reported during Put: %w", cause)
	}
	if !c.tolerate {
		return fmt.Errorf("record %s/%d@%d: %w", rec.Topic, rec.KafkaPartition, rec.KafkaOffset, cause)
	}
	// Find the record among the Put's: by identity when the task passed a
	// pointer into the slice it got, else by topic, partition and offset.
	j := -1
	for i := range c.putRecs {
		if &c.putRecs[i] == rec {
			j = i
			break
		}
	}
	if j < 0 {
		for i := range c.putRecs {
			r := &c.putRecs[i]
			if !c.putMatched[i] && r.KafkaOffset == rec.KafkaOffset && r.KafkaPartition == rec.KafkaPartition && r.Topic == rec.Topic {
				j = i
				break
			}
		}
	}
	if j < 0 {
		return fmt.Errorf("reported errant record %s/%d@%d is not one of this Put's records: %w", rec.Topic, rec.KafkaPartition, rec.KafkaOffset, cause)
	}
	if c.putMatched[j] {
		return nil // reported twice: once is enough
	}
	c.putMatched[j] = true
	c.putFailed = append(c.putFailed, &pluginpb.FailedRecord{Index: c.putIndex[j], Stage: stageTaskPut, Error: cause.Error()})
	return nil
}

func tpsToPB(tps []connect.TopicPartition) *pluginpb.PartitionsRequest {
	out := &pluginpb.PartitionsRequest{}
	for _, tp := range tps {
		out.Partitions = append(out.Partitions, &pluginpb.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
	}
	return out
}

func tpsFromPB(in []*pluginpb.TopicPartition) []connect.TopicPartition {
	out := make([]connect.TopicPartition, 0, len(in))
	for _, tp := range in {
		out = append(out, connect.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
	}
	return out
}

func (c *sinkContext) Assignment() []connect.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]connect.TopicPartition, 0, len(c.assigned))
	for tp := range c.assigned {
		out = append(out, tp)
	}
	return out
}

// send queues an event; the events channel is large, and a task that floods
// it blocks until the worker reads (the worker always reads while the task runs).
func (c *sinkContext) send(ev *pluginpb.SinkEvent) { c.events <- ev }

func (c *sinkContext) Pause(tps ...connect.TopicPartition) {
	c.send(&pluginpb.SinkEvent{Event: &pluginpb.SinkEvent_Pause{Pause: tpsToPB(tps)}})
}

func (c *sinkContext) Resume(tps ...connect.TopicPartition) {
	c.send(&pluginpb.SinkEvent{Event: &pluginpb.SinkEvent_Resume{Resume: tpsToPB(tps)}})
}

func (c *sinkContext) Rewind(tp connect.TopicPartition, offset int64) {
	c.send(&pluginpb.SinkEvent{Event: &pluginpb.SinkEvent_Rewind{Rewind: &pluginpb.PartitionOffsetNext{
		Partition: &pluginpb.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}, NextOffset: offset}}})
}

func (c *sinkContext) RequestCommit() {
	select {
	case c.events <- &pluginpb.SinkEvent{Event: &pluginpb.SinkEvent_RequestCommit{RequestCommit: true}}:
	default: // a commit request is already queued
	}
}

func (s *server) StartSinkTask(ctx context.Context, req *pluginpb.StartSinkTaskRequest) (*pluginpb.StartTaskResponse, error) {
	c, err := s.class(req.Class)
	if err != nil {
		return nil, err
	}
	conn, ok := c.New().(connect.SinkConnector)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s is not a sink connector", c.Name)
	}
	pipe, err := newPipeline(req.Config)
	if err != nil {
		return nil, toStatus(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connector != nil || s.source != nil || s.sink != nil {
		return nil, status.Error(codes.FailedPrecondition, "this plugin process already runs an instance")
	}
	sc := &sinkContext{assigned: map[connect.TopicPartition]bool{}, events: make(chan *pluginpb.SinkEvent, 1024)}
	task := conn.NewTask()
	if err := task.Start(ctx, sc, req.Config); err != nil {
		return nil, toStatus(err)
	}
	s.sink, s.pipe, s.sinkCtx = task, pipe, sc
	return &pluginpb.StartTaskResponse{PackedVersion: PackedVersion}, nil
}

func (s *server) sinkTask() (connect.SinkTask, *pipeline, *sinkContext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink == nil {
		return nil, nil, nil, status.Error(codes.FailedPrecondition, "the sink task is not started")
	}
	return s.sink, s.pipe, s.sinkCtx, nil
}

func (s *server) OpenPartitions(ctx context.Context, req *pluginpb.PartitionsRequest) (*pluginpb.PartitionsResponse, error) {
	task, _, sc, err := s.sinkTask()
	if err != nil {
		return nil, err
	}
	tps := tpsFromPB(req.Partitions)
	sc.mu.Lock()
	for _, tp := range tps {
		sc.assigned[tp] = true
	}
	sc.mu.Unlock()
	return &pluginpb.PartitionsResponse{}, toStatus(task.Open(ctx, tps))
}

func (s *server) ClosePartitions(ctx context.Context, req *pluginpb.PartitionsRequest) (*pluginpb.PartitionsResponse, error) {
	task, _, sc, err := s.sinkTask()
	if err != nil {
		return nil, err
	}
	tps := tpsFromPB(req.Partitions)
	err = task.Close(ctx, tps)
	sc.mu.Lock()
	for _, tp := range tps {
		delete(sc.assigned, tp)
	}
	sc.mu.Unlock()
	return &pluginpb.PartitionsResponse{}, toStatus(err)
}

// Put converts and transforms the batch, then hands it to the task.
// Records failing conversion or a transform go back as failed (for the dead
// letter queue) with errors.tolerance=all, and fail the call otherwise.
func (s *server) Put(ctx context.Context, req *pluginpb.PutRequest) (*pluginpb.PutResponse, error) {
	task, pipe, sc, err := s.sinkTask()
	if err != nil {
		return nil, err
	}
	// One put at a time: the pipeline's converters keep scratch state.
	s.putMu.Lock()
	defer s.putMu.Unlock()
	resp := &pluginpb.PutResponse{}
	var recs []connect.SinkRecord
	var index []int32 // the request index of each of recs
	var spill *[]byte // rebuilt shared fields of the packed batch
	if len(req.Packed) > 0 {
		n, err := PackedCount(req.Packed)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		// The records are built in place in one slice (the task gets a
		// fresh one every call: it may keep it), their partitions in another.
		recs = make([]connect.SinkRecord, 0, n)
		parts := make([]int32, n)
		var failed error
		// Converters that copy what they decode let shared fields be
		// rebuilt in scratch, record by record (cache-warm, no spill).
		if _, spill, err = eachConsumed(req.Packed, pipe.copiesInput(), func(i int, cr *ConsumedFields) error {
			recs = append(recs, connect.SinkRecord{})
			index = append(index, int32(i))
			out := &recs[len(recs)-1]
			r, err := pipe.toSink(cr, &parts[i], out)
			switch {
			case err != nil:
				recs, index = recs[:len(recs)-1], index[:len(index)-1]
				var se *stageError
				if !pipe.tolerateAll || !errors.As(err, &se) {
					failed = err
					return err
				}
				resp.Failed = append(resp.Failed, &pluginpb.FailedRecord{Index: int32(i), Stage: se.stage, Error: se.err.Error()})
			case r == nil:
				recs, index = recs[:len(recs)-1], index[:len(index)-1]
			case r != out:
				*out = *r
			}
			return nil
		}); err != nil {
			if failed != nil {
				return nil, toStatus(failed)
			}
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	} else {
		recs = make([]connect.SinkRecord, 0, len(req.Records))
		parts := make([]int32, len(req.Records))
		var cf ConsumedFields
		for i, cr := range req.Records {
			cf = ConsumedFields{Topic: cr.Topic, Partition: cr.Partition, Offset: cr.Offset, TimestampMs: cr.TimestampMs,
				TimestampType: cr.TimestampType, Key: nullable(cr.Key, cr.KeyNull), Value: nullable(cr.Value, cr.ValueNull),
				HeaderKeys: cf.HeaderKeys[:0], HeaderValues: cf.HeaderValues[:0]}
			for _, h := range cr.Headers {
				cf.HeaderKeys = append(cf.HeaderKeys, h.Key)
				cf.HeaderValues = append(cf.HeaderValues, nullable(h.Value, h.ValueNull))
			}
			recs = append(recs, connect.SinkRecord{})
			index = append(index, int32(i))
			out := &recs[len(recs)-1]
			r, err := pipe.toSink(&cf, &parts[i], out)
			switch {
			case err != nil:
				recs, index = recs[:len(recs)-1], index[:len(index)-1]
				var se *stageError
				if !pipe.tolerateAll || !errors.As(err, &se) {
					return nil, toStatus(err)
				}
				resp.Failed = append(resp.Failed, &pluginpb.FailedRecord{Index: int32(i), Stage: se.stage, Error: se.err.Error()})
			case r == nil:
				recs, index = recs[:len(recs)-1], index[:len(index)-1]
			case r != out:
				*out = *r
			}
		}
	}
	sc.mu.Lock()
	sc.putting, sc.putRecs, sc.putIndex, sc.tolerate, sc.putFailed, sc.putMatched = true, recs, index, pipe.tolerateAll, nil, map[int]bool{}
	sc.mu.Unlock()
	err = task.Put(ctx, recs)
	sc.mu.Lock()
	resp.Failed = append(resp.Failed, sc.putFailed...)
	sc.putting, sc.putRecs, sc.putIndex, sc.putFailed, sc.putMatched = false, nil, nil, nil, nil
	sc.mu.Unlock()
	if err != nil {
		return nil, toStatus(err)
	}
	if len(req.Packed) > 0 && pipe.copiesInput() {
		// Nothing the task holds refers to the batch: converters copied
		// what they decoded, topics and header keys are fresh strings.
		if spill != nil {
			ReleaseSpill(spill)
		}
		if s.recyclePuts {
			batchBuffers.Put(&req.Packed)
			req.Packed = nil
		}
	}
	return resp, nil
}

func (s *server) Flush(ctx context.Context, req *pluginpb.FlushRequest) (*pluginpb.FlushResponse, error) {
	task, _, _, err := s.sinkTask()
	if err != nil {
		return nil, err
	}
	offsets := make(map[connect.TopicPartition]int64, len(req.Offsets))
	for _, o := range req.Offsets {
		offsets[connect.TopicPartition{Topic: o.Partition.GetTopic(), Partition: o.Partition.GetPartition()}] = o.NextOffset
	}
	return &pluginpb.FlushResponse{}, toStatus(task.Flush(ctx, offsets))
}

func (s *server) SinkEvents(_ *pluginpb.SinkEventsRequest, stream pluginpb.Plugin_SinkEventsServer) error {
	_, _, sc, err := s.sinkTask()
	if err != nil {
		return err
	}
	for {
		select {
		case ev := <-sc.events:
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
