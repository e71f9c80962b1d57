package transport

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// The upgrade goes through the websocket package's net/http Upgrader, fed
// from fasthttp's hijacked connection, rather than its FastHTTPUpgrader:
// that is the only way to put frameGuard between the socket and the
// websocket reader. fasthttp writes no response (HijackSetNoResponse); the
// Upgrader writes the 101 itself. handleHTTP has already refused every
// request the Upgrader would refuse (CheckUpgrade), so its error answers
// are never used.

// The frameGuard's refusals; each ends reading with a 1002 close that names
// it. errShortClose: a close frame with a 1-byte payload. errCompressedControl
// and errCompressedContinuation: RSV1 (RFC 7692's "compressed" bit) on a
// frame that cannot carry it, on a connection that negotiated
// permessage-deflate (without it the websocket package refuses any RSV1).
var (
	errShortClose             = errors.New("close frame with a 1-byte payload (a close code takes 2)")
	errCompressedControl      = errors.New("RSV1 set on a control frame (RFC 7692 §6: only a message's first frame may be compressed)")
	errCompressedContinuation = errors.New("RSV1 set on a continuation frame (RFC 7692 §6: only a message's first frame may be compressed)")
)

// frameGuard sits under the websocket reader and refuses what the websocket
// package lets through: a close frame whose payload is a single byte (RFC
// 6455 §5.5.1: a close body, if any, starts with a 2-byte code). The
// package reads it as "no status" and echoes it; the RFC makes it a
// protocol error, answered with 1002. With permessage-deflate negotiated
// the package also takes RSV1 on control and continuation frames, which
// RFC 7692 §6 forbids: the guard refuses those too.
//
// It follows frame boundaries by reading only headers and counting payload
// bytes past, so it costs a few instructions per frame. It sees the stream
// from the first byte after the handshake request (detach returns any bytes
// fasthttp had buffered first), so it cannot lose sync.
type frameGuard struct {
	net.Conn
	hdr   [14]byte // the current frame's header so far
	nhdr  int      // bytes in hdr
	skip  uint64   // payload bytes of the current frame still to pass
	fault error    // the refusal returned, if any
	// deflate: permessage-deflate was negotiated (RSV1 is checked).
	deflate bool
	// write, when set (NewConn), takes the websocket package's own writes:
	// the close frame it sends when it fails the connection.
	write func([]byte) (int, error)

	// br is the websocket package's reader over the guard (Hijack makes
	// it, so the Conn can lend its buffer while idle: idle.go).
	br *bufio.Reader
	// What an idle reader's shallow wait read (idle.go), served before the
	// socket: pending, in pendingBuf (a chunk of chunks), then pendingErr.
	pending    []byte
	pendingBuf *[]byte
	pendingErr error
	chunks     *sync.Pool
}

// atBoundary reports whether the stream is between frames: the next byte
// read starts a frame header.
func (g *frameGuard) atBoundary() bool { return g.nhdr == 0 && g.skip == 0 && g.fault == nil }

// Write is the websocket package's write: through the Conn that owns the
// socket once there is one (Conn.libraryWrite), so that its close frame
// is ordered with the Conn's own frames.
func (g *frameGuard) Write(p []byte) (int, error) {
	if g.write != nil {
		return g.write(p)
	}
	return g.Conn.Write(p)
}

// UnsafeConn is the socket under the guard (and under fasthttp's hijack
// wrapper): newConn writes and sets deadlines on it directly, and takes
// its fd for the raw non-blocking write path. The guard only checks what
// is read, so writes need not go through it — and wrapping them hid the
// socket from newConn, which then sent every frame through a writer
// goroutine.
func (g *frameGuard) UnsafeConn() net.Conn {
	if u, ok := g.Conn.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return g.Conn
}

// Read reads from the connection and checks the frames read. On a frame it
// refuses it returns the bytes before that frame and the refusal, so the
// websocket reader handles earlier frames and then fails; later reads (the
// linger after the close frame) pass through unchecked.
func (g *frameGuard) Read(p []byte) (n int, err error) {
	switch {
	case g.pending != nil:
		n = copy(p, g.pending)
		g.pending = g.pending[n:]
		if len(g.pending) == 0 {
			g.pending = nil
			g.chunks.Put(g.pendingBuf)
			g.pendingBuf = nil
		}
	case g.pendingErr != nil:
		err, g.pendingErr = g.pendingErr, nil
	default:
		n, err = g.Conn.Read(p)
	}
	if g.fault != nil {
		return n, err
	}
	if at, bad := g.scan(p[:n]); at >= 0 {
		g.fault = bad
		return at, bad
	}
	return n, err
}

