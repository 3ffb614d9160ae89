// Package jdbcconf holds what Tributary's PostgreSQL query source and sink
// share with Confluent's JDBC connectors: the connection keys
// (connection.url, connection.user, connection.password,
// connection.attempts, connection.backoff.ms, dialect.name), the parsing of
// JDBC and libpq URLs into a pgx connection config, the declaration of
// Confluent keys we accept but only with the value we implement, and the
// classification of PostgreSQL errors into transient and permanent ones.
//
// connection.url accepts
//
//	jdbc:postgresql://host[:port][,host2[:port2]...]/db[?param=value&...]
//	jdbc:postgresql:db, jdbc:postgresql:/   (localhost:5432)
//	postgres://... and postgresql://...     (libpq URLs, as pgx parses them)
//
// JDBC parameters (in the URL, or as connection.<param> keys, which
// Confluent's connectors pass to the driver) are translated to libpq's: user, password, sslmode,
// ssl=true (verify-full, as the PostgreSQL JDBC driver does), sslcert,
// sslkey, sslrootcert, sslpassword, connectTimeout (s), ApplicationName,
// currentSchema (search_path), options, targetServerType. Tuning knobs of
// the JDBC driver that have no meaning for our driver (see ignoredJDBCParams)
// are accepted and have no effect; any other parameter is an error naming
// it. Any other JDBC subprotocol (jdbc:mysql:...) is an error: only
// PostgreSQL is supported.
package jdbcconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tributary-data/tributary/connect"
)

// Connection keys, as Confluent's JDBC connectors name them.
const (
	URLKey      = "connection.url"
	UserKey     = "connection.user"
	PasswordKey = "connection.password"
	AttemptsKey = "connection.attempts"
	BackoffKey  = "connection.backoff.ms"
	DialectKey  = "dialect.name"

	// Dialect is the only dialect.name accepted (besides "", which means
	// "from the URL").
	Dialect = "PostgreSqlDatabaseDialect"
)

// Group is the config group of the connection keys.
const Group = "Database"

// DefineConnection adds the connection keys to d, in group Group, and
// returns d. userAliases are other names accepted for connection.user
// (Debezium's JDBC sink calls it connection.username).
func DefineConnection(d *connect.ConfigDef, userAliases ...string) *connect.ConfigDef {
	return d.
		Define(connect.ConfigKey{Name: URLKey, Type: connect.TypeString, Required: true, Importance: connect.High, Group: Group, OrderInGroup: 1,
			DisplayName: "JDBC URL", Validator: urlValidator{},
			Doc: "PostgreSQL connection URL: jdbc:postgresql://host:port/db?user=..&password=.. (Confluent's form) or postgres://user:password@host:port/db?sslmode=... (libpq's form). Other databases are not supported."}).
		Define(connect.ConfigKey{Name: UserKey, Type: connect.TypeString, Importance: connect.High, Group: Group, OrderInGroup: 2, Aliases: userAliases,
			DisplayName: "JDBC User", Doc: "Database user; overrides a user given in connection.url."}).
		Define(connect.ConfigKey{Name: PasswordKey, Type: connect.TypePassword, Importance: connect.High, Group: Group, OrderInGroup: 3,
			DisplayName: "JDBC Password", Doc: "Database password; overrides a password given in connection.url."}).
		Define(connect.ConfigKey{Name: AttemptsKey, Type: connect.TypeInt, Default: "3", Importance: connect.Low, Group: Group, OrderInGroup: 4,
			Validator: connect.AtLeast(1), DisplayName: "JDBC connection attempts", Doc: "How many times a connection is attempted before the attempt fails."}).
		Define(connect.ConfigKey{Name: BackoffKey, Type: connect.TypeLong, Default: "10000", Importance: connect.Low, Group: Group, OrderInGroup: 5,
			Validator: connect.AtLeast(int64(0)), DisplayName: "JDBC connection backoff in milliseconds", Doc: "Wait between connection attempts."}).
		Define(Restricted(DialectKey, Group, 6, "", "The database dialect. Only PostgreSqlDatabaseDialect (or empty: from the URL) is supported.", "", Dialect))
}

