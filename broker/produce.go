package broker

// Produce: v0-v11. v0-v1 carry magic 0 message sets, v2 magic 1, v3+ record
// batches v2; legacy message sets are converted to v2 batches on write
// (records.SplitProduce). Batches are stored as sent (any codec), after their
// CRC is checked. acks=-1 is answered only once the data is fsynced (group
// commit in the partition log); acks=1 once it is written; acks=0 gets no
// answer. Idempotent producers are deduplicated per partition by the log.
// Transactions are not supported: transactional batches are rejected.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/records"
	"github.com/tributary-data/tributary/broker/topics"
)

type pendingAck struct {
	part *kmsg.ProduceResponseTopicPartition
	wait func(context.Context) error
}

func (b *Broker) handleProduce(req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var pending []pendingAck
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t, ok := b.topics.Get(rt.Topic)
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			if !ok || t.Partition(rp.Partition) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if t.Internal {
				sp.ErrorCode = kerr.InvalidTopicException.Code
				sp.ErrorMessage = strp(fmt.Sprintf("%s is internal to the broker: clients cannot write to it", t.Name))
				continue
			}
			if req.TransactionID != nil {
				sp.ErrorCode = kerr.InvalidRecord.Code
				msg := "transactions are not supported by this broker"
				sp.ErrorMessage = &msg
				continue
			}
			wait, err := b.producePartition(t, rp.Partition, rp.Records, sp)
			if err != nil {
				sp.ErrorCode = b.errorCode(err)
				if sp.ErrorCode == kerr.KafkaStorageError.Code {
					b.log.Error("produce failed", "topic", t.Name, "partition", rp.Partition, "err", err)
				}
				msg := err.Error()
				sp.ErrorMessage = &msg
				continue
			}
			if req.Acks == -1 && wait != nil {
				pending = append(pending, pendingAck{sp, wait})
			}
		}
	}
	if len(pending) > 0 {
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(b.ctx, timeout)
		for _, p := range pending {
			if err := p.wait(ctx); err != nil {
				p.part.ErrorCode = b.errorCode(err)
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					b.log.Error("produce not made durable", "err", err)
				}
				msg := fmt.Sprintf("not durable: %v", err)
				p.part.ErrorMessage = &msg
				p.part.BaseOffset = -1
			}
		}
		cancel()
	}
	if req.Acks == 0 {
		return nil
	}
	return resp
}

// producePartition validates and appends one partition's records, filling
// the response; it returns the wait for durability.
func (b *Broker) producePartition(t *topics.Topic, partition int32, blob []byte, sp *kmsg.ProduceResponseTopicPartition) (func(context.Context) error, error) {
	l := t.Partition(partition)
	cfg := t.Configs()
	defaults := b.topics.Defaults()
	batches, err := b.codecs.SplitProduce(blob, defaults.MaxMessageBytes(cfg))
	if err != nil {
		return nil, err
	}
	if len(batches) == 0 {
		return nil, fmt.Errorf("%w: no record batch in the request", records.ErrInvalid)
	}
	compacted := defaults.Compacted(cfg)
	appendTime := int64(-1)
	if defaults.LogAppendTime(cfg) {
		appendTime = time.Now().UnixMilli()
	}
	var nrec int64
	for i := range batches {
		h := batches[i].Header
		if h.IsControl() || h.IsTransactional() {
			return nil, fmt.Errorf("%w: transactional and control batches are not accepted (transactions are not supported)", records.ErrInvalid)
		}
		if compacted {
			_, recs, err := b.codecs.Records(batches[i].Raw)
			if err != nil {
				return nil, err
			}
			for _, r := range recs {
				if r.Key == nil {
					return nil, fmt.Errorf("%w: topic %q is compacted (cleanup.policy=compact): every record needs a key", records.ErrInvalid, t.Name)
				}
			}
		}
		if appendTime >= 0 {
			records.SetLogAppendTime(batches[i].Raw, appendTime)
		}
		nrec += int64(h.NumRecords)
	}
	res, err := l.Append(batches)
	if err != nil {
		return nil, err
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = appendTime
	sp.LogStartOffset = res.LogStartOffset
	b.metrics.bytesIn.Add(float64(len(blob)))
	b.metrics.recordsIn.Add(float64(nrec))
	end := res.LastOffset + 1
	return func(ctx context.Context) error { return l.WaitDurable(ctx, end) }, nil
}
