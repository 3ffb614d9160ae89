package sink

// From records to rows, and the order rows are applied in.
//
// Each record becomes a write (insert, upsert or update of a row), a delete
// (by key) or a truncate of its table. Per table, consecutive rows of the
// same mode and shape form a segment, written batch.size rows at a time
// (one COPY, or one statement per kind: see table.go). Segments are
// applied in the order they started, so per table (and so per key) the
// records' order is kept:
//
//   - in upsert segments a later row for a key replaces an earlier one,
//     write or delete alike (both fix the row's final state: last wins);
//   - in update segments too, except that a key once deleted stays deleted
//     (an update cannot bring a row back);
//   - insert segments keep every row (a repeated key is an error, as in
//     Confluent's connector); a delete starts a new segment after them;
//   - a truncate ends the table's segment: rows after it start a new one.
//
// CDC envelopes (Debezium's change events: a struct, or a JSON object
// without schema, holding "op" and "before"/"after" fields) are applied as
// the change they describe: op c, r, u write the "after" row (an upsert
// when the sink has a key, pk.mode != none; an insert otherwise, as
// Debezium's JDBC sink does with primary.key.mode=none); op d deletes the
// row (when delete.enabled) by the record key, or by the "before" row's key
// columns when the record has no key; op t truncates the table (when
// truncate.enabled). Tombstones (a null value) delete by key when
// delete.enabled and are skipped otherwise; the tombstone Debezium sends
// after each delete finds the row already gone and changes nothing.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-data/tributary/connect"
)

type writeMode uint8

const (
	modeInsert writeMode = iota
	modeUpsert
	modeUpdate
	modeDelete // delete-only segments and plans
	modeTruncate
)

func (m writeMode) String() string {
	return [...]string{"insert", "upsert", "update", "delete", "truncate"}[m]
}

// srcKind says where a column's value comes from.
type srcKind uint8

const (
	srcKeyField srcKind = iota
	srcKeyMap
	srcKeyWhole
	srcValueField
	srcValueMap
	srcTopic
	srcPartition
	srcOffset
)

type shapeCol struct {
	name   string
	schema *connect.Schema // nil: schemaless
	src    srcKind
	idx    int // field index for srcKeyField and srcValueField
}

// shape is the columns one kind of record is written to, key columns first.
type shape struct {
	cols       []shapeCol
	pk         []int  // key columns, in key order
	pkNames    string // their names, joined with commas
	schemaless bool
}

func (s *shape) isPK(i int) bool {
	for _, k := range s.pk {
		if k == i {
			return true
		}
	}
	return false
}

// recView is the parts of a record a shape reads.
type recView struct {
	rec *connect.SinkRecord
	key any // the record key
	val any // the row: *connect.Struct or map[string]any
}

func (c *shapeCol) get(v *recView) any {
	switch c.src {
	case srcKeyField:
		return v.key.(*connect.Struct).GetByIndex(c.idx)
	case srcKeyMap:
		return v.key.(map[string]any)[c.name]
	case srcKeyWhole:
		return v.key
	case srcValueField:
		return v.val.(*connect.Struct).GetByIndex(c.idx)
	case srcValueMap:
		return v.val.(map[string]any)[c.name]
	case srcTopic:
		return v.rec.Topic
	case srcPartition:
		return v.rec.KafkaPartition
	case srcOffset:
		return v.rec.KafkaOffset
	}
	return nil
}

type shapeKind uint8

const (
	shapeWrite        shapeKind = iota
	shapeWriteByValue           // key columns named, taken from the row
	shapeDeleteByKey
	shapeDeleteByValue
)

type shapeKey struct {
	kind   shapeKind
	ks, vs *connect.Schema
	sig    string
}

// intern returns the canonical schema equal to s, so that records carrying
// equal schemas in different values share shapes and plans.
func (w *writer) intern(s *connect.Schema) *connect.Schema {
	if s == nil {
		return nil
	}
	if c, ok := w.interned[s]; ok {
		return c
	}
	if len(w.interned) > 10000 {
		w.resetShapes()
	}
	for _, c := range w.canon {
		if c.Equal(s) {
			w.interned[s] = c
			return c
		}
	}
	w.canon = append(w.canon, s)
	w.interned[s] = s
	return s
}

