;; memory_only.wat: exports memory and no function, as clang's
;; `-Wl,--export-dynamic` without -fvisibility=default builds a handler.
;; Refused with a hint about export visibility.
(module
  (memory (export "memory") 1)
  (func $on_message (param i32 i32 i32) (result i32) (i32.const 0))
)
