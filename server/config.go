package server

import "github.com/wasmgate/wasmgate/config"

// The configuration types live in package config; these aliases keep them
// where embedders and tests have always found them.
type (
	// Config is the whole of config.toml (config.Config).
	Config = config.Config
	// ServerConfig is the [server] table.
	ServerConfig = config.ServerConfig
	// RuntimeConfig is the [runtime] table.
	RuntimeConfig = config.RuntimeConfig
	// PushConfig is the [push] table.
	PushConfig = config.PushConfig
	// AdminConfig is the [admin] table.
	AdminConfig = config.AdminConfig
	// ModuleConfig is one [modules.NAME] table.
	ModuleConfig = config.ModuleConfig
	// Duration is a time.Duration written as "10s" in TOML.
	Duration = config.Duration
)

// DefaultConfig returns the configuration used for every key a file leaves
// out (config.Default).
func DefaultConfig() Config { return config.Default() }

// LoadConfig reads a TOML file over DefaultConfig and validates it
// (config.Load).
func LoadConfig(path string) (Config, error) { return config.Load(path) }
