package server

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// conn is one WebSocket client.
//
// Reading goes through the websocket package; writing does not. Every frame
// the server sends (data, ping, pong, close) is framed here and written to
// the socket under wmu, so that a frame is never interleaved with another,
// nothing follows a close frame, and the write deadline is armed only when
// a write may block (the websocket package re-arms it on every frame, a
// timer update that cost 16% of push CPU).
//
// Who writes: a send from an idle caller (see idleKey) that finds the
// client idle (no writer, empty queue) writes the frame itself, from the
// caller's goroutine, without blocking: one non-blocking write(2). Whatever the socket does not take at once, and
// every message queued while a write is under way, is left to a writer
// goroutine, which exists only while there is a backlog, writes each batch
// with as few write(2) calls as it can, and blocks (under
// server.write_timeout) on a slow peer. An idle client therefore costs one
// goroutine (its reader), and an unloaded push costs no goroutine switch.
type conn struct {
	id     string
	module string // the module behind the client's route

	ws           *websocket.Conn
	nc           net.Conn        // the socket, as the websocket package has it (Close)
	tc           net.Conn        // the socket underneath fasthttp's wrapper (writes, deadlines)
	rc           syscall.RawConn // tc's fd, for non-blocking writes; nil: always use a writer goroutine
	queueSize    int
	writeTimeout time.Duration
	// deadlineSetAt is when the reader last moved the idle read deadline;
	// only the reader touches it.
	deadlineSetAt time.Time

	// writer counts the active writer (0 or 1): a sender writing directly
	// or the writer goroutine. The reader waits for it before returning the
	// socket to fasthttp, which recycles it.
	writer sync.WaitGroup

	mu       sync.Mutex // guards the fields below up to wmu
	queue    []abi.Message
	spare    []abi.Message // the writer's last batch, reused as the next queue
	writing  bool          // a writer is active (and counted in writer)
	closing  bool          // no more sends are accepted
	closeMsg []byte        // close frame payload the writer sends after the queue, if closing
	pingDue  bool          // a ping waits for the writer
	pongDue  bool          // a pong waits for the writer, with payload pong (the latest ping's)
	pong     []byte

	wmu sync.Mutex // owns the socket for writing; guards the fields below
	// partial is the unwritten end of a frame a direct write began; the
	// next write sends it first. partialBuf is its pooled buffer.
	partial    []byte
	partialBuf *[]byte
	closeSent  bool      // a close frame has been written; nothing may follow it
	deadlineAt time.Time // when the write deadline was last armed (zero: none armed)
	// Arguments and results of rawWrite (a method value, so a direct write
	// allocates no closure).
	rawBuf   []byte
	rawN     int
	rawErr   error
	rawWrite func(fd uintptr) bool
}

func newConn(id string, ws *websocket.Conn, queueSize int, writeTimeout time.Duration) *conn {
	c := &conn{id: id, ws: ws, nc: ws.NetConn(), queueSize: queueSize, writeTimeout: writeTimeout}
	c.tc = c.nc
	if u, ok := c.nc.(interface{ UnsafeConn() net.Conn }); ok { // fasthttp's hijacked conn
		c.tc = u.UnsafeConn()
	}
	if sc, ok := c.tc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.rawWrite = c.rawWriteFn
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

// send queues msg, or writes it at once when the client is idle. It never
// blocks: a full queue closes the client as a slow consumer and reports
// abi.ErrnoQueueFull. direct=false always leaves the write to a writer
// goroutine (broadcasts: their writes then run in parallel). borrowed means
// msg.Data belongs to the caller: it is copied if it has to be queued.
func (c *conn) send(msg abi.Message, direct, borrowed bool) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return abi.ErrnoNotFound
	}
	if c.writing || !direct || c.rc == nil {
		if len(c.queue) >= c.queueSize {
			c.closeLocked(websocket.ClosePolicyViolation, "slow consumer: send queue full")
			c.mu.Unlock()
			return abi.ErrnoQueueFull
		}
		if borrowed {
			msg.Data = bytes.Clone(msg.Data)
		}
		c.queue = append(c.queue, msg)
		c.startWriterLocked()
		c.mu.Unlock()
		return nil
	}
	c.writing = true
	c.writer.Add(1)
	c.mu.Unlock()
	c.writeNow(frameOp(msg), msg.Data)
	return nil
}