// Restricted declares a Confluent key that Tributary accepts with the given
// values only (compared case-insensitively); any other value is a
// validation error naming the key and saying what is supported. def is the
// default ("" for none).
func Restricted(name, group string, order int, def, doc string, accepted ...string) connect.ConfigKey {
	return connect.ConfigKey{Name: name, Type: connect.TypeString, Default: def, Importance: connect.Low, Group: group, OrderInGroup: order,
		Doc: doc, Validator: restricted(accepted)}
}

type restricted []string

func (r restricted) Validate(name string, v any) error {
	s, _ := v.(string)
	for _, a := range r {
		if strings.EqualFold(s, a) {
			return nil
		}
	}
	var shown []string
	for _, a := range r {
		if a == "" {
			a = `"" (unset)`
		}
		shown = append(shown, a)
	}
	return &connect.ConfigValueError{Name: name, Value: v,
		Reason: "not supported by Tributary's PostgreSQL connectors: the supported values are " + strings.Join(shown, ", ")}
}

func (r restricted) String() string {
	shown := make([]string, len(r))
	for i, a := range r {
		shown[i] = a
		if a == "" {
			shown[i] = `""`
		}
	}
	return "[" + strings.Join(shown, ", ") + "]"
}

// urlValidator checks connection.url without echoing the URL (it may hold a
// password): its errors show the URL with passwords hidden.
type urlValidator struct{}

func (urlValidator) Validate(name string, v any) error {
	s, _ := v.(string)
	if _, err := ParseURL(s); err != nil {
		return &connect.ConfigValueError{Name: name, Value: Redact(s), Reason: err.Error()}
	}
	return nil
}

func (urlValidator) String() string { return "jdbc:postgresql://... or postgres://..." }

// Redact returns a URL with its password (userinfo or parameter) hidden.
func Redact(raw string) string {
	u, err := url.Parse(strings.TrimPrefix(raw, "jdbc:"))
	if err != nil {
		if strings.Contains(strings.ToLower(raw), "password") || strings.Contains(raw, "@") {
			return "[hidden]"
		}
		return raw
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "hidden")
			changed = true
		}
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "hidden")
			changed = true
		}
	}
	if !changed {
		return raw
	}
	u.RawQuery = q.Encode()
	out := u.String()
	if strings.HasPrefix(raw, "jdbc:") {
		out = "jdbc:" + out
	}
	return out
}

// jdbcParams maps PostgreSQL JDBC driver parameters to libpq's.
var jdbcParams = map[string]string{
	"user": "user", "password": "password", "sslmode": "sslmode", "sslcert": "sslcert", "sslkey": "sslkey",
	"sslrootcert": "sslrootcert", "sslpassword": "sslpassword", "connecttimeout": "connect_timeout",
	"applicationname": "application_name", "currentschema": "search_path", "options": "options",
}

// ignoredJDBCParams are PostgreSQL JDBC driver tuning knobs with no
// equivalent in (and no need for) our driver. They are accepted so that
// existing URLs work, and change nothing.
var ignoredJDBCParams = map[string]bool{
	"rewritebatchedinserts": true, "preparethreshold": true, "preparedstatementcachequeries": true,
	"preparedstatementcachesizemib": true, "defaultrowfetchsize": true, "binarytransfer": true,
	"tcpkeepalive": true, "logintimeout": true, "sockettimeout": true, "loggerlevel": true, "loggerfile": true,
	"stringtype": true, "assumeminserverversion": true, "logunclosedconnections": true,
	"sslfactory": true, "sslhostnameverifier": true, "readonly": true, "autosave": true,
}

