package server

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole of config.toml. Defaults come from DefaultConfig; a
// key missing from the file keeps its default.
type Config struct {
	Server  ServerConfig            `toml:"server"`
	Runtime RuntimeConfig           `toml:"runtime"`
	Routes  map[string]string       `toml:"routes"`
	Modules map[string]ModuleConfig `toml:"modules"`
}

// ServerConfig is the [server] table: the public WebSocket listener.
type ServerConfig struct {
	Listen         string   `toml:"listen"`
	HandlersDir    string   `toml:"handlers_dir"`
	MaxMessageSize int      `toml:"max_message_size"`
	SendQueueSize  int      `toml:"send_queue_size"`
	WriteTimeout   Duration `toml:"write_timeout"`
	MaxConnections int      `toml:"max_connections"`
	NodeID         uint32   `toml:"node_id"`
}

// RuntimeConfig is the [runtime] table: how handlers run.
type RuntimeConfig struct {
	PoolSize int    `toml:"pool_size"`
	CacheDir string `toml:"cache_dir"`
}

// ModuleConfig is one [modules.NAME] table.
type ModuleConfig struct {
	// Config is passed to the module's on_start.
	Config string `toml:"config"`
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

// DefaultConfig returns the configuration used for every key a file leaves
// out. config.toml documents the same values.
func DefaultConfig() Config {
	return Config{
		Server: ServerConfig{
			Listen:         "0.0.0.0:8282",
			HandlersDir:    "handlers",
			MaxMessageSize: 64 << 10,
			SendQueueSize:  1024,
			WriteTimeout:   Duration{10 * time.Second},
			MaxConnections: 100_000,
		},
		Runtime: RuntimeConfig{PoolSize: 8},
	}
}

// LoadConfig reads a TOML file over DefaultConfig. Unknown keys and invalid
// values are errors that name the key. Relative directories are resolved
// against the file's folder.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
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
	if s.WriteTimeout.Duration <= 0 {
		bad("server.write_timeout", "%s must be positive", s.WriteTimeout)
	}
	if s.MaxConnections < 1 {
		bad("server.max_connections", "%d must be at least 1", s.MaxConnections)
	}
	if c.Runtime.PoolSize < 1 || c.Runtime.PoolSize > 1024 {
		bad("runtime.pool_size", "%d is out of range 1..1024", c.Runtime.PoolSize)
	}
	for _, path := range sortedKeys(c.Routes) {
		if !strings.HasPrefix(path, "/") {
			bad("routes."+path, "path must start with /")
		}
		if !moduleName.MatchString(c.Routes[path]) {
			bad("routes."+path, "%q is not a module name", c.Routes[path])
		}
	}
	for _, name := range sortedKeys(c.Modules) {
		if !moduleName.MatchString(name) {
			bad("modules."+name, "not a valid module name")
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
