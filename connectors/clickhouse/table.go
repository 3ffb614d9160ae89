package clickhouse

// Table formats (version 1).
//
// The sink writes into <database>.<table>, the table named by
// topic2TableMap or table.name.format. With auto.create it creates a
// missing table from the first record's schemas (CREATE TABLE IF NOT
// EXISTS, so tasks racing to create it agree):
//
//	insert mode:  columns = the value's fields (plus key fields the value
//	              lacks), in schema order;
//	              ENGINE = MergeTree ORDER BY (<key columns>), or tuple()
//	              when records have no struct key.
//	              For CDC change events the table also gets _version and
//	              _is_deleted (below): every change is appended, so the
//	              table is the change history.
//	upsert mode:  the same columns, plus
//	                _version    UInt64  orders the versions of one key
//	                _is_deleted UInt8   1: the key was deleted at _version
//	              ENGINE = ReplacingMergeTree(_version) ORDER BY (<key
//	              columns>) on servers before 23.2 (18.16 has no is_deleted
//	              parameter); ReplacingMergeTree(_version, _is_deleted) on
//	              23.2 and later.
//
// Key columns are the fields of the record key (a struct; upsert mode
// needs one). They are never Nullable (ORDER BY columns cannot be).
//
// _version is the change's position in the source: source.lsn of a
// Debezium change event when it has one (a PostgreSQL LSN grows with every
// change), else the record's Kafka offset (records of one key stay in one
// partition, so offsets grow per key). A replay writes the same rows with
// the same versions, so it changes nothing visible. A row is written per
// record: op c, r, u write the "after" image with _is_deleted = 0; op d
// writes the "before" image (or only the key, when "before" is null) with
// _is_deleted = 1; tombstones (null values, which Debezium sends after a
// delete) and other ops (t, m) are skipped. Plain records in upsert mode
// are versioned by offset and never deleted. The current state of the
// source table is
//
//	SELECT ... FROM t FINAL WHERE NOT _is_deleted
//
// (FINAL keeps the row with the highest _version per ORDER BY key; rows of
// equal version, a replay's, are identical). Background merges drop older
// versions eventually; deleted keys keep their _is_deleted row on servers
// before 23.2.
//
// auto.evolve adds a column for a record field the table lacks (ALTER
// TABLE ADD COLUMN, typed as auto.create would); columns are never dropped
// or retyped.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Meta columns.
const (
	colVersion = "_version"
	colDeleted = "_is_deleted"
)

// ClickHouse error codes the sink tells apart.
const (
	codeUnknownTable    = 60
	codeUnknownDatabase = 81
	codeDuplicateColumn = 15
	codeIllegalColumn   = 44
)

var authCodes = []int32{192, 193, 194, 516}

// transientCodes are server errors a retry can cure.
var transientCodes = map[int32]bool{
	3: true, 159: true, 164: false, 202: true, 209: true, 210: true, 225: true, 241: true, 242: true,
	252: true, 319: true, 425: true, 999: true,
}

// ErrPermanent is wrapped by errors a retry cannot cure.
var ErrPermanent = errors.New("clickhouse sink")

func isCode(err error, codes ...int32) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	for _, c := range codes {
		if ex.Code == c {
			return true
		}
	}
	return false
}

// transient tells retriable failures from permanent ones.
func transient(err error) bool {
	if err == nil || errors.Is(err, ErrPermanent) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return transientCodes[ex.Code]
	}
	var ne net.Error
	var op *net.OpError
	return errors.As(err, &ne) || errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
}

// dial opens a connection pool and checks it with a ping; errors say what
// to change.
func dial(ctx context.Context, s *settings) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:             []string{s.addr},
		Auth:             clickhouse.Auth{Database: s.database, Username: s.username, Password: s.password},
		DialTimeout:      s.timeout,
		ReadTimeout:      s.timeout,
		MaxOpenConns:     4,
		MaxIdleConns:     2,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: connecting to %s: %v", ErrPermanent, s.addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, explainConnect(s, err)
	}
	return conn, nil
}