// check returns the refusal of the frame whose header begins with h (two
// bytes at least) and whose payload is length bytes, or nil.
func (g *frameGuard) check(h []byte, length uint64) error {
	opcode := h[0] & 0x0f
	switch {
	case opcode == 0x8 && length == 1:
		return errShortClose
	case !g.deflate || h[0]&0x40 == 0:
		return nil
	case opcode >= 0x8:
		return errCompressedControl
	case opcode == 0x0:
		return errCompressedContinuation
	}
	return nil
}

// scan follows frames through b and returns the offset in b where a
// refused frame begins (0 if its header began in an earlier read) and the
// refusal, or -1.
func (g *frameGuard) scan(b []byte) (int, error) {
	start := 0 // where the current frame began in b
	for i := 0; i < len(b); {
		if g.skip > 0 {
			k := min(uint64(len(b)-i), g.skip)
			g.skip -= k
			i += int(k)
			continue
		}
		if g.nhdr == 0 {
			start = i
			if len(b)-i >= len(g.hdr) { // the whole header is here: no copy
				h := b[i:]
				need := frameHeaderLen(h[:2])
				length := framePayloadLen(h[:need])
				if bad := g.check(h, length); bad != nil {
					return start, bad
				}
				i += need
				g.skip = length
				continue
			}
		}
		g.hdr[g.nhdr] = b[i]
		g.nhdr++
		i++
		need := frameHeaderLen(g.hdr[:g.nhdr])
		if g.nhdr < need {
			continue
		}
		length := framePayloadLen(g.hdr[:need])
		g.nhdr = 0
		if bad := g.check(g.hdr[:need], length); bad != nil {
			return start, bad
		}
		g.skip = length
	}
	return -1, nil
}

// frameHeaderLen is the length of the frame header that begins with h, as
// far as h tells (2 until the second byte is known).
func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 { // masked
		n += 4
	}
	return n
}

// framePayloadLen decodes the payload length of a complete header h.
func framePayloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}

// hijacked is the http.ResponseWriter the Upgrader hijacks: the connection
// fasthttp handed over, wrapped in a frameGuard.
type hijacked struct {
	guard    *frameGuard
	readSize int // the websocket reader's buffer
	header   http.Header
}

func (h *hijacked) Header() http.Header {
	if h.header == nil {
		h.header = http.Header{}
	}
	return h.header
}

// Write and WriteHeader serve only the Upgrader's error answers, which
// CheckUpgrade makes unreachable; the connection is closed after one.
func (h *hijacked) Write(p []byte) (int, error) { return len(p), nil }
func (h *hijacked) WriteHeader(int)             {}

// Hijack hands over the guarded connection with empty buffers: nothing was
// read past the request, and the Upgrader writes its answer directly.
//
// The reader is the websocket package's own (the Upgrader adopts it when
// its ReadBufferSize is 0), reading the guard: Conn lends its buffer out
// while the client is idle (idle.go).
func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.guard.br = bufio.NewReaderSize(h.guard, h.readSize)
	return h.guard, bufio.NewReadWriter(h.guard.br, bufio.NewWriterSize(nil, 16)), nil
}

// Upgrade completes the handshake of a request CheckUpgrade accepted, on
// nc (the connection fasthttp's hijack handed over) with key (its
// Sec-WebSocket-Key): up writes the 101 and returns the WebSocket, whose
// reads go through a frameGuard. deflate accepts permessage-deflate (the
// caller has checked the client's offer with AcceptDeflate): the 101 then
// answers "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover" and the websocket package inflates
// compressed messages; the Conn must then be told (EnableDeflate). On
// error up has closed nc.
func Upgrade(up *websocket.Upgrader, nc net.Conn, key string, deflate bool) (*websocket.Conn, error) {
	req := upgradeRequest(key)
	u := *up
	h := &hijacked{guard: &frameGuard{Conn: detach(nc), deflate: deflate}, readSize: u.ReadBufferSize}
	if h.readSize < readBufferSize {
		h.readSize = readBufferSize
	}
	u.ReadBufferSize = 0 // adopt Hijack's reader
	if deflate {
		u.EnableCompression = true
		req.Header["Sec-Websocket-Extensions"] = []string{"permessage-deflate"}
	}
	return u.Upgrade(h, req, nil)
}

