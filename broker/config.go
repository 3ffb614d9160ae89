package broker

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-data/tributary/broker/topics"
)

// ErrConfig is wrapped by every broker configuration error.
var ErrConfig = errors.New("broker config")

// Config is the broker's configuration. Keys (for config files and --set)
// use Kafka's server.properties names where Kafka has one.
type Config struct {
	Listen        string // listen: address to accept Kafka clients on (listeners=PLAINTEXT://host:port also accepted)
	Advertise     string // advertise: host:port clients are told to connect to (advertised.listeners); default: the bound address
	DataDir       string // data.dir (log.dirs also accepted)
	MetricsListen string // metrics.listen: address of the Prometheus /metrics endpoint; empty disables it

	NodeID                int32         // node.id
	AutoCreateTopics      bool          // auto.create.topics.enable
	DefaultPartitions     int32         // num.partitions
	SocketRequestMaxBytes int32         // socket.request.max.bytes
	MaintenanceInterval   time.Duration // log.retention.check.interval.ms: how often retention, rolls and compaction run
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms
	OffsetsRetention      time.Duration // offsets.retention.minutes
	ConnectionsMaxIdle    time.Duration // connections.max.idle.ms
	ShutdownTimeout       time.Duration // shutdown.timeout.ms: how long Close waits for in-flight requests
	TopicDefaults         topics.Defaults
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:                "127.0.0.1:9092",
		DataDir:               "./data/broker",
		NodeID:                1,
		AutoCreateTopics:      true,
		DefaultPartitions:     1,
		SocketRequestMaxBytes: 100 << 20,
		MaintenanceInterval:   30 * time.Second,
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 0,
		OffsetsRetention:      7 * 24 * time.Hour,
		ConnectionsMaxIdle:    10 * time.Minute,
		ShutdownTimeout:       10 * time.Second,
		TopicDefaults:         topics.Defaults{},
	}
}

// KeyDoc documents one broker config key.
type KeyDoc struct{ Key, Default, Doc string }

// Keys documents every broker config key, sorted, for --help.
func Keys() []KeyDoc {
	d := Default()
	keys := []KeyDoc{
		{"listen", d.Listen, "host:port for Kafka clients (also: listeners=PLAINTEXT://host:port)"},
		{"advertise", "the bound address", "host:port clients are told to use (also: advertised.listeners)"},
		{"data.dir", d.DataDir, "directory holding topics, offsets and broker metadata (also: log.dirs)"},
		{"metrics.listen", "(off)", "host:port serving Prometheus metrics at /metrics"},
		{"node.id", "1", "this broker's node id"},
		{"auto.create.topics.enable", "true", "create unknown topics on metadata requests"},
		{"num.partitions", "1", "partitions of auto-created topics and of CreateTopics asking for the default"},
		{"socket.request.max.bytes", "104857600", "largest request accepted; larger ones close the connection"},
		{"log.retention.check.interval.ms", "30000", "how often retention, segment rolls and compaction run"},
		{"group.min.session.timeout.ms", "6000", "smallest session timeout a group member may ask for"},
		{"group.max.session.timeout.ms", "1800000", "largest session timeout a group member may ask for"},
		{"group.initial.rebalance.delay.ms", "0", "wait for more members before the first rebalance of an empty group"},
		{"offsets.retention.minutes", "10080", "committed offsets of an empty group are dropped after this"},
		{"connections.max.idle.ms", "600000", "idle client connections are closed after this"},
		{"shutdown.timeout.ms", "10000", "how long shutdown waits for in-flight requests"},
		{"default.replication.factor", "1", "accepted for compatibility; must be 1 on a single node"},
		{"log.retention.hours / log.retention.minutes", "168", "alternatives to log.retention.ms"},
		{"log.roll.hours", "168", "alternative to log.roll.ms"},
	}
	for _, def := range topics.Defs() {
		if def.BrokerKey == "" {
			continue
		}
		keys = append(keys, KeyDoc{def.BrokerKey, def.Default, "default of topic config " + def.Name + ": " + def.Doc})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key < keys[j].Key })
	return keys
}

func parseBool(key, v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("%w: %s=%q: want true or false", ErrConfig, key, v)
	}
	return b, nil
}

func parseInt(key, v string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q: want an integer", ErrConfig, key, v)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%w: %s=%d: must be between %d and %d", ErrConfig, key, n, min, max)
	}
	return n, nil
}

func stripListener(key, v string) (string, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, ",") {
		return "", fmt.Errorf("%w: %s=%q: one listener only", ErrConfig, key, v)
	}
	if i := strings.Index(v, "://"); i >= 0 {
		if proto := v[:i]; proto != "PLAINTEXT" {
			return "", fmt.Errorf("%w: %s=%q: only PLAINTEXT listeners are supported", ErrConfig, key, v)
		}
		v = v[i+3:]
	}
	return v, nil
}

