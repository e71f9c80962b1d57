package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
)

// machineInfo describes where the numbers were taken.
type machineInfo struct {
	cpu       string
	cores     int
	goVersion string
}

func machine() machineInfo {
	m := machineInfo{cpu: "unknown CPU", cores: runtime.NumCPU(), goVersion: runtime.Version()}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.cpu = strings.TrimSpace(v)
			break
		}
	}
	return m
}

// printReport prints the Markdown table: the echo rows if loads is not
// empty, then the push rows.
func printReport(m machineInfo, f benchFlags, loads []loadResult, mem memResult, pushes []pushOutcome) {
	fmt.Printf("\n%s, %d cores, %s, GOOS=%s GOARCH=%s; server and clients share the machine.\n",
		m.cpu, m.cores, m.goVersion, runtime.GOOS, runtime.GOARCH)
	if len(loads) > 0 {
		fmt.Printf("Load: %d conns × %d in flight, %d-byte binary messages, %s measured after %s warm-up.\n",
			f.conns, f.inflight, f.size, f.duration, f.warmup)
	}
	if len(pushes) > 0 {
		fmt.Printf("Push: %d WebSocket clients on /notify, a fresh server per scenario, %s measured after %s warm-up; server CPU from getrusage over the window.\n",
			f.pushClients, f.pushDuration, f.warmup)
	}
	fmt.Println()
	fmt.Println("| benchmark | value | target |")
	fmt.Println("|---|---|---|")
	if len(loads) > 0 {
		printEchoRows(f, loads, mem)
	} else if mem.n > 0 { // -only idle
		printMemRows(mem)
	}
	printPushRows(f, pushes)
	if len(loads) > 0 {
		printEchoWarning(loads)
	}
}

// echoTarget is the share of the native echo's throughput a WASM echo
// route must reach: 70% (issue 2), 85% for the Rust and AssemblyScript
// guests (issue 15).
func echoTarget(path string) float64 {
	if path == "/rust-echo" || path == "/as-echo" {
		return 85
	}
	return 70
}

func printEchoRows(f benchFlags, loads []loadResult, mem memResult) {
	first, last := loads[0].MsgsPerS, loads[len(loads)-1].MsgsPerS
	native := (first + last) / 2
	fmt.Printf("| native Go echo throughput (baseline) | %.0f msgs/s (runs: %.0f first, %.0f last) | — |\n", native, first, last)
	for i, r := range echoRoutes[:len(echoRoutes)-1] {
		l := loads[i]
		if r.tls {
			printTLSRow(echoRoutes, loads, i)
			continue
		}
		if i > 0 {
			pct, target := 100*l.MsgsPerS/native, echoTarget(r.path)
			fmt.Printf("| %s throughput | %.0f msgs/s = %.0f%% of native | ≥ %.0f%% of native %s |\n",
				r.label, l.MsgsPerS, pct, target, verdict(pct >= target))
		}
		fmt.Printf("| %s latency p50 / p99 / p99.9 | %.0f / %.0f / %.0f µs (errors %d) | — |\n",
			r.label, l.P50us, l.P99us, l.P999us, l.Errors)
		fmt.Printf("| %s server CPU per message | %.2f µs | — |\n", r.label, l.CPUPerMsgUs)
	}
	printMemRows(mem)
}

// printTLSRow prints a wss:// route's throughput and server CPU per
// message beside those of the same route over plain ws://.
func printTLSRow(routes []echoRoute, loads []loadResult, i int) {
	r, l := routes[i], loads[i]
	vs := ""
	if j := plainOf(routes, i); j >= 0 {
		p := loads[j]
		vs = fmt.Sprintf(" against %.0f msgs/s, %.2f µs plain (%+.0f%% CPU per message)",
			p.MsgsPerS, p.CPUPerMsgUs, 100*(l.CPUPerMsgUs/p.CPUPerMsgUs-1))
	}
	fmt.Printf("| %s throughput, server CPU per message | %.0f msgs/s, %.2f µs%s | reported |\n",
		r.label, l.MsgsPerS, l.CPUPerMsgUs, vs)
	fmt.Printf("| %s latency p50 / p99 / p99.9 | %.0f / %.0f / %.0f µs (errors %d) | — |\n",
		r.label, l.P50us, l.P99us, l.P999us, l.Errors)
}

// printTLSReport is -only tls's table: each route plain and over TLS.
func printTLSReport(m machineInfo, f benchFlags, routes []echoRoute, loads []loadResult) {
	fmt.Printf("\n%s, %d cores, %s, GOOS=%s GOARCH=%s; server and clients share the machine.\n",
		m.cpu, m.cores, m.goVersion, runtime.GOOS, runtime.GOARCH)
	fmt.Printf("Load: %d conns × %d in flight, %d-byte binary messages, %s measured after %s warm-up; server CPU from getrusage over the window.\n\n",
		f.conns, f.inflight, f.size, f.duration, f.warmup)
	fmt.Println("| benchmark | value | target |")
	fmt.Println("|---|---|---|")
	for i, r := range routes {
		if r.tls {
			printTLSRow(routes, loads, i)
			continue
		}
		l := loads[i]
		fmt.Printf("| %s throughput, server CPU per message | %.0f msgs/s, %.2f µs | — |\n", r.label, l.MsgsPerS, l.CPUPerMsgUs)
	}
}

// printEchoWarning, after the table, flags a machine too busy for stable
// echo ratios.
func printEchoWarning(loads []loadResult) {
	first, last := loads[0].MsgsPerS, loads[len(loads)-1].MsgsPerS
	if spread := 100 * math.Abs(first-last) / ((first + last) / 2); spread > 10 {
		fmt.Printf("\n⚠ the two native runs differ by %.0f%%: the machine was busy; rerun for stable ratios.\n", spread)
	}
}

func printMemRows(mem memResult) {
	n := float64(mem.n)
	perConn := float64(mem.rssIdle-mem.rssBefore) / n / 1024
	fmt.Printf("| memory per idle connection on %s (VmRSS delta / %d) | %.1f KiB | ≤ 16 KiB %s |\n",
		mem.path, mem.n, perConn, verdict(perConn <= 16))
	fmt.Printf("| … same after a forced GC (stacks / heap in use) | %.1f KiB (%.1f / %.1f) | — |\n",
		float64(mem.rssAfterGC-mem.rssBefore)/n/1024,
		float64(mem.afterGC.stackInuse-mem.before.stackInuse)/n/1024,
		float64(mem.afterGC.heapInuse-mem.before.heapInuse)/n/1024)
	fmt.Printf("| … of which goroutine stacks / Go heap in use | %.1f / %.1f KiB | — |\n",
		float64(mem.idle.stackInuse-mem.before.stackInuse)/n/1024,
		float64(mem.idle.heapInuse-mem.before.heapInuse)/n/1024)
	fmt.Printf("| goroutines per idle connection | %.2f (%d → %d) | — |\n",
		float64(mem.idle.goroutines-mem.before.goroutines)/n, mem.before.goroutines, mem.idle.goroutines)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	back := mem.rssClosed10 <= mem.rssBefore+(mem.rssIdle-mem.rssBefore)/5
	fmt.Printf("| VmRSS before / with %d idle clients / 1 s / 10 s after they closed | %.0f / %.0f / %.0f / %.0f MiB | 10 s: ≤ 20%% of the growth left %s |\n",
		mem.n, mib(mem.rssBefore), mib(mem.rssIdle), mib(mem.rssClosed1), mib(mem.rssClosed10), verdict(back))
}

func verdict(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}
