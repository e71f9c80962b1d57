;; wasi_probe.wat: on_message asks WASI for everything a sandboxed guest must
;; not get - environment variables, arguments, preopened directories, files,
;; input - and sends back fourteen little-endian i32s:
;;    0, 4  environ_sizes_get: count, buffer size
;;    8, 12 args_sizes_get: count, buffer size
;;   16     fd_prestat_get(3) errno (8, EBADF, when nothing is mounted)
;;   20-28  path_open("etc/passwd") errno with dirfd 3, 4 and 5
;;   32     the fd path_open wrote (-1 if it never wrote one)
;;   36, 40 fd_read(3): errno, bytes read (-1 if never written)
;;   44, 48 fd_read(0), stdin: errno, bytes read
;;   52     the first 4 bytes of the read buffer ("SENT" if nothing was read)
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "\00\03\00\00\40\00\00\00") ;; iovec {768, 64}
  (data (i32.const 512) "etc/passwd")
  (data (i32.const 768) "SENT")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  ;; open tries to open etc/passwd for reading under dirfd, writing the fd at 32.
  (func $open (param $dirfd i32) (result i32)
    (call $path_open (local.get $dirfd) (i32.const 1) (i32.const 512) (i32.const 10)
      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 32)))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (drop (call $env (i32.const 0) (i32.const 4)))
    (drop (call $args (i32.const 8) (i32.const 12)))
    (i32.store (i32.const 16) (call $prestat (i32.const 3) (i32.const 128)))
    (i32.store (i32.const 32) (i32.const -1))
    (i32.store (i32.const 20) (call $open (i32.const 3)))
    (i32.store (i32.const 24) (call $open (i32.const 4)))
    (i32.store (i32.const 28) (call $open (i32.const 5)))
    (i32.store (i32.const 40) (i32.const -1))
    (i32.store (i32.const 36) (call $fd_read (i32.const 3) (i32.const 256) (i32.const 1) (i32.const 40)))
    (i32.store (i32.const 48) (i32.const -1))
    (i32.store (i32.const 44) (call $fd_read (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 48)))
    (i32.store (i32.const 52) (i32.load (i32.const 768)))
    (call $send (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 56) (i32.const 1)))
)
