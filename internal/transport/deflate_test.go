package transport

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
)

// TestAcceptDeflate: the offers the server accepts and declines (RFC 7692
// §7: an offer with an unknown, repeated or malformed parameter is
// declined; server_max_window_bits is declined as the answer cannot
// confirm it).
func TestAcceptDeflate(t *testing.T) {
	for offer, want := range map[string]bool{
		"permessage-deflate":                                                true,
		"Permessage-Deflate":                                                true,
		"permessage-deflate; client_max_window_bits":                        true,
		"permessage-deflate; client_max_window_bits=8":                      true,
		`permessage-deflate; client_max_window_bits="15"`:                   true,
		"permessage-deflate;server_no_context_takeover":                     true,
		"permessage-deflate; client_no_context_takeover":                    true,
		"x-foo, permessage-deflate":                                         true,
		"permessage-deflate; server_max_window_bits=10, permessage-deflate": true,
		"":                       false,
		"x-webkit-deflate-frame": false,
		"permessage-deflate; server_max_window_bits=15":                              false,
		"permessage-deflate; client_max_window_bits=7":                               false,
		"permessage-deflate; client_max_window_bits=08":                              false,
		"permessage-deflate; client_max_window_bits=":                                false,
		"permessage-deflate; client_no_context_takeover=1":                           false,
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover": false,
		"permessage-deflate; foo":                                                    false,
		"permessage-deflate;;":                                                       false,
	} {
		if got := AcceptDeflate([][]byte{[]byte(offer)}); got != want {
			t.Errorf("AcceptDeflate(%q) = %v, want %v", offer, got, want)
		}
	}
}

// TestDeflateAppend: what the framing compresses inflates back (with the
// tail RFC 7692 has the receiver add), and short or incompressible
// payloads are left as they are.
func TestDeflateAppend(t *testing.T) {
	json := []byte(strings.Repeat(`{"type":"say","room":"lobby","text":"hello"}`, 4))
	z, ok := deflateAppend([]byte("prefix"), json)
	if !ok || !bytes.HasPrefix(z, []byte("prefix")) || len(z)-6 >= len(json) {
		t.Fatalf("deflateAppend: ok %v, %d bytes for %d", ok, len(z)-6, len(json))
	}
	if got := inflateForTest(t, z[6:]); !bytes.Equal(got, json) {
		t.Fatalf("inflated %q, want %q", got, json)
	}
	if _, ok := deflateAppend(nil, []byte("short")); ok {
		t.Error("a 5-byte payload was compressed")
	}
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i>>3*31)
	}
	if z, ok := deflateAppend(nil, random); ok && len(z) >= len(random) {
		t.Error("compression that does not pay was used")
	}
}

func inflateForTest(t *testing.T, z []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzAcceptDeflate: any header is answered without a panic, and an
// accepted offer names permessage-deflate.
func FuzzAcceptDeflate(f *testing.F) {
	f.Add("permessage-deflate; client_max_window_bits")
	f.Add(`permessage-deflate; client_max_window_bits="10", x`)
	f.Fuzz(func(t *testing.T, h string) {
		if AcceptDeflate([][]byte{[]byte(h)}) && !strings.Contains(strings.ToLower(h), "permessage-deflate") {
			t.Fatalf("accepted %q", h)
		}
	})
}

// oneByteReader returns its bytes n at a time.
type nByteReader struct {
	b []byte
	n int
}

func (r *nByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

// FuzzMsgReader: the reader's UTF-8 verdict, reading in pieces of any
// size (a fragment may end inside a sequence), is utf8.Valid's on the
// whole message, and the bound refuses exactly the messages over it.
func FuzzMsgReader(f *testing.F) {
	f.Add([]byte("κόσμε"), uint8(1), uint16(100))
	f.Add([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"), uint8(2), uint16(0))
	f.Add([]byte("\xe1\xbd"), uint8(1), uint16(2))
	f.Fuzz(func(t *testing.T, msg []byte, piece uint8, max uint16) {
		var m msgReader
		m.reset(&nByteReader{b: msg, n: int(piece%8) + 1}, true, int(max))
		var buf bytes.Buffer
		_, err := buf.ReadFrom(&m)
		switch {
		case max > 0 && len(msg) > int(max):
			if err != errTooBig && err != errInvalidUTF8 {
				t.Fatalf("%d bytes over a bound of %d: err %v", len(msg), max, err)
			}
		case utf8.Valid(msg):
			if err != nil || !bytes.Equal(buf.Bytes(), msg) {
				t.Fatalf("valid %q: err %v, read %q", msg, err, buf.Bytes())
			}
		default:
			if err != errInvalidUTF8 {
				t.Fatalf("invalid %q: err %v", msg, err)
			}
		}
	})
}

// BenchmarkDeflateAppend is the framing's compression of a typical JSON
// chat message (128 bytes).
func BenchmarkDeflateAppend(b *testing.B) {
	msg := []byte(strings.Repeat(`{"type":"say","room":"lobby","from":"user-4711","text":"hello everyone, how is it going?","ts":1718000000123}`, 2)[:128])
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for range b.N {
		buf, _ = deflateAppend(buf[:0], msg)
	}
	z, _ := deflateAppend(nil, msg)
	b.ReportMetric(float64(len(z)), "bytes/msg")
}
