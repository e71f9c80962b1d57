package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// TestPush_FramesIntactUnderBackpressure drives every path of the
// connection writer at once: direct writes that the socket takes only in
// part, the writer goroutine's batches, payloads large enough to be written
// with writev, binary frames, and pings every few milliseconds that must
// slip in between frames, never inside one. A client that stops reading for
// a while must then receive every message of two backends intact, each
// backend's in order.
func TestPush_FramesIntactUnderBackpressure(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) {
		c.Server.PingInterval.Duration = 5 * time.Millisecond
		c.Server.IdleTimeout.Duration = 30 * time.Second
		c.Server.SendQueueSize = 10_000
	})
	ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/notify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var init struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(data, &init); err != nil || init.ClientID == "" {
		t.Fatalf("init message %q", data)
	}

	const perBackend = 400
	payload := func(from string, i int) []byte {
		p := from + strconv.Itoa(i) + ":"
		switch i % 4 {
		case 0:
			return []byte(p + strings.Repeat("x", 40_000)) // > 16 KiB: writev
		case 1:
			return []byte(p + strings.Repeat("y", 200)) // 16-bit length
		default:
			return []byte(p)
		}
	}
	// A alone first: its direct writes fill the socket and one is taken
	// only in part. Then B, while A's backlog is still being written.
	var wg sync.WaitGroup
	for _, from := range []string{"A", "B"} {
		b := srv.backend(t)
		if from == "B" {
			wg.Wait()
		}
		wg.Go(func() {
			var buf bytes.Buffer
			for i := range perBackend {
				data := payload(from, i)
				if i%5 == 4 {
					fmt.Fprintf(&buf, `{"cmd":"sendToClient","client_id":%q,"binary":true,"data":%q}`+"\n", init.ClientID, base64.StdEncoding.EncodeToString(data))
				} else {
					fmt.Fprintf(&buf, `{"cmd":"sendToClient","client_id":%q,"data":%q}`+"\n", init.ClientID, data)
				}
			}
			go func() { _, _ = b.nc.Write(buf.Bytes()) }()
			for range perBackend {
				_ = b.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				line, err := b.r.ReadString('\n')
				if err != nil || !strings.HasPrefix(line, `{"ok":true`) {
					t.Errorf("backend %s: answer %q, %v", from, line, err)
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // not reading: the socket fills up
	next := map[string]int{"A": 0, "B": 0}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for n := 0; n < 2*perBackend; n++ {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d messages: %v", n, err)
		}
		from := string(data[:1])
		i := next[from]
		if want := payload(from, i); !bytes.Equal(data, want) {
			t.Fatalf("message %d from %s: got %d bytes %.40q…, want %d bytes %.40q…", i, from, len(data), data, len(want), want)
		}
		if wantTyp := map[bool]int{true: websocket.BinaryMessage, false: websocket.TextMessage}[i%5 == 4]; typ != wantTyp {
			t.Fatalf("message %d from %s: frame type %d, want %d", i, from, typ, wantTyp)
		}
		next[from]++
	}
	wg.Wait()
}

// TestServer_AnswersTheClientsClose checks the close handshake: the server
// echoes the client's close code.
func TestServer_AnswersTheClientsClose(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	c := srv.dial(t, "/notify")
	c.expectType("init")
	msg := websocket.FormatCloseMessage(4001, "bye")
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := c.expectClose(); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
	eventually(t, "the client to be gone", func() bool {
		n, _ := srv.Gateway().GetAllClientIdCount(t.Context())
		return n == 0
	})
}

// TestServer_AnswersPings checks that pings, with and without a payload,
// get their pongs.
func TestServer_AnswersPings(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), nil)
	ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/notify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pongs := make(chan string, 2)
	ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for _, payload := range []string{"p1", ""} {
		if err := ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-pongs:
			if got != payload {
				t.Fatalf("pong %q, want %q", got, payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no pong for ping %q", payload)
		}
	}
}
