;; crafted_globals.wat — wat2wasm: --no-check (invalid on purpose)
;;
;; An echo module that declares no globals, yet on a message starting with
;; "l" loops doing global.set 0 and global.set 1: the indices of the stop
;; flag and yield counter the deadline rewrite appends. Loaded, it would
;; clear its own stop flag on every iteration, never yield, run past any
;; deadline and hold up every garbage-collector stop-the-world: Load must
;; refuse it (TestLoad_UndeclaredGlobalsRefused).
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (if (i32.eq (i32.load8_u (i32.add (i32.const 1024) (local.get $id))) (i32.const 108))
      (then (loop $forever
        (global.set 0 (i32.const 0))
        (global.set 1 (i32.const 4095))
        (br $forever))))
    (call $send (i32.const 1024) (local.get $id) (i32.add (i32.const 1024) (local.get $id)) (local.get $len) (local.get $flags)))
)
