package groups

// Committed offsets:
//   OffsetCommit v0-v8 (v0: no generation or member, a "simple" commit; v1: per-partition
//                       commit timestamp; v2-v4: retention time; v6+: leader epoch;
//                       v7+: group.instance.id)
//   OffsetFetch  v0-v8 (v2+: topics null means all, top-level error; v5+: leader epoch;
//                       v7: RequireStable, ignored since there are no transactions;
//                       v8: several groups in one request)
//   OffsetDelete v0
// plus the retention sweep (offsets.retention.minutes).
//
// The coordinator stores offsets for any topic and partition: the dispatcher checks that
// they exist (UNKNOWN_TOPIC_OR_PARTITION) before calling, as Kafka's request layer does.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles OffsetCommit v0-v8. Members commit with their member id and the
// current generation; a request with generation < 0 and no member id (and every v0 request)
// is a "simple" commit, allowed only while the group has no members (it creates the group).
// The commit is appended to the Store (one Append per request) and acknowledged only once
// durable; if the Store fails, every partition gets COORDINATOR_NOT_AVAILABLE and the
// committed offsets do not change.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	if code := c.serving(); code != 0 {
		return setAll(code)
	}
	generation, memberID, instanceID := req.Generation, req.MemberID, req.InstanceID
	if req.Version < 1 {
		generation, memberID = -1, ""
	}
	if req.Version < 7 {
		instanceID = nil
	}
	// A group that does not exist is created only by a simple commit; a member commit
	// to it comes from an older generation (Kafka: ILLEGAL_GENERATION).
	g := c.lockGroupStore(req.Group, generation < 0)
	if g == nil {
		if c.closed.Load() {
			return setAll(kerr.CoordinatorNotAvailable.Code)
		}
		return setAll(kerr.IllegalGeneration.Code)
	}
	if code := g.validateCommit(generation, memberID, instanceID, time.Now()); code != 0 {
		g.dropIfUnused()
		g.mu.Unlock()
		g.storeMu.Unlock()
		return setAll(code)
	}

	nowMs := c.cfg.Now().UnixMilli()
	expire := int64(-1)
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
		expire = nowMs + req.RetentionTimeMillis
	}
	type pending struct {
		topic string
		part  int32
		entry offsetEntry
	}
	var commits []pending
	var recs []Record
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			var md string
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if len(md) > c.cfg.OffsetMetadataMaxBytes {
				resp.Topics[i].Partitions[j].ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			e := offsetEntry{offset: p.Offset, leaderEpoch: -1, metadata: md, commitTime: nowMs, expireTime: expire}
			if req.Version == 1 && p.Timestamp != -1 {
				e.commitTime = p.Timestamp
			}
			if req.Version >= 6 {
				e.leaderEpoch = p.LeaderEpoch
			}
			commits = append(commits, pending{t.Topic, p.Partition, e})
			recs = append(recs, offsetRecord(g.name, t.Topic, p.Partition, e))
		}
	}
	g.mu.Unlock()
	defer g.storeMu.Unlock()
	if len(recs) == 0 {
		return resp
	}
	if err := c.store.Append(ctx, recs); err != nil {
		c.log.Warn("persisting offset commit failed", "group", g.name, "err", err)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = kerr.CoordinatorNotAvailable.Code
				}
			}
		}
		g.mu.Lock()
		g.dropIfUnused()
		g.mu.Unlock()
		return resp
	}
	g.mu.Lock()
	for _, p := range commits {
		g.setOffset(p.topic, p.part, p.entry)
	}
	g.mu.Unlock()
	return resp
}

