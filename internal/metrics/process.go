package metrics

import (
	goruntime "runtime"
	"time"
)

// Process is the state of the running process, for GET /status and
// `wasmgate status` (/metrics has client_golang's Go and process
// collectors; the comments name their series). A value the system cannot tell is -1 (elsewhere
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
