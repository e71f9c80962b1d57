package metrics

import (
	"fmt"
	goruntime "runtime"
	"strings"
	"time"
)

// Process is the state of the running process, for /metrics (under the
// names Prometheus's own Go client uses, so that existing dashboards work)
// and `wasmgate status`. A value the system cannot tell is -1 (elsewhere
// than Linux: resident memory, open files).
type Process struct {
	ResidentBytes int64   `json:"resident_bytes"` // process_resident_memory_bytes
	CPUSeconds    float64 `json:"cpu_seconds"`    // process_cpu_seconds_total (user + system)
	OpenFDs       int64   `json:"open_fds"`       // process_open_fds
	MaxFDs        int64   `json:"max_fds"`        // process_max_fds (RLIMIT_NOFILE)
	StartTime     float64 `json:"start_time"`     // process_start_time_seconds (Unix)
	Goroutines    int     `json:"goroutines"`     // go_goroutines
	HeapAlloc     uint64  `json:"heap_alloc_bytes"`
	HeapInuse     uint64  `json:"heap_inuse_bytes"`
	HeapIdle      uint64  `json:"heap_idle_bytes"`
	HeapReleased  uint64  `json:"heap_released_bytes"`
	HeapSys       uint64  `json:"heap_sys_bytes"`
	HeapObjects   uint64  `json:"heap_objects"`
	GCCycles      uint32  `json:"gc_cycles"`
}

// ReadProcess reads the process metrics; started is when the process
// started (the server's start stands in for it). It stops the world for
// runtime.ReadMemStats (tens of microseconds): call it per scrape, not per
// event.
func ReadProcess(started time.Time) Process {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	p := Process{
		StartTime:    float64(started.UnixNano()) / 1e9,
		Goroutines:   goruntime.NumGoroutine(),
		HeapAlloc:    ms.HeapAlloc,
		HeapInuse:    ms.HeapInuse,
		HeapIdle:     ms.HeapIdle,
		HeapReleased: ms.HeapReleased,
		HeapSys:      ms.HeapSys,
		HeapObjects:  ms.HeapObjects,
		GCCycles:     ms.NumGC,
	}
	readOS(&p)
	return p
}

// WriteProm writes p in the Prometheus text format, under the standard
// process_* and go_* names.
func (p Process) WriteProm(b *strings.Builder) {
	m := func(name, typ, help string, v any) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	if p.ResidentBytes >= 0 {
		m("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.ResidentBytes)
	}
	m("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.CPUSeconds)
	if p.OpenFDs >= 0 {
		m("process_open_fds", "gauge", "Number of open file descriptors.", p.OpenFDs)
	}
	if p.MaxFDs >= 0 {
		m("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.MaxFDs)
	}
	m("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", p.StartTime)
	m("go_goroutines", "gauge", "Number of goroutines that currently exist.", p.Goroutines)
	m("go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and still in use.", p.HeapAlloc)
	m("go_memstats_heap_inuse_bytes", "gauge", "Number of heap bytes that are in use.", p.HeapInuse)
	m("go_memstats_heap_idle_bytes", "gauge", "Number of heap bytes waiting to be used.", p.HeapIdle)
	m("go_memstats_heap_released_bytes", "gauge", "Number of heap bytes released to OS.", p.HeapReleased)
	m("go_memstats_heap_sys_bytes", "gauge", "Number of heap bytes obtained from system.", p.HeapSys)
	m("go_memstats_heap_objects", "gauge", "Number of allocated objects.", p.HeapObjects)
	m("go_gc_cycles_total", "counter", "Number of completed GC cycles.", p.GCCycles)
}
