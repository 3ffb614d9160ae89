// Command tributary-connector-clickhouse is the plugin serving the
// ClickHouse sink connector (ClickHouse's own connector class and keys
// accepted). A worker runs it from its plugin.path.
package main

import (
	"github.com/tributary-data/tributary/connectors/clickhouse"
	"github.com/tributary-data/tributary/plugins"
)

func main() {
	plugins.Serve(
		plugins.Class{Name: clickhouse.SinkClass, Aliases: []string{"ClickHouseSink", clickhouse.ClickHouseClass}, New: clickhouse.NewSink},
	)
}
