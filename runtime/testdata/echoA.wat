;; echoA.wat: answers every message with "A:" followed by the message
;; (hot-reload tests alternate echoA and echoB).
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 4096)) (then unreachable))
    (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (i32.store8 (i32.const 8192) (i32.const 65))
    (i32.store8 (i32.const 8193) (i32.const 58))
    (memory.copy (i32.const 8194) (i32.add (i32.const 1024) (local.get $id)) (local.get $len))
    (call $send (i32.const 1024) (local.get $id) (i32.const 8192) (i32.add (local.get $len) (i32.const 2)) (local.get $flags)))
)
