package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connectors/postgres/jdbcconf"
)

// Task writes the records of its partitions to PostgreSQL over one
// connection (staging tables are per session). Put and Flush are never
// called concurrently; Stop may be, and closes the connection after the
// running Put returned (its context is cancelled first).
type Task struct {
	mu sync.Mutex
	w  *writer
	tc connect.SinkTaskContext // for errant records (connect.ErrantRecordReporter)
	// tolerant is errors.tolerance=all: only then may a failed batch be
	// written in parts (without it, nothing of a failed batch is written).
	tolerant bool
	stopped  bool
}

// writer holds the connection and what is known of the tables over it.
// Everything but the shapes is forgotten when a write fails.
type writer struct {
	s    *settings
	conn *pgx.Conn
	tx   pgx.Tx

	topics    map[string]tableID
	metas     map[tableID]*tableMeta
	plans     map[planKey]*plan
	shapes    map[shapeKey]*shape
	interned  map[*connect.Schema]*connect.Schema
	canon     []*connect.Schema
	events    connect.ChangeEvents // recognizes CDC envelopes
	stageCols int                  // value columns the staging table has (0: unknown)
	seg       int                  // the last segment number used in this transaction
	staged    int                  // rows in the staging table in this transaction

	// Per batch, reused.
	segs    []*segment
	cur     map[tableID]*segment
	arena   []byte
	copyBuf []byte
	keyBuf  []byte
	spans   []span
}

func (t *Task) Start(_ context.Context, tc connect.SinkTaskContext, config map[string]string) error {
	t.tc = tc
	t.tolerant = strings.TrimSpace(config["errors.tolerance"]) == "all"
	s, errs := parse(config)
	if len(errs) > 0 {
		return fmt.Errorf("postgres sink config: %v", errs)
	}
	t.w = &writer{s: s, topics: map[string]tableID{}, cur: map[tableID]*segment{}}
	t.w.resetShapes()
	t.w.forget()
	return nil
}

func (t *Task) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (t *Task) Close(context.Context, []connect.TopicPartition) error { return nil }

// Put writes the records in one transaction and commits it, retrying
// transient failures (see the package doc). When a record's values cannot
// be written (a conversion error, or a data or constraint error of the
// database) and the runtime takes errant records (connect.ErrantRecordReporter,
// errors.tolerance=all), the batch is bisected into smaller transactions,
// written in order, until each failing record is alone; those are reported
// (to the dead letter queue) and the rest is written. Without tolerance the
// first such error fails the Put, and nothing of the batch is written.
func (t *Task) Put(ctx context.Context, recs []connect.SinkRecord) error {
	if len(recs) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return errors.New("postgres sink: Put after Stop")
	}
	err := t.write(ctx, recs)
	rep, ok := t.tc.(connect.ErrantRecordReporter)
	if err == nil || !ok || !t.tolerant || !isolatable(err) {
		return err
	}
	return t.isolate(ctx, recs, rep, err)
}

