package transport

import (
	"bufio"
	"time"

	"github.com/fasthttp/websocket"
)

// An idle client's memory. A client that sends nothing for minutes is
// the common case of a gateway, and what it holds then is almost all of
// its memory: its reader goroutine's stack and its read buffer.
//
// The stack: a goroutine's stack grows as its deepest call needs and
// shrinks only at a GC, by half, and only while less than a quarter of it
// is in use. The reader calls the guest on every message, which grows its
// stack to 8 KiB; and a reader blocked in the websocket package's
// NextReader waits under a dozen frames (NextReader, advanceFrame, bufio,
// the frame guard, net, the poller), more than fits in 2 KiB.
//
// So between messages the reader waits for the socket itself, a few frames
// under ReadLoop (waitShallow): a non-blocking read(2) through the
// socket's syscall.RawConn, and the runtime's poller when there is
// nothing to read. Pings and pongs would wake NextReader, which handles
// them inside and then waits deep for the next data frame; so the whole
// control frames that arrive while waiting are handled here
// (stripControl) and the reader waits shallow again. Anything else, or a
// control frame split across reads, goes to the websocket package as
// before, through the frame guard (its pending bytes).
//
// A reader that has waited so since before the previous sweep (a client
// idle for one to two sweep periods) is woken by the sweep and parks its
// client in the Poller (poller_linux.go): the goroutine ends, its stack
// is freed, and the idle client costs no goroutine at all. The Poller's
// one goroutine reads what a parked client sends: pings and pongs are
// handled there and the client stays parked; anything else starts a
// reader goroutine again (a fresh one, 2 KiB), handed the bytes read. A
// busy client is never parked, so a message costs what it did: the
// goroutine switch of the runtime's poller, no epoll_ctl. Without a
// Poller (Options.Poller nil: an embedder's, or a test's) the kicked
// reader moves to a fresh goroutine instead, which frees the grown stack
// but keeps 2 KiB.
//
// The read buffer: while the reader waits shallow, or is parked, its
// bufio.Reader is empty, and its buffer goes back to a pool shared by the
// server's clients (lendReadBuffer); it is taken again when bytes arrive.
//
// TLS clients keep the plain path (a *tls.Conn has its own buffers and no
// raw socket), as do clients whose first bytes came with the handshake.

// readBufferSize is the websocket reader's buffer when the Upgrader names
// none: large enough for a whole control frame (125 bytes of payload),
// and for a burst of small messages in one read(2).
const readBufferSize = 1024

// waitShallow waits until the socket has bytes other than whole pings
// and pongs, which it handles, and leaves those bytes (or the read's
// error) to the frame guard for NextReader. It returns at once when it
// cannot wait shallow: no raw socket, bytes already buffered or pending
// (a reader started for a parked client), or the stream is inside a
// frame.
//
// It returns true when a sweep woke it (Hub.Sweep): the client is parked
// in the Poller, or has a fresh reader goroutine, and the caller returns.
func (c *Conn) waitShallow() (moved bool) {
	if c.rr == nil || !c.guard.atBoundary() {
		return false
	}
	if c.guard.pending != nil || c.guard.pendingErr != nil {
		if c.lent {
			c.takeReadBuffer()
		}
		return false
	}
	if !c.lent {
		if c.br.Buffered() > 0 {
			return false
		}
		c.lendReadBuffer()
	}
	since := c.opt.sweeps.Load() // pings and pongs handled here do not end the wait
	for {
		c.mu.Lock()
		c.parked, c.parkedSince = true, since
		c.mu.Unlock()
		chunk, rest, err := c.rr.read()
		if c.unpark() && err != nil { // the kick's deadline, not the client's
			if !c.park(true) {
				c.resume()
			}
			return true // the buffer stays lent
		}
		if err != nil {
			// The poller's error (a deadline, a closed socket) comes back
			// on NextReader's own read.
			c.takeReadBuffer()
			return false
		}
		if c.settle(chunk, rest) {
			c.takeReadBuffer()
			return false
		}
	}
}

