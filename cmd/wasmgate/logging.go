package main

import (
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/wasmgate/wasmgate/server"
)

// newLogger builds the logger `wasmgate start` uses from server.log_format
// and server.log_level (Validate has checked both). Either handler writes
// one line per record: values with line breaks (a guest's trap with its
// stack) are quoted (text) or escaped (JSON), never written raw.
func newLogger(cfg server.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Server.LogLevel)) // "debug", "info", "warn", "error"
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Server.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// buildVersion is the version `wasmgate version` prints first.
func buildVersion() string {
	if version == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return version
}
