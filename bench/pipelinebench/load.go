package main

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgTable is the captured table (in a database of its own per run).
const pgTable = "orders"

// columns of pgTable, in COPY order.
var columns = []string{"id", "name", "amount", "created", "flag"}

// createTable is pgTable's DDL.
const createTable = `CREATE TABLE ` + pgTable + ` (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	amount numeric(12,2) NOT NULL,
	created timestamptz NOT NULL,
	flag bool NOT NULL)`

var rowEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// rows generates rows first..first+n-1 for CopyFrom: about 100 bytes each
// on disk (8 + 49 + 8 + 8 + 1 bytes of data and the tuple header).
func rows(first int64, n int) pgx.CopyFromSource {
	id := first
	return pgx.CopyFromFunc(func() ([]any, error) {
		if id >= first+int64(n) {
			return nil, nil
		}
		id++
		return []any{
			id - 1,
			fmt.Sprintf("customer %010d, some filler text, 48 bytes.", id-1),
			pgtype.Numeric{Int: big.NewInt((id - 1) * 7919 % 1_000_000_000), Exp: -2, Valid: true},
			rowEpoch.Add(time.Duration(id-1) * time.Second),
			(id-1)%3 == 0,
		}, nil
	})
}

// phase is one phase's writes and what became of them: rows rows with ids
// base.. in transactions of txRows rows (the last may be smaller), taken
// from a shared counter by the writers; with a rate, transaction k starts
// no earlier than start + k x txRows / rate.
//
// The writers set begun and commits (atomics); the poller alone sets
// visible, which others read only after it returned.
type phase struct {
	name   string
	base   int64
	rows   int
	txRows int
	rate   float64 // rows/s; 0: as fast as the writers can

	start   time.Time      // set before the writers start
	begun   atomic.Int64   // transactions taken by writers
	commits []atomic.Int64 // UnixNano when transaction k's COMMIT returned; 0: not yet
	visible []time.Time    // when the poller saw all of transaction k's rows
	late    atomic.Int64   // paced: transactions that began more than lateAfter after their time
}

// lateAfter is how late a paced transaction may begin before it counts as
// late (the writers could not keep the pace).
const lateAfter = 100 * time.Millisecond

func newPhase(name string, base int64, rows, txRows int, rate float64) *phase {
	p := &phase{name: name, base: base, rows: rows, txRows: txRows, rate: rate}
	p.commits = make([]atomic.Int64, p.txs())
	p.visible = make([]time.Time, p.txs())
	return p
}

func (p *phase) txs() int          { return (p.rows + p.txRows - 1) / p.txRows }
func (p *phase) first(k int) int64 { return p.base + int64(k)*int64(p.txRows) }
func (p *phase) size(k int) int    { return min(p.txRows, p.rows-k*p.txRows) }

// due is when paced transaction k should begin.
func (p *phase) due(k int) time.Time {
	return p.start.Add(time.Duration(float64(k*p.txRows) / p.rate * float64(time.Second)))
}

