package transport

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate (RFC 7692), no context takeover only.
//
// Negotiation: AcceptDeflate picks the client's offer; the websocket
// package writes the answer ("permessage-deflate;
// server_no_context_takeover; client_no_context_takeover") and inflates
// what the client compresses (ReadLoop bounds the inflated size by
// max_message_size: the package's read limit counts wire bytes only).
// Compression of what the server sends is here, in its framing: a data
// message is compressed on its own (a fresh DEFLATE stream, so no state
// is kept per connection between messages), sent with RSV1 set, and the
// sync flush's trailing 0x00 0x00 0xff 0xff removed (§7.2.1). A message is
// sent as it is (RSV1 clear, which §6 allows per message) when it is
// shorter than minDeflate or compressing does not make it smaller.
//
// Context takeover (a dictionary kept across messages) is left out: it
// would cost every client a 32 KiB window on each side for as long as it
// is connected, and the compression of a fan-out could not be shared.

// minDeflate is the shortest payload worth compressing: below it DEFLATE's
// block header and Huffman tables cost more than they save.
const minDeflate = 64

// AcceptDeflate reports whether the server accepts a permessage-deflate
// offer among values, the request's Sec-WebSocket-Extensions header lines.
// It accepts the first acceptable offer; an offer is declined (RFC 7692
// §5.1, §7) when it has an unknown, repeated or malformed parameter, or
// server_max_window_bits (the server compresses with a 32 KiB window and
// the websocket package's fixed answer cannot confirm a smaller one).
// client_max_window_bits, with or without a value, is accepted: the
// inflater reads any window.
func AcceptDeflate(values [][]byte) bool {
	for _, v := range values {
		for offer := range bytes.SplitSeq(v, []byte(",")) {
			if acceptOffer(string(offer)) {
				return true
			}
		}
	}
	return false
}

// acceptOffer reports whether offer, one extension of the header, is a
// permessage-deflate offer the server accepts.
func acceptOffer(offer string) bool {
	name, params, _ := strings.Cut(offer, ";")
	if !strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
		return false
	}
	seen := map[string]bool{}
	for p := range strings.SplitSeq(params, ";") {
		p = strings.TrimSpace(p)
		if p == "" && params == "" {
			break // no parameters
		}
		key, value, hasValue := strings.Cut(p, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if seen[key] {
			return false
		}
		seen[key] = true
		switch key {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return false
			}
		case "client_max_window_bits":
			if hasValue && !windowBits(value) {
				return false
			}
		default: // server_max_window_bits, unknown and empty parameters
			return false
		}
	}
	return true
}

// windowBits reports whether v is a window size RFC 7692 §7.1.2 allows: a
// decimal 8 to 15 without leading zeros.
func windowBits(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15 && strconv.Itoa(n) == v
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var appendWriters = sync.Pool{New: func() any { return new(appendWriter) }}

// syncTail ends every sync-flushed DEFLATE stream; RFC 7692 §7.2.1 has the
// sender remove it and the receiver add it back.
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// deflateAppend appends the permessage-deflate payload of src to dst and
// reports whether to send it: false when src is too short to be worth it
// or compressing did not make it smaller (dst is then returned as it was).
func deflateAppend(dst, src []byte) ([]byte, bool) {
	if len(src) < minDeflate {
		return dst, false
	}
	// klauspost's stateless deflate: no writer kept per message or pooled
	// (a flate.Writer holds hundreds of KiB), about the same CPU as a
	// reset level-1 writer on chat-sized messages; without eof it ends
	// with the sync flush's empty stored block.
	w := appendWriters.Get().(*appendWriter)
	w.b = dst
	_ = flate.StatelessDeflate(w, src, false, nil) // appendWriter never fails
	out := w.b
	w.b = nil
	appendWriters.Put(w)
	if !bytes.HasSuffix(out, syncTail) || len(out)-len(syncTail)-len(dst) >= len(src) {
		return dst, false
	}
	return out[:len(out)-len(syncTail)], true
}

// Deflated is the compressed form of one message sent to many clients (a
// fan-out), made once by the first writer of a deflate client that needs
// it and shared by the rest: compressing per recipient would multiply the
// CPU cost by the group size. Its zero value is ready; it costs nothing
// when no recipient compresses.
type Deflated struct {
	once sync.Once
	data []byte // the compressed payload; nil: send the message as it is
}

// NewDeflated returns the shared compressed form of a message about to be
// sent to several clients (Hub.SendOrderedShared).
func NewDeflated() *Deflated { return new(Deflated) }

// get returns the compressed form of payload (the message's, the same on
// every call), or nil to send it as it is.
func (d *Deflated) get(payload []byte) []byte {
	d.once.Do(func() {
		if z, ok := deflateAppend(nil, payload); ok {
			d.data = z
		}
	})
	return d.data
}

// rsv1 is the first header byte's RSV1 bit: "compressed" (RFC 7692 §6).
const rsv1 = 0x40

// appendDataFrame appends the frame of a data message to a deflate client:
// compressed, with RSV1, when that pays. z is the message's shared
// compressed form (a fan-out), or nil to compress here.
func (c *Conn) appendDataFrame(b []byte, op int, payload []byte, z *Deflated) []byte {
	var zp []byte
	if z != nil {
		zp = z.get(payload)
	} else {
		zb := getFrameBuf()
		var ok bool
		if zp, ok = deflateAppend((*zb)[:0], payload); ok {
			*zb = zp[:0] // keep a grown buffer
		} else {
			zp = nil
		}
		defer putFrameBuf(zb)
	}
	if zp == nil {
		return appendFrame(b, op, payload)
	}
	start := len(b)
	b = appendHeader(b, op, len(zp))
	b[start] |= rsv1
	return append(b, zp...)
}
