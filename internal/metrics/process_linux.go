package metrics

import (
	"bytes"
	"math"
	"os"
	"strconv"
	"syscall"
)

// readOS fills in what Linux tells through /proc and getrusage.
func readOS(p *Process) {
	p.ResidentBytes, p.OpenFDs, p.MaxFDs = -1, -1, -1
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := bytes.Fields(statm); len(f) > 1 {
			if pages, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
				p.ResidentBytes = pages * int64(os.Getpagesize())
			}
		}
	}
	if d, err := os.Open("/proc/self/fd"); err == nil {
		names, _ := d.Readdirnames(-1)
		d.Close()
		p.OpenFDs = int64(len(names)) - 1 // less the one reading the folder
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		p.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur <= math.MaxInt64 {
		p.MaxFDs = int64(lim.Cur)
	}
}
