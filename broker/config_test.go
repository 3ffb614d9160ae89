package broker

import (
	"errors"
	"testing"
	"time"
)

func TestConfigSet(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(Config) bool
		err        bool
	}{
		{"listeners", "PLAINTEXT://127.0.0.1:9999", func(c Config) bool { return c.Listen == "127.0.0.1:9999" }, false},
		{"listeners", "SSL://127.0.0.1:9999", nil, true},
		{"log.dirs", "/tmp/x", func(c Config) bool { return c.DataDir == "/tmp/x" }, false},
		{"log.retention.hours", "24", func(c Config) bool { return c.TopicDefaults["retention.ms"] == "86400000" }, false},
		{"log.retention.ms", "-1", func(c Config) bool { return c.TopicDefaults["retention.ms"] == "-1" }, false},
		{"log.cleanup.policy", "compact, delete", func(c Config) bool { return c.TopicDefaults["cleanup.policy"] == "compact,delete" }, false},
		{"log.cleanup.policy", "shred", nil, true},
		{"num.partitions", "0", nil, true},
		{"num.partitions", "6", func(c Config) bool { return c.DefaultPartitions == 6 }, false},
		{"group.min.session.timeout.ms", "500", func(c Config) bool { return c.MinSessionTimeout == 500*time.Millisecond }, false},
		{"default.replication.factor", "3", nil, true},
		{"auto.create.topics.enable", "nope", nil, true},
		{"no.such.key", "1", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c, err := Default().Set(tt.key, tt.value)
			if tt.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("want ErrConfig, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("setting not applied: %+v", c)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	c := Default()
	c.Listen = "nope"
	if _, err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad listen accepted: %v", err)
	}
	c = Default()
	c.Advertise = "host:0"
	if _, err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("advertise with port 0 accepted: %v", err)
	}
	c = Default()
	c.MinSessionTimeout = time.Hour
	if _, err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("min session timeout above max accepted: %v", err)
	}
	if _, err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}
