package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A minimal client side of RFC 6455 for the cluster phase's epoll reader
// (cluster_epoll_linux.go): it parses what a server sends (unmasked
// frames, no extensions) from bytes read with read(2), so that 3,000
// members cost the load generator a few goroutines and no per-member
// bufio or websocket.Conn. It answers nothing itself: its owner writes the
// pongs (wsPong).

// WebSocket opcodes.
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// wsFrame is one frame a server sent; payload aliases the parsed bytes.
type wsFrame struct {
	fin     bool
	opcode  byte
	payload []byte
}

// errWSClosed is the end of a stream on a close frame.
var errWSClosed = errors.New("websocket: close frame")

// parseServerFrame parses the frame at the start of b. It returns the
// frame and the bytes it took, or n == 0 and no error while b holds only
// part of it. A frame a server may not send (masked, reserved bits without
// an extension, an unknown opcode, a fragmented or long control frame, a
// payload over maxPayload) is an error.
func parseServerFrame(b []byte, maxPayload int) (f wsFrame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	f.fin, f.opcode = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		return f, 0, fmt.Errorf("websocket: reserved bits %#x set", b[0]&0x70)
	}
	switch f.opcode {
	case wsContinuation, wsText, wsBinary, wsClose, wsPing, wsPong:
	default:
		return f, 0, fmt.Errorf("websocket: unknown opcode %#x", f.opcode)
	}
	if b[1]&0x80 != 0 {
		return f, 0, errors.New("websocket: the server masked a frame")
	}
	length, head := uint64(b[1]&0x7f), 2
	switch length {
	case 126:
		if len(b) < 4 {
			return f, 0, nil
		}
		length, head = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return f, 0, nil
		}
		length, head = binary.BigEndian.Uint64(b[2:]), 10
		if length>>63 != 0 {
			return f, 0, errors.New("websocket: 64-bit length with its top bit set")
		}
	}
	if f.opcode >= wsClose && (!f.fin || length > 125) {
		return f, 0, fmt.Errorf("websocket: control frame %#x fragmented or longer than 125 bytes (%d)", f.opcode, length)
	}
	if length > uint64(maxPayload) {
		return f, 0, fmt.Errorf("websocket: frame of %d bytes, over the reader's %d", length, maxPayload)
	}
	if uint64(len(b)-head) < length {
		return f, 0, nil
	}
	end := head + int(length)
	f.payload = b[head:end:end]
	return f, end, nil
}

// wsSink takes what a wsStream parses.
type wsSink interface {
	// message is one whole text or binary message; p is valid only
	// during the call.
	message(p []byte)
	// ping is a ping's payload, to be answered with a pong.
	ping(p []byte) error
}

// wsStream is one connection's bytes read and not yet parsed, and the
// message being reassembled from fragments.
type wsStream struct {
	buf        []byte // buf[:len] read and not yet parsed
	frag       []byte // the fragments so far of a message in progress
	inMessage  bool
	maxPayload int
}

// wsStreamBuf is a member's first buffer: a few of the bench's messages.
const wsStreamBuf = 512

// space is where the next read(2) goes: the free end of buf, grown when a
// pending frame fills it.
func (s *wsStream) space() []byte {
	if s.buf == nil {
		s.buf = make([]byte, 0, wsStreamBuf)
	}
	if len(s.buf) == cap(s.buf) {
		s.buf = append(s.buf, make([]byte, cap(s.buf))...)[:len(s.buf)]
	}
	return s.buf[len(s.buf):cap(s.buf)]
}

// advance records n bytes read into space() and hands every whole frame
// to sink; what is left of a partial frame moves to the front of buf. It
// returns errWSClosed on a close frame, or the protocol error.
func (s *wsStream) advance(n int, sink wsSink) error {
	s.buf = s.buf[:len(s.buf)+n]
	rest := s.buf
	defer func() {
		if len(rest) < len(s.buf) {
			s.buf = s.buf[:copy(s.buf, rest)]
		}
	}()
	for {
		f, used, err := parseServerFrame(rest, s.maxPayload)
		if err != nil {
			return err
		}
		if used == 0 {
			return nil
		}
		rest = rest[used:]
		switch f.opcode {
		case wsClose:
			return errWSClosed
		case wsPing:
			if err := sink.ping(f.payload); err != nil {
				return err
			}
		case wsPong:
		case wsText, wsBinary:
			if s.inMessage {
				return errors.New("websocket: a new message inside a fragmented one")
			}
			if f.fin {
				sink.message(f.payload)
				continue
			}
			s.inMessage, s.frag = true, append(s.frag[:0], f.payload...)
		case wsContinuation:
			if !s.inMessage {
				return errors.New("websocket: a continuation frame outside a message")
			}
			if len(s.frag)+len(f.payload) > s.maxPayload {
				return fmt.Errorf("websocket: fragmented message over the reader's %d bytes", s.maxPayload)
			}
			s.frag = append(s.frag, f.payload...)
			if f.fin {
				s.inMessage = false
				sink.message(s.frag)
			}
		}
	}
}

// wsPongFrame appends to dst the masked pong a client sends for a ping's
// payload p (at most 125 bytes: parseServerFrame refuses longer pings).
func wsPongFrame(dst, p []byte, key [4]byte) []byte {
	dst = append(dst, 0x80|wsPong, 0x80|byte(len(p)))
	dst = append(dst, key[:]...)
	for i, c := range p {
		dst = append(dst, c^key[i&3])
	}
	return dst
}

// parseDigits is strconv.ParseInt of a non-negative decimal without the
// string conversion; ok is false for anything else.
func parseDigits(p []byte) (n int64, ok bool) {
	if len(p) == 0 || len(p) > 18 {
		return 0, false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
