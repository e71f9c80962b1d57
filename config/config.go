// Package config is wasmgate's configuration: the types config.toml
// decodes into, their defaults, validation, and loading. The server
// re-exports the types (server.Config and the rest) for embedders.
package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole of config.toml. Defaults come from Default; a
// key missing from the file keeps its default.
type Config struct {
	Server  ServerConfig            `toml:"server"`
	Runtime RuntimeConfig           `toml:"runtime"`
	Push    PushConfig              `toml:"push"`
	Admin   AdminConfig             `toml:"admin"`
	Routes  map[string]string       `toml:"routes"`
	Modules map[string]ModuleConfig `toml:"modules"`
}

// ServerConfig is the [server] table: the public WebSocket listener.
type ServerConfig struct {
	Listen         string   `toml:"listen"`
	HandlersDir    string   `toml:"handlers_dir"`
	MaxMessageSize int      `toml:"max_message_size"`
	SendQueueSize  int      `toml:"send_queue_size"`
	SendQueueBytes int      `toml:"send_queue_bytes"`
	WriteTimeout   Duration `toml:"write_timeout"`
	MaxConnections int      `toml:"max_connections"`
	PingInterval   Duration `toml:"ping_interval"`
	IdleTimeout    Duration `toml:"idle_timeout"`
	NodeID         uint32   `toml:"node_id"`
	WatchHandlers  bool     `toml:"watch_handlers"`

	// Per-client state bounds (the registry's limits).
	MaxSessionBytes    int `toml:"max_session_bytes"`
	MaxGroupsPerClient int `toml:"max_groups_per_client"`
	MaxNameBytes       int `toml:"max_name_bytes"`
	// FDHeadroom is how many file descriptors WebSocket clients must leave
	// to everything else: max_connections is lowered to RLIMIT_NOFILE
	// minus this at start.
	FDHeadroom int `toml:"fd_headroom"`
}

// RuntimeConfig is the [runtime] table: how handlers run.
type RuntimeConfig struct {
	PoolSize     int      `toml:"pool_size"`
	CacheDir     string   `toml:"cache_dir"`
	EventTimeout Duration `toml:"event_timeout"`
	MemoryLimit  int      `toml:"memory_limit_mb"`
	EventQueue   int      `toml:"event_queue"`
	// MaxCallDepth bounds how deeply a guest's calls nest (runtime-wide:
	// it is compiled into every module).
	MaxCallDepth int `toml:"max_call_depth"`

	TaskWorkers int      `toml:"task_workers"`
	TaskQueue   int      `toml:"task_queue"`
	TaskTimeout Duration `toml:"task_timeout"`
	KVMaxMB     int      `toml:"kv_max_mb"`
	MaxTimers   int      `toml:"max_timers"`

	CrashLimit  int      `toml:"crash_limit"`
	CrashWindow Duration `toml:"crash_window"`
	// QuarantineCooldown: how long a quarantine lasts; 0: until a reload.
	QuarantineCooldown Duration `toml:"quarantine_cooldown"`
	RestartBackoff     Duration `toml:"restart_backoff"`
	RestartBackoffMax  Duration `toml:"restart_backoff_max"`

	LogLinesPerSecond int `toml:"log_lines_per_second"`
	LogBurst          int `toml:"log_burst"`
	LogBytesPerSecond int `toml:"log_bytes_per_second"`
}

// PushConfig is the [push] table: the inner TCP text port backends push
// through.
type PushConfig struct {
	// Listen is the text port's address; "" disables it.
	Listen string `toml:"listen"`
	// Secret, when set, must be presented first on every text-port
	// connection and as a Bearer token to the HTTP API.
	Secret       string   `toml:"secret"`
	MaxLine      int      `toml:"max_line"`
	LineTimeout  Duration `toml:"line_timeout"`
	WriteTimeout Duration `toml:"write_timeout"`
	// MaxBackends caps open text-port connections; more are refused with
	// a too_many_backends line and closed.
	MaxBackends int `toml:"max_backends"`
}