// detach returns the socket under fasthttp's hijacked connection nc, to
// read from directly. fasthttp's hijacked connection reads through the
// bufio.Reader (4 KiB, fasthttp's read buffer) that parsed the request, and
// with KeepHijackedConns fasthttp leaves that reader to the connection: it
// stayed reachable for the connection's whole life, half the heap of an
// idle client, on top of the websocket reader's own buffer.
//
// Bytes the client sent after its request (RFC 6455 forbids it before the
// 101, but nothing stops it) may sit in that reader. They are drained
// first, by reading nc with a read deadline in the past: the reader hands
// out what it holds, and its next read of the socket fails at once without
// consuming anything. They are read again ahead of the socket (prefixConn).
// If the deadline cannot be set, nc is kept as it is.
func detach(nc net.Conn) net.Conn {
	u, ok := nc.(interface{ UnsafeConn() net.Conn })
	if !ok {
		return nc
	}
	raw := u.UnsafeConn()
	if raw.SetReadDeadline(time.Unix(1, 0)) != nil {
		return nc
	}
	var pending []byte
	buf := make([]byte, 64)
	for {
		n, err := nc.Read(buf)
		pending = append(pending, buf[:n]...)
		// A timeout ends the drain; any other error (the client went) is
		// the socket's, which its next read reports again.
		if err != nil || n == 0 {
			break
		}
	}
	// Clearing the deadline cannot fail where setting it did not; if it
	// did, the first read fails and ends the client.
	_ = raw.SetReadDeadline(time.Time{})
	if len(pending) > 0 {
		return &prefixConn{Conn: raw, pending: pending}
	}
	return raw
}

// prefixConn reads pending, then the connection.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil // let the drained bytes go
	}
	return n, nil
}

// UnsafeConn is the socket, for newConn's writes and deadlines.
func (c *prefixConn) UnsafeConn() net.Conn { return c.Conn }

// CheckUpgrade validates what RFC 6455 §4.2.1 requires of an opening
// handshake beyond the Connection and Upgrade tokens. It returns 0, or the
// status to refuse with and a message naming the problem: 405 for a method
// other than GET, 426 for a Sec-WebSocket-Version other than 13 (§4.2.2:
// the answer carries the version we speak), 400 for a Sec-WebSocket-Key
// that is not the base64 of a 16-byte nonce.
func CheckUpgrade(ctx *fasthttp.RequestCtx) (int, string) {
	if !ctx.IsGet() {
		return fasthttp.StatusMethodNotAllowed, "a WebSocket handshake must be a GET request"
	}
	if v := ctx.Request.Header.Peek("Sec-WebSocket-Version"); !hasToken(v, "13") {
		return fasthttp.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version " + strconv.Quote(string(v)) + ": this server speaks version 13 (RFC 6455)"
	}
	key := ctx.Request.Header.Peek("Sec-WebSocket-Key")
	if len(key) == 0 {
		return fasthttp.StatusBadRequest, "missing Sec-WebSocket-Key header"
	}
	if !validKey(key) {
		return fasthttp.StatusBadRequest, "invalid Sec-WebSocket-Key: it must be the base64 encoding of a 16-byte nonce (RFC 6455 §4.1)"
	}
	return 0, ""
}

// validKey reports whether key is the base64 (standard alphabet, padded) of
// exactly 16 bytes: 24 characters ending in "==".
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var nonce [18]byte
	n, err := base64.StdEncoding.Strict().Decode(nonce[:], key)
	return err == nil && n == 16
}

// hasToken reports whether the comma-separated header value v lists tok.
func hasToken(v []byte, tok string) bool {
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if string(bytes.TrimSpace(part)) == tok {
			return true
		}
	}
	return false
}

// upgradeRequest is the request the Upgrader checks: only the headers it
// reads, copied from a handshake CheckUpgrade accepted.
func upgradeRequest(key string) *http.Request {
	// Keys already canonical, as Header.Set would make them: building the
	// map directly saves the canonicalizing and a slice per value, garbage
	// of every handshake.
	return &http.Request{Method: http.MethodGet, Header: http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {key},
	}}
}
