package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// Hostile backends (issue 8, items 11, 14 and 16): each attack runs while a
// canary client keeps echoing on another route and an authenticated backend
// keeps being served.

const hostileSecret = "s3cret"

// hostileServer serves the echo route for the canary with push.secret set.
func hostileServer(t *testing.T, edit func(*server.Config)) *testServer {
	t.Helper()
	return startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Push.Secret = hostileSecret
		if edit != nil {
			edit(c)
		}
	})
}

// authedBackend is a text-port connection that has authenticated.
func (s *testServer) authedBackend(t *testing.T) *backend {
	t.Helper()
	b := s.backend(t)
	b.expectOK(`{"cmd":"auth","secret":"` + hostileSecret + `"}`)
	return b
}

// rawDial opens a text-port connection with a small reader: hundreds of
// them must not weigh on the RSS the test measures.
func rawDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, bufio.NewReaderSize(nc, 4096)
}

// answeredAfter waits until the canary has completed a round trip more
// than it had when called (or failed): proof it is served after an attack
// that ended too quickly for its ticker.
func (c *canary) answeredAfter(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	n := c.sent
	c.mu.Unlock()
	deadline := time.Now().Add(2 * canaryBound) // a no-freeze bound
	for time.Now().Before(deadline) {
		c.mu.Lock()
		done := c.sent > n || c.err != nil
		c.mu.Unlock()
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("canary: no round trip completed after the attack")
}

// settledRSS is the RSS after a collection has returned what it can.
func settledRSS() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rssBytes()
}

// samplePeakRSS samples RSS every 5 ms until the returned function is
// called, which returns the highest value seen: an attack's cost is what it
// holds at its worst, not what is left after it.
func samplePeakRSS() func() int64 {
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		peak := rssBytes()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- max(peak, rssBytes())
				return
			case <-tick.C:
				peak = max(peak, rssBytes())
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

// TestPushHostile_UnfinishedLinesBeforeAuthHoldLittle opens 300
// connections that never authenticate, each sending most of a max_line
// (1 MiB) line without its newline. Before the fix the server buffered all
// of it (300 MiB, for as long as the peers liked); now each is cut at the
// pre-auth limit with a line_too_long answer, and RSS stays flat.
func TestPushHostile_UnfinishedLinesBeforeAuthHoldLittle(t *testing.T) {
	srv := hostileServer(t, func(c *server.Config) { c.Push.LineTimeout.Duration = time.Minute })
	canary := srv.startCanary(t, "/echo")
	good := srv.authedBackend(t)
	before := settledRSS()

	const conns, lineLen, chunk = 300, 1 << 20, 16 << 10
	piece := []byte(strings.Repeat("x", chunk))
	type peer struct {
		nc net.Conn
		r  *bufio.Reader
	}
	peers := make([]peer, conns)
	var wg sync.WaitGroup
	peak := samplePeakRSS()
	for i := range peers {
		nc, r := rawDial(t, srv.TextAddr().String())
		peers[i] = peer{nc, r}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // a no-freeze bound
			if _, err := io.WriteString(nc, `{"cmd":"auth","secret":"`); err != nil {
				return
			}
			for sent := 0; sent < lineLen-2*chunk; sent += chunk {
				if _, err := nc.Write(piece); err != nil {
					return // the server has closed it: what we want
				}
			}
		}()
	}
	wg.Wait()
	held := peak() - before
	t.Logf("peak RSS growth with %d unauthenticated 1 MiB lines in flight: %+d MiB", conns, held>>20)

	good.expectOK(`{"cmd":"ping"}`)
	for i, p := range peers {
		_ = p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := p.r.ReadString('\n')
		if err != nil || !strings.Contains(line, `"code":"line_too_long"`) || !strings.Contains(line, "before auth") {
			t.Fatalf("peer %d: answer %q, %v; want line_too_long before auth", i, line, err)
		}
		if _, err := io.Copy(io.Discard, p.r); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("peer %d not closed: %v", i, err)
		}
	}
	if held > 64<<20 {
		t.Errorf("RSS grew by %d MiB holding %d unauthenticated lines; want under 64 MiB", held>>20, conns)
	}
	canary.check()
}

