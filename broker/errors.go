package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary-data/tributary/broker/commitlog"
	"github.com/tributary-data/tributary/broker/records"
	"github.com/tributary-data/tributary/broker/topics"
)

// errorCode is the one place that turns an internal error into a Kafka
// error code. Errors it does not know come from the disk (KAFKA_STORAGE_ERROR);
// the caller logs them. Error codes answered are counted per API in
// conn.handle, from the response itself.
func (b *Broker) errorCode(err error) int16 {
	var code int16
	switch {
	case err == nil:
		return 0
	case errors.Is(err, topics.ErrUnknownTopic):
		code = kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, topics.ErrTopicExists):
		code = kerr.TopicAlreadyExists.Code
	case errors.Is(err, topics.ErrInvalidTopic):
		code = kerr.InvalidTopicException.Code
	case errors.Is(err, topics.ErrInvalidPartitions):
		code = kerr.InvalidPartitions.Code
	case errors.Is(err, topics.ErrInvalidConfig):
		code = kerr.InvalidConfig.Code
	case errors.Is(err, records.ErrTooLarge):
		code = kerr.MessageTooLarge.Code
	case errors.Is(err, records.ErrCorrupt), errors.Is(err, records.ErrShort):
		code = kerr.CorruptMessage.Code
	case errors.Is(err, records.ErrInvalid):
		code = kerr.InvalidRecord.Code
	case errors.Is(err, commitlog.ErrOffsetOutOfRange):
		code = kerr.OffsetOutOfRange.Code
	case errors.Is(err, commitlog.ErrOutOfOrderSequence):
		code = kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, commitlog.ErrInvalidProducerEpoch):
		code = kerr.InvalidProducerEpoch.Code
	case errors.Is(err, commitlog.ErrClosed):
		code = kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = kerr.RequestTimedOut.Code
	default:
		code = kerr.KafkaStorageError.Code
	}
	return code
}

func errName(code int16) string {
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return ke.Message
	}
	return "UNKNOWN"
}
