package runtime

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// kvMaxKey bounds one key. Keys are names, not payloads.
const kvMaxKey = 1024

// kvEntryOverhead is what one entry is charged on top of its key and value,
// so that a store of many empty values is bounded too.
const kvEntryOverhead = 64

// kvStore is the key-value store every instance of one module shares
// (ABI.md §5.6). Instances do not share memory; this is how they share
// counters, rate limits and small state. One mutex: operations are a map
// access and a copy, far shorter than the guest call around them, and
// kv_incr/kv_cas must be atomic across instances anyway.
//
// Expired entries are dropped when they are read, and all at once when a
// write would exceed the size bound, so there is no sweeper goroutine.
type kvStore struct {
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]kvEntry
	used    int // bytes charged: keys + values + kvEntryOverhead each
}

type kvEntry struct {
	value   []byte
	expires int64 // UnixNano; 0: never
}

func newKVStore(maxBytes int) *kvStore {
	return &kvStore{maxBytes: maxBytes, now: time.Now, entries: map[string]kvEntry{}}
}

func cost(key string, value []byte) int { return len(key) + len(value) + kvEntryOverhead }

// liveLocked returns key's entry if it exists and has not expired. The
// clock is read only for an entry with a TTL: most keys have none, and
// reading it costs as much as the map access.
func (s *kvStore) liveLocked(key string) (kvEntry, bool) {
	e, ok := s.entries[key]
	if !ok {
		return kvEntry{}, false
	}
	if e.expires != 0 && e.expires <= s.now().UnixNano() {
		s.deleteLocked(key, e)
		return kvEntry{}, false
	}
	return e, true
}

func (s *kvStore) deleteLocked(key string, e kvEntry) {
	delete(s.entries, key)
	s.used -= cost(key, e.value)
}

// putLocked stores value (owned by the store from now on), replacing what
// is there, if the size bound allows.
func (s *kvStore) putLocked(key string, value []byte, ttl time.Duration) error {
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
	s.entries[key] = kvEntry{value: value, expires: expires}
	s.used += grow
	return nil
}

func (s *kvStore) sweepLocked(now int64) {
	for k, e := range s.entries {
		if e.expires != 0 && e.expires <= now {
			s.deleteLocked(k, e)
		}
	}
}

// Get returns a copy of key's value.
func (s *kvStore) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key)
	if !ok {
		return nil, abi.ErrnoNotFound
	}
	return bytes.Clone(e.value), nil
}

// Set stores value (copied) under key; ttl 0 keeps it until deleted.
func (s *kvStore) Set(key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(key, bytes.Clone(value), ttl)
}

// Delete removes key and reports whether it was there.
func (s *kvStore) Delete(key string) bool {
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
func (s *kvStore) Incr(key string, delta int64, ttl time.Duration) (int64, error) {
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
		s.entries[key] = kvEntry{value: value, expires: e.expires}
		return sum, nil
	}
	return sum, s.putLocked(key, value, ttl)
}

// CompareAndSwap sets key to value if its current value equals old (or, with
// absent, if there is no current value), and reports whether it did.
func (s *kvStore) CompareAndSwap(key string, old []byte, absent bool, value []byte, ttl time.Duration) (bool, error) {
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
func (s *kvStore) Usage() (keys, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.used
}

func checkKey(key string) error {
	switch {
	case key == "":
		return abi.ErrnoInvalid
	case len(key) > kvMaxKey:
		return abi.ErrnoTooLarge
	}
	return nil
}
