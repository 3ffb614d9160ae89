package main

import (
	"github.com/tributary-data/tributary/bench/benchproc"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tributary-data/tributary/plugins"
	"github.com/tributary-data/tributary/worker/herder"
	"github.com/tributary-data/tributary/worker/rest"
)

// e2eFlushMs is the workers' offset.flush.interval.ms in the end-to-end
// runs: the file sink writes its last lines at a flush, so the interval
// bounds how late the final lines appear (and the timing's granularity).
const e2eFlushMs = 250

// worker is the worker of one end-to-end run: a `tributary worker`
// process running its connectors in plugin processes, or a herder linked
// into this process running them in-process.
type worker interface {
	alive() error
	startCPU() // the measured interval starts
	sample()
	// usage returns CPU seconds (worker with its plugins, worker alone)
	// and peak RSS in MiB (worker, plugins; 0 when not measured).
	usage() (cpu, selfCPU, peakMB, pluginsPeakMB float64)
	stop()
}

// procWorker is `tributary worker` in a subprocess.
type procWorker struct {
	p   *benchproc.Proc
	cpu *familyCPU
}

func startWorkerProc(bin, brokerAddr, restAddr, dir string) (*procWorker, error) {
	p, err := benchproc.Start("worker", []string{bin, "worker", "--bootstrap-servers", brokerAddr, "--group-id", "bench",
		"--rest-listen", restAddr, "--plugin-path", filepath.Dir(bin), "--set", fmt.Sprintf("offset.flush.interval.ms=%d", e2eFlushMs)}, dir)
	if err != nil {
		return nil, err
	}
	return &procWorker{p: p}, nil
}

func (w *procWorker) alive() error { return w.p.Alive() }
func (w *procWorker) startCPU()    { w.cpu = newFamilyCPU(w.p.PID(), nil) }
func (w *procWorker) sample()      { w.cpu.sample() }
func (w *procWorker) stop()        { w.p.Stop(stopGrace) }

func (w *procWorker) usage() (cpu, selfCPU, peakMB, pluginsPeakMB float64) {
	cpu, selfCPU = w.cpu.seconds()
	_, peakMB = benchproc.MemMB(w.p.PID())
	return cpu, selfCPU, peakMB, w.cpu.peakMB
}

// linkedWorker is the worker's herder and REST API in this process, with
// the file connectors linked in (plugins.InProcessLauncher): the reference
// the plugin boundary's cost is measured against. Its CPU is this
// process's (the benchmark's own loop is a stat call every 20 ms).
type linkedWorker struct {
	h        *herder.Herder
	srv      *rest.Server
	cpuStart float64
}

func startLinkedWorker(ctx context.Context, brokerAddr, restAddr, pluginPath string) (*linkedWorker, error) {
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	h, err := herder.Open(octx, herder.Config{
		Brokers: []string{brokerAddr}, GroupID: "bench", WorkerID: restAddr, PluginPath: pluginPath,
		ConfigTopic: "connect-configs", OffsetTopic: "connect-offsets", StatusTopic: "connect-status",
		ReplicationFactor: -1, OffsetFlushInterval: e2eFlushMs * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Launch: plugins.InProcessLauncher(fileClasses()...),
	})
	if err != nil {
		return nil, fmt.Errorf("linked worker: %w", err)
	}
	srv := rest.New(rest.Options{Herder: h, Listen: restAddr, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.Start(); err != nil {
		h.Close()
		return nil, fmt.Errorf("linked worker REST API: %w", err)
	}
	return &linkedWorker{h: h, srv: srv}, nil
}

func (w *linkedWorker) alive() error { return nil }
func (w *linkedWorker) startCPU()    { w.cpuStart = selfCPU() }
func (w *linkedWorker) sample()      {}

func (w *linkedWorker) usage() (cpu, self, peakMB, pluginsPeakMB float64) {
	cpu = selfCPU() - w.cpuStart
	return cpu, cpu, 0, 0
}

func (w *linkedWorker) stop() {
	if err := errors.Join(w.srv.Close(), w.h.Close()); err != nil {
		fmt.Fprintln(os.Stderr, "connectbench: stopping the linked worker:", err)
	}
}

// selfCPU is this process's user+system CPU seconds (threads, not children).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