var targetServerTypes = map[string]string{
	"any": "any", "primary": "read-write", "master": "read-write", "secondary": "standby", "slave": "standby",
	"preferSecondary": "prefer-standby", "preferslave": "prefer-standby", "prefersecondary": "prefer-standby",
}

// ParseURL parses connection.url (see the package doc) into a pgx config.
func ParseURL(raw string) (*pgx.ConnConfig, error) { return parseURL(raw, nil) }

// parseURL parses a URL, adding libpq parameters (from connection.<param>
// keys) to those it has.
func parseURL(raw string, extra url.Values) (*pgx.ConnConfig, error) {
	raw = strings.TrimSpace(raw)
	lower := strings.ToLower(raw)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if len(extra) > 0 {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, errors.New("invalid PostgreSQL URL: cannot add the connection.* parameters to it")
			}
			q := u.Query()
			for k, v := range extra {
				q[k] = v
			}
			u.RawQuery = q.Encode()
			raw = u.String()
		}
		return parseLibpq(raw)
	case strings.HasPrefix(lower, "jdbc:postgresql:"):
		return parseJDBC(raw[len("jdbc:postgresql:"):], extra)
	case strings.HasPrefix(lower, "jdbc:"):
		sub, _, _ := strings.Cut(raw[len("jdbc:"):], ":")
		return nil, fmt.Errorf("only PostgreSQL is supported, this is a %q JDBC URL: use jdbc:postgresql://host:port/db or postgres://host:port/db", sub)
	case raw == "":
		return nil, errors.New("connection.url is empty: give jdbc:postgresql://host:port/db or postgres://host:port/db")
	}
	return nil, errors.New("not a PostgreSQL URL: use jdbc:postgresql://host:port/db or postgres://host:port/db (only PostgreSQL is supported)")
}

func parseLibpq(raw string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL URL: %s", redactErr(err))
	}
	return cfg, nil
}

// redactErr renders a pgx parse error without the URL it quotes.
func redactErr(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// "cannot parse `<url>`: <why>": keep the why only.
		if i := strings.LastIndex(pe.Error(), "`: "); i >= 0 {
			return pe.Error()[i+3:]
		}
	}
	return "cannot parse it"
}

// driverParam translates one PostgreSQL JDBC driver parameter (of the URL,
// or a connection.<param> key) into libpq's, in out.
func driverParam(k, v string, out url.Values) error {
	lk := strings.ToLower(k)
	switch {
	case lk == "ssl":
		if strings.EqualFold(v, "true") || v == "" {
			out.Set("sslmode", "verify-full")
		} else {
			out.Set("sslmode", "disable")
		}
	case lk == "targetservertype":
		m, ok := targetServerTypes[v]
		if !ok {
			m, ok = targetServerTypes[strings.ToLower(v)]
		}
		if !ok {
			return fmt.Errorf("targetServerType=%s is not supported (any, primary, secondary, preferSecondary)", v)
		}
		out.Set("target_session_attrs", m)
	case jdbcParams[lk] != "":
		out.Set(jdbcParams[lk], v)
	case ignoredJDBCParams[lk]:
	default:
		return fmt.Errorf("the JDBC driver parameter %q is not supported by Tributary's PostgreSQL connectors (supported: user, password, ssl, sslmode, sslcert, sslkey, sslrootcert, sslpassword, connectTimeout, ApplicationName, currentSchema, options, targetServerType)", k)
	}
	return nil
}

