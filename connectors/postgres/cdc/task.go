package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-data/tributary/connect"
)

// SourceTask streams one database's changes. Its goroutines:
//
//   - run (owned by the task, started by Start): plans the start (slot,
//     snapshot), runs the snapshot (with its reader goroutines, which it
//     waits for) and then the replication stream. It alone uses the
//     replication connection and its catalog connection. It hands record
//     batches to Poll through out (bounded: max.queue.size records).
//   - monitor (owned by the task): refreshes the slot lag gauge and writes
//     heartbeats, on a connection of its own.
//
// Commit publishes the committed LSN through flushLSN (atomic); run reports
// it to the server. Stop cancels both goroutines and waits for them.
type SourceTask struct {
	s         *settings
	partition map[string]any
	src       *sourceInfo
	hb        *heartbeat

	out  chan []connect.SourceRecord
	done chan struct{} // closed when run returns; runErr is set before
	// runErr is run's result (read after done is closed).
	runErr error

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once

	flushLSN atomic.Uint64 // the LSN Commit allows the slot to confirm
	slotUsed atomic.Bool   // a slot exists (not initial_only)

	pending []connect.SourceRecord // a batch Poll could not merge yet
	timer   *time.Timer

	// Gauges, written by run and monitor, read by Metrics.
	slotLag      atomic.Int64 // bytes; -1 unknown
	eventLagMs   atomic.Int64
	snapshotRows atomic.Int64
	streamed     atomic.Int64

	// Tunables tests shorten.
	lagInterval time.Duration
	linger      time.Duration
}

// Start parses the config, reads the stored offset and starts the task's
// goroutines. Slow work (slot creation, which waits for running
// transactions, and the snapshot) happens in the background: Poll reports
// its errors.
func (t *SourceTask) Start(ctx context.Context, tc connect.SourceTaskContext, config map[string]string) error {
	s, errs := parseSettings(config)
	if len(errs) > 0 {
		return fmt.Errorf("postgres cdc config: %s", formatErrors(errs))
	}
	t.s = s
	t.partition = map[string]any{partitionKey: s.prefix}
	t.src = &sourceInfo{schema: sourceSchema(), version: version, prefix: s.prefix, db: s.dbname}
	t.hb = newHeartbeat(s.heartbeatPrefix, s.prefix)
	if t.lagInterval == 0 {
		t.lagInterval = 5 * time.Second
	}
	if t.linger == 0 {
		t.linger = 10 * time.Millisecond
	}
	t.slotLag.Store(-1)
	var stored *storedOffset
	if tc != nil {
		offs, err := tc.Offsets(ctx, []map[string]any{{partitionKey: s.prefix}})
		if err != nil {
			return fmt.Errorf("reading stored offsets: %w", err)
		}
		for _, po := range offs {
			if p, _ := po.Partition[partitionKey].(string); p == s.prefix && po.Offset != nil {
				stored = decodeOffset(po.Offset)
			}
		}
	}
	batches := s.maxQueue / s.maxBatch
	if batches < 2 {
		batches = 2
	}
	t.out = make(chan []connect.SourceRecord, batches)
	t.done = make(chan struct{})
	t.timer = time.NewTimer(time.Hour)
	t.timer.Stop()
	runCtx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		defer close(t.done)
		err := t.run(runCtx, stored)
		if runCtx.Err() != nil {
			err = nil // stopping
		}
		if err != nil {
			slog.Error("postgres cdc task failed", "connector", s.prefix, "err", err)
		}
		t.runErr = err
	}()
	go func() {
		defer t.wg.Done()
		t.monitor(runCtx)
	}()
	return nil
}

func formatErrors(errs map[string][]string) string {
	var parts []string
	for k, v := range errs {
		for _, m := range v {
			if k == "" {
				parts = append(parts, m)
			} else {
				parts = append(parts, k+": "+m)
			}
		}
	}
	return strings.Join(parts, "; ")
}

