;; timer_storm.wat: a timer storm (issue 8 item 6). on_message and every
;; on_timer arm 100 timers with delay 0 and a 1 KiB payload each, so the
;; timers multiply as fast as they can be delivered: only max_timers, which
;; counts fired timers still waiting for an instance, bounds them.
(module
  (import "wasmgate" "set_timer" (func $set_timer (param i64 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 4096)) (then unreachable))
    (i32.const 1024))
  (func $storm (local $i i32)
    (loop $more
      (drop (call $set_timer (i64.const 0) (i32.const 8192) (i32.const 1024)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 100)))))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (call $storm)
    (i32.const 0))
  (func (export "on_timer") (param $tid i64) (param $len i32) (result i32)
    (call $storm)
    (i32.const 0))
)
