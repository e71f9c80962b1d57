// Package client is a Go client for the wasmgate text port: the TCP push
// port a web backend uses to reach WebSocket clients (send to a client, a
// uid or a group, bind uids, join groups, sessions, presence queries), with
// the command set of GatewayWorker's GatewayClient. The protocol is
// documented in docs/PUSH.md.
//
// A Client is one pipelined TCP connection that any number of goroutines
// share: requests are written in batches and matched to their answers in
// order, so one Client sustains hundreds of thousands of requests per
// second. It reconnects by itself after the connection breaks.
//
// The typical flow: the page connects to ws://HOST:8282/notify and receives
// {"type":"init","client_id":"…"}; it posts that id to the backend, which
// binds it to the logged-in user; later the backend pushes to the user,
// reaching every tab they have open:
//
//	c, err := client.Dial(ctx, "127.0.0.1:5678", client.WithSecret(os.Getenv("PUSH_SECRET")))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close()
//
//	// POST /bind {client_id}: the page reports its client_id.
//	if err := c.BindUid(ctx, clientID, "4"); client.IsNotFound(err) {
//		// the page disconnected meanwhile
//	}
//
//	// Later: a job finished.
//	n, err := c.SendToUid(ctx, []string{"4"}, []byte(`{"type":"task_done","id":329}`))
//	// n: the number of connections the message was queued for
//
// Commands the server refuses answer an *Error whose Code is one of the
// Code* constants. Calls that were in flight when the connection broke fail
// with an error wrapping ErrConnLost (the server may or may not have run
// them); the next call redials. Every call takes a context: a call whose
// context ends returns the context's error at once, and its answer is
// discarded when it arrives.
package client
