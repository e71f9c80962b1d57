//go:build linux

package transport

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// The Poller (poller_linux.go): a client idle for a sweep period is parked
// with no reader goroutine; the Poller answers its pings, counts its
// pongs, and starts a reader again for anything else or for a waker.
// These tests drive it over real upgraded loopback connections.

// polledConn is idleConn with a Poller.
func polledConn(t *testing.T, p *Poller) (*net.TCPConn, *Conn) {
	t.Helper()
	addr, conns := upgradeServer(t)
	cl, ws := dialUpgrade(t, addr, conns, nil)
	opt := &Options{Messages: 100, Bytes: 1 << 20, WriteTimeout: 5 * time.Second, IdleTimeout: time.Hour, SweepEvery: time.Second, Poller: p}
	c := NewConn("c1", "m", ws, opt)
	return cl.(*net.TCPConn), c
}

func newTestPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// readers counts the goroutines running a ReadLoop (of any client).
func readers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "transport.(*Conn).ReadLoop") {
			n++
		}
	}
	return n
}

// parkIt sweeps until c's reader has parked it.
func parkIt(t *testing.T, c *Conn) {
	t.Helper()
	for range 500 {
		c.sweep(c.opt.sweeps.Add(1), 0)
		c.mu.Lock()
		polled := c.polled
		c.mu.Unlock()
		if polled {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the sweep never parked the idle client")
}

// A parked client has no reader goroutine; its pings are answered and its
// pongs counted with none started; a message starts one, in order behind
// the pings and pongs of the same read; done runs once.
func TestPoller_ParkedClientHasNoGoroutine(t *testing.T) {
	p := newTestPoller(t)
	cl, c := polledConn(t, p)
	base := readers()
	ended, ends, msgs := readLoop(c)
	_, _ = cl.Write(maskedText("a"))
	if m := <-msgs; m != "a" {
		t.Fatalf("message %q", m)
	}
	parkIt(t, c)
	waitFor(t, "the reader ends once parked", func() bool { return readers() == base })

	// A ping: answered by the Poller, the client stays parked.
	_, _ = cl.Write(maskedFrame(0x9, "hb"))
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(cl, got); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x8A, 2, 'h', 'b'}; !bytes.Equal(got, want) {
		t.Fatalf("answer % x, want % x", got, want)
	}
	// A pong: the client is heard from.
	now := c.opt.sweeps.Add(5)
	_, _ = cl.Write(maskedFrame(0xA, ""))
	waitFor(t, "the pong counts as heard from", func() bool { return c.lastSeen.Load() == now })
	if n := readers(); n != base {
		t.Fatalf("%d reader goroutines after a ping and a pong to a parked client, want %d", n, base)
	}
	c.mu.Lock()
	polled := c.polled
	c.mu.Unlock()
	if !polled {
		t.Fatal("the client left the Poller for a ping and a pong")
	}

	_, _ = cl.Write(controlThenMessages())
	expectMessages(t, msgs, "from the parked client", controlThenMessagesWant...)
	parkIt(t, c) // again, after a message
	_ = cl.Close()
	waitEnded(t, ended, "close of a parked client")
	time.Sleep(50 * time.Millisecond)
	if n := ends.Load(); n != 1 {
		t.Fatalf("done ran %d times, want 1", n)
	}
	if c.pslot != -1 {
		t.Fatalf("slot %d kept after the end", c.pslot)
	}
}

// Whatever ends a client from the server's side reaches a parked client,
// which has no reader to see it: Abort, Drop, a graceful Close (its reader
// must wait for the close reply), the idle expiry, the Poller's Close.
func TestPoller_WakersEndParkedClient(t *testing.T) {
	cases := []struct {
		name string
		end  func(c *Conn, cl net.Conn, p *Poller)
	}{
		{"Abort", func(c *Conn, _ net.Conn, _ *Poller) { c.Abort() }},
		{"Drop", func(c *Conn, _ net.Conn, _ *Poller) { c.Drop() }},
		{"Close answered", func(c *Conn, cl net.Conn, _ *Poller) {
			_ = c.Close(nil, websocket.CloseGoingAway, "bye")
			// The client reads the close frame and answers it.
			got := make([]byte, 7)
			_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(cl, got); err == nil && got[0] == 0x88 {
				_, _ = cl.Write(maskedFrame(0x8, string(got[2:4])))
			}
		}},
		{"Close unanswered", func(c *Conn, _ net.Conn, _ *Poller) { _ = c.Close(nil, websocket.CloseGoingAway, "") }},
		{"idle expiry", func(c *Conn, _ net.Conn, _ *Poller) {
			if _, expired := c.sweep(c.opt.sweeps.Add(10), 2); !expired {
				panic("not expired")
			}
		}},
		{"Poller Close", func(c *Conn, _ net.Conn, p *Poller) { p.Close(); c.Drop() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPoller(t)
			cl, c := polledConn(t, p)
			ended, ends, _ := readLoop(c)
			parkIt(t, c)
			tc.end(c, cl, p)
			waitEnded(t, ended, tc.name)
			time.Sleep(20 * time.Millisecond)
			if n := ends.Load(); n != 1 {
				t.Fatalf("done ran %d times, want 1", n)
			}
		})
	}
}

// One parked client flooding pongs and pings (and never reading the
// pongs) does not keep the Poller from the others: a parked canary's
// pings are answered throughout.
func TestPoller_FloodDoesNotStarveOthers(t *testing.T) {
	p := newTestPoller(t)
	fl, f := polledConn(t, p)
	cl, c := polledConn(t, p)
	readLoop(f)
	readLoop(c)
	parkIt(t, f)
	parkIt(t, c)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		frames := bytes.Repeat(append(maskedFrame(0xA, "xx"), maskedFrame(0x9, "")...), 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := fl.Write(frames); err != nil {
				return
			}
		}
	}()
	var worst time.Duration
	for range 20 {
		t0 := time.Now()
		_, _ = cl.Write(maskedFrame(0x9, "c"))
		_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 3)
		if _, err := io.ReadFull(cl, got); err != nil {
			t.Fatalf("canary's ping under the flood: %v", err)
		}
		worst = max(worst, time.Since(t0))
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("canary's worst ping round trip under the flood: %v", worst)
}