func (w *writer) resetShapes() {
	w.interned, w.canon = map[*connect.Schema]*connect.Schema{}, nil
	w.shapes, w.plans = map[shapeKey]*shape{}, map[planKey]*plan{}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sig describes a value for the shape cache: its schema, or for a
// schemaless map its sorted field names.
func (w *writer) sig(v any, b *strings.Builder) *connect.Schema {
	switch x := v.(type) {
	case *connect.Struct:
		return w.intern(x.Schema())
	case map[string]any:
		b.WriteString("{")
		b.WriteString(strings.Join(sortedKeys(x), "\x00"))
		b.WriteString("}")
	case nil:
		b.WriteString("nil")
	default:
		fmt.Fprintf(b, "%T", v)
	}
	return nil
}

// shapeOf returns the shape of a record view. pkNames names the key columns
// for shapeWriteByValue and shapeDeleteByValue.
func (w *writer) shapeOf(kind shapeKind, v *recView, pkNames []string) (*shape, error) {
	var b strings.Builder
	var k shapeKey
	k.kind = kind
	usesKey := kind == shapeDeleteByKey || (kind == shapeWrite && w.s.pkMode == pkRecordKey)
	if usesKey {
		k.ks = w.sig(v.key, &b)
		if k.ks == nil && v.rec.KeySchema != nil {
			k.ks = w.intern(v.rec.KeySchema)
		}
	}
	b.WriteString("|")
	if kind != shapeDeleteByKey {
		k.vs = w.sig(v.val, &b)
	}
	b.WriteString("|" + strings.Join(pkNames, "\x00"))
	k.sig = b.String()
	if sh, ok := w.shapes[k]; ok {
		return sh, nil
	}
	sh, err := w.buildShape(kind, v, pkNames)
	if err != nil {
		return nil, err
	}
	w.shapes[k] = sh
	return sh, nil
}

func (w *writer) buildShape(kind shapeKind, v *recView, pkNames []string) (*shape, error) {
	sh := &shape{}
	add := func(c shapeCol, pk bool) {
		if pk {
			sh.pk = append(sh.pk, len(sh.cols))
		}
		if c.schema == nil && c.src != srcTopic && c.src != srcPartition && c.src != srcOffset {
			sh.schemaless = true
		}
		sh.cols = append(sh.cols, c)
	}
	taken := map[string]bool{}
	switch {
	case kind == shapeDeleteByKey || (kind == shapeWrite && w.s.pkMode == pkRecordKey):
		cols, err := w.keyCols(v.rec.KeySchema, v.key)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			add(c, true)
			taken[c.name] = true
		}
	case kind == shapeWrite && w.s.pkMode == pkKafka:
		names := w.s.pkFields
		if len(names) == 0 {
			names = []string{"__connect_topic", "__connect_partition", "__connect_offset"}
		}
		add(shapeCol{name: names[0], schema: connect.StringSchema, src: srcTopic}, true)
		add(shapeCol{name: names[1], schema: connect.Int32Schema, src: srcPartition}, true)
		add(shapeCol{name: names[2], schema: connect.Int64Schema, src: srcOffset}, true)
		for _, n := range names {
			taken[n] = true
		}
	case kind == shapeWrite && w.s.pkMode == pkRecordValue:
		pkNames = w.s.pkFields
		if len(pkNames) == 0 {
			pkNames = fieldNames(v.val)
		}
		fallthrough
	case kind == shapeWriteByValue || kind == shapeDeleteByValue:
		for _, n := range pkNames {
			c, ok := valueCol(v.val, n)
			if !ok {
				return nil, fmt.Errorf("the key column %q (pk.fields, or the table's primary key) is not a field of the record value", n)
			}
			add(c, true)
			taken[n] = true
		}
	}
	if kind == shapeWrite || kind == shapeWriteByValue {
		for _, n := range fieldNames(v.val) {
			if taken[n] || (w.s.whitelist != nil && !w.s.whitelist[n]) {
				continue
			}
			c, _ := valueCol(v.val, n)
			add(c, false)
		}
	}
	if len(sh.cols) == 0 {
		return nil, fmt.Errorf("the record has no fields to write (check fields.whitelist)")
	}
	var names []string
	for _, i := range sh.pk {
		names = append(names, sh.cols[i].name)
	}
	sh.pkNames = strings.Join(names, ",")
	return sh, nil
}

