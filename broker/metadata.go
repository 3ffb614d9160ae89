package broker

// Metadata: v0-v12. Topics are named (v0-v9) or named/identified by topic id
// (v10+). A null topic list (v1+; an empty list on v0) asks for every topic.
// Unknown topics are created when auto.create.topics.enable is set and the
// request allows it (v4+; always for older versions). Leader epoch is 0:
// a single node is always the leader.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/topics"
)

func (b *Broker) handleMetadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = b.cfg.NodeID, b.host, b.port
	resp.Brokers = []kmsg.MetadataResponseBroker{br}
	cid := b.meta.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = b.cfg.NodeID

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.topics.List() {
			resp.Topics = append(resp.Topics, b.topicMetadata(t))
		}
		return resp
	}
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topics.Topic
		var ok bool
		if rt.Topic == nil {
			t, ok = b.topics.GetByID(rt.TopicID)
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		} else {
			name := *rt.Topic
			t, ok = b.topics.Get(name)
			if !ok && autoCreate {
				var err error
				t, err = b.autoCreate(name)
				if err != nil && !errors.Is(err, topics.ErrTopicExists) {
					mt := kmsg.NewMetadataResponseTopic()
					mt.Topic = &name
					mt.ErrorCode = b.errorCode(err)
					resp.Topics = append(resp.Topics, mt)
					continue
				}
				if t == nil {
					t, ok = b.topics.Get(name)
				}
				ok = t != nil
			}
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = &name
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if topics.ValidateName(name) != nil {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	return resp
}

func (b *Broker) autoCreate(name string) (*topics.Topic, error) {
	t, err := b.topics.Create(name, b.cfg.DefaultPartitions, nil, false, false)
	if err == nil {
		b.log.Info("topic auto-created", "topic", name, "partitions", b.cfg.DefaultPartitions)
	}
	return t, err
}

func (b *Broker) topicMetadata(t *topics.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	n := t.NumPartitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, n)
	for p := int32(0); p < n; p++ {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = b.cfg.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{b.cfg.NodeID}
		mp.ISR = []int32{b.cfg.NodeID}
		mt.Partitions[p] = mp
	}
	return mt
}
