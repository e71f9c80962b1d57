package gateway

import (
	"errors"
	"reflect"
	"testing"
	"unsafe"
)

func TestList(t *testing.T) {
	b := appendList(nil, []string{"ab", "c"})
	if want := "\x02\x00\x00\x00ab\x01\x00\x00\x00c"; string(b) != want {
		t.Fatalf("appendList = %q, want %q", b, want)
	}
	l, ok := decodeList(b)
	if !ok || !reflect.DeepEqual(l, []string{"ab", "c"}) {
		t.Fatalf("decodeList = %q, %v", l, ok)
	}
	b[4] = 'X' // the result must not alias the input
	if l[0] != "ab" {
		t.Fatalf("decodeList aliases its input: %q", l)
	}
	if l, ok := decodeList(nil); !ok || l == nil || len(l) != 0 {
		t.Fatalf("decodeList(nil) = %#v, %v; want empty non-nil", l, ok)
	}
	for _, bad := range []string{"\x01", "\x02\x00\x00\x00a", "\xff\xff\xff\xff"} {
		if _, ok := decodeList([]byte(bad)); ok {
			t.Errorf("decodeList(%q) succeeded", bad)
		}
	}
}

func TestHandshake(t *testing.T) {
	b := appendList(nil, []string{"0123456789abcdef0123", "GET", "/chat", "a=1&token=s%20x+y&token=2", "1.2.3.4:5",
		"origin", "http://x", "cookie", "c1", "cookie", "c2"})
	h, ok := parseHandshake(b)
	if !ok {
		t.Fatal("parseHandshake failed")
	}
	if h.ClientID != "0123456789abcdef0123" || h.Method != "GET" || h.Path != "/chat" || h.RemoteAddr != "1.2.3.4:5" {
		t.Errorf("fields: %+v", h)
	}
	if got := h.Header("Origin"); got != "http://x" {
		t.Errorf("Header(Origin) = %q", got)
	}
	if got := h.HeaderValues("cookie"); !reflect.DeepEqual(got, []string{"c1", "c2"}) {
		t.Errorf("HeaderValues = %q", got)
	}
	if _, ok := h.LookupHeader("x-none"); ok {
		t.Error("LookupHeader found a missing header")
	}
	if got := h.QueryValue("token"); got != "s x y" {
		t.Errorf("QueryValue(token) = %q", got)
	}
	if got, ok := h.LookupQuery("b"); ok || got != "" {
		t.Errorf("LookupQuery(b) = %q, %v", got, ok)
	}
	if _, ok := parseHandshake(appendList(nil, []string{"id", "GET"})); ok {
		t.Error("parseHandshake accepted 2 fields")
	}
}

func TestBuffer(t *testing.T) {
	inbuf = nil
	p := growInbuf(0)
	if p == nil || len(inbuf) < minInbuf {
		t.Fatalf("growInbuf(0): len %d", len(inbuf))
	}
	if growInbuf(10) != p {
		t.Error("growInbuf reallocated a large-enough buffer")
	}
	growInbuf(minInbuf + 1)
	if len(inbuf) < minInbuf+1 {
		t.Errorf("growInbuf(%d): len %d", minInbuf+1, len(inbuf))
	}
}

func TestDispatch(t *testing.T) {
	defer func() { messageFn, connectFn, handshakeFn, startFn = nil, nil, nil, nil }()
	growInbuf(64)
	var got Client
	var gotMsg string
	OnMessage(func(c Client, msg []byte) { got, gotMsg = c, string(msg) })
	n := copy(inbuf, "0123456789abcdef0123hello")
	if r := handleMessage(20, uint32(n-20), 1); r != 0 {
		t.Fatalf("handleMessage = %d", r)
	}
	if got.ID != "0123456789abcdef0123" || !got.Binary() || gotMsg != "hello" {
		t.Errorf("got %+v %q", got, gotMsg)
	}
	id1 := got.ID
	handleMessage(20, uint32(n-20), 0)
	if got.Binary() || unsafe.StringData(got.ID) != unsafe.StringData(id1) {
		t.Error("same client id not reused, or binary flag stuck")
	}
	if r := handleMessage(20, uint32(len(inbuf)), 0); r != resultBadInput {
		t.Errorf("out-of-range lengths: %d", r)
	}
	OnMessage(func(Client, []byte) { panic("boom") })
	if r := handleMessage(20, 5, 0); r != resultPanic {
		t.Errorf("panicking callback: %d", r)
	}

	var cfg string
	OnStart(func(c string) { cfg = c })
	copy(inbuf, "conf")
	if r := handleStart(4); r != 0 || cfg != "conf" {
		t.Errorf("handleStart = %d, %q", r, cfg)
	}

	if r := handleHandshake(0); r != 0 {
		t.Errorf("handshake without callback = %d", r)
	}
	OnHandshake(func(h Handshake) int {
		if h.QueryValue("t") == "ok" {
			return 0
		}
		return 403
	})
	hs := appendList(nil, []string{"id", "GET", "/", "t=no", "ip:1"})
	growInbuf(uint32(len(hs)))
	copy(inbuf, hs)
	if r := handleHandshake(uint32(len(hs))); r != 403 {
		t.Errorf("handshake = %d, want 403", r)
	}
	OnHandshake(func(Handshake) int { panic(errors.New("x")) })
	if r := handleHandshake(uint32(len(hs))); r != 500 {
		t.Errorf("panicking handshake = %d, want 500", r)
	}
}

func TestErrno(t *testing.T) {
	var err error = ErrnoNotFound
	if !errors.Is(err, ErrnoNotFound) || err.Error() != "wasmgate: not found" {
		t.Errorf("ErrnoNotFound: %v", err)
	}
	if Errno(42).String() != "errno 42" {
		t.Errorf("Errno(42) = %q", Errno(42).String())
	}
	if _, err := count(-5); err != ErrnoQueueFull {
		t.Errorf("count(-5) = %v", err)
	}
}

// TestIDString_NoAllocationForKnownClients: an event of a client seen
// before does not allocate its id, however clients alternate (the SDKs
// allocate nothing per message, issue 15).
func TestIDString_NoAllocationForKnownClients(t *testing.T) {
	a, b := []byte("00000001000000000001"), []byte("00000001000000000002")
	idString(a)
	idString(b)
	if n := testing.AllocsPerRun(100, func() {
		idString(a)
		idString(b)
	}); n != 0 {
		t.Fatalf("%v allocations per pair of events", n)
	}
	if idString(a) != string(a) || idString(b) != string(b) {
		t.Fatal("wrong id")
	}
}
