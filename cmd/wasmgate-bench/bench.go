package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchFlags are the default mode's settings.
type benchFlags struct {
	handlers        string
	duration        time.Duration
	warmup          time.Duration
	conns, inflight int
	size, idle      int
	settle          time.Duration
	profile         string
	idlePath        string
	only            string // "", "echo", "idle", "tls", "push", "attack", "cluster" or "hold"
	attackDuration  time.Duration
	pushDuration    time.Duration
	pushClients     int
	pushModes       []string
	clusterMembers  int
	clusterBurst    int
	clusterPaced    time.Duration
	clusterRate     int // paced group messages per second
	// clusterSettings are the cluster phase's rows to run (clusterSettings'
	// keys); clusterProcs is GOMAXPROCS of every serve of the phase (0: the
	// default).
	clusterSettings []string
	clusterProcs    int
	// clusterReader is how the cluster phase's members are read: "epoll"
	// (-cluster-pollers epoll loops, Linux) or "goroutine" (a websocket.Conn and a
	// goroutine each); clusterPollers is the epoll reader's goroutines.
	clusterReader  string
	clusterPollers int
	// The hold phase (hold.go): clients, how long they are held, their
	// route, serve's heartbeat settings, and another binary whose serve
	// side is measured alternately with this one, holdPairs times.
	holdClients            int
	holdDuration, holdPing time.Duration
	holdIdleTimeout        time.Duration
	holdPath, serveBin     string
	holdPairs              int
	// deflate adds the permessage-deflate rows to the echo phase: the C
	// echo with deflate off and on, JSON chat payloads (deflatePhase).
	deflate bool
}

// echoRoute is one measured route; eventTimeout is the serve process's
// runtime.event_timeout ("" = the default, 100ms); tls serves it over
// wss:// (serve -tls).
type echoRoute struct {
	path, label, eventTimeout string
	tls                       bool
}

// echoRoutes are the routes measured under load. The others are reported
// relative to the native echo, which runs first and last: the mean of its
// two runs is the baseline and their spread shows how noisy the machine is.
// The WASM echoes run with the default event deadline and without it: the
// deadline's termination checks cost wazero a goroutine per call.
//
// The wss:// rows measure what TLS adds: their server CPU per message is
// reported beside the plain row of the same route (plainOf).
var echoRoutes = []echoRoute{
	{"/native-echo", "native Go echo", "", false},
	{"/echo", "WASM echo (Go guest)", "", false},
	{"/rust-echo", "WASM echo (Rust guest)", "", false},
	{"/c-echo", "WASM echo (C guest)", "", false},
	{"/as-echo", "WASM echo (AssemblyScript guest)", "", false},
	{"/native-echo", "native Go echo over TLS (wss)", "", true},
	{"/echo", "WASM echo (Go guest) over TLS (wss)", "", true},
	{"/echo", "WASM echo (Go guest), event_timeout off", "0s", false},
	{"/rust-echo", "WASM echo (Rust guest), event_timeout off", "0s", false},
	{"/native-echo", "native Go echo (again)", "0s", false},
}

// tlsRoutes are what -only tls measures: each route plain, then over TLS,
// from one serve process per setting.
var tlsRoutes = []echoRoute{
	{"/native-echo", "native Go echo", "", false},
	{"/echo", "WASM echo (Go guest)", "", false},
	{"/native-echo", "native Go echo over TLS (wss)", "", true},
	{"/echo", "WASM echo (Go guest) over TLS (wss)", "", true},
}

// plainOf returns the index in routes of the plain row measuring the same
// path with the same event_timeout as the TLS row routes[i], or -1.
func plainOf(routes []echoRoute, i int) int {
	for j, r := range routes {
		if !r.tls && r.path == routes[i].path && r.eventTimeout == routes[i].eventTimeout {
			return j
		}
	}
	return -1
}

