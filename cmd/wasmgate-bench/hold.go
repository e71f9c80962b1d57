package main

// The hold phase (issue 12, "Load held"): many idle clients held on one
// server with heartbeats on. Goroutines: none of its own; the serve and
// idle children are processes, and waiting is done here in sequence.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// holdResult is one hold run: a fresh serve process, f.holdClients
// clients that each sent one message, held for f.holdDuration.
type holdResult struct {
	label string // which serve binary
	// n clients connected of the f.holdClients dialed (failed did not);
	// noEcho of them got no echo within echoWait.
	n, failed, noEcho int
	// accept is the time from the first dial to the last client's echo.
	accept time.Duration
	// VmRSS and serve's STATS before the clients, right after all have
	// sent their message, at the end of the hold, and after a forced GC.
	rssBefore, rssSent, rssHeld, rssAfterGC int64
	before, sent, held, afterGC             serveStats
	// serveCPU and clientsCPU are the processes' CPU time over the hold,
	// which lasted hold.
	serveCPU, clientsCPU, hold time.Duration
	// serveCPU2 is serve's CPU time over the hold's second half, which
	// lasted secondHalf.
	serveCPU2, secondHalf time.Duration
	// serverClients is /status's count at the end of the hold; open and
	// dropped are the clients' own counts, pngs the pings they answered
	// during the hold.
	serverClients       int
	open, dropped, pngs int64
	firstDrop           string
}

// holdPhase runs the hold with this binary's serve, and, with -serve-bin,
// alternately with that binary's serve, -hold-pairs times. A run that
// fails ends the phase with the results so far.
func holdPhase(ctx context.Context, f benchFlags) ([]holdResult, error) {
	type bin struct{ exe, label string }
	bins := []bin{{"", "this build"}}
	if f.serveBin != "" {
		bins = append(bins, bin{f.serveBin, f.serveBin})
	}
	var out []holdResult
	for range max(1, f.holdPairs) {
		for _, b := range bins {
			r, err := holdRun(ctx, f, b.exe)
			r.label = b.label
			if err != nil && b.exe != "" {
				return out, fmt.Errorf("hold (%s; a serve without -ping-interval needs -hold-ping 25s -hold-idle-timeout 60s, the server's defaults): %w", b.label, err)
			}
			if err != nil {
				return out, fmt.Errorf("hold (%s): %w", b.label, err)
			}
			printHoldLine(r)
			out = append(out, r)
		}
	}
	return out, nil
}

