;; spin.wat: the basic case. "spin" loops forever; the host stops it by
;; setting the exported wasmgate_stop global. The module has globals of its
;; own, so the stop global must be appended after them (index 2), and an
;; export section, which must gain one entry.
(module
  (global $calls (mut i32) (i32.const 0))
  (global $k i64 (i64.const 7))
  (memory (export "memory") 1)
  (func (export "spin") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (loop $l (br $l))
    (i32.const 0))
  (func (export "calls") (result i32) (global.get $calls))
  (func (export "k") (result i64) (global.get $k))
  (export "calls_global" (global $calls))
)
