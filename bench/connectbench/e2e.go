package main

import (
	"github.com/tributary-data/tributary/bench/benchproc"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	lineBytes    = 100 // bytes per input line, newline included
	stopGrace    = 15 * time.Second
	stringConv   = "org.apache.kafka.connect.storage.StringConverter"
	samplePeriod = 100 * time.Millisecond
)

// writeLines writes n lines of lineBytes bytes each (newline included):
// a 9-digit sequence number, then filler.
func writeLines(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	line := bytes.Repeat([]byte{'x'}, lineBytes)
	line[lineBytes-1] = '\n'
	for i := range n {
		copy(line, fmt.Sprintf("%09d ", i%1_000_000_000))
		if _, err := w.Write(line); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// countLines counts the newlines of a file.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// startBroker starts `tributary broker` with an empty data directory under
// dir and waits until it serves Kafka requests.
func startBroker(ctx context.Context, bin, dir string) (*benchproc.Proc, string, error) {
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	data := filepath.Join(dir, "broker-data")
	p, err := benchproc.Start("broker", []string{bin, "broker", "--listen", addr, "--data-dir", data}, dir)
	if err != nil {
		return nil, "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := benchproc.WaitTCP(wctx, addr, p); err != nil {
		p.Stop(stopGrace)
		return nil, "", err
	}
	return p, addr, nil
}

// createTopic creates a one-partition topic and waits until it is usable.
func createTopic(ctx context.Context, brokers, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, resp.Err)
	}
	return nil
}

// e2eResult is one end-to-end run.
type e2eResult struct {
	records       int
	elapsed       time.Duration
	firstLine     time.Duration // from creating the connectors to the first sink line
	workerCPU     float64       // seconds, worker + plugin processes
	workerSelfCPU float64       // seconds, the worker process alone
	brokerCPU     float64
	workerPeak    float64 // MiB, VmHWM of the worker process
	pluginsPeak   float64 // MiB, highest VmHWM of a plugin process
}

func (r e2eResult) rps() float64 { return float64(r.records) / r.elapsed.Seconds() }

// steadyRPS is records/s from the first sink line on: without plugin
// start-up and the sink's group join (the records read before the first
// line appeared are counted: slightly optimistic for both variants).
func (r e2eResult) steadyRPS() float64 {
	return float64(r.records) / (r.elapsed - r.firstLine).Seconds()
}

// runE2E runs one end-to-end measurement with fresh broker and worker
// processes in a fresh directory under workDir.
func runE2E(ctx context.Context, o options, run int, input, variant string) (res e2eResult, err error) {
	dir := filepath.Join(o.workDir, fmt.Sprintf("e2e-%s-%d", slug(variant), run))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	defer func() {
		if os.Getenv("CONNECTBENCH_KEEP") == "" {
			os.RemoveAll(dir)
		}
	}()
	broker, baddr, err := startBroker(ctx, o.tributary, dir)
	if err != nil {
		return res, err
	}
	defer broker.Stop(stopGrace)
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return res, err
	}
	var w worker
	if variant == variantInProcess {
		w, err = startLinkedWorker(ctx, baddr, addr, filepath.Dir(o.tributary))
	} else {
		w, err = startWorkerProc(o.tributary, baddr, addr, dir)
	}
	if err != nil {
		return res, err
	}
	defer w.stop()
	base := "http://" + addr
	if err := waitHealthy(ctx, base, w); err != nil {
		return res, err
	}
	if err := createTopic(ctx, baddr, "lines"); err != nil {
		return res, err
	}
	out := filepath.Join(dir, "out.txt")
	w.startCPU()
	bcpu := newFamilyCPU(broker.PID(), nil)
	start := time.Now()
	if err := postConnector(ctx, base, "file-sink", map[string]string{
		"connector.class": "FileStreamSink", "file": out, "topics": "lines",
		"key.converter": stringConv, "value.converter": stringConv,
	}); err != nil {
		return res, err
	}
	if err := postConnector(ctx, base, "file-src", map[string]string{
		"connector.class": "FileStreamSource", "file": input, "topic": "lines", "batch.size": "2000",
		"key.converter": stringConv, "value.converter": stringConv,
	}); err != nil {
		return res, err
	}
	want := int64(o.records) * lineBytes
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastSample := time.Now()
	for {
		st, serr := os.Stat(out)
		if serr == nil && st.Size() > 0 && res.firstLine == 0 {
			res.firstLine = time.Since(start)
		}
		if serr == nil && st.Size() >= want {
			res.elapsed = time.Since(start)
			break
		}
		if time.Since(lastSample) >= samplePeriod {
			w.sample()
			bcpu.sample()
			lastSample = time.Now()
			if err := w.alive(); err != nil {
				return res, err
			}
			if err := broker.Alive(); err != nil {
				return res, err
			}
		}
		select {
		case <-ctx.Done():
			have := int64(0)
			if serr == nil {
				have = st.Size() / lineBytes
			}
			return res, fmt.Errorf("end to end: %d of %d lines in the sink file: %w; connector status: %s", have, o.records, ctx.Err(), statuses(base))
		case <-tick.C:
		}
	}
	res.workerCPU, res.workerSelfCPU, res.workerPeak, res.pluginsPeak = w.usage()
	res.brokerCPU, _ = bcpu.seconds()
	res.records = o.records
	n, err := countLines(out)
	if err != nil {
		return res, err
	}
	if n != o.records {
		return res, fmt.Errorf("the sink file holds %d lines, want %d", n, o.records)
	}
	return res, nil
}

// waitHealthy polls GET /health until 200.
func waitHealthy(ctx context.Context, base string, p interface{ alive() error }) error {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, base+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := p.alive(); err != nil {
			return err
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("the worker at %s did not become healthy: %w", base, wctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// postConnector creates a connector (POST /connectors), retrying while the
// worker answers 409 (rebalancing).
func postConnector(ctx context.Context, base, name string, config map[string]string) error {
	body, err := json.Marshal(map[string]any{"name": name, "config": config})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/connectors", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("creating connector %s: %w", name, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusCreated:
			return nil
		case resp.StatusCode == http.StatusConflict && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond)
		default:
			return fmt.Errorf("creating connector %s: %s: %s", name, resp.Status, strings.TrimSpace(string(msg)))
		}
	}
}

// statuses returns the connectors' status for error messages.
func statuses(base string) string {
	var parts []string
	for _, name := range []string{"file-src", "file-sink"} {
		resp, err := http.Get(base + "/connectors/" + name + "/status")
		if err != nil {
			parts = append(parts, name+": "+err.Error())
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4000))
		resp.Body.Close()
		parts = append(parts, name+" "+strconv.Itoa(resp.StatusCode)+": "+string(b))
	}
	return strings.Join(parts, "; ")
}
