package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/fsnotify/fsnotify"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/internal/accept"
	"github.com/wasmgate/wasmgate/internal/cluster"
	"github.com/wasmgate/wasmgate/internal/kv/rediskv"
	"github.com/wasmgate/wasmgate/internal/push"
	"github.com/wasmgate/wasmgate/internal/recording"
	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/internal/transport"
	"github.com/wasmgate/wasmgate/runtime"
)

// Handler receives one route's events. *runtime.Module implements it; tests
// and benchmarks may plug in native Go handlers.
type Handler interface {
	// OnHandshake returns 0 to accept the upgrade or an HTTP status to
	// refuse it.
	OnHandshake(ctx context.Context, h *abi.Handshake) (int, error)
	OnConnect(ctx context.Context, clientID string) error
	OnMessage(ctx context.Context, clientID string, msg abi.Message) error
	OnClose(ctx context.Context, clientID string) error
}

// Registry stores which clients are connected, their uids, groups and
// sessions (registry.Registry); WithRegistry replaces the in-process one.
type Registry = registry.Registry

// RegistryLimits bound what one client may store in the registry.
type RegistryLimits = registry.Limits

type route struct {
	path    string
	module  string
	handler Handler
	deflate bool // the module's permessage-deflate ([modules.NAME] deflate)
}

// Option changes how New builds a Server.
type Option func(*options)

type options struct {
	handlers map[string]Handler
	registry Registry
	listen   ListenFunc // nil: net.Listen (WithListen)
	restart  RestartFunc
	version  string        // WithVersion
	sweep    time.Duration // WithIdleSweep
}

// WithHandler serves path with h instead of (or besides) the handlers
// folder.
func WithHandler(path string, h Handler) Option {
	return func(o *options) {
		if o.handlers == nil {
			o.handlers = map[string]Handler{}
		}
		o.handlers[path] = h
	}
}

// WithRegistry replaces the in-process registry (for a cluster).
func WithRegistry(r Registry) Option {
	return func(o *options) { o.registry = r }
}

// Server is a wasmgate node: the WebSocket listener, its clients, the
// registry and the handler modules.
type Server struct {
	cfg      Config
	log      *slog.Logger
	ctx      context.Context // lives until Shutdown; events run under it
	cancel   context.CancelFunc
	reg      Registry
	hub      *transport.Hub
	gw       *Gateway
	gwNow    *Gateway // gw for callers with nothing else to do (see withWriteNow)
	ids      *idGenerator
	rt       *runtime.Runtime
	routes   atomic.Pointer[map[string]*route] // swapped whole by Reload
	natives  map[string]Handler                // WithHandler routes
	watcher  *fsnotify.Watcher                 // nil unless server.watch_handlers
	reloadMu sync.Mutex                        // guards slots; held only briefly
	slots    map[string]*moduleSlot            // by module name; written by Reload only
	// serialMu serialises Reload, which may take seconds (compiles); it
	// reads slots without reloadMu and takes reloadMu to change them.
	serialMu sync.Mutex
	loadErrs []error
	upgrader websocket.Upgrader
	trusted  []netip.Prefix // server.trusted_proxies
	edge     *edge          // per-IP limits, handshakes in progress, the handshake deadline
	http     *fasthttp.Server
	ln       net.Listener
	rawLn    net.Listener       // the TCP listener under ln, which a restart hands over
	listen   ListenFunc         // opens the listeners (WithListen)
	restart  RestartFunc        // POST /restart (WithRestart); nil: not served
	certs    *certStore         // server.tls_cert and tls_key; nil: plain ws://
	active   atomic.Int64       // upgraded connections not yet fully closed
	connOpt  *transport.Options // shared by every client's connection
	// handshaking counts upgrade requests in handleHTTP.
	handshaking atomic.Int64
	// originsRefused counts handshakes refused by server.allowed_origins;
	// handshakes, the other outcomes; reloads, Reload's results; traffic,
	// the clients' messages and bytes (counters.go).
	originsRefused atomic.Uint64
	handshakes     handshakeCounts
	reloads        reloadCounts
	traffic        *traffic
	closing        atomic.Bool // Shutdown has begun
	handingOff     atomic.Bool // Handoff has begun: clients are closed with 1012
	// rec records server.record_route's events (record.go); nil when off.
	rec       *recording.Writer
	stopPings chan struct{}
	stopSweep chan struct{} // the sweep's (liveness.go)
	served    chan struct{}
	push      *push.Ports     // the text port and the HTTP API
	cluster   *cluster.Node   // nil on a single node
	kvStores  *rediskv.Stores // the modules' KV stores in cluster mode

	// maxConns is server.max_connections lowered to fit RLIMIT_NOFILE
	// (connectionLimit).
	maxConns int
	mem      *memReturn    // returns memory after a large drop in clients
	history  reloadHistory // module loads and reloads, for /status
	ops      ops           // version, start time, stop request (ops.go)
}

