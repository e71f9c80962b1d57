package kv

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

func TestKVStore_TTL(t *testing.T) {
	s := New(1 << 20)
	ctx := context.Background()
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	if err := s.Set(ctx, "a", []byte("1"), time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "hits", 1, time.Second); n != 1 || err != nil {
		t.Fatalf("incr = %d, %v", n, err)
	}
	now = now.Add(500 * time.Millisecond)
	if n, _ := s.Incr(ctx, "hits", 1, time.Hour); n != 2 {
		t.Fatalf("incr = %d, want 2", n) // and the key keeps its first expiry
	}
	now = now.Add(600 * time.Millisecond)
	if _, err := s.Get(ctx, "a"); !errors.Is(err, abi.ErrnoNotFound) {
		t.Errorf("a after its TTL: %v, want not found", err)
	}
	if n, _ := s.Incr(ctx, "hits", 1, 0); n != 1 {
		t.Errorf("incr after expiry = %d, want a fresh 1", n)
	}
	if keys, _, _ := s.Usage(ctx); keys != 1 {
		t.Errorf("%d keys, want 1 (expired ones dropped)", keys)
	}
}

func TestKVStore_SizeBound(t *testing.T) {
	s := New(1000)
	ctx := context.Background()
	big := []byte(strings.Repeat("x", 400))
	if err := s.Set(ctx, "a", big, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "b", big, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "c", big, 0); !errors.Is(err, abi.ErrnoLimit) {
		t.Fatalf("third 400-byte value in a 1000-byte store: %v, want limit", err)
	}
	if err := s.Set(ctx, "a", []byte("small"), 0); err != nil { // replacing shrinks
		t.Fatal(err)
	}
	if err := s.Set(ctx, "c", big, 0); err != nil {
		t.Fatalf("after shrinking a: %v", err)
	}
	_, _ = s.Delete(ctx, "b")
	if _, used, _ := s.Usage(ctx); used != 2*entryOverhead+len("a")+len("small")+len("c")+400 {
		t.Errorf("used = %d", used)
	}
}

func TestKVStore_IncrAndCASEdges(t *testing.T) {
	s := New(1 << 20)
	ctx := context.Background()
	_ = s.Set(ctx, "text", []byte("abc"), 0)
	if _, err := s.Incr(ctx, "text", 1, 0); !errors.Is(err, abi.ErrnoInvalid) {
		t.Errorf("incr of a non-number: %v", err)
	}
	_ = s.Set(ctx, "max", []byte("9223372036854775807"), 0)
	if _, err := s.Incr(ctx, "max", 1, 0); !errors.Is(err, abi.ErrnoInvalid) {
		t.Errorf("overflowing incr: %v", err)
	}
	if n, _ := s.Incr(ctx, "neg", math.MinInt64+1, 0); n != math.MinInt64+1 {
		t.Errorf("incr by a large negative = %d", n)
	}
	if ok, _ := s.CompareAndSwap(ctx, "k", nil, true, []byte("v1"), 0); !ok {
		t.Error("set-if-absent on a missing key failed")
	}
	if ok, _ := s.CompareAndSwap(ctx, "k", []byte("nope"), false, []byte("v2"), 0); ok {
		t.Error("CAS with a wrong old value swapped")
	}
	if ok, _ := s.CompareAndSwap(ctx, "k", []byte("v1"), false, []byte("v2"), 0); !ok {
		t.Error("CAS with the right old value did not swap")
	}
	if v, _ := s.Get(ctx, "k"); string(v) != "v2" {
		t.Errorf("k = %q", v)
	}
	if err := s.Set(ctx, "", []byte("x"), 0); !errors.Is(err, abi.ErrnoInvalid) {
		t.Errorf("empty key: %v", err)
	}
	if err := s.Set(ctx, strings.Repeat("k", MaxKey+1), nil, 0); !errors.Is(err, abi.ErrnoTooLarge) {
		t.Errorf("long key: %v", err)
	}
}

func BenchmarkKVStore(b *testing.B) {
	s := New(16 << 20)
	ctx := context.Background()
	val := []byte("some value of a few dozen bytes, like a session flag")
	b.Run("set", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_ = s.Set(ctx, "key", val, 0)
		}
	})
	b.Run("get", func(b *testing.B) {
		for b.Loop() {
			_, _ = s.Get(ctx, "key")
		}
	})
	b.Run("incr", func(b *testing.B) {
		for b.Loop() {
			_, _ = s.Incr(ctx, "counter", 1, 0)
		}
	})
	b.Run("incr-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = s.Incr(ctx, "counter", 1, 0)
			}
		})
	})
}
