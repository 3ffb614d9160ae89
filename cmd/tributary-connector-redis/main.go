// Command tributary-connector-redis is the plugin serving the Redis source
// (streams, pub/sub) and sink connectors (the Redis Kafka connector's classes
// and keys accepted). A worker runs it from its plugin.path.
package main

import (
	"github.com/tributary-data/tributary/connectors/redis"
	"github.com/tributary-data/tributary/plugins"
)

func main() {
	plugins.Serve(
		plugins.Class{Name: redis.SourceClass, Aliases: []string{"RedisSource", redis.RedisSourceClass}, New: redis.NewSource},
		plugins.Class{Name: redis.SinkClass, Aliases: []string{"RedisSink", redis.RedisSinkClass}, New: redis.NewSink},
	)
}
