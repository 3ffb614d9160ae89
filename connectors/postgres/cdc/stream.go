package cdc

// The replication stream: START_REPLICATION with pgoutput, decoding with
// pglogrepl, records batched to Poll, standby status updates reporting the
// LSN Commit allowed.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tributary-data/tributary/connect"
)

// maxBatchAge bounds how long a record waits in a partial batch while
// changes keep trickling in.
const maxBatchAge = 100 * time.Millisecond

type txState struct {
	xid      uint32
	commit   uint64
	tsUsec   int64
	tsMs     int64
	lastLSN  uint64
	ord      int64
	skip     bool
	skipProc uint64
	skipOrd  int64
	lastIdx  int // index in the batch of this transaction's last record; -1: none there
	records  int
}

// streamer is the replication stream's state, owned by the task's run
// goroutine.
type streamer struct {
	t     *SourceTask
	s     *settings
	meta  *pgx.Conn // catalog connection (RELATION messages); reopened when lost
	types *typeCatalog
	rels  map[uint32]*table

	proto    int
	messages bool

	start  uint64        // where the next START_REPLICATION begins
	resume *storedOffset // skip state of the first transaction, when resuming inside one

	received   uint64
	sentFlush  uint64
	lastStatus time.Time

	inTx       bool
	tx         txState
	prevCommit uint64
	nowMs      int64

	lastPos position // position of the last record batched (reconnect resume point)
	havePos bool
	safe    uint64 // a complete position learned between transactions (keepalive, message)
	lastHB  time.Time

	batch      []connect.SourceRecord
	pos        []position
	batchStart time.Time
	lastMsg    time.Time

	cells, oldCells []cell
	vals, oldVals   []any
	sendTimer       *time.Timer
	progressed      bool // the current session received data
}

func newStreamer(t *SourceTask, meta *pgx.Conn, info *serverInfo, start uint64, resume *storedOffset) *streamer {
	st := &streamer{t: t, s: t.s, meta: meta, types: newTypeCatalog(), rels: map[uint32]*table{},
		proto: 1, start: start, resume: resume, received: start, lastHB: time.Now()}
	if info.version >= 140000 {
		st.proto, st.messages = 2, true
	}
	if resume != nil {
		if resume.ours && !resume.complete {
			st.prevCommit = resume.prevCommit
		} else {
			st.prevCommit = resume.commit
			st.resume = nil
		}
	}
	st.sendTimer = time.NewTimer(time.Hour)
	st.sendTimer.Stop()
	st.tx.lastIdx = -1
	return st
}

// fatalError is an error reconnecting cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// retriable reports whether a lost stream should be reopened.
func retriable(err error) bool {
	var fe *fatalError
	var ce *convError
	if errors.As(err, &fe) || errors.As(err, &ce) {
		return false
	}
	if code := pgCode(err); code != "" {
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57") || strings.HasPrefix(code, "53") || code == "55006" || code == "40001"
	}
	return true // network errors, EOF
}

