package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/recording"
	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/server"
	"github.com/wasmgate/wasmgate/wasmgatetest"
)

// replayCmd runs `wasmgate replay [-c config.toml] MODULE.wasm EVENTS.jsonl`:
// the recorded events, in order, against the module in-process
// (wasmgatetest: the real runtime, an in-memory gateway), printing each
// event and what the handler sent during it, one line each, so that the
// output of two builds can be diffed. The config (optional when the
// default config.toml is absent) gives the limits and the module's config
// string.
func replayCmd(flags *flag.FlagSet, configPath string, stdout, stderr io.Writer) int {
	if flags.NArg() != 2 {
		fmt.Fprint(stderr, "wasmgate replay: want MODULE.wasm EVENTS.jsonl\n"+usage)
		return 2
	}
	modPath, eventsPath := flags.Arg(0), flags.Arg(1)
	cfg, err := server.LoadConfig(configPath)
	explicit := false
	flags.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "c" })
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		cfg, err = server.DefaultConfig(), nil
	}
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate:", err)
		return 1
	}
	f, err := os.Open(eventsPath)
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate replay:", err)
		return 1
	}
	events, err := recording.Read(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "wasmgate replay: %s: %v\n", eventsPath, err)
		return 1
	}
	name := strings.TrimSuffix(filepath.Base(modPath), ".wasm")
	h, err := wasmgatetest.New(context.Background(), modPath, wasmgatetest.Options{
		Name: name, Config: cfg.Modules[name].Config,
		MaxMessageSize: cfg.Server.MaxMessageSize, PoolSize: cfg.Runtime.PoolSize, TaskWorkers: cfg.Runtime.TaskWorkers,
		EventTimeout: cfg.Runtime.EventTimeout.Duration, CacheDir: cfg.Runtime.CacheDir,
		Limits: registry.Limits{MaxSessionBytes: cfg.Server.MaxSessionBytes, MaxGroupsPerClient: cfg.Server.MaxGroupsPerClient, MaxNameBytes: cfg.Server.MaxNameBytes},
	})
	if err != nil {
		fmt.Fprintln(stderr, "wasmgate replay:", err)
		return 1
	}
	defer h.Close()
	r := replayer{h: h, out: stdout, clients: map[string]*wasmgatetest.Client{}}
	for i := range events {
		r.play(&events[i])
	}
	return 0
}

// replayer plays events and prints them with what the handler did.
type replayer struct {
	h    *wasmgatetest.Handler
	out  io.Writer
	sent int // sends already printed
	// clients are the connected clients, to print the handler's closes.
	clients map[string]*wasmgatetest.Client
}

func (r *replayer) play(e *recording.Event) {
	ctx := context.Background()
	var err error
	switch e.Ev {
	case recording.Connect:
		var status int
		var c *wasmgatetest.Client
		c, status, err = r.h.TryConnect(wasmgatetest.Request{ClientID: e.Client, Method: e.Method, Path: e.Path, Query: e.Query, RemoteAddr: e.RemoteAddr, Headers: e.Headers})
		if status != 0 {
			fmt.Fprintf(r.out, "connect %s refused %d\n", e.Client, status)
		} else {
			fmt.Fprintf(r.out, "connect %s\n", e.Client)
			r.clients[e.Client] = c
		}
	case recording.Message:
		data, _ := e.Data() // Read has checked it
		kind := "text"
		if e.Binary {
			kind = "binary"
		}
		fmt.Fprintf(r.out, "message %s %s %s\n", e.Client, kind, strconv.Quote(string(data)))
		if c := r.h.Client(e.Client); c != nil {
			err = c.SendMessage(abi.Message{Data: data, Binary: e.Binary})
		} else {
			fmt.Fprintln(r.out, "  ! not connected")
		}
	case recording.Close:
		fmt.Fprintf(r.out, "close %s\n", e.Client)
		if c := r.h.Client(e.Client); c != nil {
			delete(r.clients, e.Client)
			err = c.Close()
		}
	case recording.Push:
		fmt.Fprintf(r.out, "push %s %s %s\n", e.Cmd, e.Client, strings.Join(quoteAll(e.Args), " "))
		err = r.push(ctx, e)
	}
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n") // no backtrace: diffable
		fmt.Fprintf(r.out, "  ! %s\n", first)
	}
	r.flush()
}

// push applies a backend's command to the in-memory gateway.
func (r *replayer) push(ctx context.Context, e *recording.Event) error {
	host := r.h.Host()
	switch e.Cmd {
	case "bindUid":
		return host.BindUid(ctx, e.Client, e.Args[0])
	case "unbindUid":
		return host.UnbindUid(ctx, e.Client, e.Args[0])
	case "joinGroup":
		return host.JoinGroup(ctx, e.Client, e.Args[0])
	case "leaveGroup":
		return host.LeaveGroup(ctx, e.Client, e.Args[0])
	case "ungroup":
		return host.Ungroup(ctx, e.Args[0])
	case "setSession":
		return host.SetSession(ctx, e.Client, []byte(e.Args[0]))
	case "updateSession":
		return host.UpdateSession(ctx, e.Client, []byte(e.Args[0]))
	case "closeClient", "destroyClient":
		if c := r.h.Client(e.Client); c != nil {
			delete(r.clients, e.Client)
			return c.Close()
		}
	}
	return nil
}

// flush prints the sends and closes since the last call.
func (r *replayer) flush() {
	sent := r.h.Sent()
	for _, s := range sent[r.sent:] {
		kind := "text"
		if s.Binary {
			kind = "binary"
		}
		fmt.Fprintf(r.out, "  -> %s %s %s\n", s.To, kind, strconv.Quote(string(s.Data)))
	}
	r.sent = len(sent)
	var closed []string
	for id, c := range r.clients {
		if gone, _ := c.Closed(); gone {
			closed = append(closed, id)
		}
	}
	slices.Sort(closed) // map order must not reach the output: it is diffed
	for _, id := range closed {
		_, code := r.clients[id].Closed()
		fmt.Fprintf(r.out, "  x %s closed %d\n", id, code)
		delete(r.clients, id)
	}
}

func quoteAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = strconv.Quote(s)
	}
	return out
}