// keyCols returns the columns of a record key (pk.mode=record_key).
func (w *writer) keyCols(ks *connect.Schema, key any) ([]shapeCol, error) {
	var cols []shapeCol
	switch k := key.(type) {
	case nil:
		return nil, fmt.Errorf("the record has no key, and pk.mode=record_key takes the row's key from it: give the records keys, or use pk.mode=record_value with pk.fields")
	case *connect.Struct:
		names := w.s.pkFields
		if len(names) == 0 {
			for _, f := range k.Schema().Fields {
				names = append(names, f.Name)
			}
		}
		for _, n := range names {
			f, ok := k.Schema().Field(n)
			if !ok {
				return nil, fmt.Errorf("pk.fields names %q, which the record key %s does not have", n, k.Schema())
			}
			cols = append(cols, shapeCol{name: n, schema: f.Schema, src: srcKeyField, idx: f.Index})
		}
	case map[string]any:
		names := w.s.pkFields
		if len(names) == 0 {
			names = sortedKeys(k)
		}
		for _, n := range names {
			if _, ok := k[n]; !ok {
				return nil, fmt.Errorf("pk.fields names %q, which the record key (a JSON object) does not have", n)
			}
			cols = append(cols, shapeCol{name: n, src: srcKeyMap})
		}
	default:
		if len(w.s.pkFields) != 1 {
			return nil, fmt.Errorf("the record key is a single value (%T), not a struct: set pk.fields to the one column name it is written to", key)
		}
		if ks != nil && !ks.Type.IsPrimitive() {
			return nil, fmt.Errorf("the record key schema %s does not match its value %T", ks, key)
		}
		cols = append(cols, shapeCol{name: w.s.pkFields[0], schema: ks, src: srcKeyWhole})
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("the record key has no fields to use as the primary key")
	}
	return cols, nil
}

func fieldNames(v any) []string {
	switch x := v.(type) {
	case *connect.Struct:
		out := make([]string, len(x.Schema().Fields))
		for i, f := range x.Schema().Fields {
			out[i] = f.Name
		}
		return out
	case map[string]any:
		return sortedKeys(x)
	}
	return nil
}

func valueCol(v any, name string) (shapeCol, bool) {
	switch x := v.(type) {
	case *connect.Struct:
		f, ok := x.Schema().Field(name)
		return shapeCol{name: name, schema: f.Schema, src: srcValueField, idx: f.Index}, ok
	case map[string]any:
		_, ok := x[name]
		return shapeCol{name: name, src: srcValueMap}, ok
	}
	return shapeCol{}, false
}

// segment is a run of rows for one table applied together (see the file doc).
type segment struct {
	id      tableID
	mode    writeMode
	plan    *plan
	rows    []segRow
	keys    map[string]int // key -> index in rows (not for mode insert)
	writes  int
	deletes int
}

type segRow struct {
	del   bool
	key   string // the key columns' values, NUL-separated
	first int    // the row's first column span in writer.spans
}

// span locates a column value in the arena; end < 0 is NULL.
type span struct{ start, end int }

// add turns one record into rows (or nothing).
func (w *writer) add(ctx context.Context, rec *connect.SinkRecord) error {
	id := w.tableFor(rec.Topic)
	v := &recView{rec: rec, key: rec.Key, val: rec.Value}
	if rec.Value == nil {
		if !w.s.deleteEnabled || rec.Key == nil {
			return nil
		}
		return w.addDelete(ctx, id, v, nil)
	}
	if env, ok := w.events.Of(rec.Value); ok {
		switch env.Op {
		case "c", "r", "u":
			if env.After == nil {
				return recordErr(fmt.Errorf("a CDC event with op %q has no \"after\" row", env.Op))
			}
			v.val = env.After
			if w.s.pkMode == pkNone {
				return w.addWrite(ctx, id, modeInsert, v, shapeWrite, nil)
			}
			if w.s.pkMode == pkRecordKey && rec.Key == nil {
				names, err := w.tablePK(ctx, id)
				if err != nil || names == nil {
					return w.noKey(id, err)
				}
				return w.addWrite(ctx, id, modeUpsert, v, shapeWriteByValue, names)
			}
			return w.addWrite(ctx, id, modeUpsert, v, shapeWrite, nil)
		case "d":
			if !w.s.deleteEnabled {
				return nil
			}
			if rec.Key != nil {
				return w.addDelete(ctx, id, v, nil)
			}
			if env.Before == nil {
				return recordErr(errors.New("a CDC delete without a record key nor a \"before\" row cannot be applied: configure the source to send keys"))
			}
			names, err := w.tablePK(ctx, id)
			if err != nil || names == nil {
				return w.noKey(id, err)
			}
			v.val = env.Before
			return w.addDelete(ctx, id, v, names)
		case "t":
			if w.s.truncateEnabled {
				seg := &segment{id: id, mode: modeTruncate}
				w.segs = append(w.segs, seg)
				w.cur[id] = seg
			}
			return nil
		}
		return recordErr(fmt.Errorf("a CDC event has op %q, which is none of c, r, u, d, t", env.Op))
	}
	switch rec.Value.(type) {
	case *connect.Struct, map[string]any:
	default:
		return recordErr(fmt.Errorf("the record value is a %T: the PostgreSQL sink writes struct values (records with schemas) or JSON objects", rec.Value))
	}
	return w.addWrite(ctx, id, w.s.insertMode, v, shapeWrite, nil)
}

