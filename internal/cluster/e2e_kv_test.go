package cluster_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/fasthttp/websocket"
)

// TestCluster_KVIncrIsAtomicAcrossNodes: handlers on 3 nodes increment one
// key of the module key-value store 3 × 1,000 times at once; every
// increment returns a distinct value, and they sum to exactly 3,000.
func TestCluster_KVIncrIsAtomicAcrossNodes(t *testing.T) {
	_, n, _ := startCluster(t, 3)
	const clientsPerNode, perClient = 10, 100
	var (
		mu   sync.Mutex
		seen = map[uint64]bool{}
		wg   sync.WaitGroup
	)
	for _, nd := range n {
		for range clientsPerNode {
			c := nd.dial("/counter")
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perClient {
					if err := c.ws.WriteMessage(websocket.TextMessage, []byte("+")); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perClient {
					b := c.next(30e9)
					if len(b) != 8 {
						t.Errorf("counter answered %q (an error is E and the errno)", b)
						return
					}
					v := binary.LittleEndian.Uint64(b)
					mu.Lock()
					if seen[v] {
						t.Errorf("value %d returned twice", v)
					}
					seen[v] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	const total = 3 * clientsPerNode * perClient
	if len(seen) != total {
		t.Fatalf("%d distinct values, want %d", len(seen), total)
	}
	for v := uint64(1); v <= total; v++ {
		if !seen[v] {
			t.Fatalf("value %d never returned: increments lost", v)
		}
	}
	// One more, from any node, continues from the sum.
	c := n[1].dial("/counter")
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte("+"))
	if b := c.next(10e9); len(b) != 8 || binary.LittleEndian.Uint64(b) != total+1 {
		t.Fatalf("next increment answered %v, want %d", b, total+1)
	}
}
