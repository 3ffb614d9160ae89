package broker

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncBuffer is a bytes.Buffer safe to read while the process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type brokerProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited; err is then set
	err    error
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProc runs `tributary broker` as a subprocess and waits until it accepts connections.
func startProc(t *testing.T, addr, dir string) *brokerProc {
	t.Helper()
	cmd := exec.Command(tributaryBin(t), "broker", "--listen", addr, "--data-dir", dir)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, stderr: &stderr, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("broker stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("broker exited during start-up: %v\n%s", p.err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill -9 of the broker process in the middle of acks=all produce: after a
// restart, every acknowledged record is there exactly once.
func TestKill9DuringAcksAllProduce(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dir, addr := t.TempDir(), freePort(t)
	p1 := startProc(t, addr, dir)
	createTopic(t, addr, "crash", 3, nil)

	cl := newClient(t, addr, kgo.DefaultProduceTopic("crash"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(1<<30), kgo.RetryTimeout(60*time.Second), kgo.RecordDeliveryTimeout(90*time.Second),
		kgo.ProducerBatchMaxBytes(64<<10))
	var mu sync.Mutex
	acked := map[string]bool{}
	var failed []error
	var wg sync.WaitGroup
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			wg.Add(1)
			v := fmt.Sprintf("rec-%07d", i)
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				acked[v] = true
			})
		}
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	const total = 60000
	go produce(0, total)
	waitFor(t, 30*time.Second, "first acknowledgements", func() bool { return ackedCount() >= 10000 })
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	atKill := ackedCount()
	time.Sleep(300 * time.Millisecond)
	startProc(t, addr, dir)
	wg.Wait()
	mu.Lock()
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	mu.Unlock()
	if len(acked) != total {
		t.Fatalf("%d of %d records acknowledged", len(acked), total)
	}

	got := consumeAll(t, addr, "crash", total)
	count := map[string]int{}
	for _, r := range got {
		count[string(r.Value)]++
	}
	for v := range acked {
		if count[v] != 1 {
			t.Fatalf("acknowledged record %s is there %d times", v, count[v])
		}
	}
	if len(got) != total {
		t.Fatalf("log holds %d records, want %d", len(got), total)
	}
	t.Logf("killed after %d acknowledgements; all %d records present exactly once after restart", atKill, total)
}

// SIGTERM shuts the broker down cleanly: exit status 0, and the data is
// there after a restart.
func TestSigtermShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dir, addr := t.TempDir(), freePort(t)
	p := startProc(t, addr, dir)
	createTopic(t, addr, "term", 1, nil)
	cl := newClient(t, addr, kgo.DefaultProduceTopic("term"))
	var recs []*kgo.Record
	for i := 0; i < 1000; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(testCtx(t, 10*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("broker exited with %v after SIGTERM\n%s", p.err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("broker did not exit within 15 s of SIGTERM")
	}
	if !strings.Contains(p.stderr.String(), "broker stopped") {
		t.Fatalf("no clean-stop log line:\n%s", p.stderr)
	}
	startProc(t, addr, dir)
	if got := consumeAll(t, addr, "term", 1000); len(got) != 1000 {
		t.Fatalf("%d records after restart, want 1000", len(got))
	}
}

// A consumer group keeps going across a broker restart: it carries on from
// its committed offsets and nothing is missed.
func TestGroupConsumerAcrossBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dir, addr := t.TempDir(), freePort(t)
	p := startProc(t, addr, dir)
	createTopic(t, addr, "rs", 3, nil)
	prod := newClient(t, addr, kgo.DefaultProduceTopic("rs"), kgo.RecordRetries(1<<30), kgo.RetryTimeout(60*time.Second))
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
		}
		if err := prod.ProduceSync(testCtx(t, 60*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 5000)
	cons := newClient(t, addr, kgo.ConsumerGroup("rs-group"), kgo.ConsumeTopics("rs"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(100*time.Millisecond),
		kgo.HeartbeatInterval(200*time.Millisecond), kgo.SessionTimeout(6*time.Second))
	seen := map[string]bool{}
	poll := func(want int) {
		ctx := testCtx(t, 60*time.Second)
		for len(seen) < want {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", len(seen), want)
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
	}
	poll(5000)
	if err := cons.CommitUncommittedOffsets(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	startProc(t, addr, dir)
	produce(5000, 10000)
	poll(10000)
	adm := kadm.NewClient(newClient(t, addr))
	waitFor(t, 20*time.Second, "commits to reach the end", func() bool {
		cons.CommitUncommittedOffsets(testCtx(t, 5*time.Second))
		offs, err := adm.FetchOffsets(testCtx(t, 5*time.Second), "rs-group")
		if err != nil {
			return false
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum == 10000
	})
}
