package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// misbehaver is one misbehaving guest, served on /<route>, and what a
// client of it does: each round sends the message that makes the guest
// misbehave, then checks what the server answers today: a failed event
// (trap, deadline, stack overflow, refused buffer) is logged, answers
// nothing, and leaves the client connected and served.
type misbehaver struct {
	route string
	round func(c *wsClient) error
	// probe checks, cheaply, that a new client is served (nil: round).
	probe func(c *wsClient) error
	// minRounds is how many rounds must run during the echo (0: 2).
	minRounds int
}

// Timing of TestSandbox_MisbehavingGuestsDoNotDisturbEcho: the event
// deadline is short so runaway guests are stopped often; the echo runs for
// at least minEchoes messages and sandboxMinDuration, and until every
// misbehaver did its rounds.
const (
	sandboxEventTimeout = 50 * time.Millisecond
	sandboxMinDuration  = 2 * time.Second
	minEchoes, window   = 300, 16
)

// TestSandbox_MisbehavingGuestsDoNotDisturbEcho runs a well-behaved echo
// module next to one module per kind of misbehaviour (infinite loop,
// memory bomb, unbounded recursion, file/env probing, 4 MiB stdout floods,
// garbage pointers, traps). While clients hit every misbehaving route over
// and over, an echo client sends numbered messages continuously: every echo
// must come back, in order, with no error. Afterwards nobody was
// disconnected and every route serves a new client.
func TestSandbox_MisbehavingGuestsDoNotDisturbEcho(t *testing.T) {
	t.Setenv("WASMGATE_SECRET_PROBE", "must not leak")
	ping := echoesPing
	misbehavers := []misbehaver{
		{"loop", failsThenServes("loop"), ping, 0}, // spins until the deadline
		// A stack overflow allocates ~160 MB and takes seconds under -race.
		{"recursion", failsThenServes("recurse"), ping, 1},
		{"trap", failsThenServes("trap"), ping, 0},               // unreachable
		{"stdout_flood", floodThenServes, ping, 0},               // 4 MiB of stdout lines
		{"membomb", bombThenServes, ping, 0},                     // grows memory until refused
		{"badptr", expectBinary("x", checkBadPointers), nil, 0},  // garbage pointers to host calls
		{"wasi_probe", expectBinary("x", checkNoAccess), nil, 0}, // env, args, files, stdin
		{"badbuffer", answersNothing, nil, 0},                    // garbage pointer from wasmgate_buffer
	}
	names := []string{"echoA"}
	for _, m := range misbehavers {
		names = append(names, m.route)
	}
	srv := startServer(t, handlersWith(t, names...), func(c *server.Config) {
		c.Runtime.EventTimeout.Duration = sandboxEventTimeout
		c.Runtime.MemoryLimit = 16 // MiB: the memory bomb stops at 256 pages
		// Failing over and over is the point here: no quarantine, and no
		// restart back-off growing past the test (TestQuarantine_* covers
		// both).
		c.Runtime.CrashLimit = 0
		c.Runtime.RestartBackoff.Duration = 0
		c.Runtime.RestartBackoffMax.Duration = 0
	})
	start := time.Now()

	// The misbehaving clients: each repeats its round until told to stop,
	// and at least its minRounds times.
	var stop atomic.Bool
	var misbehaving, roundsDone sync.WaitGroup
	rounds := make([]atomic.Int64, len(misbehavers))
	roundsDone.Add(len(misbehavers))
	for i, m := range misbehavers {
		c := srv.dial(t, "/"+m.route)
		if m.minRounds == 0 {
			m.minRounds = 2
		}
		misbehaving.Add(1)
		go func() {
			defer misbehaving.Done()
			for n := 1; ; n++ {
				if err := m.round(c); err != nil {
					t.Errorf("/%s round %d: %v", m.route, n, err)
					if n <= m.minRounds {
						roundsDone.Done()
					}
					return
				}
				rounds[i].Store(int64(n))
				if n == m.minRounds {
					roundsDone.Done()
				}
				if n >= m.minRounds && stop.Load() {
					return
				}
			}
		}()
	}

	// The echo client: a writer sends numbered messages, at most window
	// unanswered, until enough were sent and the misbehavers are done; the
	// reader checks each answer is the next number.
	echo := srv.dial(t, "/echoA")
	var sent atomic.Int64
	credit := make(chan struct{}, window)
	for range window {
		credit <- struct{}{}
	}
	misbehaversDone := make(chan struct{})
	go func() { roundsDone.Wait(); close(misbehaversDone) }()
	writerDone := make(chan error, 1)
	go func() {
		for seq := 0; ; seq++ {
			select {
			case <-misbehaversDone:
				if seq >= minEchoes && time.Since(start) >= sandboxMinDuration {
					writerDone <- nil
					return
				}
			default:
			}
			<-credit
			if err := echo.ws.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(seq))); err != nil {
				writerDone <- fmt.Errorf("write %d: %w", seq, err)
				return
			}
			sent.Add(1)
		}
	}()
	var maxLatency time.Duration
	received, lastAt := 0, time.Now()
	checkEcho := func(f frame) error {
		switch {
		case f.err != nil:
			return fmt.Errorf("echo connection ended after %d echoes: %w", received, f.err)
		case string(f.data) != "A:"+strconv.Itoa(received):
			return fmt.Errorf("echo %q, want %q (lost, duplicated or out of order)", f.data, "A:"+strconv.Itoa(received))
		}
		maxLatency = max(maxLatency, time.Since(lastAt))
		received++
		lastAt = time.Now()
		credit <- struct{}{}
		return nil
	}
	// A lost echo shows as the next one arriving out of order; the stall
	// timeout only catches the last ones lost, and is generous: -race on a
	// loaded machine stalls for seconds.
	const stall = 10 * time.Second
	var echoErr error
	for writing := true; writing && echoErr == nil; {
		select {
		case echoErr = <-writerDone:
			writing = false
		case f := <-echo.in:
			echoErr = checkEcho(f)
		case <-time.After(stall):
			echoErr = fmt.Errorf("no echo of %d within %v", received, stall)
		}
	}
	stop.Store(true)
	for echoErr == nil && int64(received) < sent.Load() {
		f, ok := echo.next(stall)
		if !ok {
			echoErr = fmt.Errorf("no echo of %d within %v", received, stall)
			break
		}
		echoErr = checkEcho(f)
	}
	misbehaving.Wait()
	if echoErr != nil {
		t.Fatalf("echo client: %v", echoErr)
	}
	if received < minEchoes {
		t.Fatalf("%d echoes, want at least %d", received, minEchoes)
	}
	var counts []string
	for i, m := range misbehavers {
		counts = append(counts, fmt.Sprintf("%s %d", m.route, rounds[i].Load()))
	}
	t.Logf("%d echoes in order in %v (longest wait for one %v) while misbehaving rounds ran: %s",
		received, time.Since(start).Round(time.Millisecond), maxLatency.Round(time.Millisecond), strings.Join(counts, ", "))

	// Nobody was disconnected, and every route still serves a new client.
	if n, _ := srv.Gateway().GetAllClientIdCount(t.Context()); n != 1+len(misbehavers) {
		t.Fatalf("%d clients connected, want %d: a misbehaving guest's client was dropped", n, 1+len(misbehavers))
	}
	fresh := srv.dial(t, "/echoA")
	fresh.sendText("after")
	if _, data := fresh.read(); string(data) != "A:after" {
		t.Fatalf("new echo client got %q", data)
	}
	for _, m := range misbehavers {
		probe := m.probe
		if probe == nil {
			probe = m.round
		}
		if err := probe(srv.dial(t, "/"+m.route)); err != nil {
			t.Errorf("/%s, new client: %v", m.route, err)
		}
	}

	// Failed events were logged as today, and the floods did not flood
	// the log: at most the burst plus 100 lines a second.
	logs := srv.logs.String()
	for _, module := range []string{"loop", "recursion", "trap", "badbuffer"} {
		if !strings.Contains(logs, `instance discarded" module=`+module+" event=on_message") {
			t.Errorf("no failed event logged for module %s", module)
		}
	}
	floodLines := strings.Count(logs, "module=stdout_flood stream=guest")
	if limit := 200 + int(time.Since(start).Seconds()*100) + 1; floodLines == 0 || floodLines > limit {
		t.Errorf("%d log lines from stdout_flood (%d floods of 65536 lines), want 1..%d", floodLines, rounds[3].Load()+1, limit)
	}
}

