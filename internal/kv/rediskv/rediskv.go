// Package rediskv is the Redis implementation of kv.KV, for cluster mode
// (issue 10): every node gives a module the same store, kept in one Redis,
// with the in-process kv.Store's semantics and limits (ABI.md §5.6).
package rediskv

// Design.
//
// Key layout. Per module M, under Options.Prefix (P, default "wasmgate:"):
//
//	P kv:{M}:v   HASH   key -> value (binary-safe field and value)
//	P kv:{M}:x   ZSET   key -> expiry, Unix ms; only keys with a TTL
//	P kv:{M}:u   STRING bytes charged: Σ (len key + len value + 64), as kv.Store's used
//
// The module name sits between "kv:{" and a suffix of its own letter, so two
// modules never share a key, and the {M} hash tag keeps a module's three
// keys in one slot. The registry's keys (redisreg) never start with "kv:".
//
// Every operation is one Lua script (scripts.go; go-redis Script: EVALSHA,
// EVAL once when Redis lost its script cache) that reads, checks and
// changes the three keys together, so each call is atomic across all nodes:
// kv_incr and kv_cas need no retry loop, and the used counter is always
// exactly the sum of the entries' costs. Expiry is the local store's, not
// Redis's: an expired key is dropped (with its bytes) by the first script
// that touches it, and a write that would exceed the bound first sweeps
// every expired entry (ZRANGEBYSCORE up to now), so the counter stays exact
// when TTLs run out — a Redis TTL would delete a value behind the counter's
// back. Time is Redis's clock (TIME, read once per script), the one clock
// all nodes agree on, unless Options.Clock is set (tests).
//
// Counters: Lua numbers are doubles, so kv_incr does the int64 arithmetic
// on two nine-digit halves and checks the range itself; it accepts exactly
// the values strconv.ParseInt accepts (kv.Store's parser), stores the
// canonical decimal text and fails the same way (invalid, value unchanged)
// on a non-integer or an overflow.
//
// Cost per call: one round trip each. Get: HGET + ZSCORE. Set, CAS, Incr:
// about 6 O(1) commands (HGET/HEXISTS/HSTRLEN, GET, HSET, ZADD or ZREM,
// INCRBY); a write that reaches the bound adds a sweep, O(expired entries
// + log n). Delete: 4-5 O(1) commands. Usage: HLEN + GET. Memory in Redis:
// the hash, plus a zset entry per key with a TTL.
//
// Unavailability. Every call runs under Options.Timeout; with a client made
// here (Options.URL) dial, read, write and the pool wait are bounded by it
// too and go-redis retries are off, so a dead or frozen Redis fails a call
// in about one Timeout with an error wrapping abi.ErrnoUnavailable, as does
// a Redis that answers it cannot serve (LOADING, READONLY, OOM...). Any
// other error reply to a script (a bug, a key of the wrong type) is
// abi.ErrnoInternal.
//
// Durability: the store lives only in Redis. A Redis restart without
// persistence (RDB/AOF) loses every module's keys; nothing puts them back.
// Redis must not evict these keys (maxmemory-policy noeviction or a
// volatile-* policy: they carry no Redis TTL).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/kv"
)

// Defaults of Options.
const (
	DefaultPrefix  = "wasmgate:"
	DefaultTimeout = time.Second
)

// Options configure Stores.
type Options struct {
	// Client is the Redis client to use, shared with its other users (the
	// registry); Close leaves it open. It should bound its own dials and
	// reads (ContextTimeoutEnabled, MaxRetries -1, as New sets them for a
	// URL): each call's context carries Timeout. Nil: New connects to URL.
	Client *redis.Client
	// URL locates Redis when Client is nil: redis://[user:password@]host:port/db,
	// rediss:// for TLS, unix:///path (go-redis ParseURL).
	URL string
	// Prefix starts every key (DefaultPrefix when empty).
	Prefix string
	// Timeout bounds every call (DefaultTimeout when zero).
	Timeout time.Duration
	// Clock, if set, is the time TTLs are measured against, for tests that
	// move it. Nil: Redis's own clock, the same for every node.
	Clock func() time.Time
}

