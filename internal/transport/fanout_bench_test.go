package transport

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
)

// discardConn is a socket that takes every write at once and counts the
// bytes, for benchmarks of delivery without a network.
type discardConn struct {
	net.Conn // nil: only the methods below are called
	n        *atomic.Int64
}

func (d discardConn) Write(b []byte) (int, error)      { d.n.Add(int64(len(b))); return len(b), nil }
func (d discardConn) Close() error                     { return nil }
func (d discardConn) SetWriteDeadline(time.Time) error { return nil }

// benchFanoutGroup is a hub and a registry whose group "room" has members
// clients on discard sockets, and the byte counter they share.
func benchFanoutGroup(b *testing.B, members int) (*Hub, *registry.Local, *atomic.Int64) {
	b.Helper()
	ctx := context.Background()
	written := new(atomic.Int64)
	h, reg := NewHub(), registry.NewLocal()
	opt := &Options{Messages: 1024, Bytes: 4 << 20, WriteTimeout: time.Second}
	for i := range members {
		id := fmt.Sprintf("%020x", i)
		dc := discardConn{n: written}
		h.Add(&Conn{id: id, nc: dc, tc: dc, opt: opt})
		if err := reg.AddClient(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := reg.JoinGroup(ctx, id, "room"); err != nil {
			b.Fatal(err)
		}
	}
	return h, reg, written
}

// BenchmarkSendToGroup3000 measures what a send_to_group host call costs
// its caller (the guest's deadline) with 3,000 members — the member list
// from the registry, then the hand-off to the hub, as Gateway.SendToGroup
// does for one group: the timer runs only
// around the call; between calls the benchmark waits, untimed, until every
// member's frame was written, so each call starts from idle clients.
func BenchmarkSendToGroup3000(b *testing.B) {
	const members = 3000
	h, reg, written := benchFanoutGroup(b, members)
	msg := abi.Message{Data: make([]byte, 64)} // a 66-byte frame
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ids, err := reg.GroupClients(ctx, "room")
		if err != nil {
			b.Fatal(err)
		}
		n, err := h.Fanout(ids, nil, msg)
		if err != nil || n != members {
			b.Fatalf("SendToGroup = %d, %v", n, err)
		}
		b.StopTimer()
		want := int64(i+1) * members * 66
		for written.Load() < want {
			time.Sleep(50 * time.Microsecond)
		}
		b.StartTimer()
	}
}
