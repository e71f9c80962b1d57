package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// fake is a tiny text-port server answering per docs/PUSH.md, with a few
// test-only commands: echo {v} → v, sleep {ms}, badid (answers with a wrong
// id), hang {n} (reads n more lines, then closes without answering).
type fake struct {
	ln     net.Listener
	secret string

	mu       sync.Mutex
	online   map[string]bool
	uid      map[string]string // client id → uid
	session  map[string]json.RawMessage
	groups   map[string]map[string]bool
	first    []string // first line of every connection
	lines    []string // every request line
	conns    []net.Conn
	accepted atomic.Int32
	wg       sync.WaitGroup
}

func newFake(t testing.TB, secret string) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{ln: ln, secret: secret,
		online: map[string]bool{}, uid: map[string]string{},
		session: map[string]json.RawMessage{}, groups: map[string]map[string]bool{}}
	for i := range 100 {
		f.online["c"+strconv.Itoa(i)] = true
	}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.stop)
	return f
}

func (f *fake) addr() string { return f.ln.Addr().String() }

func (f *fake) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.accepted.Add(1)
		f.mu.Lock()
		f.conns = append(f.conns, nc)
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(nc)
	}
}

// stop closes the listener and every connection and waits for them.
func (f *fake) stop() {
	f.ln.Close()
	f.mu.Lock()
	for _, nc := range f.conns {
		nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

type answer struct {
	ID     json.RawMessage `json:"id,omitempty"`
	OK     bool            `json:"ok"`
	Result any             `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

func (f *fake) serve(nc net.Conn) {
	defer f.wg.Done()
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 1<<20)
	bw := bufio.NewWriter(nc)
	authed := f.secret == ""
	firstLine := true
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			continue
		}
		f.mu.Lock()
		if firstLine {
			f.first = append(f.first, line)
			firstLine = false
		}
		f.lines = append(f.lines, line)
		f.mu.Unlock()

		var req map[string]json.RawMessage
		var a answer
		if err := json.Unmarshal([]byte(line), &req); err != nil {
			a.Error = &Error{CodeBadJSON, err.Error()}
		} else {
			a.ID = req["id"]
			var cmd string
			json.Unmarshal(req["cmd"], &cmd)
			switch {
			case !authed && (cmd != "auth" || str(req, "secret") != f.secret):
				a.Error = &Error{CodeUnauthorized, "bad secret"}
				writeAnswer(bw, a)
				bw.Flush()
				return
			case cmd == "hang":
				n, _ := strconv.Atoi(string(req["n"]))
				for range n {
					if _, err := br.ReadString('\n'); err != nil {
						return
					}
				}
				return
			case cmd == "badid":
				a.ID = json.RawMessage(`"nope"`)
				a.OK, a.Result = true, true
			case cmd == "sleep":
				ms, _ := strconv.Atoi(string(req["ms"]))
				time.Sleep(time.Duration(ms) * time.Millisecond)
				a.OK, a.Result = true, true
			default:
				if cmd == "auth" {
					authed = true
				}
				a.Result, a.Error = f.exec(cmd, req)
				a.OK = a.Error == nil
			}
		}
		writeAnswer(bw, a)
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

func writeAnswer(bw *bufio.Writer, a answer) {
	if a.OK && a.Result == nil {
		a.Result = json.RawMessage("null")
	}
	b, _ := json.Marshal(a)
	bw.Write(append(b, '\n'))
}

func str(req map[string]json.RawMessage, k string) string {
	var s string
	json.Unmarshal(req[k], &s)
	return s
}

func strs(req map[string]json.RawMessage, k string) []string {
	var ss []string
	if json.Unmarshal(req[k], &ss) != nil {
		ss = []string{str(req, k)}
	}
	return ss
}

// exec implements the commands the tests use.
func (f *fake) exec(cmd string, req map[string]json.RawMessage) (any, *Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := str(req, "client_id")
	needClient := func() *Error {
		if _, ok := req["client_id"]; !ok {
			return &Error{CodeBadRequest, "missing client_id"}
		}
		if !f.online[id] {
			return &Error{CodeNotFound, "client " + id + " is not online"}
		}
		return nil
	}
	switch cmd {
	case "ping":
		return "pong", nil
	case "auth":
		return true, nil
	case "echo":
		return req["v"], nil
	case "sendToClient":
		if e := needClient(); e != nil {
			return nil, e
		}
		if string(req["binary"]) == "true" {
			if _, err := base64.StdEncoding.DecodeString(str(req, "data")); err != nil {
				return nil, &Error{CodeInvalid, "bad base64"}
			}
		}
		return true, nil
	case "sendToAll":
		return len(f.online), nil
	case "isOnline":
		if f.online[id] {
			return 1, nil
		}
		return 0, nil
	case "bindUid":
		if e := needClient(); e != nil {
			return nil, e
		}
		f.uid[id] = str(req, "uid")
		return true, nil
	case "getUidByClientId":
		if u, ok := f.uid[id]; ok && f.online[id] {
			return u, nil
		}
		return json.RawMessage("null"), nil
	case "getClientIdByUid", "sendToUid", "isUidsOnline":
		by := map[string][]string{}
		for c, u := range f.uid {
			by[u] = append(by[u], c)
		}
		switch cmd {
		case "getClientIdByUid":
			return append([]string{}, by[str(req, "uid")]...), nil
		case "sendToUid":
			n := 0
			for _, u := range strs(req, "uid") {
				n += len(by[u])
			}
			return n, nil
		default:
			m := map[string]int{}
			for _, u := range strs(req, "uids") {
				m[u] = min(1, len(by[u]))
			}
			return m, nil
		}
	case "joinGroup":
		if e := needClient(); e != nil {
			return nil, e
		}
		g := str(req, "group")
		if f.groups[g] == nil {
			f.groups[g] = map[string]bool{}
		}
		f.groups[g][id] = true
		return true, nil
	case "getClientIdCountByGroup":
		if g := str(req, "group"); g != "" {
			return len(f.groups[g]), nil
		}
		return len(f.online), nil
	case "setSession":
		if e := needClient(); e != nil {
			return nil, e
		}
		if !strings.HasPrefix(string(req["session"]), "{") {
			return nil, &Error{CodeInvalid, "session is not an object"}
		}
		f.session[id] = req["session"]
		return true, nil
	case "getSession":
		if !f.online[id] {
			return json.RawMessage("null"), nil
		}
		if s, ok := f.session[id]; ok {
			return s, nil
		}
		return json.RawMessage("{}"), nil
	}
	return nil, &Error{CodeUnknownCmd, "unknown command " + cmd}
}

// requests returns the request lines received so far.
func (f *fake) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

func dialFake(t *testing.T, f *fake, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(context.Background(), f.addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPipelinedConcurrent(t *testing.T) {
	for _, maxPending := range []int{0, 7} { // default, and a tight bound that makes callers wait
		t.Run(fmt.Sprintf("maxPending=%d", maxPending), func(t *testing.T) {
			f := newFake(t, "")
			c := dialFake(t, f, WithMaxPending(maxPending))
			ctx := ctxT(t)
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for g := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := "c" + strconv.Itoa(g)
					uid := fmt.Sprintf("user\"%d\n", g) // needs escaping
					if err := c.BindUid(ctx, id, uid); err != nil {
						errs <- err
						return
					}
					for i := range 200 {
						want := fmt.Sprintf("g%d-i%d-é\t\"", g, i)
						raw, err := c.Do(ctx, "echo", map[string]any{"v": want})
						var got string
						if err == nil {
							err = json.Unmarshal(raw, &got)
						}
						if err != nil || got != want {
							errs <- fmt.Errorf("echo %q: got %q, %v", want, got, err)
							return
						}
						if i%20 == 0 {
							u, err := c.GetUidByClientId(ctx, id)
							if err != nil || u != uid {
								errs <- fmt.Errorf("uid of %s: got %q, %v; want %q", id, u, err, uid)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := f.accepted.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	f := newFake(t, "")
	c := dialFake(t, f)
	ctx := ctxT(t)

	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if on, err := c.IsOnline(ctx, "c1"); err != nil || !on {
		t.Errorf("IsOnline(c1) = %v, %v", on, err)
	}
	if on, err := c.IsOnline(ctx, "zz"); err != nil || on {
		t.Errorf("IsOnline(zz) = %v, %v", on, err)
	}
	if err := c.BindUid(ctx, "c1", "4"); err != nil {
		t.Fatal(err)
	}
	if err := c.BindUid(ctx, "c2", "4"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.SendToUid(ctx, []string{"4", "5"}, []byte(`{"type":"task_done","id":329}`)); err != nil || n != 2 {
		t.Errorf("SendToUid = %d, %v", n, err)
	}
	if m, err := c.IsUidsOnline(ctx, []string{"4", "5"}); err != nil || !reflect.DeepEqual(m, map[string]bool{"4": true, "5": false}) {
		t.Errorf("IsUidsOnline = %v, %v", m, err)
	}
	if ids, err := c.GetClientIdByUid(ctx, "nobody"); err != nil || len(ids) != 0 {
		t.Errorf("GetClientIdByUid(nobody) = %v, %v", ids, err)
	}
	if u, err := c.GetUidByClientId(ctx, "c3"); err != nil || u != "" {
		t.Errorf("GetUidByClientId(c3) = %q, %v", u, err)
	}
	if err := c.JoinGroup(ctx, "c1", "g"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.GetClientIdCountByGroup(ctx, "g"); err != nil || n != 1 {
		t.Errorf("GetClientIdCountByGroup(g) = %d, %v", n, err)
	}
	if n, err := c.GetClientIdCountByGroup(ctx, ""); err != nil || n != 100 {
		t.Errorf("GetClientIdCountByGroup(\"\") = %d, %v", n, err)
	}
	if err := c.SetSession(ctx, "c1", map[string]any{"name": "ann"}); err != nil {
		t.Fatal(err)
	}
	if s, err := c.GetSession(ctx, "c1"); err != nil || string(s) != `{"name":"ann"}` {
		t.Errorf("GetSession(c1) = %s, %v", s, err)
	}
	if s, err := c.GetSession(ctx, "zz"); err != nil || s != nil {
		t.Errorf("GetSession(zz) = %s, %v", s, err)
	}
	if err := c.SendBinaryToClient(ctx, "c1", []byte{0, 1, 2, 255}); err != nil {
		t.Fatal(err)
	}
	// sendToAll: nil only → everyone (field absent); empty only → nobody ([]).
	if _, err := c.SendToAll(ctx, []byte("a"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendToAll(ctx, []byte("b"), []string{}, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	lines := f.requests()
	if got := lines[len(lines)-2]; strings.Contains(got, "client_id_array") || strings.Contains(got, "exclude") {
		t.Errorf("SendToAll(nil only) sent %s", got)
	}
	if got := lines[len(lines)-1]; !strings.Contains(got, `"client_id_array":[]`) || !strings.Contains(got, `"exclude_client_id":["c1"]`) {
		t.Errorf("SendToAll(empty only) sent %s", got)
	}
	// Every request line is JSON with an increasing numeric id.
	for i, l := range lines {
		var req struct {
			ID  *uint64 `json:"id"`
			Cmd string  `json:"cmd"`
		}
		if err := json.Unmarshal([]byte(l), &req); err != nil || req.ID == nil || *req.ID != uint64(i+1) || req.Cmd == "" {
			t.Errorf("request %d: %s (%v)", i, l, err)
		}
	}
	if !strings.Contains(lines[len(lines)-1], `"data":"b"`) {
		t.Errorf("data not sent as a JSON string: %s", lines[len(lines)-1])
	}
}

func TestErrors(t *testing.T) {
	f := newFake(t, "")
	c := dialFake(t, f)
	ctx := ctxT(t)

	err := c.SendToClient(ctx, "gone", []byte("hi"))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeNotFound || !IsNotFound(err) {
		t.Fatalf("SendToClient(gone) = %v, want not_found", err)
	}
	if !strings.Contains(err.Error(), "not_found") || !strings.Contains(err.Error(), "gone") {
		t.Errorf("message %q", err)
	}
	if _, err := c.Do(ctx, "noSuchCmd", nil); !hasCode(err, CodeUnknownCmd) || IsNotFound(err) {
		t.Errorf("Do(noSuchCmd) = %v", err)
	}
	if err := c.SetSession(ctx, "c1", []int{1}); !hasCode(err, CodeInvalid) {
		t.Errorf("SetSession(array) = %v", err)
	}
	// Refused locally: invalid UTF-8 text never reaches the server.
	before := len(f.requests())
	if err := c.SendToClient(ctx, "c1", []byte{0xff, 'a'}); !hasCode(err, CodeInvalid) {
		t.Errorf("SendToClient(bad UTF-8) = %v", err)
	}
	if _, err := c.Do(ctx, "echo", map[string]any{"id": 1}); err == nil {
		t.Error("Do accepted an id argument")
	}
	if n := len(f.requests()); n != before {
		t.Errorf("%d requests sent for locally refused calls", n-before)
	}
	// The connection is still fine after errors.
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if f.accepted.Load() != 1 {
		t.Errorf("errors made the client reconnect")
	}
}

func TestContextTimeout(t *testing.T) {
	f := newFake(t, "")
	c := dialFake(t, f)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, "sleep", map[string]any{"ms": 300})
	if err != context.DeadlineExceeded {
		t.Fatalf("Do(sleep) = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("returned after %v", d)
	}
	// The late answer is discarded; the next call gets its own.
	raw, err := c.Do(ctxT(t), "echo", map[string]any{"v": "after"})
	if err != nil || string(raw) != `"after"` {
		t.Errorf("echo after timeout = %s, %v", raw, err)
	}
	// A canceled context fails at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.Ping(ctx2); err != context.Canceled {
		t.Errorf("Ping(canceled) = %v", err)
	}
	if f.accepted.Load() != 1 {
		t.Errorf("a timeout made the client reconnect")
	}
}

func TestReconnect(t *testing.T) {
	f := newFake(t, "")
	c := dialFake(t, f)
	ctx := ctxT(t)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// The server reads "hang" and 10 more requests, then drops the
	// connection without answering: all 11 calls fail with ErrConnLost.
	const n = 10
	errs := make(chan error, n+1)
	go func() { _, err := c.Do(ctx, "hang", map[string]any{"n": n}); errs <- err }()
	for len(f.requests()) < 2 {
		time.Sleep(time.Millisecond)
	}
	for range n {
		go func() { errs <- c.Ping(ctx) }()
	}
	for range n + 1 {
		if err := <-errs; !errors.Is(err, ErrConnLost) {
			t.Errorf("pending call: %v, want ErrConnLost", err)
		}
	}
	// The next call redials.
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping after drop: %v", err)
	}
	if got := f.accepted.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}

	// A wrong id in an answer is a protocol error: the connection is dropped.
	if _, err := c.Do(ctx, "badid", nil); !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrConnLost) {
		t.Errorf("badid: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping after protocol error: %v", err)
	}

	// Server gone: calls fail (not hang), with backoff between dials.
	f.stop()
	for i := range 3 {
		start := time.Now()
		err := c.Ping(ctx)
		if err == nil {
			t.Fatalf("Ping %d with the server gone succeeded", i)
		}
		t.Logf("Ping %d: %v after %v", i, err, time.Since(start))
	}
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.Ping(short); err != context.DeadlineExceeded {
		t.Errorf("Ping during backoff = %v, want context.DeadlineExceeded", err)
	}
}

func TestAuth(t *testing.T) {
	f := newFake(t, `s"3cret`)
	if _, err := Dial(context.Background(), f.addr(), WithSecret("wrong")); !hasCode(err, CodeUnauthorized) {
		t.Fatalf("Dial with a wrong secret = %v", err)
	}
	// Without a secret, the first call is refused and the server hangs up.
	c0 := dialFake(t, f)
	if err := c0.Ping(ctxT(t)); !hasCode(err, CodeUnauthorized) {
		t.Errorf("Ping without secret = %v", err)
	}
	c0.Close()
	c := dialFake(t, f, WithSecret(`s"3cret`))
	ctx := ctxT(t)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	c.Do(ctx, "hang", map[string]any{"n": 0}) // drop; the next call re-authenticates
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	first := append([]string(nil), f.first...)
	f.mu.Unlock()
	want := `{"cmd":"auth","secret":"s\"3cret","id":0}`
	if len(first) != 4 || first[2] != want || first[3] != want {
		t.Errorf("first lines %q, want the auth line %s on both connections", first, want)
	}
}

func TestClose(t *testing.T) {
	f := newFake(t, "")
	c := dialFake(t, f)
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() { _, err := c.Do(ctx, "sleep", map[string]any{"ms": 300}); errc <- err }()
	for len(f.requests()) < 1 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	if err := <-errc; !errors.Is(err, ErrConnLost) || !errors.Is(err, ErrClosed) {
		t.Errorf("call in flight at Close: %v", err)
	}
	if err := c.Ping(ctx); err != ErrClosed {
		t.Errorf("Ping after Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestLongLines(t *testing.T) {
	f := newFake(t, "")
	c := dialFake(t, f)
	big := strings.Repeat("x\u00e9\"", 100_000) // 400 kB, beyond the 64 kB read buffer
	for range 3 {
		raw, err := c.Do(ctxT(t), "echo", map[string]any{"v": big})
		var got string
		if err == nil {
			err = json.Unmarshal(raw, &got)
		}
		if err != nil || got != big {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(big), len(got), err)
		}
	}
}

func TestDialFails(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), addr, WithDialTimeout(time.Second)); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}

func TestAppendString(t *testing.T) {
	cases := []string{"", "plain", `"quoted"\`, "\x00\x01\x1f\x7f", "tab\tnl\ncr\r", "é漢字🙂",
		"\xff", "a\xc3", "\xed\xa0\x80", "\u2028\u2029", "<&>", strings.Repeat("ab\"", 50)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		got := wire.AppendString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("wire.AppendString(%q) = %s: not JSON", s, got)
		}
		var back, want string
		json.Unmarshal(got, &back)
		ref, _ := json.Marshal(s)
		json.Unmarshal(ref, &want)
		if back != want {
			t.Fatalf("wire.AppendString(%q) decodes to %q, encoding/json to %q", s, back, want)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("wire.AppendString(%q) decodes to %q", s, back)
		}
		if gotB := wire.AppendString(nil, []byte(s)); string(gotB) != string(got) {
			t.Fatalf("[]byte and string forms differ for %q", s)
		}
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		line               string
		ok                 bool
		id, result, errObj string
		valid              bool
	}{
		{`{"id":1,"ok":true,"result":true}`, true, "1", "true", "", true},
		{` { "result" : {"a":"}]\"{","b":[1,{"c":null}]} , "ok":true ,"id":"x\"y"} `, true, `"x\"y"`, `{"a":"}]\"{","b":[1,{"c":null}]}`, "", true},
		{`{"ok":false,"error":{"code":"bad_json","message":"x"}}`, false, "", "", `{"code":"bad_json","message":"x"}`, true},
		{`{"id":7,"ok":true,"result":-1.5e3,"extra":[]}`, true, "7", "-1.5e3", "", true},
		{`{"id":1,"result":true}`, false, "", "", "", false}, // no ok
		{`{"id":1,"ok":1}`, false, "", "", "", false},
		{`{"id":1,"ok":true} x`, false, "", "", "", false},
		{`{"id":1,"ok":true`, false, "", "", "", false},
		{`{"id":1,"ok":true,"result":"abc}`, false, "", "", "", false},
		{`ok`, false, "", "", "", false},
		{`{}`, false, "", "", "", false},
		{`{"ok":true,"result":[1,]}`, false, "", "", "", false}, // the one scanner validates, not only delimits
		{`{"ok":true,"result":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, true, "", strings.Repeat("[", 100) + strings.Repeat("]", 100), "", true},
	} {
		r, valid := parseResponse([]byte(tc.line))
		if valid != tc.valid {
			t.Errorf("%s: valid %v", tc.line, valid)
			continue
		}
		if valid && (r.ok != tc.ok || string(r.id) != tc.id || string(r.result) != tc.result || string(r.errObj) != tc.errObj) {
			t.Errorf("%s: got ok=%v id=%s result=%s error=%s", tc.line, r.ok, r.id, r.result, r.errObj)
		}
	}
}

// fastServer answers every line with {"id":N,"ok":true,"result":true},
// allocating nothing, so benchmarks measure the client.
func fastServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { nc.Close() })
			go func() {
				br := bufio.NewReaderSize(nc, 64<<10)
				bw := bufio.NewWriterSize(nc, 64<<10)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					i := bytes.LastIndex(line, []byte(`"id":`))
					j := i + 5
					for j < len(line) && line[j] >= '0' && line[j] <= '9' {
						j++
					}
					bw.WriteString(`{"id":`)
					bw.Write(line[i+5 : j])
					bw.WriteString(`,"ok":true,"result":true}` + "\n")
					if br.Buffered() == 0 && bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkSendToClientParallel: many goroutines sharing one Client.
func BenchmarkSendToClientParallel(b *testing.B) {
	c, err := Dial(context.Background(), fastServer(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	msg := []byte(`{"type":"task_done","id":329}`)
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.SendToClient(ctx, "00000000a3f1c2d40001", msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
