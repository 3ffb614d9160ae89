package redis

// RedisSource: records from Redis streams (through a consumer group) or
// pub/sub channels.
//
// Stream records (redis.mode=stream, the default):
//
//	topic      the topic key with ${stream} replaced by the stream's name
//	           (default "${stream}": the topic is the stream's name)
//	key        STRING: the value of the entry field redis.stream.key.field
//	           when set (null when the entry lacks it), else the entry id
//	value      STRUCT named io.tributary.connect.redis.StreamEntry, one
//	           optional STRING field per entry field, sorted by name
//	timestamp  the id's milliseconds part
//	headers    redis.stream (the stream's name), redis.stream.id (the id)
//
// Source partition and offset (format version 1):
//
//	partition  {"stream": "<stream name>"}
//	offset     {"v": 1, "id": "<entry id>", "seq": <int64>}
//
// id is the last entry of the stream whose record the broker acknowledged
// (it is XACKed right after, in Commit); seq numbers deliveries within one
// task run and tells Commit which in-flight entries to XACK (entries can be
// delivered out of id order: claimed ones are older). The offset is
// informational: at start the task does not seek to it. The consumer
// group's pending entries list is the truth: a task reads its own pending
// entries (XREADGROUP from 0) before new ones (>), and claims those of
// other consumers idle for longer than redis.stream.claim.min.idle.ms
// (XAUTOCLAIM). So nothing read is lost before it was acknowledged, and an
// entry may be delivered twice (at-least-once).
//
// Pub/sub records (redis.mode=pubsub, at-most-once, see the package doc):
// topic = the topic key with ${channel} replaced (default "${channel}"),
// key = the channel (STRING), value = the payload (STRING), no offsets.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/connect"
)

// Source config keys.
const (
	keyMode          = "redis.mode"
	keyStreams       = "redis.stream.name"
	keyStreamOffset  = "redis.stream.offset"
	keyGroup         = "redis.stream.consumer.group"
	keyConsumer      = "redis.stream.consumer.name"
	keyBlock         = "redis.stream.block"
	keyCount         = "redis.stream.count"
	keyDelivery      = "redis.stream.delivery"
	keyKeyField      = "redis.stream.key.field"
	keyClaimMinIdle  = "redis.stream.claim.min.idle.ms"
	keyChannels      = "redis.channels"
	keyPatterns      = "redis.patterns"
	keyTopic         = "topic"
	modeStream       = "stream"
	modePubSub       = "pubsub"
	entrySchemaName  = "io.tributary.connect.redis.StreamEntry"
	headerStream     = "redis.stream"
	headerStreamID   = "redis.stream.id"
	offsetVersion    = int64(1)
	partitionStream  = "stream"
	offsetID         = "id"
	offsetSeq        = "seq"
	offsetVersionKey = "v"
)

