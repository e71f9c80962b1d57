package server

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

// TestIPKey: IPv6 clients count by /64, IPv4-mapped addresses as IPv4.
func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::2"},
	} {
		if ka, kb := ipKey(netip.MustParseAddr(tc.a)), ipKey(netip.MustParseAddr(tc.b)); ka != kb {
			t.Errorf("%s → %s, %s → %s: want one key", tc.a, ka, tc.b, kb)
		}
	}
	if ipKey(netip.MustParseAddr("2001:db8:1:2::1")) == ipKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two /64s share a key")
	}
}

// closedConn is a socket whose writes fail at once (a refusal's answer).
func closedConn(t *testing.T, ip string) *fakeConn {
	a, b := net.Pipe()
	a.Close()
	b.Close()
	return &fakeConn{Conn: a, addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}
}

// TestEdge_TrackedIPsBounded: the per-IP table never grows past
// max_tracked_ips. Addresses that hold nothing are forgotten to make room;
// when every tracked address holds a connection, a new one is refused
// (503, counted as ip_table_full) until one leaves.
func TestEdge_TrackedIPsBounded(t *testing.T) {
	cfg := DefaultConfig().Server
	cfg.MaxTrackedIPs = 16
	cfg.HandshakeTimeout.Duration = 0
	e := newEdge(cfg, nil, slog.New(slog.DiscardHandler))
	var held []*fakeConn
	for i := range 16 {
		c := closedConn(t, "10.0.0."+strconv.Itoa(i))
		if !e.accept(c) {
			t.Fatalf("address %d refused", i)
		}
		held = append(held, c)
	}
	if e.accept(closedConn(t, "10.0.1.1")) {
		t.Fatal("a 17th address admitted into a table of 16 all holding connections")
	}
	if got := e.refusedTotals().IPTableFull; got != 1 {
		t.Errorf("ip_table_full = %d, want 1", got)
	}
	e.closed(held[0]) // its address now holds nothing
	if !e.accept(closedConn(t, "10.0.1.1")) {
		t.Fatal("refused although an address left")
	}
	// Addresses with a spent token but no connection make room for new
	// ones.
	for _, c := range held[1:] {
		e.closed(c)
	}
	for i := range 100 {
		if st, _ := e.admit(nil, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})); st != 0 {
			t.Fatalf("handshake from new address %d: %d, want admitted (idle entries evicted)", i, st)
		}
	}
	if n := len(e.ips); n > 16 {
		t.Errorf("%d tracked addresses, want at most 16", n)
	}
}
