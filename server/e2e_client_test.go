package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/client"
	"github.com/wasmgate/wasmgate/server"
)

// TestClient_SeedFlowAgainstRealServer runs the seed-000 flow with the Go
// client package: page connects, backend binds its client_id to uid 4 and
// later pushes task_done to every page of that user.
func TestClient_SeedFlowAgainstRealServer(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) { c.Push.Secret = "pw" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, srv.TextAddr().String(), client.WithSecret("pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	phone, pc, other := srv.dial(t, "/notify"), srv.dial(t, "/notify"), srv.dial(t, "/notify")
	var ids []string
	for _, c := range []*wsClient{phone, pc, other} {
		ids = append(ids, c.expectType("init")["client_id"].(string))
	}
	for i, uid := range []string{"4", "4", "5"} {
		if err := cl.BindUid(ctx, ids[i], uid); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cl.GetClientIdByUid(ctx, "4")
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids[:2]))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("GetClientIdByUid(4) = %v, %v; want %v", got, err, want)
	}
	online, err := cl.IsUidsOnline(ctx, []string{"4", "6"})
	if err != nil || !online["4"] || online["6"] {
		t.Fatalf("IsUidsOnline = %v, %v", online, err)
	}
	n, err := cl.SendToUid(ctx, []string{"4"}, []byte(`{"type":"task_done","id":329}`))
	if err != nil || n != 2 {
		t.Fatalf("SendToUid = %d, %v", n, err)
	}
	for _, c := range []*wsClient{phone, pc} {
		if m := c.expectType("task_done"); m["id"] != 329.0 {
			t.Fatalf("got %v", m)
		}
	}
	other.expectSilence(100 * time.Millisecond)
	if err := cl.SendToClient(ctx, "00000000000000000000", []byte("x")); !client.IsNotFound(err) {
		t.Fatalf("SendToClient to an unknown id: %v, want not_found", err)
	}
}

// TestClient_PipelinedFromManyGoroutines drives the real text port from 20
// goroutines sharing one client: every message must arrive exactly once.
func TestClient_PipelinedFromManyGoroutines(t *testing.T) {
	// All 2,000 messages may be queued for the one client at once on a
	// loaded machine: room for all, so this tests pipelining, not the
	// slow-consumer limit (TestServer_SlowConsumerIsDropped does).
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) { c.Server.SendQueueSize = 4096 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, srv.TextAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ws := srv.dial(t, "/notify")
	id := ws.expectType("init")["client_id"].(string)
	const workers, each = 20, 100
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				if err := cl.SendToClient(ctx, id, []byte("m")); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < workers*each; i++ {
		ws.read()
	}
	ws.expectSilence(100 * time.Millisecond)
}
