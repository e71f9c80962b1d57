package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pushModes are the push scenarios, in the order they run.
var pushModes = []string{"throughput", "paced", "inflight", "connperpush", "http", "httpbatch"}

// pushOutcome is one scenario's result plus what the orchestrator measured
// of the serve process over the window.
type pushOutcome struct {
	pushResult
	serverCPU time.Duration // serve's user+system CPU over the window
	window    time.Duration // wall time between the two MARK lines
	machine   time.Duration // CPU time all processes used over the window (/proc/stat)
	softirq   time.Duration // of which softirq: loopback TCP, not charged to serve or push
	err       error
}

// otherCores is the CPU other processes than serve and push used during
// the window, in cores: on a shared machine they skew every figure.
func (o pushOutcome) otherCores() float64 {
	if o.window <= 0 {
		return 0
	}
	other := o.machine - o.softirq - o.serverCPU - time.Duration(o.ClientCPUms*1e6)
	return max(0, float64(other)/float64(o.window))
}

// softirqCores is the machine's softirq time over the window, in cores:
// mostly the loopback TCP processing of the scenario's own traffic.
func (o pushOutcome) softirqCores() float64 {
	if o.window <= 0 {
		return 0
	}
	return float64(o.softirq) / float64(o.window)
}

// cpuPerPush is serve's CPU time per push acknowledged in the window.
func (o pushOutcome) cpuPerPush() time.Duration {
	if o.Pushes == 0 {
		return 0
	}
	return o.serverCPU / time.Duration(o.Pushes)
}

// cores is serve's average CPU use over the window, in cores.
func (o pushOutcome) cores() float64 {
	if o.window <= 0 {
		return 0
	}
	return float64(o.serverCPU) / float64(o.window)
}

// exactlyOnce reports whether every acknowledged push arrived once, in
// order, with no transport errors.
func (o pushOutcome) exactlyOnce() bool {
	return o.err == nil && o.Acked > 0 && o.Missing == 0 && o.Extra == 0 && o.Duplicates == 0 && o.Errors == 0
}

