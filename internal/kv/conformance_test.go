package kv_test

import (
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/kv"
	"github.com/wasmgate/wasmgate/internal/kv/kvtest"
)

// TestStore_Conformance runs the suite rediskv passes too. Every handle on
// one store is the store itself: in-process, there is nothing to share.
func TestStore_Conformance(t *testing.T) {
	kvtest.Run(t, func(_ *testing.T, maxBytes int, clock func() time.Time) func() kv.KV {
		s := kv.NewWithClock(maxBytes, clock)
		return func() kv.KV { return s }
	})
}