// AdminConfig is the [admin] table: the HTTP API listener.
type AdminConfig struct {
	// Listen is the HTTP API's address; "" disables it.
	Listen string `toml:"listen"`
}

// ModuleConfig is one [modules.NAME] table.
type ModuleConfig struct {
	// Config is passed to the module's on_start.
	Config string `toml:"config"`

	// Per-module limits: a key set here replaces the [runtime] key of the
	// same name for this module only (Limits). Each is a pointer to the
	// type of the [runtime] field with the same toml key.
	PoolSize     *int      `toml:"pool_size"`
	EventQueue   *int      `toml:"event_queue"`
	EventTimeout *Duration `toml:"event_timeout"`
	TaskWorkers  *int      `toml:"task_workers"`
	TaskQueue    *int      `toml:"task_queue"`
	TaskTimeout  *Duration `toml:"task_timeout"`
	KVMaxMB      *int      `toml:"kv_max_mb"`
	MaxTimers    *int      `toml:"max_timers"`
	CrashLimit   *int      `toml:"crash_limit"`
	CrashWindow  *Duration `toml:"crash_window"`
}

// Limits returns r with m's per-module keys applied. A per-module key is
// a pointer field of ModuleConfig whose toml key names a RuntimeConfig
// field of the same type: adding one is that field alone (the runtime
// mapping, validation and defaults of the [runtime] key apply to it).
func (m ModuleConfig) Limits(r RuntimeConfig) RuntimeConfig {
	mv, rv := reflect.ValueOf(m), reflect.ValueOf(&r).Elem()
	for i := range mv.NumField() {
		f := mv.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		rv.FieldByIndex(runtimeField(mv.Type().Field(i)).Index).Set(f.Elem())
	}
	return r
}

// runtimeField returns the RuntimeConfig field that the ModuleConfig
// field mf overrides: the one with the same toml key. It panics if there is
// none, or if the types differ: TestModuleKeysOverrideRuntimeKeys checks
// every field, so that is a programming error caught by the tests.
func runtimeField(mf reflect.StructField) reflect.StructField {
	rt := reflect.TypeFor[RuntimeConfig]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Tag.Get("toml") == mf.Tag.Get("toml") && f.Type == mf.Type.Elem() {
			return f
		}
	}
	panic("config: ModuleConfig." + mf.Name + " overrides no [runtime] key of its type")
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used for every key a file leaves
// out. config.toml documents the same values.
func Default() Config {
	return Config{
		Server: ServerConfig{
			Listen:         "0.0.0.0:8282",
			HandlersDir:    "handlers",
			MaxMessageSize: 64 << 10,
			SendQueueSize:  1024,
			SendQueueBytes: 4 << 20,
			WriteTimeout:   Duration{10 * time.Second},
			MaxConnections: 100_000,
			FDHeadroom:     512,
			PingInterval:   Duration{25 * time.Second},
			IdleTimeout:    Duration{60 * time.Second},
			WatchHandlers:  true,

			MaxSessionBytes: 64 << 10, MaxGroupsPerClient: 256, MaxNameBytes: 256,
		},
		Runtime: RuntimeConfig{
			PoolSize: 8, EventTimeout: Duration{100 * time.Millisecond}, MemoryLimit: 64, EventQueue: 1024, MaxCallDepth: 10_000,
			TaskWorkers: 2, TaskQueue: 256, TaskTimeout: Duration{10 * time.Second}, KVMaxMB: 16, MaxTimers: 1000,
			CrashLimit: 20, CrashWindow: Duration{time.Minute}, QuarantineCooldown: Duration{time.Minute},
			RestartBackoff: Duration{10 * time.Millisecond}, RestartBackoffMax: Duration{5 * time.Second},
			LogLinesPerSecond: 100, LogBurst: 200, LogBytesPerSecond: 64 << 10,
		},
		Push: PushConfig{
			Listen:       "127.0.0.1:5678",
			MaxLine:      1 << 20,
			LineTimeout:  Duration{10 * time.Second},
			WriteTimeout: Duration{10 * time.Second},
			MaxBackends:  1024,
		},
		Admin: AdminConfig{Listen: "127.0.0.1:8290"},
	}
}

