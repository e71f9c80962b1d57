// Package config is wasmgate's configuration: the types config.toml
// decodes into, their defaults, validation, and loading. The server
// re-exports the types (server.Config and the rest) for embedders.
//
// The struct types are the table of keys: each field's tags give its
// default, its range and, for [runtime], the runtime setting it maps to
// (keys.go lists the tags). To add a config key:
//
//  1. Add one field with its tags to its table, e.g.
//     `toml:"max_x" default:"8" min:"1" max:"1024"` (a [runtime] key also
//     gets runtime:"FieldName" of runtime.Config, or "-" plus a conversion
//     line in server.runtimeConfig when the units differ). A rule between
//     keys goes in Validate by hand.
//  2. Add its line, commented, with its default, to config.toml, and
//     regenerate docs/CONFIG.md (go test ./config -run TestConfigReference
//     -update): the reference is built from the tags and those comments.
//  3. If it is a limit, add its row to the limits table of docs/SANDBOX.md
//     (docs/PUSH.md for push-side keys).
//
// A [runtime] key a module may override also gets a pointer field of the
// same toml key and type in ModuleConfig (no tags: it takes the [runtime]
// key's), and its name in config.toml's per-module comment.
// A key that exists only per module (config, deflate) is a plain field of
// ModuleConfig tagged novalidate, described in that same comment.
// Tests fail when a step is missing: TestEveryKeyIsTagged,
// TestConfigReferenceIsCurrent,
// TestModuleKeysOverrideRuntimeKeys, server's TestRuntimeConfig_MapsEveryKey
// and TestLoadConfig_RepoConfigIsValidAndDocumented.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Config is the whole of config.toml. Defaults come from Default; a
// key missing from the file keeps its default.
type Config struct {
	Server  ServerConfig            `toml:"server"`
	Runtime RuntimeConfig           `toml:"runtime"`
	Push    PushConfig              `toml:"push"`
	Admin   AdminConfig             `toml:"admin"`
	Cluster ClusterConfig           `toml:"cluster"`
	Routes  map[string]string       `toml:"routes"`
	Modules map[string]ModuleConfig `toml:"modules"`
}

