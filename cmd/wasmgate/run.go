package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: wasmgate <command> [flags]

commands:
  start [-c config.toml]   start the gateway in the foreground
  check [-c config.toml]   validate the config and load every handler module
  version                  print the version
`

// run is main without os.Exit, so tests can call it. ready, if not nil,
// receives the server once it listens.
func run(args []string, stdout, stderr io.Writer, ready chan<- *server.Server) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "wasmgate", version)
		return 0
	case "start", "check":
	default:
		fmt.Fprintf(stderr, "wasmgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", "config.toml", "path to the config file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := server.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	if args[0] == "check" {
		return check(cfg, stdout, stderr)
	}
	return start(cfg, stderr, ready)
}

func check(cfg server.Config, stdout, stderr io.Writer) int {
	if err := server.CheckModules(context.Background(), cfg); err != nil {
		fmt.Fprintln(stderr, "wasmgate: check failed:\n"+err.Error())
		return 1
	}
	fmt.Fprintln(stdout, "config and modules OK")
	return 0
}

func start(cfg server.Config, stderr io.Writer, ready chan<- *server.Server) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if n := len(srv.LoadErrors()); n > 0 {
		log.Warn("serving without the refused modules", "refused", n)
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if ready != nil {
		ready <- srv
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
