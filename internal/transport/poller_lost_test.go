//go:build linux

package transport

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Lost wake-ups and leaks of the Poller that need the bytes a parked client
// sends to be all there when the Poller first looks at them (holdLoop).

// holdLoop stops p's loop until the returned release is called: a parked
// client of its own sends a pong and the loop, handling it, waits for that
// client's mutex, which the test holds. Whatever other parked clients are
// sent meanwhile is all in their sockets when the loop next looks at the
// epoll set, as if it arrived at once.
func holdLoop(t *testing.T, p *Poller) (release func()) {
	t.Helper()
	bl, b := polledConn(t, p)
	readLoop(b)
	parkIt(t, b)
	b.mu.Lock()
	release = sync.OnceFunc(b.mu.Unlock)
	t.Cleanup(release) // before the Poller's Close, which waits for the loop
	_, _ = bl.Write(maskedFrame(0xA, ""))
	waitFor(t, "the Poller's loop waiting for the held client", func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "(*Poller).take") && strings.Contains(g, "sync.(*Mutex).Lock") {
				return true
			}
		}
		return false
	})
	return release
}

// sockState is the TCP state (TCP_INFO) of c's socket and the bytes it
// holds unread.
func sockState(c *Conn) (state uint8, unread int) {
	_ = c.rr.rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = ti.State
		}
		unread, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return state, unread
}

const tcpCloseWait = 8 // include/net/tcp_states.h: the peer's FIN is in

// A pong then the client's FIN, both in before the Poller reads: the read
// that returns the pong takes the FIN too (the kernel stops at it), and no
// new event follows. The parked client must still end, not stay parked
// with its EOF unseen.
func TestPoller_PongThenFINEndsParkedClient(t *testing.T) {
	p := newTestPoller(t)
	cl, c := polledConn(t, p)
	ended, ends, _ := readLoop(c)
	parkIt(t, c)
	release := holdLoop(t, p)
	_, _ = cl.Write(maskedFrame(0xA, ""))
	_ = cl.CloseWrite()
	waitFor(t, "the FIN in the parked client's socket", func() bool {
		st, _ := sockState(c)
		return st == tcpCloseWait
	})
	release()
	waitEnded(t, ended, "pong then FIN to a parked client")
	if n := ends.Load(); n != 1 {
		t.Fatalf("done ran %d times, want 1", n)
	}
}

// More whole pings than one read takes (8-byte frames: every read ends on
// a frame boundary), then a message, all in before the Poller reads: the
// Poller answers the pings of its read and must look at the socket again,
// which raises no new event for the bytes it left there.
func TestPoller_PingBurstThenMessage(t *testing.T) {
	p := newTestPoller(t)
	cl, c := polledConn(t, p)
	_, _, msgs := readLoop(c)
	parkIt(t, c)
	go func() { _, _ = io.Copy(io.Discard, cl) }() // the pongs
	release := holdLoop(t, p)
	burst := bytes.Repeat(maskedFrame(0x9, "xx"), 3*readBufferSize/8)
	burst = append(burst, maskedText("after")...)
	_, _ = cl.Write(burst)
	waitFor(t, "the burst in the parked client's socket", func() bool {
		_, n := sockState(c)
		return n == len(burst)
	})
	release()
	expectMessages(t, msgs, "behind a burst of pings to a parked client", "after")
}

// A client that was parked once and is then ended by a bad message (here
// invalid UTF-8, failed by the reader rather than by NextReader) gives its
// Poller slot back: the slot holds the Conn, which would otherwise stay
// reachable from the Poller for good.
func TestPoller_BadMessageFreesSlot(t *testing.T) {
	p := newTestPoller(t)
	cl, c := polledConn(t, p)
	ended, _, _ := readLoop(c)
	parkIt(t, c)
	go func() { _, _ = io.Copy(io.Discard, cl) }() // the close frame, until the server closes
	_, _ = cl.Write(maskedText("\xff"))
	waitEnded(t, ended, "invalid UTF-8 from a parked client")
	c.mu.Lock()
	slot := c.pslot
	c.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, kept := range p.conns {
		if kept == c {
			t.Fatalf("the ended client still holds Poller slot %d (its pslot %d)", i, slot)
		}
	}
}
