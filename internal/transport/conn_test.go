package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// Transport tests: a conn on the server end of a real loopback TCP
// connection, and a raw peer on the other end that parses every byte the
// server writes, so that a frame split, interleaved or written after the
// close frame is seen as such (a websocket client library would hide it).

// pair is a conn and the raw peer connected to it.
type pair struct {
	c    *Conn
	p    *peer
	done chan struct{} // closed when the conn's reader has ended and its writer let go
}

// newPair connects a conn with lim to a raw peer. raw=false takes the
// portable path (no direct writes) on Linux too. The server socket gets a
// small send buffer and the peer a small receive buffer, so that direct
// writes are taken in part and the writer goroutine blocks.
func newPair(t *testing.T, lim *Options, raw bool) *pair {
	t.Helper()
	upgraded := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		upgraded <- ws
	}))
	t.Cleanup(hs.Close)
	nc, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	p := &peer{t: t, nc: nc, r: bufio.NewReader(nc)}
	t.Cleanup(func() { nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(p.r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	var ws *websocket.Conn
	select {
	case ws = <-upgraded:
	case <-time.After(10 * time.Second):
		t.Fatal("no upgrade within 10s")
	}
	_ = ws.NetConn().(*net.TCPConn).SetWriteBuffer(32 << 10)
	c := NewConn("c1", "", ws, lim)
	if !raw {
		c.raw = nil
	}
	pr := &pair{c: c, p: p, done: make(chan struct{})}
	// The reader, as Server.readConn runs it: control frames reach the
	// conn through the handlers NewConn installed.
	go func() {
		defer close(pr.done)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				break
			}
		}
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		_ = ws.Close()
		c.writer.Wait()
	}()
	t.Cleanup(func() {
		nc.Close()
		select {
		case <-pr.done:
		case <-time.After(20 * time.Second):
			t.Error("the conn's reader or writer did not end within 20s of the peer closing")
		}
	})
	return pr
}

// peer is the client end: it reads raw frames and writes masked ones.
type peer struct {
	t   *testing.T
	nc  net.Conn
	r   *bufio.Reader
	wmu sync.Mutex
}

type rawFrame struct {
	op      byte
	payload []byte
}

