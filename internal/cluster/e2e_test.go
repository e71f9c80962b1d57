package cluster_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/redistest"
)

// startCluster starts redis-server and k nodes (node ids claimed).
func startCluster(t *testing.T, k int) (*redistest.Server, []*node, string) {
	t.Helper()
	rs := redistest.Start(t)
	h := handlersDir(t)
	nodes := make([]*node, k)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i] = startNode(t, fmt.Sprintf("n%d", i), rs.URL(), h, clusterOpts{})
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n == nil {
			t.FailNow()
		}
	}
	return rs, nodes, h
}

// TestCluster_GatewayAPIAcrossNodes checks every Gateway call from every
// entry point (a handler, the text port, the HTTP API) against clients on
// other nodes: what they receive and what queries answer.
func TestCluster_GatewayAPIAcrossNodes(t *testing.T) {
	_, n, _ := startCluster(t, 3)
	a, b, c := n[0].chat(), n[1].chat(), n[2].chat()
	eventually(t, "/metrics, /status and /healthz show the cluster", func() bool {
		st := n[1].clusterStatus()
		h := n[2].health()
		return strings.Contains(n[0].metrics(), "wasmgate_cluster_nodes_alive 3\n") &&
			strings.Contains(n[0].metrics(), "wasmgate_cluster_healthy 1\n") &&
			st != nil && len(st["nodes_alive"].([]any)) == 3 && st["redis"] == "ok" &&
			h != nil && h["healthy"] == true && h["nodes_alive"] == 3.0 && h["node"] == c.id[:8]
	})
	if a.id[:8] == b.id[:8] || b.id[:8] == c.id[:8] || a.id[:8] == c.id[:8] {
		t.Fatalf("claimed node ids are not distinct: %s %s %s", a.id, b.id, c.id)
	}
	for cl, uid := range map[*client]string{a: "alice", b: "bob", c: "carol"} {
		cl.send(map[string]string{"type": "login", "uid": uid})
		cl.expect("login")
		cl.send(map[string]string{"type": "join", "room": "lobby"})
		cl.expect("joined")
	}

	// From a handler: sendToGroup, sendToUid, sendToAll, counts and lists.
	a.send(map[string]string{"type": "say", "text": "hi all"})
	for _, cl := range []*client{a, b, c} {
		if m := cl.expect("say"); m["text"] != "hi all" || m["uid"] != "alice" {
			t.Fatalf("say: %v", m)
		}
	}
	c.send(map[string]string{"type": "to_uid", "uid": "alice", "text": "psst"})
	if m := a.expect("to_uid"); m["from"] != c.id {
		t.Fatalf("to_uid: %v", m)
	}
	b.send(map[string]string{"type": "stats", "room": "lobby", "uid": "carol"})
	st := b.expect("stats")
	if st["all_clients"] != 3.0 || st["room_count"] != 3.0 || st["room_uid_count"] != 3.0 || st["uid_online"] != true {
		t.Fatalf("stats on node 1: %v", st)
	}
	if got, want := join(sortedStrings(st["all_uids"])), "alice,bob,carol"; got != want {
		t.Fatalf("all_uids = %s, want %s", got, want)
	}
	if got := sortedStrings(st["uid_clients"]); len(got) != 1 || got[0] != c.id {
		t.Fatalf("uid_clients(carol) = %v, want [%s]", got, c.id)
	}
	c.send(map[string]string{"type": "online", "client_id": a.id})
	if m := c.expect("online"); m["online"] != true {
		t.Fatalf("online(a) from node 2: %v", m)
	}
	b.send(map[string]string{"type": "broadcast", "text": "all but me"})
	a.expect("broadcast")
	c.expect("broadcast")
	b.silent(200 * time.Millisecond)

	// From the text port of node 1.
	tp := n[1].backend()
	ok := func(m map[string]any) map[string]any {
		t.Helper()
		if m["ok"] != true {
			t.Fatalf("text port: %v", m)
		}
		return m
	}
	ok(tp.call("sendToClient", map[string]any{"client_id": a.id, "data": "to a"}))
	a.expectText("to a")
	ok(tp.call("sendToUid", map[string]any{"uid": "carol", "data": "to carol"}))
	c.expectText("to carol")
	ok(tp.call("sendToGroup", map[string]any{"group": "lobby", "data": "lobby but b", "exclude_client_id": []string{b.id}}))
	a.expectText("lobby but b")
	c.expectText("lobby but b")
	ok(tp.call("sendToAll", map[string]any{"data": "everyone"}))
	for _, cl := range []*client{a, b, c} {
		cl.expectText("everyone")
	}
	ok(tp.call("sendToAll", map[string]any{"data": "listed", "client_id_array": []string{a.id, c.id}}))
	a.expectText("listed")
	c.expectText("listed")
	b.silent(200 * time.Millisecond)
	if m := ok(tp.call("isOnline", map[string]any{"client_id": c.id})); m["result"] != 1.0 {
		t.Fatalf("isOnline(c) from node 1: %v", m)
	}
	if m := tp.call("sendToClient", map[string]any{"client_id": "0000099900000000abcd", "data": "x"}); errCode(m) != "not_found" {
		t.Fatalf("sendToClient to a node that does not exist: %v", m)
	}

	// A change to another node's client, then at once a send that needs it:
	// the change returns only once the owner subscribed.
	ok(n[0].backend().call("bindUid", map[string]any{"client_id": c.id, "uid": "dave"}))
	ok(tp.call("sendToUid", map[string]any{"uid": "dave", "data": "to dave"}))
	c.expectText("to dave")
	if got := n[2].result("getUidByClientId", map[string]any{"client_id": c.id}); got != "dave" {
		t.Fatalf("uid of c after a remote bindUid = %v", got)
	}
	if got := n[1].result("isUidOnline", map[string]any{"uid": "carol"}); got != 0.0 {
		t.Fatalf("carol still online after c was rebound: %v", got)
	}
	n[2].result("joinGroup", map[string]any{"client_id": a.id, "group": "side"})
	ok(tp.call("sendToGroup", map[string]any{"group": "side", "data": "side room"}))
	a.expectText("side room")
	if got := join(sortedStrings(n[1].result("getClientIdListByGroup", map[string]any{"group": "side"}))); got != a.id {
		t.Fatalf("side members from node 1 = %s", got)
	}
	if got := join(sortedStrings(n[2].result("getAllGroupIdList", nil))); got != "lobby,side" {
		t.Fatalf("groups = %s", got)
	}
	n[0].result("leaveGroup", map[string]any{"client_id": a.id, "group": "side"})
	ok(tp.call("sendToGroup", map[string]any{"group": "side", "data": "nobody"}))
	a.silent(200 * time.Millisecond)

	// Sessions: set on one node, read on another and by the owner's handler.
	n[2].result("setSession", map[string]any{"client_id": a.id, "session": map[string]any{"x": 1, "deep": map[string]any{"k": "v"}}})
	n[0].result("updateSession", map[string]any{"client_id": a.id, "session": map[string]any{"deep": map[string]any{"k2": 2}}})
	sess := n[1].result("getSession", map[string]any{"client_id": a.id}).(map[string]any)
	if sess["x"] != 1.0 || fmt.Sprint(sess["deep"]) != "map[k:v k2:2]" {
		t.Fatalf("session of a read on node 1 = %v", sess)
	}
	a.send(map[string]string{"type": "whoami"})
	if m := a.expect("whoami"); fmt.Sprint(m["session"]) != "map[deep:map[k:v k2:2] x:1]" {
		t.Fatalf("session a's handler sees = %v", m["session"])
	}

	// A handler kicks a client of another node; ungroup from another.
	c.send(map[string]string{"type": "kick", "client_id": b.id, "text": "bye"})
	b.expect("kicked")
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("b was not closed by a kick from node 2")
	}
	eventually(t, "b offline everywhere", func() bool {
		return n[0].result("isOnline", map[string]any{"client_id": b.id}) == 0.0 &&
			n[2].result("getAllClientIdCount", nil) == 2.0
	})
	n[0].result("ungroup", map[string]any{"group": "lobby"})
	if got := n[2].result("getClientIdCountByGroup", map[string]any{"group": "lobby"}); got != 0.0 {
		t.Fatalf("lobby count after ungroup = %v", got)
	}
	ok(tp.call("sendToGroup", map[string]any{"group": "lobby", "data": "gone"}))
	a.silent(200 * time.Millisecond)
	c.silent(10 * time.Millisecond)

	// The HTTP API's closeClient and destroyClient reach other nodes too.
	n[1].result("closeClient", map[string]any{"client_id": c.id, "data": "last words"})
	c.expectText("last words")
	<-c.done
	n[2].result("destroyClient", map[string]any{"client_id": a.id})
	<-a.done
	eventually(t, "no client left", func() bool { return n[1].result("getAllClientIdCount", nil) == 0.0 })
}

// errCode is the code of a failed push answer.
func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}
