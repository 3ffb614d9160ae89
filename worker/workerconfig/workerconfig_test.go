package workerconfig

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name  string
		sets  [][2]string
		check func(t *testing.T, c Config)
	}{
		{"bootstrap.servers list", [][2]string{{"bootstrap.servers", " a:9092, PLAINTEXT://b:9093 ,,plaintext://[::1]:9094 "}}, func(t *testing.T, c Config) {
			if want := []string{"a:9092", "b:9093", "[::1]:9094"}; !slices.Equal(c.BootstrapServers, want) {
				t.Errorf("BootstrapServers = %q, want %q", c.BootstrapServers, want)
			}
		}},
		{"group.id", [][2]string{{"group.id", "my-cluster"}}, func(t *testing.T, c Config) {
			if c.GroupID != "my-cluster" {
				t.Errorf("GroupID = %q", c.GroupID)
			}
		}},
		{"listeners takes the first http listener", [][2]string{{"listeners", "http://0.0.0.0:18083,http://127.0.0.1:18084"}}, func(t *testing.T, c Config) {
			if c.RESTListen != "0.0.0.0:18083" {
				t.Errorf("RESTListen = %q", c.RESTListen)
			}
		}},
		{"rest.listen", [][2]string{{"rest.listen", "127.0.0.1:9999"}}, func(t *testing.T, c Config) {
			if c.RESTListen != "127.0.0.1:9999" {
				t.Errorf("RESTListen = %q", c.RESTListen)
			}
		}},
		{"advertised address", [][2]string{{"rest.advertised.host.name", "worker-1.example"}, {"rest.advertised.port", "443"}, {"rest.advertised.listener", "http"}}, func(t *testing.T, c Config) {
			if c.AdvertisedHost != "worker-1.example" || c.AdvertisedPort != 443 {
				t.Errorf("advertised %q %d", c.AdvertisedHost, c.AdvertisedPort)
			}
		}},
		{"topics and replication", [][2]string{{"config.storage.topic", "c"}, {"offset.storage.topic", "o"}, {"status.storage.topic", "s"},
			{"config.storage.replication.factor", "3"}, {"offset.storage.partitions", "50"}, {"status.storage.partitions", "10"}}, func(t *testing.T, c Config) {
			if c.ConfigTopic != "c" || c.OffsetTopic != "o" || c.StatusTopic != "s" || c.ReplicationFactor != 3 {
				t.Errorf("topics %q %q %q rf %d", c.ConfigTopic, c.OffsetTopic, c.StatusTopic, c.ReplicationFactor)
			}
		}},
		{"replication factor -1", [][2]string{{"status.storage.replication.factor", "-1"}}, func(t *testing.T, c Config) {
			if c.ReplicationFactor != -1 {
				t.Errorf("ReplicationFactor = %d", c.ReplicationFactor)
			}
		}},
		{"offset.flush.interval.ms", [][2]string{{"offset.flush.interval.ms", "60000"}}, func(t *testing.T, c Config) {
			if c.OffsetFlushInterval != time.Minute {
				t.Errorf("OffsetFlushInterval = %v", c.OffsetFlushInterval)
			}
		}},
		{"plugin.path", [][2]string{{"plugin.path", "/opt/tributary/plugins"}}, func(t *testing.T, c Config) {
			if c.PluginPath != "/opt/tributary/plugins" {
				t.Errorf("PluginPath = %q", c.PluginPath)
			}
		}},
		{"converter defaults and sub-keys", [][2]string{
			{"key.converter", "org.apache.kafka.connect.storage.StringConverter"},
			{"value.converter", "org.apache.kafka.connect.json.JsonConverter"},
			{"value.converter.schemas.enable", "false"},
			{"header.converter", "org.apache.kafka.connect.storage.SimpleHeaderConverter"},
		}, func(t *testing.T, c Config) {
			want := map[string]string{
				"key.converter":                  "org.apache.kafka.connect.storage.StringConverter",
				"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
				"value.converter.schemas.enable": "false",
				"header.converter":               "org.apache.kafka.connect.storage.SimpleHeaderConverter",
			}
			if !maps.Equal(c.ConverterDefaults, want) {
				t.Errorf("ConverterDefaults = %v", c.ConverterDefaults)
			}
			if keys := c.SortedConverterKeys(); !slices.IsSorted(keys) || len(keys) != 4 {
				t.Errorf("SortedConverterKeys = %v", keys)
			}
		}},
		{"producer.compression.type", [][2]string{{"producer.compression.type", " ZSTD "}}, func(t *testing.T, c Config) {
			if c.ProducerCompression != "zstd" {
				t.Errorf("ProducerCompression = %q", c.ProducerCompression)
			}
		}},
		{"producer.compression.type defaults to snappy", nil, func(t *testing.T, c Config) {
			if c.ProducerCompression != "snappy" {
				t.Errorf("ProducerCompression = %q", c.ProducerCompression)
			}
		}},
		{"values are trimmed", [][2]string{{"group.id", "  g  "}}, func(t *testing.T, c Config) {
			if c.GroupID != "g" {
				t.Errorf("GroupID = %q", c.GroupID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			for _, kv := range tt.sets {
				var err error
				if c, err = c.Set(kv[0], kv[1]); err != nil {
					t.Fatalf("Set(%q, %q): %v", kv[0], kv[1], err)
				}
			}
			tt.check(t, c)
		})
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct{ key, value string }{
		{"bootstrap.servers", ""},
		{"bootstrap.servers", " , "},
		{"bootstrap.servers", "no-port"},
		{"bootstrap.servers", "a:9092,no-port"},
		{"group.id", " "},
		{"listeners", "127.0.0.1:8083"},
		{"listeners", "https://127.0.0.1:8443"},
		{"listeners", "http://"},
		{"rest.listen", "8083"},
		{"rest.advertised.port", "0"},
		{"rest.advertised.port", "70000"},
		{"rest.advertised.port", "port"},
		{"rest.advertised.listener", "https"},
		{"plugin.path", "/a,/b"},
		{"config.storage.replication.factor", "0"},
		{"offset.storage.replication.factor", "-2"},
		{"status.storage.replication.factor", "40000"},
		{"status.storage.replication.factor", "three"},
		{"offset.storage.partitions", "many"},
		{"offset.flush.interval.ms", "0"},
		{"offset.flush.interval.ms", "1s"},
		{"producer.compression.type", "brotli"},
		{"producer.compression.type", ""},
		{"no.such.key", "1"},
		{"bootstrap.server", "a:9092"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			before := Default()
			c, err := before.Set(tt.key, tt.value)
			if err == nil {
				t.Fatalf("Set(%q, %q) accepted", tt.key, tt.value)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name the key %q", err, tt.key)
			}
			// A failed Set leaves the config as it was.
			if !slices.Equal(c.BootstrapServers, before.BootstrapServers) || c.GroupID != before.GroupID ||
				c.RESTListen != before.RESTListen || c.PluginPath != before.PluginPath || c.ReplicationFactor != before.ReplicationFactor ||
				c.OffsetFlushInterval != before.OffsetFlushInterval || c.AdvertisedPort != before.AdvertisedPort {
				t.Errorf("a failed Set changed the config: %+v", c)
			}
		})
	}
}

func TestSetDoesNotAlias(t *testing.T) {
	a, err := Default().Set("value.converter", "x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Set("value.converter", "y")
	if err != nil {
		t.Fatal(err)
	}
	if a.ConverterDefaults["value.converter"] != "x" || b.ConverterDefaults["value.converter"] != "y" {
		t.Errorf("configs share their converter map: %v %v", a.ConverterDefaults, b.ConverterDefaults)
	}
}

func TestValidate(t *testing.T) {
	withPlugins := func(c Config) Config { c.PluginPath = "/plugins"; return c }
	tests := []struct {
		name    string
		cfg     func() Config
		wantErr string // "" for success
		check   func(t *testing.T, c Config)
	}{
		{"defaults with a plugin path", func() Config { return withPlugins(Default()) }, "", func(t *testing.T, c Config) {
			if c.AdvertisedHost != "127.0.0.1" || c.AdvertisedPort != 8083 || c.WorkerID() != "127.0.0.1:8083" {
				t.Errorf("advertised %q %d id %q", c.AdvertisedHost, c.AdvertisedPort, c.WorkerID())
			}
		}},
		{"wildcard listen advertises localhost", func() Config {
			c := withPlugins(Default())
			c.RESTListen = "0.0.0.0:9000"
			return c
		}, "", func(t *testing.T, c Config) {
			if c.WorkerID() != "localhost:9000" {
				t.Errorf("WorkerID = %q", c.WorkerID())
			}
		}},
		{"empty host advertises localhost", func() Config {
			c := withPlugins(Default())
			c.RESTListen = ":9000"
			return c
		}, "", func(t *testing.T, c Config) {
			if c.WorkerID() != "localhost:9000" {
				t.Errorf("WorkerID = %q", c.WorkerID())
			}
		}},
		{"explicit advertised address wins", func() Config {
			c := withPlugins(Default())
			c.AdvertisedHost, c.AdvertisedPort = "w1", 443
			return c
		}, "", func(t *testing.T, c Config) {
			if c.WorkerID() != "w1:443" {
				t.Errorf("WorkerID = %q", c.WorkerID())
			}
		}},
		{"IPv6 worker id", func() Config {
			c := withPlugins(Default())
			c.RESTListen = "[::1]:8083"
			return c
		}, "", func(t *testing.T, c Config) {
			if c.WorkerID() != "[::1]:8083" {
				t.Errorf("WorkerID = %q", c.WorkerID())
			}
		}},
		{"no brokers", func() Config { c := withPlugins(Default()); c.BootstrapServers = nil; return c }, "bootstrap.servers", nil},
		{"no plugin path", Default, "plugin.path", nil},
		{"bad listen address", func() Config { c := withPlugins(Default()); c.RESTListen = "nowhere"; return c }, "nowhere", nil},
		{"empty topic", func() Config { c := withPlugins(Default()); c.StatusTopic = ""; return c }, "status.storage.topic", nil},
		{"duplicate topics", func() Config {
			c := withPlugins(Default())
			c.OffsetTopic = c.ConfigTopic
			return c
		}, "config.storage.topic and offset.storage.topic", nil},
		{"duplicate topics set by keys", func() Config {
			c := withPlugins(Default())
			c, _ = c.Set("status.storage.topic", "shared")
			c, _ = c.Set("offset.storage.topic", "shared")
			return c
		}, "offset.storage.topic and status.storage.topic", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.cfg().Validate()
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Validate accepted %+v", c)
				}
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want ErrConfig mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestKeysAreAccepted checks that every key --help documents is accepted.
func TestKeysAreAccepted(t *testing.T) {
	samples := map[string]string{
		"bootstrap.servers": "a:1", "group.id": "g", "listeners": "http://h:1", "rest.listen": "h:1",
		"rest.advertised.host.name": "h", "rest.advertised.port": "1", "plugin.path": "/p",
		"config.storage.topic": "c", "offset.storage.topic": "o", "status.storage.topic": "s",
		"config.storage.replication.factor": "1", "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
		"offset.flush.interval.ms": "10", "producer.compression.type": "none", "key.converter": "k", "value.converter": "v", "header.converter": "h",
	}
	documented := map[string]bool{}
	for _, k := range Keys() {
		for _, name := range strings.Split(k[0], ",") {
			name = strings.TrimSpace(strings.Fields(name + " ")[0])
			documented[name] = true
		}
	}
	for key, v := range samples {
		if _, err := Default().Set(key, v); err != nil {
			t.Errorf("Set(%q, %q): %v", key, v, err)
		}
	}
	for _, k := range []string{"bootstrap.servers", "group.id", "listeners", "plugin.path", "offset.flush.interval.ms", "producer.compression.type", "key.converter"} {
		if !documented[k] {
			t.Errorf("Keys() does not document %s: %v", k, Keys())
		}
	}
}