// Poll returns the next batch of records (up to max.batch.size), waiting
// up to poll.interval.ms when there are none. After the background work
// failed, it returns the records produced before the failure and then the
// error.
func (t *SourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	var batch []connect.SourceRecord
	if t.pending != nil {
		batch, t.pending = t.pending, nil
	} else {
		select {
		case batch = <-t.out:
		default:
			t.timer.Reset(t.s.pollInterval)
			select {
			case batch = <-t.out:
			case <-t.done:
				select {
				case batch = <-t.out:
				default:
					t.stopTimer()
					return nil, t.runErr
				}
			case <-ctx.Done():
				t.stopTimer()
				return nil, ctx.Err()
			case <-t.timer.C:
				return nil, nil
			}
			t.stopTimer()
		}
	}
	for len(batch) < t.s.maxBatch {
		select {
		case more := <-t.out:
			if len(batch)+len(more) > t.s.maxBatch {
				t.pending = more
				return batch, nil
			}
			batch = append(batch, more...)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

func (t *SourceTask) stopTimer() {
	if !t.timer.Stop() {
		select {
		case <-t.timer.C:
		default:
		}
	}
}

// Commit records the LSN the worker stored: the slot's confirmed flush
// LSN advances to it with the next status update (at once, when the
// stream is idle). It never moves backwards.
func (t *SourceTask) Commit(_ context.Context, committed []connect.PartitionOffset) error {
	for _, po := range committed {
		if p, _ := po.Partition[partitionKey].(string); p != t.s.prefix {
			continue
		}
		l := flushLSN(po.Offset)
		for {
			cur := t.flushLSN.Load()
			if l <= cur || t.flushLSN.CompareAndSwap(cur, l) {
				break
			}
		}
	}
	return nil
}

// Stop cancels the goroutines and waits for them; with slot.drop.on.stop
// it then drops the slot. It is idempotent.
func (t *SourceTask) Stop(ctx context.Context) error {
	var err error
	t.stopOnce.Do(func() {
		if t.cancel == nil {
			return
		}
		t.cancel()
		t.wg.Wait()
		if t.s.dropSlotOnStop && t.slotUsed.Load() {
			err = t.dropSlot(ctx)
		}
	})
	return err
}

func (t *SourceTask) dropSlot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := connectSQL(ctx, t.s)
	if err != nil {
		return fmt.Errorf("dropping slot %q: %w", t.s.slot, err)
	}
	defer c.Close(context.Background())
	// The walsender may take a moment to release the slot.
	for {
		_, err = c.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, t.s.slot)
		if err == nil || pgCode(err) != "55006" || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("dropping slot %q: %w", t.s.slot, err)
	}
	return nil
}

// Metrics returns the task's gauges (cached; safe from any goroutine).
func (t *SourceTask) Metrics() []connect.Metric {
	out := []connect.Metric{
		{Name: "postgres_last_event_lag_ms", Help: "Milliseconds between the commit of the last streamed transaction and when the task read it.", Value: float64(t.eventLagMs.Load())},
		{Name: "postgres_snapshot_rows", Help: "Rows read by the snapshot.", Value: float64(t.snapshotRows.Load())},
		{Name: "postgres_streamed_records", Help: "Change records read from the replication stream.", Value: float64(t.streamed.Load())},
	}
	if lag := t.slotLag.Load(); lag >= 0 {
		out = append(out, connect.Metric{Name: "postgres_slot_lag_bytes", Help: "WAL bytes between the server's current LSN and the slot's confirmed flush LSN (what the worker has not stored yet, plus what the server still retains for the slot).", Value: float64(lag)})
	}
	return out
}

// monitor refreshes the slot lag and writes heartbeats.
func (t *SourceTask) monitor(ctx context.Context) {
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	nextLag := time.Now()
	nextHB := time.Now().Add(t.s.heartbeat)
	messages := true
	warned := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := nextLag
		if t.s.heartbeat > 0 && nextHB.Before(next) {
			next = nextHB
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if c == nil || c.IsClosed() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var err error
			c, err = connectSQL(cctx, t.s)
			cancel()
			if err != nil {
				c = nil
				if ctx.Err() == nil {
					slog.Debug("postgres cdc monitor: cannot connect", "err", err)
				}
				nextLag = time.Now().Add(t.lagInterval)
				nextHB = time.Now().Add(t.s.heartbeat)
				continue
			}
		}
		now := time.Now()
		if !now.Before(nextLag) {
			nextLag = now.Add(t.lagInterval)
			if t.slotUsed.Load() {
				var lag *int64
				qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.QueryRow(qctx, `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1`, t.s.slot).Scan(&lag)
				cancel()
				switch {
				case err == nil && lag != nil:
					t.slotLag.Store(max(*lag, 0))
				case err != nil && !errors.Is(err, pgx.ErrNoRows) && ctx.Err() == nil:
					slog.Debug("postgres cdc monitor: slot lag", "err", err)
				}
			}
		}
		if t.s.heartbeat > 0 && !now.Before(nextHB) {
			nextHB = now.Add(t.s.heartbeat)
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if t.s.heartbeatQuery != "" {
				if _, err := c.Exec(qctx, t.s.heartbeatQuery); err != nil && ctx.Err() == nil {
					slog.Warn("postgres cdc: heartbeat.action.query failed", "err", err)
				}
			}
			if messages {
				_, err := c.Exec(qctx, `SELECT pg_logical_emit_message(false, '`+heartbeatPrefixMsg+`', '')`)
				switch {
				case err == nil:
				case pgCode(err) == "42501" || pgCode(err) == "42883":
					messages = false
					slog.Warn("postgres cdc: cannot write heartbeat messages (pg_logical_emit_message); heartbeats rely on server keepalives and heartbeat.action.query", "err", err)
				case ctx.Err() == nil && !warned:
					warned = true
					slog.Warn("postgres cdc: heartbeat message failed", "err", err)
				}
			}
			cancel()
		}
	}
}

