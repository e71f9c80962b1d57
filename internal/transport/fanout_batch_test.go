package transport

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// countConn is a recordConn that also counts its Write calls.
type countConn struct {
	recordConn
	writes *int // guarded by recordConn.mu
}

func (c countConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	*c.writes++
	c.mu.Unlock()
	return c.recordConn.Write(b)
}

func (c countConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.writes
}

// TestFanout_LaneBacklogLeavesInOneWritePerClient: a lane that finds
// several fan-out jobs pending delivers them as one round and starts each
// idle client's writer only at the end of it, so a client's messages of the
// round leave in one write(2). The old lane started the writer at a
// client's first message, which then went out alone: one syscall per
// delivery on a cluster node receiving a burst message by message.
//
// The lane is held at two points by locking two other clients of the same
// lane: first so that the next jobs pile up into one round, then in the
// middle of that round, after it handed "one" to every member and before "two".
// There the members must hold "one" with no writer started; once the lane
// goes on, each must get both messages in one write.
func TestFanout_LaneBacklogLeavesInOneWritePerClient(t *testing.T) {
	h := NewHub()
	opt := &Options{Messages: 16, Bytes: 4 << 20, WriteTimeout: time.Second}
	newConn := func(id string) (*Conn, countConn) {
		cc := countConn{recordConn{mu: new(sync.Mutex), buf: new([]byte)}, new(int)}
		c := &Conn{id: id, nc: cc, tc: cc, opt: opt}
		h.Add(c)
		return c, cc
	}
	// Every client in the lane of the first: the round under test is that
	// lane's.
	lane := h.laneOf(fmt.Sprintf("%020x", 0))
	var ids []string
	for i := 0; len(ids) < 2+FanoutInline*2; i++ {
		if id := fmt.Sprintf("%020x", i); h.laneOf(id) == lane {
			ids = append(ids, id)
		}
	}
	gather, _ := newConn(ids[0])
	pause, _ := newConn(ids[1])
	var members []*Conn
	var socks []countConn
	for _, id := range ids[2:] {
		c, cc := newConn(id)
		members, socks = append(members, c), append(socks, cc)
	}
	memberIDs := ids[2:]
	send := func(to []string, data string) {
		t.Helper()
		if _, err := h.Fanout(to, nil, abi.Message{Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	gather.mu.Lock()
	pause.mu.Lock()
	pauseLocked := true
	defer func() {
		if pauseLocked {
			pause.mu.Unlock()
		}
	}()
	send(ids[:1], "gather") // the lane's worker stops at gather
	waitTaken(t, lane)
	send(memberIDs, "one")
	send(ids[1:2], "pause") // ... and, in the next round, at pause
	send(memberIDs, "two")
	gather.mu.Unlock()

	// The lane handed "one" to every member and waits on pause.
	waitFor(t, "every member was handed \"one\"", func() bool {
		for i, c := range members {
			c.mu.Lock()
			got := len(c.queue) > 0 || c.writing
			c.mu.Unlock()
			if !got && socks[i].count() == 0 {
				return false
			}
		}
		return true
	})
	for i, c := range members {
		c.mu.Lock()
		writing, queued := c.writing, len(c.queue)
		c.mu.Unlock()
		if writing || socks[i].count() > 0 || queued != 1 {
			t.Fatalf("member %d in the middle of the lane's round: writer started %v, writes %d, queued %d; want its message held (no writer, no write, 1 queued)",
				i, writing, socks[i].count(), queued)
		}
	}
	pause.mu.Unlock()
	pauseLocked = false
	for i := range members {
		waitFor(t, fmt.Sprintf("member %d got both messages", i), func() bool {
			return fmt.Sprint(socks[i].payloads()) == fmt.Sprint([]string{"one", "two"})
		})
		if n := socks[i].count(); n != 1 {
			t.Fatalf("member %d: the round's two messages took %d writes, want 1", i, n)
		}
	}
}

// TestFanout_HeldClientStillClosesInOrder: a close_client that reaches a
// client whose messages a lane holds back sends them, then the close.
func TestFanout_HeldClientStillClosesInOrder(t *testing.T) {
	h := NewHub()
	opt := &Options{Messages: 16, Bytes: 4 << 20, WriteTimeout: time.Second}
	lane := h.laneOf(fmt.Sprintf("%020x", 0))
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		if id := fmt.Sprintf("%020x", i); h.laneOf(id) == lane {
			ids = append(ids, id)
		}
	}
	gate := &Conn{id: ids[0], nc: recordConn{mu: new(sync.Mutex), buf: new([]byte)}, opt: opt}
	gate.tc = gate.nc
	h.Add(gate)
	rc := recordConn{mu: new(sync.Mutex), buf: new([]byte)}
	c := &Conn{id: ids[1], nc: rc, tc: rc, opt: opt}
	h.Add(c)
	gate.mu.Lock()
	for _, d := range []string{"gate", "a", "b"} {
		to := ids[1:]
		if d == "gate" {
			to = ids[:1]
		}
		if _, err := h.Fanout(to, nil, abi.Message{Data: []byte(d)}); err != nil {
			gate.mu.Unlock()
			t.Fatal(err)
		}
		if d == "gate" {
			waitTaken(t, lane)
		}
	}
	if err := h.CloseOrdered(c, &abi.Message{Data: []byte("bye")}, 0); err != nil {
		gate.mu.Unlock()
		t.Fatal(err)
	}
	gate.mu.Unlock()
	want := fmt.Sprint([]string{"a", "b", "bye", "\x03\xe8"})
	waitFor(t, "the held messages, then the close", func() bool { return fmt.Sprint(rc.payloads()) == want })
}

// waitTaken waits until l's worker has taken every pending job (and, the
// test holding a client's lock, is stopped on it): what is sent next is
// the next round.
func waitTaken(t *testing.T, l *fanLane) {
	t.Helper()
	waitFor(t, "the lane's worker taking its jobs", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.busy && len(l.jobs) == 0
	})
}

// waitFor waits up to 10 s (a "no freeze" bound) for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFanout_LoneJobWritesFromTheLane: a fan-out that finds its lane idle
// is written to each idle client by the lane itself (one non-blocking
// write), not by a writer goroutine started per recipient: with 3,000
// members the old lane made 3,000 runnable goroutines per message, and a
// backend's next command (or the PUBLISH reply a cluster node waits for)
// queued behind all of them. The test holds the socket's write lock, so
// that whoever writes is caught in the act, and looks at who it is.
func TestFanout_LoneJobWritesFromTheLane(t *testing.T) {
	p := newPair(t, &Options{Messages: 16, Bytes: 4 << 20, WriteTimeout: 5 * time.Second}, true)
	if !p.c.DirectWrites() {
		t.Skip("no direct writes on this platform")
	}
	h := NewHub()
	h.Add(p.c)
	p.c.wmu.Lock()
	if _, err := h.Fanout([]string{p.c.id}, nil, abi.Message{Data: []byte("hi")}); err != nil {
		p.c.wmu.Unlock()
		t.Fatal(err)
	}
	self := fmt.Sprintf("(*Conn).%%s(%p", p.c)
	var stacks string
	waitFor(t, "a writer waiting for the socket", func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return strings.Contains(stacks, fmt.Sprintf(self, "writeNow")) || strings.Contains(stacks, fmt.Sprintf(self, "writeLoop"))
	})
	p.c.wmu.Unlock()
	if strings.Contains(stacks, fmt.Sprintf(self, "writeLoop")) || !strings.Contains(stacks, "runLane") {
		t.Fatalf("a lone fan-out to an idle client started a writer goroutine; want the lane to write itself:\n%s", stacks)
	}
	if f, err := p.p.readFrame(); err != nil || string(f.payload) != "hi" {
		t.Fatalf("peer read %q, %v", f.payload, err)
	}
}
