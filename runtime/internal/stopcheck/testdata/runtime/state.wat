;; state.wat: exercises the per-module state host functions (ABI.md §5.6–5.8).
;; on_message's first byte picks a command, the rest is its argument:
;;   i      kv_incr("n", 1)                  c<v>  kv_cas("k", absent, v)
;;   t<p>   task(p)                          s<p>  set_timer(20 ms, p)
;;   r      task_result outside on_task (answers its errno to the client)
;; on_task: payload "x..." traps, "l..." loops forever, "f..." fails (returns 1
;; after task_result), anything else is its own result.
;; on_finish sends "<status><result>" to client "finish"; on_timer sends
;; "T<payload>" to the client whose id is the payload.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_incr" (func $kv_incr (param i32 i32 i64 i64 i32) (result i32)))
  (import "wasmgate" "kv_cas" (func $kv_cas (param i32 i32 i32 i32 i32 i32 i64 i32) (result i32)))
  (import "wasmgate" "task" (func $task (param i32 i32) (result i64)))
  (import "wasmgate" "task_result" (func $task_result (param i32 i32) (result i32)))
  (import "wasmgate" "set_timer" (func $set_timer (param i64 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (data (i32.const 8) "k")
  (data (i32.const 32) "finish")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need (i32.sub (i32.shr_u (i32.add (i32.add (local.get $n) (i32.const 1024)) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then unreachable))))
    (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $msg i32) (local $cmd i32)
    (local.set $msg (i32.add (i32.const 1024) (local.get $id)))
    (local.set $cmd (i32.load8_u (local.get $msg)))
    (if (i32.eq (local.get $cmd) (i32.const 105)) ;; 'i'
      (then (return (call $kv_incr (i32.const 0) (i32.const 1) (i64.const 1) (i64.const 0) (i32.const 16)))))
    (if (i32.eq (local.get $cmd) (i32.const 99)) ;; 'c'
      (then (return (call $kv_cas (i32.const 8) (i32.const 1) (i32.const 0) (i32.const 0)
        (i32.add (local.get $msg) (i32.const 1)) (i32.sub (local.get $len) (i32.const 1)) (i64.const 0) (i32.const 1)))))
    (if (i32.eq (local.get $cmd) (i32.const 116)) ;; 't'
      (then (return (i32.wrap_i64 (call $task (i32.add (local.get $msg) (i32.const 1)) (i32.sub (local.get $len) (i32.const 1)))))))
    (if (i32.eq (local.get $cmd) (i32.const 115)) ;; 's'
      (then (return (i32.wrap_i64 (call $set_timer (i64.const 20) (i32.add (local.get $msg) (i32.const 1)) (i32.sub (local.get $len) (i32.const 1)))))))
    (if (i32.eq (local.get $cmd) (i32.const 114)) ;; 'r'
      (then
        (i32.store8 (i32.const 64) (i32.sub (i32.const 48) (call $task_result (i32.const 0) (i32.const 1)))) ;; '0' + errno
        (return (call $send (i32.const 1024) (local.get $id) (i32.const 64) (i32.const 1) (i32.const 0)))))
    (i32.const 0))
  (func (export "on_task") (param $tid i64) (param $len i32) (result i32)
    (local $cmd i32)
    (local.set $cmd (i32.load8_u (i32.const 1024)))
    (if (i32.eq (local.get $cmd) (i32.const 120)) (then unreachable)) ;; 'x'
    (if (i32.eq (local.get $cmd) (i32.const 108)) (then (loop $forever (br $forever)))) ;; 'l'
    (drop (call $task_result (i32.const 1024) (local.get $len)))
    (if (i32.eq (local.get $cmd) (i32.const 102)) (then (return (i32.const 1)))) ;; 'f'
    (i32.const 0))
  (func (export "on_finish") (param $tid i64) (param $len i32) (param $status i32) (result i32)
    (i32.store8 (i32.const 1023) (i32.add (i32.const 48) (local.get $status)))
    (call $send (i32.const 32) (i32.const 6) (i32.const 1023) (i32.add (local.get $len) (i32.const 1)) (i32.const 0)))
  (func (export "on_timer") (param $tid i64) (param $len i32) (result i32)
    (i32.store8 (i32.const 1023) (i32.const 84)) ;; 'T'
    (call $send (i32.const 1024) (local.get $len) (i32.const 1023) (i32.add (local.get $len) (i32.const 1)) (i32.const 0)))
)
