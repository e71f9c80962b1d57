package main

// Goroutines of the `idle` subcommand: dialEach runs at most 64 dials at
// once, each in its own goroutine until its client is open (and, with
// -send-one, has its echo or gave up waiting). With -send-one every client
// then keeps one reader goroutine (heldClients.read) until its connection
// ends, and one goroutine reads stdin's commands; main waits for stdin to
// close or -hold to pass, then closes every client, which ends the readers.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fasthttp/websocket"
)

// perSourceIP bounds the connections opened from one loopback source
// address, well below the ephemeral port range.
const perSourceIP = 4000

// runIdle is the `idle` subcommand: it opens n WebSocket connections that
// never send anything, prints READY n, and holds them until stdin closes
// (or -hold passes).
//
// With -send-one (the hold phase) each client instead sends one small
// message and waits for its echo (up to echoWait) before READY, and keeps
// one reader goroutine that answers the server's pings (fasthttp/websocket
// answers a ping only inside a read) and notices a drop. A client that
// failed to connect or whose echo did not come is counted, not fatal (a
// busy machine can push a guest call past its event deadline). READY then
// reads
//
//	READY N elapsed_us=US failed=N noecho=N
//
// (N connected, US from the first dial to the last echo), and stdin takes
// commands, one per line, until it closes:
//
//	count    COUNT open=N dropped=N pings=N first_drop="…"
func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	addr := fs.String("addr", "", "HOST:PORT of the gateway")
	path := fs.String("path", "/echo", "route to connect to")
	n := fs.Int("n", 8000, "connections")
	hold := fs.Duration("hold", 3*time.Minute, "longest time to hold them")
	sendOne := fs.Bool("send-one", false, "each client sends one message, waits for its echo, then reads (answering pings) until the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *n < 1 {
		return errors.New("need -addr and -n ≥ 1")
	}
	if err := raiseFileLimit(*n + 64); err != nil {
		return err
	}
	var h *heldClients
	var after func(*websocket.Conn) error
	if *sendOne {
		h = &heldClients{}
		after = h.echoThenRead
	}
	start := time.Now()
	conns, err := openIdle("ws://"+*addr+*path, *n, after)
	elapsed := time.Since(start)
	defer func() {
		if h != nil {
			h.closing.Store(true) // the reads that end now are no drops
		}
		closeAll(conns)
	}()
	if h == nil {
		if err != nil {
			return err
		}
		fmt.Printf("READY %d\n", len(conns))
		waitStdin(*hold)
		return nil
	}
	if len(conns) == 0 {
		return err
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wasmgate-bench idle: %v\n", err)
	}
	if last := h.lastEcho.Load(); last > 0 {
		elapsed = time.Duration(last - start.UnixNano())
	}
	fmt.Printf("READY %d elapsed_us=%d failed=%d noecho=%d\n", len(conns), elapsed.Microseconds(), *n-len(conns), h.noEcho.Load())
	h.serveCommands(*hold)
	return nil
}

// raiseFileLimit makes sure this process may open need files, raising
// the soft RLIMIT_NOFILE up to the hard one if it is lower (Go does this
// at start on Linux; this names the problem when the hard limit is low).
func raiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur >= uint64(need) {
		return nil
	}
	if lim.Max < uint64(need) {
		return fmt.Errorf("%d connections need %d open files, the hard limit (ulimit -Hn) is %d", need-64, need, lim.Max)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", lim.Max, err)
	}
	return nil
}

// echoWait bounds the wait for a client's echo.
const echoWait = 10 * time.Second

// heldClients are -send-one's clients once open. Each has one goroutine
// (read) blocked in ReadMessage until its connection ends; the counters
// are written there and by the ping handler, which runs inside that read.
type heldClients struct {
	open, dropped, pings, noEcho atomic.Int64
	lastEcho                     atomic.Int64 // UnixNano of the latest first echo
	closing                      atomic.Bool  // set before this process closes them
	firstDrop                    atomic.Pointer[string]
}

