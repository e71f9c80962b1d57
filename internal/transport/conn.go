// Package transport is one WebSocket client's socket: the upgrade, the
// frames the server reads (frameGuard) and writes (frame.go), the send
// queue and its writer, liveness, and the hub that maps a client id to its
// connection and fans messages out to many. It knows nothing of handlers,
// the registry or the push ports: the server composes them.
package transport

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// Conn is one WebSocket client: the transport of one socket.
//
// Reading goes through the websocket package; writing does not. Every frame
// the server sends (data, ping, pong, close) is framed here
// (conn_frame.go) and written to the socket under wmu, so that a frame is
// never interleaved with another, nothing follows a close frame, and the
// write deadline is armed only when a write may block (the websocket
// package re-arms it on every frame, a timer update that cost 16% of push
// CPU).
//
// Who writes: at most one writer at a time holds the writer role (writing,
// counted in the writer WaitGroup), and only the writer role writes data,
// pings and pongs. The caller picks the strategy by the method it calls:
//
//   - enqueue always queues the message for a writer goroutine, which
//     exists only while there is a backlog, writes each batch with as few
//     write(2) calls as it can, and blocks (under server.write_timeout) on a
//     slow peer. A caller with more work waiting uses it: the writes then
//     run in parallel with it.
//   - sendNow, for a caller with nothing else to do, takes the writer role
//     itself when the client is idle (no writer, empty queue) and writes
//     the frame from its own goroutine without blocking: one non-blocking
//     write(2) (conn_linux.go; elsewhere sendNow is enqueue). What the socket
//     does not take goes to a writer goroutine, which inherits the role.
//
// An idle client therefore costs one goroutine (its reader), and an
// unloaded push costs no goroutine switch. The one write outside the
// writer role is the reader's answer to the peer's close frame
// (closeReply), which takes wmu directly: the peer has stopped reading, so
// the queue is dropped and the close goes out after the frame under way.
//
// The queue is bounded in messages (server.send_queue_size) and in payload
// bytes (server.send_queue_bytes, counting the batch being written): over
// either bound the client is closed as a slow consumer (1008), its queue
// dropped, and the send reports abi.ErrnoQueueFull.
type Conn struct {
	id     string
	module string // the module behind the client's route
	opt    *Options

	ws  *websocket.Conn
	nc  net.Conn   // the socket, as the websocket package has it (Close)
	tc  net.Conn   // the socket underneath fasthttp's wrapper (writes, deadlines); a *tls.Conn over TLS
	raw *rawWriter // non-blocking writes on tc; nil: always use a writer goroutine
	// kill is what Abort and Drop close: nc, or under TLS the TCP socket
	// itself, since closing a *tls.Conn first writes a close_notify alert,
	// which may block for seconds on a peer that does not read.
	kill net.Conn
	// lastSeen is the sweep number (Options' sweeps) when the client last
	// sent a message or a pong: the sweep ends a client silent for
	// IdleTimeout (idle.go). The reader stores it, the sweep loads it.
	lastSeen atomic.Uint64
	// The idle reader's shallow wait (idle.go); only the reader touches
	// them. rr is nil where it cannot wait shallow (TLS, other systems).
	guard   *frameGuard
	br      *bufio.Reader // the websocket package's reader
	brSize  int
	spareBR *bufio.Reader // an empty holder for br's buffer, while not lent
	rr      *rawReader
	lent    bool // br's buffer is lent (the reader waits, or is parked)
	// What a reader goroutine started for a parked client runs (Poller):
	// ReadLoop's arguments, kept by the first ReadLoop.
	onMessage func(abi.Message)
	onDone    func()

	// What `wasmgate connections` lists (Info): set once before the reader
	// starts, then read only.
	remote      string // the client's address, as handlers see it
	connectedAt int64  // Unix nanoseconds
	// Traffic counters (payload bytes, data messages). in is added to by
	// the reader only, out by the holder of the writer role only (once per
	// direct write or per batch), so the adds never contend; they are
	// atomic only so that Info may read them from another goroutine.
	msgsIn, bytesIn, msgsOut, bytesOut atomic.Uint64

	// writer counts the active writer (0 or 1): a sender writing directly
	// or the writer goroutine. The reader waits for it before returning the
	// socket to fasthttp, which recycles it.
	writer sync.WaitGroup

	// deflate: the client negotiated permessage-deflate; data messages are
	// compressed as they are framed (deflate.go). Set before any send.
	deflate bool

	mu          sync.Mutex // guards the fields below up to wmu
	queue       []outMsg
	spare       []outMsg // the writer's last batch, reused as the next queue
	queuedBytes int      // payload bytes in queue
	flightBytes int      // payload bytes of the batch the writer is writing
	writing     bool     // the writer role is held (and counted in writer)
	closing     bool     // no more sends are accepted
	closeMsg    []byte   // close frame payload the writer sends after the queue, if closing
	pingDue     bool     // a ping waits for the writer
	pongDue     bool     // a pong waits for the writer, with payload pong (the latest ping's)
	pong        []byte
	// ping is the payload of the last ping the shallow wait read, whose
	// pong it owes (idle.go); only the reader touches it.
	ping []byte
	// The sweep's view of the reader (idle.go): waiting shallow since
	// sweep number parkedSince; kicked awake.
	parked, kicked bool
	parkedSince    uint64
	expired        bool // silent for IdleTimeout: its read deadline is in the past
	// The client's place in the Poller: polled, parked there with no
	// reader goroutine; pin, its socket is in the epoll set; pslot and
	// pgen, its slot (-1: none) and the slot's generation.
	polled, pin bool
	pslot       int32
	pgen        uint32

	wmu sync.Mutex // owns the socket for writing; guards the fields below
	// partial is the unwritten end of a frame a direct write began; the
	// next write sends it first. partialBuf is its pooled buffer.
	partial    []byte
	partialBuf *[]byte
	closeSent  bool      // a close frame has been written; nothing may follow it
	deadlineAt time.Time // when the write deadline was last armed (zero: none armed)

	// libraryClosed: the websocket package failed the connection and wrote
	// its close frame (libraryWrite); the reader lingers after it.
	libraryClosed atomic.Bool
}

