package cdc

// The initial snapshot. Several connections each open a REPEATABLE READ
// READ ONLY transaction and import the same exported snapshot (SET
// TRANSACTION SNAPSHOT), the one CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT
// returned: they all see the database exactly as of the slot's consistent
// point, from which streaming then starts. Tables larger than
// snapshot.fetch.size rows are split into primary key ranges (boundaries
// sampled with TABLESAMPLE) read in parallel; others are read whole.
// Rows are read in the text format and converted by the same code as
// streamed tuples, so both render a value identically.
//
// Snapshot records carry source.snapshot "true" ("last" on the final
// one) and an offset with snapshot_completed false (true on the final
// one). If the task stops before the final record's offset is stored, the
// next start redoes the snapshot: it drops the slot it had created (it has
// never streamed) and creates it again, exporting a new snapshot.

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/connect"
)

type snapTable struct {
	tb      *table
	rel     *relInfo
	src     *connect.Struct // shared source block of the table's records
	selectQ string
}

type chunk struct {
	st    *snapTable
	where string
	args  [][]byte
	est   float64
}

// snapshotWithoutSlot snapshots in a snapshot exported by a transaction
// of a regular connection (initial_only, or a slot that already exists).
func (t *SourceTask) snapshotWithoutSlot(ctx context.Context, info *serverInfo, rels []relInfo, lsn uint64, slotCreated bool) error {
	c, err := connectSQL(ctx, t.s)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", t.s.where(), err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("starting the snapshot transaction: %w", err)
	}
	var name string
	if err := c.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&name); err != nil {
		return fmt.Errorf("exporting a snapshot: %w", err)
	}
	return t.snapshot(ctx, name, info, rels, lsn, slotCreated)
}

// snapshot reads every captured table in the exported snapshot snapName
// and emits the records, then the record (or heartbeat) whose offset marks
// the snapshot complete.
func (t *SourceTask) snapshot(ctx context.Context, snapName string, info *serverInfo, rels []relInfo, lsn uint64, slotCreated bool) error {
	s := t.s
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nconn := min(s.snapshotThreads, max(1, len(rels)))
	conns := make([]*pgx.Conn, 0, nconn)
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	for i := 0; i < nconn; i++ {
		c, err := connectSQL(ctx, s)
		if err != nil {
			return fmt.Errorf("opening a snapshot connection: %w", err)
		}
		conns = append(conns, c)
		if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return fmt.Errorf("starting a snapshot transaction: %w", err)
		}
		if _, err := c.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(snapName, "'", "''")+"'"); err != nil {
			return fmt.Errorf("importing snapshot %s: %w", snapName, err)
		}
	}
	c0 := conns[0]
	var xmin int64
	if err := c0.QueryRow(ctx, "SELECT txid_snapshot_xmin(txid_current_snapshot())").Scan(&xmin); err != nil {
		return fmt.Errorf("reading the snapshot's xmin: %w", err)
	}
	types := newTypeCatalog()
	var oids []uint32
	for _, r := range rels {
		for _, c := range r.cols {
			oids = append(oids, c.oid)
		}
	}
	if err := types.load(ctx, c0, oids); err != nil {
		return err
	}
	tsMs := start.UnixMilli()
	var chunks []chunk
	tables := make([]*snapTable, len(rels))
	for i := range rels {
		r := &rels[i]
		defs := make([]columnDef, len(r.cols))
		names := make([]string, len(r.cols))
		for j, c := range r.cols {
			defs[j] = columnDef{name: c.name, oid: c.oid, typmod: c.typmod, notNull: c.notNull || c.key, key: c.key}
			names[j] = pgx.Identifier{c.name}.Sanitize()
		}
		tb := newTable(s.prefix, t.src.schema, r.oid, r.schema, r.name, r.replIdent, defs, types, s.filter)
		from := " FROM ONLY "
		if r.partitioned {
			from = " FROM " // the root stands for its partitions
		}
		sel := "SELECT " + strings.Join(names, ", ") + from + pgx.Identifier{r.schema, r.name}.Sanitize()
		stb := &snapTable{tb: tb, rel: r, selectQ: sel, src: t.src.build(tb, "true", tsMs, xmin, lsn, sequence(0, lsn))}
		tables[i] = stb
		cs, err := planChunks(ctx, c0, stb, s.fetchSize)
		if err != nil {
			return err
		}
		chunks = append(chunks, cs...)
	}
	sort.SliceStable(chunks, func(i, j int) bool { return chunks[i].est > chunks[j].est })

	work := make(chan chunk)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var held []heldRecord
	off := snapshotOffset(lsn, slotCreated, false)
	for i := range conns {
		w := &snapWriter{t: t, off: off}
		c := conns[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.run(ctx, c, work)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
			if w.held.rec != nil {
				held = append(held, w.held)
			}
		}()
	}
