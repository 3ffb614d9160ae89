package broker

// Fetch: v0-v16. Topics are named (v0-v12) or identified by topic id (v13+).
// Data is served from the stored batches without re-encoding, except for
// v0-v3 fetchers, who get message sets of magic 0 (v0-v1) or 1 (v2-v3)
// converted from the stored batches. Long poll: the answer waits up to
// MaxWaitMillis until MinBytes are available. Limits: MaxBytes (v3+) for the
// whole response and PartitionMaxBytes per partition, except that the first
// batch of the response is sent whole even when larger (KIP-74), so that a
// consumer always makes progress. Only fsynced data (below the high
// watermark) is served. Fetch sessions (v7+) are not kept: every answer has
// session id 0, which tells clients to send full fetch requests.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/commitlog"
	"github.com/tributary-data/tributary/broker/topics"
)

func (b *Broker) handleFetch(ctx context.Context, r *request, req *kmsg.FetchRequest) kmsg.Response {
	if req.Version >= 7 && req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		resp.SessionID = req.SessionID
		return resp
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		wake := b.hwm.Wait() // before reading high watermarks: no lost wake-up
		resp, n, hasErr, bufs := b.fetchOnce(req)
		if hasErr || n >= int(req.MinBytes) || req.MinBytes <= 0 || !time.Now().Before(deadline) {
			r.release = bufs
			return resp
		}
		for _, buf := range bufs { // this answer is dropped: recycle its buffers now
			b.bufs.put(buf)
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-wake:
		case <-timer.C:
			resp, _, _, r.release = b.fetchOnce(req)
			return resp
		case <-ctx.Done():
			return resp
		}
	}
}

// fetchOnce builds a response from what is available now; it returns the
// number of record bytes, whether any partition has an error, and the pooled
// buffers the response refers to.
func (b *Broker) fetchOnce(req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, total int, hasErr bool, bufs [][]byte) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	budget := int(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = int(^uint(0) >> 1)
	}
	magic := int8(2)
	switch {
	case req.Version <= 1:
		magic = 0
	case req.Version <= 3:
		magic = 1
	}
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *topics.Topic
		var ok bool
		unknown := kerr.UnknownTopicOrPartition.Code
		if req.Version >= 13 {
			t, ok = b.topics.GetByID(rt.TopicID)
			unknown = kerr.UnknownTopicID.Code
		} else {
			t, ok = b.topics.Get(rt.Topic)
		}
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{} // never null: librdkafka rejects a null record set
			var l *commitlog.Log
			if ok {
				l = t.Partition(rp.Partition)
			}
			if l == nil {
				sp.ErrorCode = unknown
				hasErr = true
				continue
			}
			if req.Version >= 9 && rp.CurrentLeaderEpoch > 0 {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				hasErr = true
				continue
			}
			hw := l.HighWatermark()
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, l.LogStartOffset()
			if rp.FetchOffset == hw {
				continue
			}
			if rp.FetchOffset > hw || rp.FetchOffset < sp.LogStartOffset {
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				hasErr = true
				continue
			}
			limit := int(rp.PartitionMaxBytes)
			if limit > budget-total {
				limit = budget - total
			}
			if limit <= 0 && total > 0 {
				continue
			}
			scratch := b.bufs.get(min(limit, maxPooled) + readSlack)
			bufs = append(bufs, scratch)
			data, err := l.ReadInto(scratch[:cap(scratch)], rp.FetchOffset, limit, hw)
			if err != nil {
				sp.ErrorCode = b.errorCode(err)
				hasErr = true
				continue
			}
			if total > 0 && len(data) > limit {
				continue // KIP-74 applies to the first batch of the response only
			}
			if magic < 2 && len(data) > 0 {
				if data, err = b.codecs.DownConvert(data, magic); err != nil {
					sp.ErrorCode = b.errorCode(err)
					b.log.Error("down-conversion for an old fetcher failed", "topic", t.Name, "partition", rp.Partition, "err", err)
					hasErr = true
					continue
				}
			}
			if len(data) > 0 {
				sp.RecordBatches = data
			}
			total += len(data)
		}
	}
	return resp, total, hasErr, bufs
}

// readSlack covers what a log read window holds beyond maxBytes: up to one
// index interval before the wanted offset, plus a batch header.
const readSlack = 4096 + 128
