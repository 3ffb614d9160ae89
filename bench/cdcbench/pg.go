package main

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-data/tributary/internal/testpg"
)

// benchTable is the captured table of every run (in a database of its own).
const benchTable = "cdc_rows"

// insertTxRows is the rows of one streaming transaction.
const insertTxRows = 1000

// inserters is the number of concurrent streaming connections.
const inserters = 2

// columns of benchTable, in COPY order.
var columns = []string{"id", "name", "amount", "created", "flag"}

// createTable is the DDL of benchTable (and of the reference table): %s is
// the name.
const createTable = `CREATE TABLE %s (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	amount numeric(12,2) NOT NULL,
	created timestamptz NOT NULL,
	flag bool NOT NULL)`

// postgres is the private server every run uses.
type postgres struct {
	srv     *testpg.Server
	version string
	durable bool
}

func startPostgres(ctx context.Context, durable bool) (*postgres, error) {
	srv, err := testpg.StartServer(ctx, testpg.Options{Durable: durable})
	if err != nil {
		return nil, err
	}
	p := &postgres{srv: srv, durable: durable}
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		srv.Close()
		return nil, err
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&p.version); err != nil {
		srv.Close()
		return nil, err
	}
	if i := strings.IndexByte(p.version, ' '); i > 0 {
		p.version = p.version[:i]
	}
	return p, nil
}

func (p *postgres) close() error { return p.srv.Close() }

// postmasterPID reads the server's pid from postmaster.pid (its first line).
func (p *postgres) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(p.srv.Dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

var rowEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// rowValues returns the values of row id: about 100 bytes on disk with the
// tuple header (8 + 49 + 8 + 8 + 1 bytes of data).
func rowValues(id int64) []any {
	return []any{
		id,
		fmt.Sprintf("customer %010d, some filler text, 48 bytes.", id),
		pgtype.Numeric{Int: big.NewInt(id * 7919 % 1_000_000_000), Exp: -2, Valid: true},
		rowEpoch.Add(time.Duration(id) * time.Second),
		id%3 == 0,
	}
}

// copySource generates rows first..first+n-1 for CopyFrom.
func copySource(first int64, n int) pgx.CopyFromSource {
	return pgx.CopyFromFunc(func() ([]any, error) {
		if n == 0 {
			return nil, nil
		}
		n--
		first++
		return rowValues(first - 1), nil
	})
}

// loaded is what loadTable measured.
type loaded struct {
	copy       time.Duration // the COPY of the snapshot's rows
	tableBytes int64         // benchTable's heap after the load
	reference  time.Duration // the reference inserts (no slot, no connector)
}

// loadTable creates database db with benchTable holding rows 1..n, loaded
// with one COPY. Then, as a reference for the streaming phase, it inserts
// refRows rows the way the streaming phase does (insertLoad) into another
// table while no slot and no connector exist, and drops that table.
// Last, it vacuums and analyzes benchTable and takes a checkpoint so that
// the snapshot reads a settled table.
func (p *postgres) loadTable(ctx context.Context, db string, n, refRows int) (loaded, error) {
	var l loaded
	if err := p.srv.CreateDatabase(ctx, db); err != nil {
		return l, err
	}
	c, err := p.srv.Connect(ctx, db)
	if err != nil {
		return l, err
	}
	defer c.Close(ctx)
	const refTable = benchTable + "_ref"
	for _, tb := range []string{benchTable, refTable} {
		if _, err := c.Exec(ctx, fmt.Sprintf(createTable, tb)); err != nil {
			return l, err
		}
	}
	start := time.Now()
	got, err := c.CopyFrom(ctx, pgx.Identifier{benchTable}, columns, copySource(1, n))
	if err != nil {
		return l, fmt.Errorf("COPY: %w", err)
	}
	l.copy = time.Since(start)
	if got != int64(n) {
		return l, fmt.Errorf("COPY wrote %d rows, want %d", got, n)
	}
	if refRows > 0 {
		ref, err := p.newInsertLoad(ctx, db, refTable, int64(n)+1, refRows)
		if err != nil {
			return l, err
		}
		start = time.Now()
		err = ref.run(ctx)
		l.reference = ref.lastCommitTime().Sub(start)
		ref.close()
		if err != nil {
			return l, fmt.Errorf("reference inserts: %w", err)
		}
	}
	for _, q := range []string{"DROP TABLE " + refTable, "VACUUM (ANALYZE) " + benchTable, "CHECKPOINT"} {
		if _, err := c.Exec(ctx, q); err != nil {
			return l, fmt.Errorf("%s: %w", q, err)
		}
	}
	if err := c.QueryRow(ctx, "SELECT pg_relation_size($1)", benchTable).Scan(&l.tableBytes); err != nil {
		return l, err
	}
	return l, nil
}

// insertLoad is the streaming phase's writers: inserters connections
// inserting rows first.. first+total-1 into table in transactions of insertTxRows
// rows (COPY inside BEGIN/COMMIT), taking batches from a shared counter.
type insertLoad struct {
	table string
	conns []*pgx.Conn
	first int64
	total int

	next       atomic.Int64 // next batch number
	mu         sync.Mutex
	lastCommit time.Time
}

func (p *postgres) newInsertLoad(ctx context.Context, db, table string, first int64, total int) (*insertLoad, error) {
	l := &insertLoad{table: table, first: first, total: total}
	for range inserters {
		c, err := p.srv.Connect(ctx, db)
		if err != nil {
			l.close()
			return nil, err
		}
		l.conns = append(l.conns, c)
	}
	return l, nil
}

func (l *insertLoad) close() {
	for _, c := range l.conns {
		c.Close(context.Background())
	}
}

// run inserts every row and returns when all are committed or one
// connection failed (the others stop at their next batch).
func (l *insertLoad) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := (l.total + insertTxRows - 1) / insertTxRows
	errs := make(chan error, len(l.conns))
	for _, c := range l.conns {
		go func() {
			errs <- l.worker(ctx, c, int64(batches))
		}()
	}
	var first error
	for range l.conns {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func (l *insertLoad) worker(ctx context.Context, c *pgx.Conn, batches int64) error {
	for {
		b := l.next.Add(1) - 1
		if b >= batches {
			return nil
		}
		lo := l.first + b*insertTxRows
		n := min(insertTxRows, l.total-int(b*insertTxRows))
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{l.table}, columns, copySource(lo, n)); err != nil {
			tx.Rollback(context.Background())
			return fmt.Errorf("COPY of rows %d..%d: %w", lo, lo+int64(n)-1, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		now := time.Now()
		l.mu.Lock()
		if now.After(l.lastCommit) {
			l.lastCommit = now
		}
		l.mu.Unlock()
	}
}

func (l *insertLoad) lastCommitTime() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastCommit
}

// slotLag returns how many bytes of WAL the slot has not confirmed
// (pg_current_wal_lsn() - confirmed_flush_lsn), or -1 when it has no
// confirmed position.
func (p *postgres) slotLag(ctx context.Context, slot string) (int64, error) {
	c, err := p.srv.Connect(ctx, "postgres")
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var lag *int64
	if err := c.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lag); err != nil {
		return 0, err
	}
	if lag == nil {
		return -1, nil
	}
	return *lag, nil
}

// dropRun removes a run's replication slot and database (the worker is
// stopped: the slot is released, perhaps a moment later).
func (p *postgres) dropRun(ctx context.Context, db, slot string) error {
	c, err := p.srv.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dropping slot %s: %w", slot, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", db, err)
	}
	return nil
}
