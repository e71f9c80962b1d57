package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// cpuWindow is the CPU each process of a cluster run used during one
// measured window, against the wall time: whether the machine's cores, not
// the code, were the limit.
type cpuWindow struct {
	wall    time.Duration
	nodes   []time.Duration // each serve process
	redis   time.Duration   // redis-server (0 without cluster)
	bench   time.Duration   // this process: the WebSocket clients and the sender
	machine time.Duration   // every process on the machine (/proc/stat)
	// deliveries in the window, for the CPU per delivery
	deliveries int64
}

// cpuMeter measures cpuWindows (and, with -profile, writes CPU profiles of
// every serve and of this process for each window).
type cpuMeter struct {
	f       benchFlags
	servers []*child
	redis   *redisProc
	name    string

	t0              time.Time
	nodes0          []time.Duration
	redis0, bench0  time.Duration
	machine0        time.Duration
	stopSelfProfile func()
}

func (m *cpuMeter) begin(window string) {
	m.stopSelfProfile = nil
	if m.f.profile != "" {
		for i, s := range m.servers {
			path := filepath.Join(m.f.profile, fmt.Sprintf("cpu-cluster-%s-%s-node%d.pprof", m.name, window, i+1))
			if _, err := s.ask("cpuprofile "+path, "OK"); err != nil {
				fmt.Fprintf(os.Stderr, "cluster profile: %v\n", err)
			}
		}
		if f, err := os.Create(filepath.Join(m.f.profile, fmt.Sprintf("cpu-cluster-%s-%s-bench.pprof", m.name, window))); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				m.stopSelfProfile = func() { pprof.StopCPUProfile(); f.Close() }
			} else {
				f.Close()
			}
		}
	}
	m.nodes0 = m.nodes0[:0]
	for _, s := range m.servers {
		m.nodes0 = append(m.nodes0, procCPU(s.cmd.Process.Pid))
	}
	if m.redis != nil {
		m.redis0 = procCPU(m.redis.cmd.Process.Pid)
	}
	m.bench0 = selfCPU()
	m.machine0, _ = machineBusy()
	m.t0 = time.Now()
}

func (m *cpuMeter) end() cpuWindow {
	w := cpuWindow{wall: time.Since(m.t0)}
	for i, s := range m.servers {
		w.nodes = append(w.nodes, procCPU(s.cmd.Process.Pid)-m.nodes0[i])
	}
	if m.redis != nil {
		w.redis = procCPU(m.redis.cmd.Process.Pid) - m.redis0
	}
	w.bench = selfCPU() - m.bench0
	mach, _ := machineBusy()
	w.machine = mach - m.machine0
	if m.f.profile != "" {
		for _, s := range m.servers {
			_, _ = s.ask("cpustop", "OK")
		}
		if m.stopSelfProfile != nil {
			m.stopSelfProfile()
		}
	}
	return w
}

// procCPU is the user+system CPU time process pid has used, from
// /proc/PID/stat (utime and stime, fields 14 and 15, in ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // field 3 onwards
	if len(fields) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// pct is d as a percentage of one core over wall.
func pct(d, wall time.Duration) string {
	if wall <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", 100*d.Seconds()/wall.Seconds())
}

// printClusterCPU prints the CPU table of the cluster rows.
func printClusterCPU(rows []clusterResult, cores int) {
	fmt.Printf("\nCPU during the windows, %% of one core (the machine has %d cores: %d %%):\n\n", cores, 100*cores)
	fmt.Println("| setting | window | wall | serve processes | redis-server | bench (clients) | whole machine | CPU µs per delivery: serve + clients |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	defer func() {
		fmt.Println()
		for _, r := range rows {
			if r.err == nil {
				fmt.Printf("%s: the burst's %d sends were all answered %s after the first was written, the last delivery came %s after it\n",
					r.label, r.burstSends, r.burstAcked.Round(time.Millisecond), r.burstCPU.wall.Round(time.Millisecond))
			}
		}
	}()
	for _, r := range rows {
		if r.err != nil {
			continue
		}
		for _, w := range []struct {
			name string
			c    cpuWindow
		}{{"burst", r.burstCPU}, {"paced", r.pacedCPU}} {
			var nodes []string
			for _, n := range w.c.nodes {
				nodes = append(nodes, pct(n, w.c.wall))
			}
			red := "—"
			if w.c.redis > 0 {
				red = pct(w.c.redis, w.c.wall)
			}
			var serve time.Duration
			for _, n := range w.c.nodes {
				serve += n
			}
			per := "—"
			if w.c.deliveries > 0 {
				us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(w.c.deliveries) }
				per = fmt.Sprintf("%.1f + %.1f", us(serve), us(w.c.bench))
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.label, w.name, w.c.wall.Round(time.Millisecond),
				strings.Join(nodes, " + "), red, pct(w.c.bench, w.c.wall), pct(w.c.machine, w.c.wall), per)
		}
	}
}

// printClusterPaced prints where the paced latency comes from: per node
// of the receiving member, and per message (its first and last member).
func printClusterPaced(rows []clusterResult) {
	fmt.Println("\nPaced window, per message (first and last of its members to get it) and per node of the member:")
	fmt.Println()
	fmt.Println("| setting | first member p50 | last member p50 / p99 | last member p99, first / last quarter of the window | p50 / p99 per node |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	r10 := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	for _, r := range rows {
		if r.err != nil {
			continue
		}
		p := r.paced
		var per []string
		for i := range p.nodeP50 {
			per = append(per, fmt.Sprintf("node %d: %s / %s", i+1, r10(p.nodeP50[i]), r10(p.nodeP99[i])))
		}
		fmt.Printf("| %s | %s | %s / %s | %s / %s | %s |\n", r.label, r10(p.firstP50), r10(p.lastP50), r10(p.lastP99),
			r10(p.earlyP99), r10(p.lateP99), strings.Join(per, "; "))
	}
}