// isReset reports a connection reset: the server closed with our unread
// bytes still queued, which is a close too.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestPushHostile_TrickledLineCutAtDeadline sends one line a byte at a
// time, well inside push.line_timeout between bytes: the line must be cut
// line_timeout after its first byte, not kept alive by every byte (the old
// reader re-armed the deadline on each read, so it never timed out).
func TestPushHostile_TrickledLineCutAtDeadline(t *testing.T) {
	srv := hostileServer(t, func(c *server.Config) { c.Push.LineTimeout.Duration = time.Second })
	canary := srv.startCanary(t, "/echo")
	good := srv.authedBackend(t)
	slow := srv.authedBackend(t) // authenticated: the deadline is not only for strangers
	closed := make(chan error, 1)
	go func() {
		_ = slow.nc.SetReadDeadline(time.Now().Add(time.Minute))
		_, err := io.Copy(io.Discard, slow.r)
		closed <- err
	}()
	trickleDone := make(chan struct{})
	go func() {
		defer close(trickleDone)
		line := `{"cmd":"ping","pad":"` + strings.Repeat("x", 200) // 200 bytes × 150 ms = 30 s
		for i := 0; i < len(line); i++ {
			if _, err := slow.nc.Write([]byte{line[i]}); err != nil {
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("trickling backend: %v, want a close by the server", err)
		}
	case <-trickleDone:
		t.Fatal("the trickled line outlived push.line_timeout many times over")
	}
	good.expectOK(`{"cmd":"ping"}`)
	canary.answeredAfter(t)
	canary.check()
}

// TestPushHostile_MaxBackends fills push.max_backends: one more connection
// gets a too_many_backends line and is closed, is counted, and the others
// keep working; once one leaves, a new one is accepted.
func TestPushHostile_MaxBackends(t *testing.T) {
	const limit = 5
	srv := hostileServer(t, func(c *server.Config) { c.Push.MaxBackends = limit })
	canary := srv.startCanary(t, "/echo")
	var bs []*backend
	for i := 0; i < limit; i++ {
		bs = append(bs, srv.authedBackend(t)) // the round trip proves it is registered
	}
	extra := srv.backend(t)
	ans := extra.readLine()
	if !strings.Contains(ans, `"code":"too_many_backends"`) || !strings.Contains(ans, "push.max_backends") {
		t.Fatalf("backend #%d got %q, want too_many_backends naming push.max_backends", limit+1, ans)
	}
	extra.expectClosed(5 * time.Second)
	for _, b := range bs {
		b.expectOK(`{"cmd":"ping"}`)
	}
	if st := srv.Status(); st.Backends != limit || st.BackendsRefused != 1 {
		t.Fatalf("status: %d backends, %d refused; want %d, 1", st.Backends, st.BackendsRefused, limit)
	}
	code, metrics := httpGet(t, "http://"+srv.AdminAddr().String()+"/metrics", hostileSecret)
	if code != 200 || !strings.Contains(metrics, "wasmgate_backends_refused_total 1\n") {
		t.Fatalf("metrics: %d\n%s", code, metrics)
	}

	bs[0].nc.Close()
	deadline := time.Now().Add(10 * time.Second) // a no-freeze bound
	for srv.Status().Backends == limit {
		if time.Now().After(deadline) {
			t.Fatal("a closed backend is still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.authedBackend(t).expectOK(`{"cmd":"ping"}`)
	canary.answeredAfter(t)
	canary.check()
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	return httpDo(t, http.MethodGet, url, token, "")
}

// TestPushHostile_NestingBomb sends lines of '[' as deep as max_line allows,
// before and after authenticating, on the text port and the HTTP API, four
// at a time. Before the fix each took ~190 MiB of stack (one line of a few
// MiB would overflow Go's 1 GB stack and kill the process); now each is
// refused at 64 levels with an error naming the depth, and RSS stays flat.
func TestPushHostile_NestingBomb(t *testing.T) {
	srv := hostileServer(t, nil)
	canary := srv.startCanary(t, "/echo")
	good := srv.authedBackend(t)
	bomb := strings.Repeat("[", 1<<20-1) // max_line, newline included
	api := "http://" + srv.AdminAddr().String() + "/api/"
	before := settledRSS()

	// Not authenticated: a small bomb fits the pre-auth limit, is refused
	// by depth and closes the connection; a big one is cut by length.
	pre := srv.backend(t)
	pre.send(strings.Repeat("[", 1000))
	if ans := pre.readLine(); !strings.Contains(ans, "more than 64 levels") {
		t.Fatalf("pre-auth small bomb: %q", ans)
	}
	pre.expectClosed(5 * time.Second)
	// Without a token the server answers 401 after a small part of the
	// body and closes: the rest of the 1 MiB in flight may then reset the
	// connection before the client reads the answer. Either is a refusal;
	// what must not come back is a parse of the bomb.
	{
		nc, r := rawDial(t, srv.AdminAddr().String())
		go func() {
			_, _ = io.WriteString(nc, "POST /api/ping HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(bomb))+"\r\n\r\n"+bomb)
		}()
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, err := r.ReadString('\n')
		if err == nil && !strings.HasPrefix(status, "HTTP/1.1 401 ") || err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("HTTP bomb without a token: %q, %v; want 401 or a reset", status, err)
		}
	}

	var wg sync.WaitGroup
	peak := samplePeakRSS()
	for i := 0; i < 4; i++ {
		wg.Add(3)
		nc, r := rawDial(t, srv.TextAddr().String())
		go func() { // unauthenticated, on the text port
			defer wg.Done()
			_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
			go func() { _, _ = io.WriteString(nc, bomb+"\n") }()
			if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "line_too_long") {
				t.Errorf("pre-auth bomb: %q, %v", line, err)
			}
		}()
		nc2, r2 := rawDial(t, srv.TextAddr().String())
		go func(nc net.Conn, r *bufio.Reader) { // authenticated, on the text port
			defer wg.Done()
			_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
			go func() {
				_, _ = io.WriteString(nc, `{"cmd":"auth","secret":"`+hostileSecret+`"}`+"\n"+bomb+"\n"+`{"cmd":"ping"}`+"\n")
			}()
			for _, want := range []string{`"result":true`, "more than 64 levels", `"pong"`} {
				if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, want) {
					t.Errorf("authenticated bomb: %q, %v; want %s", line, err, want)
					return
				}
			}
		}(nc2, r2)
		go func() { // authenticated, on the HTTP API
			defer wg.Done()
			if code, body := httpPost(t, api+"ping", hostileSecret, bomb); code != http.StatusBadRequest || !strings.Contains(body, "more than 64 levels") {
				t.Errorf("HTTP bomb: %d %.200s", code, body)
			}
		}()
	}
	wg.Wait()
	if code, body := httpPost(t, api+"batch", hostileSecret, `[{"cmd":"ping"},{"cmd":"ping","x":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}]`); code != 200 || !strings.Contains(body, "more than 64 levels") || !strings.Contains(body, `"pong"`) {
		t.Fatalf("HTTP batch with a deep item: %d %.300s", code, body)
	}
	grew := peak() - before
	t.Logf("peak RSS growth under 12 nesting bombs of 1 MiB, 4 at a time: %+d MiB", grew>>20)
	// Legitimately held: the authenticated lines and HTTP bodies themselves
	// (1 MiB each, with their buffers' growth); before the fix: ~2.4 GB.
	if grew > 128<<20 {
		t.Errorf("RSS grew by %d MiB; want under 128 MiB", grew>>20)
	}
	good.expectOK(`{"cmd":"ping"}`)
	canary.check()
}

// TestLoadConfig_MaxBackends checks push.max_backends: documented in the
// repo's config.toml with its default, and out-of-range values refused with
// an error naming the key.
func TestLoadConfig_MaxBackends(t *testing.T) {
	cfg, err := server.LoadConfig("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := server.DefaultConfig().Push.MaxBackends; cfg.Push.MaxBackends != want || want != 1024 {
		t.Errorf("config.toml max_backends = %d, default %d", cfg.Push.MaxBackends, want)
	}
	for _, v := range []string{"0", "-1", "2000000"} {
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte("[push]\nmax_backends = "+v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := server.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "push.max_backends: "+v+" is out of range") {
			t.Errorf("max_backends = %s: err = %v", v, err)
		}
	}
}

// TestPushHostile_HTTPBodyBeforeAuth announces a max_line body on the HTTP
// API without a token and sends none of it: the server must answer 401 at
// once instead of waiting to buffer the body (it used to read the whole
// body, up to push.max_line per connection, before checking the token).
// With a token, a body over push.max_line is a 413 naming the limit.
func TestPushHostile_HTTPBodyBeforeAuth(t *testing.T) {
	srv := hostileServer(t, func(c *server.Config) { c.Push.LineTimeout.Duration = time.Minute })
	canary := srv.startCanary(t, "/echo")
	for _, tc := range []struct {
		name, auth string
		length     int
		want       string
	}{
		{"stranger", "", 1 << 20, "HTTP/1.1 401 "},
		{"wrong token", "Authorization: Bearer guess\r\n", 1 << 20, "HTTP/1.1 401 "},
		{"oversize", "Authorization: Bearer " + hostileSecret + "\r\n", 1<<20 + 1, "HTTP/1.1 413 "},
	} {
		nc, r := rawDial(t, srv.AdminAddr().String())
		head := "POST /api/ping HTTP/1.1\r\nHost: x\r\n" + tc.auth + "Content-Length: " + strconv.Itoa(tc.length) + "\r\n\r\n{"
		if _, err := io.WriteString(nc, head); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second)) // a no-freeze bound, well under line_timeout
		status, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(status, tc.want) {
			t.Fatalf("%s: status line %q, %v; want %q before the body is sent", tc.name, status, err, tc.want)
		}
		body, _ := io.ReadAll(r)
		if code := map[bool]string{true: "unauthorized", false: "line_too_long"}[strings.Contains(tc.want, "401")]; !strings.Contains(string(body), `"code":"`+code+`"`) {
			t.Fatalf("%s: answer %q, want code %s", tc.name, body, code)
		}
	}
	if code, body := httpPost(t, "http://"+srv.AdminAddr().String()+"/api/ping", hostileSecret, `{}`); code != 200 || !strings.Contains(body, "pong") {
		t.Fatalf("authorized ping: %d %s", code, body)
	}
	canary.answeredAfter(t)
	canary.check()
}
