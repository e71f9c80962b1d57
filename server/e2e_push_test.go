package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// backend is a raw text-port connection, as a PHP or Python backend would
// open it.
type backend struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func (s *testServer) backend(t *testing.T) *backend {
	t.Helper()
	nc, err := net.Dial("tcp", s.TextAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &backend{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<20)}
}

func (b *backend) send(line string) {
	b.t.Helper()
	if _, err := io.WriteString(b.nc, line+"\n"); err != nil {
		b.t.Fatalf("write: %v", err)
	}
}

func (b *backend) readLine() string {
	b.t.Helper()
	_ = b.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := b.r.ReadString('\n')
	if err != nil {
		b.t.Fatalf("read answer: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

// call sends one request and decodes its answer.
func (b *backend) call(line string) map[string]any {
	b.t.Helper()
	b.send(line)
	ans := b.readLine()
	var m map[string]any
	if err := json.Unmarshal([]byte(ans), &m); err != nil {
		b.t.Fatalf("answer %q is not JSON: %v", ans, err)
	}
	return m
}

func (b *backend) expectOK(line string) any {
	b.t.Helper()
	m := b.call(line)
	if m["ok"] != true {
		b.t.Fatalf("%s → %v, want ok", line, m)
	}
	return m["result"]
}

func (b *backend) expectError(line, code string) {
	b.t.Helper()
	m := b.call(line)
	e, _ := m["error"].(map[string]any)
	if m["ok"] != false || e["code"] != code || e["message"] == "" {
		b.t.Fatalf("%s → %v, want error %s", line, m, code)
	}
}

// expectClosed asserts the server closes the connection within d.
func (b *backend) expectClosed(d time.Duration) {
	b.t.Helper()
	_ = b.nc.SetReadDeadline(time.Now().Add(d))
	if _, err := io.Copy(io.Discard, b.r); err != nil {
		b.t.Fatalf("connection not closed by the server: %v", err)
	}
}

func TestPush_SeedFlowTaskDone(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	phone, pc, stranger := srv.dial(t, "/notify"), srv.dial(t, "/notify"), srv.dial(t, "/notify")
	ids := []string{}
	for _, c := range []*wsClient{phone, pc, stranger} {
		ids = append(ids, c.expectType("init")["client_id"].(string))
	}
	b := srv.backend(t)
	b.expectOK(fmt.Sprintf(`{"cmd":"bindUid","client_id":%q,"uid":4}`, ids[0]))
	b.expectOK(fmt.Sprintf(`{"cmd":"bindUid","client_id":%q,"uid":"4"}`, ids[1]))
	b.expectOK(fmt.Sprintf(`{"cmd":"bindUid","client_id":%q,"uid":"5"}`, ids[2]))
	n := b.expectOK(`{"id":"t329","cmd":"sendToUid","uid":4,"data":"{\"type\":\"task_done\",\"id\":329}"}`)
	if n != 2.0 {
		t.Fatalf("sendToUid reached %v clients, want 2", n)
	}
	for _, c := range []*wsClient{phone, pc} {
		if m := c.expectType("task_done"); m["id"] != 329.0 {
			t.Fatalf("got %v", m)
		}
	}
	stranger.expectSilence(100 * time.Millisecond)

	// The seed's own protocol: a line with a uid and no cmd, answered ok/fail.
	b.send(`{"uid":"4","type":"lock","state":"closed"}`)
	if ans := b.readLine(); ans != "ok" {
		t.Fatalf("seed push answer %q, want ok", ans)
	}
	for _, c := range []*wsClient{phone, pc} {
		if m := c.expectType("lock"); m["state"] != "closed" {
			t.Fatalf("got %v", m)
		}
	}
	b.send(`{"uid":"nobody","type":"lock"}`)
	if ans := b.readLine(); ans != "fail" {
		t.Fatalf("seed push to an offline uid answered %q, want fail", ans)
	}
}

func TestPush_CommandSet(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	a, c := srv.dial(t, "/notify"), srv.dial(t, "/notify")
	ida, idc := a.expectType("init")["client_id"].(string), c.expectType("init")["client_id"].(string)
	b := srv.backend(t)
	q := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }

	if r := b.expectOK(`{"cmd":"ping"}`); r != "pong" {
		t.Fatalf("ping = %v", r)
	}
	b.expectOK(q(`{"cmd":"sendToClient","client_id":%q,"data":"one"}`, ida))
	if _, d := a.read(); string(d) != "one" {
		t.Fatalf("sendToClient delivered %q", d)
	}
	b.expectOK(q(`{"cmd":"sendToClient","client_id":%q,"data":"AAEC","binary":true}`, ida))
	if typ, d := a.read(); typ != 2 || !bytes.Equal(d, []byte{0, 1, 2}) {
		t.Fatalf("binary sendToClient delivered %d %x", typ, d)
	}
	if n := b.expectOK(q(`{"cmd":"sendToAll","data":"all","exclude_client_id":[%q]}`, idc)); n != 1.0 {
		t.Fatalf("sendToAll excluding c reached %v", n)
	}
	a.read()
	if n := b.expectOK(`{"cmd":"sendToAll","data":"x","client_id_array":[]}`); n != 0.0 {
		t.Fatalf("sendToAll to an empty list reached %v", n)
	}
	b.expectOK(q(`{"cmd":"joinGroup","client_id":%q,"group":"g"}`, ida))
	b.expectOK(q(`{"cmd":"joinGroup","client_id":%q,"group":7}`, idc))
	b.expectOK(q(`{"cmd":"bindUid","client_id":%q,"uid":"u"}`, ida))
	checks := []struct {
		line string
		want string
	}{
		{q(`{"cmd":"isOnline","client_id":%q}`, ida), `1`},
		{`{"cmd":"isOnline","client_id":"00000000000000000000"}`, `0`},
		{`{"cmd":"isUidOnline","uid":"u"}`, `1`},
		{`{"cmd":"isUidsOnline","uids":["u","v"]}`, `{"u":1,"v":0}`},
		{`{"cmd":"getClientIdByUid","uid":"u"}`, q(`[%q]`, ida)},
		{`{"cmd":"batchGetClientIdByUid","uids":["u","v"]}`, q(`{"u":[%q],"v":[]}`, ida)},
		{q(`{"cmd":"getUidByClientId","client_id":%q}`, ida), `"u"`},
		{q(`{"cmd":"getUidByClientId","client_id":%q}`, idc), `null`},
		{`{"cmd":"getClientIdCountByGroup","group":"g"}`, `1`},
		{`{"cmd":"getClientIdCountByGroup"}`, `2`},
		{`{"cmd":"batchGetClientIdCountByGroup","groups":["g","7","none"]}`, `{"7":1,"g":1,"none":0}`},
		{`{"cmd":"getClientIdListByGroup","group":"g"}`, q(`[%q]`, ida)},
		{`{"cmd":"getUidListByGroup","group":"g"}`, `["u"]`},
		{`{"cmd":"getUidCountByGroup","group":"g"}`, `1`},
		{`{"cmd":"getAllUidList"}`, `["u"]`},
		{`{"cmd":"getAllUidCount"}`, `1`},
		{`{"cmd":"getAllClientIdCount"}`, `2`},
		{`{"cmd":"getAllGroupIdList"}`, `["7","g"]`},
		{`{"cmd":"getAllGroupUidList"}`, `{"g":["u"]}`},
		{`{"cmd":"getAllGroupClientIdList"}`, q(`{"7":[%q],"g":[%q]}`, idc, ida)},
	}
	for _, ck := range checks {
		got, _ := json.Marshal(b.expectOK(ck.line))
		var want any
		_ = json.Unmarshal([]byte(ck.want), &want)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("%s → %s, want %s", ck.line, got, wantJSON)
		}
	}
	if n := b.expectOK(`{"cmd":"sendToGroup","group":["g",7],"data":"grp"}`); n != 2.0 {
		t.Fatalf("sendToGroup reached %v", n)
	}
	a.read()
	c.read()
	b.expectOK(q(`{"cmd":"setSession","client_id":%q,"session":{"a":{"b":1,"c":2}}}`, ida))
	b.expectOK(q(`{"cmd":"updateSession","client_id":%q,"session":{"a":{"c":3},"d":true}}`, ida))
	sess, _ := json.Marshal(b.expectOK(q(`{"cmd":"getSession","client_id":%q}`, ida)))
	if string(sess) != `{"a":{"b":1,"c":3},"d":true}` {
		t.Fatalf("session = %s", sess)
	}
	all, _ := json.Marshal(b.expectOK(`{"cmd":"getAllClientSessions"}`))
	if !strings.Contains(string(all), ida) || !strings.Contains(string(all), idc) {
		t.Fatalf("getAllClientSessions = %s", all)
	}
	byGroup, _ := json.Marshal(b.expectOK(`{"cmd":"getClientSessionsByGroup","group":"g"}`))
	if string(byGroup) != q(`{%q:{"a":{"b":1,"c":3},"d":true}}`, ida) {
		t.Fatalf("getClientSessionsByGroup = %s", byGroup)
	}
	b.expectOK(q(`{"cmd":"unbindUid","client_id":%q,"uid":"u"}`, ida))
	b.expectOK(q(`{"cmd":"leaveGroup","client_id":%q,"group":"g"}`, ida))
	b.expectOK(`{"cmd":"ungroup","group":7}`)
	if r := b.expectOK(`{"cmd":"getAllGroupIdList"}`); len(r.([]any)) != 0 {
		t.Fatalf("groups left: %v", r)
	}
	b.expectOK(q(`{"cmd":"closeClient","client_id":%q,"data":"bye"}`, ida))
	if _, d := a.read(); string(d) != "bye" {
		t.Fatalf("closeClient final message %q", d)
	}
	if code := a.expectClose(); code != 1000 {
		t.Fatalf("closeClient code %d", code)
	}
	b.expectOK(q(`{"cmd":"destroyClient","client_id":%q}`, idc))
	c.expectClose2()
}

// expectClose2 waits for the connection to end, with or without a close
// frame (destroyClient drops it).
func (c *wsClient) expectClose2() {
	c.t.Helper()
	for {
		f, ok := c.next(5 * time.Second)
		if !ok {
			c.t.Fatal("connection still open after 5s")
		}
		if f.err != nil {
			return
		}
	}
}

func TestPush_BadInputKeepsConnection(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	b := srv.backend(t)
	b.expectError(`{"cmd":`, "bad_json")
	b.expectError(`[1,2,3]`, "bad_request")
	b.expectError(`"just a string"`, "bad_request")
	b.expectError(`{"cmd":"fly"}`, "unknown_cmd")
	b.expectError(`{"cmd":42}`, "bad_request")
	b.expectError(`{"data":"no cmd, no uid"}`, "bad_request")
	b.expectError(`{"cmd":"sendToUid","uid":{"x":1},"data":"d"}`, "bad_request")
	b.expectError(`{"cmd":"sendToClient","client_id":"c"}`, "bad_request")
	b.expectError(`{"cmd":"sendToClient","client_id":"00000000000000000000","data":"d"}`, "not_found")
	b.expectError(`{"cmd":"bindUid","client_id":"00000000000000000000","uid":"u"}`, "not_found")
	b.expectError(`{"cmd":"setSession","client_id":"x","session":[1]}`, "bad_request")
	b.expectError(`{"cmd":"sendToAll","data":"!!","binary":true}`, "invalid")
	if r := b.expectOK(`{"cmd":"getSession","client_id":"00000000000000000000"}`); r != nil {
		t.Fatalf("getSession of an offline client = %v, want null", r)
	}
	b.send("")
	b.send("   \r")
	m := b.call(`{"id":{"n":[1]},"cmd":"ping"}`) // empty lines got no answer
	if id, _ := json.Marshal(m["id"]); string(id) != `{"n":[1]}` {
		t.Fatalf("id echoed as %s", id)
	}
}

func TestPush_LimitsCloseOnlyTheOffender(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) {
		c.Push.MaxLine = 1024
		c.Push.LineTimeout.Duration = 300 * time.Millisecond
		c.Push.WriteTimeout.Duration = 300 * time.Millisecond
	})
	ws := srv.dial(t, "/notify")
	id := ws.expectType("init")["client_id"].(string)
	good := srv.backend(t)

	long := srv.backend(t)
	long.send(`{"cmd":"ping","pad":"` + strings.Repeat("x", 2000) + `"}`)
	if ans := long.readLine(); !strings.Contains(ans, `"code":"line_too_long"`) {
		t.Fatalf("long line answered %q", ans)
	}
	long.expectClosed(2 * time.Second)

	stall := srv.backend(t)
	_, _ = io.WriteString(stall.nc, `{"cmd":"pi`)
	stall.expectClosed(3 * time.Second)

	deaf := srv.backend(t) // never reads its answers
	line := []byte(`{"cmd":"getAllClientIdList"}` + "\n")
	var werr error
	deadline := time.Now().Add(10 * time.Second)
	for werr == nil && time.Now().Before(deadline) {
		_ = deaf.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, werr = deaf.nc.Write(bytes.Repeat(line, 1000))
	}
	if werr == nil {
		t.Fatal("a backend that never reads was not disconnected")
	}

	good.expectOK(fmt.Sprintf(`{"cmd":"sendToClient","client_id":%q,"data":"still pushing"}`, id))
	if _, d := ws.read(); string(d) != "still pushing" {
		t.Fatalf("got %q", d)
	}
}

