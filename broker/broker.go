// Package broker is Tributary's single-node broker: it speaks the Kafka wire
// protocol (every request and response is encoded by franz-go's kmsg), keeps
// each partition in a durable segmented log (broker/commitlog), runs consumer
// groups (broker/groups) whose state persists in the internal compacted topic
// __consumer_offsets, and serves Prometheus metrics.
//
// The broker knows nothing of Connect: workers talk to it as to any Kafka.
//
// Files, one per API key family, each opening with the versions it supports:
// apiversions.go, metadata.go, produce.go, fetch.go, listoffsets.go,
// admintopics.go (CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords),
// configs.go (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs),
// producerid.go (InitProducerId), epochs.go (OffsetForLeaderEpoch),
// cluster.go (DescribeCluster, FindCoordinator), groups.go (group APIs).
// conn.go owns connections and framing.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary-data/tributary/broker/commitlog"
	"github.com/tributary-data/tributary/broker/groups"
	"github.com/tributary-data/tributary/broker/records"
	"github.com/tributary-data/tributary/broker/topics"
)

// Broker is a running broker. Open starts it; Close stops it.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	fs      commitlog.FS
	codecs  *records.Codecs
	meta    *brokerMeta
	lock    *dirLock
	topics  *topics.Registry
	groups  *groups.Coordinator
	offsets *topics.Topic // __consumer_offsets
	metrics *metrics
	hwm     *notifier
	bufs    bufPool

	ln        net.Listener
	advertise string
	host      string
	port      int32
	httpSrv   *http.Server
	metricsLn net.Listener

	ctx    context.Context // cancelled by Close once in-flight requests are done (or timed out)
	cancel context.CancelFunc
	// drain is cancelled when Close begins: long polls and group waits end
	// early so that every in-flight request can be answered.
	drain       context.Context
	drainCancel context.CancelFunc

	connsMu sync.Mutex
	conns   map[*conn]struct{}
	connWG  sync.WaitGroup // one per connection goroutine set
	bgWG    sync.WaitGroup // accept loop, maintenance, metrics server

	closeOnce sync.Once
	closeErr  error
}

// OffsetsTopic is the internal topic holding group offsets and metadata.
const OffsetsTopic = "__consumer_offsets"

// Options are the broker's non-config dependencies.
type Options struct {
	Logger *slog.Logger
	// FS replaces the real file system (tests inject faults through it).
	FS commitlog.FS
}