func sourceConfigDef() *connect.ConfigDef {
	const src, streams, pubsub = "Source", "Streams", "Pub/Sub"
	return defineConnection(connect.NewConfigDef()).
		Define(connect.ConfigKey{Name: keyMode, Type: connect.TypeString, Default: modeStream, Importance: connect.High, Group: src, OrderInGroup: 1,
			Validator: connect.OneOfIgnoreCase(modeStream, modePubSub),
			Doc:       "stream: read streams (redis.stream.name) through a consumer group, at-least-once: entries are XACKed only after the broker acknowledged their records. pubsub: subscribe to redis.channels and redis.patterns, AT-MOST-ONCE: messages published while the task is not subscribed, or not yet acknowledged by the broker when the task stops or crashes, are lost."}).
		Define(connect.ConfigKey{Name: keyTopic, Type: connect.TypeString, Importance: connect.High, Group: src, OrderInGroup: 2,
			Doc: "The topic records go to. ${stream} (stream mode) or ${channel} (pubsub mode) is replaced by the stream or channel name. Default: the stream's or channel's name."}).
		Define(connect.ConfigKey{Name: keyStreams, Type: connect.TypeList, Default: "", Importance: connect.High, Group: streams, OrderInGroup: 1,
			Doc: "The streams to read (comma-separated). Required in stream mode."}).
		Define(connect.ConfigKey{Name: keyStreamOffset, Type: connect.TypeString, Default: "0-0", Importance: connect.Medium, Group: streams, OrderInGroup: 2,
			Validator: connect.ValidatorFunc("0-0, $ or a stream id", func(_ string, v any) error {
				s, _ := v.(string)
				if s == "$" || validID(s) {
					return nil
				}
				return errors.New("must be 0-0 (the whole stream), $ (new entries only) or an entry id like 1700000000000-0")
			}),
			Doc: "Where a new consumer group starts reading when it is created (XGROUP CREATE ... MKSTREAM): 0-0 from the first entry, $ new entries only. An existing group keeps its position."}).
		Define(connect.ConfigKey{Name: keyGroup, Type: connect.TypeString, Importance: connect.High, Group: streams, OrderInGroup: 3,
			Doc: "The consumer group. Default: the connector's name."}).
		Define(connect.ConfigKey{Name: keyConsumer, Type: connect.TypeString, Default: "consumer-${task}", Importance: connect.Medium, Group: streams, OrderInGroup: 4,
			Doc: "The consumer name of each task; ${task} is replaced by the task's number. Names must differ between tasks."}).
		Define(connect.ConfigKey{Name: keyBlock, Type: connect.TypeLong, Default: "100", Importance: connect.Low, Group: streams, OrderInGroup: 5,
			Validator: connect.Range(int64(1), int64(1000)), Doc: "How long one read waits for new entries, in milliseconds (at most 1000)."}).
		Define(connect.ConfigKey{Name: keyCount, Type: connect.TypeLong, Default: "500", Importance: connect.Low, Group: streams, OrderInGroup: 6,
			Validator: connect.AtLeast(int64(1)), Doc: "The most entries read per stream and poll."}).
		Define(connect.ConfigKey{Name: keyDelivery, Type: connect.TypeString, Default: "at-least-once", Importance: connect.Low, Group: streams, OrderInGroup: 7,
			Validator: connect.OneOfIgnoreCase("at-least-once"),
			Doc:       "Accepted for compatibility; only at-least-once is supported (entries are acknowledged after the broker acknowledged their records)."}).
		Define(connect.ConfigKey{Name: keyKeyField, Type: connect.TypeString, Importance: connect.Medium, Group: streams, OrderInGroup: 8,
			Doc: "The entry field whose value becomes the record key. Default: the key is the entry id."}).
		Define(connect.ConfigKey{Name: keyClaimMinIdle, Type: connect.TypeLong, Default: "30000", Importance: connect.Medium, Group: streams, OrderInGroup: 9,
			Validator: connect.AtLeast(int64(1)),
			Doc:       "Entries another consumer of the group read but did not acknowledge for this long (ms) are claimed (XAUTOCLAIM) and delivered again: that consumer's task died. Keep it well above the worker's offset commit interval."}).
		Define(connect.ConfigKey{Name: keyChannels, Type: connect.TypeList, Default: "", Importance: connect.High, Group: pubsub, OrderInGroup: 1,
			Doc: "Pub/sub channels to subscribe to (pubsub mode). At-most-once."}).
		Define(connect.ConfigKey{Name: keyPatterns, Type: connect.TypeList, Default: "", Importance: connect.High, Group: pubsub, OrderInGroup: 2,
			Doc: "Pub/sub channel patterns to subscribe to (PSUBSCRIBE, pubsub mode). At-most-once."})
}

func validID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	if _, err := strconv.ParseUint(ms, 10, 64); err != nil {
		return false
	}
	if ok {
		if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
			return false
		}
	}
	return true
}

type sourceSettings struct {
	conn      connSettings
	mode      string
	topic     string
	streams   []string
	start     string
	group     string
	consumer  string
	block     time.Duration
	count     int64
	keyField  string
	minIdle   time.Duration
	channels  []string
	patterns  []string
	connector string
}