// ServerConfig is the [server] table: the public WebSocket listener.
type ServerConfig struct {
	// Listen is checked by hand (host:port).
	Listen string `toml:"listen" default:"0.0.0.0:8282" novalidate:""`
	// HandlersDir is checked by hand (not empty).
	HandlersDir    string   `toml:"handlers_dir" default:"handlers" novalidate:""`
	MaxMessageSize int      `toml:"max_message_size" default:"65536" min:"1" max:"67_108_864"`
	SendQueueSize  int      `toml:"send_queue_size" default:"1024" min:"1"`
	SendQueueBytes int      `toml:"send_queue_bytes" default:"4194304" min:"1"`
	WriteTimeout   Duration `toml:"write_timeout" default:"10s" min:"1ns"`
	MaxConnections int      `toml:"max_connections" default:"100000" min:"1"`
	PingInterval   Duration `toml:"ping_interval" default:"25s" min:"0s"`
	// IdleTimeout must also be longer than PingInterval (Validate).
	IdleTimeout   Duration `toml:"idle_timeout" default:"60s" min:"0s"`
	NodeID        uint32   `toml:"node_id" default:"0" min:"0" max:"4294967295"`
	WatchHandlers bool     `toml:"watch_handlers" default:"true" novalidate:""`

	// Per-client state bounds (the registry's limits).
	MaxSessionBytes    int `toml:"max_session_bytes" default:"65536" min:"2" max:"67_108_864"`
	MaxGroupsPerClient int `toml:"max_groups_per_client" default:"256" min:"2" max:"1_048_576"`
	MaxNameBytes       int `toml:"max_name_bytes" default:"256" min:"2" max:"65536"`
	// FDHeadroom is how many file descriptors WebSocket clients must leave
	// to everything else: max_connections is lowered to RLIMIT_NOFILE
	// minus this at start.
	FDHeadroom int `toml:"fd_headroom" default:"512" min:"16" max:"1_048_576" why:"(listeners, backends and module files need a few)"`
	// AllowedOrigins, when not empty, is the list of browser origins whose
	// WebSocket handshakes are accepted (OriginAllowed); empty allows all.
	AllowedOrigins []string `toml:"allowed_origins" default:"" novalidate:""`
	// TrustedProxies lists the proxies (CIDRs or addresses) whose
	// X-Forwarded-For / X-Real-IP give the client's address (ClientAddr).
	TrustedProxies []string `toml:"trusted_proxies" default:"" novalidate:""`
	// TLSCert and TLSKey, both set, make the listener serve wss:// with
	// this PEM certificate (chain) and key; both empty serve plain ws://.
	// One without the other is an error (Validate); the files are read at
	// start (server.New) and again on every reload.
	TLSCert string `toml:"tls_cert" default:"" novalidate:""`
	TLSKey  string `toml:"tls_key" default:"" novalidate:""`
	// TLSHandshakeTimeout bounds a client's TLS handshake: a peer that
	// opens TCP and never finishes it is closed after this long.
	TLSHandshakeTimeout Duration `toml:"tls_handshake_timeout" default:"10s" min:"1ms" max:"10m"`

	// The public edge's admission limits (server/edge.go). The per-IP ones
	// key on the client address (ClientAddr; IPv6 by /64).
	MaxConnectionsPerIP     int      `toml:"max_connections_per_ip" default:"1000" min:"0" max:"100_000_000" why:"(0: no limit)"`
	HandshakeRatePerIP      int      `toml:"handshake_rate_per_ip" default:"100" min:"0" max:"100_000_000" why:"(per second; 0: no limit)"`
	HandshakeBurstPerIP     int      `toml:"handshake_burst_per_ip" default:"500" min:"1" max:"100_000_000"`
	MaxHandshakesInProgress int      `toml:"max_handshakes_in_progress" default:"4096" min:"0" max:"100_000_000" why:"(0: no limit)"`
	HandshakeTimeout        Duration `toml:"handshake_timeout" default:"10s" min:"0s"`
	MaxTrackedIPs           int      `toml:"max_tracked_ips" default:"200000" min:"16" max:"100_000_000"`
	// PingData is checked by hand (valid UTF-8, at most 64 KiB).
	PingData string `toml:"ping_data" default:"" novalidate:""`

	// RecordRoute, when set (a route path such as "/chat"), records that
	// route's client events and the pushes to its clients into RecordFile
	// for `wasmgate replay`, message contents included; off by default.
	RecordRoute string `toml:"record_route" default:"" novalidate:""`
	RecordFile  string `toml:"record_file" default:"wasmgate-record.jsonl" novalidate:""`
	RecordMaxMB int    `toml:"record_max_mb" default:"64" min:"1" max:"65536"`
	// Operations (`wasmgate start` reads them; an embedder of package
	// server brings its own logger). LogFormat and LogLevel are checked by
	// hand (Validate).
	LogFormat string `toml:"log_format" default:"text" novalidate:""`
	LogLevel  string `toml:"log_level" default:"info" novalidate:""`
	// PIDFile, when set, is written with the process id at start and
	// removed at exit; `wasmgate status` and `stop` read it.
	PIDFile string `toml:"pid_file" default:"" novalidate:""`
}

