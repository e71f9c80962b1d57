package gateway

import "unsafe"

// ABIVersion is the wasmgate ABI version this package implements; the module
// reports it from its wasmgate_abi_version export.
const ABIVersion = 1

// Flags select the frame type and, for SendToAllFlags, the recipients of a
// send (ABI.md §4).
type Flags uint32

const (
	// FlagBinary sends a binary frame; without it a message is a text frame
	// and must be valid UTF-8.
	FlagBinary Flags = 1 << 0
	// FlagOnly makes SendToAllFlags deliver only to the clients in its only
	// list, even when that list is empty.
	FlagOnly Flags = 1 << 1
)

// CloseCode is the flag that makes CloseClientFlags close with code: 1000
// or 4000–4999 (others get ErrnoInvalid). wasmgate.js does not reconnect
// after 4000–4099.
func CloseCode(code uint16) Flags { return Flags(code) << 16 }

// Registered callbacks; nil means the event is accepted and ignored. Register
// them from an init function: a -buildmode=c-shared module runs package
// initialisers in _initialize but never calls main.
var (
	startFn     func(config string)
	handshakeFn func(h Handshake) int
	connectFn   func(c Client)
	messageFn   func(c Client, msg []byte)
	closeFn     func(c Client)
)

// OnStart registers f (call it from init) to run once per instance, before any other event, with
// the module's config string ("" if none). A panic in f fails the instance;
// if the first instance fails, the server refuses the module.
func OnStart(f func(config string)) { startFn = f }

// OnHandshake registers f to decide on every WebSocket upgrade request. f
// returns 0 to accept, or an HTTP status from 400 to 599 to refuse with it.
// Host functions that address the client return ErrnoNotFound during f.
// Without a callback every request is accepted.
func OnHandshake(f func(h Handshake) int) { handshakeFn = f }

// OnConnect registers f to run once a client is connected.
func OnConnect(f func(c Client)) { connectFn = f }

// OnMessage registers f to run for every message. msg is valid only during
// f: the next event overwrites it, so copy it to keep it. c.Binary reports
// whether it arrived in a binary frame; otherwise it is valid UTF-8 text.
func OnMessage(f func(c Client, msg []byte)) { messageFn = f }

// OnClose registers f to run after a client disconnects; it is the client's
// last event. The client is already gone from the registry: its uid, groups
// and session are removed and sends to it return ErrnoNotFound. What it
// had is still readable during f with Closing.
func OnClose(f func(c Client)) { closeFn = f }

// inbuf is the event input region handed to the host by wasmgate_buffer. It
// is reused for every event and replaced only when the host needs more room.
var inbuf []byte

const minInbuf = 4096

// growInbuf makes inbuf at least min bytes long and returns its address.
func growInbuf(min uint32) unsafe.Pointer {
	if uint64(len(inbuf)) < uint64(min) || len(inbuf) == 0 {
		n := uint64(min)
		if d := 2 * uint64(len(inbuf)); d > n {
			n = d
		}
		if n < minInbuf {
			n = minInbuf
		}
		inbuf = make([]byte, n)
	}
	return unsafe.Pointer(unsafe.SliceData(inbuf))
}

// input returns inbuf[off:off+n], or false if that is outside inbuf.
func input(off, n uint32) ([]byte, bool) {
	end := uint64(off) + uint64(n)
	if end > uint64(len(inbuf)) {
		return nil, false
	}
	return inbuf[off:end:end], true
}

// ids interns client ids, so that an event of a client seen before does
// not allocate its id string (a map lookup keyed by string(b) does not
// copy b). Bounded: when maxIDs are held it starts over, so a module that
// sees many clients keeps at most that many strings.
var ids = map[string]string{}

const maxIDs = 4096

func idString(b []byte) string {
	if s, ok := ids[string(b)]; ok {
		return s
	}
	if len(ids) >= maxIDs {
		clear(ids)
	}
	s := string(b)
	ids[s] = s
	return s
}

// Results of the event exports besides the callbacks' own.
const (
	resultOK       = 0
	resultBadInput = 1 // lengths outside the buffer or a malformed list
	resultPanic    = 2 // the callback panicked
)

func handleStart(configLen uint32) (r int32) {
	b, ok := input(0, configLen)
	if !ok {
		return resultBadInput
	}
	if startFn == nil {
		return resultOK
	}
	defer recoverTo("on_start", &r, resultPanic)
	startFn(string(b))
	return resultOK
}

func handleHandshake(reqLen uint32) (r int32) {
	b, ok := input(0, reqLen)
	if !ok {
		return 400
	}
	if handshakeFn == nil {
		return resultOK
	}
	h, ok := parseHandshake(b)
	if !ok {
		return 400
	}
	defer recoverTo("on_handshake", &r, 500)
	return int32(handshakeFn(h))
}

func handleConnect(idLen uint32) (r int32) {
	return handleClient("on_connect", connectFn, idLen)
}

func handleClose(idLen uint32) (r int32) {
	return handleClient("on_close", closeFn, idLen)
}

func handleClient(event string, f func(Client), idLen uint32) (r int32) {
	b, ok := input(0, idLen)
	if !ok {
		return resultBadInput
	}
	if f == nil {
		return resultOK
	}
	defer recoverTo(event, &r, resultPanic)
	f(Client{ID: idString(b)})
	return resultOK
}

func handleMessage(idLen, msgLen, flags uint32) (r int32) {
	id, ok1 := input(0, idLen)
	msg, ok2 := input(idLen, msgLen)
	if !ok1 || !ok2 {
		return resultBadInput
	}
	if messageFn == nil {
		return resultOK
	}
	defer recoverTo("on_message", &r, resultPanic)
	messageFn(Client{ID: idString(id), binary: flags&uint32(FlagBinary) != 0}, msg)
	return resultOK
}

// recoverTo, deferred, turns a panic in a callback into a logged error and
// the event result code.
func recoverTo(event string, r *int32, code int32) {
	v := recover()
	if v == nil {
		return
	}
	Log(LevelError, "panic in "+event+" callback: "+panicText(v))
	*r = code
}

// panicText describes a recovered panic value without fmt.
func panicText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	case interface{ String() string }:
		return v.String()
	}
	return "non-string value"
}