// echoPayload is what each client sends once.
var echoPayload = []byte("wasmgate-hold-01")

// echoThenRead starts c's reader goroutine, sends one message on c and
// waits up to echoWait for its echo.
func (h *heldClients) echoThenRead(c *websocket.Conn) error {
	c.SetPingHandler(func(data string) error {
		h.pings.Add(1)
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil // as the library's default handler: not a reason to end the read
		}
		return err
	})
	echoed := make(chan struct{})
	h.open.Add(1)
	go h.read(c, echoed)
	if err := c.WriteMessage(websocket.BinaryMessage, echoPayload); err != nil {
		return fmt.Errorf("send: %w", err) // the read ends too, as a drop
	}
	select {
	case <-echoed:
	case <-time.After(echoWait):
		h.noEcho.Add(1)
	}
	return nil
}

// read blocks in ReadMessage (answering pings) until c ends, and counts
// an end this process did not ask for as a drop. It closes echoed on the
// first message, the echo.
func (h *heldClients) read(c *websocket.Conn, echoed chan struct{}) {
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			h.open.Add(-1)
			if !h.closing.Load() {
				h.dropped.Add(1)
				msg := err.Error()
				h.firstDrop.CompareAndSwap(nil, &msg)
			}
			return
		}
		if echoed != nil {
			if bytes.Equal(data, echoPayload) {
				now := time.Now().UnixNano()
				for last := h.lastEcho.Load(); now > last && !h.lastEcho.CompareAndSwap(last, now); last = h.lastEcho.Load() {
				}
			}
			close(echoed)
			echoed = nil
		}
	}
}

// serveCommands answers stdin's commands until it closes or max passes.
func (h *heldClients) serveCommands(max time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			switch cmd := strings.TrimSpace(sc.Text()); cmd {
			case "count":
				first := ""
				if p := h.firstDrop.Load(); p != nil {
					first = *p
				}
				fmt.Printf("COUNT open=%d dropped=%d pings=%d first_drop=%q\n",
					h.open.Load(), h.dropped.Load(), h.pings.Load(), first)
			default:
				fmt.Printf("ERR unknown command %q\n", cmd)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(max):
	}
}

// openIdle opens n connections to url, the i-th from source address
// 127.0.0.(2 + i/perSourceIP), and runs after (if set) on each once open.
// It returns those it opened, even on error.
func openIdle(url string, n int, after func(*websocket.Conn) error) ([]*websocket.Conn, error) {
	if n > 250*perSourceIP {
		return nil, fmt.Errorf("at most %d connections", 250*perSourceIP)
	}
	conns := make([]*websocket.Conn, n)
	errs := dialEach(n, 64, func(i int) (err error) {
		d := sourceDialer(net.IPv4(127, 0, 0, byte(2+i/perSourceIP)), 256)
		if conns[i], _, err = d.DialContext(context.Background(), url, nil); err != nil || after == nil {
			return err
		}
		return after(conns[i])
	})
	open := conns[:0]
	failed := 0
	for i, c := range conns {
		if errs[i] != nil {
			failed++
		}
		if c != nil {
			open = append(open, c)
		}
	}
	if failed > 0 {
		return open, fmt.Errorf("%d of %d clients of %s failed, first: %w", failed, n, url, firstErr(errs))
	}
	return open, nil
}

// sourceDialer dials from the given local address. Buffers are small: an
// idle client never sends nor receives.
// sourceDialer dials from ip (127.0.0.x: each source address has its own
// ephemeral ports) with a read buffer of readBuf bytes.
func sourceDialer(ip net.IP, readBuf int) *websocket.Dialer {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   readBuf,
		WriteBufferSize:  256,
	}
}

// dialEach runs dial(0..n-1), at most par at a time, and returns each
// one's error.
func dialEach(n, par int, dial func(i int) error) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = dial(i)
		})
	}
	wg.Wait()
	return errs
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// waitStdin returns when stdin reaches EOF or after max.
func waitStdin(max time.Duration) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(max):
	}
}
