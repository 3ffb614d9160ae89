package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary-data/tributary/connect"
)

// Task buffers the records of its partitions per table and sends them to
// ClickHouse (see the package doc). Put and Flush are never called
// concurrently; Stop may be, and waits for the running call to return (its
// context is cancelled first).
//
// A background goroutine (owned by the task: started by Start, ended and
// waited for by Stop) sends a table's rows once the oldest is
// flush.interval.ms old even when no Put comes to do it, so the tail of a
// burst becomes visible within the interval rather than at the worker's
// next Flush. What it cannot send stays buffered: the next Put or Flush
// sends it or fails with the error.
type Task struct {
	mu      sync.Mutex
	s       *settings
	tc      connect.SinkTaskContext // for errant records (connect.ErrantRecordReporter)
	conn    driver.Conn
	caps    caps
	tables  map[string]*table
	plans   map[planKey]*plan
	events  connect.ChangeEvents // recognizes CDC envelopes
	bufs    map[string]*tableBuf
	order   []string // tables with buffered rows, in the order they got them
	stopped bool
	// spareVals are the value slices of sent segments, cleared, for new
	// segments to fill (fewer allocations of a batch's size, and less for
	// the garbage collector to scan); at most maxSpareVals are kept.
	spareVals [][]any

	stopTimer context.CancelFunc // ends the background sender
	timerDone chan struct{}      // closed when it has ended
}

// planKey names a plan: a table and the schemas of the records' row and
// key (sig names a schemaless row's field set).
type planKey struct {
	table    string
	row, key *connect.Schema
	sig      string
	cdc      bool
}

// plan turns records of one shape into rows for one table.
type plan struct {
	table     string
	cols      []string
	sig       string // cols joined: rows of one signature share a batch
	fields    []fieldConv
	keyFields []fieldConv // key fields the row lacks, from the record key
	versioned bool        // the row gets _version and _is_deleted
}

type fieldConv struct {
	index int    // struct field index
	name  string // field name (schemaless rows)
	conv  converter
	col   string
}

// tableBuf holds a table's buffered rows.
type tableBuf struct {
	segs  []*segment
	rows  int
	since time.Time
}

// segment is a run of rows with the same columns, sent in one batch.
type segment struct {
	sig  string
	cols []string
	vals []any // len(cols) per row
	n    int
}

func (t *Task) Start(ctx context.Context, tc connect.SinkTaskContext, config map[string]string) error {
	t.tc = tc
	s, errs := parse(config)
	if len(errs) > 0 {
		return fmt.Errorf("clickhouse sink config: %v", errs)
	}
	t.s = s
	t.bufs = map[string]*tableBuf{}
	t.forget()
	// Fail early on what no retry cures (wrong credentials, unknown
	// database); a server that is down now may be up by the first write.
	if err := t.connect(ctx); err != nil && !transient(err) {
		return err
	}
	tctx, cancel := context.WithCancel(context.Background())
	t.stopTimer, t.timerDone = cancel, make(chan struct{})
	go t.sendDue(tctx)
	return nil
}

// sendDue is the background sender: every quarter of flush.interval.ms
// (10 ms to 1 s) it sends the tables whose oldest row is due.
func (t *Task) sendDue(ctx context.Context) {
	defer close(t.timerDone)
	every := min(max(t.s.flushInterval/4, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		if !t.stopped {
			now := time.Now()
			for _, name := range append([]string(nil), t.order...) {
				if b := t.bufs[name]; b != nil && now.Sub(b.since) >= t.s.flushInterval {
					if err := t.send(ctx, name); err != nil {
						break // still buffered: the next Put or Flush retries or fails
					}
				}
			}
		}
		t.mu.Unlock()
	}
}

func (t *Task) forget() {
	t.tables = map[string]*table{}
	t.plans = map[planKey]*plan{}
}

func (t *Task) connect(ctx context.Context) error {
	if t.conn != nil {
		return nil
	}
	conn, err := dial(ctx, t.s)
	if err != nil {
		return err
	}
	v, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return fmt.Errorf("reading the server version: %w", err)
	}
	t.conn, t.caps = conn, caps{major: v.Version.Major, minor: v.Version.Minor}
	return nil
}

