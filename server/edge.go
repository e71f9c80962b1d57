package server

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/config"
)

// The public edge's admission control (issue 11): connections per client
// address, handshakes per second per address (a token bucket), the number
// of accepted sockets not yet upgraded, and the deadline within which a
// socket must upgrade (slowloris).
//
// A socket's life here: edgeListener.Accept admits it (the global cap, and
// the per-IP connection count when the peer is not a trusted proxy: then
// the peer is the client) and files it as pending, with its deadline
// timer. handleHTTP admits the upgrade request (the token bucket, and the
// connection count of a client behind a trusted proxy, known only from the
// headers). The upgrade (upgraded) or the close (closed: fasthttp's
// StateClosed, or a failed upgrade) ends the pending state; an upgraded
// client keeps its per-IP count until its reader ends (releaseIP).
//
// Goroutines: none that lives. Accept runs on fasthttp's accept loop, the
// rest on request goroutines, hijack callbacks and readers, under e.mu. The
// deadline is a time.AfterFunc per pending socket (stopped at the upgrade),
// whose callback only closes the socket. A refusal written at accept is
// followed by a short lingering read on its own goroutine (at most
// lingerMax at once, each at most lingerFor), so that the client reads the
// response instead of a reset.
//
// Over a per-IP limit the answer is 429, over a global one 503, both with
// Retry-After. Each kind is counted (Status.HandshakesRefused) and logged
// at most once a second, with the number refused since the last line.

// refusal is a kind of refused or cut handshake.
type refusal int

const (
	refusedIPConns    refusal = iota // max_connections_per_ip: 429
	refusedIPRate                    // handshake_rate_per_ip: 429
	refusedInProgress                // max_handshakes_in_progress: 503
	refusedIPTable                   // max_tracked_ips, every address busy: 503
	refusedMaxConns                  // max_connections: 503
	refusedTimeout                   // handshake_timeout: closed
	refusalKinds
)

// what names the key behind a refusal, for the log.
func (r refusal) what() string {
	switch r {
	case refusedIPConns:
		return "over server.max_connections_per_ip"
	case refusedIPRate:
		return "over server.handshake_rate_per_ip"
	case refusedInProgress:
		return "over server.max_handshakes_in_progress"
	case refusedIPTable:
		return "server.max_tracked_ips full of addresses holding connections"
	case refusedMaxConns:
		return "over server.max_connections"
	default:
		return "no upgrade within server.handshake_timeout; closed"
	}
}

const (
	// retryAfterBusy is the Retry-After of a refusal no bucket can time:
	// a connection slot frees when some client leaves.
	retryAfterBusy = 5
	lingerMax      = 256
	lingerFor      = time.Second
	// sweepEvery is how often admission drops the entries of addresses
	// with no connection and a full bucket (they hold no information).
	sweepEvery = 10 * time.Second
)

// ipEntry is one client address's state: its connections and its token
// bucket (tokens as of at).
type ipEntry struct {
	conns  int
	tokens float64
	at     time.Time
}

// pendingConn is an accepted socket not yet upgraded.
type pendingConn struct {
	key   netip.Addr // the address its connection is counted under, if keyed
	keyed bool
	timer *time.Timer // the handshake deadline; nil if off
}

// edge holds the admission state of one server.
type edge struct {
	maxPerIP      int
	rate, burst   float64
	maxInProgress int64
	timeout       time.Duration
	maxIPs        int
	trusted       []netip.Prefix
	log           *slog.Logger
	// tracking: some limit needs the sockets filed from accept on; if not,
	// the listener is not wrapped and nothing is pending.
	tracking bool

	inProgress atomic.Int64
	lingering  atomic.Int32
	refused    [refusalKinds]atomic.Uint64
	logs       [refusalKinds]refusalLog

	mu        sync.Mutex
	ips       map[netip.Addr]*ipEntry
	pending   map[net.Conn]*pendingConn
	lastSweep time.Time
}

// newEdge returns the admission state for cfg.
func newEdge(cfg config.ServerConfig, trusted []netip.Prefix, log *slog.Logger) *edge {
	e := &edge{
		maxPerIP: cfg.MaxConnectionsPerIP, rate: float64(cfg.HandshakeRatePerIP), burst: float64(cfg.HandshakeBurstPerIP),
		maxInProgress: int64(cfg.MaxHandshakesInProgress), timeout: cfg.HandshakeTimeout.Duration, maxIPs: cfg.MaxTrackedIPs,
		trusted: trusted, log: log,
		ips: map[netip.Addr]*ipEntry{}, pending: map[net.Conn]*pendingConn{},
	}
	e.tracking = e.maxPerIP > 0 || e.maxInProgress > 0 || e.timeout > 0
	return e
}