// Open recovers the data directory, loads group state, binds the listeners
// and starts serving. The returned broker runs until Close.
func Open(cfg Config, opts Options) (*Broker, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.FS == nil {
		opts.FS = commitlog.OSFS()
	}
	b := &Broker{cfg: cfg, log: opts.Logger, codecs: records.NewCodecs(), hwm: newNotifier(), conns: map[*conn]struct{}{}}
	b.metrics = newMetrics(b)
	b.fs = timedFS{FS: opts.FS, observe: b.metrics.observeFsync}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.drain, b.drainCancel = context.WithCancel(b.ctx)
	ok := false
	defer func() {
		if !ok {
			b.cancel()
			if b.topics != nil {
				b.topics.Close()
			}
			if b.ln != nil {
				b.ln.Close()
			}
			if b.groups != nil {
				b.groups.Close()
			}
			b.lock.release()
		}
	}()

	if err := b.fs.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: create data dir %s: %w", cfg.DataDir, err)
	}
	if b.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if b.meta, err = openMeta(b.fs, cfg.DataDir, cfg.NodeID); err != nil {
		return nil, err
	}
	start := time.Now()
	b.topics, err = topics.Open(filepath.Join(cfg.DataDir, "topics"), topics.Options{
		FS:         b.fs,
		Logger:     b.log,
		Defaults:   cfg.TopicDefaults,
		LogOptions: commitlog.Options{Codecs: b.codecs, Logger: b.log},
		OnDurable:  func(*topics.Topic, int32, int64) { b.hwm.Notify() },
	})
	if err != nil {
		return nil, err
	}
	b.log.Info("storage recovered", "dir", cfg.DataDir, "topics", len(b.topics.List()), "took", time.Since(start).Round(time.Millisecond))
	if err := b.openGroups(); err != nil {
		return nil, err
	}

	if b.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Listen, err)
	}
	b.advertise = cfg.Advertise
	if b.advertise == "" {
		b.advertise = b.ln.Addr().String()
		if host, port, _ := net.SplitHostPort(b.advertise); host == "::" || host == "0.0.0.0" {
			h, _ := os.Hostname()
			b.advertise = net.JoinHostPort(h, port)
		}
	}
	host, port, _ := net.SplitHostPort(b.advertise)
	b.host = host
	fmt.Sscan(port, &b.port)
	if cfg.MetricsListen != "" {
		if b.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("broker: listen on metrics.listen %s: %w", cfg.MetricsListen, err)
		}
		b.httpSrv = &http.Server{Handler: b.metrics.handler(), ReadHeaderTimeout: 10 * time.Second}
		b.bgWG.Add(1)
		go func() {
			defer b.bgWG.Done()
			if err := b.httpSrv.Serve(b.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	b.bgWG.Add(2)
	go b.acceptLoop()
	go b.maintenanceLoop()
	ok = true
	b.log.Info("broker listening", "addr", b.ln.Addr().String(), "advertise", b.advertise, "cluster_id", b.meta.ClusterID(), "node_id", cfg.NodeID)
	return b, nil
}

// Addr is the address the Kafka listener is bound to.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// MetricsAddr is the metrics listener's address, or "" when disabled.
func (b *Broker) MetricsAddr() string {
	if b.metricsLn == nil {
		return ""
	}
	return b.metricsLn.Addr().String()
}

// ClusterID is the id of this broker's cluster (fixed with its data dir).
func (b *Broker) ClusterID() string { return b.meta.ClusterID() }

func (b *Broker) acceptLoop() {
	defer b.bgWG.Done()
	var delay time.Duration
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			// Too many open files and the like: back off, keep serving others.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			b.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		c := newConn(b, nc)
		b.connsMu.Lock()
		if b.ctx.Err() != nil {
			b.connsMu.Unlock()
			nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.connWG.Add(1)
		b.connsMu.Unlock()
		b.metrics.connections.Inc()
		go func() {
			defer b.connWG.Done()
			c.serve()
			b.connsMu.Lock()
			delete(b.conns, c)
			b.connsMu.Unlock()
			b.metrics.connections.Dec()
		}()
	}
}

// maintenanceLoop runs retention, rolls and compaction on every partition.
func (b *Broker) maintenanceLoop() {
	defer b.bgWG.Done()
	t := time.NewTicker(b.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		for _, tp := range b.topics.List() {
			for p := int32(0); p < tp.NumPartitions(); p++ {
				l := tp.Partition(p)
				if l == nil {
					continue
				}
				if err := l.Maintain(b.ctx); err != nil && !errors.Is(err, commitlog.ErrClosed) && b.ctx.Err() == nil {
					b.log.Error("log maintenance failed", "topic", tp.Name, "partition", p, "err", err)
				}
				if b.ctx.Err() != nil {
					return
				}
			}
		}
	}
}

// Close stops accepting, lets in-flight requests finish (up to
// shutdown.timeout.ms), closes connections, stops groups and background
// work, then flushes and closes every log. Idempotent; blocks until done.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.log.Info("broker shutting down")
		b.drainCancel()
		b.ln.Close()
		b.connsMu.Lock()
		for c := range b.conns {
			c.stopReading()
		}
		b.connsMu.Unlock()
		done := make(chan struct{})
		go func() { b.connWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(b.cfg.ShutdownTimeout):
			b.log.Warn("in-flight requests did not finish in time; closing connections")
		}
		b.cancel()
		b.connsMu.Lock()
		for c := range b.conns {
			c.close()
		}
		b.connsMu.Unlock()
		<-done
		if b.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			b.httpSrv.Shutdown(ctx)
			cancel()
		}
		b.bgWG.Wait()
		var errs []error
		if err := b.groups.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := b.topics.Close(); err != nil {
			errs = append(errs, err)
		}
		b.closeErr = errors.Join(errs...)
		b.lock.release()
		b.log.Info("broker stopped")
	})
	return b.closeErr
}
