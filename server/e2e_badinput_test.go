package server_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

func TestServer_BadModulesRefusedGoodOnesServed(t *testing.T) {
	dir := handlersWith(t, "echo", "version2", "unknown_import", "no_on_message", "notwasm", "bad_signature")
	srv := startServer(t, dir, nil)
	want := map[string]string{
		"version2.wasm":       "declares ABI version 2",
		"unknown_import.wasm": "unknown host function wasmgate.send_to_moon",
		"no_on_message.wasm":  `required function "on_message"`,
		"notwasm.wasm":        "not a valid wasm module",
		"bad_signature.wasm":  "imports wasmgate.send_to_client with signature",
	}
	errs := srv.LoadErrors()
	if len(errs) != len(want) {
		t.Fatalf("load errors = %v, want %d", errs, len(want))
	}
	for _, err := range errs {
		matched := false
		for file, reason := range want {
			if strings.Contains(err.Error(), file) && strings.Contains(err.Error(), reason) {
				matched = true
			}
		}
		if !matched {
			t.Errorf("unexpected load error %q", err)
		}
	}
	if !strings.Contains(srv.logs.String(), "module refused") {
		t.Error("refused modules are not logged")
	}
	c := srv.dial(t, "/echo")
	c.sendText("still serving")
	if _, data := c.read(); string(data) != "still serving" {
		t.Fatalf("echo = %q", data)
	}
}

func TestServer_NoLoadableModuleIsAnError(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Server.HandlersDir = handlersWith(t, "notwasm")
	if _, err := server.New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "notwasm.wasm") {
		t.Fatalf("err = %v, want one naming notwasm.wasm", err)
	}
}

func TestServer_OversizeMessageCloses1009(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) { c.Server.MaxMessageSize = 1000 })
	ok := srv.dial(t, "/echo")
	c := srv.dial(t, "/echo")
	c.send(websocket.TextMessage, bytes.Repeat([]byte("a"), 1000)) // at the limit: fine
	if _, data := c.read(); len(data) != 1000 {
		t.Fatalf("echo of 1000 bytes: %d", len(data))
	}
	c.send(websocket.TextMessage, bytes.Repeat([]byte("a"), 1001))
	if code := c.expectClose(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
	ok.sendText("other clients unaffected")
	if _, data := ok.read(); string(data) != "other clients unaffected" {
		t.Fatalf("echo = %q", data)
	}
}

func TestServer_InvalidUTF8Closes1007(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	c := srv.dial(t, "/echo")
	c.send(websocket.TextMessage, []byte{'o', 'k', 0xff, 0xfe})
	if code := c.expectClose(); code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("close code %d, want 1007", code)
	}
	// The same bytes in a binary frame are fine.
	b := srv.dial(t, "/echo")
	b.send(websocket.BinaryMessage, []byte{0xff, 0xfe})
	if typ, data := b.read(); typ != websocket.BinaryMessage || !bytes.Equal(data, []byte{0xff, 0xfe}) {
		t.Fatalf("binary echo = %d %x", typ, data)
	}
}

func TestServer_TrappingModuleDoesNotDisturbOthers(t *testing.T) {
	// Under the crash limit (TestQuarantine_* covers crossing it), with a
	// short restart back-off so the last event need not wait seconds.
	srv := startServer(t, handlersWith(t, "echo", "trap"), func(c *server.Config) {
		c.Runtime.CrashLimit = 20
		c.Runtime.RestartBackoff.Duration = time.Millisecond
		c.Runtime.RestartBackoffMax.Duration = 20 * time.Millisecond
	})
	good := srv.dial(t, "/echo")
	bad := srv.dial(t, "/trap")
	for i := 0; i < 15; i++ {
		bad.sendText("trap!")
		good.sendText("ping")
		if _, data := good.read(); string(data) != "ping" {
			t.Fatalf("echo %d = %q", i, data)
		}
	}
	// The client whose on_message trapped is still connected and served.
	bad.sendText("fine")
	if _, data := bad.read(); string(data) != "fine" {
		t.Fatalf("trap module after traps = %q", data)
	}
	logs := srv.logs.String()
	if !strings.Contains(logs, "module=trap event=on_message") {
		t.Errorf("trap not logged with module and event:\n%s", logs)
	}
}

