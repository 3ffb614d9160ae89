package broker

// Group APIs (JoinGroup v0-v9, SyncGroup v0-v5, Heartbeat v0-v4, LeaveGroup
// v0-v5, OffsetCommit v0-v8, OffsetFetch v0-v8, DescribeGroups v0-v5,
// ListGroups v0-v4, DeleteGroups v0-v2, OffsetDelete v0) are served by
// broker/groups. This file wires its Store to the internal compacted topic
// __consumer_offsets (one partition; records in Kafka's own key/value
// formats) and replays that topic at start-up.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/commitlog"
	"github.com/tributary-data/tributary/broker/groups"
	"github.com/tributary-data/tributary/broker/records"
)

func (b *Broker) openGroups() error {
	t, ok := b.topics.Get(OffsetsTopic)
	if !ok {
		var err error
		t, err = b.topics.Create(OffsetsTopic, 1, map[string]string{
			"cleanup.policy": "compact",
			"segment.bytes":  "104857600",
		}, true, false)
		if err != nil {
			return fmt.Errorf("broker: create %s: %w", OffsetsTopic, err)
		}
	}
	b.offsets = t
	l := t.Partition(0)
	start := time.Now()
	recs, err := b.readAll(l)
	if err != nil {
		return fmt.Errorf("broker: read %s: %w", OffsetsTopic, err)
	}
	b.groups = groups.New(groups.Config{
		MinSessionTimeout:     b.cfg.MinSessionTimeout,
		MaxSessionTimeout:     b.cfg.MaxSessionTimeout,
		InitialRebalanceDelay: b.cfg.InitialRebalanceDelay,
		OffsetsRetention:      b.cfg.OffsetsRetention,
	}, &offsetsStore{codecs: b.codecs, log: l}, b.log.With("component", "groups"))
	if err := b.groups.Load(recs); err != nil { // Open's clean-up closes b.groups
		return fmt.Errorf("broker: load groups from %s: %w", OffsetsTopic, err)
	}
	b.log.Info("groups loaded", "records", len(recs), "groups", b.groups.NumGroups(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// handleOffsetCommit answers UNKNOWN_TOPIC_OR_PARTITION for partitions that
// do not exist, as Kafka's request layer does, and hands the rest to the
// coordinator.
func (b *Broker) handleOffsetCommit(req *kmsg.OffsetCommitRequest) kmsg.Response {
	known := *req
	known.Topics = nil
	var unknown []kmsg.OffsetCommitResponseTopic
	for _, rt := range req.Topics {
		t, ok := b.topics.Get(rt.Topic)
		kt := rt
		kt.Partitions = nil
		var ut *kmsg.OffsetCommitResponseTopic
		for _, rp := range rt.Partitions {
			if ok && t.Partition(rp.Partition) != nil {
				kt.Partitions = append(kt.Partitions, rp)
				continue
			}
			if ut == nil {
				x := kmsg.NewOffsetCommitResponseTopic()
				x.Topic = rt.Topic
				unknown = append(unknown, x)
				ut = &unknown[len(unknown)-1]
			}
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			ut.Partitions = append(ut.Partitions, sp)
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	if len(unknown) == 0 {
		return b.groups.OffsetCommit(b.ctx, req)
	}
	resp := b.groups.OffsetCommit(b.ctx, &known)
	resp.Topics = append(resp.Topics, unknown...)
	return resp
}

// readAll decodes every record of a log, in order.
func (b *Broker) readAll(l *commitlog.Log) ([]groups.Record, error) {
	var out []groups.Record
	off, hw := l.LogStartOffset(), l.HighWatermark()
	for off < hw {
		chunk, err := l.Read(off, 1<<20, hw)
		if err != nil {
			return nil, err
		}
		next := off
		err = records.ForEachBatch(chunk, func(bt records.Batch) error {
			h, rs, err := b.codecs.Records(bt.Raw)
			if err != nil {
				return fmt.Errorf("batch at offset %d: %w", bt.Header.BaseOffset, err)
			}
			for _, r := range rs {
				if h.BaseOffset+int64(r.OffsetDelta) < off {
					continue
				}
				out = append(out, groups.Record{Key: r.Key, Value: r.Value})
			}
			next = h.LastOffset() + 1
			return nil
		})
		if err != nil {
			return nil, err
		}
		if next <= off {
			return nil, fmt.Errorf("no progress reading at offset %d", off)
		}
		off = next
	}
	return out, nil
}

// offsetsStore is the groups.Store on __consumer_offsets: each Append is one
// batch, acknowledged once fsynced.
type offsetsStore struct {
	codecs *records.Codecs
	log    *commitlog.Log
}

func (s *offsetsStore) Append(ctx context.Context, recs []groups.Record) error {
	if len(recs) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	h := records.BatchHeader{Magic: 2, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: now, MaxTimestamp: now}
	rs := make([]records.Record, len(recs))
	for i, r := range recs {
		rs[i] = records.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
	}
	raw, err := s.codecs.Build(h, rs)
	if err != nil {
		return err
	}
	hdr, err := records.ParseHeader(raw)
	if err != nil {
		return err
	}
	res, err := s.log.Append([]records.Batch{{Header: hdr, Raw: raw}})
	if err != nil {
		return err
	}
	return s.log.WaitDurable(ctx, res.LastOffset+1)
}
