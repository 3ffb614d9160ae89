// Package redis is Tributary's Redis connectors: RedisSource (streams
// through a consumer group, or pub/sub) and RedisSink (SET, HSET, XADD or
// JSONSET per record, DEL on deletes). They take the config keys of Redis'
// Kafka connector (com.redis.kafka.connect.*) where the meaning is the same:
// redis.uri, redis.username, redis.password, redis.stream.name,
// redis.stream.offset, redis.stream.consumer.group,
// redis.stream.consumer.name, redis.stream.block, redis.stream.count,
// redis.stream.delivery, topic, redis.command, redis.keyspace,
// redis.separator, redis.multiexec. Keys of our own: redis.mode,
// redis.channels, redis.patterns, redis.stream.key.field,
// redis.stream.claim.min.idle.ms, redis.ttl.seconds.
//
// Delivery guarantees:
//
//   - streams (redis.mode=stream): at-least-once. Entries are read with
//     XREADGROUP and acknowledged (XACK) only in SourceTask.Commit, after
//     the broker acknowledged the records and the worker stored their
//     offsets. Entries left pending by a task that died are claimed with
//     XAUTOCLAIM once idle for redis.stream.claim.min.idle.ms and delivered
//     again. See source.go for the record mapping and the offset format.
//   - pub/sub (redis.mode=pubsub): AT-MOST-ONCE. Redis keeps no copy of a
//     published message: messages published while no task is subscribed,
//     or buffered in a task that stops or crashes before the broker
//     acknowledged them, are lost.
//   - the sink is at-least-once and idempotent for SET, HSET, JSONSET and
//     DEL: replaying records leaves Redis as it was. XADD appends again on
//     a replay. See sink.go for the key and value mapping.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tributary-data/tributary/connect"
)

// Class names: ours, and those of Redis' Kafka connector that these replace.
const (
	SourceClass      = "io.tributary.connect.redis.RedisSourceConnector"
	SinkClass        = "io.tributary.connect.redis.RedisSinkConnector"
	RedisSourceClass = "com.redis.kafka.connect.RedisStreamSourceConnector"
	RedisSinkClass   = "com.redis.kafka.connect.RedisSinkConnector"
	version          = "1.0.0"
)

// Connection keys, shared by source and sink.
const (
	keyURI      = "redis.uri"
	keyUser     = "redis.username"
	keyPassword = "redis.password"
	keyTLS      = "redis.tls"
	keyCluster  = "redis.cluster"
	keyTimeout  = "redis.timeout"
)

const connGroup = "Connection"

// defineConnection adds the connection keys to d.
func defineConnection(d *connect.ConfigDef) *connect.ConfigDef {
	return d.
		Define(connect.ConfigKey{Name: keyURI, Type: connect.TypeString, Default: "redis://localhost:6379", Importance: connect.High, Group: connGroup, OrderInGroup: 1,
			Validator: connect.NonEmptyString(),
			Doc:       "The Redis server: redis://[[username]:password@]host[:port][/database] (rediss:// for TLS)."}).
		Define(connect.ConfigKey{Name: keyUser, Type: connect.TypeString, Importance: connect.Medium, Group: connGroup, OrderInGroup: 2,
			Doc: "The ACL user name (overrides the URI's)."}).
		Define(connect.ConfigKey{Name: keyPassword, Type: connect.TypePassword, Importance: connect.Medium, Group: connGroup, OrderInGroup: 3,
			Doc: "The password (overrides the URI's)."}).
		Define(connect.ConfigKey{Name: keyTLS, Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: connGroup, OrderInGroup: 4,
			Doc: "Connect with TLS (as a rediss:// URI does)."}).
		Define(connect.ConfigKey{Name: keyCluster, Type: connect.TypeBoolean, Default: "false", Importance: connect.Low, Group: connGroup, OrderInGroup: 5,
			Validator: connect.ValidatorFunc("false", func(_ string, v any) error {
				if b, _ := v.(bool); b {
					return errors.New("Redis Cluster is not supported: point redis.uri at a standalone server (or a cluster-compatible proxy) and remove redis.cluster")
				}
				return nil
			}),
			Doc: "Accepted for compatibility; only false (a standalone server) is supported."}).
		Define(connect.ConfigKey{Name: keyTimeout, Type: connect.TypeLong, Default: "60", Importance: connect.Low, Group: connGroup, OrderInGroup: 6,
			Validator: connect.AtLeast(int64(1)), Doc: "Timeout of one command, in seconds (blocking reads excepted)."})
}