// run streams until ctx is cancelled, reconnecting after lost
// connections (errors.max.retries). conn is an open replication connection.
func (st *streamer) run(ctx context.Context, conn *pgconn.PgConn) error {
	defer func() {
		if st.meta != nil {
			st.meta.Close(context.Background())
		}
	}()
	attempt := 0
	for {
		var err error
		if conn == nil {
			conn, err = connectReplication(ctx, st.s)
		}
		if err == nil {
			st.progressed = false
			err = st.session(ctx, conn)
			conn.Close(context.Background())
			conn = nil
			if st.progressed {
				attempt = 0 // the stream worked for a while: start counting again
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("the server ended the replication stream")
		}
		if !retriable(err) {
			return err
		}
		attempt++
		if st.s.maxRetries >= 0 && attempt > st.s.maxRetries {
			return fmt.Errorf("replication stream lost %d times in a row (errors.max.retries=%d): %w", attempt, st.s.maxRetries, err)
		}
		delay := time.Second << min(attempt-1, 5)
		slog.Warn("postgres cdc: replication stream lost; reconnecting", "slot", st.s.slot, "attempt", attempt, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		st.rewind()
	}
}

// rewind sets where the next session starts: after the last record
// batched, so that nothing is emitted twice or skipped.
func (st *streamer) rewind() {
	st.inTx = false
	st.tx = txState{lastIdx: -1}
	if !st.havePos {
		return // nothing emitted yet: the original start and resume stand
	}
	p := st.lastPos
	if p.complete {
		st.start, st.resume = max(p.lsn, st.safe), nil
		st.prevCommit = p.commit
		return
	}
	st.start = p.commit
	st.resume = &storedOffset{ours: true, lsn: p.commit, commit: p.commit, proc: p.proc, ord: p.ord, prevCommit: p.prevCommit}
	st.prevCommit = p.prevCommit
}

func pluginArgs(proto int, messages bool, publication string) []string {
	ident := `"` + strings.ReplaceAll(publication, `"`, `""`) + `"`
	args := []string{fmt.Sprintf("proto_version '%d'", proto), "publication_names '" + strings.ReplaceAll(ident, `'`, `''`) + "'"}
	if messages {
		args = append(args, "messages 'true'")
	}
	return args
}

// session runs one START_REPLICATION on conn until ctx ends or the
// stream fails.
func (st *streamer) session(ctx context.Context, conn *pgconn.PgConn) error {
	err := pglogrepl.StartReplication(ctx, conn, st.s.slot, pglogrepl.LSN(st.start),
		pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: pluginArgs(st.proto, st.messages, st.s.publication)})
	if err != nil {
		if pgCode(err) == "42704" {
			return &fatalError{fmt.Errorf("starting replication from slot %q: %w (the slot or publication %q was dropped; see the connector docs to start over)", st.s.slot, err, st.s.publication)}
		}
		return fmt.Errorf("starting replication from slot %q at %s: %w", st.s.slot, pglogrepl.LSN(st.start), err)
	}
	slog.Info("postgres cdc: streaming", "slot", st.s.slot, "from", pglogrepl.LSN(st.start).String(), "proto_version", st.proto)
	st.received = max(st.received, st.start)
	st.lastStatus = time.Time{}
	nc := conn.Conn()
	// Cancelling ctx interrupts a blocked read (and this waits for that).
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		nc.SetReadDeadline(time.Now())
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	if err := st.status(time.Now(), true, conn); err != nil {
		return err
	}
	var deadline time.Time
	for {
		now := time.Now()
		// Moving the deadline costs a timer update: keep an earlier one
		// unless it is well off.
		if d := st.nextDeadline(now); d.Before(deadline) || d.Sub(deadline) > 50*time.Millisecond {
			deadline = d
			nc.SetReadDeadline(d)
		}
		if ctx.Err() != nil {
			st.status(now, true, conn)
			return nil
		}
		msg, err := conn.ReceiveMessage(context.Background())
		now = time.Now()
		if err != nil {
			if !pgconn.Timeout(err) {
				return err
			}
			if ctx.Err() != nil {
				st.status(now, true, conn)
				return nil
			}
			deadline = time.Time{}
			if err := st.idle(ctx, now, conn); err != nil {
				return err
			}
			continue
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return &fatalError{fmt.Errorf("decoding a keepalive: %w", err)}
				}
				st.received = max(st.received, uint64(pkm.ServerWALEnd))
				if !st.inTx {
					st.safe = max(st.safe, uint64(pkm.ServerWALEnd))
				}
				if pkm.ReplyRequested {
					if err := st.status(now, true, conn); err != nil {
						return err
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return &fatalError{fmt.Errorf("decoding XLogData: %w", err)}
				}
				st.received = max(st.received, uint64(xld.WALStart))
				st.lastMsg = now
				st.progressed = true
				st.nowMs = now.UnixMilli()
				if err := st.handle(ctx, xld, now, conn); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			err := pgconn.ErrorResponseToPgError(m)
			if pgCode(err) == "42704" {
				return &fatalError{fmt.Errorf("%w: a publication must exist from before the slot's position on; if publication %q was dropped or created after slot %q, drop the slot and the connector's offsets to start over with a snapshot", err, st.s.publication, st.s.slot)}
			}
			return err
		case *pgproto3.CopyDone:
			return errors.New("the server ended the replication stream (CopyDone)")
		}
		if err := st.after(ctx, now, conn); err != nil {
			return err
		}
	}
}

func (st *streamer) nextDeadline(now time.Time) time.Time {
	d := now.Add(500 * time.Millisecond)
	if len(st.batch) > 0 {
		d = minTime(d, st.lastMsg.Add(st.t.linger), st.batchStart.Add(maxBatchAge))
	}
	if st.heartbeatPossible() {
		d = minTime(d, st.lastHB.Add(st.s.heartbeat))
	}
	d = minTime(d, st.lastStatus.Add(st.s.statusInterval))
	if d.Before(now) {
		d = now
	}
	return d
}

func minTime(a time.Time, bs ...time.Time) time.Time {
	for _, b := range bs {
		if b.Before(a) {
			a = b
		}
	}
	return a
}

// idle runs when no message came before the deadline.
func (st *streamer) idle(ctx context.Context, now time.Time, conn *pgconn.PgConn) error {
	if len(st.batch) > 0 && (now.Sub(st.lastMsg) >= st.t.linger || now.Sub(st.batchStart) >= maxBatchAge) {
		if err := st.flush(ctx, conn); err != nil {
			return err
		}
	}
	if err := st.heartbeat(ctx, now, conn); err != nil {
		return err
	}
	return st.status(now, false, conn)
}

// after runs after each message.
func (st *streamer) after(ctx context.Context, now time.Time, conn *pgconn.PgConn) error {
	if len(st.batch) > 0 && now.Sub(st.batchStart) >= maxBatchAge {
		if err := st.flush(ctx, conn); err != nil {
			return err
		}
	}
	if err := st.heartbeat(ctx, now, conn); err != nil {
		return err
	}
	return st.status(now, false, conn)
}

// status sends a standby status update when Commit advanced the flush
// LSN, when one is due, or when forced: write is what was received, flush
// and apply what the worker stored.
func (st *streamer) status(now time.Time, force bool, conn *pgconn.PgConn) error {
	flush := st.t.flushLSN.Load()
	if !force && flush <= st.sentFlush && now.Sub(st.lastStatus) < st.s.statusInterval {
		return nil
	}
	if flush == 0 {
		flush = st.start
	}
	write := max(st.received, flush)
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(write), WALFlushPosition: pglogrepl.LSN(flush), WALApplyPosition: pglogrepl.LSN(flush), ClientTime: now})
	if err != nil {
		return fmt.Errorf("sending standby status: %w", err)
	}
	st.sentFlush, st.lastStatus = flush, now
	return nil
}