// New builds a Server from cfg and loads every module in the handlers
// folder. A module that fails to load is logged and left out (LoadErrors
// lists them); New fails only if nothing could be served at all.
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{cfg: cfg, log: log, hub: transport.NewHub(), reg: o.registry, traffic: newTraffic()}
	s.ops = ops{version: o.version, started: time.Now(), stop: make(chan time.Duration, 1)}
	if err := s.limitConnections(openFileLimit()); err != nil {
		return nil, err
	}
	limits := registry.Limits{
		MaxSessionBytes:    cfg.Server.MaxSessionBytes,
		MaxGroupsPerClient: cfg.Server.MaxGroupsPerClient,
		MaxNameBytes:       cfg.Server.MaxNameBytes,
	}
	node := cfg.Server.NodeID
	local := s.reg
	if cfg.Cluster.Redis != "" {
		if s.reg != nil {
			return nil, errors.New("WithRegistry and [cluster] redis exclude each other")
		}
		cl := cfg.Cluster
		var err error
		s.cluster, err = cluster.Join(ctx, cluster.Options{
			URL: cl.Redis, Prefix: cl.Prefix, NodeID: cfg.Server.NodeID,
			NodeTTL: cl.NodeTTL.Duration, Heartbeat: cl.Heartbeat.Duration, Timeout: cl.Timeout.Duration,
			Limits: limits, Log: log,
		})
		if err != nil {
			return nil, err
		}
		node, s.reg, local = s.cluster.ID(), s.cluster.Registry(), s.cluster.Local()
		// The module key-value stores live in the same Redis, on the
		// node's connection pool.
		s.kvStores, err = rediskv.New(rediskv.Options{Client: s.cluster.Client(), Prefix: cl.Prefix, Timeout: cl.Timeout.Duration})
		if err != nil {
			s.leaveCluster()
			return nil, fmt.Errorf("cluster key-value store: %w", err)
		}
		log.Info("cluster: joined", "node", fmt.Sprintf("%08x", node), "redis", cluster.Redacted(cl.Redis))
	}
	if s.reg == nil {
		s.reg = registry.NewLocalWithLimits(limits)
		local = s.reg
	}
	s.ids = newIDGenerator(node)
	s.mem = newMemReturn(s.active.Load)
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.gw = &Gateway{reg: s.reg, local: local, hub: s.hub, maxMessageSize: cfg.Server.MaxMessageSize, cluster: s.cluster}
	s.gwNow = s.gw.withWriteNow()
	if err := s.openRecording(); err != nil {
		s.cancel()
		s.leaveCluster()
		return nil, err
	}
	s.push = push.New(s.ctx, cfg, log, s.pushGateway(s.gw), s.pushGateway(s.gwNow), pushNode{s})
	s.useListen(o.listen)
	s.restart = o.restart
	s.connOpt = &transport.Options{
		Messages: cfg.Server.SendQueueSize, Bytes: cfg.Server.SendQueueBytes,
		WriteTimeout: cfg.Server.WriteTimeout.Duration, IdleTimeout: cfg.Server.IdleTimeout.Duration,
		MaxMessageSize: cfg.Server.MaxMessageSize, Log: log,
		SweepEvery: sweepPeriod(o.sweep, cfg.Server.IdleTimeout.Duration),
	}
	s.trusted, _ = config.ParsePrefixes(cfg.Server.TrustedProxies) // Validate has checked them
	s.edge = newEdge(cfg.Server, s.trusted, log)
	s.upgrader = websocket.Upgrader{
		CheckOrigin:     func(*http.Request) bool { return true }, // origin policy is the handler's (on_handshake)
		ReadBufferSize:  1024,                                     // the websocket reader, lent to a pool while the client is idle
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
	}
	if cfg.Server.TLSCert != "" { // Validate has checked that both are set
		var err error
		if s.certs, err = newCertStore(cfg.Server.TLSCert, cfg.Server.TLSKey); err != nil {
			return nil, err
		}
		if leaf := s.certs.cur.Load().Leaf; time.Now().After(leaf.NotAfter) {
			log.Warn("server.tls_cert has expired: clients will refuse it", certAttrs(s.certs.cur.Load())...)
		}
	}
	s.natives, s.slots = o.handlers, map[string]*moduleSlot{}
	if err := s.newRuntime(ctx); err != nil {
		s.cancel()
		s.leaveCluster()
		return nil, err
	}
	if err := s.loadInitial(ctx); err != nil {
		s.cancel()
		if s.rt != nil {
			_ = s.rt.Close(context.Background())
		}
		s.leaveCluster()
		return nil, err
	}
	return s, nil
}

