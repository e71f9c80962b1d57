package transport

import (
	"bytes"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// The shallow wait (idle.go) reads the socket itself between messages.
// These tests drive it over a real upgraded loopback connection, as a
// client would, and check that nothing is lost or hangs: a close or reset
// right behind a heartbeat, a whole message right before a reset, a ping's
// pong, a flood of pings against a Close, and the move to a fresh
// goroutine.

// idleConn upgrades a loopback client and returns its socket and the
// server side's Conn.
func idleConn(t *testing.T) (*net.TCPConn, *Conn) {
	t.Helper()
	addr, conns := upgradeServer(t)
	cl, ws := dialUpgrade(t, addr, conns, nil)
	c := NewConn("c1", "m", ws, &Options{Messages: 100, Bytes: 1 << 20, WriteTimeout: 5 * time.Second})
	if c.rr == nil {
		t.Skip("no raw reader on this system")
	}
	return cl.(*net.TCPConn), c
}

// readLoop runs c's reader; ended closes when done runs, ends counts its
// calls, msgs gets the messages.
func readLoop(c *Conn) (ended chan struct{}, ends *atomic.Int32, msgs chan string) {
	ended, ends, msgs = make(chan struct{}), new(atomic.Int32), make(chan string, 100)
	go c.ReadLoop(func(m abi.Message) { msgs <- string(m.Data) }, func() {
		if ends.Add(1) == 1 {
			close(ended)
		}
	})
	return ended, ends, msgs
}

func waitEnded(t *testing.T, ended chan struct{}, what string) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("%s: the reader did not end within 5 s", what)
	}
}

// controlThenMessages is a ping, a pong and two text messages (the second
// longer than the 24 bytes of a first read) in one write: the messages
// must come out in order (controlThenMessagesWant) behind the control
// frames of the same read.
func controlThenMessages() []byte {
	b := append(maskedFrame(0x9, ""), maskedFrame(0xA, "")...)
	b = append(b, maskedText(controlThenMessagesWant[0])...)
	return append(b, maskedText(controlThenMessagesWant[1])...)
}

var controlThenMessagesWant = []string{"b", "cdefghijklmnopqrstuvwxyz0123456789"}

// expectMessages waits for wants on msgs, in order; what names the case
// in a failure.
func expectMessages(t *testing.T, msgs chan string, what string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		select {
		case m := <-msgs:
			if m != want {
				t.Fatalf("%s: message %q, want %q", what, m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no message %q within 5 s", what, want)
		}
	}
}

// maskedFrame is a client frame (final, masked) of opcode op.
func maskedFrame(op byte, payload string) []byte {
	f := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i := range len(payload) {
		f = append(f, payload[i]^byte(i%4+1))
	}
	return f
}

// A pong followed by the client's close (FIN) in the same segment: the
// close raises no readiness of its own, so a wait after the pong alone
// would never end.
func TestShallowWait_PongThenCloseEndsReader(t *testing.T) {
	for i := range 10 {
		cl, c := idleConn(t)
		var ended chan struct{}
		if i%2 == 1 {
			ended, _, _ = readLoop(c)
			time.Sleep(20 * time.Millisecond) // the reader is parked first
		}
		_, _ = cl.Write(maskedFrame(0xA, ""))
		_ = cl.CloseWrite()
		if i%2 == 0 {
			time.Sleep(20 * time.Millisecond) // both are there before the first read
			ended, _, _ = readLoop(c)
		}
		waitEnded(t, ended, "pong then FIN")
	}
}

// A ping whose pong cannot be written (the client reset): the failed write
// closes the socket, which must not wait on the reader that read the ping.
func TestShallowWait_PingThenResetEndsReader(t *testing.T) {
	cl, c := idleConn(t)
	_, _ = cl.Write(maskedFrame(0x9, "hb"))
	_ = cl.SetLinger(0)
	_ = cl.Close()
	time.Sleep(50 * time.Millisecond)
	ended, _, _ := readLoop(c)
	waitEnded(t, ended, "ping then RST")
}

// A whole message that fills the first read exactly, then a reset: the
// message is delivered before the reader ends.
func TestShallowWait_MessageBeforeResetDelivered(t *testing.T) {
	cl, c := idleConn(t)
	msg := maskedText("abcdefghijklmnopqr") // 24 bytes: the size of small
	if len(msg) != len(c.rr.small) {
		t.Fatalf("frame of %d bytes, want %d", len(msg), len(c.rr.small))
	}
	_, _ = cl.Write(msg)
	_ = cl.SetLinger(0)
	_ = cl.Close()
	time.Sleep(50 * time.Millisecond)
	ended, _, msgs := readLoop(c)
	waitEnded(t, ended, "message then RST")
	select {
	case m := <-msgs:
		if m != "abcdefghijklmnopqr" {
			t.Fatalf("message %q", m)
		}
	default:
		t.Fatal("the client's last whole message was lost")
	}
}

// A ping read while waiting is answered with its payload.
func TestShallowWait_PingAnswered(t *testing.T) {
	cl, c := idleConn(t)
	readLoop(c)
	time.Sleep(20 * time.Millisecond)
	_, _ = cl.Write(maskedFrame(0x9, "payload"))
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 2+len("payload"))
	if _, err := io.ReadFull(cl, got); err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{0x8A, byte(len("payload"))}, "payload"...); !bytes.Equal(got, want) {
		t.Fatalf("answer % x, want % x", got, want)
	}
}

// A flood of pings and pongs does not keep a Close from ending the reader.
func TestShallowWait_ControlFloodDoesNotBlockDrop(t *testing.T) {
	cl, c := idleConn(t)
	ended, _, _ := readLoop(c)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// 8-byte frames: every read of 24 or 1,024 bytes ends on a frame
		// boundary, so every read is whole pongs.
		frames := bytes.Repeat(maskedFrame(0xA, "xx"), 128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := cl.Write(frames); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	c.Drop()
	waitEnded(t, ended, "Drop under a pong flood")
}

// A kicked reader moves to a fresh goroutine: later messages, with pings
// and pongs before them in the same read, arrive in order, and done runs
// once.
func TestShallowWait_KickMovesReaderOnce(t *testing.T) {
	cl, c := idleConn(t)
	ended, ends, msgs := readLoop(c)
	_, _ = cl.Write(maskedText("a"))
	if m := <-msgs; m != "a" {
		t.Fatalf("message %q", m)
	}
	kicked := false
	for range 50 {
		k, _ := c.sweep(c.opt.sweeps.Add(1), 0)
		kicked = kicked || k
		if kicked {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !kicked {
		t.Fatal("the sweep never kicked the idle reader")
	}
	_, _ = cl.Write(controlThenMessages())
	expectMessages(t, msgs, "after the kick", controlThenMessagesWant...)
	_ = cl.Close()
	waitEnded(t, ended, "close after the kick")
	time.Sleep(50 * time.Millisecond)
	if n := ends.Load(); n != 1 {
		t.Fatalf("done ran %d times, want 1", n)
	}
}