// validateCommit is Kafka's validateOffsetCommit plus the state check of doCommitOffsets.
// Called with mu held.
func (g *group) validateCommit(generation int32, memberID string, instanceID *string, now time.Time) int16 {
	if generation >= 0 || memberID != "" || instanceID != nil {
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != stateEmpty {
		// Only members may commit to a group that has members.
		return kerr.UnknownMemberID.Code
	}
	switch g.state {
	case stateEmpty:
		return 0
	case stateStable, statePreparingRebalance:
		// During PreparingRebalance the commit is still allowed: the heartbeat response
		// tells the member to rejoin.
		m := g.members[memberID]
		m.deadline = now.Add(m.sessionTimeout)
		return 0
	case stateCompletingRebalance:
		return kerr.RebalanceInProgress.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

func (g *group) setOffset(topic string, partition int32, e offsetEntry) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = make(map[int32]offsetEntry)
		g.offsets[topic] = ps
	}
	ps[partition] = e
}

func (g *group) deleteOffset(topic string, partition int32) {
	if ps := g.offsets[topic]; ps != nil {
		delete(ps, partition)
		if len(ps) == 0 {
			delete(g.offsets, topic)
		}
	}
}

// dropIfUnused forgets a group that holds nothing at all (created by a simple commit that
// then failed). Called with mu held.
func (g *group) dropIfUnused() {
	if g.state == stateEmpty && g.protocolType == "" && g.generation == 0 && len(g.members) == 0 &&
		len(g.pending) == 0 && len(g.offsets) == 0 {
		g.kill()
	}
}

// OffsetFetch handles OffsetFetch v0-v8. Topics == nil (v2+) returns every committed offset
// of the group; a partition without a commit, or a group that does not exist, answers offset
// -1 with no error, as Kafka does.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	code := c.serving()
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			if code != 0 {
				sg.ErrorCode = code
			} else {
				var topics []kmsg.OffsetFetchRequestTopic
				if rg.Topics != nil {
					topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
					for _, t := range rg.Topics {
						topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
					}
				}
				for _, t := range c.fetchOffsets(rg.Group, topics) {
					st := kmsg.NewOffsetFetchResponseGroupTopic()
					st.Topic = t.Topic
					for _, p := range t.Partitions {
						sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
						sp.Partition = p.Partition
						sp.Offset = p.Offset
						sp.LeaderEpoch = p.LeaderEpoch
						sp.Metadata = p.Metadata
						sp.ErrorCode = p.ErrorCode
						st.Partitions = append(st.Partitions, sp)
					}
					sg.Topics = append(sg.Topics, st)
				}
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	if code != 0 {
		if req.Version >= 2 {
			resp.ErrorCode = code
			return resp
		}
		// v0-v1 have no top-level error: report it on every requested partition.
		for _, t := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition = p
				sp.Offset = -1
				sp.Metadata = kmsg.StringPtr("")
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	resp.Topics = c.fetchOffsets(req.Group, req.Topics)
	return resp
}

// fetchOffsets answers one group's OffsetFetch: the requested partitions (nil topics: all
// committed ones), sorted by topic and partition when listing all.
func (c *Coordinator) fetchOffsets(name string, topics []kmsg.OffsetFetchRequestTopic) []kmsg.OffsetFetchResponseTopic {
	g := c.lockGroup(name, false)
	var offsets map[string]map[int32]offsetEntry
	if g != nil {
		defer g.mu.Unlock()
		offsets = g.offsets
	}
	part := func(p int32, o offsetEntry, ok bool) kmsg.OffsetFetchResponseTopicPartition {
		sp := kmsg.NewOffsetFetchResponseTopicPartition()
		sp.Partition = p
		sp.Offset = -1
		sp.Metadata = kmsg.StringPtr("")
		if ok {
			sp.Offset = o.offset
			sp.LeaderEpoch = o.leaderEpoch
			sp.Metadata = kmsg.StringPtr(o.metadata)
		}
		return sp
	}
	var out []kmsg.OffsetFetchResponseTopic
	if topics == nil {
		names := make([]string, 0, len(offsets))
		for t := range offsets {
			names = append(names, t)
		}
		slices.Sort(names)
		for _, t := range names {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t
			ps := make([]int32, 0, len(offsets[t]))
			for p := range offsets[t] {
				ps = append(ps, p)
			}
			slices.Sort(ps)
			for _, p := range ps {
				st.Partitions = append(st.Partitions, part(p, offsets[t][p], true))
			}
			out = append(out, st)
		}
		return out
	}
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			o, ok := offsets[t.Topic][p]
			st.Partitions = append(st.Partitions, part(p, o, ok))
		}
		out = append(out, st)
	}
	return out
}

