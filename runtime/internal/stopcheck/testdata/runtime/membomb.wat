;; membomb.wat: on_message grows memory until memory.grow fails, then sends
;; the final size in pages (little-endian i32) to the client. A message
;; starting with "p" is echoed instead.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (if (i32.eq (i32.load8_u (i32.add (i32.const 1024) (local.get $id))) (i32.const 112)) ;; "p"
      (then (return (call $send (i32.const 1024) (local.get $id) (i32.add (i32.const 1024) (local.get $id)) (local.get $len) (local.get $flags)))))
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (i32.store (i32.const 0) (memory.size))
    (call $send (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 4) (i32.const 1)))
)
