package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefixes parses server.trusted_proxies: CIDRs ("10.0.0.0/8") or
// single addresses ("127.0.0.1", "::1").
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("[%d] %q is neither a CIDR nor an IP address", i, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ClientAddr is the address a handler sees as the client's (remote_addr)
// and per-address limits use. peer is the TCP peer. Only when the peer is
// a trusted proxy are the forwarding headers believed: X-Forwarded-For is
// read right to left, skipping trusted hops, and the first address that is
// not trusted is the client (the ones left of it were written by the
// client itself, so they prove nothing); without X-Forwarded-For,
// X-Real-IP. A forwarded address has no port: it is given as port 0.
// Anything unparsable leaves the peer's address.
func ClientAddr(peer netip.AddrPort, xff, xRealIP string, trusted []netip.Prefix) netip.AddrPort {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()) // 1.2.3.4, not ::ffff:1.2.3.4
	if len(trusted) == 0 || !inPrefixes(peer.Addr(), trusted) {
		return peer
	}
	if xff != "" {
		hops := strings.Split(xff, ",")
		client := netip.Addr{}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a hop we cannot read: trust nothing to its left
			}
			client = a.Unmap()
			if !inPrefixes(client, trusted) {
				break
			}
		}
		if client.IsValid() {
			return netip.AddrPortFrom(client, 0)
		}
		return peer
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(xRealIP)); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 0)
	}
	return peer
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
