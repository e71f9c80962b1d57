package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/wasmgate/wasmgate/internal/cluster"
	"github.com/wasmgate/wasmgate/internal/handover"
	"github.com/wasmgate/wasmgate/server"
)

// version and commit are set at build time with -ldflags "-X main.version=…
// -X main.commit=…" (the Makefile does); without them, version falls back
// to the module version and commit to the VCS stamp of the build.
var (
	version = "dev"
	commit  = ""
)

const usage = `usage: wasmgate <command> [flags]

commands:
  start [-c config.toml]   start the gateway in the foreground
  check [-c config.toml]   validate the config and load every handler module
  reload [-c config.toml]  make the running gateway reload changed handler modules
                           and its TLS certificate
  restart [-c config.toml] replace the running gateway by the binary on disk without
                           refusing a connection (docs/DEPLOY.md; also SIGUSR2)
  replay [-c config.toml] MODULE.wasm EVENTS.jsonl
                           play a recorded session (server.record_route) against a
                           module, in-process, and print what the handler sent
  status [-c config.toml] [--json] [--interval 1s]
                           uptime, connections, uids, groups, per module events/s,
                           p99 event time, traps, timeouts, pool use; memory
  connections [-c config.toml] [--uid U] [--group G] [--module M] [--limit N] [--json]
                           list the connected clients with their traffic
  stop [-c config.toml] [--timeout 10s]
                           stop gracefully (clients get close 1001) and wait for the exit
  version                  print the version, commit, Go and wazero versions
  help                     print this text (also -h, --help)
`

// run is main without os.Exit, so tests can call it. ready, if not nil,
// receives the server once it listens.
func run(args []string, stdout, stderr io.Writer, ready chan<- *server.Server) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		printVersion(stdout)
		return 0
	case "start", "check", "reload", "restart", "replay":
	case "status", "connections", "stop": // status.go
		return runOps(args[0], args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "wasmgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", "config.toml", "path to the config file")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if args[0] == "replay" {
		return replayCmd(fs, *configPath, stdout, stderr)
	}
	cfg, err := server.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	switch args[0] {
	case "check":
		return check(cfg, stdout, stderr)
	case "reload":
		return reload(cfg, stdout, stderr)
	case "restart":
		return restartCmd(cfg, stdout, stderr)
	}
	return start(cfg, args, stderr, ready)
}

// check loads every module as start would, without listening, and lists
// the routes it would serve before the problems it found.
func check(cfg server.Config, stdout, stderr io.Writer) int {
	ctx := context.Background()
	if _, err := os.Stat(cfg.Server.HandlersDir); err != nil {
		fmt.Fprintln(stderr, "wasmgate: check failed: handlers folder:", err)
		return 1
	}
	if cfg.Cluster.Redis != "" {
		// A check must not join the cluster: it would claim a node id, or
		// wait for a live node's. Validate has checked the URL's form.
		fmt.Fprintln(stdout, "cluster mode: redis", cluster.Redacted(cfg.Cluster.Redis), "(not contacted by check)")
		cfg.Cluster.Redis = ""
	}
	srv, err := server.New(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate: check failed:\n"+err.Error())
		return 1
	}
	defer srv.Shutdown(ctx)
	routes := srv.Routes() // "path -> module", sorted
	modules := map[string]bool{}
	for _, r := range routes {
		_, m, _ := strings.Cut(r, " -> ")
		modules[m] = true
	}
	fmt.Fprintf(stdout, "%s: %d module(s) loaded, served at %d route(s):\n", cfg.Server.HandlersDir, len(modules), len(routes))
	for _, r := range routes {
		fmt.Fprintln(stdout, "  "+r)
	}
	if errs := srv.LoadErrors(); len(errs) > 0 {
		fmt.Fprintln(stderr, "wasmgate: check failed:\n"+errors.Join(errs...).Error())
		return 1
	}
	fmt.Fprintln(stdout, "config and modules OK")
	return 0
}

