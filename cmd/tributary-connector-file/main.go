// Command tributary-connector-file is the plugin serving the file source and
// sink connectors. A worker runs it from its plugin.path.
package main

import (
	"github.com/tributary-data/tributary/connectors/file"
	"github.com/tributary-data/tributary/plugins"
)

func main() {
	plugins.Serve(
		plugins.Class{Name: file.SourceClass, Aliases: []string{"FileStreamSource", file.KafkaSourceClass}, New: file.NewSource},
		plugins.Class{Name: file.SinkClass, Aliases: []string{"FileStreamSink", file.KafkaSinkClass}, New: file.NewSink},
	)
}
