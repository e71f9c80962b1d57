package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// The attack phase measures what hostile guests cost everyone else: a
// serve process loads the echo handler beside hostile modules (the WAT
// fixtures of runtime/testdata), attacker clients keep triggering one
// hostile behaviour at a time, and a canary client echoes on /echo
// throughout. Per attack it reports the canary's worst and p99 round trip
// and the longest stop-the-world GC pause of the serve process
// (runtime/metrics), the figures issue 8 sets a 200 ms target for.

// attack is one hostile behaviour: clients on route send trigger, over and
// over, each waiting up to wait for an answer (or a close) before the next.
type attack struct {
	name    string
	fixture string // module file under runtime/testdata, without .wasm; "handlers/NAME": an example handler
	trigger string
	wait    time.Duration
	noReply bool   // the module answers nothing: send every wait, read nothing
	binary  bool   // send binary frames (the trigger is not text)
	oneShot bool   // a new connection per trigger (attacks on connect and close)
	config  string // the module's on_start config
	// message, when set, builds the n-th message instead of trigger (an
	// attack that needs every message to differ, such as a state flood).
	message func(n int) string
}

// modulePath is where serve copies the attack's module from: a fixture
// path (PATH@ALIAS serves it under another name), or a name in the
// handlers folder.
func (a attack) modulePath() string {
	if name, ok := strings.CutPrefix(a.fixture, "handlers/"); ok {
		return name
	}
	return filepath.Join("runtime", "testdata", a.fixture)
}

// route is the attack's route.
func (a attack) route() string {
	name := filepath.Base(a.fixture)
	if _, alias, ok := strings.Cut(name, "@"); ok {
		name = alias
	}
	return "/" + name
}

// stateFlood is chat's worst legitimate-looking client: every message joins
// a new room or adds a new 1 KB session key, so only the per-client bounds
// (max_groups_per_client, max_session_bytes) stop it.
func stateFlood(n int) string {
	if n%2 == 0 {
		return fmt.Sprintf(`{"type":"join","room":"room-%d"}`, n)
	}
	return fmt.Sprintf(`{"type":"session_update","session":{"k%d":%q}}`, n, strings.Repeat("x", 1000))
}

// attacks are run in order; a fixture that is not there is reported as
// skipped, not silently dropped.
var attacks = []attack{
	{name: "endless loop in on_message", fixture: "loop", trigger: "l", wait: time.Second},
	{name: "unbounded recursion (stack overflow)", fixture: "recursion", trigger: "r", wait: time.Second},
	{name: "loop-free call tree of 2^31 calls", fixture: "recursion", trigger: "t", wait: time.Second},
	{name: "timer storm (100 × set_timer(0) per message and per timer)", fixture: "timer_storm", trigger: "x", wait: 100 * time.Millisecond, noReply: true},
	// An 8 MiB list argument (2M entries) on every message: refused before
	// any string is made.
	{name: "8 MiB list to send_to_uid per message", fixture: "biglist", trigger: "\x00\x00\x80\x00", wait: time.Second, binary: true},
	{name: "group and session flood on chat", fixture: "handlers/chat", wait: time.Second, message: stateFlood},
	// hostile.wat loops in the event its config names (a 100 ms deadline
	// stops each call).
	{name: "endless loop in on_handshake", fixture: "hostile@hostile_h", config: "h", trigger: "x", wait: time.Second, oneShot: true},
	{name: "endless loop in on_connect", fixture: "hostile@hostile_c", config: "c", trigger: "x", wait: time.Second, oneShot: true},
	{name: "endless loop in on_close", fixture: "hostile@hostile_x", config: "x", trigger: "x", wait: time.Second, oneShot: true},
	{name: "endless loop in on_task", fixture: "hostile@hostile_t", config: "t", trigger: "x", wait: 100 * time.Millisecond, noReply: true},
	{name: "endless loop in on_timer", fixture: "hostile@hostile_T", config: "T", trigger: "x", wait: 100 * time.Millisecond, noReply: true},
}

// attackTarget is issue 8's bound on the canary's worst round trip and the
// longest GC pause under every attack.
const attackTarget = 200 * time.Millisecond

// attackers is how many clients trigger an attack at once: more than the
// serve process's cores, so that every instance of the pool is busy.
const attackers = 4

// attackResult is one attack's figures; err is set when it could not run.
type attackResult struct {
	name         string
	canaryWorst  time.Duration
	canaryP99    time.Duration
	canaryRounds uint64
	gcPauseMax   time.Duration
	triggers     int
	err          error
}