// Load reads a TOML file over Default. Unknown keys and invalid
// values are errors that name the key. Relative directories are resolved
// against the file's folder.
func Load(path string) (Config, error) {
	cfg := Default()
	meta, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := meta.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.resolvePaths(filepath.Dir(path))
	return cfg, nil
}

func (c *Config) resolvePaths(base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.Server.HandlersDir = abs(c.Server.HandlersDir)
	c.Runtime.CacheDir = abs(c.Runtime.CacheDir)
}

var moduleName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Validate reports every invalid value, each prefixed with its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	s := c.Server
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		bad("server.listen", "%q is not host:port", s.Listen)
	}
	if s.HandlersDir == "" {
		bad("server.handlers_dir", "must not be empty")
	}
	if s.MaxMessageSize < 1 || s.MaxMessageSize > 64<<20 {
		bad("server.max_message_size", "%d is out of range 1..%d", s.MaxMessageSize, 64<<20)
	}
	if s.SendQueueSize < 1 {
		bad("server.send_queue_size", "%d must be at least 1", s.SendQueueSize)
	}
	if s.SendQueueBytes < 1 {
		bad("server.send_queue_bytes", "%d must be at least 1", s.SendQueueBytes)
	}
	if s.WriteTimeout.Duration <= 0 {
		bad("server.write_timeout", "%s must be positive", s.WriteTimeout)
	}
	if s.PingInterval.Duration < 0 {
		bad("server.ping_interval", "%s must not be negative", s.PingInterval)
	}
	if s.IdleTimeout.Duration < 0 || (s.IdleTimeout.Duration > 0 && s.PingInterval.Duration > 0 && s.IdleTimeout.Duration <= s.PingInterval.Duration) {
		bad("server.idle_timeout", "%s must be 0 (off) or longer than server.ping_interval (%s)", s.IdleTimeout, s.PingInterval)
	}
	if s.MaxConnections < 1 {
		bad("server.max_connections", "%d must be at least 1", s.MaxConnections)
	}
	for _, l := range []struct {
		key    string
		v, max int
	}{
		{"max_session_bytes", s.MaxSessionBytes, 64 << 20},
		{"max_groups_per_client", s.MaxGroupsPerClient, 1 << 20},
		{"max_name_bytes", s.MaxNameBytes, 64 << 10},
	} {
		if l.v < 2 || l.v > l.max {
			bad("server."+l.key, "%d is out of range 2..%d", l.v, l.max)
		}
	}
	if s.FDHeadroom < 16 || s.FDHeadroom > 1<<20 {
		bad("server.fd_headroom", "%d is out of range 16..%d (listeners, backends and module files need a few)", s.FDHeadroom, 1<<20)
	}
	c.validatePush(bad)
	before := len(errs)
	validateRuntime(c.Runtime, "runtime.", bad)
	runtimeOK := len(errs) == before // else every module would repeat the same errors
	for _, path := range SortedKeys(c.Routes) {
		if !strings.HasPrefix(path, "/") {
			bad("routes."+path, "path must start with /")
		}
		if !moduleName.MatchString(c.Routes[path]) {
			bad("routes."+path, "%q is not a module name", c.Routes[path])
		}
	}
	for _, name := range SortedKeys(c.Modules) {
		if !moduleName.MatchString(name) {
			bad("modules."+name, "not a valid module name")
		}
		lim := c.Modules[name].Limits(c.Runtime)
		if runtimeOK {
			validateRuntime(lim, "modules."+name+".", bad)
		}
		if c.Runtime.EventTimeout.Duration == 0 && lim.EventTimeout.Duration > 0 {
			bad("modules."+name+".event_timeout", "needs runtime.event_timeout to be set: with it at 0s no watchdog runs")
		}
	}
	return errors.Join(errs...)
}