// heartbeat emits a heartbeat record carrying the latest complete
// position, between transactions, every heartbeat.interval.ms.
func (st *streamer) heartbeat(ctx context.Context, now time.Time, conn *pgconn.PgConn) error {
	if !st.heartbeatPossible() || now.Sub(st.lastHB) < st.s.heartbeat {
		return nil
	}
	st.lastHB = now
	lsn := max(st.safe, st.start)
	if st.havePos {
		lsn = max(lsn, st.lastPos.lsn)
	}
	p := position{lsn: lsn, proc: lsn, commit: st.prevCommit, prevCommit: st.prevCommit, complete: true}
	return st.add(ctx, st.t.hb.record(st.t.partition, p.offset(), now.UnixMilli()), p, conn)
}

// heartbeatPossible reports whether a heartbeat may be emitted now: between
// transactions, and not while resuming inside one that has not come back.
func (st *streamer) heartbeatPossible() bool {
	return st.s.heartbeat > 0 && !st.inTx && st.resume == nil && (!st.havePos || st.lastPos.complete)
}

// add appends a record to the batch, flushing a full batch.
func (st *streamer) add(ctx context.Context, rec connect.SourceRecord, p position, conn *pgconn.PgConn) error {
	if len(st.batch) == 0 {
		st.batchStart = time.Now()
		if st.batch == nil {
			st.batch = make([]connect.SourceRecord, 0, min(st.s.maxBatch, 256))
		}
	}
	st.batch = append(st.batch, rec)
	st.pos = append(st.pos, p)
	st.tx.lastIdx = len(st.batch) - 1
	st.lastPos, st.havePos = p, true
	if len(st.batch) >= st.s.maxBatch {
		return st.flush(ctx, conn)
	}
	return nil
}

