package cluster

import (
	"bytes"
	"reflect"
	"testing"
)

func TestCodec_RoundTrip(t *testing.T) {
	for _, m := range []envelope{
		{kind: kindGroups, origin: 7, binary: true, names: []string{"a", "", "ü"}, exclude: []string{"x"}, data: []byte{0, 1, 2}},
		{kind: kindClose, origin: 0xffffffff, final: true, code: 4001, names: []string{"00000001000000000001"}, data: []byte("bye")},
		{kind: kindRequest, origin: 1, req: 1 << 60, code: opUpdateSession, names: []string{"id"}, data: []byte(`{"k":1}`)},
		{kind: kindReply, origin: 2, req: 9, code: 3},
	} {
		got, err := decode(m.encode())
		if err != nil {
			t.Fatalf("%c: %v", m.kind, err)
		}
		if got.names == nil {
			got.names = nil
		}
		norm := func(e envelope) envelope {
			if len(e.names) == 0 {
				e.names = nil
			}
			if len(e.exclude) == 0 {
				e.exclude = nil
			}
			if len(e.data) == 0 {
				e.data = nil
			}
			return e
		}
		if !reflect.DeepEqual(norm(got), norm(m)) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestCodec_RefusesMalformed(t *testing.T) {
	good := (&envelope{kind: kindAll, origin: 1, data: []byte("hello")}).encode()
	for name, p := range map[string][]byte{
		"empty":          nil,
		"short":          good[:4],
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"huge count":     append(append([]byte(nil), good[:8]...), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := decode(p); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// FuzzDecode: no payload panics the decoder or makes it allocate beyond
// the payload's size, and what decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add((&envelope{kind: kindGroups, origin: 3, names: []string{"g1", "g2"}, exclude: []string{"e"}, data: []byte("m")}).encode())
	f.Add([]byte("G\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decode(p)
		if err != nil {
			return
		}
		if again := m.encode(); !bytes.Equal(again, p) && len(again) > len(p) {
			t.Fatalf("re-encoding grew: %d > %d bytes", len(again), len(p))
		}
	})
}
