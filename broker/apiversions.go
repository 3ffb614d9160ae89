package broker

// ApiVersions: v0-v3. A request of a version above 3 gets the v0 answer with
// UNSUPPORTED_VERSION and the supported ranges (KIP-511), so that the client
// retries with a version both sides know.
//
// The table below is the one place listing every API and version range the
// broker serves; each handler file repeats its own range in its header.

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/groups"
)

type versionRange struct{ key, min, max int16 }

var supported = []versionRange{
	{0, 0, 11}, // Produce
	{1, 0, 16}, // Fetch
	{2, 0, 8},  // ListOffsets
	{3, 0, 12}, // Metadata
	{8, 0, 8},  // OffsetCommit
	{9, 0, 8},  // OffsetFetch
	{10, 0, 4}, // FindCoordinator
	{11, 0, 9}, // JoinGroup
	{12, 0, 4}, // Heartbeat
	{13, 0, 5}, // LeaveGroup
	{14, 0, 5}, // SyncGroup
	{15, 0, 5}, // DescribeGroups
	{16, 0, 4}, // ListGroups
	{18, 0, 3}, // ApiVersions
	{19, 0, 7}, // CreateTopics
	{20, 0, 6}, // DeleteTopics
	{21, 0, 2}, // DeleteRecords
	{22, 0, 4}, // InitProducerId
	{23, 0, 4}, // OffsetForLeaderEpoch
	{32, 0, 4}, // DescribeConfigs
	{33, 0, 2}, // AlterConfigs
	{37, 0, 3}, // CreatePartitions
	{42, 0, 2}, // DeleteGroups
	{44, 0, 1}, // IncrementalAlterConfigs
	{47, 0, 0}, // OffsetDelete
	{60, 0, 1}, // DescribeCluster
}

func supportedVersions(key int16) (min, max int16, ok bool) {
	for _, v := range supported {
		if v.key == key {
			return v.min, v.max, true
		}
	}
	return 0, 0, false
}

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(supported))
	for _, v := range supported {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = v.key, v.min, v.max
		out = append(out, k)
	}
	return out
}

func (b *Broker) handleApiVersions(req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return resp
}

func (b *Broker) apiVersionsFallback() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return resp
}

// dispatch runs the handler of a decoded request. It returns nil when no
// response is due (Produce with acks=0).
func (b *Broker) dispatch(r *request) kmsg.Response {
	ctx := b.drainCtx()
	switch r.kreq.(type) {
	case *kmsg.JoinGroupRequest, *kmsg.SyncGroupRequest, *kmsg.HeartbeatRequest, *kmsg.LeaveGroupRequest, *kmsg.DescribeGroupsRequest:
		host := r.host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ctx = groups.WithClientInfo(ctx, groups.ClientInfo{ClientID: r.clientID, ClientHost: "/" + host})
	}
	switch req := r.kreq.(type) {
	case *kmsg.ApiVersionsRequest:
		return b.handleApiVersions(req)
	case *kmsg.MetadataRequest:
		return b.handleMetadata(req)
	case *kmsg.ProduceRequest:
		return b.handleProduce(req)
	case *kmsg.FetchRequest:
		return b.handleFetch(ctx, r, req)
	case *kmsg.ListOffsetsRequest:
		return b.handleListOffsets(req)
	case *kmsg.CreateTopicsRequest:
		return b.handleCreateTopics(req)
	case *kmsg.DeleteTopicsRequest:
		return b.handleDeleteTopics(req)
	case *kmsg.CreatePartitionsRequest:
		return b.handleCreatePartitions(req)
	case *kmsg.DeleteRecordsRequest:
		return b.handleDeleteRecords(req)
	case *kmsg.DescribeConfigsRequest:
		return b.handleDescribeConfigs(req)
	case *kmsg.AlterConfigsRequest:
		return b.handleAlterConfigs(req)
	case *kmsg.IncrementalAlterConfigsRequest:
		return b.handleIncrementalAlterConfigs(req)
	case *kmsg.InitProducerIDRequest:
		return b.handleInitProducerID(req)
	case *kmsg.OffsetForLeaderEpochRequest:
		return b.handleOffsetForLeaderEpoch(req)
	case *kmsg.DescribeClusterRequest:
		return b.handleDescribeCluster(req)
	case *kmsg.FindCoordinatorRequest:
		return b.handleFindCoordinator(req)
	case *kmsg.JoinGroupRequest:
		return b.groups.JoinGroup(ctx, req)
	case *kmsg.SyncGroupRequest:
		return b.groups.SyncGroup(ctx, req)
	case *kmsg.HeartbeatRequest:
		return b.groups.Heartbeat(ctx, req)
	case *kmsg.LeaveGroupRequest:
		return b.groups.LeaveGroup(ctx, req)
	case *kmsg.OffsetCommitRequest:
		return b.handleOffsetCommit(req)
	case *kmsg.OffsetFetchRequest:
		return b.groups.OffsetFetch(ctx, req)
	case *kmsg.DescribeGroupsRequest:
		return b.groups.DescribeGroups(ctx, req)
	case *kmsg.ListGroupsRequest:
		return b.groups.ListGroups(ctx, req)
	case *kmsg.DeleteGroupsRequest:
		return b.groups.DeleteGroups(b.ctx, req)
	case *kmsg.OffsetDeleteRequest:
		return b.groups.OffsetDelete(b.ctx, req)
	}
	// parseRequest only lets through keys listed in supported, each handled above.
	panic("broker: no handler for " + kmsg.NameForKey(r.key))
}
