;; version2.wat: declares ABI version 2.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param i32 i32 i32) (result i32) (i32.const 0))
)