// RuntimeConfig is the [runtime] table: how handlers run. Its runtime tags
// name the runtime.Config field each key sets as it is (server copies
// them); "-" marks a key the server converts by hand (units differ).
type RuntimeConfig struct {
	PoolSize     int      `toml:"pool_size" default:"8" min:"1" max:"1024" runtime:"PoolSize"`
	CacheDir     string   `toml:"cache_dir" default:"" novalidate:"" runtime:"CacheDir"`
	EventTimeout Duration `toml:"event_timeout" default:"100ms" min:"0s" runtime:"EventTimeout"`
	MemoryLimit  int      `toml:"memory_limit_mb" default:"64" min:"4" max:"4096" why:"(a Go guest needs about 3 MiB to start)" runtime:"-"`
	EventQueue   int      `toml:"event_queue" default:"1024" min:"1" max:"1_048_576" runtime:"EventQueue"`
	// MaxCallDepth bounds how deeply a guest's calls nest (runtime-wide:
	// it is compiled into every module).
	MaxCallDepth int `toml:"max_call_depth" default:"10000" min:"100" max:"1_000_000" why:"(frames)" runtime:"MaxCallDepth"`

	TaskWorkers int      `toml:"task_workers" default:"2" min:"0" max:"1024" why:"(0 switches tasks off)" runtime:"TaskWorkers"`
	TaskQueue   int      `toml:"task_queue" default:"256" min:"1" max:"1_048_576" runtime:"TaskQueue"`
	TaskTimeout Duration `toml:"task_timeout" default:"10s" min:"0s" runtime:"TaskTimeout"`
	KVMaxMB     int      `toml:"kv_max_mb" default:"16" min:"1" max:"4096" runtime:"-"`
	MaxTimers   int      `toml:"max_timers" default:"1000" min:"1" max:"1_048_576" runtime:"MaxTimers"`

	CrashLimit  int      `toml:"crash_limit" default:"20" min:"0" max:"1_048_576" why:"(0 never quarantines)" runtime:"CrashLimit"`
	CrashWindow Duration `toml:"crash_window" default:"1m" min:"1ns" runtime:"CrashWindow"`
	// QuarantineCooldown: how long a quarantine lasts; 0: until a reload.
	QuarantineCooldown Duration `toml:"quarantine_cooldown" default:"1m" min:"0s" runtime:"QuarantineCooldown"`
	RestartBackoff     Duration `toml:"restart_backoff" default:"10ms" min:"0s" runtime:"RestartBackoff"`
	// RestartBackoffMax must also be at least RestartBackoff (Validate).
	RestartBackoffMax Duration `toml:"restart_backoff_max" default:"5s" min:"0s" runtime:"RestartBackoffMax"`

	LogLinesPerSecond int `toml:"log_lines_per_second" default:"100" min:"-1" max:"1_048_576" why:"(-1: no limit)" runtime:"LogLinesPerSecond"`
	LogBurst          int `toml:"log_burst" default:"200" min:"0" max:"1_048_576" why:"(0: twice log_lines_per_second)" runtime:"LogBurst"`
	LogBytesPerSecond int `toml:"log_bytes_per_second" default:"65536" min:"-1" max:"1_073_741_824" why:"(-1: no limit)" runtime:"LogBytesPerSecond"`
}

// PushConfig is the [push] table: the inner TCP text port backends push
// through.
type PushConfig struct {
	// Listen is the text port's address; "" disables it. Checked by hand
	// (host:port, loopback unless Secret is set).
	Listen string `toml:"listen" default:"127.0.0.1:5678" novalidate:""`
	// Secret, when set, must be presented first on every text-port
	// connection and as a Bearer token to the HTTP API.
	Secret       string   `toml:"secret" default:"" novalidate:""`
	MaxLine      int      `toml:"max_line" default:"1048576" min:"64" max:"67_108_864"`
	LineTimeout  Duration `toml:"line_timeout" default:"10s" min:"1ns"`
	WriteTimeout Duration `toml:"write_timeout" default:"10s" min:"1ns"`
	// MaxBackends caps open text-port connections; more are refused with
	// a too_many_backends line and closed.
	MaxBackends int `toml:"max_backends" default:"1024" min:"1" max:"1_000_000"`
}

// AdminConfig is the [admin] table: the HTTP API listener.
type AdminConfig struct {
	// Listen is the HTTP API's address; "" disables it. Checked by hand
	// like push.listen.
	Listen string `toml:"listen" default:"127.0.0.1:8290" novalidate:""`
}

// ClusterConfig is the [cluster] table: nodes that share one Redis
// behave as one gateway (docs/CLUSTER.md). Without a redis URL the server
// is a single node and runs no cluster code.
type ClusterConfig struct {
	// Redis locates the shared Redis: redis://, rediss:// (TLS), unix://,
	// or redis://sentinel:26379/0?master_name=NAME for Sentinel; "" (the
	// default) runs a single node. Checked by hand (the URL parses).
	Redis string `toml:"redis" default:"" novalidate:""`
	// Prefix starts every Redis key and channel, so that several clusters
	// can share one Redis. Checked by hand (not empty).
	Prefix string `toml:"prefix" default:"wasmgate:" novalidate:""`
	// NodeTTL is how long a node's heartbeat lives: a node that died is
	// removed from presence by the others within it (plus one heartbeat).
	NodeTTL Duration `toml:"node_ttl" default:"10s" min:"1s" max:"1h"`
	// Heartbeat must be at most a third of NodeTTL (Validate).
	Heartbeat Duration `toml:"heartbeat" default:"1s" min:"50ms" max:"20m"`
	// Timeout bounds every Redis call and every call to another node.
	Timeout Duration `toml:"timeout" default:"1s" min:"10ms" max:"1m"`
}

// checkRedisURL accepts the URL forms go-redis parses: redis, rediss and
// unix schemes with a host (or a path for unix).
func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("%q has no host:port", u.Redacted())
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%q has no socket path", u.Redacted())
		}
	default:
		return fmt.Errorf("%q: the scheme must be redis://, rediss:// or unix://", u.Redacted())
	}
	return nil
}

