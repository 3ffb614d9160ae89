package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-data/tributary/bench/benchproc"
	"github.com/tributary-data/tributary/bench/benchreport"
)

const (
	stopGrace     = 15 * time.Second
	pollEvery     = 100 * time.Millisecond // end offsets
	statusEvery   = time.Second            // connector status, process liveness
	flushMs       = 1000                   // the worker's offset.flush.interval.ms
	streamPause   = 2 * time.Second        // between the snapshot's end and the first insert
	slotWait      = 20 * time.Second       // how long the end waits for the slot to confirm the WAL
	slotSettled   = 64 << 10               // WAL bytes a confirmed slot may lag (WAL written since)
	connectorName = "cdc-bench"
	topicPrefix   = "bench"
)

// topic is where the connector writes benchTable's changes.
const topic = topicPrefix + ".public." + benchTable

// result is one run.
type result struct {
	run              int // 1-based
	rows, streamRows int
	load             time.Duration // COPY of the snapshot's rows
	tableBytes       int64         // the table's heap after the load
	refInsert        time.Duration // the same inserts as the streaming phase's with no slot or connector

	snapFirst time.Duration // POST -> the first record in the topic
	snapshot  time.Duration // POST -> the topic holds rows records

	insert    time.Duration // first BEGIN -> last COMMIT
	cdc       time.Duration // first BEGIN -> the topic holds every row
	lag       time.Duration // last COMMIT -> the topic holds every row
	atCommit  int64         // streamed records in the topic at the last COMMIT (polled just after)
	extra     int64         // records beyond rows+streamRows at the end (duplicates)
	recordLen int           // key + value bytes of the topic's last record
	slotLag   int64         // WAL bytes the slot had not confirmed at the end (-1: no position)
	slotWait  time.Duration // from the last record in the topic to that reading

	cpuSnap, cpuStream cpuSplit
	workerHWMSnap      float64 // MiB, the worker's VmHWM when the snapshot was in the topic
	benchproc.MemPeaks         // the worker's and the plugin processes' (its children's)
}

func (r result) snapshotRPS() float64  { return float64(r.rows) / r.snapshot.Seconds() }
func (r result) insertRPS() float64    { return float64(r.streamRows) / r.insert.Seconds() }
func (r result) refInsertRPS() float64 { return float64(r.streamRows) / r.refInsert.Seconds() }
func (r result) cdcRPS() float64       { return float64(r.streamRows) / r.cdc.Seconds() }

// catchUpRPS is how fast the connector drained what remained at the last
// commit: streamed rows not yet in the topic then, over the lag.
func (r result) catchUpRPS() float64 {
	if r.lag <= 0 {
		return 0
	}
	return float64(int64(r.streamRows)-r.atCommit) / r.lag.Seconds()
}

// env is one run's processes and clients.
type env struct {
	o    options
	pg   *postgres
	dir  string
	st   *benchproc.Stack // broker and worker
	kcl  *kgo.Client
	adm  *kadm.Client
	logf func(string, ...any)
}

