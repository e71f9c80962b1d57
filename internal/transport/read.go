package transport

import (
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/klauspost/compress/flate"

	"github.com/wasmgate/wasmgate/abi"
)

// Close codes the server sends.
const (
	closeNormal      = websocket.CloseNormalClosure
	closeInvalidText = websocket.CloseInvalidFramePayloadData // 1007
)

// Why a message was refused as it was read (msgReader).
var (
	errInvalidUTF8 = errors.New("invalid UTF-8 in text message")
	errTooBig      = errors.New("message over max_message_size")
)

// ReadLoop is the client's reader: it hands every message, in order, to
// onMessage, until the peer closes or breaks the protocol, then calls
// done. msg.Data is valid only during the call (the buffer is reused).
// The loop may move to a fresh goroutine on the way (idle.go): so
// ReadLoop may return before done is called, and the caller does nothing
// after it.
func (c *Conn) ReadLoop(onMessage func(msg abi.Message), done func()) {
	if c.onDone == nil {
		c.onMessage, c.onDone = onMessage, done
	}
	var mr msgReader
	for {
		if c.waitShallow() {
			return // parked, or moved to a fresh goroutine
		}
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.endRead(err)
			c.opt.Poller.release(c)
			done()
			return
		}
		// Heard from now, not only once the message is handled: the sweep
		// must not end a client whose message is in a long guest call.
		c.touch()
		buf, _ := c.opt.buffers.Get().(*bytes.Buffer)
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		mr.reset(r, typ == websocket.TextMessage, c.opt.MaxMessageSize)
		if _, err := buf.ReadFrom(&mr); err != nil {
			c.putBuffer(buf)
			c.endRead(err)
			c.opt.Poller.release(c)
			done()
			return
		}
		data := buf.Bytes()
		c.msgsIn.Add(1)
		c.bytesIn.Add(uint64(len(data)))
		onMessage(abi.Message{Data: data, Binary: typ == websocket.BinaryMessage})
		c.putBuffer(buf)
		c.touch()
	}
}

// msgReader reads one message for ReadLoop. It checks a text message's
// UTF-8 as it arrives, fragment by fragment: a message whose first
// fragment is already invalid fails at once (RFC 6455 §8.1), not when its
// last fragment arrives, which a hostile client may never send. And it
// bounds the message at max bytes: the websocket package's read limit
// counts the bytes on the wire, so without this bound a compressed
// message (permessage-deflate) could inflate far past max_message_size.
type msgReader struct {
	r    io.Reader
	text bool
	left int // bytes the message may still grow by (0: no bound)
	// tail is the start of a UTF-8 sequence the last read ended inside.
	tail  [utf8.UTFMax]byte
	ntail int
}

func (m *msgReader) reset(r io.Reader, text bool, max int) {
	*m = msgReader{r: r, text: text, left: max}
	if max <= 0 {
		m.left = -1
	}
}

func (m *msgReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if m.left >= 0 {
		if n > m.left {
			return 0, errTooBig
		}
		m.left -= n
	}
	if m.text {
		if !m.valid(p[:n]) {
			return 0, errInvalidUTF8
		}
		if err == io.EOF && m.ntail > 0 {
			return 0, errInvalidUTF8 // the message ends inside a sequence
		}
	}
	return n, err
}

// valid checks the next bytes b of a text message: the sequence the last
// read ended inside, completed, then b up to a sequence b ends inside,
// which is kept for the next call.
func (m *msgReader) valid(b []byte) bool {
	for m.ntail > 0 && len(b) > 0 {
		m.tail[m.ntail] = b[0]
		m.ntail++
		b = b[1:]
		if utf8.FullRune(m.tail[:m.ntail]) { // an invalid sequence is "full" too
			if !utf8.Valid(m.tail[:m.ntail]) {
				return false
			}
			m.ntail = 0
		}
	}
	if m.ntail > 0 { // b ended inside the sequence begun earlier
		return true
	}
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		return false
	}
	m.ntail = copy(m.tail[:], b[cut:])
	return true
}

// putBuffer keeps read buffers for reuse unless a rare huge message grew one.
func (c *Conn) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		c.opt.buffers.Put(buf)
	}
}

// endRead handles the error that ended reading: it fails the connection
// with the close code the error calls for. When the websocket package has
// already done so (a protocol error it detects, a message over its read
// limit: libraryWrite), it only lingers, so that its close frame is not
// lost to the reset that closing over unread input causes.
func (c *Conn) endRead(err error) {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, errShortClose), errors.Is(err, errCompressedControl), errors.Is(err, errCompressedContinuation):
		c.closeAndLinger(websocket.CloseProtocolError, err.Error())
	case errors.Is(err, errInvalidUTF8):
		c.closeAndLinger(closeInvalidText, "invalid UTF-8 in text message")
	case errors.Is(err, errTooBig), errors.Is(err, websocket.ErrReadLimit):
		if c.opt.Log != nil {
			c.opt.Log.Info("client sent a message over max_message_size; closed with 1009", "client", c.id, "max", c.opt.MaxMessageSize)
		}
		c.closeAndLinger(websocket.CloseMessageTooBig, "message over max_message_size")
	case errors.As(err, &corrupt):
		// permessage-deflate data that does not inflate: the connection is
		// failed, with 1007 (the payload is not what its frame says it is).
		c.closeAndLinger(closeInvalidText, "invalid compressed data (permessage-deflate)")
	case c.libraryClosed.Load():
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
func (c *Conn) Drop() {
	// closing first: a Poller loop about to re-park the client (no system
	// call when it stays in the epoll set) must not park it on a closed
	// socket.
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	_ = c.kill.Close()
	c.unpoll()
}

// Liveness: a peer that vanished without closing (a laptop lid shut, a NAT
// that forgot the mapping) would otherwise hold its connection, uid and
// groups forever. The server pings every client every server.ping_interval
// from one goroutine (no timer per connection: Hub.Each and Ping), browsers
// answer with pongs, and a client that has sent nothing, not even a pong,
// for Options.IdleTimeout is ended by the sweep (Hub.Sweep, idle.go): its
// read deadline is set in the past, so its reader gets a read timeout and
// ends like any close. There is no read deadline (no runtime timer) per
// client otherwise: moving one on every pong cost a timer update, and its
// depth grew an idle reader's stack past 2 KiB.

// WatchLiveness starts the idle count and extends it on every pong.
func (c *Conn) WatchLiveness() {
	if c.opt.IdleTimeout <= 0 {
		return
	}
	c.touch()
	c.ws.SetPongHandler(func(string) error { c.touch(); return nil })
}

// touch records that the client was heard from. Only the reader calls it;
// it stores only when a sweep has passed since the last store.
func (c *Conn) touch() {
	if c.opt.IdleTimeout <= 0 {
		return
	}
	if now := c.opt.sweeps.Load(); c.lastSeen.Load() != now {
		c.lastSeen.Store(now)
	}
}