// flush hands the batch to Poll (its last record carries an offset),
// keeping the server informed while Poll is slow to take it. On error the
// batch stays, to be handed over after a reconnection.
func (st *streamer) flush(ctx context.Context, conn *pgconn.PgConn) error {
	n := len(st.batch)
	if n == 0 {
		return nil
	}
	if last := &st.batch[n-1]; last.SourceOffset == nil {
		last.SourceOffset = st.pos[n-1].offset()
	}
	sent := func() {
		st.batch = make([]connect.SourceRecord, 0, min(st.s.maxBatch, max(n, 16)))
		st.pos = st.pos[:0]
		st.tx.lastIdx = -1
	}
	select {
	case st.t.out <- st.batch:
		sent()
		return nil
	default:
	}
	for {
		st.sendTimer.Reset(100 * time.Millisecond)
		select {
		case st.t.out <- st.batch:
			st.stopSendTimer()
			sent()
			return nil
		case <-ctx.Done():
			st.stopSendTimer()
			return ctx.Err()
		case <-st.sendTimer.C:
			if err := st.status(time.Now(), false, conn); err != nil {
				return err
			}
		}
	}
}

func (st *streamer) stopSendTimer() {
	if !st.sendTimer.Stop() {
		select {
		case <-st.sendTimer.C:
		default:
		}
	}
}

// handle decodes one pgoutput message.
func (st *streamer) handle(ctx context.Context, xld pglogrepl.XLogData, now time.Time, conn *pgconn.PgConn) error {
	if len(xld.WALData) == 0 {
		return nil
	}
	lsn := uint64(xld.WALStart)
	if xld.WALData[0] == 'I' {
		// Inserts, the bulk of most streams, are decoded here without a
		// message and a copy of every column (pglogrepl's); anything
		// unexpected goes through pglogrepl, which reports it.
		if rel, cells, ok := decodeInsert(xld.WALData, st.cells); ok {
			st.cells = cells
			return st.insertCells(ctx, rel, lsn, conn)
		}
	}
	msg, err := pglogrepl.ParseV2(xld.WALData, false)
	if err != nil {
		return &fatalError{fmt.Errorf("decoding pgoutput message %q at %s: %w", xld.WALData[0], xld.WALStart, err)}
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		st.inTx = true
		st.tx = txState{xid: m.Xid, commit: uint64(m.FinalLSN), tsUsec: m.CommitTime.UnixMicro(), tsMs: m.CommitTime.UnixMilli(), ord: -1, lastIdx: -1}
		if r := st.resume; r != nil {
			switch {
			case st.tx.commit == r.commit:
				st.tx.skip, st.tx.skipProc, st.tx.skipOrd = true, r.proc, r.ord
				st.resume = nil
			case st.tx.commit > r.commit:
				slog.Warn("postgres cdc: the transaction to resume in did not come back; resuming after it", "commit_lsn", pglogrepl.LSN(r.commit))
				st.resume = nil
			}
		}
	case *pglogrepl.CommitMessage:
		st.commit(m, now)
	case *pglogrepl.RelationMessageV2:
		return st.relation(ctx, &m.RelationMessage)
	case *pglogrepl.TypeMessageV2:
		st.types.invalidate(m.DataType)
	case *pglogrepl.InsertMessageV2:
		return st.insert(ctx, m, lsn, conn)
	case *pglogrepl.UpdateMessageV2:
		return st.update(ctx, m, lsn, conn)
	case *pglogrepl.DeleteMessageV2:
		return st.delete(ctx, m, lsn, conn)
	case *pglogrepl.TruncateMessageV2:
		return st.truncate(ctx, m, lsn, conn)
	case *pglogrepl.LogicalDecodingMessageV2:
		if !m.Transactional && !st.inTx {
			st.safe = max(st.safe, uint64(m.LSN))
		}
	}
	return nil
}