func runOnce(ctx context.Context, o options, pg *postgres, r int, logf func(string, ...any)) (res result, err error) {
	res.run, res.rows, res.streamRows = r, o.rows, o.streamRows
	e := &env{o: o, pg: pg, dir: filepath.Join(o.workDir, fmt.Sprintf("run%d", r)), logf: logf}
	// A fresh directory: a kept one of an earlier invocation holds a broker's
	// data (with that run's connector).
	if err := os.RemoveAll(e.dir); err != nil {
		return res, err
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return res, err
	}
	if os.Getenv("CDCBENCH_KEEP") == "" {
		defer os.RemoveAll(e.dir)
	}
	db, slot := fmt.Sprintf("cdcbench_%d", r), fmt.Sprintf("cdcbench_%d", r)

	logf("run %d: loading %s rows into %s.%s (COPY)", r, benchreport.Thousands(float64(o.rows)), db, benchTable)
	ld, err := pg.loadTable(ctx, db, o.rows, o.streamRows)
	if err != nil {
		return res, fmt.Errorf("loading the table: %w", err)
	}
	res.load, res.tableBytes, res.refInsert = ld.copy, ld.tableBytes, ld.reference
	defer func() {
		// After the processes stopped (deferred later, so run earlier).
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if derr := pg.dropRun(dctx, db, slot); derr != nil {
			logf("run %d: cleaning up PostgreSQL: %v", r, derr)
		}
	}()
	logf("run %d: loaded in %.2f s (%s rows/s, table %.0f MiB); reference inserts (no connector): %s rows/s; starting a broker and a worker in %s",
		r, res.load.Seconds(), benchreport.Thousands(float64(o.rows)/res.load.Seconds()), float64(res.tableBytes)/(1<<20), benchreport.Thousands(res.refInsertRPS()), e.dir)
	defer e.stop()
	if err := e.start(ctx); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n--- connector status: %s\n--- worker log ends:\n%s", err, e.st.Status(connectorName), benchproc.Tail(e.st.Worker.LogPath, 3000))
		}
	}()
	mem := benchproc.StartMemSampler(e.st.Worker.PID(), memSampleEvery)
	defer mem.Stop()
	pm := pg.postmasterPID()
	cpu := func() cpuSplit { return cpuAt(e.st.Worker.PID(), e.st.Broker.PID(), pm) }

	// 1. Snapshot.
	c0 := cpu()
	start := time.Now()
	if err := e.st.PostConnector(ctx, connectorName, connectorConfig(o, map[string]string{
		"connector.class":    "PostgresCdcSource",
		"database.hostname":  pg.srv.Host,
		"database.port":      strconv.Itoa(pg.srv.Port),
		"database.user":      pg.srv.User,
		"database.dbname":    db,
		"topic.prefix":       topicPrefix,
		"slot.name":          slot,
		"table.include.list": "public." + benchTable,
		"snapshot.mode":      "initial",
	})); err != nil {
		return res, err
	}
	logf("run %d: connector created; waiting for %s records in %s", r, benchreport.Thousands(float64(o.rows)), topic)
	first := time.Time{}
	reached, _, err := e.waitCount(ctx, int64(o.rows), nil, func(n int64, at time.Time) {
		if n > 0 && first.IsZero() {
			first = at
		}
	})
	if err != nil {
		return res, fmt.Errorf("snapshot: %w", err)
	}
	res.snapshot, res.snapFirst = reached.Sub(start), first.Sub(start)
	res.cpuSnap = cpu().sub(c0)
	_, res.workerHWMSnap = benchproc.MemMB(e.st.Worker.PID())
	logf("run %d: snapshot of %s rows in %.2f s (first record after %.2f s): %s rows/s",
		r, benchreport.Thousands(float64(o.rows)), res.snapshot.Seconds(), res.snapFirst.Seconds(), benchreport.Thousands(res.snapshotRPS()))

	// 2. Streaming.
	if err := benchproc.Sleep(ctx, streamPause); err != nil {
		return res, err
	}
	load, err := pg.newInsertLoad(ctx, db, benchTable, int64(o.rows)+1, o.streamRows)
	if err != nil {
		return res, err
	}
	defer load.close()
	logf("run %d: inserting %s rows from %d connections, %d rows per transaction", r, benchreport.Thousands(float64(o.streamRows)), inserters, insertTxRows)
	want := int64(o.rows + o.streamRows)
	c1 := cpu()
	start = time.Now()
	loadDone := make(chan error, 1)
	lctx, lcancel := context.WithCancel(ctx)
	go func() { loadDone <- load.run(lctx) }()
	var lastCommit time.Time
	var loadErr error
	inserting := true
	defer func() { // before load.close: the writers are done with their connections
		lcancel()
		if inserting {
			<-loadDone
		}
	}()
	reached, final, err := e.waitCount(ctx, want, func() error {
		if !inserting {
			return nil
		}
		select {
		case loadErr = <-loadDone:
			inserting = false
			if loadErr != nil {
				return fmt.Errorf("inserting: %w", loadErr)
			}
			lastCommit = load.lastCommitTime()
			n, err := e.count(ctx)
			if err != nil {
				return err
			}
			res.atCommit = n - int64(o.rows)
			logf("run %d: inserts done in %.2f s (%s rows/s); %s of them in the topic then",
				r, lastCommit.Sub(start).Seconds(), benchreport.Thousands(float64(o.streamRows)/lastCommit.Sub(start).Seconds()), benchreport.Thousands(float64(res.atCommit)))
		default:
		}
		return nil
	}, nil)
	if err != nil {
		return res, fmt.Errorf("streaming: %w", err)
	}
	if inserting { // the topic cannot hold every row before the last commit
		return res, fmt.Errorf("streaming: the topic holds %d records before the inserts ended", final)
	}
	res.cpuStream = cpu().sub(c1)
	res.insert, res.cdc, res.lag = lastCommit.Sub(start), reached.Sub(start), reached.Sub(lastCommit)
	logf("run %d: CDC of %s rows in %.2f s: %s rows/s; lag after the last commit %.2f s",
		r, benchreport.Thousands(float64(o.streamRows)), res.cdc.Seconds(), benchreport.Thousands(res.cdcRPS()), res.lag.Seconds())

	// Duplicates would show as records beyond the rows; give them a flush
	// interval to appear.
	if err := benchproc.Sleep(ctx, flushMs*time.Millisecond); err != nil {
		return res, err
	}
	n, err := e.count(ctx)
	if err != nil {
		return res, err
	}
	res.extra = n - want
	// The slot should confirm what the topic holds: the connector reports
	// the committed LSN to the server (at once when the stream is idle).
	for deadline := time.Now().Add(slotWait); ; {
		lag, err := pg.slotLag(ctx, slot)
		if err != nil {
			return res, fmt.Errorf("reading the slot's position: %w", err)
		}
		res.slotLag, res.slotWait = lag, time.Since(reached)
		if (lag >= 0 && lag <= slotSettled) || time.Now().After(deadline) {
			break
		}
		if err := benchproc.Sleep(ctx, 250*time.Millisecond); err != nil {
			return res, err
		}
	}
	logf("run %d: the slot's confirmed position is %d bytes behind the WAL %.1f s after the last record", r, res.slotLag, res.slotWait.Seconds())
	res.recordLen, _ = e.lastRecordLen(ctx, n-1)
	res.MemPeaks = mem.Stop()
	return res, nil
}