// outMsg is a queued message. z, for a message sent to many clients, is
// its compressed form shared by their writers; nil: a deflate client's
// writer compresses the message itself.
type outMsg struct {
	abi.Message
	z *Deflated
}

// Options are what every connection of a server shares: its bounds, its
// log and its read buffers. A client over messages queued or bytes queued
// (payloads, including the batch being written) is closed as a slow
// consumer; a write that blocks for WriteTimeout drops it. Build one per
// server and do not copy it.
type Options struct {
	Messages     int // server.send_queue_size
	Bytes        int // server.send_queue_bytes
	WriteTimeout time.Duration
	// IdleTimeout ends a client that sent nothing, not even a pong, for
	// this long (server.idle_timeout); 0 is no limit.
	IdleTimeout time.Duration
	// MaxMessageSize is the largest message read (server.max_message_size),
	// used in the log line of a client that sent a larger one.
	MaxMessageSize int
	Log            *slog.Logger

	// SlowConsumers counts the clients closed for going over a queue bound
	// and DroppedMessages the messages dropped with them (their queue and
	// the send refused), for /metrics. Added to only on an overflow, never
	// per message.
	SlowConsumers, DroppedMessages atomic.Uint64

	buffers sync.Pool     // *bytes.Buffer for reading messages
	readers sync.Pool     // *bufio.Reader: idle clients' read buffers (idle.go)
	chunks  sync.Pool     // *[]byte: what an idle reader's shallow wait reads
	sweeps  atomic.Uint64 // Hub.Sweep calls so far

	// SweepEvery is how often the server runs Hub.Sweep: the idle
	// timeout is counted in sweeps.
	SweepEvery time.Duration
	// Poller is where the sweep parks idle clients with no goroutine
	// (idle.go); nil: their readers move to fresh goroutines instead.
	Poller *Poller
}

