;; biglist.wat: hands the host huge lists (issue 8 item 7). The message is
;; a little-endian u32 n: on_message calls send_to_uid with an n-byte list
;; at 64 KiB — fresh zeroed pages, so n/4 empty entries — growing memory as
;; needed, and answers the client with send_to_uid's result (4 bytes, LE, a binary frame).
(module
  (import "wasmgate" "send_to_uid" (func $send_uid (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 4096)) (then unreachable))
    (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $n i32) (local $need i32)
    (if (i32.lt_u (local.get $len) (i32.const 4)) (then unreachable))
    (local.set $n (i32.load (i32.add (i32.const 1024) (local.get $id))))
    (local.set $need (i32.sub (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 2)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then unreachable))))
    (i32.store (i32.const 512) (call $send_uid (i32.const 65536) (local.get $n) (i32.const 0) (i32.const 1) (i32.const 0)))
    (call $send (i32.const 1024) (local.get $id) (i32.const 512) (i32.const 4) (i32.const 1)))
)
