;; init_loops.wat: _initialize never returns; loading must fail, not hang
;; (the hostile-guest suite, server/e2e_hostile_guest_test.go).
(module
  (memory (export "memory") 1)
  (func (export "_initialize") (loop $forever (br $forever)))
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param i32 i32 i32) (result i32) (i32.const 0))
)
