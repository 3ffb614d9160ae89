package broker

// DescribeCluster v0-v1 and FindCoordinator v0-v4 (v4: batched keys).
// This node is the coordinator of every group. Transaction coordinators are
// refused: transactions are not supported.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleDescribeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = b.meta.ClusterID()
	resp.ControllerID = b.cfg.NodeID
	resp.EndpointType = req.EndpointType
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.cfg.NodeID, b.host, b.port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	return resp
}

func (b *Broker) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (code int16, msg *string) {
		if req.CoordinatorType != 0 {
			return kerr.InvalidRequest.Code, strp("only group coordinators exist here: transactions are not supported")
		}
		if key == "" {
			return kerr.InvalidGroupID.Code, strp("empty group id")
		}
		return 0, nil
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			c.ErrorCode, c.ErrorMessage = answer(key)
			if c.ErrorCode == 0 {
				c.NodeID, c.Host, c.Port = b.cfg.NodeID, b.host, b.port
			} else {
				c.NodeID = -1
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp
	}
	resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
	if resp.ErrorCode == 0 {
		resp.NodeID, resp.Host, resp.Port = b.cfg.NodeID, b.host, b.port
	} else {
		resp.NodeID = -1
	}
	return resp
}
