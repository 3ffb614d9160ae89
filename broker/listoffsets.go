package broker

// ListOffsets: v0-v8. Timestamps: -1 latest (the high watermark), -2 earliest
// (the log start offset), -3 the record with the largest timestamp (v7+),
// -4 earliest local (v8; the same as earliest here), else the first offset
// whose timestamp is at or after the given one (offset -1 when none). v0
// answers in the old style (a list of offsets). Leader epoch is 0.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleListOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, ok := b.topics.Get(rt.Topic)
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, 0
			if !ok || t.Partition(rp.Partition) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if req.Version >= 4 && rp.CurrentLeaderEpoch > 0 {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				continue
			}
			l := t.Partition(rp.Partition)
			switch rp.Timestamp {
			case -1:
				sp.Offset = l.HighWatermark()
			case -2, -4:
				sp.Offset = l.LogStartOffset()
			case -3:
				sp.Offset, sp.Timestamp = l.MaxTimestamp()
			default:
				if rp.Timestamp < 0 {
					sp.ErrorCode = kerr.InvalidRequest.Code
					continue
				}
				off, ts, found, err := l.OffsetForTimestamp(rp.Timestamp)
				if err != nil {
					sp.ErrorCode = b.errorCode(err)
					continue
				}
				if found {
					sp.Offset, sp.Timestamp = off, ts
				}
			}
			if req.Version == 0 {
				if sp.Offset >= 0 {
					sp.OldStyleOffsets = []int64{sp.Offset}
				} else {
					sp.OldStyleOffsets = []int64{}
				}
			}
		}
	}
	return resp
}
