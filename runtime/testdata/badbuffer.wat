;; badbuffer.wat: wasmgate_buffer returns a garbage pointer, 0xfffff000,
;; which with the 4096-byte minimum buffer wraps to 0 in 32-bit arithmetic.
;; The host must refuse it (every event fails) and never write there.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32) (i32.const 0xfffff000))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (call $send (i32.const 0xfffff000) (local.get $id) (i32.const 0xfffff000) (local.get $len) (local.get $flags)))
)
