;; badptr.wat: calls send_to_client with an id pointer far outside memory and
;; a message length past its end, then sends the two results (two
;; little-endian i32s) to the client as a binary message.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need (i32.sub (i32.shr_u (i32.add (i32.add (local.get $n) (i32.const 1024)) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then unreachable))))
    (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (i32.store (i32.const 0) (call $send (i32.const 0xfffffff0) (i32.const 100) (i32.const 0) (i32.const 1) (i32.const 0)))
    (i32.store (i32.const 4) (call $send (i32.const 1024) (local.get $id) (i32.const 65000) (i32.const 0x7fffffff) (i32.const 0)))
    (call $send (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 8) (i32.const 1)))
)