// slowConsumer is the close reason of a client over its queue bounds.
const slowConsumer = "slow consumer: send queue full"

// NewConn takes over ws, the upgraded connection of client id, served by
// module. The caller then runs ReadLoop (after WatchLiveness) on one
// goroutine, and Finish when it returns.
func NewConn(id, module string, ws *websocket.Conn, opt *Options) *Conn {
	c := &Conn{id: id, module: module, ws: ws, nc: ws.NetConn(), opt: opt, pslot: -1}
	c.lastSeen.Store(opt.sweeps.Load())
	c.tc = c.nc
	if u, ok := c.nc.(interface{ UnsafeConn() net.Conn }); ok { // fasthttp's hijacked conn
		c.tc = u.UnsafeConn()
	}
	// A *tls.Conn is not a syscall.Conn, so TLS clients get no raw writer:
	// their frames must go through tls.Conn.Write to be encrypted.
	c.raw = newRawWriter(c.tc)
	c.kill = c.nc
	if tc, ok := c.tc.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c.kill = tc.NetConn()
	}
	if g, ok := c.nc.(*frameGuard); ok {
		g.write = c.libraryWrite
		if g.br != nil {
			g.chunks = &opt.chunks
			c.guard, c.br, c.brSize = g, g.br, g.br.Size()
			// Only a guard straight on the socket: a prefixConn has bytes
			// to serve first, and a *tls.Conn decrypts.
			c.rr = newRawReader(g.Conn, c, &opt.chunks)
		}
	}
	// Control frames go through the writer too (the websocket package's
	// handlers would write them around it).
	ws.SetPingHandler(func(data string) error {
		c.control(websocket.PongMessage, []byte(data))
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		var msg []byte
		if code != websocket.CloseNoStatusReceived {
			msg = websocket.FormatCloseMessage(code, "")
		}
		c.closeReply(msg)
		return nil
	})
	return c
}

// EnableDeflate makes the client's data messages go out compressed
// (permessage-deflate was negotiated: Upgrade with deflate). Call it
// before the client is registered: it must precede every send.
func (c *Conn) EnableDeflate() { c.deflate = true }

// enqueue queues msg for the client's writer goroutine. It never blocks:
// over a queue bound it closes the client as a slow consumer and reports
// abi.ErrnoQueueFull; a closing client reports abi.ErrnoNotFound. borrowed
// means msg.Data belongs to the caller: it is copied.
func (c *Conn) enqueue(msg abi.Message, borrowed bool) error {
	return c.enqueueShared(msg, nil, borrowed)
}

// enqueueShared is enqueue of a message sent to many clients, with z its
// shared compressed form.
func (c *Conn) enqueueShared(msg abi.Message, z *Deflated, borrowed bool) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return abi.ErrnoNotFound
	}
	return c.enqueueLocked(outMsg{msg, z}, borrowed)
}

// sendNow is enqueue for a caller with nothing else to do: when the client
// is idle the caller writes msg itself, at once and without blocking, and
// borrowed data is not copied (the write is done when sendNow returns; a
// frame the socket takes only in part is kept in a buffer of the conn).
func (c *Conn) sendNow(msg abi.Message, borrowed bool) error {
	return c.sendNowShared(msg, nil, borrowed)
}

// sendNowShared is sendNow of a message with its shared compressed form z
// (one of many recipients; nil: compressed here if need be).
func (c *Conn) sendNowShared(msg abi.Message, z *Deflated, borrowed bool) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return abi.ErrnoNotFound
	}
	if c.writing || c.raw == nil {
		return c.enqueueLocked(outMsg{msg, z}, borrowed)
	}
	c.writing = true
	c.writer.Add(1)
	c.mu.Unlock()
	c.msgsOut.Add(1) // before writeNow gives up the writer role
	c.bytesOut.Add(uint64(len(msg.Data)))
	c.writeNow(frameOp(msg), msg.Data, z)
	return nil
}

