package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wasmgate/wasmgate/cmd/wasmgate-bench/nativeecho"
	"github.com/wasmgate/wasmgate/server"
)

// benchModules are the modules serve loads by default (-modules); others in
// the folder are left out so their instances do not weigh on the
// measurements. notify is the push benchmarks' route.
const benchModules = "echo,rust-echo,notify"

// runServe is the `serve` subcommand: an in-process gateway on loopback
// serving /echo, /rust-echo, /notify and /native-echo, with the text port
// and the HTTP API on ephemeral loopback ports, until stdin closes or
// SIGTERM. It prints
//
//	ADDR <ws host:port> PID <pid> TEXT <text port host:port> ADMIN <HTTP API host:port>
//
// and answers commands read from stdin, one per line (see serveCommands).
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	handlers := fs.String("handlers", "handlers", "folder holding echo.wasm, rust-echo.wasm, c-echo.wasm, as-echo.wasm and notify.wasm")
	modules := fs.String("modules", benchModules, "comma-separated modules to load from -handlers")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	pool := fs.Int("pool", runtime.NumCPU()*2, "runtime.pool_size")
	eventTimeout := fs.Duration("event-timeout", server.DefaultConfig().Runtime.EventTimeout.Duration, "runtime.event_timeout (0: off)")
	moduleConfig := fs.String("module-config", "", "NAME:CONFIG;…, the on_start config of modules (e.g. chat:rate_limit=0)")
	withTLS := fs.Bool("tls", false, "serve wss:// with a self-signed certificate made at start")
	redisURL := fs.String("redis", "", "join a cluster on this Redis ([cluster] redis)")
	redisPrefix := fs.String("redis-prefix", "", "the cluster's key prefix ([cluster] prefix)")
	deflate := fs.String("deflate", "", "comma-separated modules with permessage-deflate on ([modules.NAME] deflate)")
	crashLimit := fs.Int("crash-limit", server.DefaultConfig().Runtime.CrashLimit, "runtime.crash_limit (0: never quarantine; the attack phase keeps hostile modules serving)")
	procs := fs.Int("gomaxprocs", 0, "runtime.GOMAXPROCS of this process (0: the default); set before the server sizes its fan-out lanes")
	var live liveness
	fs.DurationVar(&live.ping, "ping-interval", server.DefaultConfig().Server.PingInterval.Duration, "server.ping_interval (0: no heartbeats)")
	fs.DurationVar(&live.idle, "idle-timeout", server.DefaultConfig().Server.IdleTimeout.Duration, "server.idle_timeout (0: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	dir, err := copyModules(*handlers, strings.Split(*modules, ","))
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	tlsFiles := [2]string{}
	if *withTLS {
		if tlsFiles, err = selfSignedCert(dir); err != nil {
			return err
		}
	}
	srv, err := startServer(dir, *pool, *eventTimeout, *crashLimit, *moduleConfig, tlsFiles, *redisURL, *redisPrefix, *deflate, live)
	if err != nil {
		return err
	}
	fmt.Printf("ADDR %s PID %d TEXT %s ADMIN %s\n", srv.Addr(), os.Getpid(), srv.TextAddr(), srv.AdminAddr())
	waitForEnd(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// liveness is serve's heartbeat setting: server.ping_interval and
// server.idle_timeout (the hold phase pings more often than the default so
// that its hold sees several rounds).
type liveness struct{ ping, idle time.Duration }

// startServer builds and starts the gateway with the modules in dir and
// the native echo; tlsFiles, if set, are the certificate and key of wss://;
// deflate lists the modules with permessage-deflate on.
func startServer(dir string, poolSize int, eventTimeout time.Duration, crashLimit int, moduleConfig string, tlsFiles [2]string, redisURL, redisPrefix, deflate string, live liveness) (*server.Server, error) {
	cfg := server.DefaultConfig()
	cfg.Server.PingInterval.Duration, cfg.Server.IdleTimeout.Duration = live.ping, live.idle
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Push.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Server.HandlersDir = dir
	cfg.Server.MaxConnections = 1_000_000
	// The per-IP limits stay on (their bookkeeping is measured) but are
	// never reached: the idle phase opens thousands of clients from two
	// source addresses.
	cfg.Server.MaxConnectionsPerIP = 1_000_000
	cfg.Server.HandshakeRatePerIP, cfg.Server.HandshakeBurstPerIP = 100_000_000, 100_000_000
	// Origin checks on, as a production edge has them: the load clients
	// send an Origin the wildcard admits (benchOrigin).
	cfg.Server.AllowedOrigins = []string{"https://app.example.com", "*.example.com"}
	cfg.Runtime.PoolSize = poolSize
	cfg.Runtime.EventTimeout.Duration = eventTimeout
	cfg.Runtime.CrashLimit = crashLimit
	cfg.Server.TLSCert, cfg.Server.TLSKey = tlsFiles[0], tlsFiles[1]
	if redisURL != "" {
		cfg.Cluster.Redis = redisURL
		if redisPrefix != "" {
			cfg.Cluster.Prefix = redisPrefix
		}
	}
	cfg.Modules = map[string]server.ModuleConfig{}
	for _, mc := range strings.Split(moduleConfig, ";") {
		if name, conf, ok := strings.Cut(mc, ":"); ok {
			cfg.Modules[name] = server.ModuleConfig{Config: conf}
		}
	}
	for _, name := range strings.Split(deflate, ",") {
		if name != "" {
			mc := cfg.Modules[name]
			mc.Deflate = true
			cfg.Modules[name] = mc
		}
	}
	cfg.Runtime.CacheDir = filepath.Join(os.TempDir(), "wasmgate-bench-cache")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	echo := &nativeecho.Echo{}
	srv, err := server.New(context.Background(), cfg, log, server.WithHandler("/native-echo", echo))
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if errs := srv.LoadErrors(); len(errs) > 0 {
		return nil, fmt.Errorf("modules refused: %v", errs)
	}
	echo.Gateway = srv.Gateway()
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	return srv, nil
}

// copyModules copies NAME.wasm for each name from src into a fresh
// temporary folder and returns it (also on error, for removal). A name
// with a slash is a path (without .wasm) to a module elsewhere, such as a
// fixture of runtime/testdata.
func copyModules(src string, names []string) (string, error) {
	dir, err := os.MkdirTemp("", "wasmgate-bench-handlers-")
	if err != nil {
		return "", fmt.Errorf("handlers temp dir: %w", err)
	}
	for _, name := range names {
		from := filepath.Join(src, name+".wasm")
		if strings.ContainsRune(name, '/') {
			from, name = name+".wasm", filepath.Base(name)
			if path, alias, ok := strings.Cut(from, "@"); ok { // PATH@ALIAS: one file under another name
				from, name = strings.TrimSuffix(path, ".wasm")+".wasm", strings.TrimSuffix(alias, ".wasm")
			}
		}
		data, err := os.ReadFile(from)
		if err != nil {
			return dir, fmt.Errorf("module %s: %w (run `make guests`)", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), data, 0o644); err != nil {
			return dir, fmt.Errorf("copy module %s: %w", name, err)
		}
	}
	return dir, nil
}

// waitForEnd serves stdin commands until stdin closes or a SIGTERM/SIGINT
// arrives.
func waitForEnd(srv *server.Server) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		serveCommands(os.Stdin, os.Stdout)
	}()
	select {
	case <-sig:
	case <-eof:
	}
}