// tablePK names the key columns of a record without key: pk.fields, else
// the target table's primary key (nil when it has none or does not exist).
func (w *writer) tablePK(ctx context.Context, id tableID) ([]string, error) {
	if len(w.s.pkFields) > 0 {
		return w.s.pkFields, nil
	}
	m, err := w.meta(ctx, id)
	if err != nil || m == nil {
		return nil, err
	}
	return m.pk, nil
}

func (w *writer) noKey(id tableID, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("a CDC event without a record key needs pk.fields, or a primary key on table %s, to find its row", id)
}

func (w *writer) addWrite(ctx context.Context, id tableID, mode writeMode, v *recView, kind shapeKind, pkNames []string) error {
	sh, err := w.shapeOf(kind, v, pkNames)
	if err != nil {
		return recordErr(err)
	}
	p, err := w.planFor(ctx, id, sh, mode)
	if err != nil {
		return err
	}
	first := len(w.spans)
	key, err := w.encode(p, v)
	if err != nil {
		return recordErr(err)
	}
	row := segRow{key: key, first: first}
	s := w.cur[id]
	switch {
	case s != nil && s.mode == mode && s.plan == p:
	case s != nil && s.mode == modeDelete && (mode == modeUpsert || mode == modeUpdate) && s.plan.pkNames == p.pkNames:
		s.mode, s.plan = mode, p // the deletes so far join this segment
	default:
		s = w.newSegment(id, mode, p)
	}
	s.push(row)
	return nil
}

func (w *writer) addDelete(ctx context.Context, id tableID, v *recView, pkNames []string) error {
	kind := shapeDeleteByKey
	if pkNames != nil {
		kind = shapeDeleteByValue
	}
	sh, err := w.shapeOf(kind, v, pkNames)
	if err != nil {
		return recordErr(err)
	}
	p, err := w.planFor(ctx, id, sh, modeDelete)
	if err != nil || p == nil {
		return err // nil plan: the table does not exist, nothing to delete
	}
	first := len(w.spans)
	key, err := w.encode(p, v)
	if err != nil {
		return recordErr(err)
	}
	s := w.cur[id]
	if s == nil || (s.mode != modeUpsert && s.mode != modeUpdate && s.mode != modeDelete) || s.plan.pkNames != p.pkNames {
		s = w.newSegment(id, modeDelete, p)
	}
	s.push(segRow{del: true, key: key, first: first})
	return nil
}

func (w *writer) newSegment(id tableID, mode writeMode, p *plan) *segment {
	s := &segment{id: id, mode: mode, plan: p}
	if mode != modeInsert {
		s.keys = map[string]int{}
	}
	w.segs = append(w.segs, s)
	w.cur[id] = s
	return s
}

func (s *segment) push(r segRow) {
	if s.keys == nil {
		s.rows = append(s.rows, r)
		s.writes++
		return
	}
	if i, ok := s.keys[r.key]; ok {
		old := s.rows[i]
		if s.mode == modeUpdate && old.del {
			return // an update cannot bring a deleted row back
		}
		if old.del {
			s.deletes--
		} else {
			s.writes--
		}
		s.rows[i] = r
	} else {
		s.keys[r.key] = len(s.rows)
		s.rows = append(s.rows, r)
	}
	if r.del {
		s.deletes++
	} else {
		s.writes++
	}
}