func parseJDBC(rest string, extra url.Values) (*pgx.ConnConfig, error) {
	rest, rawQuery, _ := strings.Cut(rest, "?")
	hosts, db := "localhost:5432", ""
	if strings.HasPrefix(rest, "//") {
		h, d, _ := strings.Cut(rest[2:], "/")
		if h != "" {
			hosts = h
		}
		db = d
	} else {
		db = strings.TrimPrefix(rest, "/")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("invalid JDBC URL parameters: %v", err)
	}
	out := url.Values{}
	// ssl=true must not override an explicit sslmode: apply ssl first.
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return strings.EqualFold(keys[i], "ssl") && !strings.EqualFold(keys[j], "ssl") })
	for _, k := range keys {
		vs := q[k]
		if err := driverParam(k, vs[len(vs)-1], out); err != nil {
			return nil, fmt.Errorf("JDBC URL parameter: %w", err)
		}
	}
	for k, v := range extra {
		out[k] = v
	}
	u := "postgres://" + hosts + "/" + db
	if len(out) > 0 {
		u += "?" + out.Encode()
	}
	return parseLibpq(u)
}

// Settings are the parsed connection keys.
type Settings struct {
	Config   *pgx.ConnConfig
	Attempts int
	Backoff  time.Duration
}

// connectionKeys are the connection.* keys that are not driver parameters.
var connectionKeys = map[string]bool{URLKey: true, UserKey: true, PasswordKey: true, AttemptsKey: true, BackoffKey: true, "connection.username": true}

// FromConfig reads the connection keys of a parsed config, and the
// connection.<param> keys Confluent's connectors pass to the JDBC driver
// (translated as URL parameters are). Errors are per key.
func FromConfig(c connect.Config) (Settings, map[string][]string) {
	errs := map[string][]string{}
	extra := url.Values{}
	for k, v := range c.Raw {
		if !strings.HasPrefix(k, "connection.") || connectionKeys[k] {
			continue
		}
		if err := driverParam(strings.TrimPrefix(k, "connection."), v, extra); err != nil {
			errs[k] = append(errs[k], err.Error())
		}
	}
	pc, err := parseURL(c.String(URLKey), extra)
	if err != nil {
		errs[URLKey] = append(errs[URLKey], err.Error())
	}
	if len(errs) > 0 {
		return Settings{}, errs
	}
	if u := c.String(UserKey); u != "" {
		pc.User = u
	}
	if p := c.Password(PasswordKey).Value(); p != "" {
		pc.Password = p
	}
	return Settings{Config: pc, Attempts: int(c.Int(AttemptsKey)), Backoff: time.Duration(c.Long(BackoffKey)) * time.Millisecond}, nil
}

// Connect opens a connection, making up to s.Attempts attempts s.Backoff
// apart while the failures are transient. ctx cancels the attempts and the
// waits.
func (s Settings) Connect(ctx context.Context) (*pgx.Conn, error) {
	attempts := max(s.Attempts, 1)
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			t := time.NewTimer(s.Backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		var c *pgx.Conn
		c, err = pgx.ConnectConfig(ctx, s.Config.Copy())
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !Transient(err) && !IsConnectError(err) {
			break
		}
	}
	return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", s.Where(), err)
}

// Where names the server and database, for messages (no credentials).
func (s Settings) Where() string {
	return fmt.Sprintf("%s:%d/%s as %s", s.Config.Host, s.Config.Port, s.Config.Database, s.Config.User)
}

// IsConnectError reports whether err is a failure to establish a connection.
func IsConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// Transient reports whether err is worth retrying: the connection broke or
// could not be made, the server is shutting down, out of resources or
// restarting, or the transaction lost a serialization race or deadlock.
// Data, constraint and syntax errors are permanent. Context cancellation is
// neither: callers check their context first.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
		switch pgErr.Code {
		case "55P03", "55006", "0A000": // lock not available, object in use, cached plan changed
			return pgErr.Code != "0A000" || strings.Contains(pgErr.Message, "cached plan")
		}
		return false
	}
	if IsConnectError(err) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "conn closed")
}

// Quote quotes an identifier for SQL.
func Quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// QuoteQualified quotes schema.name for SQL.
func QuoteQualified(schema, name string) string {
	if schema == "" {
		return Quote(name)
	}
	return pgx.Identifier{schema, name}.Sanitize()
}
