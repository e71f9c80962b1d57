;; stdout_flood.wat: a guest that floods the log in one event. on_message
;; looks at the first byte of the message:
;;   "f": writes 4 MiB of 64-byte lines (65536 lines) to stdout, 64 KiB per
;;        WASI fd_write call;
;;   "n": writes 4 MiB to stdout with no newline, then one newline (a single
;;        4 MiB line);
;;   "h": calls the log host function 65536 times with a 63-byte line;
;; and then sends "flooded" to the client. Any other message writes the line
;; "after flood" to stdout and is echoed back.
(module
  (import "wasmgate" "send_to_client" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0..65535: the text written; 65536: iovec {0, 65536}; 65544: nwritten;
  ;; 65552: iovec {65627, 1} (the "\n" of "after flood\n"); 66560: event buffer.
  (data (i32.const 65536) "\00\00\00\00\00\00\01\00")
  (data (i32.const 65552) "\5b\00\01\00\01\00\00\00")
  (data (i32.const 65600) "flooded")
  (data (i32.const 65616) "after flood\n")
  (data (i32.const 65632) "\50\00\01\00\0c\00\00\00") ;; iovec {65616, 12}
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_buffer") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then unreachable))
    (i32.const 66560))
  ;; write64k writes the first 64 KiB of memory to stdout 64 times.
  (func $write64k
    (local $i i32)
    (loop $more
      (drop (call $fd_write (i32.const 1) (i32.const 65536) (i32.const 1) (i32.const 65544)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 64)))))
  (func (export "on_message") (param $id i32) (param $len i32) (param $flags i32) (result i32)
    (local $op i32) (local $i i32)
    (local.set $op (i32.load8_u (i32.add (i32.const 66560) (local.get $id))))
    (block $flooded
      (if (i32.eq (local.get $op) (i32.const 102)) ;; "f"
        (then
          (memory.fill (i32.const 0) (i32.const 120) (i32.const 65536))
          (local.set $i (i32.const 63))
          (loop $nl
            (i32.store8 (local.get $i) (i32.const 10))
            (local.set $i (i32.add (local.get $i) (i32.const 64)))
            (br_if $nl (i32.lt_u (local.get $i) (i32.const 65536))))
          (call $write64k)
          (br $flooded)))
      (if (i32.eq (local.get $op) (i32.const 110)) ;; "n"
        (then
          (memory.fill (i32.const 0) (i32.const 121) (i32.const 65536))
          (call $write64k)
          (drop (call $fd_write (i32.const 1) (i32.const 65552) (i32.const 1) (i32.const 65544)))
          (br $flooded)))
      (if (i32.eq (local.get $op) (i32.const 104)) ;; "h"
        (then
          (memory.fill (i32.const 0) (i32.const 122) (i32.const 63))
          (loop $more
            (drop (call $log (i32.const 1) (i32.const 0) (i32.const 63)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $more (i32.lt_u (local.get $i) (i32.const 65536))))
          (br $flooded)))
      (drop (call $fd_write (i32.const 1) (i32.const 65632) (i32.const 1) (i32.const 65544)))
      (return (call $send (i32.const 66560) (local.get $id) (i32.add (i32.const 66560) (local.get $id)) (local.get $len) (local.get $flags))))
    (call $send (i32.const 66560) (local.get $id) (i32.const 65600) (i32.const 7) (i32.const 0)))
)