// Stores hands out the key-value stores of modules, all kept in one
// Redis. Create it with New; Close it when done.
type Stores struct {
	rdb    *redis.Client
	own    bool // rdb was made by New: Close closes it
	prefix string
	tmo    time.Duration
	clock  func() time.Time
}

// New returns the stores; with a URL it connects lazily (the first call
// dials).
func New(o Options) (*Stores, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	s := &Stores{rdb: o.Client, prefix: o.Prefix, tmo: o.Timeout, clock: o.Clock}
	if s.rdb == nil {
		ro, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redis url %q: %v: %w", o.URL, err, abi.ErrnoInvalid)
		}
		ro.DialTimeout = o.Timeout
		ro.ReadTimeout = o.Timeout
		ro.WriteTimeout = o.Timeout
		ro.PoolTimeout = o.Timeout
		ro.ContextTimeoutEnabled = true
		// No retries: a retry after a timeout doubles the time a caller
		// waits on a dead Redis.
		ro.MaxRetries = -1
		ro.DialerRetries = 1
		// CLIENT SETINFO and maintenance notifications cost round trips on
		// every new connection and are of no use here.
		ro.DisableIdentity = true
		ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		s.rdb, s.own = redis.NewClient(ro), true
	}
	return s, nil
}

// Close closes the connections New opened; a Client given in Options
// stays open.
func (s *Stores) Close() error {
	if s.own {
		return s.rdb.Close()
	}
	return nil
}

// Open returns module's store, bounded to maxBytes (keys + values + 64
// bytes per entry). It has the signature of runtime.Config.KVStore. It
// does not contact Redis: every node opening the same module gets the same
// data.
func (s *Stores) Open(module string, maxBytes int) (kv.KV, error) {
	st, err := s.Store(module, maxBytes)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Store is Open returning the concrete type.
func (s *Stores) Store(module string, maxBytes int) (*Store, error) {
	if module == "" {
		return nil, fmt.Errorf("key-value store: empty module name: %w", abi.ErrnoInvalid)
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("key-value store of %q: bound %d bytes: %w", module, maxBytes, abi.ErrnoInvalid)
	}
	base := s.prefix + "kv:{" + module + "}:"
	return &Store{s: s, keys: []string{base + "v", base + "x", base + "u"}, max: strconv.Itoa(maxBytes)}, nil
}

// Store is one module's key-value store in Redis; it implements kv.KV.
// Any number of Stores of the same module, on any number of nodes, share
// one store.
type Store struct {
	s    *Stores
	keys []string // the values hash, the expiry zset, the used counter
	max  string   // the byte bound, as the scripts take it
}

var _ kv.KV = (*Store)(nil)

// Script results that are not data.
const (
	resInvalid = -1
	resLimit   = -2
)

// run runs script with the common arguments (time, bound, key) and args.
func (st *Store) run(ctx context.Context, op string, script *redis.Script, key string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, st.s.tmo)
	defer cancel()
	now := ""
	if st.s.clock != nil {
		now = strconv.FormatInt(st.s.clock().UnixMilli(), 10)
	}
	v, err := script.Run(ctx, st.s.rdb, st.keys, append([]any{now, st.max, key}, args...)...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail(op, err)
	}
	return v, err
}

// fail wraps a Redis error. Network failures, timeouts and the replies of
// a Redis that cannot serve now (loading, read-only replica, busy script,
// out of memory) mean the store cannot be reached: unavailable. Any other
// error reply (a script error, WRONGTYPE over a key someone else wrote) is
// a bug or a damaged store: internal.
func fail(op string, err error) error {
	var reply redis.Error
	if errors.As(err, &reply) && !transient(err.Error()) {
		return fmt.Errorf("redis kv %s: %v: %w", op, err, abi.ErrnoInternal)
	}
	return fmt.Errorf("redis kv %s: %v: %w", op, err, abi.ErrnoUnavailable)
}

