// Package kv is the key-value store every instance of one module shares
// (ABI.md §5.6): values with optional TTLs, atomic increment and
// compare-and-swap, bounded in bytes. The runtime gives each module one
// KV: the in-process Store here, or in cluster mode the Redis one
// (internal/kv/rediskv), with the same semantics; internal/kv/kvtest is the
// conformance suite both pass.
package kv

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// MaxKey bounds one key, in bytes. Keys are names, not payloads.
const MaxKey = 1024

// entryOverhead is what one entry is charged on top of its key and value,
// so that a store of many empty values is bounded too.
const entryOverhead = 64

// KV is one module's key-value store, with the semantics of ABI.md §5.6:
// keys are non-empty and at most MaxKey bytes (ErrnoInvalid, ErrnoTooLarge
// on writes), an expired key is absent for every method, a write that
// would exceed the byte bound (keys + values + 64 bytes per entry) is
// ErrnoLimit after expired entries were dropped, and each call is atomic
// with respect to every other caller of the same store — in cluster mode
// every node's. Errors wrap an abi.Errno; a store that cannot reach its
// data (Redis down) fails with one wrapping ErrnoUnavailable.
type KV interface {
	// Get returns key's value (a copy); ErrnoNotFound if absent.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key, replacing the value and the expiry; ttl
	// 0 keeps it until deleted. The store does not keep value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key and reports whether it was there.
	Delete(ctx context.Context, key string) (bool, error)
	// Incr adds delta to the decimal int64 stored at key and returns the
	// sum. An absent key counts as 0 and is created with ttl; an existing
	// key keeps its expiry. A value that is not a decimal int64 (as
	// strconv.ParseInt reads it), or a sum that overflows, is ErrnoInvalid
	// and changes nothing.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// CompareAndSwap sets key to value (with ttl) if its current value
	// equals old byte for byte — or, with absent, if there is none — and
	// reports whether it did. An absent key never equals old.
	CompareAndSwap(ctx context.Context, key string, old []byte, absent bool, value []byte, ttl time.Duration) (bool, error)
	// Usage returns the number of keys and the bytes charged against the
	// bound. Expired entries not yet dropped still count.
	Usage(ctx context.Context) (keys, bytes int, err error)
}

var _ KV = (*Store)(nil)

// Store is the key-value store every instance of one module shares
// (ABI.md §5.6). Instances do not share memory; this is how they share
// counters, rate limits and small state. One mutex: operations are a map
// access and a copy, far shorter than the guest call around them, and
// kv_incr/kv_cas must be atomic across instances anyway.
//
// Expired entries are dropped when they are read, and all at once when a
// write would exceed the size bound, so there is no sweeper goroutine.
type Store struct {
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]entry
	used    int // bytes charged: keys + values + entryOverhead each
}

type entry struct {
	value   []byte
	expires int64 // UnixNano; 0: never
}

// New returns an empty store of at most maxBytes (keys, values and
// EntryOverhead per entry).
func New(maxBytes int) *Store { return NewWithClock(maxBytes, time.Now) }

// NewWithClock is New reading the time from now, for tests that move the
// clock instead of waiting for TTLs.
func NewWithClock(maxBytes int, now func() time.Time) *Store {
	return &Store{maxBytes: maxBytes, now: now, entries: map[string]entry{}}
}

func cost(key string, value []byte) int { return len(key) + len(value) + entryOverhead }

// liveLocked returns key's entry if it exists and has not expired. The
// clock is read only for an entry with a TTL: most keys have none, and
// reading it costs as much as the map access.
func (s *Store) liveLocked(key string) (entry, bool) {
	e, ok := s.entries[key]
	if !ok {
		return entry{}, false
	}
	if e.expires != 0 && e.expires <= s.now().UnixNano() {
		s.deleteLocked(key, e)
		return entry{}, false
	}
	return e, true
}

func (s *Store) deleteLocked(key string, e entry) {
	delete(s.entries, key)
	s.used -= cost(key, e.value)
}

// putLocked stores value (owned by the store from now on), replacing what
// is there, if the size bound allows.
func (s *Store) putLocked(key string, value []byte, ttl time.Duration) error {
	grow := s.growLocked(key, value)
	if s.used+grow > s.maxBytes {
		s.sweepLocked(s.now().UnixNano())
		// The sweep may have dropped key itself (Set does not check that
		// the entry it replaces is live): it is no longer there to replace.
		grow = s.growLocked(key, value)
		if s.used+grow > s.maxBytes {
			return abi.ErrnoLimit
		}
	}
	var expires int64
	if ttl > 0 {
		expires = s.now().UnixNano() + ttl.Nanoseconds()
	}
	s.entries[key] = entry{value: value, expires: expires}
	s.used += grow
	return nil
}

// growLocked is how much storing value under key adds to used.
func (s *Store) growLocked(key string, value []byte) int {
	grow := cost(key, value)
	if old, had := s.entries[key]; had {
		grow -= cost(key, old.value)
	}
	return grow
}

func (s *Store) sweepLocked(now int64) {
	for k, e := range s.entries {
		if e.expires != 0 && e.expires <= now {
			s.deleteLocked(k, e)
		}
	}
}

// Get implements KV.
func (s *Store) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key)
	if !ok {
		return nil, abi.ErrnoNotFound
	}
	return bytes.Clone(e.value), nil
}

// Set implements KV.
func (s *Store) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(key, bytes.Clone(value), ttl)
}

// Delete implements KV.
func (s *Store) Delete(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key)
	if ok {
		s.deleteLocked(key, e)
	}
	return ok, nil
}

// Incr implements KV. An existing key keeps its expiry: fixed-window rate
// limits need exactly that.
func (s *Store) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	e, ok := s.liveLocked(key)
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(e.value), 10, 64); err != nil {
			return 0, abi.ErrnoInvalid
		}
	}
	sum := n + delta
	if (delta > 0 && sum < n) || (delta < 0 && sum > n) {
		return 0, abi.ErrnoInvalid
	}
	value := strconv.AppendInt(nil, sum, 10)
	if ok {
		if err := s.putLocked(key, value, 0); err != nil {
			return 0, err
		}
		s.entries[key] = entry{value: value, expires: e.expires}
		return sum, nil
	}
	return sum, s.putLocked(key, value, ttl)
}

// CompareAndSwap implements KV.
func (s *Store) CompareAndSwap(_ context.Context, key string, old []byte, absent bool, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key)
	if absent == ok || (ok && !bytes.Equal(e.value, old)) {
		return false, nil
	}
	if err := s.putLocked(key, bytes.Clone(value), ttl); err != nil {
		return false, err
	}
	return true, nil
}

// Usage implements KV.
func (s *Store) Usage(context.Context) (keys, bytes int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.used, nil
}

func checkKey(key string) error {
	switch {
	case key == "":
		return abi.ErrnoInvalid
	case len(key) > MaxKey:
		return abi.ErrnoTooLarge
	}
	return nil
}