// encode appends a row's column values to the arena and their spans to
// w.spans, and returns its key. A delete's plan has the key columns only,
// in key order.
func (w *writer) encode(p *plan, v *recView) (string, error) {
	first := len(w.spans)
	for i := range p.shape.cols {
		c := &p.shape.cols[i]
		from := len(w.arena)
		var err error
		var ok bool
		if w.arena, ok, err = p.enc[i](w.arena, c.get(v)); err != nil {
			return "", fmt.Errorf("field %q: %w", c.name, err)
		}
		if !ok {
			w.spans = append(w.spans, span{from, -1})
			continue
		}
		w.spans = append(w.spans, span{from, len(w.arena)})
	}
	if len(p.pkPos) == 0 {
		return "", nil
	}
	w.keyBuf = w.keyBuf[:0]
	for k, i := range p.pkPos {
		if k > 0 {
			w.keyBuf = append(w.keyBuf, 0)
		}
		if sp := w.spans[first+i]; sp.end < 0 {
			w.keyBuf = append(w.keyBuf, 1) // NULL
		} else {
			w.keyBuf = append(w.keyBuf, w.arena[sp.start:sp.end]...)
		}
	}
	return string(w.keyBuf), nil
}

// value returns the i-th column value of a row (nil for NULL; never nil
// for an empty string, as the arena is never nil).
func (w *writer) value(r *segRow, i int) []byte {
	sp := w.spans[r.first+i]
	if sp.end < 0 {
		return nil
	}
	return w.arena[sp.start:sp.end:sp.end]
}

// execSegment applies a segment in the open transaction.
func (w *writer) execSegment(ctx context.Context, s *segment) error {
	if s.mode == modeTruncate {
		m, err := w.meta(ctx, s.id)
		if err != nil || m == nil {
			return err // no table, nothing to truncate
		}
		_, err = w.tx.Exec(ctx, "TRUNCATE TABLE "+s.id.String())
		return err
	}
	p := s.plan
	for off := 0; off < len(s.rows); off += w.s.batchSize {
		chunk := s.rows[off:min(off+w.s.batchSize, len(s.rows))]
		if p.mode == modeInsert {
			if err := w.copyRows(ctx, p, chunk); err != nil {
				return err
			}
			continue
		}
		if err := w.ensureStage(ctx, len(p.cols)); err != nil {
			return err
		}
		// Every statement reads the rows loaded in this transaction so far:
		// start afresh when they pile up.
		if w.staged > 4*w.s.batchSize {
			if _, err := w.tx.Exec(ctx, "TRUNCATE "+stage); err != nil {
				return err
			}
			w.staged = 0
		}
		w.seg++
		dels, writes, err := w.copyStage(ctx, p, chunk)
		if err != nil {
			return err
		}
		w.staged += len(chunk)
		b := &pgx.Batch{}
		if dels > 0 {
			b.Queue(p.delSQL, w.seg)
		}
		if writes > 0 && p.wrSQL != "" {
			b.Queue(p.wrSQL, w.seg)
		}
		if b.Len() > 0 {
			if err := w.tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyStage COPYs rows into the staging table as segment w.seg: a write
// fills every column, a delete its key columns.
func (w *writer) copyStage(ctx context.Context, p *plan, rows []segRow) (dels, writes int, err error) {
	buf := w.copyBuf[:0]
	for i := range rows {
		r := &rows[i]
		if r.del {
			buf = append(buf, 'd')
			dels++
		} else {
			buf = append(buf, 'w')
			writes++
		}
		buf = append(buf, '\t')
		buf = strconv.AppendInt(buf, int64(w.seg), 10)
		for j := range p.cols {
			buf = append(buf, '\t')
			var v []byte
			switch {
			case !r.del:
				v = w.value(r, j)
			case p.colPK[j] >= 0:
				v = w.value(r, p.colPK[j])
			}
			if v == nil {
				buf = append(buf, '\\', 'N')
			} else {
				buf = appendCopyEscaped(buf, v)
			}
		}
		buf = append(buf, '\n')
	}
	w.copyBuf = buf
	_, err = w.tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), p.copySQL)
	return dels, writes, err
}

// copyRows COPYs rows into the table, in COPY's text format.
func (w *writer) copyRows(ctx context.Context, p *plan, rows []segRow) error {
	buf := w.copyBuf[:0]
	for i := range rows {
		r := &rows[i]
		for j := range p.cols {
			if j > 0 {
				buf = append(buf, '\t')
			}
			if v := w.value(r, j); v == nil {
				buf = append(buf, '\\', 'N')
			} else {
				buf = appendCopyEscaped(buf, v)
			}
		}
		buf = append(buf, '\n')
	}
	w.copyBuf = buf
	_, err := w.tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), p.copySQL)
	return err
}