// limitConnections sets maxConns from server.max_connections and the
// open-file limit nofile, and says so when it had to lower it: the default
// 100,000 is above most limits, and without the clamp the 503 guard would
// never fire before accept fails for lack of descriptors.
func (s *Server) limitConnections(nofile uint64) error {
	limit, clamped, err := connectionLimit(s.cfg.Server.MaxConnections, nofile, s.cfg.Server.FDHeadroom)
	if err != nil {
		return fmt.Errorf("server.max_connections: %w", err)
	}
	s.maxConns = limit
	if clamped {
		s.log.Warn("server.max_connections lowered to fit the open-file limit; raise RLIMIT_NOFILE (ulimit -n, LimitNOFILE=) to serve more",
			"max_connections", s.cfg.Server.MaxConnections, "rlimit_nofile", nofile, "fd_headroom", s.cfg.Server.FDHeadroom, "effective", limit)
	}
	return nil
}

// MaxConnections returns how many WebSocket clients the server accepts:
// server.max_connections, or less if the open-file limit is lower.
func (s *Server) MaxConnections() int { return s.maxConns }

// Gateway returns the command implementation shared by handlers and push
// ports.
func (s *Server) Gateway() *Gateway { return s.gw }

// LoadErrors returns the modules that were refused at start, one error each.
func (s *Server) LoadErrors() []error { return s.loadErrs }

func (s *Server) newRuntime(ctx context.Context) error {
	var err error
	s.rt, err = runtime.New(ctx, s.runtimeConfig(s.cfg.Runtime), s.gw, s.log)
	return err
}

// runtimeConfig maps [runtime] (or one module's effective limits) to the
// runtime's Config: the keys tagged with a runtime field name are copied
// (runtimeKeys); the lines below are the conversions and the settings that
// come from elsewhere.
func (s *Server) runtimeConfig(rc RuntimeConfig) runtime.Config {
	c := runtimeKeys(rc)
	c.MemoryLimitPages = uint32(rc.MemoryLimit) * 16 // 16 pages per MiB
	c.KVMaxBytes = rc.KVMaxMB << 20
	c.MaxMessageSize = s.cfg.Server.MaxMessageSize
	c.OnQuarantine = s.quarantined
	if s.kvStores != nil {
		c.KVStore = s.kvStores.Open // cluster mode: one store per module in Redis
	}
	return c
}

