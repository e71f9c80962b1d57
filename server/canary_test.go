package server_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// canaryBound is how long one canary round trip may take before an attack
// counts as having frozen the server. Generous on purpose: the suite runs
// under -race on two cores next to the attack itself. The figure under
// 200 ms is for make bench, not for a unit test.
const canaryBound = 5 * time.Second

// canary is an echo client that keeps sending while an attack runs, on its
// own route, and records its worst round trip. It is how the hostile suites
// assert "everyone else keeps being served".
type canary struct {
	t    *testing.T
	ws   *websocket.Conn
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	worst time.Duration
	sent  int
	err   error
}

// startCanary dials path (an echo module: each message comes back as is)
// and starts a round trip every 20 ms. Call check (or let the test's
// cleanup do it) to stop it and fail the test on a missed answer.
func (s *testServer) startCanary(t *testing.T, path string) *canary {
	t.Helper()
	ws, _, err := s.wsDialer().Dial(s.url+path, nil)
	if err != nil {
		t.Fatalf("canary dial %s: %v", path, err)
	}
	c := &canary{t: t, ws: ws, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	t.Cleanup(func() { c.check() })
	return c
}

func (c *canary) run() {
	defer close(c.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if err := c.roundTrip(i); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
	}
}

func (c *canary) roundTrip(i int) error {
	msg := []byte("canary " + strconv.Itoa(i))
	start := time.Now()
	_ = c.ws.SetWriteDeadline(start.Add(canaryBound))
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return err
	}
	_ = c.ws.SetReadDeadline(start.Add(canaryBound))
	for {
		_, got, err := c.ws.ReadMessage()
		if err != nil {
			return err // a timeout too: no answer within canaryBound
		}
		if bytes.Equal(got, msg) {
			break
		}
		// An echo module may greet first (a connect message): skip it.
	}
	rtt := time.Since(start)
	c.mu.Lock()
	c.sent++
	if rtt > c.worst {
		c.worst = rtt
	}
	c.mu.Unlock()
	return nil
}

// check stops the canary (once) and fails the test if any round trip went
// unanswered within canaryBound. It returns the worst round trip seen.
func (c *canary) check() time.Duration {
	c.t.Helper()
	select {
	case <-c.stop:
	default:
		// A test that ends fast may call this before the first tick's
		// round trip is back: give it up to canaryBound, so "no round
		// trip" means none came, not that none had time to.
		for deadline := time.Now().Add(canaryBound); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			c.mu.Lock()
			started := c.sent > 0 || c.err != nil
			c.mu.Unlock()
			if started {
				break
			}
		}
		close(c.stop)
		<-c.done
		c.ws.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		c.t.Errorf("canary: a round trip failed after %d answers (worst %v): %v", c.sent, c.worst, c.err)
	}
	if c.sent == 0 {
		c.t.Errorf("canary: no round trip completed")
	}
	return c.worst
}

// rssBytes is this process's resident set size, from /proc (0 where there
// is no /proc).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
