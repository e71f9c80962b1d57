;; noexports.wat: no global section and no export section, only a start
;; function with a finite loop. Instrument must create both sections in
;; their place (global after memory, export before start).
(module
  (memory 1)
  (func $init (local $i i32)
    (loop $l
      (i32.store (i32.const 0) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10)))))
  (start $init)
)
