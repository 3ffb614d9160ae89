package redis

// RedisSink: every record becomes one Redis write, per redis.command.
//
// Keys (SET, HSET, JSONSET and DEL):
//
//	<keyspace><separator><record key>
//
// keyspace is redis.keyspace with ${topic} replaced by the record's topic
// (default "${topic}"; an empty keyspace gives the bare record key),
// separator is redis.separator (default ":"). The record key is rendered as
// text: a string as is, bytes as their raw bytes, numbers and booleans in
// decimal / true|false; a struct (or JSON object) with one field - a CDC
// key - is its field's value; with several fields, their values in field
// order (object keys sorted) joined by the separator. A record without a
// key fails the task, naming its topic, partition and offset.
//
// Values:
//
//	SET      a STRING value as is, BYTES raw, anything else as JSON
//	         (structs and maps as objects, see appendJSON)
//	HSET     struct fields (or object keys) -> hash fields, values as text
//	         (nested values as JSON; null fields are left out); the hash is
//	         replaced: DEL then HSET, so fields that became null go away
//	JSONSET  JSON.SET key $ <value as JSON> (needs the RedisJSON module)
//	XADD     XADD <keyspace> * field value ... (the stream is the keyspace,
//	         default the topic); no key needed; a non-struct value is one
//	         field named "value"
//
// Deletes: a tombstone (null value) or a Debezium change event with op "d"
// DELetes the key (skipped by XADD); op c, r, u write the event's "after"
// row; op t (truncate) is skipped. redis.ttl.seconds > 0 sets that expiry on
// every key written (SET ... EX, or EXPIRE after HSET, JSON.SET, XADD).
//
// Batches: each Put is sent as one pipeline (MULTI/EXEC when
// redis.multiexec=true, making each Put atomic for readers) and has been
// executed when Put returns, so Flush has nothing left to do. Per key the
// records' order is kept, so a CDC stream keeps Redis equal to the table;
// SET, HSET, JSONSET and DEL are idempotent, a replay changes nothing.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/connect"
)

// Sink config keys.
const (
	keyCommand   = "redis.command"
	keyKeyspace  = "redis.keyspace"
	keySeparator = "redis.separator"
	keyTTL       = "redis.ttl.seconds"
	keyMultiExec = "redis.multiexec"

	cmdSET     = "SET"
	cmdHSET    = "HSET"
	cmdXADD    = "XADD"
	cmdJSONSET = "JSONSET"
)

func sinkConfigDef() *connect.ConfigDef {
	const w = "Writes"
	return defineConnection(connect.NewConfigDef()).
		Define(connect.ConfigKey{Name: keyCommand, Type: connect.TypeString, Default: cmdSET, Importance: connect.High, Group: w, OrderInGroup: 1,
			Validator: connect.OneOfIgnoreCase(cmdSET, cmdHSET, cmdXADD, cmdJSONSET),
			Doc:       "SET: the value (as is for strings and bytes, else JSON) at the key; HSET: the struct's fields as a hash, replacing it; XADD: append the fields to the stream named by redis.keyspace; JSONSET: JSON.SET (needs the RedisJSON module on the server). Tombstones and CDC deletes (op d) DEL the key, except with XADD."}).
		Define(connect.ConfigKey{Name: keyKeyspace, Type: connect.TypeString, Default: "${topic}", Importance: connect.High, Group: w, OrderInGroup: 2,
			Doc: "The key prefix (the stream name for XADD); ${topic} is replaced by the record's topic. Keys are <keyspace><separator><record key>; an empty keyspace gives the bare record key."}).
		Define(connect.ConfigKey{Name: keySeparator, Type: connect.TypeString, Default: ":", Importance: connect.Medium, Group: w, OrderInGroup: 3,
			Doc: "Between the keyspace and the record key, and between the values of a several-field key."}).
		Define(connect.ConfigKey{Name: keyTTL, Type: connect.TypeLong, Default: "0", Importance: connect.Medium, Group: w, OrderInGroup: 4,
			Validator: connect.AtLeast(int64(0)), Doc: "Expire every key written after this many seconds (0: never)."}).
		Define(connect.ConfigKey{Name: keyMultiExec, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: w, OrderInGroup: 5,
			Doc: "Wrap each batch (Put) in MULTI/EXEC, so readers never see part of it (e.g. a hash between its DEL and HSET)."})
}

