package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"

	"github.com/tributary-data/tributary/broker"
	"github.com/tributary-data/tributary/worker/workerconfig"
)

// runDev runs the main job: the embedded broker and one worker in a local
// data dir (Kafka on 127.0.0.1:9092, REST on 127.0.0.1:8083).
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./data", "folder for the broker's data")
	kafka := fs.String("kafka-listen", "127.0.0.1:9092", "Kafka listener of the embedded broker")
	restListen := fs.String("rest-listen", "127.0.0.1:8083", "REST API of the worker")
	metrics := fs.String("metrics-listen", "127.0.0.1:9100", "Prometheus metrics of the broker (the worker's are at REST /metrics)")
	pluginPath := fs.String("plugin-path", "", "folder of tributary-connector-* plugins (default: the folder of this executable)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	setUsage(fs, "tributary dev [--data-dir DIR]   # embedded broker + one worker: Kafka :9092, REST :8083", nil)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	bcfg := broker.Default()
	bcfg.Listen, bcfg.DataDir, bcfg.MetricsListen = *kafka, filepath.Join(*dataDir, "broker"), *metrics
	b, err := broker.Open(bcfg, broker.Options{Logger: logger.With("component", "broker")})
	if err != nil {
		return err
	}
	defer b.Close()
	wcfg := workerconfig.Default()
	wcfg.BootstrapServers = []string{b.Addr()}
	wcfg.GroupID = "tributary-dev"
	wcfg.RESTListen = *restListen
	wcfg.PluginPath = *pluginPath
	if wcfg.PluginPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		wcfg.PluginPath = filepath.Dir(exe)
	}
	return serveWorker(ctx, wcfg, logger.With("component", "worker"))
}