func TestPush_RandomLines(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	b := srv.backend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	want := 0
	for i := 0; i < 10_000; i++ {
		line := make([]byte, 1+rng.IntN(200))
		for j := range line {
			line[j] = byte(rng.IntN(256))
			if line[j] == '\n' {
				line[j] = '{'
			}
		}
		if len(bytes.TrimSpace(bytes.TrimSuffix(line, []byte{'\r'}))) > 0 {
			want++
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	go func() { _, _ = b.nc.Write(buf.Bytes()) }()
	for i := 0; i < want; i++ {
		if ans := b.readLine(); !strings.HasPrefix(ans, "{") && ans != "fail" {
			t.Fatalf("answer %d: %q", i, ans)
		}
	}
	b.expectOK(`{"cmd":"ping"}`)
}

func TestPush_Auth(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) { c.Push.Secret = "s3cret" })
	noAuth := srv.backend(t)
	noAuth.expectError(`{"cmd":"ping"}`, "unauthorized")
	noAuth.expectClosed(2 * time.Second)
	wrong := srv.backend(t)
	wrong.expectError(`{"cmd":"auth","secret":"guess"}`, "unauthorized")
	wrong.expectClosed(2 * time.Second)
	ok := srv.backend(t)
	ok.expectOK(`{"cmd":"auth","secret":"s3cret"}`)
	ok.expectOK(`{"cmd":"ping"}`)

	api := "http://" + srv.AdminAddr().String() + "/api/ping"
	if code, _ := httpPost(t, api, "", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("HTTP without token: %d", code)
	}
	if code, body := httpPost(t, api, "s3cret", `{}`); code != 200 || !strings.Contains(body, `"pong"`) {
		t.Fatalf("HTTP with token: %d %s", code, body)
	}
}

