package plugins

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func dataPair(t *testing.T) (*dataConn, *dataConn) {
	t.Helper()
	a, b := net.Pipe()
	da, db := newDataConn(a), newDataConn(b)
	t.Cleanup(func() { da.Close(); db.Close() })
	return da, db
}

func TestDataChannelFrames(t *testing.T) {
	a, b := dataPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte("x"), 1<<20)
	// A frame of a cancelled call (seq 1) is discarded by the next (seq 2).
	if err := a.write(1, []byte("stale")); err != nil {
		t.Fatal(err)
	}
	if err := a.write(2, big); err != nil {
		t.Fatal(err)
	}
	got, err := b.recv(ctx, 2)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("recv 2: %d bytes, %v", len(got), err)
	}
	// Both directions, empty payloads too.
	if err := b.write(3, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := a.recv(ctx, 3); err != nil || len(got) != 0 {
		t.Fatalf("recv 3: %q %v", got, err)
	}
	// A frame newer than the one awaited is an error, not a silent mix-up.
	if err := a.write(9, []byte("ahead")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.recv(ctx, 4); err == nil {
		t.Fatal("recv 4 accepted frame 9")
	}
	// Waiting honours the context.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := b.recv(short, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv with nothing coming: %v", err)
	}
}

// When the other end goes away (the plugin process died), recv and write
// fail as a dead plugin's calls do (Unavailable), and Close does not hang.
func TestDataChannelPeerGone(t *testing.T) {
	a, b := dataPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.write(1, []byte("queued")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if got, err := b.recv(ctx, 1); err != nil || string(got) != "queued" {
		t.Fatalf("a frame read before the end: %q %v", got, err)
	}
	if _, err := b.recv(ctx, 2); status.Code(err) != codes.Unavailable {
		t.Fatalf("recv after the peer closed: %v, want Unavailable", err)
	}
	if err := b.write(3, []byte("x")); status.Code(err) != codes.Unavailable {
		t.Fatalf("write after the peer closed: %v, want Unavailable", err)
	}
	done := make(chan struct{})
	go func() { b.Close(); b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

// Close returns even when the reader holds frames nobody receives.
func TestDataChannelCloseWithUnreadFrames(t *testing.T) {
	a, b := dataPair(t)
	for i := uint64(1); i <= 6; i++ { // more than the queue holds
		go a.write(i, []byte("unread"))
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with unread frames")
	}
}