// enqueueLocked is enqueue with c.mu held; it unlocks it.
func (c *Conn) enqueueLocked(msg outMsg, borrowed bool) error {
	if len(c.queue) >= c.opt.Messages || c.overBytesLocked(len(msg.Data)) {
		c.overflowLocked()
		c.mu.Unlock()
		return abi.ErrnoQueueFull
	}
	if borrowed {
		msg.Data = bytes.Clone(msg.Data)
	}
	c.queue = append(c.queue, msg)
	c.queuedBytes += len(msg.Data)
	c.startWriterLocked()
	c.mu.Unlock()
	return nil
}

// enqueueHeld is enqueueShared for a fan-out lane working through a
// backlog of several jobs (Hub.runLane): the message is queued but, if the
// client is idle, its writer is not started yet. The lane starts it after
// the round (startHeld), so the client's messages of the whole round leave
// in one batch, one write(2), instead of one write(2) each as its writer
// would if it started at the first. held reports that the caller must call
// startHeld (the client was idle and this is the first message it holds).
// Only half the queue's bounds may be held back: past that the writer
// starts at once, as enqueue starts it, so holding never makes a client a
// slow consumer.
func (c *Conn) enqueueHeld(msg abi.Message, z *Deflated) (held bool, err error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false, abi.ErrnoNotFound
	}
	if c.writing || 2*(len(c.queue)+1) > c.opt.Messages || 2*(c.queuedBytes+c.flightBytes+len(msg.Data)) > c.opt.Bytes {
		return false, c.enqueueLocked(outMsg{msg, z}, false)
	}
	// Not writing and the queue not empty means this lane is holding it
	// already (only the client's lane holds, and it starts what it held
	// before its next round): the client is in the lane's list.
	held = len(c.queue) == 0
	c.queue = append(c.queue, outMsg{msg, z})
	c.queuedBytes += len(msg.Data)
	c.mu.Unlock()
	return held, nil
}

// startHeld starts the writer of a client whose messages a lane held back
// (enqueueHeld), unless something else started it meanwhile (a close) or
// dropped the queue.
func (c *Conn) startHeld() {
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.startWriterLocked()
	}
	c.mu.Unlock()
}

// overBytesLocked reports whether n more payload bytes would take the
// client over send_queue_bytes. A client holding nothing takes any
// message (up to max_message_size, which may be larger).
func (c *Conn) overBytesLocked(n int) bool {
	held := c.queuedBytes + c.flightBytes
	return held > 0 && held+n > c.opt.Bytes
}

// overflowLocked closes a slow consumer. Its queued messages are dropped:
// the client is going away, and what it held is what the bounds limit; the
// close frame (1008) then follows the batch being written, so a client
// that reads again gets it at once, not after the whole backlog. (A peer
// that never reads again cannot get it: its writer is dropped at
// write_timeout with the socket full.)
func (c *Conn) overflowLocked() {
	c.opt.SlowConsumers.Add(1)
	c.opt.DroppedMessages.Add(uint64(len(c.queue)) + 1)
	clear(c.queue)
	c.queue, c.queuedBytes = nil, 0
	c.closeLocked(websocket.ClosePolicyViolation, slowConsumer)
}

// control sends a ping or pong.
func (c *Conn) control(op int, payload []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.writing || c.raw == nil {
		if op == websocket.PingMessage {
			c.pingDue = true
		} else {
			c.pongDue, c.pong = true, append(c.pong[:0], payload...)
		}
		c.startWriterLocked()
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.writer.Add(1)
	c.mu.Unlock()
	c.writeNow(op, payload, nil)
}

// ID returns the client id.
func (c *Conn) ID() string { return c.id }

// DirectWrites reports whether a send may write to the socket from the
// caller's goroutine (the raw non-blocking path). False means every frame
// goes through a writer goroutine: always so off Linux, and a regression
// on Linux (a wrapper hiding the socket).
func (c *Conn) DirectWrites() bool { return c.raw != nil }

// Module returns the name of the module behind the client's route.
func (c *Conn) Module() string { return c.module }

// Ping is the liveness sweep's ping.
func (c *Conn) Ping() { c.control(websocket.PingMessage, nil) }

// Close sends final (if any), then a close frame with code and reason, after
// everything already queued.
func (c *Conn) Close(final *abi.Message, code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return abi.ErrnoNotFound
	}
	if final != nil {
		c.queue = append(c.queue, outMsg{Message: *final})
		c.queuedBytes += len(final.Data)
	}
	c.closeLocked(code, reason)
	return nil
}