func httpPost(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	return httpDo(t, http.MethodPost, url, token, body)
}

// httpDo makes one HTTP request, with a Bearer token when token is not
// empty, and returns the status and the body.
func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPush_HTTPAPI(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	ws := srv.dial(t, "/notify")
	id := ws.expectType("init")["client_id"].(string)
	base := "http://" + srv.AdminAddr().String()
	if code, body := httpPost(t, base+"/api/bindUid", "", fmt.Sprintf(`{"client_id":%q,"uid":9}`, id)); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("bindUid: %d %s", code, body)
	}
	if code, body := httpPost(t, base+"/api/sendToUid", "", `{"id":1,"uid":"9","data":"via http"}`); code != 200 || body != "{\"id\":1,\"ok\":true,\"result\":1}\n" {
		t.Fatalf("sendToUid: %d %q", code, body)
	}
	if _, d := ws.read(); string(d) != "via http" {
		t.Fatalf("got %q", d)
	}
	code, body := httpPost(t, base+"/api/batch", "", `[{"cmd":"ping"},{"cmd":"sendToUid","uid":9,"data":"b"},{"cmd":"nope"},7]`)
	var answers []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &answers) != nil || len(answers) != 4 {
		t.Fatalf("batch: %d %s", code, body)
	}
	if answers[0]["result"] != "pong" || answers[1]["result"] != 1.0 || answers[2]["ok"] != false || answers[3]["ok"] != false {
		t.Fatalf("batch answers %v", answers)
	}
	ws.read()
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/api/fly", `{}`, 404},
		{"/api/ping", `{"cmd":`, 400},
		{"/api/ping", `{"cmd":"sendToAll"}`, 200}, // ok:false, cmd mismatch
		{"/nowhere", `{}`, 404},
	} {
		if code, body := httpPost(t, base+tc.path, "", tc.body); code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.path, tc.body, code, body, tc.code)
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "{\"ok\":true,\"clients\":1}\n" {
		t.Fatalf("healthz: %d %s", resp.StatusCode, b)
	}
}

func TestPush_ManyBackendsPipelining(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		b := srv.backend(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for n := 0; n < 500; n++ {
				fmt.Fprintf(&buf, "{\"id\":%d,\"cmd\":\"ping\"}\n", n)
			}
			go func() { _, _ = b.nc.Write(buf.Bytes()) }()
			for n := 0; n < 500; n++ {
				_ = b.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, err := b.r.ReadString('\n')
				if err != nil || line != fmt.Sprintf("{\"id\":%d,\"ok\":true,\"result\":\"pong\"}\n", n) {
					t.Errorf("answer %d = %q, %v", n, line, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
