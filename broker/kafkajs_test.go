package broker

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// kafkajs 2.2 (Node.js) is a third Kafka client: admin, idempotent gzip
// produce with headers, a consumer group and offset fetches.
func TestKafkajsInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	mod := filepath.Join("testdata", "kafkajs", "node_modules", "kafkajs")
	if _, statErr := os.Stat(mod); err != nil || statErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node or kafkajs is missing: `make test` installs them (scripts/install-test-deps.sh)")
		}
		t.Skip("node/kafkajs not installed; run scripts/install-test-deps.sh")
	}
	b := startBroker(t, "")
	cmd := exec.Command(node, filepath.Join("testdata", "kafkajs", "interop.js"), b.Addr(), "js-interop", "2000")
	out, err := runWithTimeout(cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("kafkajs: %v\n%s", err, out)
	}
	var res struct {
		Listed, HeaderOK, GroupListed bool
		Consumed, Committed           int
	}
	if err := json.Unmarshal(lastLine(out), &res); err != nil {
		t.Fatalf("kafkajs output %q: %v", out, err)
	}
	if !res.Listed || !res.HeaderOK || !res.GroupListed || res.Consumed != 2000 || res.Committed != 2000 {
		t.Fatalf("kafkajs saw %+v", res)
	}
	// And franz-go reads what kafkajs wrote.
	if got := consumeAll(t, b.Addr(), "js-interop", 2000); len(got) != 2000 {
		t.Fatalf("franz-go read %d records", len(got))
	}
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
		return out, err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return out, os.ErrDeadlineExceeded
	}
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	return b[bytes.LastIndexByte(b, '\n')+1:]
}
