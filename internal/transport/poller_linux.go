package transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller is where idle clients wait with no goroutine at all: one epoll
// instance, and one goroutine (loop) that waits on it for every parked
// client.
//
// Goroutine design. A client's reader goroutine that the sweep finds
// waiting since the sweep before (idle.go) parks its connection here
// (Conn.park) and ends: the client then has no goroutine and no stack,
// only its Conn. loop owns a parked client while it handles the client's
// readiness: it reads what came (Conn.pollRead) and, when that was only
// pings and pongs, answers and parks the client again, with no goroutine
// woken or started. Anything else (a message, a close frame, EOF, an
// error) starts a reader goroutine again (Conn.resume), which takes the
// bytes read as its frame guard's pending bytes, as the shallow wait hands
// them over. Whoever else must wake a parked client's reader (a close
// needing its close reply read, Abort, the sweep's idle expiry, Close of
// the poller) does so with Conn.unpoll, under the Conn's mutex: of the
// loop and a waker, exactly one takes a parked client out (polled goes
// false), so a client never has two readers.
//
// Registrations are edge-triggered and stay while the client idles: every
// arrival of bytes raises an event, so the Poller re-parks a client it has
// read without a system call (an epoll_ctl per heartbeat cost more than
// the goroutine wake it replaced). Events that come while the client is
// not parked are dropped; nothing is lost by it, because a reader that
// parks pokes the registration (EPOLL_CTL_MOD reports what is already
// there), the Poller re-parks only after a read that emptied the socket,
// and a client that goes back to a reader leaves the set. The event
// carries a slot in conns and the slot's generation, not a file
// descriptor: a stale event (a client woken by a waker, its slot since
// reused) finds a different generation or a client that is not parked,
// and is dropped.
// Every epoll_ctl runs inside the socket's syscall.RawConn Control, so a
// socket closed meanwhile is never touched (its number may be reused).
type Poller struct {
	epfd int
	// ep is epfd as an *os.File in the runtime's poller: loop waits for
	// the epoll set to have events the way a reader waits for its socket,
	// parked in the scheduler's own netpoll, not in a blocking
	// epoll_wait, which would cost a thread handoff per wake-up.
	ep     *os.File
	rc     syscall.RawConn
	closed atomic.Bool
	done   chan struct{}

	mu    sync.Mutex // guards conns, free and gens
	conns []*Conn    // by slot; nil: free
	free  []int32
	gens  []uint32 // by slot: bumped at every release
}

// NewPoller starts a Poller. Close stops it.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("idle poller: epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it in the runtime's poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("idle poller: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "wasmgate-idle-poller")
	rc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("idle poller: %w", err)
	}
	p := &Poller{epfd: epfd, ep: ep, rc: rc, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Close stops the loop and wakes every client still parked (each gets a
// reader goroutine again, which ends as its socket does); no client parks
// after it.
func (p *Poller) Close() {
	if p == nil || p.closed.Swap(true) {
		return
	}
	_ = p.ep.Close() // ends loop's wait (after the batch it handles)
	<-p.done
	p.mu.Lock()
	parked := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		if c != nil {
			parked = append(parked, c)
		}
	}
	p.mu.Unlock()
	for _, c := range parked {
		c.unpoll()
	}
}

// pollBatch is how many events one epoll_wait returns at most.
const pollBatch = 256

// loop handles the epoll set's events until Close: it takes them with
// non-blocking epoll_waits until there are none, then waits in the
// runtime's poller for the set to have some again.
func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, pollBatch)
	var failed error
	handle := func(fd uintptr) bool {
		for !p.closed.Load() {
			n, err := unix.EpollWait(int(fd), events, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				failed = err
				return true
			}
			if n == 0 {
				return false // nothing: wait for the set's readiness
			}
			for i := range n {
				if c := p.take(events[i].Fd, uint32(events[i].Pad)); c != nil {
					c.pollRead(events[i].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
				}
			}
		}
		return true
	}
	for !p.closed.Load() {
		if err := p.rc.Read(handle); err != nil || failed != nil {
			// Closed; or epoll_wait failed on a set that is not (not
			// expected): the clients parked now get their readers back.
			if !p.closed.Load() {
				go p.Close()
			}
			return
		}
	}
}

// take returns the client parked in slot, generation gen, taking it out
// of the parked state; nil if it is not parked there any more.
func (p *Poller) take(slot int32, gen uint32) *Conn {
	p.mu.Lock()
	var c *Conn
	if int(slot) < len(p.conns) && p.gens[slot] == gen {
		c = p.conns[slot]
	}
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.polled || c.pslot != slot || c.pgen != gen {
		return nil
	}
	c.polled = false
	return c
}

// slot gives c a slot (once: it keeps it until release).
func (p *Poller) slot(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		c.pslot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		c.pslot = int32(len(p.conns))
		p.conns = append(p.conns, nil)
		p.gens = append(p.gens, 0)
	}
	p.conns[c.pslot] = c
	c.pgen = p.gens[c.pslot]
}

// release frees c's slot, if it has one: its reader is ending.
func (p *Poller) release(c *Conn) {
	if p == nil {
		return
	}
	c.mu.Lock()
	slot := c.pslot
	c.pslot = -1
	c.mu.Unlock()
	if slot < 0 {
		return
	}
	p.mu.Lock()
	p.conns[slot] = nil
	p.gens[slot]++
	p.free = append(p.free, slot)
	p.mu.Unlock()
}

// arm makes sure c's socket is in the epoll set, edge-triggered: an event
// for every arrival of bytes (or a close, a reset) from then on. poke on a
// socket already in the set re-registers it (EPOLL_CTL_MOD), which raises
// an event at once if it has something to read. It runs with c.mu held,
// the epoll_ctl inside the socket's RawConn Control: false if the socket
// is closed, or the poller is.
func (p *Poller) arm(c *Conn, poke bool) bool {
	if p == nil || p.closed.Load() {
		return false
	}
	if c.pin && !poke {
		return true
	}
	if c.pslot < 0 {
		p.slot(c)
	}
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     c.pslot,
		Pad:    int32(c.pgen),
	}
	op := unix.EPOLL_CTL_ADD
	if c.pin {
		op = unix.EPOLL_CTL_MOD
	}
	var cerr error
	if err := c.rr.rc.Control(func(fd uintptr) { cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev) }); err != nil || cerr != nil {
		return false
	}
	c.pin = true
	return true
}

// disarm takes c's socket out of the epoll set: c has a reader again. It
// runs on the Poller's loop, which owns c.
func (p *Poller) disarm(c *Conn) {
	if p == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pin {
		return
	}
	c.pin = false
	_ = c.rr.rc.Control(func(fd uintptr) { _ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
}
