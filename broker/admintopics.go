package broker

// CreateTopics v0-v7, DeleteTopics v0-v6 (by name; by name or topic id on v6),
// CreatePartitions v0-v3, DeleteRecords v0-v2.
// Replication factor must be -1 (default) or 1, and manual assignments may
// name only this node: a single node keeps one replica.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/topics"
)

func strp(s string) *string { return &s }

func (b *Broker) handleCreateTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = strp(msg)
			resp.Topics = append(resp.Topics, st)
		}
		if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: this single-node broker keeps one replica; use 1 or -1", rt.ReplicationFactor))
			continue
		}
		partitions := rt.NumPartitions
		if len(rt.ReplicaAssignment) > 0 {
			if partitions != -1 {
				fail(kerr.InvalidRequest.Code, "give either a partition count or a replica assignment, not both")
				continue
			}
			partitions = int32(len(rt.ReplicaAssignment))
			bad := false
			for i, a := range rt.ReplicaAssignment {
				if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
					bad = true
				}
			}
			if bad {
				fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("assignments must list partitions 0..n-1, each with the single replica %d", b.cfg.NodeID))
				continue
			}
		}
		if partitions == -1 {
			partitions = b.cfg.DefaultPartitions
		}
		cfg := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				cfg[c.Name] = *c.Value
			}
		}
		t, err := b.topics.Create(rt.Topic, partitions, cfg, false, req.ValidateOnly)
		if err != nil {
			code := b.errorCode(err)
			st.ErrorCode = code
			st.ErrorMessage = strp(err.Error())
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !req.ValidateOnly {
			b.log.Info("topic created", "topic", rt.Topic, "partitions", partitions, "configs", cfg)
			st.TopicID = t.ID
		}
		st.NumPartitions, st.ReplicationFactor = partitions, 1
		for _, e := range b.describeTopicConfigs(t.Configs(), nil, false, false) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, e.Value, e.ReadOnly, int8(e.Source), e.IsSensitive
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) handleDeleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: strp(n)})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var t *topics.Topic
		var ok bool
		if tg.name != nil {
			t, ok = b.topics.Get(*tg.name)
		} else {
			t, ok = b.topics.GetByID(tg.id)
		}
		switch {
		case !ok && tg.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case !ok:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case t.Internal:
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = strp(fmt.Sprintf("%s is an internal topic and cannot be deleted", t.Name))
		default:
			st.Topic, st.TopicID = strp(t.Name), t.ID
			if err := b.topics.Delete(t.Name); err != nil {
				st.ErrorCode = b.errorCode(err)
				st.ErrorMessage = strp(err.Error())
				if !errors.Is(err, topics.ErrUnknownTopic) {
					b.log.Error("topic deletion failed", "topic", t.Name, "err", err)
				}
			} else {
				b.log.Info("topic deleted", "topic", t.Name)
				if err := b.groups.DeleteTopicOffsets(b.ctx, t.Name); err != nil {
					b.log.Warn("dropping committed offsets of a deleted topic failed", "topic", t.Name, "err", err)
				}
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) handleCreatePartitions(req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.topics.Get(rt.Topic)
		switch {
		case !ok:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case t.Internal:
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = strp(fmt.Sprintf("%s is an internal topic", t.Name))
		default:
			for _, a := range rt.Assignment {
				if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
					st.ErrorCode = kerr.InvalidReplicaAssignment.Code
					st.ErrorMessage = strp(fmt.Sprintf("each new partition must have the single replica %d", b.cfg.NodeID))
				}
			}
			if st.ErrorCode != 0 {
				break
			}
			if err := b.topics.AddPartitions(rt.Topic, rt.Count, req.ValidateOnly); err != nil {
				st.ErrorCode = b.errorCode(err)
				st.ErrorMessage = strp(err.Error())
			} else if !req.ValidateOnly {
				b.log.Info("partitions added", "topic", rt.Topic, "count", rt.Count)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) handleDeleteRecords(req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.topics.Get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if !ok || t.Partition(rp.Partition) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if t.Internal {
				sp.ErrorCode = kerr.InvalidTopicException.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			l := t.Partition(rp.Partition)
			off := rp.Offset
			if off == -1 {
				off = l.HighWatermark()
			}
			if off < 0 || off > l.HighWatermark() {
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			low, err := l.DeleteRecordsBefore(off)
			if err != nil {
				sp.ErrorCode = b.errorCode(err)
			} else {
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
