package server

import (
	"github.com/wasmgate/wasmgate/internal/kv/rediskv"
	"reflect"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/runtime"
)

// TestRuntimeConfig_MapsEveryKey: with every [runtime] key set to a
// distinct non-zero value, every runtime.Config setting comes out set, and
// each key tagged with a runtime field arrives there unchanged. A key with
// a wrong runtime tag panics here; a runtime setting nothing fills (a new
// field without a key or a conversion line) fails here.
func TestRuntimeConfig_MapsEveryKey(t *testing.T) {
	var rc RuntimeConfig
	v := reflect.ValueOf(&rc).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); {
		case f.Type() == reflect.TypeFor[Duration]():
			f.Set(reflect.ValueOf(Duration{Duration: time.Duration(i+1) * time.Millisecond}))
		case f.Kind() == reflect.Int:
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.String:
			f.SetString("x")
		default:
			t.Fatalf("RuntimeConfig.%s: unexpected type %s", v.Type().Field(i).Name, f.Type())
		}
	}
	// kvStores as in cluster mode, where the modules' stores live in Redis
	// (runtime.Config.KVStore comes from [cluster], not from [runtime]).
	s := &Server{cfg: DefaultConfig(), kvStores: &rediskv.Stores{}}
	got := reflect.ValueOf(s.runtimeConfig(rc))
	for i := range got.NumField() {
		if got.Field(i).IsZero() {
			t.Errorf("runtime.Config.%s is not set from the configuration", got.Type().Field(i).Name)
		}
	}
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("runtime")
		if name == "-" {
			continue
		}
		want := v.Field(i).Interface()
		if d, ok := want.(Duration); ok {
			want = d.Duration
		}
		if g := got.FieldByName(name).Interface(); g != want {
			t.Errorf("runtime.Config.%s = %v, want %v (runtime.%s)", name, g, want, v.Type().Field(i).Tag.Get("toml"))
		}
	}
	r := s.runtimeConfig(rc)
	if r.MemoryLimitPages != uint32(rc.MemoryLimit)*16 || r.KVMaxBytes != rc.KVMaxMB<<20 {
		t.Errorf("unit conversions: %d pages for %d MiB, %d bytes for %d MiB", r.MemoryLimitPages, rc.MemoryLimit, r.KVMaxBytes, rc.KVMaxMB)
	}
}

// TestConfig_LogDefaultsAreTheRuntimes: config.toml's log limits default
// to the runtime's own defaults (the config tags repeat the numbers, since
// package config must not import runtime).
func TestConfig_LogDefaultsAreTheRuntimes(t *testing.T) {
	rt := DefaultConfig().Runtime
	if rt.LogLinesPerSecond != runtime.DefaultLogLinesPerSecond || rt.LogBurst != runtime.DefaultLogBurst || rt.LogBytesPerSecond != runtime.DefaultLogBytesPerSecond {
		t.Errorf("config log defaults %d/%d/%d, runtime's %d/%d/%d", rt.LogLinesPerSecond, rt.LogBurst, rt.LogBytesPerSecond,
			runtime.DefaultLogLinesPerSecond, runtime.DefaultLogBurst, runtime.DefaultLogBytesPerSecond)
	}
}