// validateRuntime checks the [runtime] keys, or one module's effective
// limits; prefix is "runtime." or "modules.NAME.".
func validateRuntime(r RuntimeConfig, prefix string, bad func(key, format string, args ...any)) {
	between := func(key string, v, lo, hi int, why string) {
		if v < lo || v > hi {
			bad(prefix+key, "%d is out of range %d..%d%s", v, lo, hi, why)
		}
	}
	between("pool_size", r.PoolSize, 1, 1024, "")
	between("memory_limit_mb", r.MemoryLimit, 4, 4096, " (a Go guest needs about 3 MiB to start)")
	between("event_queue", r.EventQueue, 1, 1<<20, "")
	between("max_call_depth", r.MaxCallDepth, 100, 1_000_000, " (frames)")
	between("task_workers", r.TaskWorkers, 0, 1024, " (0 switches tasks off)")
	between("task_queue", r.TaskQueue, 1, 1<<20, "")
	between("kv_max_mb", r.KVMaxMB, 1, 4096, "")
	between("max_timers", r.MaxTimers, 1, 1<<20, "")
	between("crash_limit", r.CrashLimit, 0, 1<<20, " (0 never quarantines)")
	between("log_lines_per_second", r.LogLinesPerSecond, -1, 1<<20, " (-1: no limit)")
	between("log_burst", r.LogBurst, 0, 1<<20, " (0: twice log_lines_per_second)")
	between("log_bytes_per_second", r.LogBytesPerSecond, -1, 1<<30, " (-1: no limit)")
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"event_timeout", r.EventTimeout}, {"task_timeout", r.TaskTimeout},
		{"restart_backoff", r.RestartBackoff}, {"restart_backoff_max", r.RestartBackoffMax},
		{"quarantine_cooldown", r.QuarantineCooldown},
	} {
		if d.v.Duration < 0 {
			bad(prefix+d.key, "%s must not be negative", d.v)
		}
	}
	if r.CrashWindow.Duration <= 0 {
		bad(prefix+"crash_window", "%s must be positive", r.CrashWindow)
	}
	if r.RestartBackoffMax.Duration < r.RestartBackoff.Duration {
		bad(prefix+"restart_backoff_max", "%s is shorter than restart_backoff (%s)", r.RestartBackoffMax, r.RestartBackoff)
	}
}

// SortedKeys returns m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Config) validatePush(bad func(key, format string, args ...any)) {
	p := c.Push
	for _, kv := range [][2]string{{"push.listen", p.Listen}, {"admin.listen", c.Admin.Listen}} {
		key, addr := kv[0], kv[1]
		if addr == "" {
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			bad(key, "%q is not host:port", addr)
			continue
		}
		if p.Secret == "" && !isLoopback(host) {
			bad(key, "%q is not a loopback address, so push.secret must be set: anyone who reaches this port could push to every client", addr)
		}
	}
	if p.MaxLine < 64 || p.MaxLine > 64<<20 {
		bad("push.max_line", "%d is out of range 64..%d", p.MaxLine, 64<<20)
	}
	if p.LineTimeout.Duration <= 0 {
		bad("push.line_timeout", "%s must be positive", p.LineTimeout)
	}
	if p.WriteTimeout.Duration <= 0 {
		bad("push.write_timeout", "%s must be positive", p.WriteTimeout)
	}
	if p.MaxBackends < 1 || p.MaxBackends > 1_000_000 {
		bad("push.max_backends", "%d is out of range 1..1000000", p.MaxBackends)
	}
}

// isLoopback reports whether host (an IP or "localhost") only accepts
// connections from this machine. An empty host listens everywhere.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
