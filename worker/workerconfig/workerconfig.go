// Package workerconfig is the worker's configuration, with Kafka Connect's
// worker keys (connect-distributed.properties) so existing files work:
// bootstrap.servers, group.id, listeners, rest.advertised.host.name/port,
// plugin.path, config/offset/status.storage.topic and .replication.factor,
// offset.flush.interval.ms, producer.compression.type, and worker-wide
// converter defaults (key.converter, value.converter, header.converter and
// their sub-keys).
package workerconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrConfig is wrapped by every worker configuration error.
var ErrConfig = errors.New("worker config")

// Config is a worker's configuration.
type Config struct {
	BootstrapServers    []string
	GroupID             string
	RESTListen          string // host:port
	AdvertisedHost      string // rest.advertised.host.name; default: the listen host
	AdvertisedPort      int    // rest.advertised.port; default: the listen port
	PluginPath          string
	ConfigTopic         string
	OffsetTopic         string
	StatusTopic         string
	ReplicationFactor   int16
	OffsetFlushInterval time.Duration
	// ConverterDefaults are the worker-wide key.converter, value.converter
	// and header.converter keys (and their sub-keys) connectors inherit.
	ConverterDefaults map[string]string
	// ProducerCompression is producer.compression.type: the codec of the
	// batches source tasks and dead letter queues produce (none, gzip,
	// snappy, lz4, zstd; default snappy).
	ProducerCompression string
	// Cluster membership (Kafka Connect's keys; Kafka Connect's defaults).
	SessionTimeout             time.Duration // session.timeout.ms
	HeartbeatInterval          time.Duration // heartbeat.interval.ms
	RebalanceTimeout           time.Duration // rebalance.timeout.ms
	ScheduledRebalanceMaxDelay time.Duration // scheduled.rebalance.max.delay.ms
}

// Default returns the defaults (Kafka Connect's where it has them).
func Default() Config {
	return Config{
		BootstrapServers:    []string{"127.0.0.1:9092"},
		GroupID:             "connect-cluster",
		RESTListen:          "127.0.0.1:8083",
		ConfigTopic:         "connect-configs",
		OffsetTopic:         "connect-offsets",
		StatusTopic:         "connect-status",
		ReplicationFactor:   -1,
		OffsetFlushInterval: time.Second,
		ConverterDefaults:   map[string]string{},
		ProducerCompression: "snappy",

		SessionTimeout:             10 * time.Second,
		HeartbeatInterval:          3 * time.Second,
		RebalanceTimeout:           60 * time.Second,
		ScheduledRebalanceMaxDelay: 5 * time.Minute,
	}
}

// Keys documents the accepted keys, for --help.
func Keys() [][2]string {
	return [][2]string{
		{"bootstrap.servers", "Kafka brokers, comma-separated host:port (default 127.0.0.1:9092)"},
		{"group.id", "the worker cluster's id: workers sharing it share connectors (default connect-cluster)"},
		{"listeners", "REST listener, http://host:port (also rest.listen=host:port; default 127.0.0.1:8083)"},
		{"rest.advertised.host.name, rest.advertised.port", "address other workers and statuses show for this worker"},
		{"plugin.path", "folder of tributary-connector-* plugin binaries (default: the folder of the tributary executable)"},
		{"config.storage.topic, offset.storage.topic, status.storage.topic", "internal compacted topics (connect-configs, connect-offsets, connect-status)"},
		{"config|offset|status.storage.replication.factor", "replication factor when creating them (-1: the broker's default)"},
		{"offset.flush.interval.ms", "how often source offsets are stored and sink offsets committed (default 1000; Kafka Connect's is 60000: a shorter interval means fewer records replayed after a crash)"},
		{"session.timeout.ms, heartbeat.interval.ms, rebalance.timeout.ms", "cluster membership (10000, 3000, 60000): a worker silent for the session timeout loses its work; it stops it itself at 3/4 of it"},
		{"scheduled.rebalance.max.delay.ms", "how long a departed worker's connectors and tasks wait for it to come back before moving (default 300000; 0: move at once)"},
		{"key.converter, value.converter, header.converter (+ .<key>)", "converter defaults for connectors that set none"},
		{"producer.compression.type", "codec of the batches source tasks and dead letter queues produce: none, gzip, snappy, lz4 or zstd (default snappy; Kafka's producer default is none: records of one connector repeat each other, embedded JSON schemas above all, and a compressed batch costs less CPU end to end than the bytes it saves)"},
	}
}

