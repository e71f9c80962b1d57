//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fasthttp/websocket"
)

// The cluster phase's epoll reader (-cluster-reader epoll): the members'
// sockets, taken from their websocket.Conns after the handshake and the
// init message, are read by a few goroutines (-cluster-pollers, 1 by
// default: on the shared cores one poller gets several times more events
// per epoll_wait than two and costs less per delivery), each owning one
// epoll instance (level-triggered) and its share of the members. A poller
// loops on epoll_wait (many events per call), reads each ready socket once
// with a non-blocking read(2) into that member's wsStream, and parses the
// frames; the clock is read per delivered message. A member belongs to one
// poller, so its wsStream and memberLog see one goroutine (the log's lock
// is only for the end of the run). Pollers wake every epollTick to notice
// stop. A close frame, EOF or a read error ends the member (its socket is
// closed); pings are answered with a pong written on the socket.

// defaultClusterReader is -cluster-reader's default.
const defaultClusterReader = "epoll"

// epollTick is how long a poller waits in epoll_wait before it looks at
// stop.
const epollTick = 100 * time.Millisecond

// epollMaxPayload bounds a frame or message a member takes (the bench's
// messages are a few bytes).
const epollMaxPayload = 1 << 20

// epollReaders reads the members of a cluster run.
type epollReaders struct {
	members []epollMember
	epfds   []int
	stop    atomic.Bool
	wg      sync.WaitGroup
	// for the tests: pongs written, members ended by a close frame, EOF
	// or an error
	pongs, ended atomic.Int64
}

// epollMember is one member's socket and state; owned by its poller.
type epollMember struct {
	fd     int
	stream wsStream
	log    *memberLog
	c      *memberCounters
	// per batch of events, added to the shared counters once per batch
	delivered, lat *int64
	pong           []byte
	r              *epollReaders
}

func (m *epollMember) message(p []byte) {
	at := time.Since(m.c.base)
	*m.delivered++
	if m.c.pacedOn.Load() {
		if ns, ok := parseDigits(p); ok {
			m.log.add(ns, int64(at))
			*m.lat++
		}
	}
}

func (m *epollMember) ping(p []byte) error {
	m.pong = wsPongFrame(m.pong[:0], p, [4]byte{0x5a, 0xa5, 0x3c, 0xc3})
	for b, deadline := m.pong, time.Now().Add(time.Second); len(b) > 0; {
		n, err := syscall.Write(m.fd, b)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			if time.Now().After(deadline) {
				return errors.New("pong: socket not writable for 1s")
			}
			time.Sleep(time.Millisecond)
		case err != nil:
			return fmt.Errorf("pong: %w", err)
		default:
			b = b[n:]
		}
	}
	m.r.pongs.Add(1)
	return nil
}

// startEpollReaders takes the members' sockets from conns (closing the
// websocket.Conns, also on error) and starts pollers pollers reading them,
// member i logging into logs[i].
func startEpollReaders(conns []*websocket.Conn, logs []memberLog, c *memberCounters, pollers int) (*epollReaders, error) {
	r := &epollReaders{members: make([]epollMember, len(conns))}
	for i := range r.members {
		r.members[i].fd = -1
	}
	fail := func(err error) (*epollReaders, error) {
		r.close()
		for _, ws := range conns { // those not taken yet
			_ = ws.Close()
		}
		return nil, err
	}
	if len(conns) == 0 {
		return r, nil
	}
	pollers = max(1, min(pollers, len(conns)))
	for range pollers {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return fail(fmt.Errorf("epoll_create1: %w", err))
		}
		r.epfds = append(r.epfds, epfd)
	}
	counts := make([][2]int64, pollers) // delivered, lat per poller
	for i, ws := range conns {
		fd, err := takeSocket(ws)
		if err != nil {
			return fail(fmt.Errorf("member %d: %w", i, err))
		}
		p := i % pollers
		m := &r.members[i]
		m.fd, m.log, m.c = fd, &logs[i], c
		m.stream.maxPayload = epollMaxPayload
		m.delivered, m.lat = &counts[p][0], &counts[p][1]
		m.r = r
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
		if err := syscall.EpollCtl(r.epfds[p], syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fail(fmt.Errorf("member %d: epoll_ctl: %w", i, err))
		}
	}
	for p, epfd := range r.epfds {
		r.wg.Go(func() { r.poll(epfd, c, &counts[p]) })
	}
	return r, nil
}

// takeSocket returns a non-blocking duplicate of ws's socket and closes
// ws (the duplicate keeps the connection open). It first makes sure that
// ws's reader holds nothing read past the init message: a read with a
// deadline in the past reaches the socket only when the reader's buffer is
// empty, and then fails before read(2).
func takeSocket(ws *websocket.Conn) (int, error) {
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Unix(1, 0))
	if _, _, err := ws.NextReader(); err == nil {
		return -1, errors.New("a message came after init, before the epoll reader took the socket")
	} else if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
		return -1, fmt.Errorf("before the epoll reader took the socket: %w", err)
	}
	sc, ok := ws.NetConn().(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", ws.NetConn())
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if fd, dupErr = syscall.Dup(int(s)); dupErr == nil {
			syscall.CloseOnExec(fd)
		}
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}

// poll is one poller's loop until stop; count holds what its members
// delivered in the current batch.
func (r *epollReaders) poll(epfd int, c *memberCounters, count *[2]int64) {
	events := make([]syscall.EpollEvent, 512)
	for !r.stop.Load() {
		n, err := syscall.EpollWait(epfd, events, int(epollTick/time.Millisecond))
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			r.members[ev.Fd].read()
		}
		if count[0] > 0 {
			c.delivered.Add(count[0])
		}
		if count[1] > 0 {
			c.latN.Add(count[1])
		}
		*count = [2]int64{}
	}
}

// read takes what the member's socket holds (one read(2): the epoll is
// level-triggered, so what a full buffer leaves is reported again).
func (m *epollMember) read() {
	if m.fd < 0 {
		return
	}
	for {
		n, err := syscall.Read(m.fd, m.stream.space())
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		case err != nil || n == 0: // error or EOF
			m.end()
			m.r.ended.Add(1)
			return
		}
		if m.stream.advance(n, m) != nil { // close frame or protocol error
			m.end()
			m.r.ended.Add(1)
		}
		return
	}
}

// end closes the member's socket (which takes it out of the epoll).
func (m *epollMember) end() {
	syscall.Close(m.fd)
	m.fd = -1
}

// close stops the pollers and closes every socket and epoll instance.
func (r *epollReaders) close() {
	r.stop.Store(true)
	r.wg.Wait()
	for i := range r.members {
		if r.members[i].fd >= 0 {
			r.members[i].end()
		}
	}
	for _, fd := range r.epfds {
		syscall.Close(fd)
	}
}
