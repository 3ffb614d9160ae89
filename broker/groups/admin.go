package groups

// Group admin APIs:
//   DescribeGroups v0-v5 (v3+: authorized operations, always "not requested"; v4+: instance ids)
//   ListGroups     v0-v4 (v4: StatesFilter; v5 TypesFilter is honoured too: every group is "classic")
//   DeleteGroups   v0-v2

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups handles DescribeGroups v0-v5. A group that does not exist is described as
// Dead with no error, as Kafka does. Member metadata and assignments are filled only for a
// Stable group.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	code := c.serving()
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		if code != 0 {
			dg.ErrorCode = code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g := c.lockGroup(name, false)
		if g == nil {
			dg.State = stateDead.String()
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		dg.State = g.state.String()
		dg.ProtocolType = g.protocolType
		stable := g.state == stateStable
		if stable {
			dg.Protocol = g.protocol
		}
		for _, m := range g.sortedMembers() {
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID = m.id
			dm.InstanceID = m.instanceID
			dm.ClientID = m.clientID
			dm.ClientHost = m.clientHost
			dm.ProtocolMetadata = []byte{}
			dm.MemberAssignment = []byte{}
			if stable {
				if md := m.metadataFor(g.protocol); md != nil {
					dm.ProtocolMetadata = md
				}
				if m.assignment != nil {
					dm.MemberAssignment = m.assignment
				}
			}
			dg.Members = append(dg.Members, dm)
		}
		g.mu.Unlock()
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// ListGroups handles ListGroups v0-v4: every group, sorted by name, filtered by
// StatesFilter (v4+, case-insensitive Kafka state names) and TypesFilter (v5+).
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if code := c.serving(); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	var states, types []string
	if req.Version >= 4 {
		states = req.StatesFilter
	}
	if req.Version >= 5 {
		types = req.TypesFilter
	}
	if len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, "classic") }) {
		resp.Groups = []kmsg.ListGroupsResponseGroup{}
		return resp
	}
	c.mu.Lock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	c.mu.Unlock()
	slices.SortFunc(gs, func(a, b *group) int { return strings.Compare(a.name, b.name) })
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	for _, g := range gs {
		g.mu.Lock()
		state, ptype := g.state, g.protocolType
		g.mu.Unlock()
		if state == stateDead {
			continue
		}
		if len(states) > 0 && !slices.ContainsFunc(states, func(s string) bool { return strings.EqualFold(s, state.String()) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.name
		lg.ProtocolType = ptype
		lg.GroupState = state.String()
		lg.GroupType = "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DeleteGroups handles DeleteGroups v0-v2. Only a group without members can be deleted
// (else NON_EMPTY_GROUP; GROUP_ID_NOT_FOUND if it does not exist): tombstones for its
// offsets and metadata are appended to the Store, then the group is forgotten. If the Store
// fails, the group is kept and the answer is COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	code := c.serving()
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		if code != 0 {
			dg.ErrorCode = code
		} else {
			dg.ErrorCode = c.deleteGroup(ctx, name)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, name string) int16 {
	g := c.lockGroupStore(name, false)
	if g == nil {
		if c.closed.Load() {
			return kerr.CoordinatorNotAvailable.Code
		}
		return kerr.GroupIDNotFound.Code
	}
	defer g.storeMu.Unlock()
	defer g.mu.Unlock()
	if g.state != stateEmpty || len(g.members) > 0 {
		return kerr.NonEmptyGroup.Code
	}
	var recs []Record
	topics := make([]string, 0, len(g.offsets))
	for t := range g.offsets {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		ps := make([]int32, 0, len(g.offsets[t]))
		for p := range g.offsets[t] {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		for _, p := range ps {
			recs = append(recs, Record{Key: offsetKey(g.name, t, p)})
		}
	}
	recs = append(recs, Record{Key: groupMetaKey(g.name)})
	// mu stays held across the append: the group has no members, and nobody may join it
	// between the emptiness check and its death.
	if err := c.store.Append(ctx, recs); err != nil {
		c.log.Warn("persisting group deletion failed", "group", g.name, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	for id := range g.pending {
		delete(g.pending, id)
	}
	g.kill()
	c.log.Info("group deleted", "group", g.name)
	return 0
}