// settle handles what one read of the raw reader brought: it answers
// the pings read, and hands the rest (bytes from the first frame other
// than a whole ping or pong, and read(2)'s error after them) to the frame
// guard for NextReader. It reports whether it handed anything over.
func (c *Conn) settle(chunk *[]byte, rest []byte) bool {
	for c.rr.wake {
		// Written here, out of the raw read's callback (the runtime
		// poller's loop): the write may fail and close the socket, and a
		// Close waits for that callback to end.
		// stripControl stops after each ping, so each gets its pong.
		c.rr.wake = false
		c.control(websocket.PongMessage, c.ping)
		if len(rest) > 0 {
			rest = c.stripControl(rest)
		}
	}
	if len(rest) == 0 {
		c.rr.put(chunk)
	} else {
		c.guard.pending, c.guard.pendingBuf = rest, chunk
	}
	if c.rr.err != nil {
		// read(2)'s error, or io.EOF, after the bytes read: handed over,
		// so that NextReader sees what its own read would have.
		c.guard.pendingErr = c.rr.err
	}
	return len(rest) > 0 || c.rr.err != nil
}

// park puts the client in the Poller; false if it cannot be parked (no
// Poller, or it is closed; the client is closing; its socket is closed).
// poke has the Poller look at the socket at once (an epoll_ctl): the
// reader parks after its last read saw nothing, and bytes that came since
// raised no event the Poller could act on, as they would have had no
// parked client to go to. The Poller's own re-park after a read that
// emptied the socket needs no poke: what comes next raises an event.
func (c *Conn) park(poke bool) bool {
	p := c.opt.Poller
	if p == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.expired || !p.arm(c, poke) {
		return false
	}
	c.polled = true
	return true
}

// pollRead is the Poller's handling of a parked client whose socket is
// ready (the Poller has taken it out of the parked state: it is the
// client's reader now). Pings and pongs are answered and counted and the
// client parked again; anything else goes to a new reader goroutine. hup:
// the event reported a close or an error (EPOLLRDHUP, EPOLLHUP, EPOLLERR).
func (c *Conn) pollRead(hup bool) {
	chunk, rest, err := c.rr.readNow(hup)
	if err == nil && !c.settle(chunk, rest) && c.park(c.rr.more) {
		return
	}
	// The client has work: it leaves the epoll set, whose events would
	// only wake the Poller for nothing while it has a reader. A poller
	// error (a closed socket, a deadline) comes back on the reader's own
	// read.
	c.opt.Poller.disarm(c)
	c.resume()
}

// resume starts a reader goroutine for a client that has none.
func (c *Conn) resume() { go c.ReadLoop(c.onMessage, c.onDone) }

// unpoll takes a parked client out of the Poller and starts its reader,
// which then sees what the caller did: a closed socket, a read deadline.
// It does nothing to a client that is not parked: its reader sees it.
func (c *Conn) unpoll() {
	c.mu.Lock()
	wake := c.polled
	c.polled = false
	c.mu.Unlock()
	if wake {
		c.resume()
	}
}

// stripControl handles the whole, well-formed pings and pongs at the front
// of b (a client's frames, at a frame boundary) and returns the bytes from
// the first frame it leaves to the websocket package. It takes only what
// the package would accept: final, no RSV bits, masked, at most 125 bytes;
// anything else is the package's (and the frame guard's) to refuse. It
// stops after a ping: its payload is kept in c.ping and c.rr.wake set, and
// waitShallow writes the pong (out of the poller's loop, where a failed
// write's Close would wait on the reader itself), then calls it again on
// what is left, so every ping gets its pong (RFC 6455 §5.5.2).
func (c *Conn) stripControl(b []byte) []byte {
	for len(b) >= 6 { // 2 header bytes and the 4-byte mask at least
		op := b[0]
		if op != 0x80|websocket.PingMessage && op != 0x80|websocket.PongMessage {
			return b
		}
		if b[1]&0x80 == 0 || b[1]&0x7f > 125 {
			return b
		}
		n := int(b[1] & 0x7f)
		if len(b) < 6+n {
			return b // split across reads: the package reads the rest
		}
		payload := b[6 : 6+n]
		for i := range payload {
			payload[i] ^= b[2+i%4]
		}
		b = b[6+n:]
		if op&0x0f == websocket.PingMessage {
			// Answered by waitShallow, which calls again for the rest.
			c.ping = append(c.ping[:0], payload...)
			c.rr.wake = true
			return b
		}
		c.touch() // the pong handler's work (WatchLiveness)
	}
	return b
}

