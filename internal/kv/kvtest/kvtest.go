// Package kvtest is the conformance suite of kv.KV: the in-process
// kv.Store and the Redis store (rediskv) run the same tests, so that a
// handler sees the same values, errnos and byte accounting on one node and
// in a cluster (ABI.md §5.6).
package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/kv"
)

// Overhead is what each entry is charged on top of its key and value.
const Overhead = 64

// Clock is a fake clock the suite moves instead of waiting for TTLs. It is
// safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at an arbitrary fixed time.
func NewClock() *Clock { return &Clock{now: time.UnixMilli(1_700_000_000_000)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// NewFunc creates an empty store of maxBytes whose TTLs run on clock and
// returns how to open it: every call of the returned function is one more
// handle on that same store — for Redis a separate client, as another node
// would hold; for kv.Store the store itself. Handles are closed when t
// ends.
type NewFunc func(t *testing.T, maxBytes int, clock func() time.Time) (open func() kv.KV)

// Run runs the suite, each test on a fresh store from newStore.
func Run(t *testing.T, newStore NewFunc) {
	s := &suite{newStore: newStore}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"GetSetDelete", s.testGetSetDelete},
		{"BinarySafe", s.testBinarySafe},
		{"Keys", s.testKeys},
		{"TTL", s.testTTL},
		{"Usage", s.testUsage},
		{"ByteBound", s.testByteBound},
		{"BoundSweepsTheReplacedKey", s.testBoundSweepsReplaced},
		{"IncrParsesLikeParseInt", s.testIncrParse},
		{"IncrArithmetic", s.testIncrArithmetic},
		{"CAS", s.testCAS},
		{"HandlesShareOneStore", s.testHandlesShare},
		{"ConcurrentIncr", s.testConcurrentIncr},
		{"ConcurrentCAS", s.testConcurrentCAS},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct{ newStore NewFunc }

// fresh returns one handle on a new store and its clock.
func (s *suite) fresh(t *testing.T, maxBytes int) (kv.KV, *Clock) {
	t.Helper()
	c := NewClock()
	return s.newStore(t, maxBytes, c.Now)(), c
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErrno(t *testing.T, what string, err error, want abi.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// want checks key's value; nil means absent.
func want(t *testing.T, s kv.KV, key string, value []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if value == nil {
		if !errors.Is(err, abi.ErrnoNotFound) {
			t.Errorf("get %q = %q, %v; want not found", key, got, err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, value) {
		t.Errorf("get %q = %q, %v; want %q", key, got, err, value)
	}
}

func wantUsage(t *testing.T, s kv.KV, keys, used int) {
	t.Helper()
	k, b, err := s.Usage(t.Context())
	if err != nil || k != keys || b != used {
		t.Errorf("usage = %d keys, %d bytes, %v; want %d keys, %d bytes", k, b, err, keys, used)
	}
}

func cost(key string, value string) int { return len(key) + len(value) + Overhead }

func (s *suite) testGetSetDelete(t *testing.T) {
	st, _ := s.fresh(t, 1<<20)
	ctx := t.Context()
	want(t, st, "a", nil)
	noErr(t, st.Set(ctx, "a", []byte("1"), 0))
	want(t, st, "a", []byte("1"))
	noErr(t, st.Set(ctx, "a", []byte("two"), 0))
	want(t, st, "a", []byte("two"))
	// Present but empty is not absent.
	noErr(t, st.Set(ctx, "empty", []byte{}, 0))
	if v, err := st.Get(ctx, "empty"); err != nil || len(v) != 0 {
		t.Errorf("empty value: %q, %v; want present and empty", v, err)
	}
	noErr(t, st.Set(ctx, "nil", nil, 0))
	if _, err := st.Get(ctx, "nil"); err != nil {
		t.Errorf("nil value: %v, want present", err)
	}
	if ok, err := st.Delete(ctx, "a"); !ok || err != nil {
		t.Errorf("delete a = %v, %v; want true", ok, err)
	}
	if ok, err := st.Delete(ctx, "a"); ok || err != nil {
		t.Errorf("second delete a = %v, %v; want false", ok, err)
	}
	want(t, st, "a", nil)
	if ok, err := st.Delete(ctx, "never"); ok || err != nil {
		t.Errorf("delete of a missing key = %v, %v", ok, err)
	}
	// The store keeps neither the caller's slice nor hands out its own.
	buf := []byte("orig")
	noErr(t, st.Set(ctx, "b", buf, 0))
	copy(buf, "XXXX")
	got, _ := st.Get(ctx, "b")
	want(t, st, "b", []byte("orig"))
	copy(got, "YYYY")
	want(t, st, "b", []byte("orig"))
}

func (s *suite) testBinarySafe(t *testing.T) {
	st, _ := s.fresh(t, 1<<20)
	ctx := t.Context()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	keys := []string{"\x00", "a\x00b", "\xff\xfe", "{x}:v", "}:x", "wasmgate:kv:{m}:v", "ключ", " ", "\r\n"}
	for i, k := range keys {
		v := append([]byte(fmt.Sprint(i)), all...)
		noErr(t, st.Set(ctx, k, v, 0))
	}
	for i, k := range keys {
		want(t, st, k, append([]byte(fmt.Sprint(i)), all...))
	}
	want(t, st, "a", nil) // "a\x00b" is not "a"
	noErr(t, st.Set(ctx, "\x00n", []byte("41"), 0))
	if n, err := st.Incr(ctx, "\x00n", 1, 0); n != 42 || err != nil {
		t.Errorf("incr of a binary key = %d, %v", n, err)
	}
	if ok, err := st.CompareAndSwap(ctx, "a\x00b", append([]byte("1"), all...), false, []byte("\x00"), 0); !ok || err != nil {
		t.Errorf("CAS with binary old value = %v, %v", ok, err)
	}
	want(t, st, "a\x00b", []byte("\x00"))
	if ok, _ := st.CompareAndSwap(ctx, "a\x00b", []byte{}, false, []byte("x"), 0); ok {
		t.Error(`CAS: "" matched "\x00"`)
	}
}

func (s *suite) testKeys(t *testing.T) {
	st, _ := s.fresh(t, 1<<20)
	ctx := t.Context()
	long := strings.Repeat("k", kv.MaxKey+1)
	wantErrno(t, "set empty key", st.Set(ctx, "", []byte("x"), 0), abi.ErrnoInvalid)
	_, err := st.Incr(ctx, "", 1, 0)
	wantErrno(t, "incr empty key", err, abi.ErrnoInvalid)
	_, err = st.CompareAndSwap(ctx, "", nil, true, []byte("x"), 0)
	wantErrno(t, "cas empty key", err, abi.ErrnoInvalid)
	wantErrno(t, "set long key", st.Set(ctx, long, nil, 0), abi.ErrnoTooLarge)
	_, err = st.Incr(ctx, long, 1, 0)
	wantErrno(t, "incr long key", err, abi.ErrnoTooLarge)
	_, err = st.CompareAndSwap(ctx, long, nil, true, []byte("x"), 0)
	wantErrno(t, "cas long key", err, abi.ErrnoTooLarge)
	want(t, st, "", nil)
	want(t, st, long, nil)
	if ok, err := st.Delete(ctx, long); ok || err != nil {
		t.Errorf("delete long key = %v, %v", ok, err)
	}
	max := strings.Repeat("m", kv.MaxKey)
	noErr(t, st.Set(ctx, max, []byte("v"), 0))
	want(t, st, max, []byte("v"))
	wantUsage(t, st, 1, cost(max, "v"))
}

func (s *suite) testTTL(t *testing.T) {
	st, clock := s.fresh(t, 1<<20)
	ctx := t.Context()
	noErr(t, st.Set(ctx, "a", []byte("1"), time.Second))
	noErr(t, st.Set(ctx, "forever", []byte("1"), 0))
	noErr(t, st.Set(ctx, "reset", []byte("1"), time.Second))
	noErr(t, st.Set(ctx, "reset", []byte("2"), 0)) // Set replaces the expiry too
	if n, err := st.Incr(ctx, "hits", 1, time.Second); n != 1 || err != nil {
		t.Fatalf("incr = %d, %v", n, err)
	}
	_, _ = st.CompareAndSwap(ctx, "lock", nil, true, []byte("me"), time.Second)
	clock.Advance(500 * time.Millisecond)
	want(t, st, "a", []byte("1"))
	if n, _ := st.Incr(ctx, "hits", 1, time.Hour); n != 2 {
		t.Fatalf("incr = %d, want 2", n) // and the key keeps its first expiry
	}
	if ok, _ := st.CompareAndSwap(ctx, "lock", nil, true, []byte("you"), time.Second); ok {
		t.Error("set-if-absent on a live lock swapped")
	}
	clock.Advance(500 * time.Millisecond) // exactly the TTL: expired
	want(t, st, "a", nil)
	want(t, st, "forever", []byte("1"))
	want(t, st, "reset", []byte("2"))
	want(t, st, "hits", nil)
	if n, _ := st.Incr(ctx, "hits", 5, 0); n != 5 {
		t.Errorf("incr after expiry = %d, want a fresh 5", n)
	}
	if ok, _ := st.CompareAndSwap(ctx, "lock", []byte("me"), false, []byte("x"), 0); ok {
		t.Error("CAS matched an expired value")
	}
	if ok, _ := st.CompareAndSwap(ctx, "lock", nil, true, []byte("you"), 0); !ok {
		t.Error("set-if-absent on an expired lock did not swap")
	}
	// Delete of an expired key: absent, and gone.
	noErr(t, st.Set(ctx, "d", []byte("x"), time.Millisecond))
	clock.Advance(time.Millisecond)
	if ok, err := st.Delete(ctx, "d"); ok || err != nil {
		t.Errorf("delete of an expired key = %v, %v; want false", ok, err)
	}
	// Every expired key was dropped when touched: the four live ones remain.
	wantUsage(t, st, 4, cost("forever", "1")+cost("reset", "2")+cost("hits", "5")+cost("lock", "you"))
	// A TTL set on a new counter, then replaced by Set without one.
	if _, err := st.Incr(ctx, "c", 1, time.Second); err != nil {
		t.Fatal(err)
	}
	noErr(t, st.Set(ctx, "c", []byte("10"), 0))
	clock.Advance(time.Hour)
	want(t, st, "c", []byte("10"))
	// Very long TTLs are fine.
	noErr(t, st.Set(ctx, "long", []byte("x"), time.Duration(1<<62)))
	clock.Advance(100 * 365 * 24 * time.Hour)
	want(t, st, "long", []byte("x"))
}

func (s *suite) testUsage(t *testing.T) {
	st, clock := s.fresh(t, 1<<20)
	ctx := t.Context()
	wantUsage(t, st, 0, 0)
	noErr(t, st.Set(ctx, "a", []byte("hello"), 0))
	noErr(t, st.Set(ctx, "bb", nil, 0))
	wantUsage(t, st, 2, cost("a", "hello")+cost("bb", ""))
	noErr(t, st.Set(ctx, "a", []byte("hi"), 0))
	_, _ = st.Incr(ctx, "n", 99, 0)
	_, _ = st.Incr(ctx, "n", 1, 0) // "100": one byte longer
	wantUsage(t, st, 3, cost("a", "hi")+cost("bb", "")+cost("n", "100"))
	_, _ = st.Delete(ctx, "bb")
	_, _ = st.CompareAndSwap(ctx, "a", []byte("hi"), false, []byte("longer"), 0)
	wantUsage(t, st, 2, cost("a", "longer")+cost("n", "100"))
	// An expired entry counts until something drops it.
	noErr(t, st.Set(ctx, "t", []byte("x"), time.Second))
	clock.Advance(2 * time.Second)
	wantUsage(t, st, 3, cost("a", "longer")+cost("n", "100")+cost("t", "x"))
	want(t, st, "t", nil)
	wantUsage(t, st, 2, cost("a", "longer")+cost("n", "100"))
	_, _ = st.Delete(ctx, "a")
	_, _ = st.Delete(ctx, "n")
	wantUsage(t, st, 0, 0)
}

func (s *suite) testByteBound(t *testing.T) {
	st, clock := s.fresh(t, 1000)
	ctx := t.Context()
	big := []byte(strings.Repeat("x", 400))
	noErr(t, st.Set(ctx, "a", big, 0))
	noErr(t, st.Set(ctx, "b", big, 0))
	wantErrno(t, "third 400-byte value in a 1000-byte store", st.Set(ctx, "c", big, 0), abi.ErrnoLimit)
	want(t, st, "c", nil)
	_, err := st.CompareAndSwap(ctx, "c", nil, true, big, 0)
	wantErrno(t, "CAS over the bound", err, abi.ErrnoLimit)
	want(t, st, "c", nil)
	noErr(t, st.Set(ctx, "a", []byte("small"), 0)) // replacing shrinks
	noErr(t, st.Set(ctx, "c", big, 0))
	_, _ = st.Delete(ctx, "b")
	wantUsage(t, st, 2, cost("a", "small")+cost("c", string(big)))

	// Exactly at the bound is allowed; one byte more is not.
	used := cost("a", "small") + cost("c", string(big))
	fill := 1000 - used - Overhead - len("f")
	noErr(t, st.Set(ctx, "f", bytes.Repeat([]byte("y"), fill), 0))
	wantUsage(t, st, 3, 1000)
	wantErrno(t, "one byte over", st.Set(ctx, "f", bytes.Repeat([]byte("y"), fill+1), 0), abi.ErrnoLimit)
	want(t, st, "f", bytes.Repeat([]byte("y"), fill)) // unchanged
	// A counter that would grow past the bound: limit, value unchanged.
	noErr(t, st.Set(ctx, "f", bytes.Repeat([]byte("y"), fill-Overhead-len("n")-1), 0))
	noErr(t, st.Set(ctx, "n", []byte("9"), 0))
	wantUsage(t, st, 4, 1000)
	_, err = st.Incr(ctx, "n", 1, 0)
	wantErrno(t, "incr to 10 in a full store", err, abi.ErrnoLimit)
	want(t, st, "n", []byte("9"))
	if n, err := st.Incr(ctx, "n", -1, 0); n != 8 || err != nil {
		t.Errorf("incr that does not grow in a full store = %d, %v", n, err)
	}
	_, err = st.Incr(ctx, "new", 1, 0)
	wantErrno(t, "new counter in a full store", err, abi.ErrnoLimit)

	// Expired entries are dropped to make room, and only then.
	_, _ = st.Delete(ctx, "f")
	_, _ = st.Delete(ctx, "c")
	noErr(t, st.Set(ctx, "t1", big, time.Second))
	wantErrno(t, "full before expiry", st.Set(ctx, "t2", big, 0), abi.ErrnoLimit)
	clock.Advance(time.Second)
	noErr(t, st.Set(ctx, "t2", big, 0))
	want(t, st, "t1", nil)
	wantUsage(t, st, 3, cost("a", "small")+cost("n", "8")+cost("t2", string(big)))
}

// testBoundSweepsReplaced: a Set over an expired key that needs a sweep to
// fit; the sweep drops the very key being replaced, which must not be
// uncharged twice (kv.Store did, and then let the store grow past its
// bound).
func (s *suite) testBoundSweepsReplaced(t *testing.T) {
	st, clock := s.fresh(t, 1000)
	ctx := t.Context()
	x := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	noErr(t, st.Set(ctx, "a", x(300), time.Second))
	noErr(t, st.Set(ctx, "e", x(100), time.Second))
	noErr(t, st.Set(ctx, "b", x(400), 0))
	wantUsage(t, st, 3, 995)
	clock.Advance(2 * time.Second)
	noErr(t, st.Set(ctx, "a", x(420), 0)) // over the bound until a and e are swept
	wantUsage(t, st, 2, cost("a", string(x(420)))+cost("b", string(x(400))))
	wantErrno(t, "165 more bytes in a store holding 950 of 1000", st.Set(ctx, "c", x(100), 0), abi.ErrnoLimit)
}

func (s *suite) testIncrParse(t *testing.T) {
	st, _ := s.fresh(t, 1<<20)
	ctx := t.Context()
	values := []string{
		"0", "1", "-1", "+5", "007", "-007", "-0", "+0", "000", "42",
		"9223372036854775807", "-9223372036854775808", "+9223372036854775807",
		"0009223372036854775807", "-0009223372036854775808",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999", "18446744073709551616",
		"", " ", "+", "-", "--1", "+-1", "1 ", " 1", "1\n", "1\x00", "1.0", "1e3", "0x10", "1_000",
		"abc", "١", "１", "12a", "NaN", "inf",
	}
	for i, v := range values {
		key := fmt.Sprint("v", i)
		noErr(t, st.Set(ctx, key, []byte(v), 0))
		for _, delta := range []int64{0, 1, -1} {
			got, err := st.Incr(ctx, key, delta, 0)
			n, perr := strconv.ParseInt(v, 10, 64)
			sum := n + delta
			overflow := (delta > 0 && sum < n) || (delta < 0 && sum > n)
			if perr != nil || overflow {
				wantErrno(t, fmt.Sprintf("incr %q by %d", v, delta), err, abi.ErrnoInvalid)
				want(t, st, key, []byte(v)) // unchanged
				continue
			}
			if err != nil || got != sum {
				t.Errorf("incr %q by %d = %d, %v; want %d", v, delta, got, err, sum)
			}
			want(t, st, key, []byte(strconv.FormatInt(sum, 10))) // stored canonical
			noErr(t, st.Set(ctx, key, []byte(v), 0))
		}
	}
}

func (s *suite) testIncrArithmetic(t *testing.T) {
	st, _ := s.fresh(t, 1<<20)
	ctx := t.Context()
	pairs := [][2]int64{
		{0, math.MaxInt64}, {0, math.MinInt64}, {-1, math.MinInt64}, {1, math.MaxInt64},
		{math.MaxInt64, -1}, {math.MinInt64, 1}, {math.MaxInt64, math.MinInt64}, {math.MinInt64, math.MaxInt64},
		{math.MaxInt64, 1}, {math.MinInt64, -1}, {math.MinInt64, math.MinInt64}, {math.MaxInt64, math.MaxInt64},
		{999_999_999, 1}, {1_000_000_000, -1}, {-999_999_999, -1}, {-1_000_000_000, 1},
		{1_999_999_999, 1}, {-1_000_000_001, 2}, {1_000_000_001, -2_000_000_002}, {5, -5},
		{9_223_372_035_999_999_999, 999_999_999}, {9_223_372_035_999_999_999, 854_775_808},
		{9_223_372_035_999_999_999, 854_775_809}, {-9_223_372_035_999_999_999, -854_775_809},
		{-9_223_372_035_999_999_999, -854_775_810}, {123_456_789_012_345_678, -987_654_321_098_765_432},
		{1 << 53, 1}, {-(1 << 53), -1}, {(1 << 53) + 1, (1 << 53) + 1},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 60 {
		// Magnitudes of every size, so that carries and borrows between the
		// halves are exercised.
		a := r.Int64() >> r.IntN(63)
		b := r.Int64() >> r.IntN(63)
		if r.IntN(2) == 0 {
			a = -a
		}
		if r.IntN(2) == 0 {
			b = -b
		}
		pairs = append(pairs, [2]int64{a, b})
	}
	for i, p := range pairs {
		a, d := p[0], p[1]
		key := fmt.Sprint("p", i)
		noErr(t, st.Set(ctx, key, []byte(strconv.FormatInt(a, 10)), 0))
		got, err := st.Incr(ctx, key, d, 0)
		sum := a + d
		if (d > 0 && sum < a) || (d < 0 && sum > a) {
			wantErrno(t, fmt.Sprintf("%d + %d", a, d), err, abi.ErrnoInvalid)
			want(t, st, key, []byte(strconv.FormatInt(a, 10)))
			continue
		}
		if err != nil || got != sum {
			t.Errorf("%d + %d = %d, %v; want %d", a, d, got, err, sum)
		}
		want(t, st, key, []byte(strconv.FormatInt(sum, 10)))
	}
	// An absent key counts as 0.
	if n, err := st.Incr(ctx, "fresh", math.MinInt64, 0); n != math.MinInt64 || err != nil {
		t.Errorf("incr of an absent key by MinInt64 = %d, %v", n, err)
	}
}

func (s *suite) testCAS(t *testing.T) {
	st, clock := s.fresh(t, 1<<20)
	ctx := t.Context()
	cas := func(key string, old []byte, absent bool, value string, ttl time.Duration) bool {
		t.Helper()
		ok, err := st.CompareAndSwap(ctx, key, old, absent, []byte(value), ttl)
		noErr(t, err)
		return ok
	}
	if !cas("k", nil, true, "v1", 0) {
		t.Error("set-if-absent on a missing key failed")
	}
	if cas("k", nil, true, "v1b", 0) {
		t.Error("set-if-absent on a present key swapped")
	}
	if cas("k", []byte("v1"), true, "v1c", 0) {
		t.Error("absent ignores old: a present key must not swap")
	}
	if cas("k", []byte("nope"), false, "v2", 0) {
		t.Error("CAS with a wrong old value swapped")
	}
	if cas("k", []byte("v"), false, "v2", 0) || cas("k", []byte("v1\x00"), false, "v2", 0) {
		t.Error("CAS with a prefix or extension of the value swapped")
	}
	if !cas("k", []byte("v1"), false, "v2", 0) {
		t.Error("CAS with the right old value did not swap")
	}
	want(t, st, "k", []byte("v2"))
	if cas("missing", nil, false, "x", 0) || cas("missing", []byte{}, false, "x", 0) {
		t.Error("an absent key equalled an empty old value")
	}
	want(t, st, "missing", nil)
	noErr(t, st.Set(ctx, "e", []byte{}, 0))
	if !cas("e", nil, false, "full", 0) {
		t.Error("an empty value did not equal an empty old value")
	}
	// The swap sets the TTL given, replacing the old one.
	if !cas("k", []byte("v2"), false, "v3", time.Second) {
		t.Fatal("swap failed")
	}
	noErr(t, st.Set(ctx, "ttl", []byte("a"), time.Second))
	if !cas("ttl", []byte("a"), false, "b", 0) {
		t.Fatal("swap failed")
	}
	clock.Advance(time.Second)
	want(t, st, "k", nil)
	want(t, st, "ttl", []byte("b"))
}

// testHandlesShare: two handles (two nodes) see each other's writes.
func (s *suite) testHandlesShare(t *testing.T) {
	open := s.newStore(t, 1<<20, NewClock().Now)
	a, b := open(), open()
	ctx := t.Context()
	noErr(t, a.Set(ctx, "k", []byte("from a"), 0))
	want(t, b, "k", []byte("from a"))
	if ok, _ := b.CompareAndSwap(ctx, "k", []byte("from a"), false, []byte("from b"), 0); !ok {
		t.Error("b could not swap a's value")
	}
	want(t, a, "k", []byte("from b"))
	if ok, _ := b.Delete(ctx, "k"); !ok {
		t.Error("b could not delete")
	}
	want(t, a, "k", nil)
	wantUsage(t, a, 0, 0)
}

// testConcurrentIncr: three handles (three nodes) each make 1,000
// increments from several goroutines at once; none is lost.
func (s *suite) testConcurrentIncr(t *testing.T) {
	open := s.newStore(t, 1<<20, NewClock().Now)
	const nodes, perNode, goroutines = 3, 1000, 8
	var wg sync.WaitGroup
	for range nodes {
		st := open()
		for g := range goroutines {
			n := perNode / goroutines
			if g < perNode%goroutines {
				n++
			}
			wg.Go(func() {
				for range n {
					if _, err := st.Incr(t.Context(), "n", 1, 0); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	want(t, open(), "n", []byte(strconv.Itoa(nodes*perNode)))
}

// testConcurrentCAS: read-then-CAS loops from three handles never lose an
// update: every successful swap is counted, and the final value is the
// count.
func (s *suite) testConcurrentCAS(t *testing.T) {
	open := s.newStore(t, 1<<20, NewClock().Now)
	const nodes, goroutines, updates = 3, 3, 30
	var wg sync.WaitGroup
	for range nodes {
		st := open()
		for range goroutines {
			wg.Go(func() {
				ctx := t.Context()
				for done := 0; done < updates; {
					cur, err := st.Get(ctx, "n")
					var ok bool
					switch {
					case errors.Is(err, abi.ErrnoNotFound):
						ok, err = st.CompareAndSwap(ctx, "n", nil, true, []byte("1"), 0)
					case err == nil:
						n, _ := strconv.Atoi(string(cur))
						ok, err = st.CompareAndSwap(ctx, "n", cur, false, []byte(strconv.Itoa(n+1)), 0)
					}
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						done++
					}
				}
			})
		}
	}
	wg.Wait()
	want(t, open(), "n", []byte(strconv.Itoa(nodes*goroutines*updates)))
}
