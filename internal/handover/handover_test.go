package handover

import (
	"net"
	"strings"
	"testing"
)

func TestParseFDs(t *testing.T) {
	got, err := parseFDs("ws:3,text:4,admin:5")
	if err != nil || len(got) != 3 || got["ws"] != 3 || got["text"] != 4 || got["admin"] != 5 {
		t.Fatalf("parseFDs: %v %v", got, err)
	}
	for _, bad := range []string{"ws", "ws:", ":3", "ws:2", "ws:x", "ws:3,ws:4", "ws:3,text:3", "ws:99999999"} {
		if _, err := parseFDs(bad); err == nil || !strings.Contains(err.Error(), EnvFDs) {
			t.Errorf("parseFDs(%q): %v, want an error naming %s", bad, err, EnvFDs)
		}
	}
}

func FuzzParseFDs(f *testing.F) {
	for _, s := range []string{"ws:3,text:4,admin:5", "", "ws:3,,", "a:b:c", "ws:-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFDs(s)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for name, fd := range got {
			if name == "" || fd < 3 || seen[fd] {
				t.Fatalf("parseFDs(%q) = %v", s, got)
			}
			seen[fd] = true
		}
	})
}

// TestSameAddr: an inherited listener serves a configured address when the
// port matches (0 matches any) and the host is the same or unspecified on
// both sides.
func TestSameAddr(t *testing.T) {
	at := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, tc := range []struct {
		cfg  string
		got  net.Addr
		want bool
	}{
		{"127.0.0.1:8282", at("127.0.0.1", 8282), true},
		{"127.0.0.1:0", at("127.0.0.1", 40000), true},
		{"0.0.0.0:8282", at("0.0.0.0", 8282), true},
		{":8282", at("::", 8282), true},
		{"127.0.0.1:8283", at("127.0.0.1", 8282), false},
		{"0.0.0.0:8282", at("127.0.0.1", 8282), false},
		{"127.0.0.2:8282", at("127.0.0.1", 8282), false},
		{"localhost:8282", at("127.0.0.1", 8282), true},
		{"nonsense", at("127.0.0.1", 8282), false},
	} {
		if got := sameAddr(tc.cfg, tc.got); got != tc.want {
			t.Errorf("sameAddr(%q, %v) = %v, want %v", tc.cfg, tc.got, got, tc.want)
		}
	}
}
