;; nested.wat: nested loops. "grid" runs three nested counting loops and
;; returns the number of innermost iterations (n*n*n); "spin_inner" spins in
;; the innermost of three loops inside blocks and an if, so the stop must be
;; seen by a loop that is not the outermost one.
(module
  (func (export "grid") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $k i32) (local $count i32)
    (block $bi
      (loop $li
        (br_if $bi (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $bj
          (loop $lj
            (br_if $bj (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $k (i32.const 0))
            (block $bk
              (loop $lk
                (br_if $bk (i32.ge_u (local.get $k) (local.get $n)))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $lk)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $lj)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $li)))
    (local.get $count))
  (func (export "spin_inner") (param $x i32)
    (loop $outer
      (block $b
        (br_if $b (i32.eqz (local.get $x)))
        (if (local.get $x)
          (then
            (loop $middle
              (loop $inner (br $inner))
              (br $middle)))))
      (local.set $x (i32.const 0))
      (br_if $outer (local.get $x))))
)
