;; whoami.wat: answers every message with the remote_addr its client had at
;; the handshake (kept in the key-value store under the client id), or
;; "unknown". The nginx test checks with it what server.trusted_proxies
;; gives handlers.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_set" (func $kv_set (param i32 i32 i32 i32 i64) (result i32)))
  (import "wasmgate" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "unknown")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need (i32.sub (i32.shr_u (i32.add (i32.add (local.get $n) (i32.const 1024)) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then unreachable))))
    (i32.const 1024))
  ;; The list at 1024: client_id, method, path, query, remote_addr, ...
  (func (export "on_handshake") (param $len i32) (result i32)
    (local $p i32) (local $i i32)
    (local.set $p (i32.const 1024))
    (block $done (loop $skip
      (br_if $done (i32.eq (local.get $i) (i32.const 4)))
      (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $skip)))
    (drop (call $kv_set (i32.const 1028) (i32.load (i32.const 1024))
      (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p)) (i64.const 60000)))
    (i32.const 0))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $n i32)
    (local.set $n (call $kv_get (i32.const 1024) (local.get $id) (i32.const 512) (i32.const 256)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (return (call $send (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 7) (i32.const 0)))))
    (call $send (i32.const 1024) (local.get $id) (i32.const 512) (local.get $n) (i32.const 0)))
)
