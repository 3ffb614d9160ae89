package topics

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-data/tributary/broker/commitlog"
)

// ErrInvalidConfig is wrapped by every topic-config validation error
// (Kafka's INVALID_CONFIG).
var ErrInvalidConfig = errors.New("invalid topic config")

// ValueType is the type of a topic config value, as DescribeConfigs v3+ reports it.
type ValueType int8

// Value types (numbered as kmsg.ConfigType).
const (
	TypeBoolean ValueType = 1
	TypeString  ValueType = 2
	TypeInt     ValueType = 3
	TypeLong    ValueType = 5
	TypeList    ValueType = 7
)

// Def describes one topic-level config key: its Kafka name, the broker-level
// key that supplies its default, its type, validation and documentation.
type Def struct {
	Name      string
	BrokerKey string // broker config key that sets the default (log.retention.ms ...)
	Type      ValueType
	Default   string
	Doc       string
	// NoEffect marks keys accepted for compatibility that change nothing on a
	// single node (documented as such in Doc).
	NoEffect bool
	Validate func(v string) error
}

func validLong(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func validOneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

func validCleanupPolicy(v string) error {
	for _, p := range splitList(v) {
		if p != "delete" && p != "compact" {
			return fmt.Errorf("%q: each policy must be delete or compact", v)
		}
	}
	if len(splitList(v)) == 0 {
		return fmt.Errorf("empty cleanup.policy: use delete, compact or compact,delete")
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Defs lists every topic config key the broker accepts, sorted by name.
var defs = []Def{
	{Name: "cleanup.policy", BrokerKey: "log.cleanup.policy", Type: TypeList, Default: "delete", Validate: validCleanupPolicy,
		Doc: "delete: remove old segments by retention.ms/retention.bytes; compact: keep the latest record per key; both: compact,delete."},
	{Name: "compression.type", BrokerKey: "compression.type", Type: TypeString, Default: "producer", Validate: validOneOf("producer"),
		Doc: "Batches are stored as the producer compressed them; only 'producer' is supported."},
	{Name: "delete.retention.ms", BrokerKey: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000", Validate: validLong(0),
		Doc: "How long a tombstone survives compaction on a compacted topic."},
	{Name: "flush.ms", BrokerKey: "log.flush.interval.ms", Type: TypeLong, Default: "0", Validate: validLong(0),
		Doc: "Longest time data acknowledged with acks=0/1 may stay unsynced; 0 syncs continuously (group commit). acks=all always waits for fsync."},
	{Name: "index.interval.bytes", BrokerKey: "log.index.interval.bytes", Type: TypeInt, Default: "4096", Validate: validLong(0),
		Doc: "Bytes of log between two entries of the sparse offset index."},
	{Name: "max.message.bytes", BrokerKey: "message.max.bytes", Type: TypeInt, Default: "1048588", Validate: validLong(0),
		Doc: "Largest record batch accepted (MESSAGE_TOO_LARGE above it)."},
	{Name: "message.timestamp.type", BrokerKey: "log.message.timestamp.type", Type: TypeString, Default: "CreateTime", Validate: validOneOf("CreateTime", "LogAppendTime"),
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock."},
	{Name: "min.compaction.lag.ms", BrokerKey: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0", Validate: validLong(0),
		Doc: "Minimum age of a record before compaction may remove it."},
	{Name: "min.insync.replicas", BrokerKey: "min.insync.replicas", Type: TypeInt, Default: "1", Validate: validOneOf("1"), NoEffect: true,
		Doc: "Accepted for compatibility; a single node is the only replica, so it must be 1."},
	{Name: "retention.bytes", BrokerKey: "log.retention.bytes", Type: TypeLong, Default: "-1", Validate: validLong(-1),
		Doc: "Size above which the oldest segments of a partition are deleted; -1 means no limit."},
	{Name: "retention.ms", BrokerKey: "log.retention.ms", Type: TypeLong, Default: "604800000", Validate: validLong(-1),
		Doc: "Age after which a closed segment is deleted; -1 means no limit."},
	{Name: "segment.bytes", BrokerKey: "log.segment.bytes", Type: TypeInt, Default: "1073741824", Validate: validLong(14),
		Doc: "Size at which the active segment is rolled."},
	{Name: "segment.ms", BrokerKey: "log.roll.ms", Type: TypeLong, Default: "604800000", Validate: validLong(1),
		Doc: "Age at which the active segment is rolled, so that retention and compaction can act on it."},
	{Name: "unclean.leader.election.enable", BrokerKey: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", Validate: validOneOf("true", "false"), NoEffect: true,
		Doc: "Accepted for compatibility; has no effect on a single node."},
}

// Defs returns the topic config definitions, sorted by name.
func Defs() []Def {
	out := append([]Def(nil), defs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupDef returns the definition of a topic config key.
func LookupDef(name string) (Def, bool) {
	for _, d := range defs {
		if d.Name == name {
			return d, true
		}
	}
	return Def{}, false
}

// ValidateOverrides checks topic-level config overrides and returns a
// normalized copy. An unknown key or bad value is an ErrInvalidConfig error
// naming the key.
func ValidateOverrides(in map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		d, ok := LookupDef(k)
		if !ok {
			return nil, fmt.Errorf("%w: unknown topic config %q (supported: %s)", ErrInvalidConfig, k, strings.Join(defNames(), ", "))
		}
		v = strings.TrimSpace(v)
		if d.Type == TypeList {
			v = strings.Join(splitList(v), ",")
		}
		if err := d.Validate(v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, k, err)
		}
		out[k] = v
	}
	return out, nil
}

func defNames() []string {
	var n []string
	for _, d := range Defs() {
		n = append(n, d.Name)
	}
	return n
}

// Defaults holds the broker-level defaults of topic configs, keyed by topic
// config name. Missing keys use the built-in Def.Default.
type Defaults map[string]string

// Effective resolves a topic config key: the override, else the broker
// default, else the built-in default. Source reports which one.
func (d Defaults) Effective(overrides map[string]string, name string) (value string, src Source) {
	if v, ok := overrides[name]; ok {
		return v, SourceTopic
	}
	if v, ok := d[name]; ok {
		return v, SourceBroker
	}
	def, _ := LookupDef(name)
	return def.Default, SourceDefault
}

// Source tells where an effective config value comes from.
type Source int8

// Sources, in the order of precedence.
const (
	SourceTopic Source = iota
	SourceBroker
	SourceDefault
)

// LogConfig turns effective topic configs into the storage config.
func (d Defaults) LogConfig(overrides map[string]string) commitlog.Config {
	get := func(name string) string { v, _ := d.Effective(overrides, name); return v }
	num := func(name string) int64 { n, _ := strconv.ParseInt(get(name), 10, 64); return n }
	// Kafka users write Long.MAX for "forever"; durations cap at ~292 years.
	ms := func(name string) time.Duration {
		n := num(name)
		if n > int64(math.MaxInt64/time.Millisecond) {
			n = int64(math.MaxInt64 / time.Millisecond)
		}
		return time.Duration(n) * time.Millisecond
	}
	c := commitlog.DefaultConfig()
	c.SegmentBytes = num("segment.bytes")
	c.SegmentMs = ms("segment.ms")
	c.RetentionBytes = num("retention.bytes")
	c.RetentionMs = ms("retention.ms")
	if num("retention.ms") < 0 {
		c.RetentionMs = -1
	}
	c.Compact, c.Delete = false, false
	for _, p := range splitList(get("cleanup.policy")) {
		c.Compact = c.Compact || p == "compact"
		c.Delete = c.Delete || p == "delete"
	}
	c.DeleteRetention = ms("delete.retention.ms")
	c.MinCompactionLag = ms("min.compaction.lag.ms")
	c.IndexIntervalBytes = int(num("index.interval.bytes"))
	c.FlushInterval = ms("flush.ms")
	return c
}

// MaxMessageBytes is the effective max.message.bytes.
func (d Defaults) MaxMessageBytes(overrides map[string]string) int {
	v, _ := d.Effective(overrides, "max.message.bytes")
	n, _ := strconv.Atoi(v)
	return n
}

// LogAppendTime reports message.timestamp.type=LogAppendTime.
func (d Defaults) LogAppendTime(overrides map[string]string) bool {
	v, _ := d.Effective(overrides, "message.timestamp.type")
	return v == "LogAppendTime"
}

// Compacted reports whether cleanup.policy includes compact.
func (d Defaults) Compacted(overrides map[string]string) bool {
	v, _ := d.Effective(overrides, "cleanup.policy")
	for _, p := range splitList(v) {
		if p == "compact" {
			return true
		}
	}
	return false
}
