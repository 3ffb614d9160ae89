package groups

// __consumer_offsets record formats, format version 1 of this package.
//
// These are Kafka's own formats (encoded and decoded with kmsg), so the data is what a Kafka
// broker writes to __consumer_offsets:
//
//	offset commit    key   kmsg.OffsetCommitKey   version 1: int16 version, string group,
//	                                                         string topic, int32 partition
//	                 value kmsg.OffsetCommitValue version 3: offset, leader epoch (-1: none),
//	                                                         metadata, commit timestamp (ms)
//	                       or version 1 when the commit carried a retention time (OffsetCommit
//	                       v2-v4): offset, metadata, commit timestamp, expire timestamp (ms)
//	group metadata   key   kmsg.GroupMetadataKey  version 2: int16 version, string group
//	                 value kmsg.GroupMetadataValue version 3: protocol type, generation,
//	                       protocol (null when Empty), leader (null when Empty), state
//	                       timestamp (ms), members: member id, instance id, client id,
//	                       client host, rebalance and session timeouts (ms), subscription (the
//	                       member's metadata for the selected protocol), assignment
//
// A nil value is a tombstone (DeleteGroups, OffsetDelete, offset retention). The key's first
// int16 tells the record kind: 0 or 1 offset commit, 2 group metadata. Load also reads the
// older and newer value versions Kafka writes (offset commit v0-v4, group metadata v0-v4) and
// skips keys of other versions (Kafka's KIP-848/share-group records).
//
// Group metadata is written when a rebalance completes (the leader's assignment, before any
// member sees it), when a group becomes Empty, and when a static member is replaced.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	offsetKeyVersion      = 1
	groupMetaKeyVersion   = 2
	offsetValueVersion    = 3
	offsetValueVersionExp = 1
	groupMetaValueVersion = 3
)

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetRecord(group, topic string, partition int32, o offsetEntry) Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	if o.expireTime >= 0 {
		v.Version = offsetValueVersionExp
		v.ExpireTimestamp = o.expireTime
	}
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime
	return Record{Key: offsetKey(group, topic, partition), Value: v.AppendTo(nil)}
}

func groupMetaKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupMetaKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// metadataRecord encodes the group's metadata with the assignment given by assign. Called
// with mu held.
func (g *group) metadataRecord(assign func(*member) []byte) Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetaValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	if len(g.members) > 0 {
		v.Protocol = kmsg.StringPtr(g.protocol)
		v.Leader = kmsg.StringPtr(g.leader)
	}
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = assign(m)
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupMetaKey(g.name), Value: v.AppendTo(nil)}
}

// errBadRecord marks a record Load could not decode.
var errBadRecord = errors.New("undecodable __consumer_offsets record")

// loadedGroup accumulates one group's records during Load.
type loadedGroup struct {
	meta    *kmsg.GroupMetadataValue
	offsets map[string]map[int32]offsetEntry
}