// write runs one writer per connection until every transaction is
// committed; on the first failure it cancels the others and returns once
// all have stopped.
func (p *phase) write(ctx context.Context, conns []*pgx.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(conns))
	for _, c := range conns {
		go func() { errs <- p.writer(ctx, c) }()
	}
	var first error
	for range conns {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func (p *phase) writer(ctx context.Context, c *pgx.Conn) error {
	n := int64(p.txs())
	for {
		k := p.begun.Add(1) - 1
		if k >= n {
			return nil
		}
		if p.rate > 0 {
			due := p.due(int(k))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
			if time.Since(due) > lateAfter {
				p.late.Add(1)
			}
		}
		lo, size := p.first(int(k)), p.size(int(k))
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{pgTable}, columns, rows(lo, size)); err != nil {
			tx.Rollback(context.Background()) //nolint:errcheck // the COPY's error is the one to report
			return fmt.Errorf("COPY of rows %d..%d: %w", lo, lo+int64(size)-1, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("COMMIT of rows %d..%d: %w", lo, lo+int64(size)-1, err)
		}
		p.commits[k].Store(time.Now().UnixNano())
	}
}

// pollStats describe a phase's polling of ClickHouse.
type pollStats struct {
	queries   int
	queryTime time.Duration // summed
	maxQuery  time.Duration
}

// visibility polls ClickHouse every o.pollEvery until every transaction of
// p is visible (all of its rows in the FINAL view), setting p.visible; it
// checks the processes and connectors every statusEvery and gives up when
// no transaction became visible for stallAfter.
func (e *env) visibility(ctx context.Context, p *phase) (pollStats, error) {
	var ps pollStats
	n := p.txs()
	lowest := 0 // every transaction before it is visible
	t := time.NewTicker(e.o.pollEvery)
	defer t.Stop()
	lastCheck, lastProgress := time.Now(), time.Now()
	for lowest < n {
		select {
		case <-ctx.Done():
			return ps, fmt.Errorf("%s: %d of %d transactions visible in ClickHouse: %w", p.name, lowest, n, context.Cause(ctx))
		case <-t.C:
		}
		if !e.tableExists {
			// The sink creates the table with its first rows.
			out, err := e.sv.ch.Do(ctx, fmt.Sprintf("EXISTS TABLE %s.%s", e.db, chTable))
			if err != nil && ctx.Err() == nil {
				return ps, fmt.Errorf("%s: polling ClickHouse: %w", p.name, err)
			}
			e.tableExists = strings.TrimSpace(out) == "1"
		}
		if hi := min(int(p.begun.Load()), n); hi > lowest && e.tableExists {
			q0 := time.Now()
			counts, err := e.visibleCounts(ctx, p, lowest, hi)
			at := time.Now()
			if err != nil {
				if ctx.Err() != nil {
					return ps, fmt.Errorf("%s: %w", p.name, context.Cause(ctx))
				}
				return ps, fmt.Errorf("%s: polling ClickHouse: %w", p.name, err)
			}
			ps.queries++
			ps.queryTime += at.Sub(q0)
			ps.maxQuery = max(ps.maxQuery, at.Sub(q0))
			for k, c := range counts {
				if k >= lowest && k < hi && p.visible[k].IsZero() && c >= p.size(k) {
					p.visible[k] = at
					lastProgress = at
				}
			}
			for lowest < n && !p.visible[lowest].IsZero() {
				lowest++
			}
		}
		now := time.Now()
		if now.Sub(lastCheck) >= statusEvery {
			lastCheck = now
			if err := e.healthy(ctx); err != nil {
				return ps, fmt.Errorf("%s: %d of %d transactions visible in ClickHouse: %w", p.name, lowest, n, err)
			}
		}
		if now.Sub(lastProgress) > stallAfter {
			return ps, fmt.Errorf("%s: no transaction became visible in ClickHouse for %v (%d of %d visible)", p.name, stallAfter, lowest, n)
		}
	}
	return ps, nil
}

// visibleCounts counts the rows of transactions lo..hi-1 of p in
// ClickHouse's FINAL view, per transaction.
func (e *env) visibleCounts(ctx context.Context, p *phase, lo, hi int) (map[int]int, error) {
	out, err := e.sv.ch.Do(ctx, fmt.Sprintf(
		"SELECT intDiv(id - %d, %d) AS k, count() FROM %s.%s FINAL WHERE id >= %d AND id < %d AND NOT _is_deleted GROUP BY k",
		p.base, p.txRows, e.db, chTable, p.first(lo), p.first(hi)))
	if err != nil {
		return nil, err
	}
	counts := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		ks, cs, ok := strings.Cut(line, "\t")
		k, err1 := strconv.Atoi(ks)
		c, err2 := strconv.Atoi(cs)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("unexpected row %q", line)
		}
		counts[k] = c
	}
	return counts, nil
}

// freshness summarizes the transactions' commit-to-visible times.
type freshness struct {
	n             int
	p50, p99, max time.Duration
	mean          time.Duration
	beforeCommit  int // seen before their COMMIT returned to the writer (counted as 0)
	firstCommit   time.Time
	lastCommit    time.Time
	lastVisible   time.Time
}

// measure computes the freshness of a finished phase.
func (p *phase) measure() freshness {
	var f freshness
	ds := make([]time.Duration, 0, p.txs())
	var sum time.Duration
	for k := range p.txs() {
		c := time.Unix(0, p.commits[k].Load())
		v := p.visible[k]
		if f.firstCommit.IsZero() || c.Before(f.firstCommit) {
			f.firstCommit = c
		}
		if c.After(f.lastCommit) {
			f.lastCommit = c
		}
		if v.After(f.lastVisible) {
			f.lastVisible = v
		}
		d := v.Sub(c)
		if d < 0 {
			f.beforeCommit++
			d = 0
		}
		ds = append(ds, d)
		sum += d
	}
	slices.Sort(ds)
	f.n = len(ds)
	if f.n > 0 {
		f.p50, f.p99, f.max = percentile(ds, 50), percentile(ds, 99), ds[f.n-1]
		f.mean = sum / time.Duration(f.n)
	}
	return f
}

// percentile returns the q-th percentile (nearest rank) of sorted ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*q/100+0.999999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
