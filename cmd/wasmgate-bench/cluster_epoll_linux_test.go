//go:build linux

package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// TestEpollReaderAgainstServer hands members of a real server to the epoll
// reader after their init message: they answer its pings (so an idle
// timeout of a few ping intervals never drops them), log every group
// message with its number, and stop at the server's shutdown.
func TestEpollReaderAgainstServer(t *testing.T) {
	srv := liveServer(t, "notify")

	const n = 20
	conns := make([]*websocket.Conn, n)
	var joins []string
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/notify", nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = ws
		id, err := readInit(ws)
		if err != nil {
			t.Fatal(err)
		}
		joins = append(joins, fmt.Sprintf(`{"cmd":"joinGroup","client_id":%q,"group":"g"}`, id))
	}
	var delivered, latN atomic.Int64
	var pacedOn atomic.Bool
	pacedOn.Store(true)
	logs := make([]memberLog, n)
	cnt := &memberCounters{base: time.Now(), delivered: &delivered, latN: &latN, pacedOn: &pacedOn}
	rd, err := startEpollReaders(conns, logs, cnt, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.close()

	waitFor(t, "10 pongs per member", func() bool { return rd.pongs.Load() >= 10*n })
	if got := srv.Status().Clients; got != n {
		t.Fatalf("after the pings the server counts %d clients, want %d", got, n)
	}
	if err := pipeline(srv.TextAddr().String(), joins); err != nil {
		t.Fatal(err)
	}
	var sends []string
	for k := range 5 {
		sends = append(sends, fmt.Sprintf(`{"cmd":"sendToGroup","group":"g","data":"%d"}`, 1000+k))
	}
	sends = append(sends, `{"cmd":"sendToGroup","group":"g","data":"not a number"}`)
	if err := pipeline(srv.TextAddr().String(), sends); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every delivery", func() bool { return delivered.Load() == 6*n && latN.Load() == 5*n })
	for i := range logs {
		logs[i].mu.Lock()
		sent := logs[i].sent
		logs[i].mu.Unlock()
		if fmt.Sprint(sent) != "[1000 1001 1002 1003 1004]" {
			t.Fatalf("member %d logged %v", i, sent)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every member ended by the shutdown", func() bool { return rd.ended.Load() == n })
}
