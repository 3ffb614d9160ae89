package topics

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"
)

func TestValidateOverrides(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want map[string]string
		err  bool
	}{
		{map[string]string{"cleanup.policy": " compact , delete "}, map[string]string{"cleanup.policy": "compact,delete"}, false},
		{map[string]string{"cleanup.policy": "compress"}, nil, true},
		{map[string]string{"retention.ms": "-1"}, map[string]string{"retention.ms": "-1"}, false},
		{map[string]string{"retention.ms": "-2"}, nil, true},
		{map[string]string{"segment.bytes": "10"}, nil, true},
		{map[string]string{"compression.type": "lz4"}, nil, true},
		{map[string]string{"min.insync.replicas": "2"}, nil, true},
		{map[string]string{"retention.bytez": "1"}, nil, true},
	}
	for _, tt := range tests {
		got, err := ValidateOverrides(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v: want ErrInvalidConfig, got %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.in, err)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%v: %s=%q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

func TestLogConfigPrecedenceAndHugeValues(t *testing.T) {
	d := Defaults{"retention.ms": "1000", "cleanup.policy": "compact"}
	c := d.LogConfig(map[string]string{"retention.ms": "2000", "segment.ms": strconv.FormatInt(math.MaxInt64, 10)})
	if c.RetentionMs != 2*time.Second || !c.Compact || c.Delete {
		t.Fatalf("got %+v", c)
	}
	if c.SegmentMs <= 0 {
		t.Fatalf("Long.MAX segment.ms overflowed to %v", c.SegmentMs)
	}
	if v, src := d.Effective(nil, "retention.ms"); v != "1000" || src != SourceBroker {
		t.Fatalf("broker default: %s %v", v, src)
	}
	if v, src := d.Effective(nil, "segment.bytes"); v != "1073741824" || src != SourceDefault {
		t.Fatalf("built-in default: %s %v", v, src)
	}
}

func TestRegistryPersistsAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := r.Create("orders", 3, map[string]string{"cleanup.policy": "compact"}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create("orders", 1, nil, false, false); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := r.Create("bad name", 1, nil, false, false); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := r.Create("zero", 0, nil, false, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("zero partitions: %v", err)
	}
	if err := r.AddPartitions("orders", 2, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrinking: %v", err)
	}
	if err := r.AddPartitions("orders", 5, false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfigs("orders", map[string]string{"retention.ms": "5"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create("gone", 1, nil, false, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	id := tp.ID
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	got, ok := r2.Get("orders")
	if !ok || got.ID != id || got.NumPartitions() != 5 || got.Configs()["retention.ms"] != "5" || got.Configs()["cleanup.policy"] != "" {
		t.Fatalf("after reopen: ok=%v id match=%v partitions=%d configs=%v", ok, got != nil && got.ID == id, got.NumPartitions(), got.Configs())
	}
	if _, ok := r2.GetByID(id); !ok {
		t.Fatal("topic not found by id after reopen")
	}
	if _, ok := r2.Get("gone"); ok {
		t.Fatal("deleted topic came back")
	}
}