// transient reports whether an error reply says Redis cannot serve now.
func transient(reply string) bool {
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "OOM"} {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}

// unexpected is a script answer of the wrong type: a bug.
func unexpected(op string, v any) error {
	return fmt.Errorf("redis kv %s: unexpected reply %T %v: %w", op, v, v, abi.ErrnoInternal)
}

// checkKey is kv.Store's key check: writes refuse a key that could never
// be stored.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key: %w", abi.ErrnoInvalid)
	case len(key) > kv.MaxKey:
		return fmt.Errorf("key of %d bytes, over %d: %w", len(key), kv.MaxKey, abi.ErrnoTooLarge)
	}
	return nil
}

func ttlMs(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	// Round up: a TTL under a millisecond still expires, not never.
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// code turns a script's status code into the error it stands for.
func code(op string, v any) error {
	switch n, _ := v.(int64); n {
	case resInvalid:
		return fmt.Errorf("kv %s: value is not a decimal int64, or the sum overflows: %w", op, abi.ErrnoInvalid)
	case resLimit:
		return fmt.Errorf("kv %s: store full (kv_max_mb): %w", op, abi.ErrnoLimit)
	}
	return unexpected(op, v)
}

// Get implements kv.KV.
func (st *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if key == "" || len(key) > kv.MaxKey {
		return nil, abi.ErrnoNotFound // can never have been stored
	}
	v, err := st.run(ctx, "get", scriptGet, key)
	if errors.Is(err, redis.Nil) {
		return nil, abi.ErrnoNotFound
	}
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return nil, unexpected("get", v)
	}
	return []byte(s), nil
}

// Set implements kv.KV.
func (st *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	v, err := st.run(ctx, "set", scriptSet, key, value, ttlMs(ttl))
	if err != nil {
		return err
	}
	if v != int64(0) {
		return code("set", v)
	}
	return nil
}

// Delete implements kv.KV.
func (st *Store) Delete(ctx context.Context, key string) (bool, error) {
	if key == "" || len(key) > kv.MaxKey {
		return false, nil
	}
	v, err := st.run(ctx, "delete", scriptDelete, key)
	if err != nil {
		return false, err
	}
	return v == int64(1), nil
}

// Incr implements kv.KV.
func (st *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	v, err := st.run(ctx, "incr", scriptIncr, key, strconv.FormatInt(delta, 10), ttlMs(ttl))
	if err != nil {
		return 0, err
	}
	s, ok := v.(string)
	if !ok {
		return 0, code("incr", v)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, unexpected("incr", v)
	}
	return n, nil
}

// CompareAndSwap implements kv.KV.
func (st *Store) CompareAndSwap(ctx context.Context, key string, old []byte, absent bool, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	flag := "0"
	if absent {
		flag, old = "1", nil
	}
	v, err := st.run(ctx, "cas", scriptCAS, key, flag, old, value, ttlMs(ttl))
	if err != nil {
		return false, err
	}
	switch v {
	case int64(0):
		return false, nil
	case int64(1):
		return true, nil
	}
	return false, code("cas", v)
}

// Usage implements kv.KV.
func (st *Store) Usage(ctx context.Context) (keys, bytes int, err error) {
	ctx, cancel := context.WithTimeout(ctx, st.s.tmo)
	defer cancel()
	v, err := scriptUsage.Run(ctx, st.s.rdb, st.keys).Int64Slice()
	if err != nil {
		return 0, 0, fail("usage", err)
	}
	if len(v) != 2 {
		return 0, 0, unexpected("usage", v)
	}
	return int(v[0]), int(v[1]), nil
}