// nextData waits for the client's next message.
func nextData(c *wsClient) ([]byte, error) {
	return frameData(c.next(10 * time.Second))
}

func frameData(f frame, ok bool) ([]byte, error) {
	if !ok {
		return nil, errors.New("no answer within 10s")
	}
	if f.err != nil {
		return nil, fmt.Errorf("disconnected: %w", f.err)
	}
	return f.data, nil
}

func write(c *wsClient, msgs ...string) error {
	for _, m := range msgs {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			return fmt.Errorf("write %q: %w", m, err)
		}
	}
	return nil
}

// failsThenServes sends bad, whose event fails and answers nothing, then
// "ping", which the module echoes: "ping" must be the next message.
func failsThenServes(bad string) func(*wsClient) error {
	return func(c *wsClient) error {
		if err := write(c, bad, "ping"); err != nil {
			return err
		}
		data, err := nextData(c)
		if err != nil {
			return err
		}
		if string(data) != "ping" {
			return fmt.Errorf("got %q, want %q: the failed event answered, or the next was not served", data, "ping")
		}
		return nil
	}
}

// echoesPing checks the module echoes "ping".
func echoesPing(c *wsClient) error {
	if err := write(c, "ping"); err != nil {
		return err
	}
	data, err := nextData(c)
	if err != nil {
		return err
	}
	if string(data) != "ping" {
		return fmt.Errorf("got %q, want %q", data, "ping")
	}
	return nil
}