func explainConnect(s *settings, err error) error {
	switch {
	case isCode(err, codeUnknownDatabase):
		return fmt.Errorf("%w: database %q does not exist on %s: create it (CREATE DATABASE %s) or change %s: %w", ErrPermanent, s.database, s.addr, quoteIdent(s.database), keyDatabase, err)
	case isCode(err, authCodes...):
		return fmt.Errorf("%w: ClickHouse at %s refused user %q: check %s and %s: %w", ErrPermanent, s.addr, s.username, keyUsername, keyPassword, err)
	case transient(err):
		return fmt.Errorf("connecting to ClickHouse at %s (%s:%s): %w", s.addr, keyHostname, keyPort, err)
	}
	return fmt.Errorf("%w: connecting to ClickHouse at %s: %w", ErrPermanent, s.addr, err)
}

// quoteIdent quotes a ClickHouse identifier.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "`", "\\`") + "`"
}

// quoteString quotes a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// column is one column of a target table.
type column struct {
	name string
	typ  *chType
}

// table is what the sink knows of a target table.
type table struct {
	name  string // unquoted, in the configured database
	cols  []column
	index map[string]int
}

func (t *table) has(name string) bool { _, ok := t.index[name]; return ok }

// describe reads a table's columns; it returns nil, nil when the table
// does not exist.
func describe(ctx context.Context, conn driver.Conn, db, name string) (*table, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT name, type FROM system.columns WHERE database = %s AND table = %s", quoteString(db), quoteString(name)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t := &table{name: name, index: map[string]int{}}
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			return nil, err
		}
		t.index[n] = len(t.cols)
		t.cols = append(t.cols, column{name: n, typ: parseType(typ)})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(t.cols) == 0 {
		return nil, nil
	}
	return t, nil
}

// colDef is a column to create.
type colDef struct{ name, typ string }

// createTable creates a table (IF NOT EXISTS).
func createTable(ctx context.Context, conn driver.Conn, db, name string, cols []colDef, keys []string, versioned, upsert bool, c caps) error {
	return conn.Exec(ctx, createTableSQL(db, name, cols, keys, versioned, upsert, c))
}

// createTableSQL is the DDL of createTable for a server of capabilities c.
func createTableSQL(db, name string, cols []colDef, keys []string, versioned, upsert bool, c caps) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s (", quoteIdent(db), quoteIdent(name))
	for i, col := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(col.name) + " " + col.typ)
	}
	if versioned {
		fmt.Fprintf(&b, ", %s UInt64, %s UInt8", quoteIdent(colVersion), quoteIdent(colDeleted))
	}
	b.WriteString(") ENGINE = ")
	switch {
	case upsert && c.isDeleted():
		fmt.Fprintf(&b, "ReplacingMergeTree(%s, %s)", quoteIdent(colVersion), quoteIdent(colDeleted))
	case upsert:
		fmt.Fprintf(&b, "ReplacingMergeTree(%s)", quoteIdent(colVersion))
	default:
		b.WriteString("MergeTree")
	}
	b.WriteString(" ORDER BY ")
	if len(keys) == 0 {
		b.WriteString("tuple()")
	} else {
		q := make([]string, len(keys))
		for i, k := range keys {
			q[i] = quoteIdent(k)
		}
		b.WriteString("(" + strings.Join(q, ", ") + ")")
	}
	return b.String()
}

// addColumn adds a column. 18.16 has no ADD COLUMN IF NOT EXISTS: a
// column another task added meanwhile is fine.
func addColumn(ctx context.Context, conn driver.Conn, db, name string, col colDef) error {
	err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", quoteIdent(db), quoteIdent(name), quoteIdent(col.name), col.typ))
	if isCode(err, codeDuplicateColumn, codeIllegalColumn) {
		return nil
	}
	return err
}