// connSettings are the parsed connection keys.
type connSettings struct {
	opts *redis.Options
}

// parseConnection reads the connection keys of a parsed config.
func parseConnection(c connect.Config, errs map[string][]string) connSettings {
	uri := strings.TrimSpace(c.String(keyURI))
	opts, err := redis.ParseURL(uri)
	if err != nil {
		errs[keyURI] = append(errs[keyURI], fmt.Sprintf("%q is not a Redis URI (%v): use redis://[[username]:password@]host[:port][/database], or rediss:// for TLS", uri, err))
		return connSettings{}
	}
	if u := c.String(keyUser); u != "" {
		opts.Username = u
	}
	if c.Has(keyPassword) {
		if p := c.Password(keyPassword).Value(); p != "" {
			opts.Password = p
		}
	}
	if c.Bool(keyTLS) && opts.TLSConfig == nil {
		host, _, _ := net.SplitHostPort(opts.Addr)
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	t := time.Duration(c.Long(keyTimeout)) * time.Second
	opts.ReadTimeout, opts.WriteTimeout = t, t
	opts.DialTimeout = 10 * time.Second
	opts.DisableIdentity = true // no CLIENT SETINFO: older servers and proxies reject it
	opts.Protocol = 2           // RESP2: plain replies everywhere (pub/sub included)
	return connSettings{opts: opts}
}

// client opens a client; it connects lazily.
func (cs connSettings) client() *redis.Client { return redis.NewClient(cs.opts) }

// check connects once and PINGs, returning per-key errors saying what to
// change: unreachable server, authentication failure.
func (cs connSettings) check(ctx context.Context) map[string][]string {
	o := *cs.opts
	o.MaxRetries = -1
	o.DialTimeout = 5 * time.Second
	c := redis.NewClient(&o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := c.Ping(ctx).Err()
	if err == nil {
		return nil
	}
	return map[string][]string{connErrorKey(err): {describeConnError(o.Addr, err)}}
}

// isAuthError reports whether err is Redis refusing the credentials (the
// error codes WRONGPASS and NOAUTH, or an AUTH without configured password).
func isAuthError(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	m := re.Error()
	return strings.HasPrefix(m, "WRONGPASS") || strings.HasPrefix(m, "NOAUTH") ||
		strings.HasPrefix(m, "ERR AUTH") || strings.HasPrefix(m, "ERR invalid password") ||
		strings.HasPrefix(m, "ERR invalid username-password")
}

func connErrorKey(err error) string {
	if isAuthError(err) {
		return keyPassword
	}
	return keyURI
}

func describeConnError(addr string, err error) string {
	if isAuthError(err) {
		return fmt.Sprintf("Redis at %s refused the credentials (%v): set the right password in redis.password or in redis.uri (redis://:password@host:port), and redis.username for an ACL user", addr, err)
	}
	return fmt.Sprintf("cannot reach Redis at %s (%v): check the host and port in redis.uri and that the server is running and reachable", addr, err)
}

// rejectUnknown adds an error for every redis.* key def does not define:
// a key of Redis' connector that we do not support must not be silently
// ignored.
func rejectUnknown(def *connect.ConfigDef, config map[string]string, errs map[string][]string) {
	for k := range config {
		if !strings.HasPrefix(k, "redis.") {
			continue
		}
		if _, ok := def.Key(k); !ok {
			errs[k] = append(errs[k], fmt.Sprintf("%s is not supported by this connector: remove it (see the connector's documented redis.* keys)", k))
		}
	}
}
