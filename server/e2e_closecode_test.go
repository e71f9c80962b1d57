package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/client"
)

// TestCloseClient_WithACode: a handler (close_client's flags, bits 16–31)
// and a backend (closeClient's "code") may close a client with 1000 or a
// code of the application range 4000–4999 (wasmgate.js treats 4000–4099 as
// final and stops reconnecting); other codes are refused as invalid.
func TestCloseClient_WithACode(t *testing.T) {
	srv := startServer(t, handlersWith(t, "closer"), nil)

	c := srv.dial(t, "/closer")
	c.sendText("x") // code 3000: refused, the client stays
	if _, data := c.read(); string(data) != "2" {
		t.Fatalf("close_client with code 3000 returned errno %q, want 2 (invalid)", data)
	}
	c.sendText("f")
	if _, data := c.read(); string(data) != "bye" {
		t.Fatalf("final message %q, want bye", data)
	}
	if code := c.expectClose(); code != 4001 {
		t.Fatalf("close code %d, want 4001 from the handler", code)
	}

	d := srv.dial(t, "/closer")
	id := onlyClient(t, srv)
	b := srv.backend(t)
	for _, code := range []string{"3000", "1001", "5000", `"4001"`} {
		b.expectError(`{"cmd":"closeClient","client_id":"`+id+`","code":`+code+`}`, "invalid")
	}
	d.sendText("still here")
	if _, data := d.read(); string(data) != "still here" {
		t.Fatalf("after refused codes: %q", data)
	}
	b.expectOK(`{"cmd":"closeClient","client_id":"` + id + `","data":"later","code":4050}`)
	if _, data := d.read(); string(data) != "later" {
		t.Fatalf("final message %q, want later", data)
	}
	if code := d.expectClose(); code != 4050 {
		t.Fatalf("close code %d, want 4050 from the backend", code)
	}

	// The Go client says the same.
	e := srv.dial(t, "/closer")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, srv.TextAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	id = onlyClient(t, srv)
	var ce *client.Error
	if err := cl.CloseClientWithCode(ctx, id, nil, 999); !errors.As(err, &ce) || ce.Code != client.CodeInvalid {
		t.Fatalf("CloseClientWithCode(999) = %v, want %s", err, client.CodeInvalid)
	}
	if err := cl.CloseClientWithCode(ctx, id, nil, 4099); err != nil {
		t.Fatal(err)
	}
	if code := e.expectClose(); code != 4099 {
		t.Fatalf("close code %d, want 4099 from the Go client", code)
	}
}

// onlyClient waits until exactly one client is connected and returns its id.
func onlyClient(t *testing.T, srv *testServer) string {
	t.Helper()
	var ids []string
	eventually(t, "exactly one client", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ids, _ = srv.Gateway().GetAllClientIdList(ctx)
		return len(ids) == 1
	})
	return ids[0]
}