type sinkSettings struct {
	conn      connSettings
	command   string
	keyspace  string
	sep       string
	ttl       time.Duration
	multiExec bool
}

func parseSink(config map[string]string) (*sinkSettings, map[string][]string) {
	def := sinkConfigDef()
	c, errs := def.Parse(config)
	if errs == nil {
		errs = map[string][]string{}
	}
	rejectUnknown(def, config, errs)
	if len(errs) > 0 {
		return nil, errs
	}
	s := &sinkSettings{conn: parseConnection(c, errs), command: strings.ToUpper(c.String(keyCommand)),
		keyspace: c.String(keyKeyspace), sep: c.String(keySeparator),
		ttl: time.Duration(c.Long(keyTTL)) * time.Second, multiExec: c.Bool(keyMultiExec)}
	if _, ok := config[keySeparator]; !ok {
		s.sep = ":"
	}
	if _, ok := config[keyKeyspace]; !ok {
		s.keyspace = "${topic}"
	}
	if s.command == cmdXADD && s.keyspace == "" {
		errs[keyKeyspace] = append(errs[keyKeyspace], "redis.command=XADD needs a stream name: set redis.keyspace (default ${topic})")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// errNoJSON: the server lacks the RedisJSON module.
var errNoJSON = errors.New("redis.command=JSONSET needs the RedisJSON module (JSON.SET), which this server does not have: load it (e.g. Redis Stack, or redis-server --loadmodule rejson.so), or use redis.command=SET, which stores the value as a JSON string")

// hasJSON reports whether the server knows JSON.SET.
func hasJSON(ctx context.Context, c *redis.Client) (bool, error) {
	v, err := c.Do(ctx, "COMMAND", "INFO", "JSON.SET").Slice()
	if err != nil {
		return false, err
	}
	return len(v) > 0 && v[0] != nil, nil
}

// Sink is the Redis sink connector.
type Sink struct{ config map[string]string }

// NewSink returns a Redis sink connector.
func NewSink() connect.Connector { return &Sink{} }

func (s *Sink) Version() string               { return version }
func (s *Sink) ConfigDef() *connect.ConfigDef { return sinkConfigDef() }

// Validate checks the keys, that the server answers (within 10 s) with the
// given credentials and, for JSONSET, that it has RedisJSON.
func (s *Sink) Validate(ctx context.Context, config map[string]string) (map[string][]string, error) {
	st, errs := parseSink(config)
	if len(errs) > 0 {
		return errs, nil
	}
	if errs := st.conn.check(ctx); errs != nil {
		return errs, nil
	}
	if st.command == cmdJSONSET {
		c := st.conn.client()
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ok, err := hasJSON(ctx, c)
		if err != nil {
			return map[string][]string{keyURI: {describeConnError(st.conn.opts.Addr, err)}}, nil
		}
		if !ok {
			return map[string][]string{keyCommand: {errNoJSON.Error()}}, nil
		}
	}
	return nil, nil
}

func (s *Sink) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	if _, errs := parseSink(config); len(errs) > 0 {
		return fmt.Errorf("redis sink config: %v", errs)
	}
	s.config = config
	return nil
}

// TaskConfigs gives every task the connector's config: the worker spreads
// the topic partitions over them.
func (s *Sink) TaskConfigs(_ context.Context, maxTasks int) ([]map[string]string, error) {
	return connect.TaskConfigsOf(s.config, maxTasks), nil
}

func (s *Sink) Stop(context.Context) error { return nil }

// NewTask returns a new sink task.
func (s *Sink) NewTask() connect.SinkTask { return &SinkTask{} }

// SinkTask writes records to Redis, one pipeline per Put.
type SinkTask struct {
	s      *sinkSettings
	tc     connect.SinkTaskContext // for errant records (connect.ErrantRecordReporter)
	c      *redis.Client
	buf    []byte               // scratch for keys
	json   []byte               // arena of one Put's JSON values (read by its Exec)
	ks     map[string]string    // keyspace prefix per topic
	events connect.ChangeEvents // recognizes CDC envelopes
}

func (t *SinkTask) Start(ctx context.Context, tc connect.SinkTaskContext, config map[string]string) error {
	t.tc = tc
	st, errs := parseSink(config)
	if len(errs) > 0 {
		return fmt.Errorf("redis sink config: %v", errs)
	}
	t.s, t.c = st, st.conn.client()
	t.ks = map[string]string{}
	if err := t.c.Ping(ctx).Err(); err != nil {
		t.c.Close()
		if isAuthError(err) {
			return errors.New(describeConnError(st.conn.opts.Addr, err))
		}
		return fmt.Errorf("%w: %s", connect.ErrRetriable, describeConnError(st.conn.opts.Addr, err))
	}
	if st.command == cmdJSONSET {
		ok, err := hasJSON(ctx, t.c)
		if err == nil && !ok {
			err = errNoJSON
		}
		if err != nil {
			t.c.Close()
			return err
		}
	}
	return nil
}

func (t *SinkTask) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (t *SinkTask) Close(context.Context, []connect.TopicPartition) error { return nil }

// recordError names the record a write failed for.
func recordError(r *connect.SinkRecord, format string, args ...any) error {
	return fmt.Errorf("record at topic %s partition %d offset %d: %s", r.Topic, r.KafkaPartition, r.KafkaOffset, fmt.Sprintf(format, args...))
}

// Put writes the records in one pipeline and returns once Redis executed
// every command.
func (t *SinkTask) Put(ctx context.Context, records []connect.SinkRecord) error {
	if len(records) == 0 {
		return nil
	}
	var pipe redis.Pipeliner
	if t.s.multiExec {
		pipe = t.c.TxPipeline()
	} else {
		pipe = t.c.Pipeline()
	}
	// owner[i] is the record index of the i-th queued command.
	owner := make([]int32, 0, len(records))
	t.json = t.json[:0]
	// A record that cannot be written (no key, a value its command cannot
	// take) goes to the dead letter queue when tolerated
	// (connect.ErrantRecordReporter); add queues nothing for it.
	rep, _ := t.tc.(connect.ErrantRecordReporter)
	for i := range records {
		n0 := pipe.Len()
		if err := t.add(ctx, pipe, &records[i]); err != nil {
			if rep == nil {
				return err
			}
			if rerr := rep.Report(&records[i], err); rerr != nil {
				return rerr
			}
			continue
		}
		for j := n0; j < pipe.Len(); j++ {
			owner = append(owner, int32(i))
		}
	}
	if pipe.Len() == 0 {
		return nil
	}
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for i, c := range cmds {
		if c.Err() == nil {
			continue
		}
		var re redis.Error
		if !errors.As(c.Err(), &re) {
			break // a connection error: the whole batch
		}
		if i >= len(owner) {
			return fmt.Errorf("redis pipeline: %v", c.Err())
		}
		cause := recordError(&records[owner[i]], "%s failed: %v", strings.ToUpper(c.Name()), c.Err())
		if rep == nil || t.s.multiExec {
			return cause // in MULTI/EXEC the others were not applied either
		}
		if rerr := rep.Report(&records[owner[i]], cause); rerr != nil {
			return rerr
		}
	}
	if rep != nil && !t.s.multiExec && onlyCommandErrors(cmds) {
		return nil // every failed command's record was reported
	}
	if isAuthError(err) {
		return errors.New(describeConnError(t.s.conn.opts.Addr, err))
	}
	return fmt.Errorf("%w: writing %d records to Redis: %v", connect.ErrRetriable, len(records), err)
}

// onlyCommandErrors reports whether every failed command failed with a
// Redis error reply (not a connection error).
func onlyCommandErrors(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		var re redis.Error
		if c.Err() != nil && !errors.As(c.Err(), &re) {
			return false
		}
	}
	return true
}

