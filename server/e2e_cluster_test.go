package server_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/redistest"
	"github.com/wasmgate/wasmgate/server"
)

// TestCluster_ConcurrentChurnInProcess runs two cluster nodes in this
// process (so the race detector sees the cluster code) on one real
// redis-server, and has clients of both join, leave and rejoin groups while
// backends on both nodes send to those groups. The internal/cluster tests
// run real wasmgate processes; this one is about concurrency.
func TestCluster_ConcurrentChurnInProcess(t *testing.T) {
	rs := redistest.Start(t)
	dir := handlersWith(t, "chat")
	cluster := func(c *server.Config) {
		c.Cluster.Redis = rs.URL()
		c.Cluster.NodeTTL.Duration = 3 * time.Second
		c.Cluster.Heartbeat.Duration = 250 * time.Millisecond
		c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}}
	}
	nodes := []*testServer{startServer(t, dir, cluster), startServer(t, dir, cluster)}
	if nodes[0].Status().NodeID == nodes[1].Status().NodeID {
		t.Fatalf("both nodes claimed id %d", nodes[0].Status().NodeID)
	}
	const perNode, rounds = 6, 15
	var clients []*chatClient
	for _, n := range nodes {
		for range perNode {
			clients = append(clients, n.chat(t))
		}
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				room := fmt.Sprintf("r%d", (i+r)%3)
				c.sendJSON(map[string]string{"type": "join", "room": room})
				c.sendJSON(map[string]string{"type": "leave", "room": room})
			}
			c.sendJSON(map[string]string{"type": "join", "room": "final"})
		}()
	}
	for _, n := range nodes {
		b := n.backend(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				b.expectOK(fmt.Sprintf(`{"cmd":"sendToGroup","group":["r0","r1","r2"],"data":"churn %d"}`, r))
			}
		}()
	}
	wg.Wait()
	for _, c := range clients {
		eventuallyJoined(t, c, "final")
	}
	b := nodes[1].backend(t)
	if got := b.expectOK(`{"cmd":"getClientIdCountByGroup","group":"final"}`); got != float64(len(clients)) {
		t.Fatalf("final has %v members, want %d", got, len(clients))
	}
	for _, g := range []string{"r0", "r1", "r2"} {
		if got := b.expectOK(fmt.Sprintf(`{"cmd":"getClientIdCountByGroup","group":%q}`, g)); got != 0.0 {
			t.Fatalf("%s has %v members after everyone left", g, got)
		}
	}
	b.expectOK(`{"cmd":"sendToGroup","group":"final","data":"the end"}`)
	for _, c := range clients {
		for {
			_, data := c.read()
			if string(data) == "the end" {
				break
			}
		}
	}
}

// eventuallyJoined reads c's messages until the chat handler confirms it
// joined room.
func eventuallyJoined(t *testing.T, c *chatClient, room string) {
	t.Helper()
	for {
		_, data := c.read()
		var m map[string]any
		if json.Unmarshal(data, &m) == nil && m["type"] == "joined" && m["room"] == room {
			return
		}
	}
}
