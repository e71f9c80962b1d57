package transport

import (
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// Close codes the server sends.
const (
	closeNormal      = websocket.CloseNormalClosure
	closeInvalidText = websocket.CloseInvalidFramePayloadData // 1007
)

// ReadLoop is the client's reader: it hands every message, in order, to
// onMessage, until the peer closes or breaks the protocol. msg.Data is
// valid only during the call (the buffer is reused).
func (c *Conn) ReadLoop(onMessage func(msg abi.Message)) {
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.endRead(err)
			return
		}
		buf, _ := c.opt.buffers.Get().(*bytes.Buffer)
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.putBuffer(buf)
			c.endRead(err)
			return
		}
		data := buf.Bytes()
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			c.putBuffer(buf)
			c.closeAndLinger(closeInvalidText, "invalid UTF-8 in text frame")
			return
		}
		c.msgsIn.Add(1)
		c.bytesIn.Add(uint64(len(data)))
		onMessage(abi.Message{Data: data, Binary: typ == websocket.BinaryMessage})
		c.putBuffer(buf)
		c.touch()
	}
}

// putBuffer keeps read buffers for reuse unless a rare huge message grew one.
func (c *Conn) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		c.opt.buffers.Put(buf)
	}
}

// endRead handles the error that ended reading. An oversize message has
// already been answered with close code 1009 by the websocket package.
func (c *Conn) endRead(err error) {
	if errors.Is(err, errShortClose) {
		c.closeAndLinger(websocket.CloseProtocolError, "close frame with a 1-byte payload (a close code takes 2)")
		return
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		if c.opt.Log != nil {
			c.opt.Log.Info("client sent a message over max_message_size; closed with 1009", "client", c.id, "max", c.opt.MaxMessageSize)
		}
		c.closedByLibrary()
		c.linger()
	}
}

// closeAndLinger sends a close frame and drains the socket for a moment, so
// the close frame is not lost to a TCP reset caused by unread input.
func (c *Conn) closeAndLinger(code int, reason string) {
	c.sendCloseNow(code, reason)
	c.linger()
}

func (c *Conn) linger() {
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
	_, _ = io.Copy(io.Discard, c.nc)
}

// StopSends makes every later send fail with abi.ErrnoNotFound: the client
// has been unregistered.
func (c *Conn) StopSends() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
}

// Finish closes the socket, which fails a write in progress at once, and
// waits for the writer to let go: after it the socket may be recycled.
func (c *Conn) Finish() {
	_ = c.ws.Close()
	c.writer.Wait()
}

// Drop closes the socket under the reader and writer (a shutdown out of
// time): both end at once.
func (c *Conn) Drop() { _ = c.kill.Close() }

// Liveness: a peer that vanished without closing (a laptop lid shut, a NAT
// that forgot the mapping) would otherwise hold its connection, uid and
// groups forever. The server pings every client every server.ping_interval
// from one goroutine (no timer per connection: Hub.Each and Ping), browsers
// answer with pongs, and a reader whose client has sent nothing, not even a
// pong, for Options.IdleTimeout gets a read timeout and ends like any close.

// WatchLiveness arms the idle deadline and extends it on every pong.
func (c *Conn) WatchLiveness() {
	if c.opt.IdleTimeout <= 0 {
		return
	}
	c.touch()
	c.ws.SetPongHandler(func(string) error { c.touch(); return nil })
}

// touch pushes the idle deadline out. It rearms the timer only when a
// quarter of the timeout has passed, so a busy client does not pay a
// deadline update per message. Only the reader calls it.
func (c *Conn) touch() {
	idle := c.opt.IdleTimeout
	if idle <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.deadlineSetAt) < idle/4 {
		return
	}
	if !c.isClosing() { // a close in progress has its own, shorter deadline
		c.deadlineSetAt = now
		_ = c.ws.SetReadDeadline(now.Add(idle))
	}
}