// serveCommands answers one line per command on out:
//
//	stats               STATS goroutines=N heap_inuse=B stack_inuse=B sys=B
//	cpuprofile PATH     starts a CPU profile (OK or ERR ...)
//	cpustop             stops it (OK)
//	heapprofile PATH    writes a heap profile after a GC (OK or ERR ...)
//	gc                  runs a GC and returns memory to the OS (OK)
//	rusage              RUSAGE utime_us=N stime_us=N (getrusage of this process)
//	gcpause             GCPAUSE max_ns=N: the longest stop-the-world GC pause since the last gcpause
func serveCommands(in io.Reader, out io.Writer) {
	var stop func()
	var pauses gcPauses
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		var err error
		switch cmd {
		case "stats":
			fmt.Fprintln(out, statsLine())
			continue
		case "rusage":
			fmt.Fprintln(out, rusageLine())
			continue
		case "gcpause":
			fmt.Fprintf(out, "GCPAUSE max_ns=%d\n", pauses.maxSinceLast().Nanoseconds())
			continue
		case "cpuprofile":
			if stop == nil {
				stop, err = startCPUProfile(arg)
			}
		case "cpustop":
			if stop != nil {
				stop()
				stop = nil
			}
		case "heapprofile":
			err = writeHeapProfile(arg)
		case "gc":
			debug.FreeOSMemory()
		default:
			err = fmt.Errorf("unknown command %q", cmd)
		}
		reply(out, err)
	}
}

func reply(out io.Writer, err error) {
	if err != nil {
		fmt.Fprintf(out, "ERR %v\n", err)
		return
	}
	fmt.Fprintln(out, "OK")
}

func statsLine() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("STATS goroutines=%d heap_inuse=%d stack_inuse=%d sys=%d",
		runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse, ms.Sys)
}

// rusageLine reports the CPU this process has used, in microseconds.
func rusageLine() string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "ERR " + err.Error()
	}
	us := func(t syscall.Timeval) int64 { return t.Sec*1e6 + t.Usec }
	return fmt.Sprintf("RUSAGE utime_us=%d stime_us=%d", us(ru.Utime), us(ru.Stime))
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}

// gcPauses reads the runtime's histogram of stop-the-world GC pauses
// (time to stop plus time stopped) and reports the longest one since the
// previous reading, as the upper bound of the highest bucket that grew.
type gcPauses struct{ last []uint64 }

func (g *gcPauses) maxSinceLast() time.Duration {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := s[0].Value.Float64Histogram()
	var longest float64
	for i, c := range h.Counts {
		if i < len(g.last) && c > g.last[i] || i >= len(g.last) && c > 0 {
			longest = h.Buckets[i+1] // the bucket's upper bound
		}
	}
	g.last = slices.Clone(h.Counts)
	if math.IsInf(longest, 1) {
		longest = h.Buckets[len(h.Buckets)-2]
	}
	return time.Duration(longest * float64(time.Second))
}
