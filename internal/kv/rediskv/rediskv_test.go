package rediskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/kv"
	"github.com/wasmgate/wasmgate/internal/kv/kvtest"
	"github.com/wasmgate/wasmgate/internal/redistest"
)

// newStores returns Stores on srv under prefix with its own client (one
// node), closed when t ends.
func newStores(t testing.TB, srv *redistest.Server, prefix string, clock func() time.Time) *Stores {
	t.Helper()
	s, err := New(Options{URL: srv.URL(), Prefix: prefix, Timeout: 5 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func open(t testing.TB, s *Stores, module string, maxBytes int) *Store {
	t.Helper()
	st, err := s.Store(module, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRedis_Conformance runs the suite kv.Store passes, each test under its
// own prefix on one redis-server; every handle on a store is a separate
// client, as separate nodes hold, so the concurrency tests race three
// connection pools.
func TestRedis_Conformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	kvtest.Run(t, func(t *testing.T, maxBytes int, clock func() time.Time) func() kv.KV {
		prefix := fmt.Sprintf("conf%d:", n.Add(1))
		return func() kv.KV { return open(t, newStores(t, srv, prefix, clock), "mod", maxBytes) }
	})
}

// TestRedis_RealTTL: without Options.Clock, TTLs run on Redis's clock.
func TestRedis_RealTTL(t *testing.T) {
	srv := redistest.Start(t)
	st := open(t, newStores(t, srv, "", nil), "m", 1<<20)
	ctx := t.Context()
	if err := st.Set(ctx, "short", []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "long", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Incr(ctx, "n", 1, 50*time.Millisecond); n != 1 || err != nil {
		t.Fatalf("incr = %d, %v", n, err)
	}
	deadline := time.Now().Add(20 * time.Second) // a no-freeze bound, not a timing check
	for {
		_, err1 := st.Get(ctx, "short")
		_, err2 := st.Get(ctx, "n")
		if errors.Is(err1, abi.ErrnoNotFound) && errors.Is(err2, abi.ErrnoNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("50 ms TTLs not expired after 20 s: %v, %v", err1, err2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.Get(ctx, "long"); err != nil {
		t.Errorf("an hour's TTL expired: %v", err)
	}
	if keys, used, err := st.Usage(ctx); keys != 1 || used != len("long")+1+64 || err != nil {
		t.Errorf("usage = %d, %d, %v", keys, used, err)
	}
}

// TestRedis_ModulesAndPrefixesAreIsolated: the same key in two modules, or
// under two prefixes, are two keys; module names that look like key
// syntax do not reach another module's keys.
func TestRedis_ModulesAndPrefixesAreIsolated(t *testing.T) {
	srv := redistest.Start(t)
	a := newStores(t, srv, "", nil)
	b := newStores(t, srv, "other:", nil)
	ctx := t.Context()
	stores := []*Store{
		open(t, a, "m", 1<<20), open(t, a, "m2", 1<<20), open(t, a, "m}:v", 1<<20),
		open(t, a, "{m}", 1<<20), open(t, a, "m:x", 1<<20), open(t, b, "m", 1<<20),
	}
	for i, st := range stores {
		if err := st.Set(ctx, "k", []byte(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range stores {
		if v, err := st.Get(ctx, "k"); string(v) != fmt.Sprint(i) || err != nil {
			t.Errorf("store %d: k = %q, %v", i, v, err)
		}
		if keys, _, _ := st.Usage(ctx); keys != 1 {
			t.Errorf("store %d: %d keys, want 1", i, keys)
		}
	}
	if _, err := a.Store("", 1<<20); !errors.Is(err, abi.ErrnoInvalid) {
		t.Errorf("empty module name: %v", err)
	}
	if _, err := a.Store("m", 0); !errors.Is(err, abi.ErrnoInvalid) {
		t.Errorf("zero bound: %v", err)
	}
	// The keys are where the design says, and nothing else was written.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	for key, typ := range map[string]string{"wasmgate:kv:{m}:v": "hash", "wasmgate:kv:{m}:u": "string", "wasmgate:kv:{m}:x": "none"} {
		if got, err := rdb.Type(ctx, key).Result(); got != typ || err != nil {
			t.Errorf("%s is a %s (%v), want %s", key, got, err, typ)
		}
	}
	// An emptied store leaves no key behind.
	for _, st := range stores {
		_, _ = st.Delete(ctx, "k")
	}
	if n, err := rdb.DBSize(ctx).Result(); n != 0 || err != nil {
		t.Errorf("%d keys left after deleting every entry, %v", n, err)
	}
}

// TestRedis_SharedClient: a client given in Options is used and left open.
func TestRedis_SharedClient(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rdb.Close()
	s, err := New(Options{Client: rdb})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Open("m", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.Incr(t.Context(), "n", 7, 0); n != 7 || err != nil {
		t.Fatalf("incr = %d, %v", n, err)
	}
	_ = s.Close()
	if v, err := rdb.HGet(t.Context(), "wasmgate:kv:{m}:v", "n").Result(); v != "7" || err != nil {
		t.Errorf("after Close the shared client reads %q, %v", v, err)
	}
}

// TestRedis_UnavailableFailsFast: a frozen or dead Redis fails every call
// with ErrnoUnavailable within about the timeout, never hangs; when it
// comes back (empty) the store works again, without its old data.
func TestRedis_UnavailableFailsFast(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL(), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := open(t, s, "m", 1<<20)
	ctx := t.Context()
	if err := st.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"get":    func() error { _, err := st.Get(ctx, "k"); return err },
		"set":    func() error { return st.Set(ctx, "k", []byte("v"), 0) },
		"delete": func() error { _, err := st.Delete(ctx, "k"); return err },
		"incr":   func() error { _, err := st.Incr(ctx, "n", 1, 0); return err },
		"cas":    func() error { _, err := st.CompareAndSwap(ctx, "k", nil, true, []byte("v"), 0); return err },
		"usage":  func() error { _, _, err := st.Usage(ctx); return err },
	}
	check := func(state string) {
		for name, call := range calls {
			done := make(chan error, 1)
			go func() { done <- call() }()
			select {
			case err := <-done:
				if !errors.Is(err, abi.ErrnoUnavailable) {
					t.Errorf("%s with Redis %s: %v, want unavailable", name, state, err)
				}
			case <-time.After(20 * time.Second): // no-freeze bound
				t.Fatalf("%s with Redis %s hung", name, state)
			}
		}
	}
	srv.Pause()
	check("frozen")
	srv.Resume()
	srv.Restart()
	// The restarted Redis is empty: the old value is gone; calls work again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := st.Get(ctx, "k")
		if errors.Is(err, abi.ErrnoNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Kill()
	check("dead")
}

// TestRedis_ScriptErrorIsInternal: a Redis error reply (here: the module's
// hash is not a hash) is a bug, reported as internal, not unavailable.
func TestRedis_ScriptErrorIsInternal(t *testing.T) {
	srv := redistest.Start(t)
	st := open(t, newStores(t, srv, "", nil), "m", 1<<20)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.Set(t.Context(), "wasmgate:kv:{m}:v", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "k"); !errors.Is(err, abi.ErrnoInternal) {
		t.Errorf("get over a wrong-type key: %v, want internal", err)
	}
}

// FuzzIncrAgainstLocal: kv_incr of any stored bytes by any delta gives the
// Redis store the local store's answer — the same sum, or the same errno
// with the value unchanged — so the Lua parser and int64 arithmetic agree
// with strconv.ParseInt and Go's overflow check.
func FuzzIncrAgainstLocal(f *testing.F) {
	for _, s := range []struct {
		v string
		d int64
	}{
		{"41", 1}, {"+007", -8}, {"-0", 0}, {"9223372036854775807", 1}, {"-9223372036854775808", -1},
		{"999999999", 1}, {"-1000000000", 1}, {"1e3", 1}, {" 1", 1}, {"", 1}, {"١", 1},
		{"00000000000000000000000001", 1}, {"9223372036854775808", -1},
	} {
		f.Add([]byte(s.v), s.d)
	}
	srv := redistest.Start(f)
	rs := open(f, newStores(f, srv, "fuzz:", nil), "m", 1<<20)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, value []byte, delta int64) {
		if len(value) > 1000 {
			return
		}
		local := kv.New(1 << 20)
		for _, st := range []kv.KV{local, rs} {
			if err := st.Set(ctx, "k", value, 0); err != nil {
				t.Fatal(err)
			}
		}
		ln, lerr := local.Incr(ctx, "k", delta, 0)
		rn, rerr := rs.Incr(ctx, "k", delta, 0)
		if abi.ErrnoOf(lerr) != abi.ErrnoOf(rerr) || ln != rn {
			t.Fatalf("incr %q by %d: local %d, %v; redis %d, %v", value, delta, ln, lerr, rn, rerr)
		}
		lv, _ := local.Get(ctx, "k")
		rv, err := rs.Get(ctx, "k")
		if err != nil || string(lv) != string(rv) {
			t.Fatalf("after incr %q by %d: local %q, redis %q, %v", value, delta, lv, rv, err)
		}
	})
}

// BenchmarkKV compares one call on the Redis store (a loopback
// redis-server, one client) with the in-process store. For Redis it also
// reports redis-us/op: the time Redis itself spent in the scripts per call
// (INFO commandstats), which is what the store costs Redis's one thread.
func BenchmarkKV(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	stores := map[string]kv.KV{
		"local": kv.New(16 << 20),
		"redis": open(b, newStores(b, srv, "", nil), "bench", 16<<20),
	}
	val := []byte("some value of a few dozen bytes, like a session flag")
	ctx := context.Background()
	for _, name := range []string{"local", "redis"} {
		st := stores[name]
		bench := func(op string, fn func(b *testing.B)) {
			b.Run(name+"/"+op, func(b *testing.B) {
				before := scriptUsec(b, rdb)
				fn(b)
				if name == "redis" {
					b.ReportMetric((scriptUsec(b, rdb)-before)/float64(b.N), "redis-us/op")
				}
			})
		}
		bench("set", func(b *testing.B) {
			for b.Loop() {
				_ = st.Set(ctx, "key", val, 0)
			}
		})
		bench("get", func(b *testing.B) {
			for b.Loop() {
				_, _ = st.Get(ctx, "key")
			}
		})
		bench("incr", func(b *testing.B) {
			for b.Loop() {
				_, _ = st.Incr(ctx, "counter", 1, 0)
			}
		})
		bench("incr-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = st.Incr(ctx, "counter", 1, 0)
				}
			})
		})
	}
}

// scriptUsec is the microseconds Redis has spent in EVALSHA and EVAL.
func scriptUsec(b *testing.B, rdb *redis.Client) float64 {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, f := range strings.Split(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]), ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}
