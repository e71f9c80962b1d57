;; v1_first.wat: a handler written against ABI v1 as first released (commit
;; e14ef1b: the host functions before the key-value store, tasks and timers,
;; close_client without close codes, every event export of that release).
;; FROZEN: do not edit it, and keep v1_first.wasm as committed. The test
;; server/e2e_compat_test.go (TestCompat_V1FirstRelease) runs it against the
;; current host, so that a change that breaks modules built before it fails.
;;
;; on_start: the config must be "v1" (else 1: refused).
;; on_handshake: 403 when the query is "deny", else accept.
;; on_connect: sends "hello".  on_close: sends "bye" to every other client.
;; on_message, by the first byte of the message:
;;   e...  echo the whole message in its frame type
;;   uU    bind_uid U, then send get_uid_by_client_id
;;   gG    join_group G, then send the message to group G
;;   sJ    set_session J, then send get_session
;;   n     send get_all_client_id_count as a 4-byte little-endian binary frame
;;   lT    log T at info, then send the message back
;;   t     send "t" if now() > 0
;;   kT    close_client with final message T (flags 0)
;;   x     trap (unreachable)
;;   other return 1 (a warning)
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "send_to_all" (func $send_all (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "close_client" (func $close (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "bind_uid" (func $bind (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "get_uid_by_client_id" (func $uid_of (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "join_group" (func $join (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "send_to_group" (func $send_group (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "set_session" (func $set_session (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "get_session" (func $get_session (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "get_all_client_id_count" (func $count (result i32)))
  (import "wasmgate" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasmgate" "now" (func $now (result i64)))
  (memory (export "memory") 1)
  ;; 0: "hello", 8: "bye", 16: "v1", 24: "deny", 32: "t"; 256: output
  ;; scratch (256 bytes); 512: a list being built; 1024: the event buffer.
  (data (i32.const 0) "hello")
  (data (i32.const 8) "bye")
  (data (i32.const 16) "v1")
  (data (i32.const 24) "deny")
  (data (i32.const 32) "t")

  (func $copy (param $dst i32) (param $src i32) (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store8 (local.get $dst) (i32.load8_u (local.get $src)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))

  ;; $list1 encodes the one-entry list [src:n] at 512 and returns its size.
  (func $list1 (param $src i32) (param $n i32) (result i32)
    (i32.store (i32.const 512) (local.get $n))
    (call $copy (i32.const 516) (local.get $src) (local.get $n))
    (i32.add (local.get $n) (i32.const 4)))

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need (i32.sub (i32.shr_u (i32.add (i32.add (local.get $n) (i32.const 1024)) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then (return (i32.const 0))))))
    (i32.const 1024))

  (func (export "on_start") (param $len i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 2)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load16_u (i32.const 1024)) (i32.load16_u (i32.const 16))) (then (return (i32.const 1))))
    (i32.const 0))

  (func (export "on_handshake") (param $len i32) (result i32)
    (local $p i32) (local $i i32)
    (local.set $p (i32.const 1024))
    (block $done
      (loop $skip ;; client_id, method, path
        (br_if $done (i32.eq (local.get $i) (i32.const 3)))
        (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $skip)))
    (if (i32.and (i32.eq (i32.load (local.get $p)) (i32.const 4))
                 (i32.eq (i32.load (i32.add (local.get $p) (i32.const 4))) (i32.load (i32.const 24))))
      (then (return (i32.const 403))))
    (i32.const 0))

  (func (export "on_connect") (param $id i32) (result i32)
    (drop (call $send (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 5) (i32.const 0)))
    (i32.const 0))

  (func (export "on_close") (param $id i32) (result i32)
    (drop (call $send_all (i32.const 8) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 512) (call $list1 (i32.const 1024) (local.get $id))))
    (i32.const 0))

  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $msg i32) (local $op i32) (local $arg i32) (local $alen i32) (local $n i32)
    (local.set $msg (i32.add (i32.const 1024) (local.get $id)))
    (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
    (local.set $op (i32.load8_u (local.get $msg)))
    (local.set $arg (i32.add (local.get $msg) (i32.const 1)))
    (local.set $alen (i32.sub (local.get $len) (i32.const 1)))
    (if (i32.eq (local.get $op) (i32.const 101)) ;; e
      (then (drop (call $send (i32.const 1024) (local.get $id) (local.get $msg) (local.get $len) (local.get $flags)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 117)) ;; u
      (then (drop (call $bind (i32.const 1024) (local.get $id) (local.get $arg) (local.get $alen)))
            (local.set $n (call $uid_of (i32.const 1024) (local.get $id) (i32.const 256) (i32.const 256)))
            (drop (call $send (i32.const 1024) (local.get $id) (i32.const 256) (local.get $n) (i32.const 0)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 103)) ;; g
      (then (drop (call $join (i32.const 1024) (local.get $id) (local.get $arg) (local.get $alen)))
            (drop (call $send_group (i32.const 512) (call $list1 (local.get $arg) (local.get $alen))
              (local.get $msg) (local.get $len) (i32.const 0) (i32.const 0) (i32.const 0)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 115)) ;; s
      (then (drop (call $set_session (i32.const 1024) (local.get $id) (local.get $arg) (local.get $alen)))
            (local.set $n (call $get_session (i32.const 1024) (local.get $id) (i32.const 256) (i32.const 256)))
            (drop (call $send (i32.const 1024) (local.get $id) (i32.const 256) (local.get $n) (i32.const 0)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 110)) ;; n
      (then (i32.store (i32.const 256) (call $count))
            (drop (call $send (i32.const 1024) (local.get $id) (i32.const 256) (i32.const 4) (i32.const 1)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 108)) ;; l
      (then (drop (call $log (i32.const 1) (local.get $arg) (local.get $alen)))
            (drop (call $send (i32.const 1024) (local.get $id) (local.get $msg) (local.get $len) (i32.const 0)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 116)) ;; t
      (then (if (i64.gt_s (call $now) (i64.const 0))
              (then (drop (call $send (i32.const 1024) (local.get $id) (i32.const 32) (i32.const 1) (i32.const 0)))))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 107)) ;; k
      (then (drop (call $close (i32.const 1024) (local.get $id) (local.get $arg) (local.get $alen) (i32.const 0)))
            (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 120)) (then unreachable)) ;; x
    (i32.const 1))
)
