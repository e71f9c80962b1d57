;; loop.wat: on_message spins forever on a message starting with "l" and
;; echoes anything else; the event deadline must stop the loop.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (if (i32.eq (i32.load8_u (i32.add (i32.const 1024) (local.get $id))) (i32.const 108))
      (then (loop $forever (br $forever))))
    (call $send (i32.const 1024) (local.get $id) (i32.add (i32.const 1024) (local.get $id)) (local.get $len) (local.get $flags)))
)