func TestServer_BadGuestPointerGetsErrno(t *testing.T) {
	srv := startServer(t, handlersWith(t, "badptr"), nil)
	c := srv.dial(t, "/badptr")
	c.sendText("x")
	typ, data := c.read()
	// Two little-endian i32 results: -1 (bad pointer) for the id far
	// outside memory, -4 (too large) for the 2 GiB message length.
	want := []byte{0xff, 0xff, 0xff, 0xff, 0xfc, 0xff, 0xff, 0xff}
	if typ != websocket.BinaryMessage || !bytes.Equal(data, want) {
		t.Fatalf("got %d %x, want binary %x", typ, data, want)
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	tests := []struct{ name, toml, want string }{
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", "unknown key server.lisen"},
		{"unknown table", "[sever]\nx = 1\n", "unknown key sever"},
		{"bad size", "[server]\nmax_message_size = -5\n", "server.max_message_size: -5 is out of range"},
		{"bad listen", "[server]\nlisten = \"nope\"\n", `server.listen: "nope" is not host:port`},
		{"bad duration", "[server]\nwrite_timeout = \"soon\"\n", "write_timeout"},
		{"bad type", "[server]\nsend_queue_size = \"big\"\n", "send_queue_size"},
		{"bad pool", "[runtime]\npool_size = 0\n", "runtime.pool_size: 0 is out of range"},
		{"bad route", "[routes]\n\"chat\" = \"chat\"\n", "routes.chat: path must start with /"},
		{"not toml", "[server\n", "config"},
		{"open text port without secret", "[push]\nlisten = \"0.0.0.0:5678\"\n", "push.listen: \"0.0.0.0:5678\" is not a loopback address, so push.secret must be set"},
		{"open admin without secret", "[admin]\nlisten = \":8290\"\n", "admin.listen"},
		{"tiny max line", "[push]\nmax_line = 3\n", "push.max_line"},
		{"tiny fd headroom", "[server]\nfd_headroom = 2\n", "server.fd_headroom: 2 is out of range 16.."},
		{"bad backoff", "[runtime]\nrestart_backoff = \"1s\"\nrestart_backoff_max = \"10ms\"\n", "runtime.restart_backoff_max: 10ms is shorter than restart_backoff (1s)"},
		{"bad crash window", "[runtime]\ncrash_window = \"0s\"\n", "runtime.crash_window: 0s must be positive"},
		{"bad module pool", "[modules.chat]\npool_size = 0\n", "modules.chat.pool_size: 0 is out of range"},
		{"bad module queue", "[modules.chat]\ntask_queue = -1\n", "modules.chat.task_queue: -1 is out of range"},
		{"module deadline without runtime one", "[runtime]\nevent_timeout = \"0s\"\n[modules.chat]\nevent_timeout = \"50ms\"\n", "modules.chat.event_timeout: needs runtime.event_timeout"},
		{"unknown module key", "[modules.chat]\nmemory_limit_mb = 8\n", "unknown key modules.chat.memory_limit_mb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := server.LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfig_RepoConfigIsValidAndDocumented(t *testing.T) {
	cfg, err := server.LoadConfig("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	def := server.DefaultConfig()
	// config.toml shows every key with its default (the default tags).
	sv := cfg.Server
	sv.HandlersDir, sv.RecordFile = def.Server.HandlersDir, def.Server.RecordFile // resolved against the file's folder
	// [] in the file, nil by default: the same.
	if len(sv.AllowedOrigins) == 0 {
		sv.AllowedOrigins = nil
	}
	if len(sv.TrustedProxies) == 0 {
		sv.TrustedProxies = nil
	}
	if !reflect.DeepEqual(sv, def.Server) || cfg.Push != def.Push || cfg.Admin != def.Admin {
		t.Errorf("config.toml disagrees with DefaultConfig:\n file %+v %+v %+v\n want %+v %+v %+v", sv, cfg.Push, cfg.Admin, def.Server, def.Push, def.Admin)
	}
	rt := cfg.Runtime
	rt.CacheDir = "" // the repo's config sets one on purpose
	if rt != def.Runtime {
		t.Errorf("config.toml [runtime] disagrees with DefaultConfig:\n file %+v\n want %+v", rt, def.Runtime)
	}
	text, _ := os.ReadFile("../config.toml")
	// Every key of the [server], [runtime], [push] and [admin] tables, read
	// off the Config type itself, so a new key cannot be left out here.
	for _, key := range configKeys(reflect.TypeOf(server.Config{})) {
		if !strings.Contains(string(text), "\n"+key+" = ") {
			t.Errorf("config.toml does not document %s", key)
		}
	}
	// The comment above [modules.…] lists the keys a module may override.
	_, modText, _ := strings.Cut(string(text), "# Per-module settings")
	modText, _, _ = strings.Cut(modText, "\n[")
	mt := reflect.TypeOf(server.ModuleConfig{})
	for i := range mt.NumField() {
		key := mt.Field(i).Tag.Get("toml")
		if mt.Field(i).Type.Kind() == reflect.Pointer && !regexp.MustCompile(`\s`+key+`[,.]`).MatchString(modText) {
			t.Errorf("config.toml's per-module comment does not list %s", key)
		}
	}
}

func FuzzLoadConfig(f *testing.F) {
	seed, _ := os.ReadFile("../config.toml")
	f.Add(string(seed))
	f.Add("[server]\nmax_message_size = 1\n[routes]\n\"/x\" = \"y\"\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := server.LoadConfig(path)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("LoadConfig accepted a config that fails Validate: %v", verr)
			}
		}
	})
}

func TestServer_SlowConsumerIsDropped(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.SendQueueSize = 4
		c.Server.WriteTimeout.Duration = 300 * time.Millisecond
	})
	other := srv.dial(t, "/echo")
	ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// Send echoes and never read them: the server's socket buffer, then the
	// 4-message queue, fill up, and the client must be dropped.
	chunk := bytes.Repeat([]byte("z"), 60_000)
	for i := 0; i < 2000; i++ {
		_ = ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if ws.WriteMessage(websocket.BinaryMessage, chunk) != nil {
			break
		}
	}
	eventually(t, "the slow client to be dropped", func() bool {
		n, _ := srv.Gateway().GetAllClientIdCount(t.Context())
		return n == 1
	})
	other.sendText("still fine")
	if _, data := other.read(); string(data) != "still fine" {
		t.Fatalf("other client got %q", data)
	}
}

func TestServer_SilentPeerDroppedLiveOneKept(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.PingInterval.Duration = 100 * time.Millisecond
		c.Server.IdleTimeout.Duration = 500 * time.Millisecond
	})
	live := srv.dial(t, "/echo") // its reader answers pings with pongs
	silent, _, err := websocket.DefaultDialer.Dial(srv.url+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close() // never read: no pongs, like a vanished peer
	eventually(t, "the silent client to be dropped", func() bool {
		n, _ := srv.Gateway().GetAllClientIdCount(t.Context())
		return n == 1
	})
	time.Sleep(600 * time.Millisecond) // longer than idle_timeout
	live.sendText("alive")
	if _, data := live.read(); string(data) != "alive" {
		t.Fatalf("live client got %q", data)
	}
}

// configKeys lists the toml keys of the scalar fields of the struct tables
// in t (a Config), recursing into nested tables but not maps.
func configKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case tag == "" || tag == "-":
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(server.Duration{}):
			keys = append(keys, configKeys(f.Type)...)
		case f.Type.Kind() == reflect.Map:
		default:
			keys = append(keys, tag)
		}
	}
	return keys
}