// commit ends a transaction: its last batched record gets the offset
// that says so.
func (st *streamer) commit(m *pglogrepl.CommitMessage, now time.Time) {
	end := uint64(m.TransactionEndLSN)
	p := position{lsn: end, proc: st.tx.lastLSN, ord: st.tx.ord, commit: st.tx.commit, prevCommit: st.prevCommit,
		xid: st.tx.xid, tsUsec: st.tx.tsUsec, complete: true}
	if i := st.tx.lastIdx; i >= 0 && i < len(st.batch) {
		p.proc, p.ord = st.pos[i].proc, st.pos[i].ord
		st.pos[i] = p
		st.batch[i].SourceOffset = p.offset()
	}
	if st.tx.records > 0 {
		st.t.eventLagMs.Store(max(now.UnixMilli()-st.tx.tsMs, 0))
	}
	st.lastPos, st.havePos = p, true
	st.prevCommit = st.tx.commit
	st.safe = max(st.safe, end)
	st.inTx = false
	st.tx.lastIdx = -1
}

// relation records a table's shape (and schema changes).
func (st *streamer) relation(ctx context.Context, rm *pglogrepl.RelationMessage) error {
	if !st.s.filter.table(rm.Namespace, rm.RelationName) {
		st.rels[rm.RelationID] = &table{oid: rm.RelationID, schema: rm.Namespace, name: rm.RelationName, excluded: true}
		return nil
	}
	meta, err := st.catalog(ctx)
	if err != nil {
		return err
	}
	oids := make([]uint32, len(rm.Columns))
	for i, c := range rm.Columns {
		oids[i] = c.DataType
	}
	if err := st.types.load(ctx, meta, oids); err != nil {
		st.dropCatalog()
		return err
	}
	rmeta, err := readRelationMeta(ctx, meta, rm.RelationID)
	if err != nil {
		st.dropCatalog()
		return err
	}
	defs := make([]columnDef, len(rm.Columns))
	useFlags := rm.ReplicaIdentity == 'd' || rm.ReplicaIdentity == 'i'
	for i, c := range rm.Columns {
		key := containsString(rmeta.pk, c.Name)
		if useFlags {
			key = c.Flags&1 != 0
		}
		defs[i] = columnDef{name: c.Name, oid: c.DataType, typmod: c.TypeModifier, notNull: rmeta.notNull[c.Name] || key, key: key}
	}
	st.rels[rm.RelationID] = newTable(st.s.prefix, st.t.src.schema, rm.RelationID, rm.Namespace, rm.RelationName, rm.ReplicaIdentity, defs, st.types, st.s.filter)
	return nil
}

// catalog returns the catalog connection, reopening it when lost.
func (st *streamer) catalog(ctx context.Context) (*pgx.Conn, error) {
	if st.meta != nil && !st.meta.IsClosed() {
		return st.meta, nil
	}
	st.dropCatalog()
	c, err := connectSQL(ctx, st.s)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s to read the catalog: %w", st.s.where(), err)
	}
	st.meta = c
	return c, nil
}

func (st *streamer) dropCatalog() {
	if st.meta != nil {
		st.meta.Close(context.Background())
		st.meta = nil
	}
}

func (st *streamer) lookup(id uint32) (*table, error) {
	tb := st.rels[id]
	if tb == nil {
		return nil, &fatalError{fmt.Errorf("pgoutput sent a change of relation %d before its RELATION message", id)}
	}
	return tb, nil
}

// decodeInsert decodes a pgoutput Insert message outside a streamed
// transaction ('I', relation id:u32, 'N', then the tuple: column
// count:u16 and per column a kind byte, 'n' null, 'u' unchanged TOAST,
// or 't'/'b' with length:i32 and the value; big-endian) into the relation
// id and the tuple's cells, appended to dst[:0] and aliasing data. ok is
// false when data is not exactly such a message with at least one column.
func decodeInsert(data []byte, dst []cell) (rel uint32, cells []cell, ok bool) {
	if len(data) < 8 || data[0] != 'I' || data[5] != 'N' {
		return 0, dst, false
	}
	rel = binary.BigEndian.Uint32(data[1:5])
	n := int(binary.BigEndian.Uint16(data[6:8]))
	if n == 0 {
		return 0, dst, false // pglogrepl refuses it: so it stays
	}
	cells, b := dst[:0], data[8:]
	for range n {
		if len(b) < 1 {
			return 0, dst, false
		}
		c := cell{kind: b[0]}
		b = b[1:]
		switch c.kind {
		case 'n', 'u':
		case 't', 'b':
			if len(b) < 4 {
				return 0, dst, false
			}
			l := binary.BigEndian.Uint32(b)
			if l > uint32(len(b)-4) {
				return 0, dst, false
			}
			c.data, b = b[4:4+l:4+l], b[4+l:]
		default:
			return 0, dst, false
		}
		cells = append(cells, c)
	}
	if len(b) != 0 {
		return 0, dst, false
	}
	return rel, cells, true
}

