;; counter.wat: every message increments the module key-value store's key
;; "n" (kv_incr) and answers the new value to its sender as 8 bytes,
;; little-endian, in a binary frame; an error answers "E" and the errno.
;; The cluster tests use it to check that kv_incr is atomic across nodes.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_incr" (func $kv_incr (param i32 i32 i64 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need (i32.sub (i32.shr_u (i32.add (i32.add (local.get $n) (i32.const 1024)) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then unreachable))))
    (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $err i32)
    (local.set $err (call $kv_incr (i32.const 0) (i32.const 1) (i64.const 1) (i64.const 0) (i32.const 16)))
    (if (i32.ne (local.get $err) (i32.const 0))
      (then
        (i32.store8 (i32.const 24) (i32.const 69)) ;; 'E'
        (i32.store (i32.const 25) (local.get $err))
        (drop (call $send (i32.const 1024) (local.get $id) (i32.const 24) (i32.const 5) (i32.const 1)))
        (return (i32.const 0))))
    (drop (call $send (i32.const 1024) (local.get $id) (i32.const 16) (i32.const 8) (i32.const 1)))
    (i32.const 0)))