// floodThenServes has the guest write 4 MiB of lines to stdout. The flood
// answers "flooded" if it finishes within the event deadline (under -race
// it may not: then, like any event past it, it answers nothing); the
// "ping" after it must be echoed either way.
func floodThenServes(c *wsClient) error {
	if err := write(c, "flood", "ping"); err != nil {
		return err
	}
	data, err := nextData(c)
	if err == nil && string(data) == "flooded" {
		data, err = nextData(c)
	}
	if err != nil {
		return err
	}
	if string(data) != "ping" {
		return fmt.Errorf("got %q, want %q", data, "ping")
	}
	return nil
}

// expectBinary sends msg and checks the binary answer.
func expectBinary(msg string, check func([]byte) error) func(*wsClient) error {
	return func(c *wsClient) error {
		if err := write(c, msg); err != nil {
			return err
		}
		f, ok := c.next(10 * time.Second)
		switch {
		case !ok:
			return errors.New("no answer within 10s")
		case f.err != nil:
			return fmt.Errorf("disconnected: %w", f.err)
		case f.typ != websocket.BinaryMessage:
			return fmt.Errorf("answer %q is not binary", f.data)
		}
		return check(f.data)
	}
}

func i32s(b []byte) []int32 {
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// bombThenServes has the guest grow its memory until memory.grow fails at
// the 16 MiB cap, which takes longer than the event deadline on a slow
// machine: the guest answers its size in pages if it got there in time,
// else nothing; the "ping" after it must be echoed either way.
func bombThenServes(c *wsClient) error {
	if err := write(c, "x", "ping"); err != nil {
		return err
	}
	f, ok := c.next(10 * time.Second)
	if ok && f.err == nil && f.typ == websocket.BinaryMessage {
		if len(f.data) != 4 {
			return fmt.Errorf("answer %x, want 4 bytes", f.data)
		}
		if pages := i32s(f.data)[0]; pages > 16*16 {
			return fmt.Errorf("guest grew to %d pages past the 16 MiB cap", pages)
		}
		f, ok = c.next(10 * time.Second)
	}
	data, err := frameData(f, ok)
	if err != nil {
		return err
	}
	if string(data) != "ping" {
		return fmt.Errorf("got %q, want %q", data, "ping")
	}
	return nil
}

func checkBadPointers(b []byte) error {
	// -1 (bad pointer) for an id far outside memory, -4 (too large) for a
	// 2 GiB message length.
	if want := []byte{0xff, 0xff, 0xff, 0xff, 0xfc, 0xff, 0xff, 0xff}; !bytes.Equal(b, want) {
		return fmt.Errorf("answer %x, want %x", b, want)
	}
	return nil
}

// checkNoAccess reads wasi_probe's answer (see its .wat): no env vars or
// args, EBADF for every file descriptor, nothing read.
func checkNoAccess(b []byte) error {
	if len(b) != 56 {
		return fmt.Errorf("answer of %d bytes, want 56", len(b))
	}
	v := i32s(b)
	const ebadf = 8
	want := []int32{0, 0, 0, 0, ebadf, ebadf, ebadf, ebadf, -1, ebadf, -1, 0, 0}
	for i, w := range want {
		if v[i] != w {
			return fmt.Errorf("probe value at offset %d = %d, want %d (answer %v)", 4*i, v[i], w, v[:13])
		}
	}
	if string(b[52:]) != "SENT" {
		return fmt.Errorf("read buffer holds %q: something was read", b[52:])
	}
	return nil
}

// answersNothing sends to a module whose every event fails (its
// wasmgate_buffer returns a garbage pointer): nothing may come back, and
// the connection stays open.
func answersNothing(c *wsClient) error {
	if err := write(c, "x"); err != nil {
		return err
	}
	if f, ok := c.next(200 * time.Millisecond); ok {
		return fmt.Errorf("unexpected frame %q (err %v)", f.data, f.err)
	}
	return nil
}
