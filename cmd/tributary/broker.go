package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tributary-data/tributary/broker"
)

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := broker.Default()
	configPath := fs.String("config", "", "config file: JSON object or Kafka server.properties-style key=value lines")
	listen := fs.String("listen", def.Listen, "address for Kafka clients, HOST:PORT")
	advertise := fs.String("advertise", "", "HOST:PORT clients are told to connect to (default: the bound address)")
	dataDir := fs.String("data-dir", def.DataDir, "directory for topics, offsets and broker metadata")
	metricsListen := fs.String("metrics-listen", "", "HOST:PORT for Prometheus metrics at /metrics (default: off)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	var sets multiFlag
	fs.Var(&sets, "set", "config key=value, repeatable (e.g. --set log.retention.hours=24 --set num.partitions=3)")
	setUsage(fs, "tributary broker [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--set key=value ...]", func(w io.Writer) {
		fmt.Fprintf(w, "\nConfig keys (config file or --set; Kafka's names):\n")
		for _, k := range broker.Keys() {
			fmt.Fprintf(w, "  %s (default %s)\n      %s\n", k.Key, k.Default, k.Doc)
		}
		fmt.Fprintf(w, "\nPrecedence: built-in defaults < config file < environment < flags < --set.\n")
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := def
	err := applyLayers(fs, *configPath, []flagKey{
		{"listen", "listen", listen}, {"advertise", "advertise", advertise},
		{"data-dir", "data.dir", dataDir}, {"metrics-listen", "metrics.listen", metricsListen},
	}, sets, func(k, v string) (err error) { cfg, err = cfg.Set(k, v); return err })
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	stopProfile := startCPUProfile("broker", stderr)
	defer stopProfile()
	b, err := broker.Open(cfg, broker.Options{Logger: logger})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}