// Set applies one key=value setting and returns the updated config.
func (c Config) Set(key, value string) (Config, error) {
	var err error
	var n int64
	ms := func(min int64) (time.Duration, error) {
		n, err := parseInt(key, value, min, 1<<53)
		return time.Duration(n) * time.Millisecond, err
	}
	switch key {
	case "listen", "listeners":
		c.Listen, err = stripListener(key, value)
	case "advertise", "advertised.listeners":
		c.Advertise, err = stripListener(key, value)
	case "data.dir", "log.dirs", "log.dir":
		c.DataDir = strings.TrimSpace(value)
		if strings.Contains(c.DataDir, ",") {
			err = fmt.Errorf("%w: %s=%q: one data directory only", ErrConfig, key, value)
		}
	case "metrics.listen":
		c.MetricsListen = strings.TrimSpace(value)
	case "node.id", "broker.id":
		n, err = parseInt(key, value, 0, 1<<31-1)
		c.NodeID = int32(n)
	case "auto.create.topics.enable":
		c.AutoCreateTopics, err = parseBool(key, value)
	case "num.partitions":
		n, err = parseInt(key, value, 1, topics.MaxPartitions)
		c.DefaultPartitions = int32(n)
	case "socket.request.max.bytes":
		n, err = parseInt(key, value, 1024, 1<<31-1)
		c.SocketRequestMaxBytes = int32(n)
	case "log.retention.check.interval.ms":
		c.MaintenanceInterval, err = ms(10)
	case "group.min.session.timeout.ms":
		c.MinSessionTimeout, err = ms(1)
	case "group.max.session.timeout.ms":
		c.MaxSessionTimeout, err = ms(1)
	case "group.initial.rebalance.delay.ms":
		c.InitialRebalanceDelay, err = ms(0)
	case "offsets.retention.minutes":
		n, err = parseInt(key, value, 1, 1<<40)
		c.OffsetsRetention = time.Duration(n) * time.Minute
	case "connections.max.idle.ms":
		c.ConnectionsMaxIdle, err = ms(1000)
	case "shutdown.timeout.ms":
		c.ShutdownTimeout, err = ms(0)
	case "default.replication.factor", "offsets.topic.replication.factor", "transaction.state.log.replication.factor":
		if strings.TrimSpace(value) != "1" {
			err = fmt.Errorf("%w: %s=%q: a single-node broker keeps one replica; set it to 1", ErrConfig, key, value)
		}
	case "log.retention.hours", "log.retention.minutes":
		unit := time.Hour
		if key == "log.retention.minutes" {
			unit = time.Minute
		}
		n, err = parseInt(key, value, -1, 1<<40)
		if n < 0 {
			return c.Set("log.retention.ms", "-1")
		}
		return c.Set("log.retention.ms", strconv.FormatInt(int64(time.Duration(n)*unit/time.Millisecond), 10))
	case "log.roll.hours":
		n, err = parseInt(key, value, 1, 1<<40)
		if err == nil {
			return c.Set("log.roll.ms", strconv.FormatInt(int64(time.Duration(n)*time.Hour/time.Millisecond), 10))
		}
	default:
		for _, def := range topics.Defs() {
			if def.BrokerKey == key {
				norm, verr := topics.ValidateOverrides(map[string]string{def.Name: value})
				if verr != nil {
					return c, fmt.Errorf("%w: %s: %v", ErrConfig, key, verr)
				}
				d := topics.Defaults{}
				for k, v := range c.TopicDefaults {
					d[k] = v
				}
				d[def.Name] = norm[def.Name]
				c.TopicDefaults = d
				return c, nil
			}
		}
		return c, fmt.Errorf("%w: unknown key %q (see `tributary broker --help` for the supported keys)", ErrConfig, key)
	}
	return c, err
}

// Validate checks the config and returns a normalized copy.
func (c Config) Validate() (Config, error) {
	if c.Listen == "" {
		return c, fmt.Errorf("%w: listen is empty: set --listen HOST:PORT", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return c, fmt.Errorf("%w: listen=%q: want HOST:PORT", ErrConfig, c.Listen)
	}
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		if err != nil || host == "" || port == "0" {
			return c, fmt.Errorf("%w: advertise=%q: want HOST:PORT with a real host and port", ErrConfig, c.Advertise)
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return c, fmt.Errorf("%w: metrics.listen=%q: want HOST:PORT", ErrConfig, c.MetricsListen)
		}
	}
	if c.DataDir == "" {
		return c, fmt.Errorf("%w: data.dir is empty: set --data-dir DIR", ErrConfig)
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout {
		return c, fmt.Errorf("%w: group.min.session.timeout.ms (%v) is above group.max.session.timeout.ms (%v)", ErrConfig, c.MinSessionTimeout, c.MaxSessionTimeout)
	}
	if c.DefaultPartitions < 1 {
		return c, fmt.Errorf("%w: num.partitions must be at least 1", ErrConfig)
	}
	if c.TopicDefaults == nil {
		c.TopicDefaults = topics.Defaults{}
	}
	return c, nil
}