func fillCells(dst []cell, td *pglogrepl.TupleData) []cell {
	dst = dst[:0]
	if td == nil {
		return dst
	}
	for _, c := range td.Columns {
		dst = append(dst, cell{kind: c.DataType, data: c.Data})
	}
	return dst
}

func growAny(s []any, n int) []any {
	if cap(s) < n {
		return make([]any, n)
	}
	return s[:n]
}

// nextPos returns the position of the next record of the transaction at
// lsn, and whether it was emitted before the restart (to skip).
func (st *streamer) nextPos(lsn uint64) (position, bool) {
	if lsn == st.tx.lastLSN && st.tx.ord >= 0 {
		st.tx.ord++
	} else {
		st.tx.lastLSN, st.tx.ord = lsn, 0
	}
	p := position{lsn: st.tx.commit, proc: lsn, ord: st.tx.ord, commit: st.tx.commit, prevCommit: st.prevCommit,
		xid: st.tx.xid, tsUsec: st.tx.tsUsec}
	skip := st.tx.skip && (lsn < st.tx.skipProc || (lsn == st.tx.skipProc && st.tx.ord <= st.tx.skipOrd))
	return p, skip
}

// emit builds and batches one change record.
func (st *streamer) emit(ctx context.Context, tb *table, op string, before, after, key *connect.Struct, lsn uint64, headers []connect.Header, conn *pgconn.PgConn) error {
	p, skip := st.nextPos(lsn)
	if skip {
		return nil
	}
	src := st.t.src.build(tb, "false", st.tx.tsMs, int64(st.tx.xid), lsn, sequence(st.prevCommit, lsn))
	rec := connect.SourceRecord{
		Record:          connect.Record{Topic: tb.topic, ValueSchema: tb.envSchema, Value: tb.envelope(op, before, after, src, st.nowMs), Headers: headers},
		SourcePartition: st.t.partition,
	}
	if op != "t" && key != nil {
		rec.KeySchema, rec.Key = tb.keySchema, key
	}
	st.tx.records++
	st.t.streamed.Add(1)
	return st.add(ctx, rec, p, conn)
}

// tombstone batches a delete's tombstone.
func (st *streamer) tombstone(ctx context.Context, tb *table, key *connect.Struct, lsn uint64, conn *pgconn.PgConn) error {
	p, skip := st.nextPos(lsn)
	if skip {
		return nil
	}
	rec := connect.SourceRecord{
		Record:          connect.Record{Topic: tb.topic, KeySchema: tb.keySchema, Key: key},
		SourcePartition: st.t.partition,
	}
	return st.add(ctx, rec, p, conn)
}

func (st *streamer) insert(ctx context.Context, m *pglogrepl.InsertMessageV2, lsn uint64, conn *pgconn.PgConn) error {
	st.cells = fillCells(st.cells, m.Tuple)
	return st.insertCells(ctx, m.RelationID, lsn, conn)
}

// insertCells emits the insert of st.cells into relation rel. The cells
// may alias the message's bytes: they are converted (copied) before
// anything can receive the next message.
func (st *streamer) insertCells(ctx context.Context, rel uint32, lsn uint64, conn *pgconn.PgConn) error {
	tb, err := st.lookup(rel)
	if err != nil || tb.excluded || st.s.skip['c'] {
		return err
	}
	st.vals = growAny(st.vals, len(tb.cols))
	if err := tb.values(st.cells, nil, st.vals, st.s.placeholder, false); err != nil {
		return err
	}
	after, err := tb.valueStruct(st.vals)
	if err != nil {
		return err
	}
	key, err := tb.keyStruct(st.vals)
	if err != nil {
		return err
	}
	return st.emit(ctx, tb, "c", nil, after, key, lsn, nil, conn)
}

