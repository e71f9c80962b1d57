;; hostile.wat: a module that misbehaves in the event its module config
;; names (the config's first byte, read by on_start), for the hostile-guest
;; suite (server/e2e_hostile_guest_test.go). Modes:
;;   h  on_handshake loops          c  on_connect loops
;;   m  on_message loops            x  on_close loops
;;   t  on_message starts a task; on_task loops
;;   T  on_message sets a 0 ms timer; on_timer loops
;;   s  on_start loops (the module must be refused, not hang a load)
;;   r  on_message makes 2^41 calls without a loop (loop-free call tree)
;;   d  on_message recurses without end (bounded by max_call_depth)
;; Any other mode echoes every message.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "task" (func $task (param i32 i32) (result i64)))
  (import "wasmgate" "set_timer" (func $set_timer (param i64 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then unreachable))
    (i32.const 1024))
  ;; is the mode m? The mode lives at address 0.
  (func $mode (param $m i32) (result i32)
    (i32.eq (i32.load8_u (i32.const 0)) (local.get $m)))
  (func $spin (loop $forever (br $forever)))
  (func $tree (param $d i32) (result i32)
    (if (result i32) (i32.eqz (local.get $d))
      (then (i32.const 1))
      (else (i32.add (call $tree (i32.sub (local.get $d) (i32.const 1)))
                     (call $tree (i32.sub (local.get $d) (i32.const 1)))))))
  (func $down (param $n i32) (result i32)
    (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "on_start") (param $len i32) (result i32)
    (if (local.get $len) (then (i32.store8 (i32.const 0) (i32.load8_u (i32.const 1024)))))
    (if (call $mode (i32.const 115)) (then (call $spin))) ;; s
    (i32.const 0))
  (func (export "on_handshake") (param i32) (result i32)
    (if (call $mode (i32.const 104)) (then (call $spin))) ;; h
    (i32.const 0))
  (func (export "on_connect") (param i32) (result i32)
    (if (call $mode (i32.const 99)) (then (call $spin))) ;; c
    (i32.const 0))
  (func (export "on_close") (param i32) (result i32)
    (if (call $mode (i32.const 120)) (then (call $spin))) ;; x
    (i32.const 0))
  (func (export "on_task") (param i64 i32) (result i32)
    (call $spin)
    (i32.const 0))
  (func (export "on_finish") (param i64 i32 i32) (result i32) (i32.const 0))
  (func (export "on_timer") (param i64 i32) (result i32)
    (call $spin)
    (i32.const 0))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (if (call $mode (i32.const 109)) (then (call $spin))) ;; m
    (if (call $mode (i32.const 116)) ;; t
      (then (return (i32.wrap_i64 (call $task (i32.const 1024) (i32.const 1))))))
    (if (call $mode (i32.const 84)) ;; T
      (then (return (i32.wrap_i64 (call $set_timer (i64.const 0) (i32.const 1024) (i32.const 1))))))
    (if (call $mode (i32.const 114)) (then (drop (call $tree (i32.const 40))))) ;; r
    (if (call $mode (i32.const 100)) (then (drop (call $down (i32.const 0))))) ;; d
    (call $send (i32.const 1024) (local.get $id) (i32.add (i32.const 1024) (local.get $id)) (local.get $len) (local.get $flags)))
)