// errSlotInUse marks a slot another connection holds.
var errSlotInUse = errors.New("replication slot in use")

// run plans the start, snapshots if needed, and streams.
func (t *SourceTask) run(ctx context.Context, stored *storedOffset) error {
	s := t.s
	meta, err := connectSQL(ctx, s)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", s.where(), err)
	}
	defer func() {
		if meta != nil {
			meta.Close(context.Background())
		}
	}()
	info, err := readServerInfo(ctx, meta)
	if err != nil {
		return err
	}
	if info.walLevel != "logical" {
		return errors.New(walLevelError(s.where(), info.walLevel))
	}
	if !info.replication {
		return errors.New(replicationError(info.user))
	}
	if err := ensurePublication(ctx, meta, s); err != nil {
		return err
	}
	rels, err := publishedTables(ctx, meta, s.publication, s.filter, info.version)
	if err != nil {
		return err
	}
	warnTables(s, rels)

	needSnapshot := s.snapshotMode != snapNever && (stored == nil || !stored.snapshotCompleted)
	if needSnapshot && s.snapshotDelay > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.snapshotDelay):
		}
	}
	if s.snapshotMode == snapInitialOnly {
		if !needSnapshot {
			slog.Info("postgres cdc: snapshot.mode=initial_only and the snapshot is complete: nothing to do", "connector", s.prefix)
			<-ctx.Done()
			return nil
		}
		if err := t.snapshotWithoutSlot(ctx, info, rels, 0, false); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}

	t.slotUsed.Store(true)
	slot, err := t.waitSlotFree(ctx, meta)
	if err != nil {
		return err
	}
	if slot != nil {
		if msg := slotMismatch(s, slot); msg != "" {
			return errors.New(msg)
		}
	}
	var repl *pgconn.PgConn
	defer func() {
		if repl != nil {
			repl.Close(context.Background())
		}
	}()
	openRepl := func() error {
		var err error
		repl, err = connectReplication(ctx, s)
		if err != nil {
			return fmt.Errorf("opening a replication connection to %s: %w", s.where(), err)
		}
		return nil
	}
	var start uint64
	resume := stored
	switch {
	case needSnapshot:
		if slot != nil && stored != nil && stored.ours && stored.slotCreated && slot.confirmedFlush == stored.lsn {
			// Our slot, created for a snapshot that did not finish, never
			// streamed: recreate it to export a fresh consistent snapshot.
			slog.Info("postgres cdc: the snapshot did not finish; recreating the slot and starting it again", "slot", s.slot)
			if _, err := meta.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, s.slot); err != nil {
				return fmt.Errorf("dropping slot %q to redo the snapshot: %w", s.slot, err)
			}
			slot = nil
		}
		if slot == nil {
			if err := openRepl(); err != nil {
				return err
			}
			lsn, snapName, err := createSlot(ctx, repl, s.slot, true)
			if err != nil {
				return err
			}
			t.flushLSN.Store(0)
			if err := t.snapshot(ctx, snapName, info, rels, lsn, true); err != nil {
				return err
			}
			start = lsn
		} else {
			// The slot exists but no finished snapshot is recorded: read a
			// fresh snapshot and stream from the slot's position, which is
			// older. Changes in between may appear twice (never missing).
			slog.Warn("postgres cdc: the slot exists but no completed snapshot is stored; snapshotting and streaming from the slot's position (events between the two may be emitted twice)", "slot", s.slot)
			if err := t.snapshotWithoutSlot(ctx, info, rels, slot.confirmedFlush, false); err != nil {
				return err
			}
			start = slot.confirmedFlush
		}
		resume = nil
	case slot == nil:
		if stored != nil && !s.dropSlotOnStop {
			return fmt.Errorf("replication slot %q does not exist, but offsets show the connector streamed from it (up to LSN %s): the changes since then are lost for it. To start over with a new snapshot, delete the connector's offsets (or use a new topic.prefix); to accept the gap, create the slot (SELECT pg_create_logical_replication_slot('%s', 'pgoutput'))",
				s.slot, pglogrepl.LSN(stored.lsn), s.slot)
		}
		if err := openRepl(); err != nil {
			return err
		}
		lsn, _, err := createSlot(ctx, repl, s.slot, false)
		if err != nil {
			return err
		}
		if stored != nil {
			slog.Warn("postgres cdc: the slot was dropped (slot.drop.on.stop); recreated it: changes made while it was missing are not captured", "slot", s.slot)
		}
		start, resume = lsn, nil
	default:
		if stored != nil {
			start = stored.resumeLSN()
		} else {
			start = slot.confirmedFlush
		}
		if slot.confirmedFlush > start {
			start = slot.confirmedFlush
		}
	}
	if t.flushLSN.Load() == 0 {
		if slot != nil {
			t.flushLSN.Store(slot.confirmedFlush)
		} else {
			t.flushLSN.Store(start)
		}
	}
	if repl == nil {
		if err := openRepl(); err != nil {
			return err
		}
	}
	if s.streamDelay > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.streamDelay):
		}
	}
	st := newStreamer(t, meta, info, start, resume)
	meta = nil // the streamer owns it now (and closes it)
	c := repl
	repl = nil
	return st.run(ctx, c)
}

