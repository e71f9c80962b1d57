;; closer.wat: closes its own client with a close code (close_client's
;; flags, bits 16–31). On "f": close with 4001 after the final message
;; "bye". On "x": try code 3000, which is refused, and answer the errno as
;; one digit. Anything else is echoed.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "close_client" (func $close (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "bye")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then unreachable))
    (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $op i32) (local $rc i32)
    (local.set $op (i32.load8_u (i32.add (i32.const 1024) (local.get $id))))
    (if (i32.eq (local.get $op) (i32.const 102)) ;; "f"
      (then (return (call $close (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 3) (i32.const 262209536))))) ;; 4001 << 16
    (if (i32.eq (local.get $op) (i32.const 120)) ;; "x"
      (then
        (local.set $rc (call $close (i32.const 1024) (local.get $id) (i32.const 0) (i32.const 3) (i32.const 196608000))) ;; 3000 << 16
        (i32.store8 (i32.const 16) (i32.add (i32.const 48) (i32.sub (i32.const 0) (local.get $rc))))
        (return (call $send (i32.const 1024) (local.get $id) (i32.const 16) (i32.const 1) (i32.const 0)))))
    (call $send (i32.const 1024) (local.get $id) (i32.add (i32.const 1024) (local.get $id)) (local.get $len) (local.get $flags)))
)