// ipKey is the address per-IP limits count under: IPv4 as is, IPv6 by
// its /64 (one subscriber usually gets a whole /64; counting single
// addresses would let one client take 2^64 keys).
func ipKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (e *edge) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// edgeListener admits each accepted socket (edge.accept) before fasthttp
// sees it. It returns the socket itself, unwrapped: the transport's direct
// writes need the *net.TCPConn.
type edgeListener struct {
	net.Listener
	e *edge
}

// Accept returns the next admitted socket; refused ones are answered and
// closed here.
func (l edgeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.e.accept(c) {
			return c, nil
		}
	}
}

// accept admits a new socket or answers and closes it.
func (e *edge) accept(c net.Conn) bool {
	peer := peerAddr(c)
	if n := e.inProgress.Add(1); e.maxInProgress > 0 && n > e.maxInProgress {
		e.inProgress.Add(-1)
		e.refuseRaw(c, refusedInProgress, peer)
		return false
	}
	p := &pendingConn{}
	e.mu.Lock()
	if e.maxPerIP > 0 && peer.IsValid() && !e.isTrusted(peer) {
		key := ipKey(peer)
		ent := e.entryLocked(key, time.Now())
		kind := refusal(-1)
		switch {
		case ent == nil:
			kind = refusedIPTable
		case ent.conns >= e.maxPerIP:
			kind = refusedIPConns
		}
		if kind >= 0 {
			e.mu.Unlock()
			e.inProgress.Add(-1)
			e.refuseRaw(c, kind, peer)
			return false
		}
		ent.conns++
		p.key, p.keyed = key, true
	}
	e.pending[c] = p
	if e.timeout > 0 {
		p.timer = time.AfterFunc(e.timeout, func() { e.expire(c) })
	}
	e.mu.Unlock()
	return true
}

// admit is handleHTTP's check of an upgrade request on socket c from
// client: the token bucket, and the connection count when the peer is a
// trusted proxy (the client is known only now). It returns 0, or the
// status to refuse with and the Retry-After seconds.
func (e *edge) admit(c net.Conn, client netip.Addr) (status, retryAfter int) {
	if e.maxPerIP == 0 && e.rate == 0 {
		return 0, 0
	}
	key, now := ipKey(client), time.Now()
	e.mu.Lock()
	p := e.pending[c] // nil if the deadline closed it meanwhile
	countConn := e.maxPerIP > 0 && p != nil && !p.keyed
	var kind refusal = -1
	if countConn || e.rate > 0 {
		ent := e.entryLocked(key, now)
		switch {
		case ent == nil:
			kind = refusedIPTable
		case countConn && ent.conns >= e.maxPerIP:
			kind = refusedIPConns
		case e.rate > 0:
			ent.tokens = math.Min(e.burst, ent.tokens+e.rate*now.Sub(ent.at).Seconds())
			ent.at = now
			if ent.tokens < 1 {
				kind = refusedIPRate
				retryAfter = int(math.Ceil((1 - ent.tokens) / e.rate))
			} else {
				ent.tokens--
			}
		}
		if kind < 0 && countConn {
			ent.conns++
			p.key, p.keyed = key, true
		}
	}
	e.mu.Unlock()
	if kind < 0 {
		return 0, 0
	}
	e.count(kind, client)
	if kind == refusedIPTable {
		return fasthttp.StatusServiceUnavailable, retryAfterBusy
	}
	return fasthttp.StatusTooManyRequests, max(retryAfter, 1)
}

// entryLocked returns key's entry, created with a full bucket; nil when
// the table is full of addresses holding connections.
func (e *edge) entryLocked(key netip.Addr, now time.Time) *ipEntry {
	if now.Sub(e.lastSweep) >= sweepEvery {
		e.sweepLocked(now, false)
	}
	if ent := e.ips[key]; ent != nil {
		return ent
	}
	if len(e.ips) >= e.maxIPs {
		e.sweepLocked(now, true)
		if len(e.ips) >= e.maxIPs {
			return nil
		}
	}
	ent := &ipEntry{tokens: e.burst, at: now}
	e.ips[key] = ent
	return ent
}

