package server_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/server"
)

// orderRecorder is a native handler that records, per client, the events it
// receives, to check what the server promises: connect first, messages in
// the order sent, close last.
type orderRecorder struct {
	mu     sync.Mutex
	events map[string][]string
}

func (r *orderRecorder) add(id, ev string) {
	r.mu.Lock()
	r.events[id] = append(r.events[id], ev)
	r.mu.Unlock()
}

func (r *orderRecorder) OnHandshake(_ context.Context, h *abi.Handshake) (int, error) {
	r.add(h.ClientID, "handshake")
	return 0, nil
}
func (r *orderRecorder) OnConnect(_ context.Context, id string) error {
	r.add(id, "connect")
	return nil
}
func (r *orderRecorder) OnClose(_ context.Context, id string) error { r.add(id, "close"); return nil }
func (r *orderRecorder) OnMessage(_ context.Context, id string, m abi.Message) error {
	r.add(id, string(m.Data))
	return nil
}

const (
	orderClients  = 50
	orderMessages = 1000
)

func TestServer_PerClientEventOrderUnderLoad(t *testing.T) {
	rec := &orderRecorder{events: map[string][]string{}}
	srv := startServer(t, handlersWith(t, "echo"), nil, server.WithHandler("/order", rec))
	var wg sync.WaitGroup
	for i := 0; i < orderClients; i++ {
		c := srv.dial(t, "/order")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < orderMessages; n++ {
				if err := c.ws.WriteMessage(1, []byte(strconv.Itoa(n))); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
			c.ws.Close()
		}()
	}
	wg.Wait()
	eventually(t, "every client's close event", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		done := 0
		for _, evs := range rec.events {
			if len(evs) > 0 && evs[len(evs)-1] == "close" {
				done++
			}
		}
		return done == orderClients
	})
	for id, evs := range rec.events {
		if err := checkOrder(evs); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
	}
}

func checkOrder(evs []string) error {
	want := []string{"handshake", "connect"}
	for n := 0; n < orderMessages; n++ {
		want = append(want, strconv.Itoa(n))
	}
	want = append(want, "close")
	if len(evs) != len(want) {
		return fmt.Errorf("%d events, want %d", len(evs), len(want))
	}
	for i := range want {
		if evs[i] != want[i] {
			return fmt.Errorf("event %d is %q, want %q", i, evs[i], want[i])
		}
	}
	return nil
}

// TestServer_WasmEchoKeepsOrderUnderLoad runs the same load through the Go
// guest: each client's echoes must come back complete and in order, which
// they can only do if on_message saw them in order.
func TestServer_WasmEchoKeepsOrderUnderLoad(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	var wg sync.WaitGroup
	for i := 0; i < orderClients; i++ {
		c := srv.dial(t, "/echo")
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n := 0; n < orderMessages; n++ {
				if err := c.ws.WriteMessage(1, []byte(strconv.Itoa(n))); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; n < orderMessages; n++ {
				f, ok := c.next(10e9)
				if !ok || f.err != nil || string(f.data) != strconv.Itoa(n) {
					t.Errorf("echo %d: got %q err %v (timeout %v)", n, f.data, f.err, !ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}
