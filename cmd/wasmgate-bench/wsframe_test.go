package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// serverFrame encodes a frame as a server sends it (unmasked).
func serverFrame(fin bool, opcode byte, p []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch {
	case len(p) <= 125:
		out = append(out, byte(len(p)))
	case len(p) <= 0xffff:
		out = append(out, 126)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
	default:
		out = append(out, 127)
		out = binary.BigEndian.AppendUint64(out, uint64(len(p)))
	}
	return append(out, p...)
}

// recorder is a wsSink that keeps what it got.
type recorder struct {
	messages [][]byte
	pings    [][]byte
}

func (r *recorder) message(p []byte) { r.messages = append(r.messages, bytes.Clone(p)) }
func (r *recorder) ping(p []byte) error {
	r.pings = append(r.pings, bytes.Clone(p))
	return nil
}

// feed gives s the bytes of in, chunk bytes per read(2) (at most what
// space offers), and returns the error that ended the stream (nil: in ran
// out).
func feed(s *wsStream, in []byte, chunk int, sink wsSink) error {
	for len(in) > 0 {
		sp := s.space()
		n := copy(sp[:min(len(sp), chunk)], in)
		in = in[n:]
		if err := s.advance(n, sink); err != nil {
			return err
		}
	}
	return nil
}

func TestWSStreamFrames(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)   // 16-bit length
	huge := bytes.Repeat([]byte("y"), 70000) // 64-bit length
	var in []byte
	in = append(in, serverFrame(true, wsText, []byte("12345"))...)
	in = append(in, serverFrame(true, wsText, long)...)
	in = append(in, serverFrame(false, wsText, []byte("frag"))...)
	in = append(in, serverFrame(true, wsPing, []byte("hb"))...) // a ping between fragments
	in = append(in, serverFrame(true, wsContinuation, []byte("ment"))...)
	in = append(in, serverFrame(true, wsBinary, huge)...)
	in = append(in, serverFrame(true, wsPong, nil)...)
	in = append(in, serverFrame(true, wsText, nil)...)
	in = append(in, serverFrame(true, wsClose, []byte{0x03, 0xe8})...)
	in = append(in, serverFrame(true, wsText, []byte("after close"))...)
	want := [][]byte{[]byte("12345"), long, []byte("fragment"), huge, {}}
	// 1 byte per read splits every header; the whole input at once puts
	// several frames in one read.
	for _, chunk := range []int{1, 2, 3, 7, 126, 1 << 20} {
		var s wsStream
		s.maxPayload = 1 << 20
		var r recorder
		if err := feed(&s, in, chunk, &r); !errors.Is(err, errWSClosed) {
			t.Fatalf("chunk %d: ended with %v, want the close frame", chunk, err)
		}
		if !slices.EqualFunc(r.messages, want, bytes.Equal) {
			t.Fatalf("chunk %d: %d messages, want %d", chunk, len(r.messages), len(want))
		}
		if len(r.pings) != 1 || string(r.pings[0]) != "hb" {
			t.Fatalf("chunk %d: pings %q", chunk, r.pings)
		}
	}
}

func TestParseServerFrameRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"masked", []byte{0x81, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'}},
		{"reserved bit", []byte{0xc1, 0x00}},
		{"unknown opcode", []byte{0x83, 0x00}},
		{"fragmented ping", []byte{0x09, 0x00}},
		{"long close", append([]byte{0x88, 126, 0, 126}, make([]byte, 126)...)},
		{"64-bit top bit", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}},
		{"over the limit", []byte{0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 1}},
	} {
		if _, _, err := parseServerFrame(tc.in, 1<<20); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// Partial headers are not errors: more bytes are needed.
	for _, in := range [][]byte{{}, {0x81}, {0x81, 126, 1}, {0x82, 127, 0, 0, 0}, {0x81, 5, 'a'}} {
		if _, n, err := parseServerFrame(in, 1<<20); n != 0 || err != nil {
			t.Errorf("% x: n=%d err=%v, want more bytes needed", in, n, err)
		}
	}
	var s wsStream
	s.maxPayload = 1 << 20
	var r recorder
	if err := feed(&s, serverFrame(true, wsContinuation, []byte("x")), 64, &r); err == nil {
		t.Error("a continuation outside a message: no error")
	}
}

func TestWSPongFrame(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	got := wsPongFrame(nil, []byte("hb"), key)
	want := []byte{0x8a, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'b' ^ 2}
	if !bytes.Equal(got, want) {
		t.Fatalf("pong % x, want % x", got, want)
	}
}

func TestParseDigits(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1234567890123": 1234567890123} {
		if n, ok := parseDigits([]byte(in)); !ok || n != want {
			t.Errorf("%q: %d %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "-1", "12a", "burst", "1234567890123456789"} {
		if _, ok := parseDigits([]byte(in)); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzWSStream feeds arbitrary bytes to a wsStream whole and in chunks:
// no panic, and the same messages, pings and ending either way.
func FuzzWSStream(f *testing.F) {
	f.Add(serverFrame(true, wsText, []byte("12345")), uint8(1))
	f.Add(append(serverFrame(false, wsText, []byte("a")), serverFrame(true, wsContinuation, bytes.Repeat([]byte("b"), 200))...), uint8(3))
	f.Add(append(serverFrame(true, wsPing, []byte("p")), serverFrame(true, wsClose, nil)...), uint8(2))
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 0, 2, 0}, uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		run := func(chunk int) (recorder, string) {
			s := wsStream{maxPayload: 4096}
			var r recorder
			err := feed(&s, in, chunk, &r)
			end := "more"
			if err != nil {
				end = err.Error()
			}
			return r, end
		}
		whole, endWhole := run(len(in) + 1)
		split, endSplit := run(int(chunk%64) + 1)
		if endWhole != endSplit {
			t.Fatalf("ending: whole %q, in chunks of %d %q", endWhole, chunk%64+1, endSplit)
		}
		if !slices.EqualFunc(whole.messages, split.messages, bytes.Equal) || !slices.EqualFunc(whole.pings, split.pings, bytes.Equal) {
			t.Fatalf("whole and in chunks of %d differ: %d/%d messages, %d/%d pings", chunk%64+1,
				len(whole.messages), len(split.messages), len(whole.pings), len(split.pings))
		}
	})
}