// holdRun measures one hold: warm the route's instance pool, return free
// memory to the OS, read VmRSS, open the clients (each sends one message
// and reads its echo), read VmRSS, hold with heartbeats on, read serve's
// CPU time and VmRSS again and count who is still connected.
func holdRun(ctx context.Context, f benchFlags, exe string) (holdResult, error) {
	var r holdResult
	// The heartbeat flags are passed only when they are not the server's
	// defaults, so that -serve-bin can be a build from before the hold
	// phase (run it with -hold-ping 25s -hold-idle-timeout 60s).
	var extra []string
	if def := server.DefaultConfig().Server; f.holdPing != def.PingInterval.Duration || f.holdIdleTimeout != def.IdleTimeout.Duration {
		extra = []string{"-ping-interval", f.holdPing.String(), "-idle-timeout", f.holdIdleTimeout.String()}
	}
	srv, addrs, err := startServeExe(ctx, exe, f, echoModules, extra...)
	if err != nil {
		return r, err
	}
	defer srv.stop(30 * time.Second)
	pid := addrs.pid
	if _, err := runChild(ctx, time.Minute, "load", "-url", "ws://"+addrs.ws+f.holdPath, "-conns", "20",
		"-inflight", "4", "-warmup", "0s", "-duration", "1s"); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := srv.ask("gc", "OK"); err != nil {
		return r, err
	}
	time.Sleep(time.Second)
	if r.rssBefore, r.before, err = sample(srv, pid); err != nil {
		return r, err
	}
	clients, err := startChild(ctx, "idle", "-send-one", "-addr", addrs.ws, "-path", f.holdPath,
		"-n", strconv.Itoa(f.holdClients), "-hold", (f.holdDuration + 10*time.Minute).String())
	if err != nil {
		return r, err
	}
	defer clients.stop(30 * time.Second)
	line, err := clients.expect("READY ", 10*time.Minute)
	if err != nil {
		return r, err
	}
	var us int64
	if _, err := fmt.Sscanf(line, "READY %d elapsed_us=%d failed=%d noecho=%d", &r.n, &us, &r.failed, &r.noEcho); err != nil {
		return r, fmt.Errorf("idle printed %q: %w", line, err)
	}
	r.accept = time.Duration(us) * time.Microsecond
	if r.rssSent, r.sent, err = sample(srv, pid); err != nil {
		return r, err
	}

	// Pings answered before the hold (during the accept) are not its own.
	var pings0 int64
	if pings0, err = clientPings(clients); err != nil {
		return r, err
	}
	if f.profile != "" { // what the heartbeats cost, for pprof
		if _, err := srv.ask("cpuprofile "+filepath.Join(f.profile, "cpu-hold.pprof"), "OK"); err != nil {
			return r, err
		}
	}
	cpu0, err := processCPU(pid)
	if err != nil {
		return r, err
	}
	ccpu0, err := processCPU(clients.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	// The second half apart: the steady state, after the one-time work
	// of the hold's first seconds (the sweep moving every reader to a
	// fresh goroutine 10–20 s after its message, and the memory return).
	if err := sleepUntil(ctx, start.Add(f.holdDuration/2)); err != nil {
		return r, err
	}
	cpuMid, err := processCPU(pid)
	if err != nil {
		return r, err
	}
	mid := time.Now()
	if err := sleepUntil(ctx, start.Add(f.holdDuration)); err != nil {
		return r, err
	}
	cpu1, err := processCPU(pid)
	if err != nil {
		return r, err
	}
	ccpu1, err := processCPU(clients.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.hold, r.serveCPU, r.clientsCPU = time.Since(start), cpu1-cpu0, ccpu1-ccpu0
	r.secondHalf, r.serveCPU2 = time.Since(mid), cpu1-cpuMid
	if f.profile != "" {
		if _, err := srv.ask("cpustop", "OK"); err != nil {
			return r, err
		}
	}

	if r.rssHeld, r.held, err = sample(srv, pid); err != nil {
		return r, err
	}
	count, err := clients.ask("count", "COUNT ")
	if err != nil {
		return r, err
	}
	if _, err := fmt.Sscanf(count, "COUNT open=%d dropped=%d pings=%d first_drop=%q",
		&r.open, &r.dropped, &r.pngs, &r.firstDrop); err != nil {
		return r, fmt.Errorf("idle printed %q: %w", count, err)
	}
	r.pngs -= pings0
	if r.serverClients, err = statusClients(ctx, addrs.admin); err != nil {
		return r, err
	}
	if _, err := srv.ask("gc", "OK"); err != nil {
		return r, err
	}
	r.rssAfterGC, r.afterGC, err = sample(srv, pid)
	return r, err
}

// clientPings asks the clients' process how many pings they answered.
func clientPings(clients *child) (int64, error) {
	line, err := clients.ask("count", "COUNT ")
	if err != nil {
		return 0, err
	}
	var open, dropped, pings int64
	if _, err := fmt.Sscanf(line, "COUNT open=%d dropped=%d pings=%d", &open, &dropped, &pings); err != nil {
		return 0, fmt.Errorf("idle printed %q: %w", line, err)
	}
	return pings, nil
}

// statusClients reads the connected clients from serve's GET /status.
func statusClients(ctx context.Context, admin string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/status", nil)
	if err != nil {
		return 0, fmt.Errorf("status request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /status: %s", resp.Status)
	}
	var st struct {
		Clients *int `json:"clients"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("GET /status: %w", err)
	}
	if st.Clients == nil {
		return 0, errors.New("GET /status: no clients field")
	}
	return *st.Clients, nil
}

// perConn is a byte delta per connection in KiB.
func perConn(delta int64, n int) float64 { return float64(delta) / float64(n) / 1024 }

// printHoldLine prints one run's figures as it ends.
func printHoldLine(r holdResult) {
	fmt.Printf("hold (%s): %d clients%s in %.1f s (%.0f/s), VmRSS/conn %.1f KiB sent, %.1f KiB held, serve CPU %.2f%% of a core (second half %.2f%%), %d of %d still connected (server %d), %d dropped, %d pings answered\n",
		r.label, r.n, lossNote(r), r.accept.Seconds(), float64(r.n)/r.accept.Seconds(),
		perConn(r.rssSent-r.rssBefore, r.n), perConn(r.rssHeld-r.rssBefore, r.n),
		cpuPercent(r.serveCPU, r.hold), cpuPercent(r.serveCPU2, r.secondHalf), r.open, r.n, r.serverClients, r.dropped, r.pngs)
}

func cpuPercent(cpu, wall time.Duration) float64 { return 100 * cpu.Seconds() / wall.Seconds() }

// printHoldRows prints the hold phase's table, one block per run.
func printHoldRows(f benchFlags, runs []holdResult) {
	if len(runs) == 0 {
		return
	}
	fmt.Printf("\nHold: %d clients on %s, each sent one message and read its echo, then held %s with server.ping_interval %s, server.idle_timeout %s; clients in their own process, source addresses 127.0.0.2+; VmRSS deltas from a warmed-up server after a forced GC.\n\n",
		f.holdClients, f.holdPath, f.holdDuration, f.holdPing, f.holdIdleTimeout)
	fmt.Println("| benchmark | value | target |")
	fmt.Println("|---|---|---|")
	for _, r := range runs {
		p := ""
		if len(runs) > 1 {
			p = "(" + r.label + ") "
		}
		fmt.Printf("| %stime to accept %d clients (first dial → last echo) | %.1f s = %.0f conns/s%s | reported |\n",
			p, r.n, r.accept.Seconds(), float64(r.n)/r.accept.Seconds(), lossNote(r))
		sent, held := perConn(r.rssSent-r.rssBefore, r.n), perConn(r.rssHeld-r.rssBefore, r.n)
		fmt.Printf("| %sVmRSS per connection, right after each sent one message / after the %s hold | %.1f / %.1f KiB | ≤ 7 KB %s |\n",
			p, f.holdDuration, sent, held, verdict(held <= 7))
		fmt.Printf("| %s… after a forced GC (goroutine stacks / Go heap in use) | %.1f KiB (%.1f / %.1f) | — |\n",
			p, perConn(r.rssAfterGC-r.rssBefore, r.n),
			perConn(r.afterGC.stackInuse-r.before.stackInuse, r.n), perConn(r.afterGC.heapInuse-r.before.heapInuse, r.n))
		fmt.Printf("| %sgoroutine stacks / Go heap in use per connection, after the hold | %.1f / %.1f KiB | — |\n",
			p, perConn(r.held.stackInuse-r.before.stackInuse, r.n), perConn(r.held.heapInuse-r.before.heapInuse, r.n))
		fmt.Printf("| %sgoroutines per connection | %.2f (%d → %d) | — |\n",
			p, float64(r.held.goroutines-r.before.goroutines)/float64(r.n), r.before.goroutines, r.held.goroutines)
		cpu := cpuPercent(r.serveCPU, r.hold)
		// The "CPU at idle" is the steady state, the second half:
		// the whole hold also has the one-time wave after the clients'
		// messages (the sweep parks every reader, then a memory return).
		fmt.Printf("| %sserver CPU during the whole hold, with the one-time park wave, %% of one core (clients' process) | %.2f%% (%.2f%%) | reported |\n",
			p, cpu, cpuPercent(r.clientsCPU, r.hold))
		cpu2 := cpuPercent(r.serveCPU2, r.secondHalf)
		fmt.Printf("| %sCPU at idle: the hold's second half (after the sweep's one-time park of every reader) | %.2f%% | < 2%% %s |\n",
			p, cpu2, verdict(cpu2 < 2))
		rounds := float64(r.pngs) / float64(r.n)
		fmt.Printf("| %sstill connected after the hold (server /status; clients) | %d; %d (%d dropped%s), %.1f pings answered per client during the hold | all %s |\n",
			p, r.serverClients, r.open, r.dropped, dropNote(r.firstDrop), rounds, verdict(r.serverClients == f.holdClients && r.open == int64(f.holdClients)))
	}
}

// lossNote names the clients that did not connect or got no echo.
func lossNote(r holdResult) string {
	if r.failed == 0 && r.noEcho == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d failed to connect, %d got no echo within %s)", r.failed, r.noEcho, echoWait)
}

func dropNote(first string) string {
	if first == "" {
		return ""
	}
	return ", first: " + first
}

// sleepUntil waits until t, or returns ctx's error if it ends first.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