// Load replays records previously appended to the Store, in log order, and starts serving.
// It must be called once, before any request is served (until then handlers answer
// COORDINATOR_LOAD_IN_PROGRESS); pass nil for an empty store. Later records replace earlier
// ones with the same key and tombstones delete. A group whose metadata had members is
// restored Stable with its generation, protocol, leader, members and assignments; its members
// must heartbeat within their session timeouts (counted from Load) or are removed as usual.
// Undecodable records are skipped and logged, so one bad record does not keep the broker
// from starting; the error is non-nil only for ErrAlreadyLoaded or ErrClosed.
func (c *Coordinator) Load(recs []Record) error {
	c.mu.Lock()
	switch {
	case c.closed.Load():
		c.mu.Unlock()
		return ErrClosed
	case c.loaded.Load() || c.loading:
		c.mu.Unlock()
		return ErrAlreadyLoaded
	}
	c.loading = true
	c.mu.Unlock()
	byGroup := make(map[string]*loadedGroup)
	get := func(name string) *loadedGroup {
		lg := byGroup[name]
		if lg == nil {
			lg = &loadedGroup{offsets: make(map[string]map[int32]offsetEntry)}
			byGroup[name] = lg
		}
		return lg
	}
	var skipped int
	for i, r := range recs {
		if err := loadRecord(r, get); err != nil {
			skipped++
			if skipped <= 10 {
				c.log.Warn("skipping __consumer_offsets record", "index", i, "err", err)
			}
		}
	}
	if skipped > 0 {
		c.log.Warn("skipped undecodable __consumer_offsets records", "count", skipped)
	}
	now := time.Now()
	var restored []*group
	for name, lg := range byGroup {
		if lg.meta == nil && len(lg.offsets) == 0 {
			continue
		}
		g := newGroup(c, name)
		g.offsets = lg.offsets
		if lg.meta != nil {
			g.restoreMeta(lg.meta, now)
		}
		restored = append(restored, g)
	}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	for _, g := range restored {
		c.groups[g.name] = g
	}
	c.loaded.Store(true)
	c.mu.Unlock()
	for _, g := range restored {
		g.mu.Lock()
		g.arm()
		g.mu.Unlock()
	}
	c.log.Info("group coordinator loaded", "records", len(recs), "groups", len(restored))
	return nil
}

// loadRecord applies one record to the groups being loaded.
func loadRecord(r Record, get func(string) *loadedGroup) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", errBadRecord, len(r.Key))
	}
	switch kv := int16(binary.BigEndian.Uint16(r.Key)); kv {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: offset key: %v", errBadRecord, err)
		}
		lg := get(k.Group)
		if r.Value == nil {
			if ps := lg.offsets[k.Topic]; ps != nil {
				delete(ps, k.Partition)
				if len(ps) == 0 {
					delete(lg.offsets, k.Topic)
				}
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("%w: offset value for %s/%s/%d: %v", errBadRecord, k.Group, k.Topic, k.Partition, err)
		}
		o := offsetEntry{
			offset:      v.Offset,
			leaderEpoch: -1,
			metadata:    v.Metadata,
			commitTime:  v.CommitTimestamp,
			expireTime:  -1,
		}
		if v.Version >= 3 {
			o.leaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			o.expireTime = v.ExpireTimestamp
		}
		ps := lg.offsets[k.Topic]
		if ps == nil {
			ps = make(map[int32]offsetEntry)
			lg.offsets[k.Topic] = ps
		}
		ps[k.Partition] = o
		return nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: group key: %v", errBadRecord, err)
		}
		lg := get(k.Group)
		if r.Value == nil {
			lg.meta = nil
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("%w: group value for %s: %v", errBadRecord, k.Group, err)
		}
		lg.meta = v
		return nil
	default:
		return nil // other record kinds (KIP-848, share groups): not ours
	}
}

// restoreMeta rebuilds the group from its last metadata record: Stable with its members if
// it had any (sessions counted from now), else Empty.
func (g *group) restoreMeta(v *kmsg.GroupMetadataValue, now time.Time) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.CurrentStateTimestamp > 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	if v.Protocol == nil || *v.Protocol == "" || len(v.Members) == 0 {
		return
	}
	g.protocol = *v.Protocol
	for _, vm := range v.Members {
		if vm.MemberID == "" || g.members[vm.MemberID] != nil {
			continue
		}
		g.nextSeq++
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			protocolType:     v.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			sessionTimeout:   msDur(vm.SessionTimeoutMillis),
			rebalanceTimeout: msDur(vm.RebalanceTimeoutMillis),
			assignment:       vm.Assignment,
			seq:              g.nextSeq,
		}
		if v.Version < 1 || m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		m.deadline = now.Add(m.sessionTimeout)
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if len(g.members) == 0 {
		g.protocol = ""
		return
	}
	g.leader = ""
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	} else {
		g.leader = g.sortedMembers()[0].id
	}
	g.state = stateStable
	g.computeSubscribed()
}
