package main

import (
	"time"

	"github.com/tributary-data/tributary/bench/benchproc"
)

// memSampleEvery is how often the memory sampler reads /proc.
const memSampleEvery = 200 * time.Millisecond

// cpuSplit is CPU seconds used by each party, or (cpuAt) the cumulative
// figures at one moment.
type cpuSplit struct {
	worker   float64 // the worker process itself
	plugins  float64 // its children: the plugin processes (live and ended)
	broker   float64 // the broker process and any children
	postgres float64 // the postmaster and every backend (incl. walsenders)
	bench    float64 // this process: the inserts' client side, the pollers

	machine float64 // every CPU's busy time, all processes (/proc/stat)
	iowait  float64 // every CPU's time idle waiting for I/O
}

func (c cpuSplit) total() float64 { return c.worker + c.plugins + c.broker + c.postgres + c.bench }

func (c cpuSplit) sub(o cpuSplit) cpuSplit {
	return cpuSplit{c.worker - o.worker, c.plugins - o.plugins, c.broker - o.broker, c.postgres - o.postgres, c.bench - o.bench,
		c.machine - o.machine, c.iowait - o.iowait}
}

// cpuAt reads the cumulative CPU of each party now (a postmaster of 0: no
// PostgreSQL). The figures are close, not exact, when processes come and
// go (plugin processes start after the first reading of a run; snapshot
// connections end): see benchproc.CPUReading.
func cpuAt(worker, broker, postmaster int) cpuSplit {
	r := benchproc.ReadCPU()
	var c cpuSplit
	c.worker = r.Self(worker)
	c.plugins = r.Tree(worker) - c.worker
	c.broker = r.Tree(broker)
	if postmaster > 0 {
		c.postgres = r.Tree(postmaster)
	}
	c.bench = benchproc.SelfCPU()
	c.machine, c.iowait = benchproc.MachineCPU()
	return c
}
