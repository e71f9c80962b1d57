package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// perSourceIP bounds the connections opened from one loopback source
// address, well below the ephemeral port range.
const perSourceIP = 4000

// runIdle is the `idle` subcommand: it opens n WebSocket connections that
// never send anything, prints READY n, and holds them until stdin closes
// (or -hold passes).
func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	addr := fs.String("addr", "", "HOST:PORT of the gateway")
	path := fs.String("path", "/echo", "route to connect to")
	n := fs.Int("n", 8000, "connections")
	hold := fs.Duration("hold", 3*time.Minute, "longest time to hold them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *n < 1 {
		return errors.New("need -addr and -n ≥ 1")
	}
	conns, err := openIdle("ws://"+*addr+*path, *n)
	defer closeAll(conns)
	if err != nil {
		return err
	}
	fmt.Printf("READY %d\n", len(conns))
	waitStdin(*hold)
	return nil
}

// openIdle opens n connections to url, the i-th from source address
// 127.0.0.(2 + i/perSourceIP). It returns those it opened, even on error.
func openIdle(url string, n int) ([]*websocket.Conn, error) {
	if n > 250*perSourceIP {
		return nil, fmt.Errorf("at most %d connections", 250*perSourceIP)
	}
	conns := make([]*websocket.Conn, n)
	errs := dialEach(n, 64, func(i int) (err error) {
		d := sourceDialer(net.IPv4(127, 0, 0, byte(2+i/perSourceIP)), 256)
		conns[i], _, err = d.DialContext(context.Background(), url, nil)
		return err
	})
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return open, fmt.Errorf("%d of %d dials to %s failed, first: %w", n-len(open), n, url, firstErr(errs))
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