// lendReadBuffer puts the empty read buffer in the server's pool while the
// reader waits; takeReadBuffer gets one back. The bufio.Reader the
// websocket package holds stays where it is; only its contents move, into
// and out of a holder that travels with the buffer.
func (c *Conn) lendReadBuffer() {
	h := c.spareBR
	if h == nil {
		h = new(bufio.Reader)
	}
	*h = *c.br
	h.Reset(nil) // the pooled buffer must not keep this client reachable
	*c.br = bufio.Reader{}
	c.spareBR = nil
	c.lent = true
	c.opt.readers.Put(h)
}

func (c *Conn) takeReadBuffer() {
	h, _ := c.opt.readers.Get().(*bufio.Reader)
	if h == nil || h.Size() != c.brSize {
		h = bufio.NewReaderSize(nil, c.brSize)
	}
	*c.br = *h
	c.br.Reset(c.guard)
	*h = bufio.Reader{}
	c.spareBR = h
	c.lent = false
}

// The sweep. A reader waiting shallow keeps the stack its last guest call
// grew (8 KiB), and a GC shrinks a stack to 2 KiB only if under 224 bytes
// of it are in use (the runtime counts its 800-byte no-split reserve as
// used), which no reader is. Even a fresh reader's 2 KiB is most of what
// an idle client costs. So a reader that has waited for a whole sweep
// period is woken by the sweep (its read deadline set in the past) and
// parks its client in the Poller (or, without one, hands it to a fresh
// goroutine); its stack is freed as it returns. A busy client is never
// kicked (it does not wait a whole period); a wait costs two lock
// round trips for the sweep's view of it.

// unpark ends a wait the sweep may have kicked; it reports whether the
// reader is to move to a fresh goroutine, having cleared the kick's read
// deadline. An expired client's deadline stays in the past: its reader
// ends.
func (c *Conn) unpark() (respawn bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parked = false
	if !c.kicked {
		return false
	}
	c.kicked = false
	if c.closing || c.expired { // a close in progress has its own deadline
		return false
	}
	_ = c.ws.SetReadDeadline(time.Time{})
	return true
}

// sweep is Hub.Sweep's visit of one client, at sweep number now: it ends
// the client if it has been silent for more than idle sweeps (0: no
// limit), or kicks its reader if the reader has waited since before the
// previous sweep.
func (c *Conn) sweep(now, idle uint64) (kicked, expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.expired {
		return false, false
	}
	if idle > 0 && now-c.lastSeen.Load() > idle {
		c.expired = true
		_ = c.ws.SetReadDeadline(time.Unix(1, 0))
		if c.polled { // it needs its reader back to end
			c.polled = false
			c.resume()
		}
		return false, true
	}
	if !c.parked || c.kicked || c.parkedSince+1 >= now {
		return false, false
	}
	c.kicked = true
	_ = c.ws.SetReadDeadline(time.Unix(1, 0))
	return true, false
}

// SweepResult is what one Hub.Sweep did.
type SweepResult struct {
	// Moved is how many readers were woken to park their clients in the
	// Poller (or move to a fresh goroutine), each freeing its stack.
	Moved int
	// Expired is how many clients were ended for silence (IdleTimeout).
	Expired int
}

// Sweep visits every client once: it ends those silent for
// opt.IdleTimeout, and wakes the readers that have waited since the sweep
// before this one, to park their clients in opt.Poller. The server calls it every opt.SweepEvery.
func (h *Hub) Sweep(opt *Options) SweepResult {
	now := opt.sweeps.Add(1)
	var idle uint64
	if opt.IdleTimeout > 0 && opt.SweepEvery > 0 {
		// Silent for more than this many whole sweeps: at least
		// IdleTimeout, at most one sweep period more.
		idle = uint64((opt.IdleTimeout + opt.SweepEvery - 1) / opt.SweepEvery)
	}
	var r SweepResult
	h.Each(func(c *Conn) {
		kicked, expired := c.sweep(now, idle)
		if kicked {
			r.Moved++
		}
		if expired {
			r.Expired++
		}
	})
	return r
}