// Set applies one key=value setting and returns the new config; on error
// (wrapping ErrConfig and naming the key) it returns c unchanged.
func (c Config) Set(key, value string) (Config, error) {
	value = strings.TrimSpace(value)
	bad := func(why string) (Config, error) {
		return c, fmt.Errorf("%w: %s=%q: %s", ErrConfig, key, value, why)
	}
	switch {
	case key == "bootstrap.servers":
		var servers []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				s = strings.TrimPrefix(strings.TrimPrefix(s, "PLAINTEXT://"), "plaintext://")
				if _, _, err := net.SplitHostPort(s); err != nil {
					return bad("want host:port[,host:port...]")
				}
				servers = append(servers, s)
			}
		}
		if len(servers) == 0 {
			return bad("no broker given")
		}
		c.BootstrapServers = servers
	case key == "group.id":
		if value == "" {
			return bad("must not be empty")
		}
		c.GroupID = value
	case key == "listeners":
		first := strings.TrimSpace(strings.Split(value, ",")[0])
		u, err := url.Parse(first)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return bad("want http://host:port (https is not supported yet)")
		}
		c.RESTListen = u.Host
	case key == "rest.listen":
		if _, _, err := net.SplitHostPort(value); err != nil {
			return bad("want host:port")
		}
		c.RESTListen = value
	case key == "rest.advertised.host.name":
		c.AdvertisedHost = value
	case key == "rest.advertised.port":
		n, err := strconv.Atoi(value)
		if err != nil || n <= 0 || n > 65535 {
			return bad("want a port number")
		}
		c.AdvertisedPort = n
	case key == "rest.advertised.listener":
		if value != "http" {
			return bad("only http is supported")
		}
	case key == "plugin.path":
		if strings.Contains(value, ",") {
			return bad("one folder only")
		}
		c.PluginPath = value
	case key == "config.storage.topic":
		c.ConfigTopic = value
	case key == "offset.storage.topic":
		c.OffsetTopic = value
	case key == "status.storage.topic":
		c.StatusTopic = value
	case key == "config.storage.replication.factor", key == "offset.storage.replication.factor", key == "status.storage.replication.factor":
		n, err := strconv.Atoi(value)
		if err != nil || n == 0 || n < -1 || n > 32767 {
			return bad("want -1 or a positive number")
		}
		c.ReplicationFactor = int16(n)
	case key == "offset.storage.partitions", key == "status.storage.partitions":
		// Kafka Connect's topic creation sizes; accepted, the defaults (25, 5) apply.
		if _, err := strconv.Atoi(value); err != nil {
			return bad("want a number")
		}
	case key == "offset.flush.interval.ms":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 1 {
			return bad("want a positive number of milliseconds")
		}
		c.OffsetFlushInterval = time.Duration(n) * time.Millisecond
	case key == "session.timeout.ms", key == "heartbeat.interval.ms", key == "rebalance.timeout.ms", key == "scheduled.rebalance.max.delay.ms":
		n, err := strconv.ParseInt(value, 10, 64)
		min := int64(1)
		if key == "scheduled.rebalance.max.delay.ms" {
			min = 0
		}
		if err != nil || n < min {
			return bad("want a number of milliseconds")
		}
		d := time.Duration(n) * time.Millisecond
		switch key {
		case "session.timeout.ms":
			c.SessionTimeout = d
		case "heartbeat.interval.ms":
			c.HeartbeatInterval = d
		case "rebalance.timeout.ms":
			c.RebalanceTimeout = d
		default:
			c.ScheduledRebalanceMaxDelay = d
		}
	case key == "producer.compression.type":
		switch v := strings.ToLower(value); v {
		case "none", "gzip", "snappy", "lz4", "zstd":
			c.ProducerCompression = v
		default:
			return bad("want none, gzip, snappy, lz4 or zstd")
		}
	case strings.HasPrefix(key, "key.converter"), strings.HasPrefix(key, "value.converter"), strings.HasPrefix(key, "header.converter"):
		m := map[string]string{}
		for k, v := range c.ConverterDefaults {
			m[k] = v
		}
		m[key] = value
		c.ConverterDefaults = m
	default:
		return c, fmt.Errorf("%w: unknown key %q (see `tributary worker --help` for the supported keys)", ErrConfig, key)
	}
	return c, nil
}

// Validate checks the config and fills derived defaults.
func (c Config) Validate() (Config, error) {
	if len(c.BootstrapServers) == 0 {
		return c, fmt.Errorf("%w: bootstrap.servers is empty: set --bootstrap-servers HOST:PORT", ErrConfig)
	}
	host, port, err := net.SplitHostPort(c.RESTListen)
	if err != nil {
		return c, fmt.Errorf("%w: REST listen address %q: want host:port", ErrConfig, c.RESTListen)
	}
	if c.AdvertisedHost == "" {
		c.AdvertisedHost = host
		if host == "" || host == "0.0.0.0" || host == "::" {
			c.AdvertisedHost = "localhost"
		}
	}
	if c.AdvertisedPort == 0 {
		c.AdvertisedPort, _ = strconv.Atoi(port)
	}
	if c.PluginPath == "" {
		return c, fmt.Errorf("%w: plugin.path is empty: set --plugin-path DIR", ErrConfig)
	}
	if c.HeartbeatInterval >= c.SessionTimeout*3/4 {
		return c, fmt.Errorf("%w: heartbeat.interval.ms (%d) must be below 3/4 of session.timeout.ms (%d): a worker stops its work at 3/4 of the session timeout without a heartbeat answer",
			ErrConfig, c.HeartbeatInterval.Milliseconds(), c.SessionTimeout.Milliseconds())
	}
	topics := map[string]string{}
	for _, t := range [][2]string{{"config.storage.topic", c.ConfigTopic}, {"offset.storage.topic", c.OffsetTopic}, {"status.storage.topic", c.StatusTopic}} {
		if t[1] == "" {
			return c, fmt.Errorf("%w: %s is empty", ErrConfig, t[0])
		}
		if other, dup := topics[t[1]]; dup {
			return c, fmt.Errorf("%w: %s and %s are both %q: each needs its own topic", ErrConfig, other, t[0], t[1])
		}
		topics[t[1]] = t[0]
	}
	return c, nil
}

// WorkerID is the worker's advertised REST address, as statuses show it.
func (c Config) WorkerID() string {
	return net.JoinHostPort(c.AdvertisedHost, strconv.Itoa(c.AdvertisedPort))
}

// SortedConverterKeys returns the converter default keys, sorted.
func (c Config) SortedConverterKeys() []string {
	keys := make([]string, 0, len(c.ConverterDefaults))
	for k := range c.ConverterDefaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