// leaveCluster leaves the cluster, if in one, logging a failure: it runs
// on the way out, where nothing else can be done about it.
func (s *Server) leaveCluster() {
	if s.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cluster.Close(ctx); err != nil {
		s.log.Warn("cluster: leaving", "err", err)
	}
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	// Before anything that may fail half-started, and before the first
	// client: every reader reads connOpt.Poller.
	p, err := transport.NewPoller()
	if err != nil {
		return err
	}
	s.connOpt.Poller = p
	if s.cluster != nil {
		if err := s.cluster.Start(s.ctx, s.gw); err != nil {
			return err
		}
	}
	ln, err := s.listen("ws", s.cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Server.Listen, err)
	}
	s.rawLn = ln
	s.ln = accept.Retry(ln, "websocket", s.log)
	scheme := "ws"
	if s.certs != nil {
		s.ln = newTLSListener(s.ln, s.certs.tlsConfig(), s.cfg.Server.TLSHandshakeTimeout.Duration, s.log)
		scheme = "wss"
		s.log.Info("TLS on", append([]any{"cert", s.cfg.Server.TLSCert}, certAttrs(s.certs.cur.Load())...)...)
	}
	s.http = &fasthttp.Server{
		Handler:               s.handleHTTP,
		Name:                  "wasmgate",
		ReadTimeout:           10 * time.Second,
		IdleTimeout:           30 * time.Second,
		NoDefaultServerHeader: true,
		// We close upgraded connections ourselves; fasthttp would otherwise
		// keep its request buffers until the hijack handler returns, and
		// turn Close on the hijacked conn into a no-op.
		KeepHijackedConns: true,
		Logger:            fasthttpLogger{s.log},
	}
	s.http.CloseOnShutdown = true
	serveLn := s.ln
	if s.edge.tracking {
		serveLn = edgeListener{s.ln, s.edge}
		s.http.ConnState = func(c net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateClosed {
				s.edge.closed(c)
			}
		}
	}
	s.served = make(chan struct{})
	s.startPings()
	s.startSweep()
	go func() {
		defer close(s.served)
		if err := s.http.Serve(serveLn); err != nil {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "routes", s.Routes())
	for _, a := range webAssets() {
		if s.route(a.path) != nil {
			s.log.Warn("route shadowed by the browser client served at the same path; rename the module or map another path in [routes]", "path", a.path)
		}
	}
	if err := s.startWatcher(); err != nil {
		return fmt.Errorf("watch %s: %w", s.cfg.Server.HandlersDir, err)
	}
	return s.push.Start()
}

// TextAddr returns the text port's address (nil if disabled).
func (s *Server) TextAddr() net.Addr { return s.push.TextAddr() }

// AdminAddr returns the HTTP API's address (nil if disabled).
func (s *Server) AdminAddr() net.Addr { return s.push.AdminAddr() }

// Addr returns the address the server listens on (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting, closes every client with 1001 (going away),
// waits for their close events until ctx ends, then releases the runtime.
// When ctx ends, guest calls still running (a looping on_task, a slow
// on_close) are stopped, so Shutdown returns soon after ctx ends whatever
// the guests do: within about two seconds more for the readers to deliver
// on_close, one more for the runtime to close. A second call returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closing.Swap(true) {
		return nil
	}
	return s.shutdown(ctx, websocket.CloseGoingAway, "server shutting down")
}

// shutdown is Shutdown once closing is set: clients are closed with code
// and reason.
func (s *Server) shutdown(ctx context.Context, code int, reason string) error {
	// s.ctx is the context of every client event: ending it makes the
	// runtime's watchdog stop the calls under way (runtime/watchdog.go).
	stopCalls := context.AfterFunc(ctx, s.cancel)
	defer stopCalls()
	if s.watcher != nil {
		_ = s.watcher.Close()
	}
	if s.stopSweep != nil {
		close(s.stopSweep)
	}
	if s.stopPings != nil {
		close(s.stopPings)
	}
	s.push.Close(ctx)
	if s.http != nil {
		// Waits for requests under way (handshakes); upgraded connections
		// are ours to close, below.
		_ = s.http.ShutdownWithContext(ctx)
		<-s.served
	}
	// Acknowledged sends to many go ahead of the close frames.
	s.hub.WaitLanes(ctx)
	s.hub.Each(func(c *transport.Conn) { _ = c.Close(nil, code, reason) })
	err := s.waitIdle(ctx)
	// Every client has ended (or was dropped): any still parked gets its
	// reader back, to end on its closed socket.
	s.connOpt.Poller.Close()
	s.cancel()
	// After the clients' close events: they remove the clients from
	// Redis; leaving then drops whatever is left and the heartbeat.
	s.leaveCluster()
	if s.rt != nil {
		// Closing stops timers and tasks, whose running calls then stop
		// within a watchdog tick; the grace covers that even when ctx has
		// ended, and bounds the wait when nothing can stop them
		// (event_timeout = "0s").
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if cerr := s.rt.Close(rctx); err == nil {
			err = cerr
		}
	}
	if s.rec != nil {
		if cerr := s.rec.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (s *Server) waitIdle(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.active.Load() > 0 {
		select {
		case <-ctx.Done():
			s.hub.Each((*transport.Conn).Drop)
			s.awaitReaders(2 * time.Second) // let them deliver on_close
			return fmt.Errorf("shutdown: %d clients had to be dropped: %w", s.active.Load(), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// awaitReaders waits up to d for every reader to finish.
func (s *Server) awaitReaders(d time.Duration) {
	deadline := time.Now().Add(d)
	for s.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// fasthttpLogger routes fasthttp's own messages to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}
