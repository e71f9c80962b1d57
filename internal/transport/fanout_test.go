package transport

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// recordConn is a socket that keeps what is written to it.
type recordConn struct {
	net.Conn // nil: only the methods below are called
	mu       *sync.Mutex
	buf      *[]byte
}

func (r recordConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	*r.buf = append(*r.buf, b...)
	r.mu.Unlock()
	return len(b), nil
}
func (r recordConn) Close() error                     { return nil }
func (r recordConn) SetWriteDeadline(time.Time) error { return nil }

// payloads splits written bytes into the payloads of short server frames.
func (r recordConn) payloads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for b := *r.buf; len(b) >= 2; {
		n := int(b[1] & 0x7f) // short frames only (< 126 bytes)
		out = append(out, string(b[2:2+n]))
		b = b[2+n:]
	}
	return out
}

// TestFanout_SendReturnsWhileDeliveryIsHeldUpAndKeepsOrder: a send to more
// than FanoutInline members (Hub.Fanout, as Gateway.SendToGroup calls it)
// returns without waiting for delivery: here one
// member's conn is locked (as a busy client would hold it), and the old
// code, which queued for every member inside the call, blocked on it. A
// later send_to_client and close_client to that member still arrive after
// the group message, and everyone gets it.
func TestFanout_SendReturnsWhileDeliveryIsHeldUpAndKeepsOrder(t *testing.T) {
	const members = FanoutInline * 4
	h := NewHub()
	opt := &Options{Messages: 16, Bytes: 4 << 20, WriteTimeout: time.Second}
	var conns []*Conn
	var recs []recordConn
	var ids []string
	for i := range members {
		id := fmt.Sprintf("%020x", i)
		rc := recordConn{mu: new(sync.Mutex), buf: new([]byte)}
		c := &Conn{id: id, nc: rc, tc: rc, opt: opt}
		h.Add(c)
		conns, recs, ids = append(conns, c), append(recs, rc), append(ids, id)
	}
	held := conns[0]
	held.mu.Lock()
	returned := make(chan error, 1)
	go func() {
		n, err := h.Fanout(ids, nil, abi.Message{Data: []byte("group")})
		if err == nil && n != members {
			err = fmt.Errorf("count %d, want %d", n, members)
		}
		if err == nil {
			err = h.SendOrdered(held, abi.Message{Data: []byte("direct")}, false, false)
		}
		if err == nil {
			err = h.CloseOrdered(held, &abi.Message{Data: []byte("bye")}, 0)
		}
		returned <- err
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		held.mu.Unlock()
		t.Fatal("send_to_group waited for a busy member's delivery")
	}
	held.mu.Unlock()
	for i, rc := range recs {
		want := []string{"group"}
		if i == 0 {
			want = []string{"group", "direct", "bye", "\x03\xe8"} // then the close frame (1000)
		}
		deadline := time.Now().Add(10 * time.Second)
		for got := rc.payloads(); fmt.Sprint(got) != fmt.Sprint(want); got = rc.payloads() {
			if time.Now().After(deadline) {
				t.Fatalf("member %d got %q, want %q", i, got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestFanout_LaneBoundRefusesWithQueueFull: a lane holds a bounded amount
// of pending work; past it a send fails at once with queue full.
func TestFanout_LaneBoundRefusesWithQueueFull(t *testing.T) {
	h := NewHub()
	rc := recordConn{mu: new(sync.Mutex), buf: new([]byte)}
	c := &Conn{id: "a", nc: rc, tc: rc, opt: &Options{Messages: 16, Bytes: 4 << 20, WriteTimeout: time.Second}}
	h.Add(c)
	c.mu.Lock() // the lane's worker blocks on the first delivery
	defer c.mu.Unlock()
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = "a"
	}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = h.Fanout(ids, nil, abi.Message{Data: []byte("x")})
	}
	if abi.ErrnoOf(err) != abi.ErrnoQueueFull {
		t.Fatalf("fan-out past the lane bound: %v, want queue full", err)
	}
}
