package runtime

import (
	"context"
	"time"
)

// Access to a module's key-value store from Go, for test harnesses
// (wasmgatetest) and tools: the same store the guest's kv_* calls use.

// KVGet returns the value stored at key; false if it is absent or expired.
func (st *State) KVGet(key string) ([]byte, bool) {
	v, err := st.kv.Get(context.Background(), key) // abi.ErrnoNotFound, or the store is unreachable
	return v, err == nil
}

// KVSet stores value at key with ttl (0: no expiry), under the store's
// limits: an error wraps the abi.Errno a guest's kv_set would get.
func (st *State) KVSet(key string, value []byte, ttl time.Duration) error {
	return st.kv.Set(context.Background(), key, value, ttl)
}
