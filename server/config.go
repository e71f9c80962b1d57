package server

import (
	"reflect"
	"strconv"

	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/runtime"
)

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

// runtimeKeys returns a runtime.Config with every [runtime] key whose
// runtime tag names a runtime.Config field copied into it (a Duration as
// its time.Duration); keys tagged "-" are left to runtimeConfig, which
// converts their units. The names live in a tag rather than in a method of
// config.RuntimeConfig because package config stays a leaf: importing
// runtime would pull wazero into everything that only reads config.toml.
// A tag naming no field, or a field of another type, panics:
// TestRuntimeConfig_MapsEveryKey runs over every key.
func runtimeKeys(rc RuntimeConfig) runtime.Config {
	var c runtime.Config
	src, dst := reflect.ValueOf(rc), reflect.ValueOf(&c).Elem()
	for i := range src.NumField() {
		name := src.Type().Field(i).Tag.Get("runtime")
		if name == "-" {
			continue
		}
		v, f := src.Field(i), dst.FieldByName(name)
		if d, ok := v.Interface().(Duration); ok {
			v = reflect.ValueOf(d.Duration)
		}
		if !f.IsValid() || v.Type() != f.Type() {
			panic("server: runtime." + src.Type().Field(i).Name + ": runtime tag " + strconv.Quote(name) + " names no runtime.Config field of its type")
		}
		f.Set(v)
	}
	return c
}
