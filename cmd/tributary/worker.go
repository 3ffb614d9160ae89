package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-data/tributary/worker/herder"
	"github.com/tributary-data/tributary/worker/rest"
	"github.com/tributary-data/tributary/worker/workerconfig"
)

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := workerconfig.Default()
	configPath := fs.String("config", "", "worker config: JSON, or a Kafka Connect worker .properties file")
	bootstrap := fs.String("bootstrap-servers", strings.Join(def.BootstrapServers, ","), "Kafka brokers, HOST:PORT[,HOST:PORT]")
	groupID := fs.String("group-id", def.GroupID, "worker cluster id (workers sharing it share connectors)")
	restListen := fs.String("rest-listen", def.RESTListen, "REST API address, HOST:PORT")
	pluginPath := fs.String("plugin-path", "", "folder of tributary-connector-* plugins (default: the folder of this executable)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	var sets multiFlag
	fs.Var(&sets, "set", "worker config key=value, repeatable")
	setUsage(fs, "tributary worker [--config FILE] --bootstrap-servers HOST:PORT --group-id ID --rest-listen HOST:PORT --plugin-path DIR [--set key=value ...]", func(w io.Writer) {
		fmt.Fprintf(w, "\nConfig keys (config file or --set; Kafka Connect's worker names):\n")
		for _, k := range workerconfig.Keys() {
			fmt.Fprintf(w, "  %s\n      %s\n", k[0], k[1])
		}
		fmt.Fprintf(w, "\nPrecedence: defaults < config file < environment < flags < --set.\n")
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := def
	err := applyLayers(fs, *configPath, []flagKey{
		{"bootstrap-servers", "bootstrap.servers", bootstrap}, {"group-id", "group.id", groupID},
		{"rest-listen", "rest.listen", restListen}, {"plugin-path", "plugin.path", pluginPath},
	}, sets, func(k, v string) (err error) { cfg, err = cfg.Set(k, v); return err })
	if err != nil {
		return err
	}
	if cfg.PluginPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the default plugin path: %w (set --plugin-path)", err)
		}
		cfg.PluginPath = filepath.Dir(exe)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	stopProfile := startCPUProfile("worker", stderr)
	defer stopProfile()
	return serveWorker(ctx, cfg, logger)
}

// serveWorker runs a worker until ctx is done: it waits for Kafka to be
// reachable, opens the herder, and serves the REST API.
func serveWorker(ctx context.Context, cfg workerconfig.Config, logger *slog.Logger) error {
	tuneGC()
	cfg, err := cfg.Validate()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var h *herder.Herder
	for delay := 500 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
		octx, cancel := context.WithTimeout(ctx, 60*time.Second)
		h, err = herder.Open(octx, herder.Config{
			Brokers: cfg.BootstrapServers, GroupID: cfg.GroupID, WorkerID: cfg.WorkerID(), PluginPath: cfg.PluginPath,
			ConfigTopic: cfg.ConfigTopic, OffsetTopic: cfg.OffsetTopic, StatusTopic: cfg.StatusTopic,
			ReplicationFactor: cfg.ReplicationFactor, OffsetFlushInterval: cfg.OffsetFlushInterval,
			Version: version, Commit: commit, Logger: logger, Registerer: reg, ConverterDefaults: cfg.ConverterDefaults,
			ProducerCompression: cfg.ProducerCompression,
			Cluster: herder.ClusterConfig{SessionTimeout: cfg.SessionTimeout, HeartbeatInterval: cfg.HeartbeatInterval,
				RebalanceTimeout: cfg.RebalanceTimeout, ScheduledRebalanceMaxDelay: rebalanceDelay(cfg.ScheduledRebalanceMaxDelay)},
		})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, workerconfig.ErrConfig) || strings.Contains(err.Error(), "plugin.path") {
			return err
		}
		logger.Warn("worker not started yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	levels := rest.NewLevelRegistry(slog.LevelInfo)
	srv := rest.New(rest.Options{Herder: h, Loggers: levels, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Logger: logger, Listen: cfg.RESTListen})
	if err := srv.Start(); err != nil {
		h.Close()
		return fmt.Errorf("REST API on %s: %w", cfg.RESTListen, err)
	}
	logger.Info("worker started", "rest", srv.Addr().String(), "worker_id", cfg.WorkerID(), "group_id", cfg.GroupID, "brokers", cfg.BootstrapServers, "plugin_path", cfg.PluginPath)
	<-ctx.Done()
	logger.Info("worker shutting down")
	rerr := srv.Close()
	herr := h.Close()
	logger.Info("worker stopped")
	return errors.Join(rerr, herr)
}

// rebalanceDelay maps scheduled.rebalance.max.delay.ms to the herder's
// setting, where 0 means the default and a negative value none.
func rebalanceDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
