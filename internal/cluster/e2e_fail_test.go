package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCluster_KilledNodeLeavesPresence kills a node with SIGKILL: within
// its TTL the survivors drop its clients from every list, count and
// isOnline, and its node id can then be used again.
func TestCluster_KilledNodeLeavesPresence(t *testing.T) {
	rs, n, h := startCluster(t, 3)
	survivor := n[0].chat()
	survivor.send(map[string]string{"type": "login", "uid": "stays"})
	survivor.expect("login")
	survivor.send(map[string]string{"type": "join", "room": "g"})
	survivor.expect("joined")
	var doomed []*client
	for range 2 {
		c := n[2].chat()
		c.send(map[string]string{"type": "login", "uid": "goes"})
		c.expect("login")
		c.send(map[string]string{"type": "join", "room": "g"})
		c.expect("joined")
		doomed = append(doomed, c)
	}
	if got := n[1].result("getClientIdCountByGroup", map[string]any{"group": "g"}); got != 3.0 {
		t.Fatalf("g before the kill = %v members", got)
	}
	n[2].kill()
	killed := time.Now()
	eventually(t, "the dead node's clients gone from presence", func() bool {
		return n[0].result("getAllClientIdCount", nil) == 1.0 &&
			n[1].result("getClientIdCountByGroup", map[string]any{"group": "g"}) == 1.0 &&
			n[1].result("isUidOnline", map[string]any{"uid": "goes"}) == 0.0 &&
			n[0].result("isOnline", map[string]any{"client_id": doomed[0].id}) == 0.0 &&
			join(sortedStrings(n[0].result("getAllUidList", nil))) == "stays" &&
			join(sortedStrings(n[1].result("getClientIdListByGroup", map[string]any{"group": "g"}))) == survivor.id
	})
	t.Logf("presence clean %v after the kill (node_ttl 3s, heartbeat 250ms)", time.Since(killed).Round(10*time.Millisecond))
	if m := n[0].backend().call("sendToClient", map[string]any{"client_id": doomed[1].id, "data": "x"}); errCode(m) != "not_found" {
		t.Fatalf("sendToClient to a dead node's client: %v", m)
	}

	// The dead node's id is free again: a node configured with it starts.
	id, err := strconv.ParseUint(doomed[0].id[:8], 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	again := startNode(t, "n2-again", rs.URL(), h, clusterOpts{nodeID: uint32(id)})
	c := again.chat()
	if !strings.HasPrefix(c.id, doomed[0].id[:8]) {
		t.Fatalf("restarted node's client %s does not carry node id %08x", c.id, id)
	}
	if c.id == doomed[0].id || c.id == doomed[1].id {
		t.Fatalf("client id %s reused", c.id)
	}
	c.send(map[string]string{"type": "join", "room": "g"})
	c.expect("joined")
	if got := n[0].result("getClientIdCountByGroup", map[string]any{"group": "g"}); got != 2.0 {
		t.Fatalf("g after the restarted node's client joined = %v members", got)
	}
}

// TestCluster_NodeIDInUseRefused: a second node configured with a live
// node's id does not start, and says why.
func TestCluster_NodeIDInUseRefused(t *testing.T) {
	rs, n, h := startCluster(t, 1)
	id, _ := strconv.ParseUint(n[0].chat().id[:8], 16, 32)
	dup := newNode(t, "dup", rs.URL(), h, clusterOpts{nodeID: uint32(id)})
	out, err := dup.run(30 * time.Second)
	if err == nil || !strings.Contains(out, "is in use by a live node") {
		t.Fatalf("a node with a live node's id: err %v, output:\n%s", err, out)
	}
}

// TestCluster_RedisRestartUnderLoad restarts redis-server (empty, no
// persistence) under a steady sendToGroup load: every node re-subscribes
// and re-publishes by itself; every push acknowledged once all nodes are
// healthy again arrives exactly once, and presence converges.
func TestCluster_RedisRestartUnderLoad(t *testing.T) {
	rs, n, _ := startCluster(t, 3)
	var members []*client
	for i := range 3 {
		c := n[i].chat()
		c.send(map[string]string{"type": "login", "uid": fmt.Sprintf("u%d", i)})
		c.expect("login")
		c.send(map[string]string{"type": "join", "room": "g"})
		c.expect("joined")
		members = append(members, c)
	}
	// Count what each member receives: seq → times.
	counts := make([]map[int]int, len(members))
	var countMu sync.Mutex
	for i, c := range members {
		counts[i] = map[int]int{}
		go func() {
			for b := range c.in {
				if s, ok := strings.CutPrefix(string(b), "seq="); ok {
					k, _ := strconv.Atoi(s)
					countMu.Lock()
					counts[i][k]++
					countMu.Unlock()
				}
			}
		}()
	}
	tp := n[0].backend()
	var (
		healthyAt atomic.Int64 // UnixNano when all nodes were healthy again
		stop      atomic.Bool
		ackedMu   sync.Mutex
		acked     []int // acknowledged after healthyAt
		sent      atomic.Int64
		refused   atomic.Int64
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := 1; !stop.Load(); seq++ {
			h := healthyAt.Load()
			m := tp.call("sendToGroup", map[string]any{"group": "g", "data": fmt.Sprintf("seq=%d", seq)})
			sent.Add(1)
			if m["ok"] != true {
				refused.Add(1)
			} else if h != 0 {
				ackedMu.Lock()
				acked = append(acked, seq)
				ackedMu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	republished := make([]float64, len(n))
	for i, nd := range n {
		republished[i], _ = nd.clusterStatus()["republished"].(float64)
	}
	restarted := time.Now()
	rs.Restart()
	eventually(t, "every node re-published its clients and healthy again", func() bool {
		for i, nd := range n {
			st := nd.clusterStatus()
			if again, _ := st["republished"].(float64); again <= republished[i] || st["healthy"] != true {
				return false
			}
		}
		return true
	})
	healthyAt.Store(time.Now().UnixNano())
	t.Logf("all nodes healthy %v after the restart", time.Since(restarted).Round(10*time.Millisecond))
	time.Sleep(time.Second)
	stop.Store(true)
	<-done
	ackedMu.Lock()
	defer ackedMu.Unlock()
	if len(acked) < 20 {
		t.Fatalf("only %d pushes acknowledged after recovery (%d sent, %d refused)", len(acked), sent.Load(), refused.Load())
	}
	eventually(t, "every acknowledged push delivered", func() bool {
		countMu.Lock()
		defer countMu.Unlock()
		for i := range members {
			for _, seq := range acked {
				if counts[i][seq] < 1 {
					return false
				}
			}
		}
		return true
	})
	countMu.Lock()
	for i := range members {
		for seq, k := range counts[i] {
			if k != 1 {
				t.Errorf("member %d got seq=%d %d times", i, seq, k)
			}
		}
	}
	countMu.Unlock()
	t.Logf("%d pushes sent, %d refused during the outage, %d acknowledged after recovery, all delivered once", sent.Load(), refused.Load(), len(acked))
	eventually(t, "presence re-published", func() bool {
		return n[1].result("getClientIdCountByGroup", map[string]any{"group": "g"}) == 3.0 &&
			n[2].result("getAllClientIdCount", nil) == 3.0 &&
			join(sortedStrings(n[0].result("getAllUidList", nil))) == "u0,u1,u2"
	})
}

// TestCluster_LateJoinerSeesState: a node that starts after groups, uids
// and sessions exist sees them, and its clients join the existing groups.
func TestCluster_LateJoinerSeesState(t *testing.T) {
	rs, n, h := startCluster(t, 2)
	a, b := n[0].chat(), n[1].chat()
	a.send(map[string]string{"type": "login", "uid": "ann"})
	a.expect("login")
	a.send(map[string]string{"type": "join", "room": "old"})
	a.expect("joined")
	n[1].result("setSession", map[string]any{"client_id": b.id, "session": map[string]any{"role": "admin"}})
	n[0].result("joinGroup", map[string]any{"client_id": b.id, "group": "old"})

	late := startNode(t, "late", rs.URL(), h, clusterOpts{})
	if got := join(sortedStrings(late.result("getAllGroupIdList", nil))); got != "old" {
		t.Fatalf("late node's groups = %s", got)
	}
	if got := join(sortedStrings(late.result("getClientIdByUid", map[string]any{"uid": "ann"}))); got != a.id {
		t.Fatalf("late node's clients of ann = %s", got)
	}
	if s := late.result("getSession", map[string]any{"client_id": b.id}).(map[string]any); s["role"] != "admin" {
		t.Fatalf("late node's session of b = %v", s)
	}
	c := late.chat()
	c.send(map[string]string{"type": "join", "room": "old"})
	c.expect("joined")
	c.send(map[string]string{"type": "stats", "room": "old"})
	if st := c.expect("stats"); st["room_count"] != 3.0 || st["all_clients"] != 3.0 || st["uid_count"] != 1.0 {
		t.Fatalf("stats on the late node: %v", st)
	}
	if m := n[0].backend().call("sendToGroup", map[string]any{"group": "old", "data": "welcome"}); m["ok"] != true {
		t.Fatal(m)
	}
	for _, cl := range []*client{a, b, c} {
		cl.expectText("welcome")
	}
}

// TestCluster_RedisDownLocalKeepsWorking: with Redis gone, a node keeps
// serving its own clients, fails cross-node calls fast with unavailable,
// answers /healthz 200 saying it is degraded, and recovers by itself.
func TestCluster_RedisDownLocalKeepsWorking(t *testing.T) {
	rs, n, _ := startCluster(t, 2)
	a, a2, b := n[0].chat(), n[0].chat(), n[1].chat()
	tp := n[0].backend()
	rs.Kill()
	eventually(t, "node 0 degraded", func() bool {
		h := n[0].health()
		return h != nil && h["degraded"] == true && h["ok"] == true
	})
	if m := tp.call("sendToClient", map[string]any{"client_id": a.id, "data": "local still works"}); m["ok"] != true {
		t.Fatalf("local sendToClient with Redis down: %v", m)
	}
	a.expectText("local still works")
	// Changes to own clients stand, and local group delivery works.
	if m := tp.call("joinGroup", map[string]any{"client_id": a2.id, "group": "here"}); m["ok"] != true {
		t.Fatalf("joinGroup of an own client with Redis down: %v", m)
	}
	tp.call("sendToGroup", map[string]any{"group": "here", "data": "local group"})
	a2.expectText("local group")
	began := time.Now()
	m := tp.call("sendToClient", map[string]any{"client_id": b.id, "data": "x"})
	if errCode(m) != "unavailable" {
		t.Fatalf("cross-node sendToClient with Redis down: %v", m)
	}
	t.Logf("cross-node call failed in %v (cluster.timeout 1s)", time.Since(began).Round(time.Millisecond))
	if m := tp.call("getAllClientIdCount", nil); errCode(m) != "unavailable" {
		t.Fatalf("cluster-wide count with Redis down: %v", m)
	}
	rs.Restart()
	eventually(t, "both nodes healthy again", func() bool { return n[0].healthy() && n[1].healthy() })
	eventually(t, "presence back, with the join made during the outage", func() bool {
		return n[1].result("getAllClientIdCount", nil) == 3.0 &&
			join(sortedStrings(n[1].result("getClientIdListByGroup", map[string]any{"group": "here"}))) == a2.id
	})
	if m := n[1].backend().call("sendToGroup", map[string]any{"group": "here", "data": "from afar"}); m["ok"] != true {
		t.Fatal(m)
	}
	a2.expectText("from afar")
}

// TestCluster_RedisFrozen: a Redis that stops answering without closing
// its connections (SIGSTOP) must not hang anything: cross-node calls fail
// with unavailable, new clients of a node still connect and are served, and
// everything recovers when it answers again.
func TestCluster_RedisFrozen(t *testing.T) {
	rs, n, _ := startCluster(t, 2)
	b := n[1].chat()
	rs.Pause()
	resumed := false
	defer func() {
		if !resumed {
			rs.Resume()
		}
	}()
	eventually(t, "node 0 degraded", func() bool {
		h := n[0].health()
		return h != nil && h["degraded"] == true
	})
	began := time.Now()
	if m := n[0].backend().call("sendToClient", map[string]any{"client_id": b.id, "data": "x"}); errCode(m) != "unavailable" {
		t.Fatalf("cross-node send with Redis frozen: %v", m)
	}
	t.Logf("cross-node call with Redis frozen failed in %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	a := n[0].chat() // connect, whoami: served by node 0 alone
	a.send(map[string]string{"type": "login", "uid": "frozen"})
	a.expect("login")
	t.Logf("a new client connected and logged in in %v with Redis frozen", time.Since(began).Round(time.Millisecond))
	rs.Resume()
	resumed = true
	began = time.Now()
	eventually(t, "healthy again, with the new client's uid published", func() bool {
		return n[0].healthy() && n[1].healthy() &&
			n[1].result("isUidOnline", map[string]any{"uid": "frozen"}) == 1.0
	})
	t.Logf("recovered %v after Redis resumed", time.Since(began).Round(time.Millisecond))
}

// TestCluster_Restart: `wasmgate restart` of a cluster node hands over to
// a new process that claims its own node id; the other nodes see the old
// id leave and the new one serve. With a fixed node_id the restart is
// refused at once, saying why, and the node keeps serving.
func TestCluster_Restart(t *testing.T) {
	rs, n, h := startCluster(t, 2)
	restart := func(nd *node) (int, string) {
		resp, err := http.Post("http://"+nd.admin+"/restart", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	old := n[1].chat()
	code, body := restart(n[1])
	if code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	var pid int
	if _, err := fmt.Sscanf(body[strings.Index(body, "(pid "):], "(pid %d)", &pid); err != nil {
		t.Fatalf("restart answer %q: %v", body, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	select {
	case <-old.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the old process did not close its client")
	}
	if old.code != 1012 {
		t.Fatalf("old client closed with %d, want 1012", old.code)
	}
	fresh := n[1].chat() // the same address, the new process
	if fresh.id[:8] == old.id[:8] {
		t.Fatalf("the new process kept node id %s", old.id[:8])
	}
	eventually(t, "node 0 sees the new process's client, not the old one", func() bool {
		return n[0].result("isOnline", map[string]any{"client_id": fresh.id}) == 1.0 &&
			n[0].result("isOnline", map[string]any{"client_id": old.id}) == 0.0
	})

	fixed := startNode(t, "fixed", rs.URL(), h, clusterOpts{nodeID: 4242})
	code, body = restart(fixed)
	if code == 200 || !strings.Contains(body, "fixed server.node_id") {
		t.Fatalf("restart with a fixed node id: %d %s", code, body)
	}
	fixed.chat() // still serving
}
