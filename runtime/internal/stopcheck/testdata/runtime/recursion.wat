;; recursion.wat: on a message starting with "r", on_message recurses
;; without end, which wazero stops with a stack overflow trap. On "t" it
;; makes 2^31 calls with no loop and never more than 31 frames deep: the
;; deadline stops it at a function entry check
;; (TestModule_LoopFreeRecursionStoppedAtDeadline).
;; Anything else is echoed.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then unreachable))
    (i32.const 1024))
  ;; down calls itself for ever; the add after the call keeps it from being
  ;; a tail call.
  (func $down (param $n i32) (result i32)
    (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  ;; tree calls itself twice until $d is 0: 2^($d+1)-1 calls.
  (func $tree (param $d i32) (result i32)
    (if (result i32) (i32.eqz (local.get $d))
      (then (i32.const 1))
      (else (i32.add (call $tree (i32.sub (local.get $d) (i32.const 1)))
                     (call $tree (i32.sub (local.get $d) (i32.const 1)))))))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $op i32)
    (local.set $op (i32.load8_u (i32.add (i32.const 1024) (local.get $id))))
    (if (i32.eq (local.get $op) (i32.const 114)) ;; "r"
      (then (drop (call $down (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 116)) ;; "t"
      (then (drop (call $tree (i32.const 30)))))
    (call $send (i32.const 1024) (local.get $id) (i32.add (i32.const 1024) (local.get $id)) (local.get $len) (local.get $flags)))
)