// OffsetDelete handles OffsetDelete v0: a group without members loses the requested
// offsets; a "consumer" group with members loses those of topics no member subscribes to,
// the others fail with GROUP_SUBSCRIBED_TO_TOPIC; a non-"consumer" group with members fails
// with NON_EMPTY_GROUP. Tombstones are written before the response.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if code := c.serving(); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroupStore(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		if c.closed.Load() {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return resp
	}
	defer g.storeMu.Unlock()
	defer g.mu.Unlock()

	checkSubscribed := false
	switch {
	case g.state == stateEmpty:
	case g.protocolType == "consumer":
		checkSubscribed = true
	default:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	type tp struct {
		topic string
		part  int32
	}
	var dels []tp
	var recs []Record
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		_, subscribed := g.subscribed[t.Topic]
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if checkSubscribed && subscribed {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[t.Topic][p.Partition]; ok {
				dels = append(dels, tp{t.Topic, p.Partition})
				recs = append(recs, Record{Key: offsetKey(g.name, t.Topic, p.Partition)})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		return resp
	}
	// mu stays held across the append: deletes are rare admin requests, and holding it keeps
	// the subscription check and the delete atomic.
	if err := c.store.Append(ctx, recs); err != nil {
		c.log.Warn("persisting offset delete failed", "group", g.name, "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.Topics = nil
		return resp
	}
	for _, d := range dels {
		g.deleteOffset(d.topic, d.part)
	}
	return resp
}

// expireOffsets is the retention sweep (Kafka's cleanupGroupMetadata): it deletes expired
// offsets and forgets Empty groups left without offsets, writing tombstones first.
func (c *Coordinator) expireOffsets(ctx context.Context) {
	c.mu.Lock()
	names := make([]string, 0, len(c.groups))
	for name := range c.groups {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		g := c.lockGroupStore(name, false)
		if g == nil {
			continue
		}
		c.expireGroup(ctx, g)
		g.mu.Unlock()
		g.storeMu.Unlock()
	}
}

// expireGroup runs the sweep on one group; called with storeMu and mu held.
func (c *Coordinator) expireGroup(ctx context.Context, g *group) {
	now := c.cfg.Now().UnixMilli()
	retention := c.cfg.OffsetsRetention.Milliseconds()
	var base func(offsetEntry) int64
	var keep map[string]struct{}
	switch {
	case g.protocolType != "" && g.state == stateEmpty:
		// Offsets expire once the group has been empty for the retention period.
		since := g.stateSince.UnixMilli()
		base = func(offsetEntry) int64 { return since }
	case g.protocolType == "consumer" && g.state == stateStable && g.subscribed != nil:
		// Offsets of topics the members no longer subscribe to expire after their commit.
		base = func(o offsetEntry) int64 { return o.commitTime }
		keep = g.subscribed
	case g.protocolType == "":
		// Commit-only group: each offset expires after its commit.
		base = func(o offsetEntry) int64 { return o.commitTime }
	}
	type tp struct {
		topic string
		part  int32
	}
	var expired []tp
	var recs []Record
	for topic, ps := range g.offsets {
		if _, ok := keep[topic]; ok {
			continue
		}
		for p, o := range ps {
			var gone bool
			switch {
			case o.expireTime >= 0:
				gone = now >= o.expireTime
			case base != nil:
				gone = now-base(o) >= retention
			}
			if gone {
				expired = append(expired, tp{topic, p})
				recs = append(recs, Record{Key: offsetKey(g.name, topic, p)})
			}
		}
	}
	dead := g.state == stateEmpty && len(g.pending) == 0 && len(g.offsets) == 0
	if !dead && g.state == stateEmpty && len(g.pending) == 0 {
		n := 0
		for _, ps := range g.offsets {
			n += len(ps)
		}
		dead = n == len(expired)
	}
	if dead {
		recs = append(recs, Record{Key: groupMetaKey(g.name)})
	}
	if len(recs) == 0 {
		return
	}
	if err := c.store.Append(ctx, recs); err != nil {
		c.log.Warn("persisting expired offsets failed", "group", g.name, "err", err)
		return
	}
	for _, e := range expired {
		g.deleteOffset(e.topic, e.part)
	}
	if len(expired) > 0 {
		c.log.Info("expired committed offsets", "group", g.name, "count", len(expired))
	}
	if dead {
		c.log.Info("removing empty group", "group", g.name)
		g.kill()
	}
}

// DeleteTopicOffsets removes every group's committed offsets for the given topics, as Kafka
// does when topics are deleted: tombstones are appended (one Append per group holding such
// offsets) before the offsets leave memory. It returns the first Store error, after trying
// every group.
func (c *Coordinator) DeleteTopicOffsets(ctx context.Context, topics ...string) error {
	if code := c.serving(); code != 0 {
		return kerr.ErrorForCode(code)
	}
	c.mu.Lock()
	names := make([]string, 0, len(c.groups))
	for name := range c.groups {
		names = append(names, name)
	}
	c.mu.Unlock()
	var firstErr error
	for _, name := range names {
		g := c.lockGroupStore(name, false)
		if g == nil {
			continue
		}
		var recs []Record
		for _, t := range topics {
			for p := range g.offsets[t] {
				recs = append(recs, Record{Key: offsetKey(g.name, t, p)})
			}
		}
		if len(recs) > 0 {
			if err := c.store.Append(ctx, recs); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("groups: deleting offsets of group %q: %w", g.name, err)
				}
			} else {
				for _, t := range topics {
					delete(g.offsets, t)
				}
			}
		}
		g.mu.Unlock()
		g.storeMu.Unlock()
	}
	return firstErr
}