func (st *streamer) update(ctx context.Context, m *pglogrepl.UpdateMessageV2, lsn uint64, conn *pgconn.PgConn) error {
	tb, err := st.lookup(m.RelationID)
	if err != nil || tb.excluded || st.s.skip['u'] {
		return err
	}
	st.cells = fillCells(st.cells, m.NewTuple)
	var old []cell
	if m.OldTuple != nil {
		st.oldCells = fillCells(st.oldCells, m.OldTuple)
		old = st.oldCells
	}
	st.vals = growAny(st.vals, len(tb.cols))
	var toastFrom []cell
	if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
		toastFrom = old
	}
	if err := tb.values(st.cells, toastFrom, st.vals, st.s.placeholder, false); err != nil {
		return err
	}
	after, err := tb.valueStruct(st.vals)
	if err != nil {
		return err
	}
	key, err := tb.keyStruct(st.vals)
	if err != nil {
		return err
	}
	var before, oldKey *connect.Struct
	if old != nil {
		st.oldVals = growAny(st.oldVals, len(tb.cols))
		if err := tb.values(old, nil, st.oldVals, st.s.placeholder, m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey); err != nil {
			return err
		}
		if before, err = tb.valueStruct(st.oldVals); err != nil {
			return err
		}
		if tb.keySchema != nil && !tb.sameKey(old, st.cells) {
			if oldKey, err = tb.keyStruct(st.oldVals); err != nil {
				return err
			}
		}
	}
	if oldKey == nil {
		return st.emit(ctx, tb, "u", before, after, key, lsn, nil, conn)
	}
	// The key changed: a delete of the old key, its tombstone, and a
	// create of the new key, as Debezium emits it.
	if err := st.emit(ctx, tb, "d", before, nil, oldKey, lsn, []connect.Header{{Key: headerNewKey, Schema: tb.keySchema, Value: key}}, conn); err != nil {
		return err
	}
	if st.s.tombstones {
		if err := st.tombstone(ctx, tb, oldKey, lsn, conn); err != nil {
			return err
		}
	}
	return st.emit(ctx, tb, "c", nil, after, key, lsn, []connect.Header{{Key: headerOldKey, Schema: tb.keySchema, Value: oldKey}}, conn)
}

func (st *streamer) delete(ctx context.Context, m *pglogrepl.DeleteMessageV2, lsn uint64, conn *pgconn.PgConn) error {
	tb, err := st.lookup(m.RelationID)
	if err != nil || tb.excluded || st.s.skip['d'] {
		return err
	}
	st.oldCells = fillCells(st.oldCells, m.OldTuple)
	st.oldVals = growAny(st.oldVals, len(tb.cols))
	if err := tb.values(st.oldCells, nil, st.oldVals, st.s.placeholder, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey); err != nil {
		return err
	}
	before, err := tb.valueStruct(st.oldVals)
	if err != nil {
		return err
	}
	key, err := tb.keyStruct(st.oldVals)
	if err != nil {
		return err
	}
	if err := st.emit(ctx, tb, "d", before, nil, key, lsn, nil, conn); err != nil {
		return err
	}
	if st.s.tombstones && key != nil {
		return st.tombstone(ctx, tb, key, lsn, conn)
	}
	return nil
}

func (st *streamer) truncate(ctx context.Context, m *pglogrepl.TruncateMessageV2, lsn uint64, conn *pgconn.PgConn) error {
	if st.s.skip['t'] {
		return nil
	}
	for _, id := range m.RelationIDs {
		tb, err := st.lookup(id)
		if err != nil {
			return err
		}
		if tb.excluded {
			continue
		}
		if err := st.emit(ctx, tb, "t", nil, nil, nil, lsn, nil, conn); err != nil {
			return err
		}
	}
	return nil
}
