// Package accept holds the listener every wasmgate port accepts on: one
// that outlasts running out of file descriptors.
package accept

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Accept back-off: the first retry after acceptBackoffMin, doubling up to
// acceptBackoffMax, like net/http. A failing accept (EMFILE, ENFILE, ENOBUFS)
// leaves the connection in the kernel's backlog, so retrying at once would
// spin; waiting lets closing connections give their descriptors back.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// acceptLogEvery bounds the log while accepts keep failing: one line
	// when the trouble starts, then one every acceptLogEvery with a count.
	acceptLogEvery = 10 * time.Second
)

// Listener is a net.Listener whose Accept never gives up on an error
// that can pass. fasthttp's Serve returns for good on `accept4: too many
// open files`, and so did the text port's accept loop: after a burst of
// connections had exhausted the process's descriptors, nobody could connect
// again until a restart. Every error except the listener being closed is
// retried with back-off: a listening socket has no other permanent error
// worth dying for, and an unknown one costs at most one accept a second and
// a log line every acceptLogEvery.
//
// Accept is called from one goroutine per listener (fasthttp's Serve loop,
// the text port's acceptLoop), so the episode fields need no lock.
type Listener struct {
	net.Listener
	log  *slog.Logger
	name string // "websocket", "text", "admin": which listener, in the log

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: ends a back-off at once

	failing  bool      // in an episode of failing accepts
	failures int       // accept errors in this episode
	since    time.Time // when the episode began
	logged   time.Time // when it was last logged
}

// Retry wraps ln so that Accept retries failed accepts with back-off; name
// ("websocket", "text", "admin") says which listener in the log.
func Retry(ln net.Listener, name string, log *slog.Logger) *Listener {
	return &Listener{Listener: ln, log: log, name: name, closed: make(chan struct{})}
}

// Accept waits for the next connection, retrying failed accepts until one
// succeeds or the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		nc, err := l.Listener.Accept()
		if err == nil {
			if l.failing {
				l.log.Warn("accepting connections again", "listener", l.name,
					"failed_accepts", l.failures, "after", time.Since(l.since).Round(time.Millisecond))
				l.failing = false
			}
			return nc, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		l.noteFailure(err, delay)
		select {
		case <-l.closed:
			return nil, fmt.Errorf("accept on %s listener: %w", l.name, net.ErrClosed)
		case <-time.After(delay):
		}
	}
}

// noteFailure counts a failed accept and logs at a bounded rate.
func (l *Listener) noteFailure(err error, delay time.Duration) {
	now := time.Now()
	if !l.failing {
		l.failing, l.failures, l.since, l.logged = true, 1, now, now
		l.log.Error("accept failed; retrying with back-off (out of file descriptors? see server.max_connections and server.fd_headroom)",
			"listener", l.name, "err", err, "retry_in", delay)
		return
	}
	l.failures++
	if now.Sub(l.logged) >= acceptLogEvery {
		l.logged = now
		l.log.Error("accept still failing; retrying", "listener", l.name, "err", err,
			"failed_accepts", l.failures, "for", now.Sub(l.since).Round(time.Millisecond))
	}
}

// Close closes the listener and ends a back-off under way.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