// connectorConfig returns base with the converter variant and o.extra
// (--set) added.
func connectorConfig(o options, base map[string]string) map[string]string {
	for k, v := range o.variant.config {
		base[k] = v
	}
	for k, v := range o.extra {
		base[k] = v
	}
	return base
}

// start starts the broker and the worker, and the Kafka clients the run
// polls with.
func (e *env) start(ctx context.Context) error {
	st, err := benchproc.StartStack(ctx, e.o.tributary, e.dir, "cdcbench", "offset.flush.interval.ms="+strconv.Itoa(flushMs))
	if err != nil {
		return err
	}
	e.st = st
	// kadm answers from the client's cached metadata up to MetadataMinAge
	// old (default 5 s): the topic, auto-created by the worker's first
	// produce, would stay unknown that long.
	if e.kcl, err = kgo.NewClient(kgo.SeedBrokers(st.Kafka), kgo.MetadataMinAge(pollEvery/2)); err != nil {
		return err
	}
	e.adm = kadm.NewClient(e.kcl)
	return nil
}

// stop deletes the connector (so that the worker stops its task and
// instance gracefully: a SIGTERM to the worker's process group would reach
// the plugin processes at once), then stops the worker and the broker.
// Idempotent.
func (e *env) stop() {
	if e.kcl != nil {
		e.kcl.Close()
	}
	if e.st != nil {
		e.st.DeleteConnector(connectorName)
		e.st.Stop(stopGrace)
	}
}

// count returns the records in the topic (the sum of its partitions' end
// offsets: a fresh topic, nothing deleted); 0 while it does not exist.
func (e *env) count(ctx context.Context) (int64, error) {
	offs, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, nil // the broker is checked for liveness elsewhere
	}
	var n int64
	var perr error
	offs.Each(func(o kadm.ListedOffset) {
		switch {
		case o.Err == nil:
			n += o.Offset
		case !errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			perr = o.Err
		}
	})
	if perr != nil {
		e.logf("listing the end offsets of %s: %v", topic, perr)
	}
	return n, nil
}

// waitCount polls the topic's record count every pollEvery until it
// reaches want, and returns when that was seen and the count then. tick
// (if not nil) runs before each poll and may end the wait with an error;
// seen (if not nil) gets every count. The worker's and broker's liveness
// and the connector's status are checked every statusEvery.
func (e *env) waitCount(ctx context.Context, want int64, tick func() error, seen func(n int64, at time.Time)) (time.Time, int64, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	lastCheck := time.Now()
	var n int64
	for {
		if tick != nil {
			if err := tick(); err != nil {
				return time.Time{}, n, err
			}
		}
		var err error
		if n, err = e.count(ctx); err != nil {
			return time.Time{}, n, fmt.Errorf("%d of %d records in %s: %w", n, want, topic, err)
		}
		now := time.Now()
		if seen != nil {
			seen(n, now)
		}
		if n >= want {
			return now, n, nil
		}
		if now.Sub(lastCheck) >= statusEvery {
			lastCheck = now
			e.logf("  %s of %s records in %s", benchreport.Thousands(float64(n)), benchreport.Thousands(float64(want)), topic)
			for _, p := range []*benchproc.Proc{e.st.Worker, e.st.Broker} {
				if err := p.Alive(); err != nil {
					return time.Time{}, n, err
				}
			}
			if err := e.st.Failed(ctx, connectorName); err != nil {
				return time.Time{}, n, err
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, n, fmt.Errorf("%d of %d records in %s: %w", n, want, topic, ctx.Err())
		case <-t.C:
		}
	}
}

// lastRecordLen returns the key + value bytes of the record at offset off
// of the topic's partition 0 (the worker's auto-created topic has one).
func (e *env) lastRecordLen(ctx context.Context, off int64) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.st.Kafka), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(off)},
	}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(fctx)
		if err := fs.Err0(); err != nil {
			return 0, err
		}
		var n int
		fs.EachRecord(func(r *kgo.Record) {
			if n == 0 {
				n = len(r.Key) + len(r.Value)
				if os.Getenv("CDCBENCH_DEBUG") != "" {
					e.logf("debug: record at offset %d: key %s\nvalue %s", r.Offset, r.Key, r.Value)
				}
			}
		})
		if n > 0 {
			return n, nil
		}
	}
}
