package server_test

// The SDK conformance suite (issue 15, docs/SDK-CONFORMANCE.md): one
// scenario drives every build of the conformance handler — the same
// command protocol written on each SDK — through every host function and
// every event, twice: against the real server (WebSocket clients, a
// text-port backend) and in-process with wasmgatetest. Each run records a
// transcript of everything every client received; the scenario asserts
// the expected answers as it goes, and the transcripts of every build
// must equal the Go build's, line for line, on both drivers.
//
// Client ids differ from run to run: a transcript names clients (<A>,
// <W>…) instead, and sorts the entries of list answers (the registry's
// order is not part of the ABI).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/server"
	"github.com/wasmgate/wasmgate/wasmgatetest"
)

// sdkBuilds is the one list of conformance handler builds the suite runs,
// each built by `make guests` into handlers/MODULE.wasm. A build in this
// list that is missing fails the suite (run `make guests`); the first is
// the reference the others are compared with.
var sdkBuilds = []struct{ sdk, module string }{
	{"Go", "conformance"},
	{"C", "c-conformance"},
	{"Rust", "rust-conformance"},
	{"AssemblyScript", "as-conformance"},
}

// confConfig is the module config every build gets (on_start): unicode,
// so that the config's bytes are checked too.
const confConfig = "mode=conformance é"

// confWait bounds every wait for a frame: a generous "no freeze" bound,
// never a timed assertion.
const confWait = 10 * time.Second

// TestConformanceSDK runs the scenario against every build, on the real
// server and in-process, and compares the transcripts.
func TestConformanceSDK(t *testing.T) {
	type result struct{ server, inproc []string }
	results := make([]result, len(sdkBuilds))
	for i, b := range sdkBuilds {
		path, size, err := confBuild(guestDir, b.sdk, b.module)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s.wasm, %d bytes", b.sdk, b.module, size)
		t.Run(b.sdk+"/server", func(t *testing.T) {
			results[i].server = runConformance(t, b.module, newServerDriver(t, b.module))
		})
		t.Run(b.sdk+"/inprocess", func(t *testing.T) {
			h := wasmgatetest.Load(t, path, wasmgatetest.Options{Config: confConfig, Name: b.module})
			results[i].inproc = runConformance(t, b.module, &inprocDriver{h: h})
		})
	}
	if t.Failed() {
		return
	}
	ref := results[0]
	// The in-process harness must see what the server's clients see, but
	// for the steps only a server can run.
	if d := diffLines(serverOnlyCut(ref.server), ref.inproc); d != "" {
		t.Errorf("%s: in-process transcript differs from the server's: %s", sdkBuilds[0].sdk, d)
	}
	for i, b := range sdkBuilds[1:] {
		r := results[i+1]
		if d := diffLines(ref.server, r.server); d != "" {
			t.Errorf("%s differs from %s on the server: %s", b.sdk, sdkBuilds[0].sdk, d)
		}
		if d := diffLines(ref.inproc, r.inproc); d != "" {
			t.Errorf("%s differs from %s in-process: %s", b.sdk, sdkBuilds[0].sdk, d)
		}
	}
}

// confBuild finds a build of the list in dir: a missing one is an error
// that says how to build it.
func confBuild(dir, sdk, module string) (path string, size int64, err error) {
	path = filepath.Join(dir, module+".wasm")
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, fmt.Errorf("the %s conformance build %s is in sdkBuilds but not built (run `make guests`): %w", sdk, module, err)
	}
	return path, st.Size(), nil
}

// TestConformanceSDK_MissingBuildFailsLoudly checks that a build in the
// list whose module was not built is an error naming `make guests`, not
// a build quietly skipped.
func TestConformanceSDK_MissingBuildFailsLoudly(t *testing.T) {
	empty := t.TempDir()
	for _, b := range sdkBuilds {
		if _, _, err := confBuild(empty, b.sdk, b.module); err == nil || !strings.Contains(err.Error(), "make guests") {
			t.Errorf("%s missing: err %v, want one naming `make guests`", b.module, err)
		}
	}
}

