package cdc

// Source offsets, format version 1.
//
// Source partition: {"server": <topic.prefix>} (Debezium's), one map shared
// by every record. Offsets are maps of int64/bool values (LSNs as int64, as
// Debezium stores them):
//
//	"tributary_offset"    1: this format (an offset without it was written by
//	                      Debezium: see below)
//	"lsn"                 the resume point. START_REPLICATION starts there and
//	                      Commit reports it to the server as the slot's flushed
//	                      LSN (confirmed_flush_lsn). For a record that ends its
//	                      transaction: the transaction's end LSN (so the server
//	                      will not send it again). For a record inside a
//	                      transaction: the transaction's commit LSN (the server
//	                      sends the whole transaction again and the task skips
//	                      what was already emitted). For snapshot records: the
//	                      slot's consistent point.
//	"lsn_commit"          commit LSN of the record's transaction
//	"lsn_proc"            LSN of the record's change
//	"lsn_ord"             the record's ordinal among the records of its
//	                      transaction at lsn_proc (a multi-row insert, a
//	                      delete and its tombstone share an LSN)
//	"lsn_prev_commit"     commit LSN of the transaction before (source.sequence)
//	"txId", "ts_usec"     the transaction's id and commit time (µs)
//	"tx_complete"         true when every record of the transaction is emitted
//	                      up to and including this one
//	"snapshot"            true for snapshot records; "last_snapshot_record" on
//	                      the last one
//	"snapshot_completed"  false while the snapshot runs: a task restarting
//	                      then redoes the snapshot; true afterwards
//	"slot_created"        (snapshot records) the slot was created for this
//	                      snapshot and has never streamed: a restart may drop
//	                      and recreate it to export a fresh snapshot
//
// Restart: with tx_complete the task streams from lsn; without it, from
// lsn_commit, skipping the records of that transaction up to (lsn_proc,
// lsn_ord). Only the last record of a poll batch needs an offset (the
// worker stores the last one per batch, connect.SourceRecord), so records
// get one when they end a transaction or a batch. A task therefore re-emits
// at most the records after the last stored offset, and never skips one.
//
// A Debezium offset (no "tributary_offset") resumes from its "lsn", which
// the server treats as above: the transaction holding it is sent again
// whole (at-least-once); a Debezium snapshot that had not finished
// ("snapshot" true without "last_snapshot_record") is redone.

import (
	"encoding/json"
	"strconv"
)

// Offset keys.
const (
	partitionKey       = "server"
	offVersion         = "tributary_offset"
	offLSN             = "lsn"
	offCommit          = "lsn_commit"
	offProc            = "lsn_proc"
	offOrd             = "lsn_ord"
	offPrevCommit      = "lsn_prev_commit"
	offTxID            = "txId"
	offTsUsec          = "ts_usec"
	offComplete        = "tx_complete"
	offSnapshot        = "snapshot"
	offLastSnapshot    = "last_snapshot_record"
	offSnapshotDone    = "snapshot_completed"
	offSlotCreated     = "slot_created"
	offsetFormatV1     = int64(1)
	heartbeatPrefixMsg = "tributary_heartbeat"
)

// position is where a streamed record sits in the WAL, enough to build
// its offset lazily (only batch-ending records need one).
type position struct {
	lsn        uint64 // resume point (see the format above)
	proc       uint64
	ord        int64
	commit     uint64
	prevCommit uint64
	xid        uint32
	tsUsec     int64
	complete   bool
}

func (p *position) offset() map[string]any {
	return map[string]any{
		offVersion:      offsetFormatV1,
		offLSN:          int64(p.lsn),
		offCommit:       int64(p.commit),
		offProc:         int64(p.proc),
		offOrd:          p.ord,
		offPrevCommit:   int64(p.prevCommit),
		offTxID:         int64(p.xid),
		offTsUsec:       p.tsUsec,
		offComplete:     p.complete,
		offSnapshotDone: true,
	}
}

// snapshotOffset is the offset of snapshot records; last marks the final
// one, which completes the snapshot.
func snapshotOffset(lsn uint64, slotCreated, last bool) map[string]any {
	m := map[string]any{
		offVersion:      offsetFormatV1,
		offLSN:          int64(lsn),
		offSnapshot:     true,
		offSnapshotDone: last,
		offSlotCreated:  slotCreated,
	}
	if last {
		m[offLastSnapshot] = true
		m[offComplete] = true
	}
	return m
}

// storedOffset is a decoded stored offset.
type storedOffset struct {
	ours              bool
	lsn               uint64
	commit, proc      uint64
	ord               int64
	prevCommit        uint64
	complete          bool
	snapshotCompleted bool
	slotCreated       bool
}

// resumeLSN is where streaming restarts.
func (o *storedOffset) resumeLSN() uint64 {
	if o.ours && !o.complete && o.commit != 0 {
		return o.commit
	}
	return o.lsn
}

// decodeOffset reads a stored offset (nil: none).
func decodeOffset(m map[string]any) *storedOffset {
	if m == nil {
		return nil
	}
	o := &storedOffset{}
	v, ours := offInt(m, offVersion)
	o.ours = ours && v >= 1
	l, _ := offInt(m, offLSN)
	o.lsn = uint64(l)
	c, _ := offInt(m, offCommit)
	o.commit = uint64(c)
	p, _ := offInt(m, offProc)
	o.proc = uint64(p)
	o.ord, _ = offInt(m, offOrd)
	pc, _ := offInt(m, offPrevCommit)
	o.prevCommit = uint64(pc)
	o.slotCreated = offBool(m, offSlotCreated)
	if o.ours {
		o.complete = offBool(m, offComplete)
		o.snapshotCompleted = offBool(m, offSnapshotDone)
		return o
	}
	// Debezium's: a snapshot record other than the last means the
	// snapshot did not finish.
	o.complete = true
	o.snapshotCompleted = !offBool(m, offSnapshot) || offBool(m, offLastSnapshot) || offBool(m, offSnapshotDone)
	return o
}

// offInt reads an integer however the offset store decoded it.
func offInt(m map[string]any, k string) (int64, bool) {
	switch v := m[k].(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint64:
		return int64(v), true
	case float64:
		return int64(v), true
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			f, ferr := v.Float64()
			return int64(f), ferr == nil
		}
		return i, true
	case string:
		i, err := strconv.ParseInt(v, 10, 64)
		return i, err == nil
	}
	return 0, false
}

func offBool(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// flushLSN is the LSN a committed offset lets the slot confirm: none (0)
// while the snapshot runs.
func flushLSN(m map[string]any) uint64 {
	o := decodeOffset(m)
	if o == nil || !o.snapshotCompleted {
		return 0
	}
	return o.lsn
}