// pushPhase runs each push scenario against a fresh serve process (only
// /notify loaded), so that no scenario inherits another's clients, backend
// connections or heap. A scenario that fails is reported and the others
// still run.
func pushPhase(ctx context.Context, f benchFlags) []pushOutcome {
	var out []pushOutcome
	for _, mode := range f.pushModes {
		o := pushScenario(ctx, f, mode)
		if o.err != nil {
			fmt.Printf("push %-12s ERROR %v\n", mode, o.err)
		} else {
			fmt.Printf("push %-12s %9.0f pushes/s %8.0f req/s  ack p99 %7.0f µs  push→client p50 %6.0f p99 %6.0f p99.9 %6.0f µs  server %.2f cores, %.2f µs/push, clients %.2f cores, softirq %.2f cores, others %.2f cores  acked %d received %d missing %d dups %d failed %d errors %d %s\n",
				mode, o.PushesPerS, o.RequestsPerS, o.AckP99us, o.P50us, o.P99us, o.P999us,
				o.cores(), float64(o.cpuPerPush())/1e3, o.ClientCPUms/1e3/o.window.Seconds(), o.softirqCores(), o.otherCores(),
				o.Acked, o.Received, o.Missing, o.Duplicates, o.Failed, o.Errors, o.FirstError)
		}
		out = append(out, o)
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

// pushScenario starts serve, runs one `push` child against it, and reads
// serve's CPU time (and, with -profile, a CPU profile) at the child's MARK
// lines.
func pushScenario(ctx context.Context, f benchFlags, mode string) (o pushOutcome) {
	o.Mode = mode
	srv, addrs, err := startServe(ctx, f, "notify")
	if err != nil {
		o.err = err
		return o
	}
	defer func() {
		if err := srv.stop(20 * time.Second); err != nil && o.err == nil {
			o.err = err
		}
	}()
	limit := f.warmup + f.pushDuration + 3*time.Minute
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := startChild(cctx, "push", "-mode", mode, "-ws", addrs.ws, "-text", addrs.text, "-admin", addrs.admin,
		"-clients", strconv.Itoa(f.pushClients), "-warmup", f.warmup.String(), "-duration", f.pushDuration.String())
	if err != nil {
		o.err = err
		return o
	}
	defer c.stop(5 * time.Second)
	_ = c.stdin.Close()
	var cpu0, busy0, si0 time.Duration
	var t0 time.Time
	last := ""
	for line := range c.lines {
		switch line {
		case "MARK begin":
			t0 = time.Now()
			busy0, si0 = machineBusy()
			if cpu0, err = serveCPU(srv); err != nil {
				o.err = err
			}
			if f.profile != "" {
				path := filepath.Join(f.profile, "cpu-push-"+mode+".pprof")
				if _, err := srv.ask("cpuprofile "+path, "OK"); err != nil {
					o.err = err
				}
			}
		case "MARK end":
			o.window = time.Since(t0)
			busy1, si1 := machineBusy()
			o.machine, o.softirq = busy1-busy0, si1-si0
			cpu1, err := serveCPU(srv)
			if err != nil {
				o.err = err
			}
			o.serverCPU = cpu1 - cpu0
			if f.profile != "" {
				_, _ = srv.ask("cpustop", "OK")
			}
		default:
			last = line
		}
	}
	if err := c.cmd.Wait(); err != nil {
		o.err = fmt.Errorf("push -mode %s: %w", mode, err)
		return o
	}
	if o.err != nil {
		return o
	}
	if err := json.Unmarshal([]byte(last), &o.pushResult); err != nil {
		o.err = fmt.Errorf("push -mode %s printed %q: %w", mode, last, err)
	}
	return o
}

// serveCPU asks serve for its user+system CPU time.
func serveCPU(srv *child) (time.Duration, error) {
	line, err := srv.ask("rusage", "RUSAGE ")
	if err != nil {
		return 0, err
	}
	var u, s int64
	if _, err := fmt.Sscanf(line, "RUSAGE utime_us=%d stime_us=%d", &u, &s); err != nil {
		return 0, fmt.Errorf("serve printed %q: %w", line, err)
	}
	return time.Duration(u+s) * time.Microsecond, nil
}

// machineBusy is the CPU time all processes have used since boot, and the
// softirq part of it, from the first line of /proc/stat (user nice system
// idle iowait irq softirq steal …, in clock ticks of 1/100 s: getconf
// CLK_TCK).
func machineBusy() (busy, softirq time.Duration) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	var n, si int64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 || i >= 7 { // idle, iowait, steal; guest time is already in user
			continue
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		n += v
		if i == 6 {
			si = v
		}
	}
	return time.Duration(n) * 10 * time.Millisecond, time.Duration(si) * 10 * time.Millisecond
}

// printPushRows prints the push scenarios' rows of the Markdown table.
func printPushRows(f benchFlags, out []pushOutcome) {
	for _, o := range out {
		name := pushLabel(o.Mode, f.pushClients)
		if o.err != nil {
			fmt.Printf("| %s | failed: %s | ❌ |\n", name, mdEscape(o.err.Error()))
			continue
		}
		once := fmt.Sprintf("acked %d, received %d, missing %d, extra %d, dup/out-of-order %d, refused %d, errors %d",
			o.Acked, o.Received, o.Missing, o.Extra, o.Duplicates, o.Failed, o.Errors)
		if o.FirstError != "" {
			once += " (first: " + mdEscape(o.FirstError) + ")"
		}
		cpu := fmt.Sprintf("server %.2f µs CPU/push (%.2f cores)", float64(o.cpuPerPush())/1e3, o.cores())
		switch o.Mode {
		case "throughput":
			fmt.Printf("| %s | %.0f acked/s (ack p50 / p99 %s / %s) | ≥ 300,000/s %s |\n", name, o.PushesPerS,
				us(o.AckP50us), us(o.AckP99us), verdict(o.PushesPerS >= 300_000))
			fmt.Printf("| … server CPU per push | %.2f µs (%.2f cores over the window) | ≤ 3 µs %s |\n",
				float64(o.cpuPerPush())/1e3, o.cores(), verdict(o.cpuPerPush() <= 3*time.Microsecond))
		case "paced":
			fmt.Printf("| %s: push→client p50 / p99 / p99.9 | %s / %s / %s (%.0f pushes/s; ack p99 %s; %s; %s) | p99 ≤ 50 µs %s |\n",
				name, us(o.P50us), us(o.P99us), us(o.P999us), o.PushesPerS, us(o.AckP99us), o.Note, cpu, verdict(o.P99us <= 50))
		case "inflight":
			fmt.Printf("| %s: push→client p50 / p99 / p99.9 | %s / %s / %s (%.0f acked/s; ack p99 %s; %s) | p99 ≤ 10 ms %s |\n",
				name, us(o.P50us), us(o.P99us), us(o.P999us), o.PushesPerS, us(o.AckP99us), cpu, verdict(o.P99us <= 10_000))
		case "connperpush":
			fmt.Printf("| %s | %.0f pushes/s (connect p99 %s, max %.1f ms, ≥ 1 s: %d, dial errors %d; %s) | — |\n",
				name, o.PushesPerS, us(o.DialP99us), o.DialMaxMs, o.DialsOver1s, o.DialErrors, cpu)
			ok := o.DialsOver1s == 0 && o.DialErrors == 0 && o.BurstOver1s == 0 && o.BurstErrors == 0 && o.BurstFailures == 0
			fmt.Printf("| … accept-queue stalls (connects ≥ 1 s), steady and in a burst of %d simultaneous connections | %d and %d (burst: max connect %.1f ms, all %d pushed in %.0f ms, errors %d) | none %s |\n",
				o.Burst, o.DialsOver1s, o.BurstOver1s, o.BurstMaxMs, o.Burst, o.BurstAllMs, o.BurstErrors+o.BurstFailures, verdict(ok))
		case "http":
			fmt.Printf("| %s | %.0f requests/s (p50 / p99 %s / %s; %s) | — |\n", name, o.RequestsPerS,
				us(o.AckP50us), us(o.AckP99us), cpu)
		case "httpbatch":
			fmt.Printf("| %s | %.0f requests/s = %.0f pushes/s (p50 / p99 %s / %s; %s) | — |\n", name, o.RequestsPerS,
				o.PushesPerS, us(o.AckP50us), us(o.AckP99us), cpu)
		}
		fmt.Printf("| … exactly once (%s) | %s | every message once %s |\n", o.Mode, once, verdict(o.exactlyOnce()))
		if other := o.otherCores(); other > 0.2 {
			fmt.Printf("| ⚠ %s: other processes used %.1f cores during the window | (server %.2f, push client %.2f, softirq %.2f cores) | — |\n",
				o.Mode, other, o.cores(), o.ClientCPUms/1e3/o.window.Seconds(), o.softirqCores())
		}
	}
}

func pushLabel(mode string, clients int) string {
	n := fmt.Sprintf("%d clients", clients)
	switch mode {
	case "throughput":
		return "push throughput: 1 pipelined text-port conn, sendToClient round-robin to " + n
	case "paced":
		return "push latency at 10,000 pushes/s over " + n
	case "inflight":
		return "push latency, 1,000 pushes in flight over " + n
	case "connperpush":
		return "push with one TCP connection per push (seed form, sendToUid), " + n
	case "http":
		return "HTTP API: single sendToUid, keep-alive"
	case "httpbatch":
		return "HTTP API: /api/batch of 100 sendToUid, keep-alive"
	}
	return mode
}

// us formats microseconds, switching to ms from 10 ms.
func us(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1f ms", v/1e3)
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f µs", v)
	}
	return fmt.Sprintf("%.1f µs", v)
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