// control sends a ping or pong.
func (c *conn) control(op int, payload []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.writing || c.rc == nil {
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
	c.writeNow(op, payload)
}

// ping is the liveness sweep's ping.
func (c *conn) ping() { c.control(websocket.PingMessage, nil) }

// close sends final (if any), then a close frame with code and reason, after
// everything already queued.
func (c *conn) close(final *abi.Message, code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return abi.ErrnoNotFound
	}
	if final != nil {
		c.queue = append(c.queue, *final)
	}
	c.closeLocked(code, reason)
	return nil
}

// closeLocked stops sends and has the writer send a close frame after the
// queue.
func (c *conn) closeLocked(code int, reason string) {
	c.closing = true
	c.closeMsg = closePayload(code, reason)
	c.startWriterLocked()
}

// closePayload is a close frame's payload, its reason cut (on a rune
// boundary) to fit a control frame.
func closePayload(code int, reason string) []byte {
	const maxReason = 125 - 2
	if len(reason) > maxReason {
		reason = reason[:maxReason]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return websocket.FormatCloseMessage(code, reason)
}

// closeReply answers the peer's close frame at once: queued messages are
// dropped (the peer has stopped reading), as the websocket package does.
// It runs on the reader, which closes the socket right after; a writer
// stuck on a full socket gets a second to let go, as WriteControl allowed.
func (c *conn) closeReply(msg []byte) {
	c.mu.Lock()
	c.closing = true
	c.queue, c.closeMsg, c.pingDue, c.pongDue = nil, nil, false, false
	c.mu.Unlock()
	for give := time.Now().Add(time.Second); !c.wmu.TryLock(); {
		if time.Now().After(give) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	defer c.wmu.Unlock()
	_ = c.writeCloseLocked(msg, time.Now().Add(time.Second))
}

// sendCloseNow writes a close frame from the reader (invalid input): after
// the frame under way, ahead of the queue, which is dropped.
func (c *conn) sendCloseNow(code int, reason string) {
	c.closeReply(closePayload(code, reason))
}

// closedByLibrary records that the websocket package wrote a close frame
// itself (it does on a protocol error, such as a message over the read
// limit): nothing more may be written. Its frame went around wmu; the
// reader drops the connection right after, so that only matters if a
// direct write had left half a frame, on a peer that broke the protocol.
func (c *conn) closedByLibrary() {
	c.mu.Lock()
	c.closing = true
	c.queue, c.closeMsg, c.pingDue, c.pongDue = nil, nil, false, false
	c.mu.Unlock()
	c.wmu.Lock()
	c.closeSent = true
	c.wmu.Unlock()
}

func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.writer.Add(1)
		go c.writeLoop()
	}
}

// writeNow is a direct write by a sender that has become the writer: one
// non-blocking write(2). What it leaves (the end of a frame the socket did
// not take, messages queued meanwhile, a close) goes to a writer goroutine,
// which inherits the writer role.
func (c *conn) writeNow(op int, payload []byte) {
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
	b = appendFrame(b, op, payload)
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
func (c *conn) release() {
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
	c.writer.Done()
}

// tryWrite is one non-blocking write(2) of b; n < len(b) with a nil error
// means the socket buffer is full.
func (c *conn) tryWrite(b []byte) (int, error) {
	if !c.deadlineAt.IsZero() && time.Since(c.deadlineAt) > c.writeTimeout*9/10 {
		c.disarmLocked() // a non-blocking write needs none, and it may be about to fire
	}
	for range 2 {
		c.rawBuf, c.rawN, c.rawErr = b, 0, nil
		err := c.rc.Write(c.rawWrite)
		c.rawBuf = nil
		if errors.Is(err, os.ErrDeadlineExceeded) { // fired before the check above
			c.disarmLocked()
			continue
		}
		if err != nil {
			return 0, err
		}
		if c.rawErr == syscall.EAGAIN {
			return 0, nil
		}
		return c.rawN, c.rawErr
	}
	return 0, os.ErrDeadlineExceeded
}

func (c *conn) rawWriteFn(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), c.rawBuf)
		if err == syscall.EINTR {
			continue
		}
		c.rawN, c.rawErr = max(n, 0), err
		return true
	}
}

