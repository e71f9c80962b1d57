package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// chunkConn returns data in reads of at most size bytes.
type chunkConn struct {
	net.Conn
	data []byte
	size int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// FuzzFrameGuard builds a stream of frames from spec (two bytes a frame:
// opcode and flags, then a length code), feeds it through frameGuard in
// reads of chunk+1 bytes, and checks that the guard stops exactly at the
// first close frame with a 1-byte payload, and nowhere else.
func FuzzFrameGuard(f *testing.F) {
	f.Add([]byte{0x81, 5, 0x88, 1}, uint8(0))
	f.Add([]byte{0x82, 200, 0x89, 3, 0x88, 2}, uint8(6))
	f.Add([]byte{0x01, 201, 0x80, 7, 0x88, 129}, uint8(255))
	f.Fuzz(func(t *testing.T, spec []byte, chunk uint8) {
		var stream []byte
		bad, badHdr := -1, 0
		for i := 0; i+1 < len(spec) && len(stream) < 1<<20; i += 2 {
			first, code := spec[i], spec[i+1]
			n := int(code & 0x7f)
			switch {
			case n == 126:
				n = 300 // 16-bit length
			case n == 127:
				n = 70_000 // 64-bit length
			}
			masked := code&0x80 != 0
			h := []byte{first&0x8f | 0x80, 0}
			switch {
			case n < 126:
				h[1] = byte(n)
			case n < 1<<16:
				h[1] = 126
				h = binary.BigEndian.AppendUint16(h, uint16(n))
			default:
				h[1] = 127
				h = binary.BigEndian.AppendUint64(h, uint64(n))
			}
			if masked {
				h[1] |= 0x80
				h = append(h, 1, 2, 3, 4)
			}
			if bad < 0 && first&0x0f == 0x8 && n == 1 {
				bad, badHdr = len(stream), len(h)
			}
			stream = append(stream, h...)
			stream = append(stream, make([]byte, n)...)
		}
		g := &frameGuard{Conn: &chunkConn{data: stream, size: int(chunk) + 1}}
		delivered := 0
		buf := make([]byte, 4096)
		var err error
		for err == nil {
			var n int
			n, err = g.Read(buf)
			delivered += n
		}
		if bad < 0 {
			if err != io.EOF || delivered != len(stream) {
				t.Fatalf("no short close in the stream, yet %v after %d of %d bytes", err, delivered, len(stream))
			}
			return
		}
		// The guard may have let part of the bad frame's header through in
		// an earlier read, never the whole of it.
		if !errors.Is(err, errShortClose) || delivered < bad || delivered >= bad+badHdr {
			t.Fatalf("short close at %d (header %d): got %v after %d bytes", bad, badHdr, err, delivered)
		}
	})
}

// BenchmarkFrameGuardScan is frameGuard's cost on the echo benchmark's
// traffic: 64-byte masked binary frames, read 1 KiB at a time (the
// websocket reader's buffer).
func BenchmarkFrameGuardScan(b *testing.B) {
	var stream []byte
	for len(stream) < 1<<20 {
		stream = append(stream, 0x82, 0x80|64, 1, 2, 3, 4)
		stream = append(stream, make([]byte, 64)...)
	}
	g := &frameGuard{}
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	for range b.N {
		for off := 0; off < len(stream); off += 1024 {
			if at, _ := g.scan(stream[off:min(off+1024, len(stream))]); at >= 0 {
				b.Fatal("false positive")
			}
		}
	}
}
