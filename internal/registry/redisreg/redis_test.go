package redisreg

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/redistest"
	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/internal/registry/registrytest"
)

// newReg returns a registry for node on srv under prefix, heartbeating
// once with ttl; closed when t ends.
func newReg(t testing.TB, srv *redistest.Server, prefix string, node uint32, l registry.Limits, ttl time.Duration) *Registry {
	t.Helper()
	r, err := New(Options{URL: srv.URL(), Prefix: prefix, Node: node, Limits: l, NodeTTL: ttl, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if _, err := r.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRedis_Conformance runs the suite registry.Local passes, each test
// under its own prefix on one redis-server; the peer is node 2 on the same
// prefix, so the concurrency tests race two nodes.
func TestRedis_Conformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	registrytest.Run(t, func(t *testing.T, l registry.Limits) registry.Registry {
		return newReg(t, srv, fmt.Sprintf("conf%d:", n.Add(1)), registrytest.Node, l, time.Hour)
	}, registrytest.WithPeer(func(t *testing.T, r registry.Registry) registry.Registry {
		return newReg(t, srv, r.(*Registry).Prefix(), registrytest.Node+1, r.(*Registry).limits, time.Hour)
	}))
}

func ids(node uint32, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%08x%012x", node, i)
	}
	return out
}

// get(f())(t) is f's value, or fails t with f's error.
func get[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRedis_AddClientOnlyOwnNode: presence is per node, so a node adds only
// the clients its id names.
func TestRedis_AddClientOnlyOwnNode(t *testing.T) {
	srv := redistest.Start(t)
	r := newReg(t, srv, "own:", 1, registry.Limits{}, time.Hour)
	for _, id := range []string{ids(2, 1)[0], "nope", "0000000100000000000G"} {
		if err := r.AddClient(t.Context(), id); abi.ErrnoOf(err) != abi.ErrnoInvalid {
			t.Errorf("AddClient(%q) = %v, want invalid", id, err)
		}
	}
}

// TestRedis_DeadNodeIsSwept: node 2 stops heartbeating; once its TTL ran
// out its clients vanish from HasClient, ClientIDs and ClientCount, and
// node 1's Sweep removes them from groups, uids and sessions too. Node 1's
// own clients stay.
func TestRedis_DeadNodeIsSwept(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	n1 := newReg(t, srv, "live:", 1, registry.Limits{}, time.Hour)
	n2 := newReg(t, srv, "live:", 2, registry.Limits{}, time.Second)
	own, dead := ids(1, 2), ids(2, 3)
	for _, id := range own {
		noErr(t, n1.AddClient(ctx, id))
		noErr(t, n1.JoinGroup(ctx, id, "g"))
		noErr(t, n1.BindUid(ctx, id, "u1"))
	}
	for i, id := range dead {
		noErr(t, n2.AddClient(ctx, id))
		noErr(t, n2.JoinGroup(ctx, id, "g"))
		noErr(t, n2.JoinGroup(ctx, id, "g2"))
		noErr(t, n2.BindUid(ctx, id, fmt.Sprintf("u%d", i+1)))
		noErr(t, n2.SetSession(ctx, id, []byte(`{"a":1}`)))
	}
	if n := get(n1.ClientCount(ctx))(t); n != 5 {
		t.Fatalf("ClientCount = %d before node 2 died, want 5", n)
	}
	// Node 2 is alive: a sweep leaves it alone.
	if n := get(n1.Sweep(ctx))(t); n != 0 {
		t.Fatalf("Sweep removed %d clients of a live node", n)
	}

	// Node 2 stops heartbeating. Wait for its TTL to run out (a condition,
	// not a sleep; bounded generously).
	deadline := time.Now().Add(30 * time.Second)
	for get(n1.HasClient(ctx, dead[0]))(t) {
		if time.Now().After(deadline) {
			t.Fatal("node 2's heartbeat did not expire in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Before any sweep: presence already skips the dead node.
	if got := get(n1.ClientIDs(ctx))(t); !slices.Equal(got, own) {
		t.Errorf("ClientIDs = %v, want %v", got, own)
	}
	if n := get(n1.ClientCount(ctx))(t); n != 2 {
		t.Errorf("ClientCount = %d, want 2", n)
	}

	if n := get(n1.Sweep(ctx))(t); n != 3 {
		t.Errorf("Sweep removed %d clients, want 3", n)
	}
	for _, id := range dead {
		if get(n1.HasClient(ctx, id))(t) {
			t.Errorf("HasClient(%s) after sweep", id)
		}
		if _, err := n1.Session(ctx, id); abi.ErrnoOf(err) != abi.ErrnoNotFound {
			t.Errorf("Session(%s) after sweep: %v", id, err)
		}
	}
	if got := get(n1.GroupClients(ctx, "g"))(t); len(got) != 2 {
		t.Errorf("GroupClients(g) = %v, want node 1's 2", got)
	}
	if n := get(n1.GroupClientCount(ctx, "g"))(t); n != 2 {
		t.Errorf("GroupClientCount(g) = %d, want 2", n)
	}
	if got := get(n1.GroupIDs(ctx))(t); !slices.Equal(got, []string{"g"}) {
		t.Errorf("GroupIDs = %v, want [g]", got)
	}
	if got := get(n1.Uids(ctx))(t); !slices.Equal(got, []string{"u1"}) {
		t.Errorf("Uids = %v, want [u1]", got)
	}
	if got := get(n1.ClientsByUid(ctx, "u1"))(t); len(got) != 2 {
		t.Errorf("ClientsByUid(u1) = %v, want node 1's 2", got)
	}
	if got := get(n1.GroupUids(ctx, "g"))(t); !slices.Equal(got, []string{"u1"}) {
		t.Errorf("GroupUids(g) = %v, want [u1]", got)
	}
	// The dead node is forgotten: nothing of it is left in Redis.
	cli := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer cli.Close()
	keys := get(cli.Keys(ctx, "live:*").Result())(t)
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains([]string{"live:node:00000002", "live:node:00000002:clients"}, k) {
			t.Errorf("key %s left behind", k)
		}
	}
	if m := get(cli.SMembers(ctx, "live:nodes").Result())(t); !slices.Equal(m, []string{"00000001"}) {
		t.Errorf("nodes = %v, want [00000001]", m)
	}
	// Node 2 comes back: its heartbeat says the presence was lost.
	if lost := get(n2.Heartbeat(ctx))(t); !lost {
		t.Error("Heartbeat of a swept node did not report the presence lost")
	}
}

// TestRedis_SweepStopsWhenNodeReturns: a node whose heartbeat is back is
// not swept, even with a sweep in progress (each batch checks).
func TestRedis_SweepStopsWhenNodeReturns(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	n1 := newReg(t, srv, "ret:", 1, registry.Limits{}, time.Hour)
	n2 := newReg(t, srv, "ret:", 2, registry.Limits{}, time.Hour)
	for _, id := range ids(2, sweepBatch+10) {
		noErr(t, n2.AddClient(ctx, id))
	}
	if n := get(n1.Sweep(ctx))(t); n != 0 {
		t.Fatalf("swept %d clients of a live node", n)
	}
	if n := get(n1.ClientCount(ctx))(t); n != sweepBatch+10 {
		t.Fatalf("ClientCount = %d", n)
	}
}

// TestRedis_LeaveRemovesOwnClients: a clean shutdown leaves nothing for the
// survivors to wait for.
func TestRedis_LeaveRemovesOwnClients(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	n1 := newReg(t, srv, "leave:", 1, registry.Limits{}, time.Hour)
	n2 := newReg(t, srv, "leave:", 2, registry.Limits{}, time.Hour)
	noErr(t, n1.AddClient(ctx, ids(1, 1)[0]))
	for _, id := range ids(2, 3) {
		noErr(t, n2.AddClient(ctx, id))
		noErr(t, n2.JoinGroup(ctx, id, "g"))
	}
	noErr(t, n2.Leave(ctx))
	if got := get(n1.ClientIDs(ctx))(t); !slices.Equal(got, ids(1, 1)) {
		t.Errorf("ClientIDs after node 2 left = %v", got)
	}
	if got := get(n1.GroupIDs(ctx))(t); len(got) != 0 {
		t.Errorf("GroupIDs after node 2 left = %v", got)
	}
}

// snapshotState is what a node knows of its clients, in a registry.Local.
func localState(t testing.TB, node uint32) (*registry.Local, []string) {
	ctx := context.Background()
	l := registry.NewLocal()
	cs := ids(node, 4)
	for i, id := range cs {
		noErr(t, l.AddClient(ctx, id))
		noErr(t, l.JoinGroup(ctx, id, "all"))
		noErr(t, l.JoinGroup(ctx, id, fmt.Sprintf("g%d", i%2)))
		if i < 3 {
			noErr(t, l.BindUid(ctx, id, fmt.Sprintf("u%d", i%2)))
		}
		noErr(t, l.SetSession(ctx, id, fmt.Appendf(nil, `{"i":%d,"big":12345678901234567890123}`, i)))
	}
	return l, cs
}

// mirror writes the local state into r, as the node did while Redis was up.
func mirror(t testing.TB, r *Registry, l *registry.Local) {
	t.Helper()
	noErr(t, r.Republish(context.Background(), get(r.Snapshot(context.Background(), l))(t)))
}

// checkMatches asserts that r answers for node's clients as l does.
func checkMatches(t *testing.T, r *Registry, l *registry.Local, cs []string) {
	t.Helper()
	ctx := t.Context()
	for _, id := range cs {
		if !get(r.HasClient(ctx, id))(t) {
			t.Errorf("HasClient(%s) = false", id)
		}
		if got, want := get(r.UidOf(ctx, id))(t), get(l.UidOf(ctx, id))(t); got != want {
			t.Errorf("UidOf(%s) = %q, want %q", id, got, want)
		}
		if got, want := string(get(r.Session(ctx, id))(t)), string(get(l.Session(ctx, id))(t)); got != want {
			t.Errorf("Session(%s) = %s, want %s", id, got, want)
		}
	}
	for _, g := range []string{"all", "g0", "g1"} {
		got, want := get(r.GroupClients(ctx, g))(t), get(l.GroupClients(ctx, g))(t)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("GroupClients(%s) = %v, want %v", g, got, want)
		}
		if got, want := get(r.GroupUids(ctx, g))(t), get(l.GroupUids(ctx, g))(t); !slices.Equal(got, want) {
			t.Errorf("GroupUids(%s) = %v, want %v", g, got, want)
		}
	}
	if got, want := get(r.Uids(ctx))(t), get(l.Uids(ctx))(t); !slices.Equal(got, want) {
		t.Errorf("Uids = %v, want %v", got, want)
	}
	if got, want := get(r.ClientIDs(ctx))(t), get(l.ClientIDs(ctx))(t); !slices.Equal(got, want) {
		t.Errorf("ClientIDs = %v, want %v", got, want)
	}
}

// TestRedis_RepublishAfterFlushAll: Redis loses everything (FLUSHALL); the
// next heartbeat says so, and Republish puts the node's clients, uids,
// groups and sessions back as they were.
func TestRedis_RepublishAfterFlushAll(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	r := newReg(t, srv, "rep:", 1, registry.Limits{}, time.Hour)
	l, cs := localState(t, 1)
	mirror(t, r, l)
	checkMatches(t, r, l, cs)
	if lost := get(r.Heartbeat(ctx))(t); lost {
		t.Fatal("Heartbeat reports the presence lost while Redis has it")
	}

	if rep := get(srv.Do(ctx, "FLUSHALL"))(t); rep != "+OK" {
		t.Fatalf("FLUSHALL: %s", rep)
	}
	if n := get(r.ClientCount(ctx))(t); n != 0 {
		t.Fatalf("ClientCount after FLUSHALL = %d", n)
	}
	if lost := get(r.Heartbeat(ctx))(t); !lost {
		t.Fatal("Heartbeat after FLUSHALL does not report the presence lost")
	}
	// Meanwhile the node changed: a client left, another rebound.
	_, _ = l.RemoveClient(ctx, cs[3])
	noErr(t, l.BindUid(ctx, cs[0], "u9"))
	noErr(t, r.Republish(ctx, get(r.Snapshot(ctx, l))(t)))
	checkMatches(t, r, l, cs[:3])
	if get(r.HasClient(ctx, cs[3]))(t) {
		t.Error("a client that left is back")
	}
	// Republish replaces, so running it on a Redis that has the state
	// (twice) changes nothing, and drops clients the node no longer has.
	noErr(t, r.Republish(ctx, get(r.Snapshot(ctx, l))(t)))
	checkMatches(t, r, l, cs[:3])
	_, _ = l.RemoveClient(ctx, cs[2])
	noErr(t, r.Republish(ctx, get(r.Snapshot(ctx, l))(t)))
	checkMatches(t, r, l, cs[:2])
	// Only this node's clients can be republished.
	if err := r.Republish(ctx, []Client{{ID: ids(2, 1)[0]}}); abi.ErrnoOf(err) != abi.ErrnoInvalid {
		t.Errorf("Republish of another node's client: %v, want invalid", err)
	}
}

// TestRedis_RestartFailsFastThenRecovers: with redis-server killed every
// call fails with ErrnoUnavailable within a bound, without hanging; a fresh
// empty redis-server on the same port is found again, and Maintain's
// heartbeat re-publishes the node's presence by itself.
func TestRedis_RestartFailsFastThenRecovers(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	r, err := New(Options{URL: srv.URL(), Prefix: "rs:", Node: 1, NodeTTL: time.Hour, Timeout: 300 * time.Millisecond})
	noErr(t, err)
	t.Cleanup(func() { _ = r.Close() })
	l, cs := localState(t, 1)
	mirror(t, r, l)
	checkMatches(t, r, l, cs)

	srv.Kill()
	calls := map[string]func() error{
		"HasClient":     func() error { _, err := r.HasClient(ctx, cs[0]); return err },
		"JoinGroup":     func() error { return r.JoinGroup(ctx, cs[0], "g") },
		"GroupClients":  func() error { _, err := r.GroupClients(ctx, "g"); return err },
		"UpdateSession": func() error { return r.UpdateSession(ctx, cs[0], []byte(`{"a":1}`)) },
		"ClientCount":   func() error { _, err := r.ClientCount(ctx); return err },
		"Heartbeat":     func() error { _, err := r.Heartbeat(ctx); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		// Bound: the timeout is 300 ms; 5 s is a "no hang" bound for a
		// loaded machine, not a timing assertion.
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %v with Redis down", name, took)
		}
		if abi.ErrnoOf(err) != abi.ErrnoUnavailable {
			t.Errorf("%s with Redis down: %v, want unavailable", name, err)
		}
	}

	srv.Restart()
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Maintain(mctx, 50*time.Millisecond, func(ctx context.Context) error {
			snap, err := r.Snapshot(ctx, l)
			if err != nil {
				return err
			}
			return r.Republish(ctx, snap)
		}, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := r.ClientCount(ctx)
		if err == nil && n == len(cs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence not re-published 30 s after the restart: %d clients, %v", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	checkMatches(t, r, l, cs)
}

// TestRedis_HungRedisFailsFast: a Redis that accepts nothing and answers
// nothing (SIGSTOP, as a stuck or partitioned server) fails calls with
// ErrnoUnavailable after the timeout instead of hanging them, and calls
// work again once it answers.
func TestRedis_HungRedisFailsFast(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	r, err := New(Options{URL: srv.URL(), Prefix: "hung:", Node: 1, NodeTTL: time.Hour, Timeout: 300 * time.Millisecond})
	noErr(t, err)
	t.Cleanup(func() { _ = r.Close() })
	id := ids(1, 1)[0]
	noErr(t, r.AddClient(ctx, id))
	srv.Pause()
	for name, call := range map[string]func() error{
		"JoinGroup":    func() error { return r.JoinGroup(ctx, id, "g") },
		"GroupClients": func() error { _, err := r.GroupClients(ctx, "g"); return err },
		"SetSession":   func() error { return r.SetSession(ctx, id, []byte(`{}`)) },
	} {
		start := time.Now()
		err := call()
		// A "no hang" bound for a loaded machine, not a timing assertion.
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %v with Redis hung", name, took)
		}
		if abi.ErrnoOf(err) != abi.ErrnoUnavailable {
			t.Errorf("%s with Redis hung: %v, want unavailable", name, err)
		}
	}
	srv.Resume()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := r.JoinGroup(ctx, id, "g")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail 30 s after Redis resumed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := get(r.GroupClients(ctx, "g"))(t); !slices.Equal(got, []string{id}) {
		t.Errorf("GroupClients(g) = %v", got)
	}
}

// roundTrips counts the commands and pipelines a client sends.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// benchCounters are what a benchmark reports per op: round trips from this
// client, and commands Redis ran (INFO commandstats counts the commands a
// script calls, plus the EVALSHA itself).
type benchCounters struct {
	trips    *roundTrips
	r        *Registry
	t0, cmd0 int64
}

func benchReg(b *testing.B) (*Registry, *benchCounters) {
	srv := redistest.Start(b)
	r := newReg(b, srv, "bench:", 1, registry.Limits{MaxGroupsPerClient: 100, MaxSessionBytes: 4096}, time.Hour)
	h := &roundTrips{}
	r.rdb.AddHook(h)
	return r, &benchCounters{trips: h, r: r}
}

// redisCommands sums the calls of every command Redis has run.
func redisCommands(b *testing.B, r *Registry) int64 {
	info, err := r.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		if _, rest, ok := strings.Cut(line, ":calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			total += n
		}
	}
	return total
}

func (c *benchCounters) start(b *testing.B) {
	c.cmd0 = redisCommands(b, c.r)
	c.t0 = c.trips.n.Load()
	b.ResetTimer()
}

func (c *benchCounters) report(b *testing.B) {
	b.StopTimer()
	trips := c.trips.n.Load() - c.t0
	cmds := redisCommands(b, c.r) - c.cmd0 - 1 // the INFO itself
	b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
	b.ReportMetric(float64(cmds)/float64(b.N), "rediscmds/op")
}

// BenchmarkRedis_JoinGroup: a join checked against max_groups_per_client.
func BenchmarkRedis_JoinGroup(b *testing.B) {
	r, h := benchReg(b)
	ctx := context.Background()
	cs := ids(1, 1000)
	for _, id := range cs {
		noErr(b, r.AddClient(ctx, id))
	}
	h.start(b)
	for i := range b.N {
		id := cs[i%len(cs)]
		g := fmt.Sprintf("g%d", (i/len(cs))%50)
		if err := r.JoinGroup(ctx, id, g); err != nil {
			b.Fatal(err)
		}
	}
	h.report(b)
}

// BenchmarkRedis_GroupClients: listing a group of 1,000 members.
func BenchmarkRedis_GroupClients(b *testing.B) {
	r, h := benchReg(b)
	ctx := context.Background()
	for _, id := range ids(1, 1000) {
		noErr(b, r.AddClient(ctx, id))
		noErr(b, r.JoinGroup(ctx, id, "g"))
	}
	h.start(b)
	for range b.N {
		if m, err := r.GroupClients(ctx, "g"); err != nil || len(m) != 1000 {
			b.Fatal(len(m), err)
		}
	}
	h.report(b)
}

// BenchmarkRedis_SetSession: a 100-byte session.
func BenchmarkRedis_SetSession(b *testing.B) {
	r, h := benchReg(b)
	ctx := context.Background()
	id := ids(1, 1)[0]
	noErr(b, r.AddClient(ctx, id))
	s := []byte(`{"user":{"name":"ann","roles":["admin","dev"]},"lang":"en","seen":1700000000,"n":12}`)
	h.start(b)
	for range b.N {
		if err := r.SetSession(ctx, id, s); err != nil {
			b.Fatal(err)
		}
	}
	h.report(b)
}

// BenchmarkRedis_UpdateSession: a merge of one key (no contention).
func BenchmarkRedis_UpdateSession(b *testing.B) {
	r, h := benchReg(b)
	ctx := context.Background()
	id := ids(1, 1)[0]
	noErr(b, r.AddClient(ctx, id))
	noErr(b, r.SetSession(ctx, id, []byte(`{"user":{"name":"ann","roles":["admin","dev"]},"lang":"en"}`)))
	h.start(b)
	for i := range b.N {
		if err := r.UpdateSession(ctx, id, fmt.Appendf(nil, `{"user":{"seen":%d}}`, i)); err != nil {
			b.Fatal(err)
		}
	}
	h.report(b)
}

// FuzzSessionAgainstLocal: any SetSession then UpdateSession gives the same
// errno and the same session bytes as registry.Local (both use the registry
// package's codec; what differs is the storage and the compare-and-store).
func FuzzSessionAgainstLocal(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":{"b":1}}`, `{"a":{"c":[1,{"d":null}]}}`},
		{`{"big":12345678901234567890123,"f":1.10}`, `{"e":1e400,"h":"<a&b>\u2028"}`},
		{`{"k":"v"}`, `[]`},
		{`{"o":{}}`, `{"o":{"x":{}}}`},
		{`{"a":1}`, `{"a":{"long-key-over-16":1}}`},
	} {
		f.Add(s[0], s[1])
	}
	srv := redistest.Start(f)
	limits := registry.Limits{MaxSessionBytes: 256, MaxNameBytes: 16}
	rr := newReg(f, srv, "fuzz:", 1, limits, time.Hour)
	ctx := context.Background()
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, set, patch string) {
		id := fmt.Sprintf("%08x%012x", 1, n.Add(1))
		local := registry.NewLocalWithLimits(limits)
		noErr(t, local.AddClient(ctx, id))
		noErr(t, rr.AddClient(ctx, id))
		defer func() { _, _ = rr.RemoveClient(ctx, id) }()
		for _, step := range []struct {
			name string
			l, r error
		}{
			{"SetSession", local.SetSession(ctx, id, []byte(set)), rr.SetSession(ctx, id, []byte(set))},
			{"UpdateSession", local.UpdateSession(ctx, id, []byte(patch)), rr.UpdateSession(ctx, id, []byte(patch))},
		} {
			if abi.ErrnoOf(step.l) != abi.ErrnoOf(step.r) {
				t.Fatalf("%s: local %v, redis %v", step.name, step.l, step.r)
			}
		}
		if l, r := string(get(local.Session(ctx, id))(t)), string(get(rr.Session(ctx, id))(t)); l != r {
			t.Fatalf("sessions differ: local %s, redis %s", l, r)
		}
	})
}
