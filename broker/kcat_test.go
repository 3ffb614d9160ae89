package broker

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// kcat (librdkafka 2.x) is a second, independent Kafka client.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is missing: `make test` installs it (scripts/install-test-deps.sh)")
		}
		t.Skip("kcat not installed; run scripts/install-test-deps.sh")
	}
	return p
}

func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kcat %v: %v\nstderr: %s", args, err, errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("kcat %v hung\nstderr: %s", args, errb.String())
	}
	return out.String()
}

func TestKcatInterop(t *testing.T) {
	b := startBroker(t, "")
	addr := b.Addr()
	createTopic(t, addr, "kc", 3, nil)

	md := kcat(t, "", "-b", addr, "-L", "-t", "kc")
	if !strings.Contains(md, `topic "kc" with 3 partitions`) {
		t.Fatalf("metadata does not show the topic:\n%s", md)
	}

	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		var in strings.Builder
		for i := 0; i < 200; i++ {
			line := fmt.Sprintf("%s-k%d:%s-value-%d", codec, i, codec, i)
			in.WriteString(line + "\n")
			want = append(want, strings.Replace(line, ":", "=", 1))
		}
		kcat(t, in.String(), "-b", addr, "-P", "-t", "kc", "-K:", "-z", codec, "-X", "acks=all")
	}
	out := kcat(t, "", "-b", addr, "-C", "-t", "kc", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
	got := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kcat consumed %d records, want %d; first got %q", len(got), len(want), got[0])
	}

	// Balanced consumer group: reads everything and commits.
	out = kcat(t, "", "-b", addr, "-G", "kcat-group", "-o", "beginning", "-e", "-q", "-f", "%s\n", "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", "kc")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != len(want) {
		t.Fatalf("kcat group consumed %d records, want %d", n, len(want))
	}
	adm := kadm.NewClient(newClient(t, addr))
	waitFor(t, 10*time.Second, "kcat's group commits", func() bool {
		offs, err := adm.FetchOffsets(testCtx(t, 5*time.Second), "kcat-group")
		if err != nil {
			return false
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum == int64(len(want))
	})

	// kcat reads what franz-go wrote, and franz-go what kcat wrote (consumeAll above used kgo's decoder).
	if got := consumeAll(t, addr, "kc", len(want)); len(got) != len(want) {
		t.Fatalf("franz-go read %d of kcat's %d records", len(got), len(want))
	}
}