// sweepLocked drops the entries that hold nothing: no connection and a
// full bucket. When the table is full (force) and that freed less than
// 1/16 of it, entries without a connection go too, bucket or not: under an
// attack from more addresses than the table holds, their rate limit
// restarts (max_handshakes_in_progress still bounds them all).
func (e *edge) sweepLocked(now time.Time, force bool) {
	e.lastSweep = now
	for k, ent := range e.ips {
		if ent.conns == 0 && e.refilled(ent, now) {
			delete(e.ips, k)
		}
	}
	if !force || len(e.ips) < e.maxIPs-e.maxIPs/16 {
		return
	}
	for k, ent := range e.ips {
		if ent.conns == 0 {
			delete(e.ips, k)
			if len(e.ips) < e.maxIPs-e.maxIPs/16 {
				return
			}
		}
	}
}

func (e *edge) refilled(ent *ipEntry, now time.Time) bool {
	return e.rate == 0 || ent.tokens+e.rate*now.Sub(ent.at).Seconds() >= e.burst
}

// upgraded ends c's pending state at its upgrade; the client keeps its
// per-IP count under the returned key (if keyed) until releaseIP.
func (e *edge) upgraded(c net.Conn) (key netip.Addr, keyed bool) {
	e.mu.Lock()
	p := e.pending[c]
	delete(e.pending, c)
	e.mu.Unlock()
	if p == nil {
		return netip.Addr{}, false
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	e.inProgress.Add(-1)
	return p.key, p.keyed
}

// closed ends c's pending state when it closes without an upgrade.
func (e *edge) closed(c net.Conn) {
	if key, keyed := e.upgraded(c); keyed {
		e.releaseIP(key)
	}
}

// releaseIP returns a connection counted under key.
func (e *edge) releaseIP(key netip.Addr) {
	e.mu.Lock()
	if ent := e.ips[key]; ent != nil {
		ent.conns--
		if ent.conns <= 0 && e.refilled(ent, time.Now()) {
			delete(e.ips, key)
		}
	}
	e.mu.Unlock()
}

// expire is c's handshake deadline: a socket still pending is closed
// (fasthttp's read fails, and StateClosed ends its pending state).
func (e *edge) expire(c net.Conn) {
	e.mu.Lock()
	_, pending := e.pending[c]
	e.mu.Unlock()
	if pending {
		e.count(refusedTimeout, peerAddr(c))
		_ = c.Close()
	}
}

// refuseRaw answers a socket refused at accept, before any request was
// read, and closes it.
func (e *edge) refuseRaw(c net.Conn, kind refusal, peer netip.Addr) {
	e.count(kind, peer)
	status := fasthttp.StatusTooManyRequests
	if kind == refusedInProgress || kind == refusedIPTable {
		status = fasthttp.StatusServiceUnavailable
	}
	body := kind.what()
	// The socket's buffer is empty: this small write does not block.
	_ = c.SetWriteDeadline(time.Now().Add(lingerFor))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nRetry-After: %d\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, fasthttp.StatusMessage(status), retryAfterBusy, len(body), body)
	if e.lingering.Add(1) > lingerMax {
		e.lingering.Add(-1)
		_ = c.Close()
		return
	}
	go e.linger(c)
}

// linger half-closes c and reads what the client sends for a moment, so
// that closing with its request unread does not reset the connection
// before the client has read the response.
func (e *edge) linger(c net.Conn) {
	defer e.lingering.Add(-1)
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerFor))
	_, _ = io.CopyN(io.Discard, c, 64<<10)
	_ = c.Close()
}

// refusalLog bounds one kind's log lines to one a second.
type refusalLog struct {
	mu     sync.Mutex
	last   time.Time
	logged uint64 // the kind's total at the last line
}

// count counts a refusal of kind and logs it, at most once a second per
// kind, with how many were refused since the previous line.
func (e *edge) count(kind refusal, addr netip.Addr) {
	total := e.refused[kind].Add(1)
	l := &e.logs[kind]
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.last) < time.Second {
		l.mu.Unlock()
		return
	}
	since := total - l.logged
	l.last, l.logged = now, total
	l.mu.Unlock()
	e.log.Warn("handshakes refused: "+kind.what(), "refused", since, "total", total, "last_addr", addr.String())
}

// refusedTotals returns the counters.
func (e *edge) refusedTotals() HandshakesRefused {
	return HandshakesRefused{
		IPConnections: e.refused[refusedIPConns].Load(), IPRate: e.refused[refusedIPRate].Load(),
		InProgress: e.refused[refusedInProgress].Load(), IPTableFull: e.refused[refusedIPTable].Load(),
		MaxConnections: e.refused[refusedMaxConns].Load(), Timeout: e.refused[refusedTimeout].Load(),
	}
}

// setRetryAfter sets a refusal's Retry-After and closes the connection
// after the response (after ctx.Error, which resets the headers).
func setRetryAfter(ctx *fasthttp.RequestCtx, seconds int) {
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(seconds))
	ctx.SetConnectionClose()
}
