package server_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/redistest"
	"github.com/wasmgate/wasmgate/server"
)

// startChatCluster starts two cluster nodes in this process on one real
// redis-server, serving the chat module without its rate limit (and echo,
// for canaries).
func startChatCluster(t *testing.T) []*testServer {
	t.Helper()
	rs := redistest.Start(t)
	dir := handlersWith(t, "chat", "echo")
	cluster := func(c *server.Config) {
		c.Cluster.Redis = rs.URL()
		c.Cluster.NodeTTL.Duration = 3 * time.Second
		c.Cluster.Heartbeat.Duration = 250 * time.Millisecond
		c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}}
	}
	return []*testServer{startServer(t, dir, cluster), startServer(t, dir, cluster)}
}

// TestCluster_ConcurrentChurnInProcess runs two cluster nodes in this
// process (so the race detector sees the cluster code) on one real
// redis-server, and has clients of both join, leave and rejoin groups while
// backends on both nodes send to those groups. The internal/cluster tests
// run real wasmgate processes; this one is about concurrency.
func TestCluster_ConcurrentChurnInProcess(t *testing.T) {
	nodes := startChatCluster(t)
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

// TestCluster_RequestFloodBounded: backends on one node flood changes to a
// client of another node (each a request over Redis that the owner runs on
// its bounded worker pool, the rest refused with unavailable when its queue
// is full). The owner's own clients keep getting answers throughout, and
// both nodes serve normally afterwards.
func TestCluster_RequestFloodBounded(t *testing.T) {
	rs := redistest.Start(t)
	dir := handlersWith(t, "chat", "echo")
	cluster := func(c *server.Config) {
		c.Cluster.Redis = rs.URL()
		c.Cluster.NodeTTL.Duration = 3 * time.Second
		c.Cluster.Heartbeat.Duration = 250 * time.Millisecond
		c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}}
	}
	a, b := startServer(t, dir, cluster), startServer(t, dir, cluster)
	target := b.chat(t)
	canary := b.startCanary(t, "/echo")
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for w := range 4 {
		bk := a.backend(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				cmd := "joinGroup"
				if i%2 == 1 {
					cmd = "leaveGroup"
				}
				m := bk.call(fmt.Sprintf(`{"cmd":%q,"client_id":%q,"group":"flood%d"}`, cmd, target.id, w))
				sent.Add(1)
				if m["ok"] != true {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d remote changes, %d refused; canary worst round trip %v", sent.Load(), failed.Load(), canary.check())
	bk := a.backend(t)
	bk.expectOK(fmt.Sprintf(`{"cmd":"joinGroup","client_id":%q,"group":"after"}`, target.id))
	bk.expectOK(`{"cmd":"sendToGroup","group":"after","data":"still served"}`)
	for {
		if _, data := target.read(); string(data) == "still served" {
			break
		}
	}
}
