;; start_loops.wat: on_start never returns; loading must fail, not hang.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32) (i32.const 1024))
  (func (export "on_start") (param $n i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "on_message") (param i32 i32 i32) (result i32) (i32.const 0))
)