// printVersion prints what a bug report needs: wasmgate's version and
// commit, and the Go and wazero versions it was built with.
func printVersion(w io.Writer) {
	v, c, goVersion, wazero := version, commit, "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if c == "" && settings["vcs.revision"] != "" {
			c = settings["vcs.revision"]
			if settings["vcs.modified"] == "true" {
				c += " (modified)"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				if d.Replace != nil {
					d = d.Replace
				}
				wazero = d.Version
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(w, "wasmgate %s\ncommit   %s\ngo       %s %s/%s\nwazero   %s\n", v, c, goVersion, goruntime.GOOS, goruntime.GOARCH, wazero)
}

// start serves until SIGINT or SIGTERM, a stop request (POST /stop), or
// until a restart has handed over to a new process; args are the start
// command's, which a restart passes on.
func start(cfg server.Config, args []string, stderr io.Writer, ready chan<- *server.Server) int {
	log := newLogger(cfg, stderr) // server.log_format, log_level
	cluster.RouteRedisLogs(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	inherited, err := handover.FromEnv() // nil unless started by a restart
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer inherited.Close()
	if path := cfg.Server.PIDFile; path != "" {
		oldPID := 0
		if inherited != nil { // started by a restart: the file names the old process, our parent
			oldPID = os.Getppid()
		}
		stale, err := claimPIDFile(path, oldPID)
		if err != nil {
			log.Error("cannot start", "err", err)
			return 1
		}
		if stale != 0 {
			log.Warn("replaced a stale pid file: the process it named is gone", "pid_file", path, "stale_pid", stale)
		}
		defer func() {
			if err := removePIDFile(path); err != nil {
				log.Warn("removing the pid file", "pid_file", path, "err", err)
			}
		}()
	}
	rs := newRestarter(args, log)
	srv, err := server.New(ctx, cfg, log, server.WithListen(inherited.Listen), server.WithRestart(rs.restart), server.WithVersion(buildVersion()))
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	stopRequested := srv.StopRequested() // POST /stop, `wasmgate stop`
	if n := len(srv.LoadErrors()); n > 0 {
		log.Warn("serving without the refused modules", "refused", n)
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	rs.srv = srv
	if err := inherited.Ready(); err != nil {
		log.Error("restart: the old process is gone", "err", err)
	} else if inherited != nil {
		log.Info("restart: took over the listeners; the old process now closes its clients")
	} else if _, err := handover.Notify("READY=1"); err != nil {
		log.Warn("telling systemd we are ready", "err", err)
	}
	if ready != nil {
		ready <- srv
	}
	reloadOnHUP(ctx, srv, log)
	restartOnUSR2(ctx, rs)
	timeout := stopTimeout
	select {
	case <-ctx.Done():
	case pid := <-rs.done:
		return handOff(srv, pid, log)
	case timeout = <-stopRequested:
		log.Info("stop requested through the admin listener", "timeout", timeout)
	}
	log.Info("shutting down")
	_, _ = handover.Notify("STOPPING=1")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// reloadOnHUP reloads the handler modules, and the TLS certificate if
// any, on every SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, srv *server.Server, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				rep, err := srv.Reload(ctx)
				log.Info("reload on SIGHUP", "replaced", rep.Replaced, "loaded", rep.Loaded, "removed", rep.Removed, "refused", len(rep.Refused), "err", err)
				_ = srv.ReloadTLS() // logs its outcome
			}
		}
	}()
}

// reload asks the running gateway, through its admin listener, to reload.
func reload(cfg server.Config, stdout, stderr io.Writer) int {
	return postAdmin(cfg, "reload", "SIGHUP", time.Minute, stdout, stderr)
}

// postAdmin POSTs /<cmd> to the running gateway's admin listener (with the
// push secret) and prints its answer: `wasmgate reload` and `restart`.
// signal names what to send the process instead when there is no admin
// listener.
func postAdmin(cfg server.Config, cmd, signal string, timeout time.Duration, stdout, stderr io.Writer) int {
	a := adminOf(cfg)
	if a.base == "" {
		fmt.Fprintf(stderr, "wasmgate: %s needs the admin listener (admin.listen); or send the process %s\n", cmd, signal)
		return 1
	}
	req, err := http.NewRequest(http.MethodPost, a.base+"/"+cmd, nil)
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	req.Close = true // restart: the admin listener stops right after answering
	if a.secret != "" {
		req.Header.Set("Authorization", "Bearer "+a.secret)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "wasmgate: %s: is the gateway running? %v\n", cmd, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "wasmgate: %s: %s: %s", cmd, resp.Status, body)
		return 1
	}
	fmt.Fprint(stdout, string(body))
	return 0
}
