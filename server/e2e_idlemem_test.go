package server_test

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// idleChildEnv makes the test binary the clients of
// TestIdle_SweepShrinksReaderStacks: "URL N".
const idleChildEnv = "WASMGATE_TEST_IDLE_CLIENTS"

// stackBytes is the memory in goroutine stacks, after two GCs (a GC frees
// stacks whose goroutines have ended).
func stackBytes() int64 { return int64(memAfterGC().StackInuse) }

// An idle client costs no goroutine. Each client's message runs the Go
// guest on its reader, which grows the reader's stack to 8 KiB; the idle
// sweep then parks every client whose reader has waited since in the
// transport's Poller (idle.go), ending the reader, and the heartbeats that
// follow (a ping every 100 ms, answered by the clients, each pong counted
// as the client heard from) are handled there, without starting a reader
// again. On the code before the sweep every reader kept its grown stack
// (4 KiB once a GC had halved it); before the Poller, every idle client
// kept a fresh reader's 2 KiB. The clients, in a child process so that
// their goroutines are not counted, are then served as before.
func TestIdle_SweepShrinksReaderStacks(t *testing.T) {
	if arg := os.Getenv(idleChildEnv); arg != "" {
		idleClients(t, arg)
		return
	}
	const n = 300
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.PingInterval.Duration = 100 * time.Millisecond
		c.Server.IdleTimeout.Duration = time.Second
	}, server.WithIdleSweep(200*time.Millisecond))
	before, goroutinesBefore := stackBytes(), runtime.NumGoroutine()

	child := startTestChild(t, 2*time.Minute, "TestIdle_SweepShrinksReaderStacks", fmt.Sprintf("%s=%s/echo %d", idleChildEnv, srv.url, n))
	stdin, stdout, logs := child.stdin, child.stdout, child.logs
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("clients: no %q line (%v)\n%s", want, lines.Err(), logs.String())
		}
		if got := lines.Text(); got != want {
			t.Fatalf("clients: %q, want %q\n%s", got, want, logs.String())
		}
	}
	expect("READY")

	grown := (stackBytes() - before) / n
	// No reader goroutine per idle client: the count falls back to what it
	// was before them. (The stack bytes are logged, not bounded: the
	// runtime keeps some of the ended readers' stacks pooled, and gives
	// them back to the OS only at the memory return after a large sweep,
	// which the bench's hold measures in RSS.)
	goroutines := func() int { return runtime.NumGoroutine() - goroutinesBefore }
	// Sweeps run every 200 ms; ten ping rounds after the last of them.
	deadline := time.Now().Add(20 * time.Second)
	var settled time.Time
	for {
		if goroutines() > n/10 {
			settled = time.Time{}
		} else if settled.IsZero() {
			settled = time.Now()
		}
		if !settled.IsZero() && time.Since(settled) > time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	per := (stackBytes() - before) / n
	t.Logf("stack per idle client: %d B after the messages (and a GC), %d B after the sweep and 1 s of heartbeats; %d goroutines more than before the %d clients", grown, per, goroutines(), n)
	if g := goroutines(); g > n/10 {
		t.Fatalf("%d goroutines more than before the %d idle clients; want none per client\n%s", g, n, grepLines(srv.logs.String(), "idle sweep"))
	}
	if _, err := stdin.Write([]byte("again\n")); err != nil {
		t.Fatal(err)
	}
	expect("SERVED")
}

// idleClients is the child of TestIdle_SweepShrinksReaderStacks: it
// connects n clients to url, each makes one round trip, and prints READY;
// then they idle, answering pings, until a line on stdin asks each for a
// second round trip (SERVED), and stdin's end closes them.
func idleClients(t *testing.T, arg string) {
	url, count, _ := strings.Cut(arg, " ")
	n, _ := strconv.Atoi(count)
	clients := make([]*echoClient, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				c, err := dialEcho(url)
				if err != nil {
					errs <- err
					return
				}
				clients[i] = c
				if err := c.roundTrip("hello"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		for i, c := range clients {
			if err := c.roundTrip("again"); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
		}
		fmt.Println("SERVED")
	}
	for _, c := range clients {
		c.ws.Close()
	}
}

// echoClient reads its connection on a goroutine (which answers pings)
// into in.
type echoClient struct {
	ws *websocket.Conn
	in chan string
}

func dialEcho(url string) (*echoClient, error) {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	c := &echoClient{ws: ws, in: make(chan string, 4)}
	go func() {
		defer close(c.in)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			c.in <- string(msg)
		}
	}()
	return c, nil
}

// roundTrip sends msg and waits (10 s at most) for its echo.
func (c *echoClient) roundTrip(msg string) error {
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	select {
	case got, ok := <-c.in:
		if !ok {
			return fmt.Errorf("closed before the echo of %q", msg)
		}
		if got != msg {
			return fmt.Errorf("echo %q, sent %q", got, msg)
		}
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no echo of %q in 10 s", msg)
	}
}

// Hostile control frames at the shallow wait (transport's idle.go): one
// client floods pings and never reads the pongs, another floods pongs with
// the largest payload allowed (125 bytes). The server answers what it can,
// bounds what it owes the first (one pong kept, the socket's buffer, then
// write_timeout), and a canary is answered throughout; the server's memory
// does not grow with the flood.
func TestIdle_ControlFloodKeepsCanary(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.WriteTimeout.Duration = time.Second
	})
	canary := srv.startCanary(t, "/echo")
	rss0, heap0 := rssBytes(), memAfterGC().HeapInuse
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, op := range []int{websocket.PingMessage, websocket.PongMessage} {
		ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		payload := []byte(strings.Repeat("p", 125))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if ws.WriteControl(op, payload, time.Now().Add(time.Second)) != nil {
					return // dropped: the pings' client after write_timeout
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	worst := canary.check()
	// What the flood left held, with its clients still connected: the Go
	// heap after a GC. (RSS is logged only: under the race detector it
	// also moves with garbage not yet collected and the detector's own
	// memory, by 30–140 MiB between runs here.)
	rss, heap := rssBytes(), memAfterGC().HeapInuse
	t.Logf("canary worst round trip %v; RSS %d → %d MiB; heap in use after a GC %d → %d MiB", worst, rss0>>20, rss>>20, heap0>>20, heap>>20)
	if heap > heap0+16<<20 {
		t.Errorf("the heap holds %d MiB more after a 3 s control-frame flood", (heap-heap0)>>20)
	}
}
