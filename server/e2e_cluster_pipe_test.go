package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestCluster_PipelinedMixedSendsKeepOrder pipelines, on one text-port
// connection of node A, sends that are batched (sendToGroup, sendToUid,
// sendToAll) interleaved with sends that are not (sendToClient, and a
// query), all for one client of node B: every answer comes in order, and
// the client receives every message once, in the order sent. Two nodes
// run in this process, so the race detector sees the batching.
func TestCluster_PipelinedMixedSendsKeepOrder(t *testing.T) {
	nodes := startChatCluster(t)
	a, b := nodes[0], nodes[1]
	c := b.chat(t)
	c.login("u")
	c.join("g")

	const k = 300
	var lines strings.Builder
	for i := 1; i <= k; i++ {
		data := fmt.Sprintf("m=%d", i)
		switch i % 6 {
		case 0:
			fmt.Fprintf(&lines, `{"id":%d,"cmd":"sendToClient","client_id":%q,"data":%q}`, i, c.id, data)
		case 1:
			fmt.Fprintf(&lines, `{"id":%d,"cmd":"sendToUid","uid":"u","data":%q}`, i, data)
		case 2:
			fmt.Fprintf(&lines, `{"id":%d,"cmd":"sendToAll","data":%q}`, i, data)
		case 3:
			fmt.Fprintf(&lines, `{"id":%d,"cmd":"sendToGroup","group":["g","h"],"data":%q}`, i, data)
		default:
			fmt.Fprintf(&lines, `{"id":%d,"cmd":"sendToGroup","group":"g","data":%q}`, i, data)
		}
		lines.WriteByte('\n')
		if i%50 == 0 { // a command that is not a send between them
			fmt.Fprintf(&lines, `{"id":"q%d","cmd":"getClientIdCountByGroup","group":"g"}`+"\n", i)
		}
	}
	be := a.backend(t)
	be.send(strings.TrimSuffix(lines.String(), "\n"))
	for i := 1; i <= k; i++ {
		var m map[string]any
		if err := json.Unmarshal([]byte(be.readLine()), &m); err != nil || m["id"] != float64(i) || m["ok"] != true {
			t.Fatalf("answer %d: %v (%v)", i, m, err)
		}
		if i%50 == 0 {
			if err := json.Unmarshal([]byte(be.readLine()), &m); err != nil || m["id"] != fmt.Sprintf("q%d", i) || m["result"] != 1.0 {
				t.Fatalf("query after %d: %v (%v)", i, m, err)
			}
		}
	}
	for want := 1; want <= k; {
		_, data := c.read()
		s, ok := strings.CutPrefix(string(data), "m=")
		if !ok {
			continue
		}
		if got, _ := strconv.Atoi(s); got != want {
			t.Fatalf("the client of the other node got m=%d, want m=%d", got, want)
		}
		want++
	}
}

// TestCluster_PipelinedFloodKeepsCanary: a backend pipelining as many
// large sends as it can, in cluster mode, is answered in order while a
// canary on the same node keeps getting answers: the pipe holds at most a
// bounded batch (publishpipe.go, TestPublishPipe_BoundsWhatItHolds) and
// sends it whenever it fills.
func TestCluster_PipelinedFloodKeepsCanary(t *testing.T) {
	nodes := startChatCluster(t)
	a := nodes[0]
	canary := a.startCanary(t, "/echo")
	heap0 := memAfterGC().HeapInuse
	const k, size = 1500, 8 << 10
	line := fmt.Sprintf(`{"cmd":"sendToGroup","group":"nobody","data":%q}`, strings.Repeat("x", size))
	var lines strings.Builder
	for range k {
		lines.WriteString(line)
		lines.WriteByte('\n')
	}
	be := a.backend(t)
	go func() { _, _ = io.WriteString(be.nc, lines.String()) }() // 12 MiB, answers read as it is written
	for i := 1; i <= k; i++ {
		if ans := be.readLine(); !strings.Contains(ans, `"ok":true`) {
			t.Fatalf("answer %d: %s", i, ans)
		}
	}
	worst := canary.check()
	heap := memAfterGC().HeapInuse
	t.Logf("%d pipelined sends of %d KiB: canary's worst round trip %v; heap after a GC %d → %d MiB", k, size>>10, worst, heap0>>20, heap>>20)
	if heap > heap0+16<<20 {
		t.Errorf("the heap holds %d MiB more after the flood", (heap-heap0)>>20)
	}
}