// closeLocked stops sends and has the writer send a close frame after the
// queue.
func (c *Conn) closeLocked(code int, reason string) {
	c.closing = true
	c.closeMsg = closePayload(code, reason)
	c.startWriterLocked()
}

// dropLocked stops sends and forgets everything not yet handed to the
// socket.
func (c *Conn) dropLocked() {
	c.closing = true
	c.queue, c.queuedBytes, c.closeMsg, c.pingDue, c.pongDue = nil, 0, nil, false, false
}

// closeReply answers the peer's close frame at once: queued messages are
// dropped (the peer has stopped reading), as the websocket package does.
// It runs on the reader, which closes the socket right after; a writer
// stuck on a full socket gets a second to let go, as WriteControl allowed.
func (c *Conn) closeReply(msg []byte) {
	c.mu.Lock()
	c.dropLocked()
	c.mu.Unlock()
	if !c.lockWriter(time.Second) {
		return
	}
	defer c.wmu.Unlock()
	_ = c.writeCloseLocked(msg, time.Now().Add(time.Second))
}

// sendCloseNow writes a close frame from the reader (invalid input): after
// the frame under way, ahead of the queue, which is dropped.
func (c *Conn) sendCloseNow(code int, reason string) {
	c.closeReply(closePayload(code, reason))
}

// libraryWrite is how the websocket package's own writes reach the socket
// (frameGuard.Write): the close frame it sends when it fails the
// connection (a protocol error, a message over its read limit). It used
// to go around wmu, so it could land inside a frame a direct write had
// left half written, and frames queued before the failure (the echo of an
// earlier message) went out after it. Now it is a close like the reader's
// own (closeReply): the queue is dropped, the frame under way finished,
// and nothing is written after it.
func (c *Conn) libraryWrite(p []byte) (int, error) {
	c.mu.Lock()
	c.dropLocked()
	c.mu.Unlock()
	if !c.lockWriter(time.Second) {
		return 0, os.ErrDeadlineExceeded
	}
	defer c.wmu.Unlock()
	if c.closeSent {
		return len(p), nil
	}
	c.closeSent = true
	c.libraryClosed.Store(true)
	_ = c.tc.SetWriteDeadline(time.Now().Add(time.Second))
	c.deadlineAt = time.Time{}
	if err := c.flushPartialLocked(); err != nil {
		return 0, err
	}
	return c.tc.Write(p)
}