// attackPhase runs every attack against one serve process.
func attackPhase(ctx context.Context, f benchFlags) []attackResult {
	var mods []string
	seen := map[string]bool{}
	for _, a := range attacks {
		p := a.modulePath()
		file := p + ".wasm"
		if !strings.ContainsRune(p, '/') {
			file = filepath.Join(f.handlers, file)
		}
		if path, _, ok := strings.Cut(file, "@"); ok {
			file = path + ".wasm"
		}
		if _, err := os.Stat(file); err == nil && !seen[p] {
			mods = append(mods, p)
			seen[p] = true
		}
	}
	// chat's rate limit off: the flood is bounded by the per-client limits.
	configs := []string{"chat:rate_limit=0"}
	for _, a := range attacks {
		if a.config != "" {
			configs = append(configs, strings.TrimPrefix(a.route(), "/")+":"+a.config)
		}
	}
	srv, addrs, err := startServe(ctx, f, strings.Join(append([]string{"echo"}, mods...), ","), "-crash-limit", "0", "-module-config", strings.Join(configs, ";"))
	if err != nil {
		return []attackResult{{name: "start serve", err: err}}
	}
	defer func() { _ = srv.stop(15 * time.Second) }()
	var out []attackResult
	for _, a := range attacks {
		res := attackResult{name: a.name}
		if !seen[a.modulePath()] {
			res.err = fmt.Errorf("fixture %s.wasm not built", a.fixture)
		} else {
			res = runAttack(ctx, f, srv, addrs, a)
		}
		fmt.Printf("attack %-40s canary worst %8v p99 %8v  GC pause max %8v  triggers %d  %v\n",
			a.name, res.canaryWorst.Round(time.Microsecond), res.canaryP99.Round(time.Microsecond),
			res.gcPauseMax.Round(time.Microsecond), res.triggers, errText(res.err))
		out = append(out, res)
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}

// runAttack runs one attack for f.attackDuration with a canary beside it.
func runAttack(ctx context.Context, f benchFlags, srv *child, addrs serveAddrs, a attack) attackResult {
	res := attackResult{name: a.name}
	if _, err := srv.ask("gcpause", "GCPAUSE "); err != nil { // resets the window
		res.err = err
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, f.attackDuration)
	defer cancel()
	route := "ws://" + addrs.ws + a.route()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range attackers {
		wg.Go(func() {
			n := attackLoop(ctx, route, a)
			mu.Lock()
			res.triggers += n
			mu.Unlock()
		})
	}
	var h histogram
	cerr := canaryLoop(ctx, "ws://"+addrs.ws+"/echo", &h)
	wg.Wait()
	res.canaryRounds = h.total
	res.canaryP99 = h.quantile(0.99)
	res.canaryWorst = h.quantile(1)
	line, err := srv.ask("gcpause", "GCPAUSE ")
	if err == nil {
		var ns int64
		_, err = fmt.Sscanf(line, "GCPAUSE max_ns=%d", &ns)
		res.gcPauseMax = time.Duration(ns)
	}
	res.err = errors.Join(cerr, err)
	return res
}

// attackLoop sends the trigger until ctx ends, redialling when the server
// closes the connection (a stopped guest may take its client down), and
// returns how many triggers it sent.
func attackLoop(ctx context.Context, url string, a attack) int {
	n := 0
	for ctx.Err() == nil {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		for ctx.Err() == nil {
			msg := a.trigger
			if a.message != nil {
				msg = a.message(n)
			}
			typ := websocket.TextMessage
			if a.binary {
				typ = websocket.BinaryMessage
			}
			if err := ws.WriteMessage(typ, []byte(msg)); err != nil {
				break
			}
			n++
			if a.oneShot {
				_ = ws.SetReadDeadline(time.Now().Add(a.wait))
				_, _, _ = ws.ReadMessage()
				break // a new connection for the next trigger
			}
			if a.noReply {
				select {
				case <-ctx.Done():
				case <-time.After(a.wait):
				}
				continue
			}
			_ = ws.SetReadDeadline(time.Now().Add(a.wait))
			if _, _, err := ws.ReadMessage(); err != nil && !isTimeout(err) {
				break // closed: redial
			} else if err != nil {
				break // a timed-out read leaves the connection unusable: redial
			}
		}
		ws.Close()
	}
	return n
}

// canaryLoop echoes one message every 10 ms on url until ctx ends,
// recording each round trip; a round trip that gets no answer within 10 s
// is an error.
func canaryLoop(ctx context.Context, url string, h *histogram) error {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("canary dial: %w", err)
	}
	defer ws.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		msg := []byte("canary " + strconv.Itoa(i))
		start := time.Now()
		if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			return fmt.Errorf("canary write: %w", err)
		}
		_ = ws.SetReadDeadline(start.Add(10 * time.Second))
		for {
			_, got, err := ws.ReadMessage()
			if err != nil {
				return fmt.Errorf("canary round trip %d: %w", i, err)
			}
			if string(got) == string(msg) {
				break
			}
		}
		h.record(time.Since(start))
	}
}

// printAttackRows prints the attack table of the report.
func printAttackRows(rs []attackResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Printf("\n### Hostile guests: the canary and the GC under attack (target: both under %v)\n\n", attackTarget)
	fmt.Println("| attack | canary round trips | canary p99 | canary worst | longest GC pause | triggers | verdict |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rs {
		if r.err != nil && r.canaryRounds == 0 {
			fmt.Printf("| %s | – | – | – | – | – | not run: %v |\n", r.name, r.err)
			continue
		}
		ok := r.err == nil && r.canaryWorst < attackTarget && r.gcPauseMax < attackTarget
		fmt.Printf("| %s | %d | %v | %v | %v | %d | %s |\n", r.name, r.canaryRounds,
			r.canaryP99.Round(time.Microsecond), r.canaryWorst.Round(time.Microsecond),
			r.gcPauseMax.Round(time.Microsecond), r.triggers, verdict(ok))
	}
}
