package config

import (
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	proxy := netip.MustParseAddrPort("10.1.2.3:5555")
	for _, tc := range []struct {
		name      string
		peer      netip.AddrPort
		xff, real string
		want      string
	}{
		{"no proxy: headers ignored", netip.MustParseAddrPort("203.0.113.9:4000"), "1.1.1.1", "2.2.2.2", "203.0.113.9:4000"},
		{"mapped peer is shown as IPv4", netip.AddrPortFrom(netip.MustParseAddr("::ffff:203.0.113.9"), 4000), "", "", "203.0.113.9:4000"},
		{"one hop", proxy, "198.51.100.7", "", "198.51.100.7:0"},
		{"right to left, skipping trusted hops", proxy, "6.6.6.6, 198.51.100.7, 10.9.9.9", "", "198.51.100.7:0"},
		{"a client's forged left part is ignored", proxy, "127.0.0.1, 198.51.100.7", "", "198.51.100.7:0"},
		{"all hops trusted: the leftmost", proxy, "10.0.0.5, 10.0.0.6", "", "10.0.0.5:0"},
		{"garbage hop: nothing to its left is believed", proxy, "6.6.6.6, junk", "", "10.1.2.3:5555"},
		{"X-Real-IP without X-Forwarded-For", proxy, "", "198.51.100.8", "198.51.100.8:0"},
		{"bad X-Real-IP", proxy, "", "nope", "10.1.2.3:5555"},
		{"IPv6 client through ::1", netip.MustParseAddrPort("[::1]:80"), "2001:db8::7", "", "[2001:db8::7]:0"},
	} {
		if got := ClientAddr(tc.peer, tc.xff, tc.real, trusted).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/8", "not-an-ip"}); err == nil {
		t.Error("a bad entry must be refused")
	}
}

// FuzzClientAddr: whatever the headers, the address is the peer's unless
// the peer is trusted, and never an invalid address.
func FuzzClientAddr(f *testing.F) {
	f.Add("1.2.3.4, 10.0.0.1", "5.6.7.8", true)
	f.Add("", "", false)
	trusted, _ := ParsePrefixes([]string{"10.0.0.0/8"})
	f.Fuzz(func(t *testing.T, xff, real string, viaProxy bool) {
		peer := netip.MustParseAddrPort("203.0.113.1:1000")
		if viaProxy {
			peer = netip.MustParseAddrPort("10.0.0.1:1000")
		}
		got := ClientAddr(peer, xff, real, trusted)
		if !got.IsValid() {
			t.Fatalf("invalid address from %q %q", xff, real)
		}
		if !viaProxy && got != peer {
			t.Fatalf("headers believed from an untrusted peer: %v", got)
		}
	})
}
