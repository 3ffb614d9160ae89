package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tributary-data/tributary/bench/benchreport"
)

// report writes the markdown report: a header stating how the figures were
// measured, one table row per phase, and the ratios of our broker to each
// other broker.
func report(w io.Writer, o options, rows []row) {
	fmt.Fprintf(w, "## Broker benchmark (%s)\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Host: %s, %d CPUs, %s %s/%s; broker data directories on %s.\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, fsType(o.workDir))
	var counts []string
	for _, s := range o.sizes {
		counts = append(counts, fmt.Sprintf("%s records of %d B", benchreport.Thousands(float64(o.recordsFor(s))), s))
	}
	fmt.Fprintf(w, "- Load per run: %s; topic with %s partition(s); one fresh broker with an empty data directory per run; %s.\n",
		strings.Join(counts, ", "), joinInts(o.partitions), runsNote(o.runs))
	fmt.Fprintln(w, "- Produce: one franz-go client in the benchmark process, acks=all, idempotent, 1 MiB batches, linger 0, no compression, up to 5 requests in flight; latency is per record, from Produce() to its acknowledgement (includes time queued in the client).")
	fmt.Fprintln(w, "- Consume: one franz-go client reading the topic from the start (direct partition consumption, no group), 64 MiB fetches (16 MiB per partition).")
	fmt.Fprintf(w, "- Broker CPU: utime+stime of the broker process over the phase, from /proc/PID/stat (CLK_TCK %.0f, %s). RSS: VmRSS after the phase, peak = VmHWM since the broker started. Client CPU: the benchmark process (load generator) over the phase; client and broker share the machine's CPUs.\n",
		o.clkTck, o.clkTckSrc)
	fmt.Fprintln(w, "- MB = MiB (1,048,576 bytes) of record values. Brokers: tributary = `tributary broker` (acks=all acknowledged after fsync); kfake = franz-go's kfake in memory; kfake-fsync = kfake persisting to disk with an fsync per batch.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| broker | record size | partitions | phase | records/s | MB/s | p50 ms | p99 ms | broker CPU s per 1M records | broker RSS MB (peak) | client CPU s per 1M records |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		p50, p99 := "-", "-"
		if r.phase == "produce" {
			p50, p99 = ms(r.p50), ms(r.p99)
		}
		fmt.Fprintf(w, "| %s | %d B | %d | %s | %s | %.1f | %s | %s | %.2f | %.0f (%.0f) | %.2f |\n",
			r.broker, r.size, r.partitions, r.phase, benchreport.Thousands(r.rps), r.mbps, p50, p99,
			r.cpuPerM(r.brokerCPU), r.rssMB, r.hwmMB, r.cpuPerM(r.clientCPU))
	}

	var others []string
	for _, b := range o.brokers {
		if b != "tributary" {
			others = append(others, b)
		}
	}
	if len(others) == 0 || len(others) == len(o.brokers) {
		return
	}
	for _, other := range others {
		fmt.Fprintf(w, "\n### tributary / %s (below 1 means tributary uses less CPU per record; above 1 means it is faster for records/s)\n\n", other)
		fmt.Fprintln(w, "| record size | partitions | phase | broker CPU per 1M records | records/s |")
		fmt.Fprintln(w, "|---:|---:|---|---:|---:|")
		for _, ours := range rows {
			if ours.broker != "tributary" {
				continue
			}
			for _, theirs := range rows {
				if theirs.broker != other || theirs.size != ours.size || theirs.partitions != ours.partitions || theirs.phase != ours.phase {
					continue
				}
				fmt.Fprintf(w, "| %d B | %d | %s | %s | %s |\n", ours.size, ours.partitions, ours.phase,
					ratio(ours.cpuPerM(ours.brokerCPU), theirs.cpuPerM(theirs.brokerCPU)), ratio(ours.rps, theirs.rps))
			}
		}
	}
}

func runsNote(n int) string {
	if n == 1 {
		return "one run per row (expect run-to-run noise of 10-30% in records/s on a small machine; use --runs 3 for medians)"
	}
	return fmt.Sprintf("each figure is the median of %d runs", n)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " / ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// fsType names the filesystem holding dir (fsync costs differ wildly).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "an unknown filesystem"
	}
	names := map[int64]string{
		0xEF53:     "ext4",
		0x01021994: "tmpfs",
		0x58465342: "xfs",
		0x9123683E: "btrfs",
		0x794C7630: "overlayfs",
		0x2FC12FC1: "zfs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n + " (" + dir + ")"
	}
	return fmt.Sprintf("filesystem type %#x (%s)", st.Type, dir)
}
