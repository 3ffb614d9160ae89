package connect

// ChangeEvent is a change data capture event in Debezium's envelope, the
// shape the CDC source emits and sinks apply: Op is "c" (create), "u"
// (update), "d" (delete), "r" (snapshot read) or "t" (truncate); Before and
// After are the row before and after the change (a *Struct, or a
// map[string]any for schemaless JSON; nil when absent); Source is the
// source block (lsn, txId, table ...), nil when absent.
type ChangeEvent struct {
	Op            string
	Before, After any
	Source        any
}

// ChangeEvents recognizes change events by their shape: a struct with a
// STRING field "op" and STRUCT fields "before" and "after", or a schemaless
// object with the keys op, before and after. The verdict is cached per
// schema (a sink sees the same few schemas record after record). The zero
// value is ready; not safe for concurrent use.
type ChangeEvents struct {
	schemas map[*Schema]bool
}

// maxCachedSchemas bounds the cache; it starts over when full.
const maxCachedSchemas = 10000

// Of returns the change event v is, or false when it is not one.
func (c *ChangeEvents) Of(v any) (ChangeEvent, bool) {
	switch x := v.(type) {
	case *Struct:
		s := x.Schema()
		is, ok := c.schemas[s]
		if !ok {
			is = isChangeEventSchema(s)
			if c.schemas == nil || len(c.schemas) >= maxCachedSchemas {
				c.schemas = map[*Schema]bool{}
			}
			c.schemas[s] = is
		}
		if !is {
			return ChangeEvent{}, false
		}
		e := ChangeEvent{}
		e.Op, _ = x.Get("op").(string)
		if b, ok := x.Get("before").(*Struct); ok {
			e.Before = b
		}
		if a, ok := x.Get("after").(*Struct); ok {
			e.After = a
		}
		if _, ok := s.Field("source"); ok {
			e.Source = x.Get("source")
		}
		return e, true
	case map[string]any:
		op, ok := x["op"].(string)
		b, hasB := x["before"]
		a, hasA := x["after"]
		if !ok || !hasB || !hasA {
			return ChangeEvent{}, false
		}
		e := ChangeEvent{Op: op, Source: x["source"]}
		if m, ok := b.(map[string]any); ok {
			e.Before = m
		}
		if m, ok := a.(map[string]any); ok {
			e.After = m
		}
		return e, true
	}
	return ChangeEvent{}, false
}

func isChangeEventSchema(s *Schema) bool {
	op, hasOp := s.Field("op")
	b, hasB := s.Field("before")
	a, hasA := s.Field("after")
	return hasOp && hasB && hasA && op.Schema.Type == String && b.Schema.Type == StructT && a.Schema.Type == StructT
}