func (c *conn) disarmLocked() {
	_ = c.tc.SetWriteDeadline(time.Time{})
	c.deadlineAt = time.Time{}
}

// armLocked sets the write deadline for a write that may block. Rearming
// costs a timer update; do it only when a tenth of the timeout has passed.
func (c *conn) armLocked() {
	if now := time.Now(); c.deadlineAt.IsZero() || now.Sub(c.deadlineAt) > c.writeTimeout/10 {
		c.deadlineAt = now
		_ = c.tc.SetWriteDeadline(now.Add(c.writeTimeout))
	}
}

// writeLoop is the writer goroutine. It holds the writer role: it writes
// what a direct write left, then drains the queue, and when nothing is left
// sends the close frame if one is due.
func (c *conn) writeLoop() {
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
			_ = c.writeCloseLocked(closeMsg, time.Now().Add(c.writeTimeout))
			c.wmu.Unlock()
			// Give the peer a moment to answer before the reader gives up.
			_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
		}
		c.writer.Done()
		return
	}
}

// recycle keeps a written batch's array as the next queue.
func (c *conn) recycle(batch []abi.Message) {
	clear(batch)
	c.mu.Lock()
	if c.spare == nil && cap(batch) <= 2*c.queueSize {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}

// fail drops the connection after a failed write and gives up the writer
// role.
func (c *conn) fail() {
	c.abort()
	c.release()
}

// Frame buffers are pooled: a client holds one only while a write of its
// is under way.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const (
	maxFrameBuf = 64 << 10 // a batch is written in pieces of about this size
	bigPayload  = 16 << 10 // larger payloads are not copied, but written with writev
)

func getFrameBuf() *[]byte { return frameBufs.Get().(*[]byte) }

func putFrameBuf(bp *[]byte) {
	if cap(*bp) <= 2*maxFrameBuf {
		*bp = (*bp)[:0]
		frameBufs.Put(bp)
	}
}

func frameOp(m abi.Message) int {
	if m.Binary {
		return websocket.BinaryMessage
	}
	return websocket.TextMessage
}

// appendHeader appends a server frame's header (final, unmasked).
func appendHeader(b []byte, op, n int) []byte {
	b0 := byte(op) | 0x80
	switch {
	case n <= 125:
		return append(b, b0, byte(n))
	case n <= 0xffff:
		return append(b, b0, 126, byte(n>>8), byte(n))
	default:
		return append(b, b0, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendFrame(b []byte, op int, payload []byte) []byte {
	return append(appendHeader(b, op, len(payload)), payload...)
}

// writeBatchLocked writes pending control frames and a batch of messages in
// as few write(2)s as it can.
func (c *conn) writeBatchLocked(batch []abi.Message, ping bool, pong []byte) error {
	if c.closeSent {
		return nil
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
		b = appendHeader(b, frameOp(m), len(m.Data))
		if len(m.Data) > bigPayload {
			if err := c.writeLocked(b, m.Data); err != nil {
				return err
			}
			b = b[:0]
			continue
		}
		b = append(b, m.Data...)
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
func (c *conn) writeLocked(b, more []byte) error {
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
func (c *conn) flushPartialLocked() error {
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
func (c *conn) writeCloseLocked(payload []byte, deadline time.Time) error {
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

// abort drops the connection at once (a failed write, destroyClient); the
// reader then ends.
func (c *conn) abort() {
	c.mu.Lock()
	c.closing, c.queue, c.closeMsg, c.pingDue, c.pongDue = true, nil, nil, false, false
	c.mu.Unlock()
	_ = c.nc.Close()
}

// closeGrace is how long the reader waits for the peer's close reply.
const closeGrace = 2 * time.Second
