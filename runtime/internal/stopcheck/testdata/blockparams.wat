;; blockparams.wat: loops with block parameters and results (multi-value).
;; wat2wasm encodes (param ...) block types as type indices (s33 >= 0) and a
;; lone (result i32) as the value type byte 0x7f; the stop check is inserted
;; after either and must leave the loop parameters on the stack.
(module
  ;; fib returns the n-th Fibonacci number, carrying (a, b) as loop params.
  (func (export "fib") (param $n i32) (result i32)
    (local $a i32) (local $b i32)
    i32.const 0
    i32.const 1
    loop $l (param i32 i32) (result i32 i32)
      local.set $b
      local.set $a
      local.get $n
      i32.eqz
      if (result i32 i32)
        local.get $a
        local.get $b
      else
        local.get $n
        i32.const 1
        i32.sub
        local.set $n
        local.get $b
        local.get $a
        local.get $b
        i32.add
        br $l
      end
    end
    drop)
  ;; spin_params spins forever with an i32 loop parameter.
  (func (export "spin_params") (param $x i32) (result i32)
    local.get $x
    loop $l (param i32) (result i32)
      i32.const 1
      i32.add
      br $l
    end)
  ;; loop_result is a loop with a single result that never iterates.
  (func (export "loop_result") (result i32)
    loop (result i32)
      i32.const 42
    end)
  ;; countdown counts its parameter down to zero in a (param i32) (result i32) loop.
  (func (export "countdown") (param $n i32) (result i32)
    local.get $n
    loop $l (param i32) (result i32)
      i32.const 1
      i32.sub
      local.tee $n
      local.get $n
      br_if $l
    end)
)
