;; bench.wat: a loop-heavy function and a trivial one, for the benchmark
;; comparing plain, CloseOnContextDone and instrumented compilation.
(module
  ;; sum returns 1 + 2 + ... + n.
  (func (export "sum") (param $n i32) (result i64)
    (local $i i32) (local $acc i64)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
        (br $l)))
    (local.get $acc))
  (func (export "nop"))
)