// add queues the commands of one record.
func (t *SinkTask) add(ctx context.Context, pipe redis.Pipeliner, r *connect.SinkRecord) error {
	val := r.Value
	if env, ok := t.events.Of(val); ok {
		switch env.Op {
		case "c", "r", "u":
			if env.After == nil {
				return recordError(r, "a CDC event with op %q has no \"after\" row", env.Op)
			}
			val = env.After
		case "d":
			val = nil
		case "t":
			return nil
		default:
			return recordError(r, "a CDC event has op %q, which is none of c, r, u, d, t", env.Op)
		}
	}
	if t.s.command == cmdXADD {
		if val == nil {
			return nil // streams are append-only: deletes are not mirrored
		}
		stream := t.keyspace(r.Topic)
		args := &redis.XAddArgs{Stream: stream, ID: "*", Values: t.fields(val, true)}
		pipe.XAdd(ctx, args)
		if t.s.ttl > 0 {
			pipe.Expire(ctx, stream, t.s.ttl)
		}
		return nil
	}
	if r.Key == nil {
		return recordError(r, "it has no key, and redis.command=%s writes each record at <redis.keyspace>%s<record key>: give the records keys (e.g. a ValueToKey transform, or a CDC source's primary key), or use redis.command=XADD", t.s.command, t.s.sep)
	}
	key, err := t.key(r)
	if err != nil {
		return err
	}
	if val == nil {
		pipe.Del(ctx, key)
		return nil
	}
	switch t.s.command {
	case cmdSET:
		var v any
		switch x := val.(type) {
		case string:
			v = x
		case []byte:
			v = x
		default:
			b, err := t.appendJSONArena(val)
			if err != nil {
				return recordError(r, "value: %v", err)
			}
			v = b
		}
		pipe.Set(ctx, key, v, t.s.ttl)
		return nil
	case cmdHSET:
		switch val.(type) {
		case *connect.Struct, map[string]any, map[any]any:
		default:
			return recordError(r, "the value is a %T, but redis.command=HSET writes struct values (or JSON objects) as hashes: use redis.command=SET for single values", val)
		}
		fields := t.fields(val, false)
		pipe.Del(ctx, key)
		if len(fields) > 0 {
			pipe.HSet(ctx, key, fields...)
			if t.s.ttl > 0 {
				pipe.Expire(ctx, key, t.s.ttl)
			}
		}
		return nil
	case cmdJSONSET:
		b, err := t.appendJSONArena(val)
		if err != nil {
			return recordError(r, "value: %v", err)
		}
		pipe.Do(ctx, "JSON.SET", key, "$", b)
		if t.s.ttl > 0 {
			pipe.Expire(ctx, key, t.s.ttl)
		}
		return nil
	}
	return fmt.Errorf("unknown redis.command %s", t.s.command)
}