feed:
	for _, ch := range chunks {
		select {
		case work <- ch:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The final records: every reader's last one, the very last marked
	// "last" and carrying the completion offset (in batches of at most
	// max.batch.size, each ending with an offset).
	final := make([]connect.SourceRecord, 0, len(held)+1)
	for i, h := range held {
		rec := *h.rec
		if i == len(held)-1 {
			src := t.src.build(h.st.tb, "last", tsMs, xmin, lsn, sequence(0, lsn))
			rec.Value.(*connect.Struct).MustPut("source", src)
			rec.SourceOffset = snapshotOffset(lsn, slotCreated, true)
		}
		final = append(final, rec)
	}
	if len(final) == 0 {
		// Nothing to read: a heartbeat record stores the completion.
		final = append(final, t.hb.record(t.partition, snapshotOffset(lsn, slotCreated, true), time.Now().UnixMilli()))
	}
	for len(final) > 0 {
		n := min(len(final), s.maxBatch)
		b := final[:n:n]
		final = final[n:]
		if b[n-1].SourceOffset == nil {
			b[n-1].SourceOffset = off
		}
		select {
		case t.out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, c := range conns {
		c.Exec(ctx, "COMMIT")
	}
	el := time.Since(start)
	rows := t.snapshotRows.Load()
	slog.Info("postgres cdc: snapshot complete", "connector", s.prefix, "tables", len(rels), "rows", rows,
		"seconds", el.Seconds(), "rows_per_second", int64(float64(rows)/max(el.Seconds(), 1e-9)))
	return nil
}

type heldRecord struct {
	rec *connect.SourceRecord
	st  *snapTable
}

// snapWriter is one reader: it batches its records to Poll, holding back
// its latest record (the last one of all gets marked).
type snapWriter struct {
	t     *SourceTask
	off   map[string]any
	batch []connect.SourceRecord
	held  heldRecord
	cells []cell
	vals  []any
}

func (w *snapWriter) run(ctx context.Context, c *pgx.Conn, work <-chan chunk) error {
	for ch := range work {
		if err := w.read(ctx, c, ch); err != nil {
			return err
		}
	}
	return w.flush(ctx)
}

func (w *snapWriter) read(ctx context.Context, c *pgx.Conn, ch chunk) error {
	tb := ch.st.tb
	q := ch.st.selectQ + ch.where
	rr := c.PgConn().ExecParams(ctx, q, ch.args, nil, nil, nil)
	w.vals = growAny(w.vals, len(tb.cols))
	nowMs := time.Now().UnixMilli()
	var n int64
	for rr.NextRow() {
		raw := rr.Values()
		w.cells = w.cells[:0]
		for _, v := range raw {
			if v == nil {
				w.cells = append(w.cells, cell{kind: 'n'})
			} else {
				w.cells = append(w.cells, cell{kind: 't', data: v})
			}
		}
		if err := tb.values(w.cells, nil, w.vals, w.t.s.placeholder, false); err != nil {
			rr.Close()
			return err
		}
		after, err := tb.valueStruct(w.vals)
		if err != nil {
			rr.Close()
			return err
		}
		key, err := tb.keyStruct(w.vals)
		if err != nil {
			rr.Close()
			return err
		}
		rec := connect.SourceRecord{
			Record:          connect.Record{Topic: tb.topic, ValueSchema: tb.envSchema, Value: tb.envelope("r", nil, after, ch.st.src, nowMs)},
			SourcePartition: w.t.partition,
		}
		if key != nil {
			rec.KeySchema, rec.Key = tb.keySchema, key
		}
		if err := w.add(ctx, rec, ch.st); err != nil {
			rr.Close()
			return err
		}
		n++
		if n&1023 == 0 {
			w.t.snapshotRows.Add(1024)
		}
	}
	w.t.snapshotRows.Add(n & 1023)
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("reading table %s for the snapshot: %w", tb.qualified(), err)
	}
	return nil
}

func (w *snapWriter) add(ctx context.Context, rec connect.SourceRecord, st *snapTable) error {
	if w.held.rec != nil {
		if w.batch == nil {
			w.batch = make([]connect.SourceRecord, 0, w.t.s.maxBatch)
		}
		w.batch = append(w.batch, *w.held.rec)
		if len(w.batch) >= w.t.s.maxBatch {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
	} else {
		w.held.rec = new(connect.SourceRecord)
	}
	*w.held.rec = rec
	w.held.st = st
	return nil
}

func (w *snapWriter) flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	w.batch[len(w.batch)-1].SourceOffset = w.off
	select {
	case w.t.out <- w.batch:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.batch = nil
	return nil
}

// planChunks splits a table into primary key ranges of about fetch rows.
func planChunks(ctx context.Context, c *pgx.Conn, st *snapTable, fetch int) ([]chunk, error) {
	r := st.rel
	est := r.estRows
	if est <= 0 {
		est = float64(r.sizeBytes) / 100
	}
	whole := []chunk{{st: st, est: est}}
	var keys []catColumn
	for _, col := range r.cols {
		if col.key {
			keys = append(keys, col)
		}
	}
	n := int(est / float64(fetch))
	if len(keys) == 0 || n < 2 || r.partitioned {
		return whole, nil
	}
	n = min(n, 4096)
	names := make([]string, len(keys))
	casts := make([]string, len(keys))
	for i, k := range keys {
		names[i] = pgx.Identifier{k.name}.Sanitize()
		// Aliased: ORDER BY must sort by the column, not by its text.
		casts[i] = fmt.Sprintf("%s::text AS _k%d", names[i], i)
	}
	pct := min(100, max(0.001, 100*float64(n*8)/est))
	rows, err := c.Query(ctx, fmt.Sprintf("SELECT %s FROM ONLY %s TABLESAMPLE SYSTEM (%g) ORDER BY %s",
		strings.Join(casts, ", "), pgx.Identifier{r.schema, r.name}.Sanitize(), pct, strings.Join(names, ", ")),
		pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, fmt.Errorf("sampling the keys of %s: %w", st.tb.qualified(), err)
	}
	var sample [][]string
	for rows.Next() {
		vals := make([]string, len(keys))
		ptrs := make([]any, len(keys))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return nil, err
		}
		sample = append(sample, vals)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sampling the keys of %s: %w", st.tb.qualified(), err)
	}
	if len(sample) < 2 {
		return whole, nil
	}
	n = min(n, len(sample))
	var bounds [][]string
	for i := 1; i < n; i++ {
		b := sample[i*len(sample)/n]
		if len(bounds) > 0 && strings.Join(bounds[len(bounds)-1], "\x00") == strings.Join(b, "\x00") {
			continue
		}
		bounds = append(bounds, b)
	}
	if len(bounds) == 0 {
		return whole, nil
	}
	// Row comparisons: (a, b) >= ($1::ta, $2::tb) AND (a, b) < (...).
	lhs := strings.Join(names, ", ")
	if len(names) > 1 {
		lhs = "(" + lhs + ")"
	}
	param := func(first int) string {
		ps := make([]string, len(keys))
		for i, k := range keys {
			ps[i] = fmt.Sprintf("$%d::%s", first+i, k.typeName)
		}
		if len(ps) > 1 {
			return "(" + strings.Join(ps, ", ") + ")"
		}
		return ps[0]
	}
	args := func(b ...[]string) [][]byte {
		var out [][]byte
		for _, v := range b {
			for _, s := range v {
				out = append(out, []byte(s))
			}
		}
		return out
	}
	per := est / float64(len(bounds)+1)
	out := make([]chunk, 0, len(bounds)+1)
	out = append(out, chunk{st: st, est: per, where: " WHERE " + lhs + " < " + param(1), args: args(bounds[0])})
	for i := 1; i < len(bounds); i++ {
		out = append(out, chunk{st: st, est: per, where: " WHERE " + lhs + " >= " + param(1) + " AND " + lhs + " < " + param(1+len(keys)),
			args: args(bounds[i-1], bounds[i])})
	}
	out = append(out, chunk{st: st, est: per, where: " WHERE " + lhs + " >= " + param(1), args: args(bounds[len(bounds)-1])})
	return out, nil
}
