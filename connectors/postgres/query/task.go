package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connectors/postgres/jdbcconf"
)

// SourceTask copies its tables (or the query) over one connection, one
// table's result set at a time. Poll and Commit are never concurrent; Stop
// may run while Poll waits: it cancels the task's context (which ends the
// open query), then closes the connection once Poll returned. Stop is
// idempotent.
type SourceTask struct {
	mu       sync.Mutex
	s        *settings
	ctx      context.Context // the task's lifetime: Stop cancels it
	cancel   context.CancelFunc
	conn     *pgx.Conn
	qs       []*querier
	failures int  // consecutive transient failures
	stopped  bool // Stop was called
	maxWait  time.Duration
}

// Start connects, checks every table (or the query) against the config,
// and restores the stored offsets. A problem fails the task with what to
// change.
func (t *SourceTask) Start(ctx context.Context, tc connect.SourceTaskContext, config map[string]string) (err error) {
	defer func() {
		if err != nil && t.cancel != nil {
			t.cancel()
			t.dropConn() // Stop may not follow a failed Start
		}
	}()
	s, errs := parse(config)
	if len(errs) > 0 {
		return fmt.Errorf("postgres query source config: %v", errs)
	}
	t.s, t.maxWait = s, time.Second
	t.ctx, t.cancel = context.WithCancel(context.Background())
	var tables [][2]string
	if s.query == "" {
		raw, ok := config[tablesTask]
		if !ok {
			return fmt.Errorf("postgres query source: the task config has no %q (tasks get their tables from the connector's TaskConfigs)", tablesTask)
		}
		if err := json.Unmarshal([]byte(raw), &tables); err != nil {
			return fmt.Errorf("postgres query source: bad %q in the task config: %w", tablesTask, err)
		}
	}
	conn, err := s.conn.Connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres query source: %w", err)
	}
	t.conn = conn
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return fmt.Errorf("postgres query source: %w", err)
	}
	if s.query != "" {
		t.qs = append(t.qs, newQuerier(s, db, tableRef{}))
	}
	for _, tb := range tables {
		t.qs = append(t.qs, newQuerier(s, db, tableRef{tb[0], tb[1]}))
	}
	var parts []map[string]any
	for _, q := range t.qs {
		if err := q.describe(ctx, conn); err != nil {
			return t.explain(q, err)
		}
		parts = append(parts, q.partition)
		if q.legacy != nil {
			parts = append(parts, q.legacy)
		}
	}
	if s.mode != modeBulk && tc != nil {
		stored, err := tc.Offsets(ctx, parts)
		if err != nil {
			return fmt.Errorf("postgres query source: reading stored offsets: %w", err)
		}
		if err := t.restore(stored); err != nil {
			return err
		}
	}
	if s.usesTS() && s.tsInitial != nil {
		for _, q := range t.qs {
			if !q.hasTS {
				q.hasTS = true
				q.ts = time.UnixMilli(*s.tsInitial).UTC()
				if *s.tsInitial == -1 {
					q.ts = time.Now().UTC()
				}
			}
		}
	}
	return nil
}

// restore applies stored offsets: the protocol 1 partition's, else
// Confluent's older {"table": name} partition's.
func (t *SourceTask) restore(stored []connect.PartitionOffset) error {
	key := func(p map[string]any) string { b, _ := json.Marshal(p); return string(b) }
	byPart := map[string]map[string]any{}
	for _, po := range stored {
		byPart[key(po.Partition)] = po.Offset
	}
	for _, q := range t.qs {
		off, ok := byPart[key(q.partition)]
		if !ok && q.legacy != nil {
			off, ok = byPart[key(q.legacy)]
		}
		if ok && off != nil {
			if err := q.restore(off); err != nil {
				return fmt.Errorf("postgres query source: %w", err)
			}
		}
	}
	return nil
}

// explain turns a describe or query failure into a task failure message.
func (t *SourceTask) explain(q *querier, err error) error {
	if k := keyOf(err); k != "" {
		return fmt.Errorf("postgres query source: %s: %w (check %s)", q.what(), err, k)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		hint := ""
		switch pe.Code {
		case "42P01":
			hint = ": the table is gone; restart the connector to list the tables again"
		case "42703":
			hint = ": a column the config names is gone; fix incrementing.column.name / timestamp.column.name or the query"
		case "42601", "42883", "42804":
			hint = ": fix the query (or query.suffix)"
		}
		return fmt.Errorf("postgres query source: %s: %w%s", q.what(), err, hint)
	}
	return fmt.Errorf("postgres query source: %s: %w", q.what(), err)
}