// readFrame reads one frame and checks what every server frame must be:
// final (the server never fragments), no RSV bits, unmasked.
func (p *peer) readFrame() (rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(p.r, h[:]); err != nil {
		return rawFrame{}, err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		return rawFrame{}, fmt.Errorf("bad frame header % x", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(p.r, l[:]); err != nil {
			return rawFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(p.r, l[:]); err != nil {
			return rawFrame{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return rawFrame{}, fmt.Errorf("frame length %d: the stream is out of step", n)
	}
	f := rawFrame{op: h[0] & 0x0f, payload: make([]byte, n)}
	_, err := io.ReadFull(p.r, f.payload)
	return f, err
}

// writeFrame writes a masked client frame.
func (p *peer) writeFrame(op byte, payload []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	key := [4]byte{1, 2, 3, 4}
	b := []byte{0x80 | op, 0x80 | byte(len(payload))} // control frames and small messages only
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	_ = p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := p.nc.Write(b)
	return err
}

// expectEOF checks that nothing follows the close frame.
func (p *peer) expectEOF() {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(p.r)
	if len(rest) > 0 {
		p.t.Fatalf("%d bytes after the close frame: % x…", len(rest), rest[:min(len(rest), 16)])
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		p.t.Fatalf("after the close frame: %v, want EOF", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func closeCode(f rawFrame) (int, string) {
	if len(f.payload) < 2 {
		return websocket.CloseNoStatusReceived, ""
	}
	return int(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
}

var strategies = []struct {
	name string
	raw  bool
}{{"raw", true}, {"portable", false}}

// TestConn_ByteBoundClosesSlowConsumerWithCloseFrame fills a non-reading
// peer with 10 KB messages: the conn must refuse them with ErrnoQueueFull
// once send_queue_bytes is held, drop its queue at once (its memory is
// what the bound is for), and when the peer reads again deliver whole
// messages in order, then a 1008 close frame, then nothing.
func TestConn_ByteBoundClosesSlowConsumerWithCloseFrame(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			const limit, size = 64 << 10, 10_000
			pr := newPair(t, &Options{Messages: 100_000, Bytes: limit, WriteTimeout: 30 * time.Second}, st.raw)
			accepted := 0
			for {
				msg := abi.Message{Data: bytes.Repeat([]byte{byte('a' + accepted%26)}, size)}
				err := pr.c.sendNow(msg, true)
				if errors.Is(err, abi.ErrnoQueueFull) {
					break
				}
				if err != nil {
					t.Fatalf("send %d: %v", accepted, err)
				}
				accepted++
				if accepted > 100_000 {
					t.Fatal("a peer that does not read took 1 GB: no byte bound")
				}
			}
			pr.c.mu.Lock()
			queued, held := len(pr.c.queue), pr.c.queuedBytes
			pr.c.mu.Unlock()
			if queued != 0 || held != 0 {
				t.Errorf("after overflow the queue holds %d messages, %d bytes; want it dropped", queued, held)
			}
			if err := pr.c.enqueue(abi.Message{Data: []byte("late")}, false); !errors.Is(err, abi.ErrnoNotFound) {
				t.Errorf("send after overflow: %v, want ErrnoNotFound", err)
			}
			_ = pr.p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			for n := 0; ; n++ {
				f, err := pr.p.readFrame()
				if err != nil {
					t.Fatalf("after %d of %d accepted messages: %v (want a close frame)", n, accepted, err)
				}
				if f.op == websocket.CloseMessage {
					if code, reason := closeCode(f); code != websocket.ClosePolicyViolation || reason != slowConsumer {
						t.Fatalf("close %d %q, want 1008 %q", code, reason, slowConsumer)
					}
					t.Logf("%d messages of %d bytes accepted, %d delivered before the close frame", accepted, size, n)
					break
				}
				if n >= accepted || f.op != websocket.TextMessage || !bytes.Equal(f.payload, bytes.Repeat([]byte{byte('a' + n%26)}, size)) {
					t.Fatalf("frame %d: op %d, %d bytes %.8q", n, f.op, len(f.payload), f.payload)
				}
			}
			_ = pr.p.writeFrame(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""))
			pr.p.expectEOF()
		})
	}
}

// TestConn_IdleClientTakesOneMessageOverTheByteBound: the byte bound
// limits a backlog, not the message size (max_message_size does that).
func TestConn_IdleClientTakesOneMessageOverTheByteBound(t *testing.T) {
	pr := newPair(t, &Options{Messages: 10, Bytes: 1 << 10, WriteTimeout: 30 * time.Second}, true)
	big := bytes.Repeat([]byte("b"), 4<<10)
	if err := pr.c.enqueue(abi.Message{Data: big, Binary: true}, false); err != nil {
		t.Fatalf("4 KiB to an idle client under a 1 KiB bound: %v", err)
	}
	_ = pr.p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	f, err := pr.p.readFrame()
	if err != nil || f.op != websocket.BinaryMessage || !bytes.Equal(f.payload, big) {
		t.Fatalf("got op %d, %d bytes, %v", f.op, len(f.payload), err)
	}
}

// TestConn_CloseFollowsQueueThenNothing: close(final) delivers what was
// queued, the final message, the close frame, and nothing after it; a
// send after close is refused.
func TestConn_CloseFollowsQueueThenNothing(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			pr := newPair(t, &Options{Messages: 100, Bytes: 1 << 20, WriteTimeout: 30 * time.Second}, st.raw)
			for i := range 5 {
				if err := pr.c.sendNow(abi.Message{Data: []byte("m" + strconv.Itoa(i))}, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := pr.c.Close(&abi.Message{Data: []byte("final")}, closeNormal, "bye"); err != nil {
				t.Fatal(err)
			}
			if err := pr.c.sendNow(abi.Message{Data: []byte("late")}, false); !errors.Is(err, abi.ErrnoNotFound) {
				t.Errorf("send after close: %v, want ErrnoNotFound", err)
			}
			if err := pr.c.Close(nil, closeNormal, ""); !errors.Is(err, abi.ErrnoNotFound) {
				t.Errorf("second close: %v, want ErrnoNotFound", err)
			}
			_ = pr.p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			for _, want := range []string{"m0", "m1", "m2", "m3", "m4", "final"} {
				f, err := pr.p.readFrame()
				if err != nil || f.op != websocket.TextMessage || string(f.payload) != want {
					t.Fatalf("got op %d %q (%v), want %q", f.op, f.payload, err, want)
				}
			}
			f, err := pr.p.readFrame()
			if code, reason := closeCode(f); err != nil || f.op != websocket.CloseMessage || code != closeNormal || reason != "bye" {
				t.Fatalf("got op %d %q (%v), want close 1000 bye", f.op, f.payload, err)
			}
			_ = pr.p.writeFrame(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, ""))
			pr.p.expectEOF()
		})
	}
}

// TestConn_PeerCloseAndPingAnswered: a ping gets its pong with the same
// payload, and the peer's close is echoed, then the socket is closed.
func TestConn_PeerCloseAndPingAnswered(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			pr := newPair(t, &Options{Messages: 100, Bytes: 1 << 20, WriteTimeout: 30 * time.Second}, st.raw)
			_ = pr.p.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			if err := pr.p.writeFrame(websocket.PingMessage, []byte("p1")); err != nil {
				t.Fatal(err)
			}
			if f, err := pr.p.readFrame(); err != nil || f.op != websocket.PongMessage || string(f.payload) != "p1" {
				t.Fatalf("got op %d %q (%v), want pong p1", f.op, f.payload, err)
			}
			if err := pr.p.writeFrame(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "")); err != nil {
				t.Fatal(err)
			}
			f, err := pr.p.readFrame()
			if code, _ := closeCode(f); err != nil || f.op != websocket.CloseMessage || code != 4001 {
				t.Fatalf("got op %d %q (%v), want close 4001", f.op, f.payload, err)
			}
			pr.p.expectEOF()
		})
	}
}

