package transport

import (
	"sync"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// Framing of the frames the server sends (RFC 6455 §5.2): always final,
// never masked. conn.go decides when they are written.

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
