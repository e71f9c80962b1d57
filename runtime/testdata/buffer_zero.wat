;; buffer_zero.wat: wasmgate_buffer returns 0, which ABI.md §2 defines as
;; "cannot allocate". The host must refuse it (the event fails with a log
;; line naming the module) and never write the input at address 0, where
;; this guest keeps a marker that on_message would send if it ran.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "MARK")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32) (i32.const 0))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (call $send (i32.const 0) (local.get $id) (i32.const 0) (i32.const 4) (i32.const 0)))
)
