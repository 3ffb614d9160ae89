// Command tributary-connector-postgres is the plugin serving the Postgres
// connectors: the CDC source (logical replication, pgoutput; Debezium's
// class and keys accepted), the query source and the sink (Confluent JDBC's
// classes and keys accepted, for postgresql URLs). A worker runs it from its
// plugin.path.
package main

import (
	"github.com/tributary-data/tributary/connectors/postgres/cdc"
	"github.com/tributary-data/tributary/connectors/postgres/query"
	"github.com/tributary-data/tributary/connectors/postgres/sink"
	"github.com/tributary-data/tributary/plugins"
)

func main() {
	plugins.Serve(
		plugins.Class{Name: cdc.SourceClass, Aliases: []string{"PostgresCdcSource", cdc.DebeziumClass}, New: cdc.NewSource},
		plugins.Class{Name: query.SourceClass, Aliases: []string{"PostgresQuerySource", query.JDBCClass}, New: query.NewSource},
		plugins.Class{Name: sink.SinkClass, Aliases: []string{"PostgresSink", sink.JDBCClass}, New: sink.NewSink},
	)
}
