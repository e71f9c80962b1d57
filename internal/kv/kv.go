// Package kv is the key-value store every instance of one module shares
// (ABI.md §5.6): values with optional TTLs, atomic increment and
// compare-and-swap, bounded in bytes. The runtime gives each module one
// Store; a cluster store (Redis) can sit beside this one with the same
// semantics.
package kv

import (
	"bytes"
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
func New(maxBytes int) *Store {
	return &Store{maxBytes: maxBytes, now: time.Now, entries: map[string]entry{}}
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
	old, had := s.entries[key]
	grow := cost(key, value)
	if had {
		grow -= cost(key, old.value)
	}
	if s.used+grow > s.maxBytes {
		s.sweepLocked(s.now().UnixNano())
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

func (s *Store) sweepLocked(now int64) {
	for k, e := range s.entries {
		if e.expires != 0 && e.expires <= now {
			s.deleteLocked(k, e)
		}
	}
}

// Get returns a copy of key's value.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key)
	if !ok {
		return nil, abi.ErrnoNotFound
	}
	return bytes.Clone(e.value), nil
}

// Set stores value (copied) under key; ttl 0 keeps it until deleted.
func (s *Store) Set(key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(key, bytes.Clone(value), ttl)
}

// Delete removes key and reports whether it was there.
func (s *Store) Delete(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key)
	if ok {
		s.deleteLocked(key, e)
	}
	return ok
}

// Incr adds delta to the decimal integer stored at key and returns the new
// value. A missing key counts as 0 and is created with ttl (an existing
// key keeps its expiry: fixed-window rate limits need exactly that). A
// value that is not a decimal int64, or a sum that overflows, is
// abi.ErrnoInvalid.
func (s *Store) Incr(key string, delta int64, ttl time.Duration) (int64, error) {
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

// CompareAndSwap sets key to value if its current value equals old (or, with
// absent, if there is no current value), and reports whether it did.
func (s *Store) CompareAndSwap(key string, old []byte, absent bool, value []byte, ttl time.Duration) (bool, error) {
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

// Usage returns the number of keys and the bytes charged against the bound.
func (s *Store) Usage() (keys, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.used
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
