package server_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// stackBytes is the memory in goroutine stacks, after two GCs (a GC frees
// stacks whose goroutines have ended).
func stackBytes() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}

// An idle client's reader keeps a small stack. Each client's message runs
// the Go guest on its reader, which grows the reader's stack to 8 KiB; the
// idle sweep then moves every reader that has waited since to a fresh
// goroutine (transport's idle.go), so idle clients that have each sent a
// message cost about what clients that never did: well under the grown
// size. On the old code every one kept its grown stack. The clients are
// then served as before.
func TestIdle_SweepShrinksReaderStacks(t *testing.T) {
	const n = 300
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.PingInterval.Duration = 0
	}, server.WithIdleSweep(200*time.Millisecond))
	before := stackBytes()
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/echo", nil)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = ws
				if err := roundTrip(ws, "hello"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ws := range conns {
			ws.Close()
		}
	})
	grown := stackBytes()
	// A fresh reader's stack is 2 KiB (4 KiB under the race detector); a
	// grown one 4 KiB after a GC, which is how the old code kept them.
	want := int64(3 << 10)
	if raceEnabled {
		want *= 2
	}
	var per int64
	deadline := time.Now().Add(20 * time.Second)
	for {
		per = (stackBytes() - before) / n
		if per <= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stack per idle client: %d B right after the messages, %d B after the sweep", (grown-before)/n, per)
	if per > want {
		t.Fatalf("idle clients keep %d B of stack each after the sweep; want ≤ %d B (a fresh reader's)", per, want)
	}
	for i, ws := range conns { // every client is still served
		if err := roundTrip(ws, "again"); err != nil {
			t.Fatalf("client %d after the sweep: %v", i, err)
		}
	}
}

// roundTrip sends msg and waits (5 s at most) for the echo.
func roundTrip(ws *websocket.Conn, msg string) error {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	_, got, err := ws.ReadMessage()
	if err == nil && string(got) != msg {
		return &echoMismatch{msg, string(got)}
	}
	return err
}

type echoMismatch struct{ sent, got string }

func (e *echoMismatch) Error() string { return "echo " + e.got + ", sent " + e.sent }
