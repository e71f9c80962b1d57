;; stdout.wat: on_message writes two lines to stdout through WASI fd_write,
;; which the host must route to its log tagged with the module name.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "line one\nline two\n")
  (data (i32.const 32) "\00\00\00\00\12\00\00\00") ;; iovec {ptr 0, len 18}
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param i32 i32 i32) (result i32)
    (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))
)