// lockWriter takes wmu, waiting at most d for a writer stuck on a full
// socket to let go; false: it did not.
func (c *Conn) lockWriter(d time.Duration) bool {
	for give := time.Now().Add(d); !c.wmu.TryLock(); {
		if time.Now().After(give) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Abort drops the connection at once (a failed write, destroyClient); the
// reader then ends.
func (c *Conn) Abort() {
	c.mu.Lock()
	c.dropLocked()
	c.mu.Unlock()
	_ = c.kill.Close()
	c.unpoll()
}

func (c *Conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.writer.Add(1)
		go c.writeLoop()
	}
}

// writeNow is a direct write by a sender that has taken the writer role:
// one non-blocking write(2). What it leaves (the end of a frame the socket
// did not take, messages queued meanwhile, a close) goes to a writer
// goroutine, which inherits the writer role.
func (c *Conn) writeNow(op int, payload []byte, z *Deflated) {
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		c.release()
		return
	}
	bp := getFrameBuf()
	b := (*bp)[:0]
	if c.partial != nil { // not expected (the writer role is ours), but keep the order
		b = append(b, c.partial...)
		putFrameBuf(c.partialBuf)
		c.partial, c.partialBuf = nil, nil
	}
	if c.deflate && op <= websocket.BinaryMessage {
		b = c.appendDataFrame(b, op, payload, z)
	} else {
		b = appendFrame(b, op, payload)
	}
	n, err := c.tryWrite(b)
	if err == nil && n < len(b) {
		c.partial, c.partialBuf = b[n:], bp
	} else {
		*bp = b
		putFrameBuf(bp)
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail()
		return
	}
	c.mu.Lock()
	if n < len(b) || len(c.queue) > 0 || c.closeMsg != nil || c.pingDue || c.pongDue {
		go c.writeLoop() // inherits writing and the writer count
		c.mu.Unlock()
		return
	}
	c.writing = false
	c.mu.Unlock()
	c.writer.Done()
}

// release gives up the writer role after a failure (the connection is
// closing: nothing more will be written).
func (c *Conn) release() {
	c.mu.Lock()
	c.writing = false
	c.flightBytes = 0
	c.mu.Unlock()
	c.writer.Done()
}

// fail drops the connection after a failed write and gives up the writer
// role.
func (c *Conn) fail() {
	c.Abort()
	c.release()
}

// writeLoop is the writer goroutine. It holds the writer role: it writes
// what a direct write left, then drains the queue, and when nothing is left
// sends the close frame if one is due.
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		batch, ping := c.queue, c.pingDue
		var pong []byte
		if c.pongDue {
			pong = append(make([]byte, 0, len(c.pong)), c.pong...)
		}
		idle := len(batch) == 0 && !ping && !c.pongDue
		if !idle {
			c.queue, c.spare = c.spare[:0], nil
			c.flightBytes, c.queuedBytes = c.queuedBytes, 0
			c.pingDue, c.pongDue = false, false
		}
		c.mu.Unlock()
		if !idle {
			c.wmu.Lock()
			err := c.writeBatchLocked(batch, ping, pong)
			c.wmu.Unlock()
			if err != nil {
				c.fail()
				return
			}
			c.recycle(batch)
			continue
		}
		c.wmu.Lock()
		left := c.partial != nil
		err := c.writeLocked(nil, nil)
		c.wmu.Unlock()
		if err != nil {
			c.fail()
			return
		}
		if left { // look at the queue again
			continue
		}
		c.mu.Lock()
		if len(c.queue) > 0 || c.pingDue || c.pongDue {
			c.mu.Unlock()
			continue
		}
		c.writing = false
		closeMsg := c.closeMsg
		c.closeMsg = nil
		c.mu.Unlock()
		if closeMsg != nil {
			c.wmu.Lock()
			_ = c.writeCloseLocked(closeMsg, time.Now().Add(c.opt.WriteTimeout))
			c.wmu.Unlock()
			// Give the peer a moment to answer before the reader gives up;
			// a parked client needs its reader back to wait for it.
			_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
			c.unpoll()
		}
		c.writer.Done()
		return
	}
}