// serverOnlyMark starts the part of a transcript that only the real
// server runs (a task stopped by task_timeout: wasmgatetest has no task
// deadline to set).
const serverOnlyMark = "--- server only ---"

func serverOnlyCut(lines []string) []string {
	if i := slices.Index(lines, serverOnlyMark); i >= 0 {
		return lines[:i]
	}
	return lines
}

// diffLines describes the first difference between two transcripts, or
// returns "".
func diffLines(want, got []string) string {
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			ctx := ""
			if i > 0 && i-1 < len(want) {
				ctx = " (after " + strconv.Quote(want[i-1]) + ")"
			}
			return fmt.Sprintf("line %d%s: want %q, got %q", i+1, ctx, w, g)
		}
	}
	return ""
}

// ---- Drivers ---------------------------------------------------------------

// confFrame is one thing a client received: a text or binary message, or
// the end of the connection with its close code.
type confFrame struct {
	data   []byte
	binary bool
	closed bool
	code   int
}

func (f confFrame) String() string {
	switch {
	case f.closed:
		return fmt.Sprintf("close %d", f.code)
	case f.binary:
		return fmt.Sprintf("B:%x", f.data)
	}
	return "T:" + string(f.data)
}

// confPeer is one client of the handler.
type confPeer interface {
	send(t *testing.T, text string)
	sendBinary(t *testing.T, b []byte)
	next(t *testing.T) confFrame
	close(t *testing.T)
}

// confDriver connects clients and pushes as a backend would.
type confDriver interface {
	// connect runs the handshake with query and an X-Conf header; a
	// refused client returns nil and the HTTP status.
	connect(t *testing.T, query, xconf string) (confPeer, int)
	pushSend(t *testing.T, id, text string)
	pushBindUid(t *testing.T, id, uid string)
	serverOnly() bool
}

// serverDriver runs the scenario against a real server.
type serverDriver struct {
	srv     *testServer
	module  string
	backend *backend
}

func newServerDriver(t *testing.T, module string) *serverDriver {
	dir := handlersWith(t)
	data, err := os.ReadFile(filepath.Join(guestDir, module+".wasm"))
	if err != nil {
		t.Fatal(err) // confBuild has checked it exists
	}
	if err := os.WriteFile(filepath.Join(dir, module+".wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, func(c *server.Config) {
		timeout := config.Duration{Duration: 300 * time.Millisecond}
		c.Modules = map[string]server.ModuleConfig{module: {Config: confConfig, TaskTimeout: &timeout}}
	})
	return &serverDriver{srv: srv, module: module, backend: srv.backend(t)}
}

func (d *serverDriver) serverOnly() bool { return true }

func (d *serverDriver) connect(t *testing.T, query, xconf string) (confPeer, int) {
	t.Helper()
	h := http.Header{}
	if xconf != "" {
		h.Set("X-Conf", xconf)
	}
	u := d.srv.url + "/" + d.module
	if query != "" {
		u += "?" + query
	}
	ws, resp, err := d.srv.wsDialer().Dial(u, h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, resp.StatusCode
		}
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &wsClient{t: t, ws: ws, in: make(chan frame, 4096), done: make(chan struct{})}
	go c.readAll()
	t.Cleanup(func() { ws.Close(); <-c.done })
	return &serverPeer{c: c}, 0
}

func (d *serverDriver) pushSend(t *testing.T, id, text string) {
	t.Helper()
	d.backend.expectOK(fmt.Sprintf(`{"cmd":"sendToClient","client_id":%q,"data":%q}`, id, text))
}

func (d *serverDriver) pushBindUid(t *testing.T, id, uid string) {
	t.Helper()
	d.backend.expectOK(fmt.Sprintf(`{"cmd":"bindUid","client_id":%q,"uid":%q}`, id, uid))
}

type serverPeer struct {
	c      *wsClient
	closed *confFrame
}