// isolate writes recs, which failed with err as one transaction, in two
// halves, recursively, reporting the records that fail alone.
func (t *Task) isolate(ctx context.Context, recs []connect.SinkRecord, rep connect.ErrantRecordReporter, err error) error {
	if len(recs) == 1 {
		return rep.Report(&recs[0], err)
	}
	mid := len(recs) / 2
	for _, half := range [][]connect.SinkRecord{recs[:mid], recs[mid:]} {
		err := t.write(ctx, half)
		if err != nil && isolatable(err) {
			err = t.isolate(ctx, half, rep, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write writes recs in one transaction, retrying transient failures.
func (t *Task) write(ctx context.Context, recs []connect.SinkRecord) error {
	w := t.w
	for attempt := 0; ; attempt++ {
		err := w.write(ctx, recs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		what := describeBatch(recs)
		if attempt == 0 && stale(err) {
			continue // the table changed under the cached definition: once more, re-reading it
		}
		if !transient(err) {
			return fmt.Errorf("postgres sink: writing %s failed: %w", what, err)
		}
		if attempt >= w.s.maxRetries {
			return fmt.Errorf("postgres sink: writing %s failed %d times (max.retries=%d), giving up: %w", what, attempt+1, w.s.maxRetries, err)
		}
		timer := time.NewTimer(w.s.backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// recordError marks an error of one record's values (its shape, a value
// that does not convert), not of its table, the server or the config.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// recordErr wraps a non-nil err as a recordError.
func recordErr(err error) error {
	if err == nil {
		return nil
	}
	return &recordError{err}
}

// isolatable reports errors that some records of a batch can cause and
// others not: the records' own values (recordError), or a data exception
// (SQLSTATE class 22) or integrity violation (class 23) of the database.
func isolatable(err error) bool {
	var re *recordError
	if errors.As(err, &re) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && len(pe.Code) == 5 && (pe.Code[:2] == "22" || pe.Code[:2] == "23")
}

// Flush has nothing to do: every Put committed before returning.
func (t *Task) Flush(context.Context, map[connect.TopicPartition]int64) error { return nil }

// Stop closes the connection. It is idempotent.
func (t *Task) Stop(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.w != nil && t.w.conn != nil {
		t.w.conn.Close(ctx)
		t.w.conn = nil
	}
	return nil
}

// describeBatch names a batch's records for messages.
func describeBatch(recs []connect.SinkRecord) string {
	first, last := &recs[0], &recs[len(recs)-1]
	if first.Topic == last.Topic && first.KafkaPartition == last.KafkaPartition {
		return fmt.Sprintf("%d records of %s-%d (offsets %d..%d)", len(recs), first.Topic, first.KafkaPartition, first.KafkaOffset, last.KafkaOffset)
	}
	return fmt.Sprintf("%d records (first %s-%d@%d)", len(recs), first.Topic, first.KafkaPartition, first.KafkaOffset)
}

// transient tells retriable failures from permanent ones.
func transient(err error) bool {
	var de *ddlError
	if errors.As(err, &de) && de.transient() {
		return true
	}
	return jdbcconf.Transient(err)
}

// stale reports errors a table changed by someone else can cause.
func stale(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "42703" || pe.Code == "42804")
}

// forget drops what is known of the session and the tables (after a
// failure, the transaction's DDL and staging tables are gone).
func (w *writer) forget() {
	w.metas = map[tableID]*tableMeta{}
	w.plans = map[planKey]*plan{}
	w.stageCols = 0
}

func (w *writer) tableFor(topic string) tableID {
	id, ok := w.topics[topic]
	if !ok {
		id = tableFor(w.s.tableFormat, topic)
		if len(w.topics) > 10000 {
			w.topics = map[string]tableID{}
		}
		w.topics[topic] = id
	}
	return id
}

// write writes a batch in one transaction.
func (w *writer) write(ctx context.Context, recs []connect.SinkRecord) (err error) {
	if w.conn == nil {
		if w.conn, err = w.s.conn.Connect(ctx); err != nil {
			return err
		}
		w.forget()
	}
	if w.tx, err = w.conn.Begin(ctx); err != nil {
		w.broken()
		return err
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			w.tx.Rollback(rctx) //nolint:errcheck // the connection is dropped below if it is unusable
			cancel()
			w.forget()
			w.broken()
		}
		w.tx = nil
	}()
	w.segs, w.spans, w.seg, w.staged = w.segs[:0], w.spans[:0], 0, 0
	for id, m := range w.metas {
		if m == nil {
			delete(w.metas, id) // another writer may have created it since
		}
	}
	if w.arena == nil {
		w.arena = make([]byte, 0, 1<<16) // never nil: an empty value must not read as NULL
	}
	w.arena = w.arena[:0]
	clear(w.cur)
	for i := range recs {
		r := &recs[i]
		if err := w.add(ctx, r); err != nil {
			return fmt.Errorf("record %s-%d@%d (table %s): %w", r.Topic, r.KafkaPartition, r.KafkaOffset, w.tableFor(r.Topic), err)
		}
	}
	for _, s := range w.segs {
		if err := w.execSegment(ctx, s); err != nil {
			return explain(s, err)
		}
	}
	return w.tx.Commit(ctx)
}

// broken drops the connection when it is no longer usable.
func (w *writer) broken() {
	if w.conn != nil && (w.conn.IsClosed() || w.conn.PgConn().IsBusy() || w.conn.PgConn().TxStatus() != 'I') {
		w.conn.Close(context.Background())
		w.conn = nil
	}
}

// suspects names the plan's columns of the type a data error names.
func suspects(p *plan, msg string) string {
	_, typ, ok := strings.Cut(msg, "for type ")
	if p == nil || !ok {
		return ""
	}
	typ, _, _ = strings.Cut(typ, ":")
	var names []string
	for _, c := range p.cols {
		if c.typ == typ || c.cast == typ || strings.HasPrefix(c.typ, typ+"(") {
			names = append(names, strconv.Quote(c.name))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (column " + strings.Join(names, " or ") + ")"
}

// explain adds what to change to a database error of a segment.
func explain(s *segment, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s into table %s: %w", s.mode, s.id, err)
	}
	detail := ""
	if pe.Detail != "" {
		detail += "; " + pe.Detail
	}
	if pe.Where != "" {
		detail += "; at " + pe.Where
	}
	hint := ""
	switch {
	case pe.Code == "23505":
		hint = ": a row with this key exists already; use insert.mode=upsert to overwrite rows (replays need it)"
	case pe.Code == "23502":
		hint = ": the column is NOT NULL but records have no value for it; send a value, give the column a DEFAULT, or drop NOT NULL"
	case pe.Code == "23503", pe.Code == "23514":
		hint = ": the rows break a constraint of the table; fix the data or the constraint"
	case pe.Code == "42501":
		hint = ": the connector's database user lacks a privilege; GRANT it"
	case len(pe.Code) == 5 && pe.Code[:2] == "22":
		hint = ": a value does not fit its column" + suspects(s.plan, pe.Message) + "; change the column's type, or convert the field before the sink (Cast or TimestampConverter transforms)"
	}
	return fmt.Errorf("%s into table %s: %w%s%s", s.mode, s.id, err, detail, hint)
}