// ModuleConfig is one [modules.NAME] table.
type ModuleConfig struct {
	// Config is passed to the module's on_start.
	Config string `toml:"config" novalidate:""`
	// Deflate offers permessage-deflate (RFC 7692, no context takeover) to
	// the module's clients: messages both ways may be compressed.
	Deflate bool `toml:"deflate" novalidate:""`

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
// field of the same type: adding one is that field (and its name in
// config.toml's per-module comment); the runtime mapping, validation and
// default of the [runtime] key apply to it.
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
// out: each key's default tag. config.toml documents the same values.
func Default() Config {
	var c Config
	for _, t := range tables(&c) {
		setDefaults(t.v)
	}
	return c
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
	c.Server.TLSCert = abs(c.Server.TLSCert)
	c.Server.TLSKey = abs(c.Server.TLSKey)
	c.Server.RecordFile = abs(c.Server.RecordFile)
}

var moduleName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Validate reports every invalid value, each prefixed with its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	for _, t := range tables(c) {
		if t.prefix != "runtime." { // below, with its cross-field rule
			checkRanges(t.v, t.prefix, bad)
		}
	}
	s := c.Server
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		bad("server.listen", "%q is not host:port", s.Listen)
	}
	if s.HandlersDir == "" {
		bad("server.handlers_dir", "must not be empty")
	}
	if s.IdleTimeout.Duration > 0 && s.PingInterval.Duration > 0 && s.IdleTimeout.Duration <= s.PingInterval.Duration {
		bad("server.idle_timeout", "%s must be 0 (off) or longer than server.ping_interval (%s)", s.IdleTimeout, s.PingInterval)
	}
	for i, o := range s.AllowedOrigins {
		if err := checkOriginPattern(o); err != nil {
			bad(fmt.Sprintf("server.allowed_origins[%d]", i), "%q: %v", o, err)
		}
	}
	if !utf8.ValidString(s.PingData) || len(s.PingData) > 65536 {
		bad("server.ping_data", "must be valid UTF-8 (it is sent as a text message) and at most 65536 bytes, got %d bytes", len(s.PingData))
	}
	if _, err := ParsePrefixes(s.TrustedProxies); err != nil {
		bad("server.trusted_proxies", "%v", err)
	}
	if formats := []string{"text", "json"}; !slices.Contains(formats, s.LogFormat) {
		bad("server.log_format", "%q is not one of %s", s.LogFormat, strings.Join(formats, ", "))
	}
	if levels := []string{"debug", "info", "warn", "error"}; !slices.Contains(levels, s.LogLevel) {
		bad("server.log_level", "%q is not one of %s", s.LogLevel, strings.Join(levels, ", "))
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		set, unset := "server.tls_cert", "server.tls_key"
		if s.TLSCert == "" {
			set, unset = unset, set
		}
		bad(unset, "must be set too: %s is set, and TLS needs both the certificate and its key (or neither, for plain ws://)", set)
	}
	if s.RecordRoute != "" && !strings.HasPrefix(s.RecordRoute, "/") {
		bad("server.record_route", "%q is not a route path (it starts with /, e.g. \"/chat\")", s.RecordRoute)
	}
	if s.RecordRoute != "" && s.RecordFile == "" {
		bad("server.record_file", "must not be empty when server.record_route is set")
	}
	c.validatePush(bad)
	if cl := c.Cluster; cl.Redis != "" {
		if err := checkRedisURL(cl.Redis); err != nil {
			bad("cluster.redis", "%v", err)
		}
		if cl.Prefix == "" {
			bad("cluster.prefix", "must not be empty in cluster mode")
		}
		if 3*cl.Heartbeat.Duration > cl.NodeTTL.Duration {
			bad("cluster.heartbeat", "%s must be at most a third of cluster.node_ttl (%s), so that one late heartbeat does not make a node look dead", cl.Heartbeat, cl.NodeTTL)
		}
	}
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
// limits (so a per-module key has the range of its [runtime] key); prefix
// is "runtime." or "modules.NAME.".
func validateRuntime(r RuntimeConfig, prefix string, bad func(key, format string, args ...any)) {
	checkRanges(reflect.ValueOf(r), prefix, bad)
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

// validatePush checks the push and admin listeners (their ranges are
// tagged).
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