func parseSource(config map[string]string) (*sourceSettings, map[string][]string) {
	def := sourceConfigDef()
	c, errs := def.Parse(config)
	if errs == nil {
		errs = map[string][]string{}
	}
	rejectUnknown(def, config, errs)
	if len(errs) > 0 {
		return nil, errs
	}
	s := &sourceSettings{
		conn: parseConnection(c, errs), mode: strings.ToLower(c.String(keyMode)), topic: c.String(keyTopic),
		streams: c.List(keyStreams), start: c.String(keyStreamOffset), group: c.String(keyGroup),
		consumer: c.String(keyConsumer), block: time.Duration(c.Long(keyBlock)) * time.Millisecond,
		count: c.Long(keyCount), keyField: c.String(keyKeyField),
		minIdle:  time.Duration(c.Long(keyClaimMinIdle)) * time.Millisecond,
		channels: c.List(keyChannels), patterns: c.List(keyPatterns), connector: config["name"],
	}
	if s.group == "" {
		s.group = s.connector
	}
	if s.group == "" {
		s.group = "tributary-redis-source"
	}
	switch s.mode {
	case modeStream:
		if len(s.streams) == 0 {
			errs[keyStreams] = append(errs[keyStreams], "redis.mode=stream needs the streams to read: set redis.stream.name")
		}
		if len(s.channels)+len(s.patterns) > 0 {
			errs[keyMode] = append(errs[keyMode], "redis.channels/redis.patterns are set but redis.mode=stream: set redis.mode=pubsub, or remove them")
		}
		if strings.Contains(s.topic, "${channel}") {
			errs[keyTopic] = append(errs[keyTopic], "${channel} is for pubsub mode: use ${stream}")
		}
		if strings.TrimSpace(s.consumer) == "" {
			errs[keyConsumer] = append(errs[keyConsumer], "must not be empty")
		}
	case modePubSub:
		if len(s.channels)+len(s.patterns) == 0 {
			errs[keyChannels] = append(errs[keyChannels], "redis.mode=pubsub needs redis.channels or redis.patterns")
		}
		if len(s.streams) > 0 {
			errs[keyStreams] = append(errs[keyStreams], "redis.stream.name is set but redis.mode=pubsub: set redis.mode=stream, or remove it")
		}
		if strings.Contains(s.topic, "${stream}") {
			errs[keyTopic] = append(errs[keyTopic], "${stream} is for stream mode: use ${channel}")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// Source is the Redis source connector.
type Source struct {
	config map[string]string
	mode   string
}

// NewSource returns a Redis source connector.
func NewSource() connect.Connector { return &Source{} }

func (s *Source) Version() string               { return version }
func (s *Source) ConfigDef() *connect.ConfigDef { return sourceConfigDef() }

// Validate checks the rules across keys and that the server answers (within
// 10 s) with the given credentials.
func (s *Source) Validate(ctx context.Context, config map[string]string) (map[string][]string, error) {
	st, errs := parseSource(config)
	if len(errs) > 0 {
		return errs, nil
	}
	return st.conn.check(ctx), nil
}

func (s *Source) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	st, errs := parseSource(config)
	if len(errs) > 0 {
		return fmt.Errorf("redis source config: %v", errs)
	}
	s.config, s.mode = config, st.mode
	return nil
}

// TaskConfigs gives stream mode maxTasks tasks, consumers of one group with
// distinct names (the group spreads entries over them); pubsub mode gets
// one task, since every subscriber receives every message.
func (s *Source) TaskConfigs(_ context.Context, maxTasks int) ([]map[string]string, error) {
	n := maxTasks
	if s.mode == modePubSub || n < 1 {
		n = 1
	}
	consumer := s.config[keyConsumer]
	if consumer == "" {
		consumer = "consumer-${task}"
	}
	out := make([]map[string]string, 0, n)
	for i := 0; i < n; i++ {
		c := maps.Clone(s.config)
		name := strings.ReplaceAll(consumer, "${task}", strconv.Itoa(i))
		if n > 1 && name == consumer {
			name = fmt.Sprintf("%s-%d", consumer, i)
		}
		c[keyConsumer] = name
		out = append(out, c)
	}
	return out, nil
}

func (s *Source) Stop(context.Context) error { return nil }

// NewTask returns a new source task.
func (s *Source) NewTask() connect.SourceTask { return &SourceTask{} }

// inflight is an entry delivered but not acknowledged yet.
type inflight struct {
	seq int64
	id  string
}

// streamState is one stream's reading state.
type streamState struct {
	name      string
	partition map[string]any
	history   string // next id of our own pending entries to re-read; "" when done
	cursor    string // XAUTOCLAIM scan position
	pending   []inflight
	ids       map[string]bool // ids in pending
}

// SourceTask reads one consumer's share of the streams, or the pub/sub
// messages. Its methods are not called concurrently (connect.SourceTask).
type SourceTask struct {
	s         *sourceSettings
	c         *redis.Client
	streams   []*streamState
	byName    map[string]*streamState
	seq       int64
	lastClaim time.Time
	schemas   map[string]*connect.Schema // by sorted field names

	ps   *redis.PubSub
	msgs <-chan *redis.Message

	stop sync.Once
}

func (t *SourceTask) Start(ctx context.Context, _ connect.SourceTaskContext, config map[string]string) error {
	st, errs := parseSource(config)
	if len(errs) > 0 {
		return fmt.Errorf("redis source config: %v", errs)
	}
	t.s, t.c = st, st.conn.client()
	t.schemas = map[string]*connect.Schema{}
	if st.mode == modePubSub {
		return t.subscribe(ctx)
	}
	t.byName = map[string]*streamState{}
	for _, name := range st.streams {
		if t.byName[name] != nil {
			continue
		}
		err := t.c.XGroupCreateMkStream(ctx, name, st.group, st.start).Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			t.c.Close()
			return fmt.Errorf("creating consumer group %s of stream %s: %w", st.group, name, t.retriable(err))
		}
		ss := &streamState{name: name, partition: map[string]any{partitionStream: name}, history: "0", cursor: "0-0", ids: map[string]bool{}}
		t.streams = append(t.streams, ss)
		t.byName[name] = ss
	}
	return nil
}

func (t *SourceTask) subscribe(ctx context.Context) error {
	var n int
	t.ps = t.c.Subscribe(ctx)
	if len(t.s.channels) > 0 {
		if err := t.ps.Subscribe(ctx, t.s.channels...); err != nil {
			return fmt.Errorf("SUBSCRIBE %v: %w", t.s.channels, t.retriable(err))
		}
		n += len(t.s.channels)
	}
	if len(t.s.patterns) > 0 {
		if err := t.ps.PSubscribe(ctx, t.s.patterns...); err != nil {
			return fmt.Errorf("PSUBSCRIBE %v: %w", t.s.patterns, t.retriable(err))
		}
		n += len(t.s.patterns)
	}
	// Wait for the server's confirmations: messages published after Start
	// returns are then received.
	for i := 0; i < n; i++ {
		m, err := t.ps.ReceiveTimeout(ctx, 10*time.Second)
		if err != nil {
			t.ps.Close()
			t.c.Close()
			return fmt.Errorf("subscribing: %w", t.retriable(err))
		}
		if _, ok := m.(*redis.Subscription); !ok {
			i-- // a message already: not expected before the confirmations, keep waiting
		}
	}
	t.msgs = t.ps.Channel(redis.WithChannelSize(10000))
	return nil
}

// retriable marks connection errors as retriable; Redis' own error
// replies are not.
func (t *SourceTask) retriable(err error) error {
	var re redis.Error
	if err == nil || errors.As(err, &re) && !isAuthError(err) {
		return err
	}
	if isAuthError(err) {
		return fmt.Errorf("%s", describeConnError(t.s.conn.opts.Addr, err))
	}
	return fmt.Errorf("%w: %v", connect.ErrRetriable, err)
}

// Poll returns entries claimed from dead consumers, then this consumer's
// own pending entries (after a restart), then new entries, waiting at most
// redis.stream.block for them.
func (t *SourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	if t.ps != nil {
		return t.pollPubSub(ctx)
	}
	var recs []connect.SourceRecord
	if time.Since(t.lastClaim) >= t.claimInterval() {
		t.lastClaim = time.Now()
		for _, ss := range t.streams {
			msgs, next, err := t.c.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: ss.name, Group: t.s.group, Consumer: t.s.consumer,
				MinIdle: t.s.minIdle, Start: ss.cursor, Count: t.s.count}).Result()
			if err != nil {
				return nil, fmt.Errorf("XAUTOCLAIM %s: %w", ss.name, t.retriable(err))
			}
			ss.cursor = next
			for _, m := range msgs {
				if !ss.ids[m.ID] { // ours in flight: already delivered
					recs = t.appendEntry(recs, ss, m)
				}
			}
		}
	}
	// Own pending entries first (a previous run of this consumer read them).
	var hist []string
	var histStreams []*streamState
	for _, ss := range t.streams {
		if ss.history != "" {
			hist = append(hist, ss.name)
			histStreams = append(histStreams, ss)
		}
	}
	if len(hist) > 0 {
		for _, ss := range histStreams {
			hist = append(hist, ss.history)
		}
		res, err := t.c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: t.s.group, Consumer: t.s.consumer, Streams: hist, Count: t.s.count, Block: -1}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("XREADGROUP: %w", t.retriable(err))
		}
		got := map[string][]redis.XMessage{}
		for _, r := range res {
			got[r.Stream] = r.Messages
		}
		for _, ss := range histStreams {
			msgs := got[ss.name]
			if len(msgs) == 0 {
				ss.history = ""
				continue
			}
			ss.history = msgs[len(msgs)-1].ID
			for _, m := range msgs {
				if !ss.ids[m.ID] {
					recs = t.appendEntry(recs, ss, m)
				}
			}
		}
		if len(recs) > 0 {
			return t.finish(recs), nil
		}
	}
	block := t.s.block
	if len(recs) > 0 {
		block = -1
	}
	args := make([]string, 0, 2*len(t.streams))
	for _, ss := range t.streams {
		args = append(args, ss.name)
	}
	for range t.streams {
		args = append(args, ">")
	}
	res, err := t.c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: t.s.group, Consumer: t.s.consumer, Streams: args, Count: t.s.count, Block: block}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		if ctx.Err() != nil {
			return t.finish(recs), nil // stopping: what was claimed stays pending, claimed again later
		}
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, fmt.Errorf("XREADGROUP: %v: the stream or its consumer group %s was deleted while the task ran; restart the task to create them again", err, t.s.group)
		}
		return nil, fmt.Errorf("XREADGROUP: %w", t.retriable(err))
	}
	for _, r := range res {
		ss := t.byName[r.Stream]
		if ss == nil {
			continue
		}
		for _, m := range r.Messages {
			recs = t.appendEntry(recs, ss, m)
		}
	}
	return t.finish(recs), nil
}