// head returns the querier to work on: one with an open result set, else
// the one due first.
func (t *SourceTask) head() *querier {
	var h *querier
	for _, q := range t.qs {
		if q.rows != nil {
			return q
		}
		if h == nil || q.next.Before(h.next) {
			h = q
		}
	}
	return h
}

// Poll returns up to batch.max.rows records of one table, waiting up to
// about a second for a table to be due.
func (t *SourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil, errors.New("postgres query source: Poll after Stop")
	}
	// ctx, and the task's context, end the work of this call.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()
	deadline := time.Now().Add(t.maxWait)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q := t.head()
		if q == nil {
			return nil, sleep(ctx, time.Until(deadline))
		}
		if q.rows == nil {
			if wait := time.Until(q.next); wait > 0 {
				if until := time.Until(deadline); until < wait {
					return nil, sleep(ctx, until)
				}
				if err := sleep(ctx, wait); err != nil {
					return nil, err
				}
				continue
			}
			if err := t.openQuery(ctx, q); err != nil {
				return t.fail(ctx, q, err)
			}
		}
		recs, done, err := q.read(ctx, t.s.batch)
		if err != nil {
			return t.fail(ctx, q, err)
		}
		t.failures = 0
		if done {
			q.close()
			q.next = time.Now().Add(t.s.poll)
		}
		if len(recs) > 0 {
			return recs, nil
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
	}
}

func (t *SourceTask) openQuery(ctx context.Context, q *querier) error {
	if t.conn == nil || t.conn.IsClosed() {
		conn, err := t.s.conn.Connect(ctx)
		if err != nil {
			return err
		}
		t.conn = conn
	}
	// Columns may have been added or changed since the last query.
	if err := q.describe(ctx, t.conn); err != nil {
		return err
	}
	return q.open(t.ctx, t.conn)
}

// fail handles a failed query: transient failures drop the connection
// and retry the table after connection.backoff.ms (query.retry.attempts
// times in a row at most); others fail the task.
func (t *SourceTask) fail(ctx context.Context, q *querier, err error) ([]connect.SourceRecord, error) {
	q.close()
	if ctx.Err() != nil {
		t.dropConn()
		return nil, ctx.Err()
	}
	if gone(q, err) {
		// The connector's table monitor notices too, and asks for new task
		// configs without this table; until then the others go on.
		t.remove(q)
		return nil, nil
	}
	if !jdbcconf.Transient(err) {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.dropConn() // the connection's state is unknown
		}
		return nil, t.explain(q, err)
	}
	t.dropConn()
	t.failures++
	if t.s.retries >= 0 && t.failures > t.s.retries {
		return nil, fmt.Errorf("postgres query source: %s failed %d times in a row (query.retry.attempts=%d): %w", q.what(), t.failures, t.s.retries, err)
	}
	q.next = time.Now().Add(t.s.conn.Backoff)
	return nil, nil
}

// gone reports that a table (not the query) was dropped.
func gone(q *querier, err error) bool {
	if q.table.Name == "" || q.s.tablePoll <= 0 {
		return false // no monitor to reconfigure the tasks: fail, saying so
	}
	var pe *pgconn.PgError
	var ke *keyedError
	return (errors.As(err, &pe) && pe.Code == "42P01") || (errors.As(err, &ke) && ke.key == keyWhitelist)
}

func (t *SourceTask) remove(q *querier) {
	for i, x := range t.qs {
		if x == q {
			t.qs = append(t.qs[:i], t.qs[i+1:]...)
			return
		}
	}
}

func (t *SourceTask) dropConn() {
	if t.conn != nil {
		t.conn.Close(context.Background())
		t.conn = nil
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Commit has nothing to acknowledge: the stored offset is the resume point.
func (t *SourceTask) Commit(context.Context, []connect.PartitionOffset) error { return nil }

// Stop ends the open query and closes the connection.
func (t *SourceTask) Stop(context.Context) error {
	if t.cancel != nil {
		t.cancel()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for _, q := range t.qs {
		q.close()
	}
	t.dropConn()
	return nil
}