// More pings and pongs than the Poller reads in one turn (maxStripPasses),
// then a message, in one write: nothing more arrives after it, so only
// the Poller's own poke of a socket it left bytes in gets the message
// read (an edge-triggered set raises no event for bytes already there).
func TestPoller_LongControlBurstThenMessage(t *testing.T) {
	p := newTestPoller(t)
	cl, c := polledConn(t, p)
	_, _, msgs := readLoop(c)
	parkIt(t, c)
	// 8-byte pongs: every read (24 bytes, then 1,024) ends on a frame
	// boundary, so no read leaves a split frame to a reader.
	burst := bytes.Repeat(maskedFrame(0xA, "xx"), 3*maxStripPasses*readBufferSize/8)
	burst = append(burst, maskedText("after")...)
	_, _ = cl.Write(burst)
	expectMessages(t, msgs, "behind a long burst of pongs", "after")
}

// A message sent as the sweep parks the client (between the reader's last
// read and its registration) is read: registering a socket reports what
// it already holds.
func TestPoller_MessageRacingThePark(t *testing.T) {
	p := newTestPoller(t)
	for i := range 40 {
		cl, c := polledConn(t, p)
		_, _, msgs := readLoop(c)
		time.Sleep(5 * time.Millisecond) // the reader waits
		c.sweep(c.opt.sweeps.Add(1), 0)
		c.sweep(c.opt.sweeps.Add(1), 0) // parks (kicks) the reader
		if i%2 == 1 {
			time.Sleep(time.Duration(i%5) * 50 * time.Microsecond)
		}
		_, _ = cl.Write(maskedText("x"))
		select {
		case <-msgs:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the message sent as the client parked was never read", i)
		}
		_ = cl.Close()
	}
}