// appendJSONArena renders val as JSON into the Put's arena and returns its
// bytes (valid until the next Put: an arena that grows leaves earlier
// slices on the old array).
func (t *SinkTask) appendJSONArena(val any) ([]byte, error) {
	n0 := len(t.json)
	b, err := appendJSON(t.json, val)
	if err != nil {
		t.json = t.json[:n0]
		return nil, err
	}
	t.json = b
	return b[n0:len(b):len(b)], nil
}

func (t *SinkTask) keyspace(topic string) string {
	if p, ok := t.ks[topic]; ok {
		return p
	}
	p := strings.ReplaceAll(t.s.keyspace, "${topic}", topic)
	t.ks[topic] = p
	return p
}

// key renders <keyspace><separator><record key>.
func (t *SinkTask) key(r *connect.SinkRecord) (string, error) {
	b := t.buf[:0]
	if ks := t.keyspace(r.Topic); ks != "" {
		b = append(b, ks...)
		b = append(b, t.s.sep...)
	}
	n0 := len(b)
	var err error
	switch k := r.Key.(type) {
	case *connect.Struct:
		for i, f := range k.Schema().Fields {
			if i > 0 {
				b = append(b, t.s.sep...)
			}
			if b, err = appendTextS(b, k.GetByIndex(i), f.Schema); err != nil {
				return "", recordError(r, "key field %s: %v", f.Name, err)
			}
		}
	case map[string]any:
		names := make([]string, 0, len(k))
		for n := range k {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if i > 0 {
				b = append(b, t.s.sep...)
			}
			if b, err = appendText(b, k[n]); err != nil {
				return "", recordError(r, "key field %s: %v", n, err)
			}
		}
	default:
		if b, err = appendText(b, k); err != nil {
			return "", recordError(r, "key: %v", err)
		}
	}
	if len(b) == n0 {
		return "", recordError(r, "its key is empty: a Redis key needs a non-empty record key")
	}
	t.buf = b
	return string(b), nil
}

