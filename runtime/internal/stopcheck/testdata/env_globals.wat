;; env_globals.wat: the "env" module imported by imported_globals.wat.
(module
  (global (export "limit") i32 (i32.const 5))
  (global (export "counter") (mut i32) (i32.const 0))
)