// recycle keeps a written batch's array as the next queue and releases
// its bytes from the byte bound.
func (c *Conn) recycle(batch []outMsg) {
	clear(batch)
	c.mu.Lock()
	c.flightBytes = 0
	if c.spare == nil && cap(batch) <= 2*c.opt.Messages {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}

// tryWrite is one non-blocking write(2) of b; n < len(b) with a nil error
// means the socket buffer is full.
func (c *Conn) tryWrite(b []byte) (int, error) {
	if !c.deadlineAt.IsZero() && time.Since(c.deadlineAt) > c.opt.WriteTimeout*9/10 {
		c.disarmLocked() // a non-blocking write needs none, and it may be about to fire
	}
	for range 2 {
		n, err := c.raw.write(b)
		if errors.Is(err, os.ErrDeadlineExceeded) { // fired before the check above
			c.disarmLocked()
			continue
		}
		return n, err
	}
	return 0, os.ErrDeadlineExceeded
}

func (c *Conn) disarmLocked() {
	_ = c.tc.SetWriteDeadline(time.Time{})
	c.deadlineAt = time.Time{}
}

// armLocked sets the write deadline for a write that may block. Rearming
// costs a timer update; do it only when a tenth of the timeout has passed.
func (c *Conn) armLocked() {
	if now := time.Now(); c.deadlineAt.IsZero() || now.Sub(c.deadlineAt) > c.opt.WriteTimeout/10 {
		c.deadlineAt = now
		_ = c.tc.SetWriteDeadline(now.Add(c.opt.WriteTimeout))
	}
}

// writeBatchLocked writes pending control frames and a batch of messages in
// as few write(2)s as it can.
func (c *Conn) writeBatchLocked(batch []outMsg, ping bool, pong []byte) error {
	if c.closeSent {
		return nil
	}
	if len(batch) > 0 {
		// Counted before the write, as a direct write counts (sendNow): a
		// client that has read its messages must find them counted (the
		// count after the write raced with the client's read of it).
		n := 0
		for _, m := range batch {
			n += len(m.Data)
		}
		c.msgsOut.Add(uint64(len(batch)))
		c.bytesOut.Add(uint64(n))
	}
	bp := getFrameBuf()
	defer putFrameBuf(bp)
	b := (*bp)[:0]
	if ping {
		b = appendFrame(b, websocket.PingMessage, nil)
	}
	if pong != nil {
		b = appendFrame(b, websocket.PongMessage, pong)
	}
	for _, m := range batch {
		payload := m.Data
		if c.deflate { // compressed into b: a copy, but a compressed one
			b = c.appendDataFrame(b, frameOp(m.Message), payload, m.z)
			payload = nil
		} else {
			b = appendHeader(b, frameOp(m.Message), len(payload))
		}
		if len(payload) > bigPayload {
			if err := c.writeLocked(b, payload); err != nil {
				return err
			}
			b = b[:0]
			continue
		}
		b = append(b, payload...)
		if len(b) >= maxFrameBuf {
			if err := c.writeLocked(b, nil); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	*bp = b
	return c.writeLocked(b, nil)
}

// writeLocked writes what a direct write left, then b and more, blocking
// (under the write deadline) until done.
func (c *Conn) writeLocked(b, more []byte) error {
	if c.partial == nil && len(b) == 0 && len(more) == 0 {
		return nil
	}
	c.armLocked()
	if err := c.flushPartialLocked(); err != nil {
		return err
	}
	var err error
	switch {
	case len(more) > 0:
		bufs := net.Buffers{b, more}
		_, err = bufs.WriteTo(c.tc)
	case len(b) > 0:
		_, err = c.tc.Write(b)
	}
	return err
}

// flushPartialLocked writes, blocking, the end of a frame a direct write
// left unwritten, so that the next frame follows it whole.
func (c *Conn) flushPartialLocked() error {
	if c.partial == nil {
		return nil
	}
	_, err := c.tc.Write(c.partial)
	putFrameBuf(c.partialBuf)
	c.partial, c.partialBuf = nil, nil
	return err
}

// writeCloseLocked writes a close frame, after what a direct write left;
// nothing is written after it.
func (c *Conn) writeCloseLocked(payload []byte, deadline time.Time) error {
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	_ = c.tc.SetWriteDeadline(deadline)
	c.deadlineAt = time.Time{}
	var hdr [2 + 125]byte
	frame := appendFrame(hdr[:0], websocket.CloseMessage, payload)
	if err := c.flushPartialLocked(); err != nil {
		return err
	}
	_, err := c.tc.Write(frame)
	return err
}

// closeGrace is how long the reader waits for the peer's close reply.
const closeGrace = 2 * time.Second