// dropConn closes a connection after a transient failure.
func (t *Task) dropConn() {
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

func (t *Task) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (t *Task) Close(context.Context, []connect.TopicPartition) error { return nil }

// Put converts the records into rows and buffers them; a table's rows are
// sent once batch.size are buffered or the oldest is flush.interval.ms old.
func (t *Task) Put(ctx context.Context, recs []connect.SinkRecord) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return errors.New("clickhouse sink: Put after Stop")
	}
	for i := range recs {
		if err := t.add(ctx, &recs[i]); err != nil {
			r := &recs[i]
			err = fmt.Errorf("clickhouse sink: record %s-%d@%d (table %s.%s): %w", r.Topic, r.KafkaPartition, r.KafkaOffset, t.s.database, t.s.tableName(r.Topic), err)
			// A record that cannot become a row goes to the dead letter
			// queue when tolerated (connect.ErrantRecordReporter); table
			// and server errors always fail.
			var re *recordError
			if rep, ok := t.tc.(connect.ErrantRecordReporter); ok && errors.As(err, &re) {
				if rerr := rep.Report(r, err); rerr != nil {
					return rerr
				}
				continue
			}
			return err
		}
	}
	now := time.Now()
	for _, name := range append([]string(nil), t.order...) {
		b := t.bufs[name]
		if b.rows >= t.s.batchSize || now.Sub(b.since) >= t.s.flushInterval {
			if err := t.send(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush sends every buffered row; it returns nil only when all of them are
// in ClickHouse.
func (t *Task) Flush(ctx context.Context, _ map[connect.TopicPartition]int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return errors.New("clickhouse sink: Flush after Stop")
	}
	for len(t.order) > 0 {
		if err := t.send(ctx, t.order[0]); err != nil {
			return err
		}
	}
	return nil
}

// Stop ends the background sender, drops what is buffered (its offsets
// were not committed) and closes the connection. It is idempotent.
func (t *Task) Stop(context.Context) error {
	if t.stopTimer != nil {
		t.stopTimer()
		<-t.timerDone
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	t.bufs, t.order = map[string]*tableBuf{}, nil
	t.dropConn()
	return nil
}

// maxSpareVals bounds the value slices of sent segments a task keeps.
const maxSpareVals = 4

// send sends a table's buffered rows, one batch per segment, retrying
// transient failures; sent segments leave the buffer.
func (t *Task) send(ctx context.Context, name string) error {
	b := t.bufs[name]
	for len(b.segs) > 0 {
		seg := b.segs[0]
		if err := t.retry(ctx, fmt.Sprintf("inserting %d rows into %s.%s", seg.n, t.s.database, name), func(ctx context.Context) error {
			return t.sendSegment(ctx, name, seg)
		}); err != nil {
			return err
		}
		b.segs = b.segs[1:]
		b.rows -= seg.n
		if len(t.spareVals) < maxSpareVals {
			clear(seg.vals) // the batch has copied the values
			t.spareVals = append(t.spareVals, seg.vals[:0])
		}
		seg.vals = nil
	}
	delete(t.bufs, name)
	for i, n := range t.order {
		if n == name {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
	return nil
}

func (t *Task) sendSegment(ctx context.Context, name string, seg *segment) error {
	q := make([]string, len(seg.cols))
	for i, c := range seg.cols {
		q[i] = quoteIdent(c)
	}
	batch, err := t.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", quoteIdent(t.s.database), quoteIdent(name), strings.Join(q, ", ")))
	if err != nil {
		return err
	}
	n := len(seg.cols)
	for i := 0; i < seg.n; i++ {
		if err := batch.Append(seg.vals[i*n : (i+1)*n]...); err != nil {
			batch.Abort()
			return fmt.Errorf("%w: row %d of the batch: %v", ErrPermanent, i, err)
		}
	}
	return batch.Send()
}

// retry runs fn (connecting first when needed), retrying transient
// failures max.retries times, retry.backoff.ms apart, on a new connection.
func (t *Task) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := t.connect(ctx)
		if err == nil {
			if err = fn(ctx); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("clickhouse sink: %s: %w", what, ctx.Err())
		}
		if !transient(err) {
			if isCode(err, codeUnknownTable) {
				t.forget()
			}
			return fmt.Errorf("clickhouse sink: %s: %w", what, err)
		}
		t.dropConn()
		if attempt >= t.s.maxRetries {
			return fmt.Errorf("clickhouse sink: %s failed %d times (max.retries=%d), giving up: %w", what, attempt+1, t.s.maxRetries, err)
		}
		timer := time.NewTimer(t.s.backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("clickhouse sink: %s: %w", what, ctx.Err())
		case <-timer.C:
		}
	}
}

// change is one record's row, as add extracts it.
type change struct {
	row, key any
	rowS     *connect.Schema
	keyS     *connect.Schema
	cdc      bool
	deleted  bool
	version  uint64
}

// add turns one record into a buffered row (or nothing).
func (t *Task) add(ctx context.Context, r *connect.SinkRecord) error {
	if r.Value == nil {
		return nil // a tombstone: see table.go
	}
	c := change{row: r.Value, rowS: r.ValueSchema, key: r.Key, keyS: r.KeySchema, version: uint64(r.KafkaOffset)}
	if st, ok := r.Key.(*connect.Struct); ok {
		c.keyS = st.Schema()
	}
	if env, ok := t.events.Of(r.Value); ok {
		c.cdc = true
		switch env.Op {
		case "c", "r", "u":
			c.row = env.After
		case "d":
			c.row, c.deleted = env.Before, true
			if c.row == nil {
				c.row = r.Key
			}
		default:
			return nil
		}
		if c.row == nil {
			return nil
		}
		if lsn, ok := lsnOf(env); ok {
			c.version = lsn
		}
	}
	c.rowS = nil
	var sig string
	switch v := c.row.(type) {
	case *connect.Struct:
		c.rowS = v.Schema()
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sig = strings.Join(keys, "\x00")
	default:
		return &recordError{fmt.Errorf("%w: the value is a %s: the sink writes structs (records with schemas) or JSON objects; use a converter with schemas or wrap the value (HoistField transform)", ErrPermanent, kindOf(c.row))}
	}
	name := t.s.tableName(r.Topic)
	pk := planKey{table: name, row: c.rowS, key: c.keyS, sig: sig, cdc: c.cdc}
	p, ok := t.plans[pk]
	if !ok {
		var err error
		if p, err = t.buildPlan(ctx, name, &c); err != nil {
			return err
		}
		if len(t.plans) > 10000 {
			t.plans = map[planKey]*plan{}
		}
		t.plans[pk] = p
	}
	return t.appendRow(name, p, &c)
}

// recordError marks an error of one record's values (not of its table or
// the server): the record can go to the dead letter queue.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// appendRow converts a change's values and appends them to the table's
// buffer.
func (t *Task) appendRow(name string, p *plan, c *change) error {
	b := t.bufs[name]
	if b == nil {
		b = &tableBuf{since: time.Now()}
		t.bufs[name] = b
		t.order = append(t.order, name)
	}
	var seg *segment
	if k := len(b.segs); k > 0 && b.segs[k-1].sig == p.sig {
		seg = b.segs[k-1]
	} else {
		seg = &segment{sig: p.sig, cols: p.cols}
		if k := len(t.spareVals); k > 0 {
			seg.vals, t.spareVals = t.spareVals[k-1], t.spareVals[:k-1]
		} else {
			seg.vals = make([]any, 0, len(p.cols)*min(t.s.batchSize, 1024))
		}
		b.segs = append(b.segs, seg)
	}
	start := len(seg.vals)
	fail := func(f fieldConv, err error) error {
		// Undo the row: its values, and a segment or table buffer it
		// alone would have started.
		seg.vals = seg.vals[:start]
		if seg.n == 0 && b.segs[len(b.segs)-1] == seg {
			b.segs = b.segs[:len(b.segs)-1]
		}
		if b.rows == 0 && len(b.segs) == 0 {
			delete(t.bufs, name)
			if k := len(t.order); k > 0 && t.order[k-1] == name {
				t.order = t.order[:k-1]
			}
		}
		return &recordError{fmt.Errorf("%w: field %q into column %q: %v; change the column's type, or convert the field before the sink (Cast transform)", ErrPermanent, f.name, f.col, err)}
	}
	get := func(src any, f fieldConv) any {
		switch v := src.(type) {
		case *connect.Struct:
			return v.GetByIndex(f.index)
		case map[string]any:
			return v[f.name]
		}
		return nil
	}
	for _, f := range p.fields {
		v, err := f.conv(get(c.row, f))
		if err != nil {
			return fail(f, err)
		}
		seg.vals = append(seg.vals, v)
	}
	for _, f := range p.keyFields {
		v, err := f.conv(get(c.key, f))
		if err != nil {
			return fail(f, err)
		}
		seg.vals = append(seg.vals, v)
	}
	if p.versioned {
		del := uint8(0)
		if c.deleted {
			del = 1
		}
		seg.vals = append(seg.vals, c.version, del)
	}
	seg.n++
	b.rows++
	return nil
}

// buildPlan maps a record shape onto its table, creating the table or
// adding columns as configured.
func (t *Task) buildPlan(ctx context.Context, name string, c *change) (*plan, error) {
	if err := t.connect(ctx); err != nil {
		return nil, err
	}
	fields := fieldsOf(c.row, c.rowS)
	var keyFields []connect.Field
	if c.keyS != nil && c.keyS.Type == connect.StructT {
		keyFields = c.keyS.Fields
	}
	if t.s.upsert && len(keyFields) == 0 {
		return nil, fmt.Errorf("%w: insert.mode=upsert needs struct record keys (their fields are the table's ORDER BY key), but the key is %s; key the records (ValueToKey transform) or use insert.mode=insert", ErrPermanent, c.keyS)
	}
	inRow := map[string]bool{}
	for _, f := range fields {
		inRow[f.Name] = true
	}
	var extraKeys []connect.Field // key fields the row lacks
	for _, f := range keyFields {
		if !inRow[f.Name] {
			extraKeys = append(extraKeys, f)
		}
	}
	isKey := map[string]bool{}
	for _, f := range keyFields {
		isKey[f.Name] = true
	}
	versioned := t.s.upsert || c.cdc
	tbl, err := t.table(ctx, name)
	if err != nil {
		return nil, err
	}
	if tbl == nil {
		if !t.s.autoCreate {
			return nil, fmt.Errorf("%w: table %s.%s does not exist: create it, or set auto.create=true", ErrPermanent, t.s.database, name)
		}
		if c.rowS == nil {
			return nil, fmt.Errorf("%w: table %s.%s does not exist and auto.create needs records with schemas (these are schemaless JSON): create the table, or use a converter with schemas", ErrPermanent, t.s.database, name)
		}
		var defs []colDef
		for _, f := range append(append([]connect.Field(nil), fields...), extraKeys...) {
			typ, err := columnType(f.Schema, t.caps, isKey[f.Name])
			if err != nil {
				return nil, fmt.Errorf("%w: field %q: %v", ErrPermanent, f.Name, err)
			}
			defs = append(defs, colDef{name: f.Name, typ: typ})
		}
		var keys []string
		for _, f := range keyFields {
			keys = append(keys, f.Name)
		}
		if err := t.retry(ctx, "creating table "+name, func(ctx context.Context) error {
			return createTable(ctx, t.conn, t.s.database, name, defs, keys, versioned, t.s.upsert, t.caps)
		}); err != nil {
			return nil, err
		}
		delete(t.tables, name)
		if tbl, err = t.table(ctx, name); err != nil {
			return nil, err
		}
		if tbl == nil {
			return nil, fmt.Errorf("%w: table %s.%s was created but has no columns", ErrPermanent, t.s.database, name)
		}
	}
	// Columns the table lacks.
	var missing []colDef
	for _, f := range append(append([]connect.Field(nil), fields...), extraKeys...) {
		if tbl.has(f.Name) {
			continue
		}
		if !t.s.autoEvolve || f.Schema == nil {
			return nil, fmt.Errorf("%w: table %s.%s has no column %q for field %q: add it (ALTER TABLE ADD COLUMN), or set auto.evolve=true", ErrPermanent, t.s.database, name, f.Name, f.Name)
		}
		typ, err := columnType(f.Schema, t.caps, false)
		if err != nil {
			return nil, fmt.Errorf("%w: field %q: %v", ErrPermanent, f.Name, err)
		}
		missing = append(missing, colDef{name: f.Name, typ: typ})
	}
	if versioned && (!tbl.has(colVersion) || !tbl.has(colDeleted)) {
		switch {
		case t.s.upsert:
			return nil, fmt.Errorf("%w: table %s.%s lacks the %s UInt64 and %s UInt8 columns insert.mode=upsert writes: create it as a ReplacingMergeTree(%s) with them, or drop it and let auto.create make it", ErrPermanent, t.s.database, name, colVersion, colDeleted, colVersion)
		case t.s.autoEvolve:
			missing = append(missing, colDef{colVersion, "UInt64"}, colDef{colDeleted, "UInt8"})
		default:
			versioned = false
		}
	}
	for _, col := range missing {
		if tbl.has(col.name) {
			continue
		}
		if err := t.retry(ctx, "adding column "+col.name+" to table "+name, func(ctx context.Context) error {
			return addColumn(ctx, t.conn, t.s.database, name, col)
		}); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		delete(t.tables, name)
		if tbl, err = t.table(ctx, name); err != nil {
			return nil, err
		}
	}
	p := &plan{table: name, versioned: versioned}
	for _, f := range fields {
		col := tbl.cols[tbl.index[f.Name]]
		p.fields = append(p.fields, fieldConv{index: f.Index, name: f.Name, col: col.name, conv: convertFor(f.Schema, col.typ)})
		p.cols = append(p.cols, col.name)
	}
	for _, f := range extraKeys {
		col := tbl.cols[tbl.index[f.Name]]
		p.keyFields = append(p.keyFields, fieldConv{index: f.Index, name: f.Name, col: col.name, conv: convertFor(f.Schema, col.typ)})
		p.cols = append(p.cols, col.name)
	}
	if versioned {
		p.cols = append(p.cols, colVersion, colDeleted)
	}
	p.sig = strings.Join(p.cols, "\x00")
	return p, nil
}

// table returns what is known of a table, reading it when unknown (nil:
// it does not exist).
func (t *Task) table(ctx context.Context, name string) (*table, error) {
	if tbl, ok := t.tables[name]; ok {
		return tbl, nil
	}
	var tbl *table
	if err := t.retry(ctx, "reading the columns of "+name, func(ctx context.Context) (err error) {
		tbl, err = describe(ctx, t.conn, t.s.database, name)
		return err
	}); err != nil {
		return nil, err
	}
	if tbl != nil {
		t.tables[name] = tbl
	}
	return tbl, nil
}

// fieldsOf lists a row's fields: its schema's, or a schemaless object's
// keys (sorted, with nil schemas).
func fieldsOf(row any, s *connect.Schema) []connect.Field {
	if s != nil {
		return s.Fields
	}
	m, _ := row.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]connect.Field, len(keys))
	for i, k := range keys {
		out[i] = connect.Field{Name: k, Index: i}
	}
	return out
}

// lsnOf returns source.lsn when the event has one.
func lsnOf(e connect.ChangeEvent) (uint64, bool) {
	var v any
	switch s := e.Source.(type) {
	case *connect.Struct:
		if _, ok := s.Schema().Field("lsn"); ok {
			v = s.Get("lsn")
		}
	case map[string]any:
		v = s["lsn"]
	}
	n, ok := toInt64(v)
	if !ok || n < 0 {
		return 0, false
	}
	return uint64(n), true
}
