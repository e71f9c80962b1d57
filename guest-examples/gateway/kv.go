package gateway

import (
	"encoding/binary"
	"runtime"
	"time"
	"unsafe"
)

// Key-value store (ABI.md §5.6).

// KVStore is the module's key-value store: one per module, shared by all its
// instances (including those that run tasks), kept across hot reloads, lost
// when the server restarts. Use it through [KV]; it has no state of its own.
//
// Keys are non-empty strings of at most 1024 bytes; values are at most the
// server's max_message_size. Every method is atomic with respect to all the
// module's instances. A ttl of 0 means no expiry; a positive ttl is rounded
// up to whole milliseconds; a negative one is ErrnoInvalid. A write that
// would overflow the store's size bound (kv_max_mb) fails with ErrnoLimit.
type KVStore struct{}

// KV is the module's key-value store.
var KV KVStore

// kvAbsent is kv_cas's flag bit: expect the key to be absent.
const kvAbsent uint32 = 1 << 0

// millis converts a ttl or delay to the ABI's i64 milliseconds, rounding up
// so that a positive duration never becomes 0 ("no expiry", "now").
func millis(d time.Duration) (int64, error) {
	if d < 0 {
		return 0, ErrnoInvalid
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms, nil
}

// Get returns a copy of key's value (empty, not nil, for an empty value),
// or ErrnoNotFound if the key is absent or expired.
func (KVStore) Get(key string) ([]byte, error) {
	b, err := readBytes(func(p unsafe.Pointer, n uint32) int32 {
		return hostKVGet(strPtr(key), uint32(len(key)), p, n)
	})
	runtime.KeepAlive(key)
	return b, err
}

// Set stores value under key, replacing any value and expiry; the key
// expires after ttl (0: never).
func (KVStore) Set(key string, value []byte, ttl time.Duration) error {
	ms, err := millis(ttl)
	if err != nil {
		return err
	}
	r := hostKVSet(strPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value)), ms)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return check(r)
}

// Delete removes key and reports whether it was present.
func (KVStore) Delete(key string) (bool, error) {
	r := hostKVDelete(strPtr(key), uint32(len(key)))
	runtime.KeepAlive(key)
	return flag(r)
}

// incrOut receives kv_incr's new value.
var incrOut [8]byte

// Incr adds delta (which may be negative) to the integer stored at key and
// returns the new value. An absent key counts as 0 and is created with ttl;
// an existing key keeps its expiry, so
//
//	n, err := gateway.KV.Incr("rate:"+c.ID, 1, time.Second)
//
// counts a client's events in fixed one-second windows. Counters are stored
// as decimal text (Get returns "42"). A value that is not a decimal int64,
// or a sum that overflows, is ErrnoInvalid.
func (KVStore) Incr(key string, delta int64, ttl time.Duration) (int64, error) {
	ms, err := millis(ttl)
	if err != nil {
		return 0, err
	}
	r := hostKVIncr(strPtr(key), uint32(len(key)), delta, ms, unsafe.Pointer(&incrOut[0]))
	runtime.KeepAlive(key)
	if err := check(r); err != nil {
		return 0, err
	}
	return decodeI64(incrOut), nil
}

// decodeI64 decodes kv_incr's output: a little-endian i64.
func decodeI64(b [8]byte) int64 { return int64(binary.LittleEndian.Uint64(b[:])) }

// CompareAndSwap sets key to value, expiring after ttl (0: never), if its
// current value is old, and reports whether it did. An absent key matches no old
// value, not even an empty one; see SetIfAbsent.
func (KVStore) CompareAndSwap(key string, old, value []byte, ttl time.Duration) (bool, error) {
	return kvCAS(key, old, value, ttl, 0)
}

// SetIfAbsent sets key to value, expiring after ttl (0: never), if the key
// is absent, and reports whether it did.
func (KVStore) SetIfAbsent(key string, value []byte, ttl time.Duration) (bool, error) {
	return kvCAS(key, nil, value, ttl, kvAbsent)
}

func kvCAS(key string, old, value []byte, ttl time.Duration, flags uint32) (bool, error) {
	ms, err := millis(ttl)
	if err != nil {
		return false, err
	}
	r := hostKVCAS(strPtr(key), uint32(len(key)), bytesPtr(old), uint32(len(old)), bytesPtr(value), uint32(len(value)), ms, flags)
	runtime.KeepAlive(key)
	runtime.KeepAlive(old)
	runtime.KeepAlive(value)
	return flag(r)
}
