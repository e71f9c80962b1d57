;; wasi_probe.wat: on_message asks WASI for environment variables, arguments
;; and a preopened directory, and sends back three little-endian i32s: the
;; number of env vars, the number of args, and fd_prestat_get(3)'s errno
;; (8, EBADF, when nothing is mounted).
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (drop (call $env (i32.const 0) (i32.const 64)))
    (drop (call $args (i32.const 4) (i32.const 64)))
    (i32.store (i32.const 8) (call $prestat (i32.const 3) (i32.const 128)))
    (call $send (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 12) (i32.const 1)))
)