// runBench is the default mode: load each echo route, measure the memory of
// idle connections, run the push scenarios, and print a Markdown report.
func runBench(args []string) error {
	var f benchFlags
	fs := flag.NewFlagSet("wasmgate-bench", flag.ContinueOnError)
	fs.StringVar(&f.handlers, "handlers", "handlers", "folder holding echo.wasm and rust-echo.wasm (`make guests`)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured time per echo route")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "warm-up before each measurement")
	fs.IntVar(&f.conns, "conns", 100, "load connections")
	fs.IntVar(&f.inflight, "inflight", 10, "messages in flight per load connection")
	fs.IntVar(&f.size, "size", 64, "message size in bytes")
	fs.BoolVar(&f.deflate, "deflate", false, "echo phase: also measure the C echo with permessage-deflate off and on, with JSON chat messages of -size bytes")
	fs.IntVar(&f.idle, "idle", 8000, "idle connections for the memory measurement")
	fs.DurationVar(&f.settle, "settle", 3*time.Second, "wait after the idle connections are open")
	fs.StringVar(&f.idlePath, "idle-path", "/echo", "route the idle connections use")
	fs.StringVar(&f.profile, "profile", "", "folder for CPU profiles of serve per echo route and push scenario (its measured window), heap profiles with idle clients, and serve over the hold phase's hold (cpu-hold.pprof)")
	fs.StringVar(&f.only, "only", "", "run only the echo benchmarks (echo: load and idle memory), the idle memory (idle), the echo plain vs over TLS (tls), the push scenarios (push), the hostile-guest attacks (attack), the cluster phase (cluster), the permessage-deflate rows alone (deflate), or the clients held with heartbeats on (hold)")
	fs.DurationVar(&f.attackDuration, "attack-duration", 3*time.Second, "measured time per hostile-guest attack")
	fs.DurationVar(&f.pushDuration, "push-duration", 5*time.Second, "measured time per push scenario")
	fs.IntVar(&f.pushClients, "push-clients", 1000, "WebSocket clients the push scenarios push to")
	fs.IntVar(&f.clusterMembers, "cluster-members", 3000, "members of the cluster phase's group, spread over the nodes")
	fs.IntVar(&f.clusterBurst, "cluster-burst", 300, "sendToGroup messages of the cluster phase's burst")
	fs.DurationVar(&f.clusterPaced, "cluster-paced", 4*time.Second, "how long the cluster phase sends -cluster-rate group messages/s")
	fs.IntVar(&f.clusterRate, "cluster-rate", 50, "group messages per second of the cluster phase's paced window (the issue's figure: 50, 150,000 deliveries/s to 3,000 members)")
	clusterSettings := fs.String("cluster-settings", "single,cluster1,cluster3", "cluster phase rows to run, comma-separated: single (1 node, no cluster), cluster1, cluster3")
	fs.IntVar(&f.clusterProcs, "cluster-gomaxprocs", 0, "GOMAXPROCS of each serve process of the cluster phase (0: the default, the machine's cores)")
	fs.StringVar(&f.clusterReader, "cluster-reader", defaultClusterReader, "how the cluster phase's members are read: epoll (-cluster-pollers epoll loops parse every member's frames; Linux only) or goroutine (a websocket.Conn and a goroutine per member)")
	fs.IntVar(&f.clusterPollers, "cluster-pollers", 1, "goroutines (each with its epoll instance) of -cluster-reader epoll; one costs the shared cores least (more events per epoll_wait)")
	fs.IntVar(&f.holdClients, "hold-clients", 19000, "hold phase: clients held on one server (each its own file here: at most the hard RLIMIT_NOFILE less a few)")
	fs.DurationVar(&f.holdDuration, "hold-duration", 60*time.Second, "hold phase: how long the clients are held")
	fs.StringVar(&f.holdPath, "hold-path", "/echo", "hold phase: the clients' route (an echo)")
	fs.DurationVar(&f.holdPing, "hold-ping", 10*time.Second, "hold phase: serve's server.ping_interval")
	fs.DurationVar(&f.holdIdleTimeout, "hold-idle-timeout", 25*time.Second, "hold phase: serve's server.idle_timeout (a client that answers no ping is dropped after it)")
	fs.StringVar(&f.serveBin, "serve-bin", "", "hold phase: also measure the serve side of this wasmgate-bench binary (e.g. built from another commit; one from before the hold phase needs -hold-ping 25s -hold-idle-timeout 60s), alternately with this one")
	fs.IntVar(&f.holdPairs, "hold-pairs", 1, "hold phase: runs per binary (alternating with -serve-bin)")
	modes := fs.String("push-modes", strings.Join(pushModes, ","), "push scenarios to run, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.pushModes = strings.Split(*modes, ",")
	f.clusterSettings = strings.Split(*clusterSettings, ",")
	for _, m := range f.pushModes {
		if !slices.Contains(pushModes, m) {
			return fmt.Errorf("-push-modes: unknown scenario %q (want some of %s)", m, strings.Join(pushModes, ","))
		}
	}
	if f.clusterReader != "epoll" && f.clusterReader != "goroutine" {
		return fmt.Errorf("-cluster-reader %q: want epoll or goroutine", f.clusterReader)
	}
	if f.clusterPollers < 1 {
		return fmt.Errorf("-cluster-pollers %d: want at least 1", f.clusterPollers)
	}
	switch f.only {
	case "", "echo", "idle", "tls", "push", "attack", "cluster", "hold":
	case "deflate":
		ctx, cancel := context.WithTimeout(context.Background(), 2*(f.warmup+f.duration)+2*time.Minute)
		defer cancel()
		return deflatePhase(ctx, f)
	default:
		return fmt.Errorf("-only %q: want echo, idle, tls, push, attack, cluster, deflate or hold", f.only)
	}
	runCluster := f.only == "" || f.only == "cluster"
	runEcho := f.only == "" || f.only == "echo" || f.only == "idle"
	runPush, runAttack := f.only == "" || f.only == "push", f.only == "" || f.only == "attack"
	runHold := f.only == "" || f.only == "hold"
	if f.profile != "" {
		if err := os.MkdirAll(f.profile, 0o755); err != nil {
			return fmt.Errorf("profile folder: %w", err)
		}
	}
	var limit time.Duration
	if runEcho {
		limit += 3*(f.warmup+f.duration) + 150*time.Second
	}
	if f.only == "tls" {
		limit += time.Duration(len(tlsRoutes))*(f.warmup+f.duration) + 150*time.Second
	}
	if runPush {
		limit += time.Duration(len(f.pushModes)) * (f.warmup + f.pushDuration + 60*time.Second)
	}
	if runCluster {
		limit += 3 * (f.clusterPaced + 4*time.Minute)
	}
	if runAttack {
		limit += time.Duration(len(attacks))*(f.attackDuration+30*time.Second) + 2*time.Minute
	}
	if runHold {
		runs := max(1, f.holdPairs)
		if f.serveBin != "" {
			runs *= 2
		}
		limit += time.Duration(runs) * (f.holdDuration + 10*time.Minute)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := machine()
	fmt.Printf("machine: %s, %d cores, %s\n", m.cpu, m.cores, m.goVersion)
	var loads []loadResult
	var mem memResult
	if runEcho {
		var err error
		if f.only != "idle" {
			if loads, err = loadPhase(ctx, f, echoRoutes); err != nil {
				return err
			}
		}
		if mem, err = idlePhase(ctx, f); err != nil {
			return err
		}
	}
	if f.only == "tls" {
		loads, err := loadPhase(ctx, f, tlsRoutes)
		if err != nil {
			return err
		}
		printTLSReport(m, f, tlsRoutes, loads)
		return ctx.Err()
	}
	var pushes []pushOutcome
	if runPush {
		pushes = pushPhase(ctx, f)
	}
	var attacked []attackResult
	if runAttack {
		attacked = attackPhase(ctx, f)
	}
	var clustered []clusterResult
	if runCluster {
		clustered = clusterPhase(ctx, f)
	}
	var held []holdResult
	var holdErr error
	if runHold {
		held, holdErr = holdPhase(ctx, f)
	}
	if runEcho || runPush {
		printReport(m, f, loads, mem, pushes)
	}
	printAttackRows(attacked)
	if runCluster {
		printClusterRows(f, clustered)
		printClusterPaced(clustered)
		printClusterCPU(clustered, runtime.NumCPU())
	}
	printHoldRows(f, held)
	if holdErr != nil {
		return holdErr
	}
	for _, o := range pushes {
		if o.err != nil {
			return fmt.Errorf("push scenario %s failed", o.Mode)
		}
	}
	return ctx.Err()
}

// serveAddrs are the listeners serve prints.
type serveAddrs struct {
	ws, text, admin string
	pid             int
}

// startServe starts `serve` with the given modules and waits for its
// addresses and pid.
func startServe(ctx context.Context, f benchFlags, modules string, extra ...string) (*child, serveAddrs, error) {
	return startServeExe(ctx, "", f, modules, extra...)
}

// startServeExe is startServe running the serve side of exe, another
// wasmgate-bench binary ("": this one).
func startServeExe(ctx context.Context, exe string, f benchFlags, modules string, extra ...string) (*child, serveAddrs, error) {
	var a serveAddrs
	args := append([]string{"serve", "-handlers", f.handlers, "-modules", modules}, extra...)
	var srv *child
	var err error
	if exe == "" {
		srv, err = startChild(ctx, args...)
	} else {
		srv, err = startChildExe(ctx, exe, args...)
	}
	if err != nil {
		return nil, a, err
	}
	line, err := srv.expect("ADDR ", 2*time.Minute) // a cold compile cache takes a while
	if err != nil {
		_ = srv.stop(5 * time.Second)
		return nil, a, err
	}
	if _, err := fmt.Sscanf(line, "ADDR %s PID %d TEXT %s ADMIN %s", &a.ws, &a.pid, &a.text, &a.admin); err != nil {
		_ = srv.stop(5 * time.Second)
		return nil, a, fmt.Errorf("serve printed %q: %w", line, err)
	}
	return srv, a, nil
}

// echoModules are the modules the echo and idle phases load.
const echoModules = "echo,rust-echo,c-echo,as-echo"

// loadPhase runs `load` against every route, starting a serve process
// per setting (event_timeout, TLS). The results are in routes order.
func loadPhase(ctx context.Context, f benchFlags, routes []echoRoute) ([]loadResult, error) {
	var srv *child
	var addrs serveAddrs
	type setting struct {
		eventTimeout string
		tls          bool
	}
	current := setting{eventTimeout: "none"}
	defer func() {
		if srv != nil {
			_ = srv.stop(15 * time.Second)
		}
	}()
	var out []loadResult
	for _, r := range routes {
		if (setting{r.eventTimeout, r.tls}) != current { // a serve process per configuration
			if srv != nil {
				_ = srv.stop(15 * time.Second)
			}
			var extra []string
			if r.eventTimeout != "" {
				extra = []string{"-event-timeout", r.eventTimeout}
			}
			if r.tls {
				extra = append(extra, "-tls")
			}
			var err error
			if srv, addrs, err = startServe(ctx, f, echoModules, extra...); err != nil {
				srv = nil
				return nil, err
			}
			current = setting{r.eventTimeout, r.tls}
		}
		scheme := "ws://"
		if r.tls {
			scheme = "wss://"
		}
		res, err := loadRoute(ctx, f, srv, scheme+addrs.ws+r.path)
		if err != nil {
			return nil, err
		}
		fmt.Printf("%-24s %9.0f msgs/s  p50 %6.0f µs  p99 %6.0f µs  p99.9 %6.0f µs  server CPU %5.2f µs/msg  errors %d\n",
			r.label, res.MsgsPerS, res.P50us, res.P99us, res.P999us, res.CPUPerMsgUs, res.Errors)
		out = append(out, res)
	}
	if f.deflate {
		if err := deflatePhase(ctx, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deflatePhase measures permessage-deflate's cost: the C echo served as
// c-echo (deflate off) and as c-echo-z (the same module with deflate on),
// loaded with JSON chat messages, the serve process's CPU time per echoed
// message beside the throughput (load's numbers include the client's own
// compression, so CPU per message is the figure to compare).
func deflatePhase(ctx context.Context, f benchFlags) error {
	srv, addrs, err := startServe(ctx, f, echoModules+","+filepath.Join(f.handlers, "c-echo")+"@c-echo-z", "-deflate", "c-echo-z")
	if err != nil {
		return err
	}
	defer srv.stop(15 * time.Second)
	for _, r := range []struct{ path, label string }{{"/c-echo", "C echo, JSON, deflate off"}, {"/c-echo-z", "C echo, JSON, deflate on"}} {
		cpu0, err := processCPU(srv.cmd.Process.Pid)
		if err != nil {
			return err
		}
		extra := []string{"-json"}
		if r.path == "/c-echo-z" {
			extra = append(extra, "-deflate")
		}
		res, err := loadRouteWith(ctx, f, srv, "ws://"+addrs.ws+r.path, extra...)
		if err != nil {
			return err
		}
		cpu1, err := processCPU(srv.cmd.Process.Pid)
		if err != nil {
			return err
		}
		// CPU over the whole load run (warm-up included), per message
		// echoed in the whole run (estimated from the measured rate).
		msgs := res.MsgsPerS * (f.warmup + f.duration).Seconds()
		fmt.Printf("%-28s %9.0f msgs/s  p50 %6.0f µs  p99 %6.0f µs  serve CPU %.1f µs/msg  errors %d\n",
			r.label, res.MsgsPerS, res.P50us, res.P99us, (cpu1-cpu0).Seconds()*1e6/msgs, res.Errors)
	}
	return nil
}

// processCPU is a process's user+system CPU time, from /proc.
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field of the line, stime the 15th.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse %q", data)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse CPU time: %w", err)
	}
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// loadRoute runs one `load` child, with a CPU profile of serve if asked.
func loadRoute(ctx context.Context, f benchFlags, srv *child, url string) (loadResult, error) {
	return loadRouteWith(ctx, f, srv, url)
}

// loadRouteWith is loadRoute with extra `load` flags.
func loadRouteWith(ctx context.Context, f benchFlags, srv *child, url string, extra ...string) (loadResult, error) {
	if f.profile != "" {
		name := strings.TrimPrefix(url[strings.LastIndex(url, "/"):], "/")
		if _, err := srv.ask("cpuprofile "+filepath.Join(f.profile, "cpu-"+name+".pprof"), "OK"); err != nil {
			return loadResult{}, err
		}
		defer srv.ask("cpustop", "OK")
	}
	cctx, cancel := context.WithTimeout(ctx, f.warmup+f.duration+time.Minute)
	defer cancel()
	c, err := startChild(cctx, append([]string{"load", "-url", url,
		"-conns", strconv.Itoa(f.conns), "-inflight", strconv.Itoa(f.inflight),
		"-size", strconv.Itoa(f.size), "-warmup", f.warmup.String(), "-duration", f.duration.String()}, extra...)...)
	if err != nil {
		return loadResult{}, err
	}
	defer c.stop(5 * time.Second)
	_ = c.stdin.Close()
	// serve's CPU time at the measured window's edges (load's MARK lines).
	var cpu0, cpu1 time.Duration
	var cpuErr error
	last := ""
	for line := range c.lines {
		switch line {
		case "MARK begin":
			cpu0, cpuErr = serveCPU(srv)
		case "MARK end":
			if cpu1, err = serveCPU(srv); err != nil {
				cpuErr = err
			}
		default:
			last = line
		}
	}
	if err := c.cmd.Wait(); err != nil {
		return loadResult{}, fmt.Errorf("load %s: %w", url, errors.Join(err, cctx.Err()))
	}
	var res loadResult
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		return res, fmt.Errorf("load %s printed %q: %w", url, last, err)
	}
	if cpuErr != nil {
		return res, cpuErr
	}
	if res.Msgs > 0 {
		res.CPUPerMsgUs = float64(cpu1-cpu0) / 1e3 / float64(res.Msgs)
	}
	return res, nil
}

// memResult is what idle connections cost the serve process.
type memResult struct {
	n                  int
	path               string
	rssBefore, rssIdle int64 // bytes
	rssAfterGC         int64
	before, idle       serveStats
	afterGC            serveStats

	// VmRSS 1 s and 10 s after the idle clients closed, with no forced GC:
	// what the server gives back by itself (server/memreturn.go).
	rssClosed1, rssClosed10 int64
}

// idlePhase measures a fresh serve process (so the load phase's heap does
// not hide the idle connections' memory): warm the /echo instance pool,
// return free memory to the OS, read VmRSS, open the idle clients, wait
// settle, read VmRSS again.
func idlePhase(ctx context.Context, f benchFlags) (memResult, error) {
	srv, addrs, err := startServe(ctx, f, echoModules)
	if err != nil {
		return memResult{}, err
	}
	defer srv.stop(30 * time.Second)
	addr, pid := addrs.ws, addrs.pid
	if _, err := runChild(ctx, time.Minute, "load", "-url", "ws://"+addr+"/echo", "-conns", "20",
		"-inflight", "4", "-warmup", "0s", "-duration", "1s"); err != nil {
		return memResult{}, fmt.Errorf("warm-up: %w", err)
	}
	if f.profile != "" {
		if _, err := srv.ask("heapprofile "+filepath.Join(f.profile, "heap-before.pprof"), "OK"); err != nil {
			return memResult{}, err
		}
	}
	if _, err := srv.ask("gc", "OK"); err != nil {
		return memResult{}, err
	}
	time.Sleep(time.Second)
	r := memResult{n: f.idle, path: f.idlePath}
	if r.rssBefore, r.before, err = sample(srv, pid); err != nil {
		return r, err
	}
	idle, err := startChild(ctx, "idle", "-addr", addr, "-path", f.idlePath, "-n", strconv.Itoa(f.idle))
	if err != nil {
		return r, err
	}
	defer idle.stop(30 * time.Second)
	if _, err := idle.expect("READY ", 2*time.Minute); err != nil {
		return r, err
	}
	time.Sleep(f.settle)
	if r.rssIdle, r.idle, err = sample(srv, pid); err != nil {
		return r, err
	}
	if err := afterIdle(srv, pid, f, &r); err != nil {
		return r, err
	}
	return r, afterClose(idle, pid, &r)
}

// afterClose closes the idle clients and reads VmRSS 1 s and 10 s later.
func afterClose(idle *child, pid int, r *memResult) error {
	if err := idle.stop(30 * time.Second); err != nil {
		return err
	}
	closed := time.Now()
	var err error
	time.Sleep(time.Second)
	if r.rssClosed1, err = vmRSS(pid); err != nil {
		return err
	}
	time.Sleep(time.Until(closed.Add(10 * time.Second)))
	r.rssClosed10, err = vmRSS(pid)
	return err
}

// afterIdle, once the measurement is taken, forces a GC to tell garbage
// from live memory and writes a heap profile if asked.
func afterIdle(srv *child, pid int, f benchFlags, r *memResult) error {
	if f.profile != "" {
		if _, err := srv.ask("heapprofile "+filepath.Join(f.profile, "heap-idle.pprof"), "OK"); err != nil {
			return err
		}
	}
	if _, err := srv.ask("gc", "OK"); err != nil {
		return err
	}
	var err error
	r.rssAfterGC, r.afterGC, err = sample(srv, pid)
	return err
}

// serveStats is serve's STATS line.
type serveStats struct {
	goroutines, heapInuse, stackInuse, sys int64
}

func sample(srv *child, pid int) (int64, serveStats, error) {
	rss, err := vmRSS(pid)
	if err != nil {
		return 0, serveStats{}, err
	}
	line, err := srv.ask("stats", "STATS ")
	if err != nil {
		return 0, serveStats{}, err
	}
	var s serveStats
	_, err = fmt.Sscanf(line, "STATS goroutines=%d heap_inuse=%d stack_inuse=%d sys=%d",
		&s.goroutines, &s.heapInuse, &s.stackInuse, &s.sys)
	if err != nil {
		return 0, s, fmt.Errorf("serve printed %q: %w", line, err)
	}
	return rss, s, nil
}

// vmRSS reads a process's resident set size from /proc.
func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read VmRSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS line in /proc status")
}