// waitSlotFree returns the slot (nil: none), waiting up to
// slot.max.retries times slot.retry.delay.ms while another connection
// holds it.
func (t *SourceTask) waitSlotFree(ctx context.Context, meta *pgx.Conn) (*slotInfo, error) {
	for attempt := 0; ; attempt++ {
		slot, err := readSlot(ctx, meta, t.s.slot)
		if err != nil || slot == nil || !slot.active {
			return slot, err
		}
		if attempt >= t.s.slotMaxRetries {
			return nil, fmt.Errorf("%w: %s", errSlotInUse, slotInUseError(t.s.slot, slot.activePID))
		}
		slog.Info("postgres cdc: slot in use; waiting", "slot", t.s.slot, "pid", slot.activePID, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(t.s.slotRetryDelay):
		}
	}
}

// warnTables logs the captured tables whose changes arrive incomplete.
func warnTables(s *settings, rels []relInfo) {
	var toast, noIdent []string
	for _, r := range rels {
		hasKey := false
		hasToast := false
		for _, c := range r.cols {
			hasKey = hasKey || c.key
			hasToast = hasToast || c.toast
		}
		if r.replIdent != 'f' && hasToast {
			toast = append(toast, r.schema+"."+r.name)
		}
		if r.replIdent == 'n' || (r.replIdent == 'd' && !hasKey) {
			noIdent = append(noIdent, r.schema+"."+r.name)
		}
	}
	if len(toast) > 0 {
		slog.Warn("postgres cdc: tables without REPLICA IDENTITY FULL have TOASTable columns: an UPDATE that leaves a large value unchanged does not carry it, and the event holds unavailable.value.placeholder instead; set REPLICA IDENTITY FULL to get the values",
			"tables", strings.Join(toast, ","), "placeholder", s.placeholder)
	}
	if len(noIdent) > 0 {
		slog.Warn("postgres cdc: tables without a primary key or replica identity: PostgreSQL rejects their UPDATEs and DELETEs while they are published; add a primary key or set REPLICA IDENTITY FULL",
			"tables", strings.Join(noIdent, ","))
	}
}
