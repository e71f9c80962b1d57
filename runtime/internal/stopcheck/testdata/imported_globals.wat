;; imported_globals.wat: imports two globals, defines one. The stop global
;; must get index 3 (2 imported + 1 defined) and the existing global indices
;; must keep their meaning.
(module
  (import "env" "limit" (global $limit i32))
  (import "env" "counter" (global $counter (mut i32)))
  (global $step (mut i32) (i32.const 2))
  ;; run adds step to counter until it reaches limit*step and returns it.
  (func (export "run") (result i32)
    (loop $l
      (global.set $counter (i32.add (global.get $counter) (global.get $step)))
      (br_if $l (i32.lt_u (global.get $counter) (i32.mul (global.get $limit) (global.get $step)))))
    (global.get $counter))
  (func (export "spin")
    (loop $l (br $l)))
)
