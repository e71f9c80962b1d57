;; depth.wat: calls without loops, for Options.MaxDepth and the stop check
;; at function entry. "down" recurses for ever; "nest" n is n frames deep;
;; "tree" d makes 2^(d+1)-1 calls, d+1 frames deep, with no loop; the others
;; leave their function every way there is (return, br/br_if/br_table to the
;; function's label, return_call, multi-value results), for the test that
;; the depth budget comes back whole.
(module
  (memory (export "memory") 1)
  (func $down (export "down") (param $n i32) (result i32)
    (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func $nest (export "nest") (param $n i32) (result i32)
    (if (result i32) (i32.le_s (local.get $n) (i32.const 1))
      (then (i32.const 1))
      (else (i32.add (call $nest (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func $tree (export "tree") (param $d i32) (result i32)
    (if (result i32) (i32.eqz (local.get $d))
      (then (i32.const 1))
      (else (i32.add (call $tree (i32.sub (local.get $d) (i32.const 1)))
                     (call $tree (i32.sub (local.get $d) (i32.const 1)))))))
  ;; exits leaves by a different way for x = 0..4.
  (func $exits (export "exits") (param $x i32) (result i32)
    (block $b
      (if (i32.eqz (local.get $x)) (then (return (i32.const 10))))
      (block $c
        (br_if $b (i32.eq (local.get $x) (i32.const 1))))
      (if (i32.eq (local.get $x) (i32.const 2)) (then (br 2 (i32.const 20))))
      (drop (br_if 1 (i32.const 30) (i32.eq (local.get $x) (i32.const 3)))))
    (i32.const 40)
    (local.get $x)
    (br_table 0 0))
  (func $pair (param $a i32) (param $b i32) (result i32 i32)
    (if (local.get $a) (then (return (local.get $b) (local.get $a))))
    (local.get $a) (local.get $b))
  (func (export "pairs") (param $a i32) (result i32)
    (local $x i32) (local $y i32)
    (call $pair (local.get $a) (i32.const 5))
    (local.set $y) (local.set $x)
    (i32.add (i32.mul (local.get $x) (i32.const 100)) (local.get $y)))
  ;; count makes n tail calls: a constant depth.
  (func $count (export "count") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 7))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1))))))
)