// fields renders a value as field/value pairs for HSET and XADD; null
// fields are left out. A non-object value (XADD only) is one field "value".
func (t *SinkTask) fields(val any, single bool) []any {
	var out []any
	add := func(name string, v any, s *connect.Schema) {
		if v == nil {
			return
		}
		switch x := v.(type) {
		case string:
			out = append(out, name, x)
		case []byte:
			out = append(out, name, x)
		default:
			b, err := appendTextS(nil, v, s)
			if err != nil {
				b, _ = appendJSON(nil, v)
			}
			out = append(out, name, b)
		}
	}
	switch v := val.(type) {
	case *connect.Struct:
		for i, f := range v.Schema().Fields {
			add(f.Name, v.GetByIndex(i), f.Schema)
		}
	case map[string]any:
		names := make([]string, 0, len(v))
		for n := range v {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			add(n, v[n], nil)
		}
	case map[any]any:
		for k, x := range v {
			kb, _ := appendText(nil, k)
			add(string(kb), x, nil)
		}
	default:
		if single {
			add("value", v, nil)
		}
	}
	return out
}

// appendTextS renders a scalar of schema s (nil: schemaless) as text:
// strings as is, numbers in decimal, Date as 2006-01-02, Time as
// 15:04:05.000, Timestamp as RFC 3339 in UTC with milliseconds; arrays,
// maps and structs as JSON.
func appendTextS(b []byte, v any, s *connect.Schema) ([]byte, error) {
	if t, ok := v.(time.Time); ok && s != nil {
		switch s.Name {
		case connect.DateName:
			return t.UTC().AppendFormat(b, "2006-01-02"), nil
		case connect.TimeName:
			return t.UTC().AppendFormat(b, "15:04:05.000"), nil
		}
	}
	return appendText(b, v)
}

// appendText is appendTextS without a schema (time values as timestamps).
func appendText(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return b, errors.New("is null")
	case string:
		return append(b, x...), nil
	case []byte:
		return append(b, x...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float32:
		return strconv.AppendFloat(b, float64(x), 'g', -1, 32), nil
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case connect.Decimal:
		return append(b, x.String()...), nil
	case time.Time:
		return appendTime(b, x), nil
	}
	return appendJSON(b, v)
}

func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
}

// appendJSON renders a Connect value as JSON: structs as objects in field
// order, maps as objects (keys as text), bytes as base64 (as Kafka's
// JsonConverter does), Decimal as a number, time values as appendText's
// strings. NaN and infinities are not JSON: they are an error.
func appendJSON(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x), nil
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"'), nil
	case bool, int8, int16, int32, int64, int:
		return appendText(b, x)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return b, fmt.Errorf("%v is not a JSON number", x)
		}
		return appendText(b, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, fmt.Errorf("%v is not a JSON number", x)
		}
		return appendText(b, x)
	case connect.Decimal:
		return append(b, x.String()...), nil
	case time.Time:
		b = append(b, '"')
		b = appendTime(b, x)
		return append(b, '"'), nil
	case *connect.Struct:
		b = append(b, '{')
		for i, f := range x.Schema().Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.Name)
			b = append(b, ':')
			fv := x.GetByIndex(i)
			if t, ok := fv.(time.Time); ok && (f.Schema.Name == connect.DateName || f.Schema.Name == connect.TimeName) {
				b = append(b, '"')
				b, _ = appendTextS(b, t, f.Schema)
				b = append(b, '"')
				continue
			}
			if b, err = appendJSON(b, fv); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case map[string]any:
		names := make([]string, 0, len(x))
		for n := range x {
			names = append(names, n)
		}
		sort.Strings(names)
		b = append(b, '{')
		for i, n := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, n)
			b = append(b, ':')
			if b, err = appendJSON(b, x[n]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			kb, err := appendText(nil, k)
			if err != nil {
				return b, fmt.Errorf("map key: %v", err)
			}
			m[string(kb)] = e
		}
		return appendJSON(b, m)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	return b, fmt.Errorf("cannot render a %T as JSON", v)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Flush has nothing to do: every Put was executed by Redis before it
// returned.
func (t *SinkTask) Flush(context.Context, map[connect.TopicPartition]int64) error { return nil }

// Stop closes the connections.
func (t *SinkTask) Stop(context.Context) error {
	if t.c != nil {
		t.c.Close()
		t.c = nil
	}
	return nil
}