func (p *serverPeer) send(t *testing.T, text string) {
	t.Helper()
	if err := p.c.ws.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (p *serverPeer) sendBinary(t *testing.T, b []byte) {
	t.Helper()
	if err := p.c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (p *serverPeer) next(t *testing.T) confFrame {
	t.Helper()
	if p.closed != nil {
		return *p.closed
	}
	f, ok := p.c.next(confWait)
	if !ok {
		t.Fatalf("no frame within %v", confWait)
	}
	if f.err != nil {
		var ce *websocket.CloseError
		if !errors.As(f.err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", f.err)
		}
		p.closed = &confFrame{closed: true, code: ce.Code}
		return *p.closed
	}
	return confFrame{data: f.data, binary: f.typ == websocket.BinaryMessage}
}

func (p *serverPeer) close(t *testing.T) {
	t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := p.c.ws.WriteMessage(websocket.CloseMessage, msg); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// inprocDriver runs the scenario in-process with wasmgatetest.
type inprocDriver struct{ h *wasmgatetest.Handler }

func (d *inprocDriver) serverOnly() bool { return false }

func (d *inprocDriver) connect(t *testing.T, query, xconf string) (confPeer, int) {
	t.Helper()
	req := wasmgatetest.Request{Query: query}
	if xconf != "" {
		req.Headers = [][2]string{{"X-Conf", xconf}}
	}
	c, status, err := d.h.TryConnect(req)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if status != 0 {
		return nil, status
	}
	return &inprocPeer{h: d.h, c: c}, 0
}

func (d *inprocDriver) pushSend(t *testing.T, id, text string) {
	t.Helper()
	if err := d.h.Host().SendToClient(context.Background(), id, abi.Message{Data: []byte(text)}); err != nil {
		t.Fatal(err)
	}
}

func (d *inprocDriver) pushBindUid(t *testing.T, id, uid string) {
	t.Helper()
	if err := d.h.Host().BindUid(context.Background(), id, uid); err != nil {
		t.Fatal(err)
	}
}

type inprocPeer struct {
	h     *wasmgatetest.Handler
	c     *wasmgatetest.Client
	queue []abi.Message
}

func (p *inprocPeer) send(t *testing.T, text string) {
	t.Helper()
	if err := p.c.Send(text); err != nil {
		t.Fatalf("on_message: %v", err)
	}
}

func (p *inprocPeer) sendBinary(t *testing.T, b []byte) {
	t.Helper()
	if err := p.c.SendBinary(b); err != nil {
		t.Fatalf("on_message: %v", err)
	}
}

// next returns the next message, waiting for one sent by a timer or a
// task; once the client is closed and every message read, its close.
func (p *inprocPeer) next(t *testing.T) confFrame {
	t.Helper()
	var f confFrame
	p.h.WaitFor(t, "a message", func() bool {
		p.queue = append(p.queue, p.c.Take()...)
		if len(p.queue) > 0 {
			m := p.queue[0]
			p.queue = p.queue[1:]
			f = confFrame{data: m.Data, binary: m.Binary}
			return true
		}
		if closed, code := p.c.Closed(); closed {
			if p.queue = append(p.queue, p.c.Take()...); len(p.queue) == 0 {
				f = confFrame{closed: true, code: code}
				return true
			}
		}
		return false
	})
	return f
}

func (p *inprocPeer) close(t *testing.T) {
	t.Helper()
	if err := p.c.Close(); err != nil {
		t.Fatalf("on_close: %v", err)
	}
}

// ---- The scenario runner -------------------------------------------------------

// confRun records what every client receives.
type confRun struct {
	t      *testing.T
	d      confDriver
	path   string // the module's route as the handler encodes it
	peers  map[string]confPeer
	ids    map[string]string // client name → id
	order  []string          // client names in connection order
	lines  []string
	seq    int
	closed map[string]bool
	// pending holds asynchronous event frames read before the scenario
	// awaited them.
	pending map[string][]confFrame
}

// listAnswers are the commands whose answer is a list (sorted in the
// transcript).
var listAnswers = map[string]bool{
	"get_client_id_by_uid": true, "get_all_client_id_list": true, "get_all_uid_list": true,
	"get_client_id_list_by_group": true, "get_uid_list_by_group": true, "get_all_group_id_list": true,
}

// sendsTo are the commands that may make other clients receive something:
// after them every client is synced, so that what they got is recorded
// at that point.
func sendsTo(cmd string) bool {
	return strings.HasPrefix(cmd, "send_to_") || cmd == "close_client"
}

// asyncEvents are the prefixes of what the handler sends to the "watch"
// group from on_close, on_finish and on_timer: they arrive whenever the
// event runs, so the transcript records them where the scenario awaits
// them, not where they happen to arrive.
var asyncEvents = []string{"closed ", "finish ", "timer "}

// norm replaces client ids by names and the module's route by <path>.
func (r *confRun) norm(s string) string {
	for name, id := range r.ids {
		s = strings.ReplaceAll(s, id, "<"+name+">")
	}
	return strings.ReplaceAll(s, r.path, "<path>")
}

func (r *confRun) record(name string, f confFrame) {
	r.lines = append(r.lines, name+" <- "+r.norm(f.String()))
}

// connect connects a client called name and records its greeting (or its
// refusal).
func (r *confRun) connect(name, query, xconf string) {
	r.t.Helper()
	p, status := r.d.connect(r.t, query, xconf)
	if p == nil {
		r.lines = append(r.lines, fmt.Sprintf("%s refused %d", name, status))
		return
	}
	f := p.next(r.t)
	hello, ok := strings.CutPrefix(string(f.data), "hello ")
	if f.binary || f.closed || !ok || len(hello) < 20 {
		r.t.Fatalf("%s: first frame %v, want a hello line", name, f)
	}
	r.peers[name], r.ids[name] = p, hello[:20]
	r.order = append(r.order, name)
	r.record(name, f)
}

// expand replaces {NAME} with the client id of NAME.
func (r *confRun) expand(cmd string) string {
	for name, id := range r.ids {
		cmd = strings.ReplaceAll(cmd, "{"+name+"}", id)
	}
	return cmd
}

// do sends cmd from client name, records every frame up to its answer
// and returns the answer (normalised, without the tag).
func (r *confRun) do(name, cmd string) string {
	r.t.Helper()
	r.seq++
	tag := strconv.Itoa(r.seq)
	r.lines = append(r.lines, name+" -> "+cmd)
	r.peers[name].send(r.t, tag+" "+r.expand(cmd))
	ans := r.until(name, tag+" ")
	fields := strings.Fields(cmd)
	if len(fields) > 0 && listAnswers[fields[0]] {
		if v, ok := strings.CutPrefix(ans, "ok "); ok && v != "-" {
			l := strings.Split(v, ",")
			slices.Sort(l)
			ans = "ok " + strings.Join(l, ",")
		}
	}
	r.lines[len(r.lines)-1] = name + " <- " + tag + " " + ans
	if len(fields) > 0 && sendsTo(fields[0]) {
		r.sync()
	}
	return ans
}

// expect is do, asserting the answer.
func (r *confRun) expect(name, cmd, want string) string {
	r.t.Helper()
	got := r.do(name, cmd)
	if got != want {
		r.t.Errorf("%s: %s → %q, want %q", name, cmd, got, want)
	}
	return got
}

// until records name's frames until one starts with prefix, and returns
// that one's rest (normalised).
func (r *confRun) until(name, prefix string) string {
	r.t.Helper()
	for i, f := range r.pending[name] {
		if rest, ok := strings.CutPrefix(string(f.data), prefix); ok {
			r.pending[name] = slices.Delete(r.pending[name], i, i+1)
			r.record(name, f)
			return r.norm(rest)
		}
	}
	for {
		f := r.peers[name].next(r.t)
		if !f.binary && !f.closed && !strings.HasPrefix(string(f.data), prefix) &&
			slices.ContainsFunc(asyncEvents, func(p string) bool { return bytes.HasPrefix(f.data, []byte(p)) }) {
			r.pending[name] = append(r.pending[name], f)
			continue
		}
		r.record(name, f)
		if f.closed {
			r.t.Fatalf("%s closed while waiting for %q", name, prefix)
		}
		if rest, ok := strings.CutPrefix(string(f.data), prefix); ok && !f.binary {
			return r.norm(rest)
		}
	}
}

// sync records every open client's frames up to the answer of a no-op
// command: a client receives messages in the order they were sent, so
// whatever was sent to it before is recorded by then.
func (r *confRun) sync() {
	r.t.Helper()
	for _, name := range r.order {
		if r.closed[name] {
			continue
		}
		r.peers[name].send(r.t, "~ config")
		r.until(name, "~ ")
		r.lines = r.lines[:len(r.lines)-1] // the no-op's answer
	}
}

// awaitClose records name's frames up to the end of its connection.
func (r *confRun) awaitClose(name string) {
	r.t.Helper()
	for {
		f := r.peers[name].next(r.t)
		r.record(name, f)
		if f.closed {
			r.closed[name] = true
			return
		}
	}
}

// poll repeats cmd until it answers want (a key expiring), recording
// only that last answer.
func (r *confRun) poll(name, cmd, want string) {
	r.t.Helper()
	deadline := time.Now().Add(confWait)
	for {
		n, seq := len(r.lines), r.seq
		if r.do(name, cmd) == want {
			return
		}
		// Forget the try, and its tag: how many tries it takes varies.
		r.lines, r.seq = r.lines[:n], seq
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %s never answered %q", name, cmd, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// enc encodes a value as the protocol does (the handlers' enc).
func confEnc(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	var s strings.Builder
	for _, c := range b {
		if c < '!' || c > '~' || c == '%' || c == ',' || c == '-' {
			fmt.Fprintf(&s, "%%%02X", c)
		} else {
			s.WriteByte(c)
		}
	}
	return s.String()
}

// runConformance runs the scenario on one build and returns its
// transcript.
func runConformance(t *testing.T, module string, d confDriver) []string {
	r := &confRun{t: t, d: d, path: confEnc([]byte("/" + module)), peers: map[string]confPeer{}, ids: map[string]string{}, closed: map[string]bool{}, pending: map[string][]confFrame{}}
	ok := func(s string) string { return "ok " + s }
	x := func(n int) string { return strings.Repeat("x", n) }
	const nobody = "00000000000000000000"

	// Events: on_start's config, on_handshake (fields, headers, refusal),
	// on_connect.
	r.connect("W", "a=1&b=%C3%A9", "hi there")
	r.connect("A", "", "")
	r.connect("B", "", "")
	r.connect("C", "", "")
	r.connect("R", "refuse=451", "")
	r.connect("R", "x=1&refuse=599", "")
	r.expect("W", "join_group {W} watch", "ok")
	r.expect("A", "config", ok("mode=conformance%20%C3%A9"))

	// Requests the handler cannot parse.
	r.expect("A", "nosuch", "bad")
	r.expect("A", "send_to_client {A}", "bad")
	r.expect("A", "kv_get a b", "bad")
	r.expect("A", "kv_get %ZZ", "bad")
	r.expect("A", "kv_set k v 1x", "bad")

	// Sending: unicode, binary, empty, errors.
	r.expect("A", "send_to_client {B} h%C3%A9llo%20%E4%B8%96%E7%95%8C%20%F0%9F%98%80 0", "ok")
	r.expect("A", "send_to_client {B} %00%01%FE%FF 1", "ok")
	r.expect("A", "send_to_client {B} - 0", "ok")
	r.expect("A", "send_to_client {B} %FF 0", "err 2")
	r.expect("A", "send_to_client {B} hi 4", "err 2")
	r.expect("A", "send_to_client "+nobody+" hi 0", "err 3")
	r.expect("A", "send_to_client - hi 0", "err 2")
	r.expect("A", "send_to_client {B} *70000 0", "err 4")
	r.expect("A", "send_to_all all 0 - {A}", ok("3"))
	r.expect("A", "send_to_all only 2 {A},{B} {B}", ok("1"))
	r.expect("A", "send_to_all none 2 - -", ok("0"))
	r.expect("A", "send_to_all everyone 0 {A} -", ok("4")) // without the only bit the list is ignored
	r.expect("A", "send_to_all %00%FF 1 - {W},{A}", ok("2"))
	r.expect("A", "send_to_all x 8 - -", "err 2")
	r.expect("A", "send_to_all x 2 {A},- -", ok("1")) // an empty entry of a target list matches no one

	// Clients and uids.
	r.expect("A", "bind_uid {A} alice", "ok")
	r.expect("A", "bind_uid {B} alice", "ok")
	r.expect("A", "bind_uid {C} bob", "ok")
	r.expect("A", "is_uid_online alice", ok("1"))
	r.expect("A", "is_uid_online nobody", ok("0"))
	r.expect("A", "get_client_id_by_uid alice", ok("<A>,<B>"))
	r.expect("A", "get_client_id_by_uid nobody", ok("-"))
	r.expect("A", "get_uid_by_client_id {A}", ok("alice"))
	r.expect("A", "get_uid_by_client_id {W}", ok("-"))
	r.expect("A", "get_uid_by_client_id "+nobody, "err 3")
	r.expect("A", "send_to_uid alice,bob hi%20uids 0", ok("3"))
	r.expect("A", "send_to_uid - x 0", ok("0"))
	r.expect("A", "send_to_uid bob %01 1", ok("1"))
	r.expect("A", "get_all_uid_list", ok("alice,bob"))
	r.expect("A", "get_all_uid_count", ok("2"))
	r.expect("A", "unbind_uid {B} bob", "ok") // bound to another uid: no effect
	r.expect("A", "get_client_id_by_uid alice", ok("<A>,<B>"))
	r.expect("A", "unbind_uid {B} alice", "ok")
	r.expect("A", "get_client_id_by_uid alice", ok("<A>"))
	r.expect("A", "bind_uid {C} %E6%9D%8E", "ok") // replaces bob
	r.expect("A", "get_all_uid_list", ok("%E6%9D%8E,alice"))
	r.expect("A", "bind_uid {A} *257", "err 4")
	r.expect("A", "bind_uid {A} -", "err 2")
	r.expect("A", "bind_uid "+nobody+" u", "err 3")
	r.expect("A", "is_online {A}", ok("1"))
	r.expect("A", "is_online "+nobody, ok("0"))
	r.expect("A", "get_all_client_id_count", ok("4"))
	r.expect("A", "get_all_client_id_list", ok("<A>,<B>,<C>,<W>"))

	// Groups.
	for _, c := range []string{"A", "B", "C"} {
		r.expect("A", "join_group {"+c+"} room", "ok")
	}
	r.expect("A", "join_group {C} other", "ok")
	r.expect("A", "get_client_id_count_by_group room", ok("3"))
	r.expect("A", "get_client_id_list_by_group room", ok("<A>,<B>,<C>"))
	r.expect("A", "get_uid_list_by_group room", ok("%E6%9D%8E,alice"))
	r.expect("A", "get_uid_count_by_group room", ok("2"))
	r.expect("A", "send_to_group room,other grp 0 {A}", ok("2"))
	r.expect("A", "send_to_group - x 0 -", ok("0"))
	r.expect("A", "send_to_group room %02 1 -", ok("3"))
	r.expect("A", "get_all_group_id_list", ok("other,room,watch"))
	r.expect("A", "leave_group {B} room", "ok")
	r.expect("A", "get_client_id_count_by_group room", ok("2"))
	r.expect("A", "ungroup other", "ok")
	r.expect("A", "get_all_group_id_list", ok("room,watch"))
	r.expect("A", "join_group {A} -", "err 2")
	r.expect("A", "join_group "+nobody+" g", "err 3")
	r.expect("A", "join_group {A} *257", "err 4")
	r.expect("A", "get_client_id_count_by_group empty", ok("0"))
	r.expect("A", "get_client_id_list_by_group empty", ok("-"))
	r.expect("A", "get_uid_list_by_group empty", ok("-"))

	// Sessions; a big one needs a second call with a bigger buffer.
	r.expect("A", "get_session {A}", ok("{}"))
	r.expect("A", `set_session {A} {"name":"ann","n":1}`, "ok")
	r.expect("A", `update_session {A} {"prefs":{"lang":"fr"},"n":2}`, "ok")
	r.expect("A", "get_session {A}", ok(confEnc([]byte(`{"n":2,"name":"ann","prefs":{"lang":"fr"}}`))))
	r.expect("A", "set_session {A} [1]", "err 2")
	r.expect("A", "set_session {A} nope", "err 2")
	r.expect("A", "get_session "+nobody, "err 3")
	big := `{"big":"` + x(3000) + `","u":"\u00e9"}`
	r.expect("A", "set_session {B} "+confEnc([]byte(big)), "ok")
	r.expect("A", "get_session {B}", ok(confEnc([]byte(`{"big":"`+x(3000)+`","u":"é"}`))))

	// The key-value store.
	r.expect("A", "kv_get k", "err 3")
	r.expect("A", "kv_set k h%C3%A9 0", "ok")
	r.expect("A", "kv_get k", ok("h%C3%A9"))
	r.expect("A", "kv_set k - 0", "ok")
	r.expect("A", "kv_get k", ok("-"))
	r.expect("A", "kv_set big *5000 0", "ok")
	r.expect("A", "kv_get big", ok(x(5000)))
	r.expect("A", "kv_set bin %00%FF 0", "ok")
	r.expect("A", "kv_get bin", ok("%00%FF"))
	r.expect("A", "kv_set - v 0", "err 2")
	r.expect("A", "kv_set *1025 v 0", "err 4")
	r.expect("A", "kv_set k *70000 0", "err 4")
	r.expect("A", "kv_set k v -1", "err 2")
	r.expect("A", "kv_delete k", ok("1"))
	r.expect("A", "kv_delete k", ok("0"))
	r.expect("A", "kv_incr n 5 0", ok("5"))
	r.expect("A", "kv_incr n -7 0", ok("-2"))
	r.expect("A", "kv_get n", ok("%2D2"))
	r.expect("A", "kv_set s abc 0", "ok")
	r.expect("A", "kv_incr s 1 0", "err 2")
	r.expect("A", "kv_set m 9223372036854775807 0", "ok")
	r.expect("A", "kv_incr m 1 0", "err 2")
	r.expect("A", "kv_incr n 1 -1", "err 2")
	r.expect("A", "kv_cas c a b 0 0", ok("0"))
	r.expect("A", "kv_cas c - v1 0 1", ok("1"))
	r.expect("A", "kv_cas c - v2 0 1", ok("0"))
	r.expect("A", "kv_cas c v1 v2 0 0", ok("1"))
	r.expect("A", "kv_cas c v1 v3 0 0", ok("0"))
	r.expect("A", "kv_cas c v2 v3 -1 0", "err 2")
	r.expect("A", "kv_get c", ok("v2"))
	r.expect("A", "kv_set t v 1", "ok")
	r.poll("A", "kv_get t", "err 3")
	r.expect("A", "kv_incr tn 1 1", ok("1"))
	r.poll("A", "kv_get tn", "err 3")

	// Utilities, and calls that belong to other events.
	r.expect("A", "log 1 hello%20log", "ok")
	r.expect("A", "log 7 x", "err 2")
	before := time.Now().UnixNano()
	now := r.do("A", "now")
	if n, err := strconv.ParseInt(strings.TrimPrefix(now, "ok "), 10, 64); err != nil || n < before-int64(time.Minute) || n > time.Now().UnixNano()+int64(time.Minute) {
		t.Errorf("now → %q, want the time (%d)", now, before)
	}
	r.lines[len(r.lines)-1] = "A <- now"
	r.expect("A", "closing_state", "err 9")
	r.expect("A", "task_result r", "err 9")

	// Tasks: on_task, task_result, on_finish with each status.
	r.expect("A", "task ok%20r%C3%A9sult", ok("1"))
	r.until("W", "finish ")
	r.do("A", "task fail%20why")
	r.until("W", "finish ")
	r.expect("A", "task *70000", "err 4")
	r.expect("A", "task -", ok("3")) // an empty payload: mode "" fails
	r.until("W", "finish ")

	// Timers: on_timer, clear_timer.
	r.do("A", "set_timer 0 tick")
	r.until("W", "timer ")
	later := strings.TrimPrefix(r.do("A", "set_timer 60000 later"), "ok ")
	r.expect("A", "clear_timer "+later, ok("1"))
	r.expect("A", "clear_timer "+later, ok("0"))
	r.expect("A", "clear_timer 999999", ok("0"))
	r.expect("A", "set_timer -1 x", "err 2")

	// Backend pushes through the text port (in-process: the same calls).
	d.pushSend(t, r.ids["A"], "pushed é")
	d.pushBindUid(t, r.ids["A"], "carol")
	r.sync()
	r.expect("A", "get_uid_by_client_id {A}", ok("carol"))

	// A binary message is echoed.
	r.peers["A"].sendBinary(t, []byte{0, 1, 2, 0xff})
	if f := r.peers["A"].next(t); !f.binary || !bytes.Equal(f.data, []byte{0, 1, 2, 0xff}) {
		t.Errorf("binary echo: got %v", f)
	} else {
		r.record("A", f)
	}

	// Closing: close codes, on_close with closing_state (a big session
	// needs a second call), a client closing itself.
	r.expect("A", "close_client {B} x 65601536", "err 2") // 1001 is the server's
	r.expect("A", "close_client {B} x 65536", "err 2")    // 1
	r.expect("A", "close_client "+nobody+" - 0", "err 3")
	r.expect("A", "bind_uid {B} bea", "ok")
	r.expect("A", "join_group {B} g2", "ok")
	r.expect("A", "join_group {B} g1", "ok")
	// B's close is recorded below, not by sync. 262209536 is 4001<<16.
	r.closed["B"] = true
	r.expect("A", "close_client {B} bye 262209536", "ok")
	r.awaitClose("B")
	r.until("W", "closed ")
	r.peers["C"].close(t)
	r.closed["C"] = true
	r.until("W", "closed ")
	r.expect("A", "get_all_client_id_count", ok("2"))
	r.expect("A", "get_all_uid_list", ok("carol"))
	r.expect("A", "get_all_group_id_list", ok("room,watch"))
	r.closed["A"] = true
	r.expect("W", "close_client {A} - 262144000", "ok") // 4000, no message
	r.awaitClose("A")
	r.until("W", "closed ")
	r.sync()
	for name, p := range r.pending {
		for _, f := range p {
			t.Errorf("%s: unexpected %v", name, f)
		}
	}

	if d.serverOnly() {
		// A task stopped by task_timeout ends with TaskCrashed and the
		// host's error text (which names the guest's functions: not
		// compared).
		r.lines = append(r.lines, serverOnlyMark)
		r.do("W", "task hang")
		fin := r.until("W", "finish ")
		if f := strings.Fields(fin); len(f) != 3 || f[1] != "2" || f[2] == "-" {
			t.Errorf("hanging task: finish %q, want status 2 and an error text", fin)
		}
		r.lines[len(r.lines)-1] = "W <- T:finish <id> 2 <error text>"
	}
	return r.lines
}