func (t *SourceTask) claimInterval() time.Duration {
	d := t.s.minIdle / 2
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	return d
}

// appendEntry turns an entry into a record and marks it in flight.
func (t *SourceTask) appendEntry(recs []connect.SourceRecord, ss *streamState, m redis.XMessage) []connect.SourceRecord {
	t.seq++
	ss.pending = append(ss.pending, inflight{seq: t.seq, id: m.ID})
	ss.ids[m.ID] = true
	names := make([]string, 0, len(m.Values))
	for k := range m.Values {
		names = append(names, k)
	}
	sort.Strings(names)
	sig := strings.Join(names, "\x00")
	schema := t.schemas[sig]
	if schema == nil {
		fields := make([]connect.Field, len(names))
		for i, n := range names {
			fields[i] = connect.F(n, connect.OptionalStringSchema)
		}
		schema = connect.StructOf(entrySchemaName, fields...)
		t.schemas[sig] = schema
	}
	val := connect.NewStruct(schema)
	for _, n := range names {
		val.MustPut(n, fmt.Sprint(m.Values[n]))
	}
	var key any = m.ID
	if t.s.keyField != "" {
		key = nil
		if v, ok := m.Values[t.s.keyField]; ok {
			key = fmt.Sprint(v)
		}
	}
	topic := t.s.topic
	if topic == "" {
		topic = ss.name
	} else {
		topic = strings.ReplaceAll(topic, "${stream}", ss.name)
	}
	var ts time.Time
	if ms, _, _ := strings.Cut(m.ID, "-"); ms != "" {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			ts = time.UnixMilli(n)
		}
	}
	return append(recs, connect.SourceRecord{
		Record: connect.Record{Topic: topic, KeySchema: connect.OptionalStringSchema, Key: key, ValueSchema: schema, Value: val, Timestamp: ts,
			Headers: []connect.Header{{Key: headerStream, Schema: connect.StringSchema, Value: ss.name}, {Key: headerStreamID, Schema: connect.StringSchema, Value: m.ID}}},
		SourcePartition: ss.partition,
	})
}

