package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
)

// The upgrade goes through the websocket package's net/http Upgrader, fed
// from fasthttp's hijacked connection, rather than its FastHTTPUpgrader:
// that is the only way to put frameGuard between the socket and the
// websocket reader. fasthttp writes no response (HijackSetNoResponse); the
// Upgrader writes the 101 itself. handleHTTP has already refused every
// request the Upgrader would refuse (checkUpgrade), so its error answers
// are never used.

// errShortClose ends reading a client that sent a close frame with a
// 1-byte payload.
var errShortClose = errors.New("close frame with a 1-byte payload")

// frameGuard sits under the websocket reader and refuses what the websocket
// package lets through: a close frame whose payload is a single byte (RFC
// 6455 §5.5.1: a close body, if any, starts with a 2-byte code). The
// package reads it as "no status" and echoes it; the RFC makes it a
// protocol error, answered with 1002.
//
// It follows frame boundaries by reading only headers and counting payload
// bytes past, so it costs a few instructions per frame. It sees the stream
// from the first byte after the handshake request (the hijacked connection
// returns any bytes fasthttp had buffered first), so it cannot lose sync.
type frameGuard struct {
	net.Conn
	hdr   [14]byte // the current frame's header so far
	nhdr  int      // bytes in hdr
	skip  uint64   // payload bytes of the current frame still to pass
	fault bool     // errShortClose has been returned
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

// Read reads from the connection and checks the frames read. On a short
// close frame it returns the bytes before that frame and errShortClose, so
// the websocket reader handles earlier frames and then fails; later reads
// (the linger after the close frame) pass through unchecked.
func (g *frameGuard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if g.fault {
		return n, err
	}
	if at := g.scan(p[:n]); at >= 0 {
		g.fault = true
		return at, errShortClose
	}
	return n, err
}

// scan follows frames through b and returns the offset in b where a short
// close frame begins (0 if its header began in an earlier read), or -1.
func (g *frameGuard) scan(b []byte) int {
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
				if h[0]&0x0f == 0x8 && length == 1 {
					return start
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
		opcode, length := g.hdr[0]&0x0f, framePayloadLen(g.hdr[:need])
		g.nhdr = 0
		if opcode == 0x8 && length == 1 {
			return start
		}
		g.skip = length
	}
	return -1
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
	conn   net.Conn
	header http.Header
}

func (h *hijacked) Header() http.Header {
	if h.header == nil {
		h.header = http.Header{}
	}
	return h.header
}

// Write and WriteHeader serve only the Upgrader's error answers, which
// checkUpgrade makes unreachable; the connection is closed after one.
func (h *hijacked) Write(p []byte) (int, error) { return len(p), nil }
func (h *hijacked) WriteHeader(int)             {}

// Hijack hands over the guarded connection with empty buffers: nothing was
// read past the request, and the Upgrader writes its answer directly.
func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReaderSize(nil, 16), bufio.NewWriterSize(nil, 16)), nil
}

// upgradeRequest is the request the Upgrader checks: only the headers it
// reads, copied from a handshake checkUpgrade accepted.
func upgradeRequest(key string) *http.Request {
	r := &http.Request{Method: http.MethodGet, Header: make(http.Header, 4)}
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", key)
	return r
}