// hammerPayload is message seq of sender s: its own prefix, and a body
// whose size cycles through the three ways a frame is written (small,
// 16-bit length, larger than bigPayload: writev).
func hammerPayload(s, seq int) []byte {
	p := []byte("S" + strconv.Itoa(s) + ":" + strconv.Itoa(seq) + ":")
	n := [...]int{0, 300, 20_000, 10}[seq%4]
	for i := range n {
		p = append(p, byte('a'+(s+seq+i)%26))
	}
	return p
}

// TestConn_Hammer sends from many goroutines at once through both
// strategies (sendNow, borrowed, with the sender scribbling over its
// buffer as soon as the call returns; enqueue), while the liveness sweep
// pings, the peer pings and reads slowly, then closes. Every frame must
// arrive whole, each sender's in order and none lost, every pong must echo
// a ping, and nothing may follow the close frame.
func TestConn_Hammer(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			const senders, perSender = 8, 200
			pr := newPair(t, &Options{Messages: 1 << 20, Bytes: 1 << 30, WriteTimeout: 30 * time.Second}, st.raw)
			c, p := pr.c, pr.p

			var pings sync.WaitGroup
			stopPings := make(chan struct{})
			pings.Go(func() { // the liveness sweep
				for {
					select {
					case <-stopPings:
						return
					case <-time.After(time.Millisecond):
						c.Ping()
					}
				}
			})
			pings.Go(func() { // the peer's pings, answered with pongs
				for i := 0; ; i++ {
					select {
					case <-stopPings:
						return
					case <-time.After(2 * time.Millisecond):
						if err := p.writeFrame(websocket.PingMessage, []byte("q"+strconv.Itoa(i))); err != nil {
							return
						}
					}
				}
			})

			// Each sender keeps at most window messages ahead of the peer,
			// so that the run alternates between an idle client (direct
			// writes), a backlog (the writer goroutine) and a full socket,
			// with pings in between, instead of one huge batch.
			const window = 24
			received := make([]atomic.Int64, senders)
			var stop atomic.Bool
			defer stop.Store(true)
			var sendersWG sync.WaitGroup
			for s := range senders {
				sendersWG.Go(func() {
					buf := make([]byte, 0, 32<<10)
					for seq := range perSender {
						for received[s].Load() < int64(seq-window) {
							if stop.Load() {
								return
							}
							runtime.Gosched()
						}
						var err error
						switch seq % 3 {
						case 0:
							buf = append(buf[:0], hammerPayload(s, seq)...)
							err = c.sendNow(abi.Message{Data: buf, Binary: seq%2 == 0}, true)
							for i := range buf { // borrowed: ours again once the call returns
								buf[i] = '#'
							}
						case 1:
							err = c.sendNow(abi.Message{Data: hammerPayload(s, seq), Binary: seq%2 == 0}, false)
						default:
							err = c.enqueue(abi.Message{Data: hammerPayload(s, seq), Binary: seq%2 == 0}, false)
						}
						if err != nil {
							t.Errorf("sender %d message %d: %v", s, seq, err)
							return
						}
					}
				})
			}
			closed := make(chan struct{})
			go func() {
				sendersWG.Wait()
				if err := c.Close(nil, closeNormal, "done"); err != nil {
					t.Errorf("close: %v", err)
				}
				close(closed)
			}()

			next := make([]int, senders)
			pongs := 0
			_ = p.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			for frames := 0; ; frames++ {
				if frames%256 == 0 {
					time.Sleep(time.Millisecond) // a slow reader: the socket fills, the writer blocks
				}
				f, err := p.readFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", frames, err)
				}
				switch f.op {
				case websocket.PingMessage:
					if len(f.payload) != 0 {
						t.Fatalf("server ping with payload %q", f.payload)
					}
					continue
				case websocket.PongMessage:
					if !bytes.HasPrefix(f.payload, []byte("q")) {
						t.Fatalf("pong %q echoes no ping", f.payload)
					}
					pongs++
					continue
				case websocket.CloseMessage:
					if code, reason := closeCode(f); code != closeNormal || reason != "done" {
						t.Fatalf("close %d %q, want 1000 done", code, reason)
					}
				case websocket.TextMessage, websocket.BinaryMessage:
					var s, seq int
					if _, err := fmt.Sscanf(string(f.payload), "S%d:%d:", &s, &seq); err != nil || s < 0 || s >= senders {
						t.Fatalf("frame %d: payload %.40q is no sender's", frames, f.payload)
					}
					if seq != next[s] {
						t.Fatalf("sender %d: message %d, want %d (lost or reordered)", s, seq, next[s])
					}
					if want := hammerPayload(s, seq); !bytes.Equal(f.payload, want) || (f.op == websocket.BinaryMessage) != (seq%2 == 0) {
						t.Fatalf("sender %d message %d: op %d, %d bytes %.40q…, want %d bytes", s, seq, f.op, len(f.payload), f.payload, len(want))
					}
					next[s]++
					received[s].Add(1)
					continue
				default:
					t.Fatalf("frame %d: opcode %d", frames, f.op)
				}
				break // the close frame
			}
			<-closed
			close(stopPings)
			pings.Wait()
			for s, n := range next {
				if n != perSender {
					t.Errorf("sender %d: %d of %d messages before the close frame", s, n, perSender)
				}
			}
			t.Logf("%d messages and %d pongs before the close frame", senders*perSender, pongs)
			_ = p.writeFrame(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, ""))
			p.expectEOF()
		})
	}
}