// finish gives the last record of each stream its offset.
func (t *SourceTask) finish(recs []connect.SourceRecord) []connect.SourceRecord {
	seen := map[string]bool{}
	for i := len(recs) - 1; i >= 0 && len(seen) < len(t.streams); i-- {
		name := recs[i].SourcePartition[partitionStream].(string)
		if seen[name] {
			continue
		}
		seen[name] = true
		ss := t.byName[name]
		// The record's position in its stream's in-flight list: records of
		// one stream are appended in delivery order, so count back.
		n := 0
		for j := len(recs) - 1; j > i; j-- {
			if recs[j].SourcePartition[partitionStream] == name {
				n++
			}
		}
		p := ss.pending[len(ss.pending)-1-n]
		recs[i].SourceOffset = map[string]any{offsetVersionKey: offsetVersion, offsetID: p.id, offsetSeq: p.seq}
	}
	return recs
}

// Commit XACKs the entries of every stream delivered up to the committed
// offset's seq: the broker acknowledged their records and the worker
// stored the offsets.
func (t *SourceTask) Commit(ctx context.Context, committed []connect.PartitionOffset) error {
	if t.ps != nil {
		return nil
	}
	for _, po := range committed {
		name, _ := po.Partition[partitionStream].(string)
		ss := t.byName[name]
		if ss == nil || len(ss.pending) == 0 {
			continue
		}
		seq, ok := asInt64(po.Offset[offsetSeq])
		if !ok {
			continue
		}
		n := sort.Search(len(ss.pending), func(i int) bool { return ss.pending[i].seq > seq })
		if n == 0 {
			continue
		}
		ids := make([]string, n)
		for i, p := range ss.pending[:n] {
			ids[i] = p.id
		}
		const chunk = 1000
		pipe := t.c.Pipeline()
		for i := 0; i < len(ids); i += chunk {
			pipe.XAck(ctx, ss.name, t.s.group, ids[i:min(i+chunk, len(ids))]...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("XACK %s: %w", ss.name, t.retriable(err))
		}
		for _, id := range ids {
			delete(ss.ids, id)
		}
		ss.pending = append(ss.pending[:0], ss.pending[n:]...)
	}
	return nil
}

func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), true
	case interface{ Int64() (int64, error) }: // json.Number
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// pollPubSub returns the messages received, waiting up to a second for the
// first one.
func (t *SourceTask) pollPubSub(ctx context.Context) ([]connect.SourceRecord, error) {
	var recs []connect.SourceRecord
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	add := func(m *redis.Message) {
		topic := t.s.topic
		if topic == "" {
			topic = m.Channel
		} else {
			topic = strings.ReplaceAll(topic, "${channel}", m.Channel)
		}
		recs = append(recs, connect.SourceRecord{Record: connect.Record{Topic: topic, KeySchema: connect.StringSchema, Key: m.Channel,
			ValueSchema: connect.StringSchema, Value: m.Payload, Timestamp: time.Now()}})
	}
	select {
	case <-ctx.Done():
		return nil, nil
	case <-timer.C:
		return nil, nil
	case m, ok := <-t.msgs:
		if !ok {
			return nil, fmt.Errorf("%w: the pub/sub connection closed", connect.ErrRetriable)
		}
		add(m)
	}
	for len(recs) < int(t.s.count) {
		select {
		case m, ok := <-t.msgs:
			if !ok {
				return recs, nil
			}
			add(m)
		default:
			return recs, nil
		}
	}
	return recs, nil
}

// Stop closes the connections. Entries delivered but not committed stay
// pending in the group: this consumer reads them again when it restarts,
// or another claims them.
func (t *SourceTask) Stop(context.Context) error {
	t.stop.Do(func() {
		if t.ps != nil {
			t.ps.Close()
		}
		if t.c != nil {
			t.c.Close()
		}
	})
	return nil
}
