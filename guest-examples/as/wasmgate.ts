// wasmgate.ts: the AssemblyScript SDK of the wasmgate handler ABI, version 1
// (abi/ABI.md). One file, no dependencies but the compiler's standard
// library. Import it from your entry file, register callbacks, and re-export
// the ABI exports you use:
//
//   import { Bytes, onMessage, send } from "./wasmgate";
//   export { wasmgate_abi_version, wasmgate_buffer, on_message } from "./wasmgate";
//   onMessage((id: Bytes, msg: Bytes, flags: i32): i32 => send(id, msg, flags & BINARY));
//
// and build with assemblyscript 0.28 (npm):
//
//   asc handler.ts --runtime stub --use abort=wasmgate/wasmgate_abort -O3 --noAssert -o handler.wasm
//
// Only the events you re-export are exported (on_message is required): the
// host then never calls the others, and `task`/`set_timer` know whether
// on_task/on_finish/on_timer exist.
//
// abort. The compiler imports env.abort for failed assertions, `throw` and
// out-of-bounds checks; wasmgate refuses imports outside `wasmgate` and
// `wasi_snapshot_preview1` (docs/SANDBOX.md). `--use abort=wasmgate/wasmgate_abort`
// replaces it with wasmgate_abort below, which logs the message through the
// ABI's `log` (level error) and traps: the host then fails the event,
// replaces the instance and keeps the client connected (ABI.md §2). The
// path is the SDK's file as the compiler names it: relative to the folder
// asc runs in, without ".ts" (`wasmgate/wasmgate_abort` when wasmgate.ts is
// there; guest-examples/Makefile uses `as/wasmgate/wasmgate_abort`).
//
// Memory. Built for `--runtime stub` (a bump allocator that never frees): no
// GC code, the smallest module, and nothing allocated per message. The SDK
// takes two blocks from the runtime: the event buffer (ABI.md §2, asked for
// by the host once per instance and again only when an event needs more)
// and a per-event scratch arena, reset before every event, in which the
// `Bytes` of event inputs, results of `session`, `kvGet`, the lists, … and
// `Buf` messages live. Both are valid until your callback returns; keep
// nothing from them in globals (copy into the key-value store instead).
// Under the stub runtime, managed objects (`new`, string concatenation,
// arrays, `toString()`) made during an event are never freed: use `Bytes`
// and `Buf` in events. If you want managed objects per event, build with
// `--runtime minimal`: the SDK then runs `__collect()` after every event, so
// nothing outlives the event unless a global holds it. Growing a block
// allocates a larger one (the old one is freed when the event ends), so a
// guest that cannot grow its memory (runtime.memory_limit_mb) traps with
// the runtime's out-of-memory abort, which the host handles like any trap.
//
// Errors. Host functions return a negative code (E_* below) on failure;
// `strerror` names it. Helpers returning data return `Bytes | null` and, on
// null, `lastError()` is the negative code.

// ---- Error codes (ABI.md §2): host functions return -code ----------------

/** A (ptr, len) pair is outside guest memory. */
export const E_BADPTR: i32 = 1;
/** A malformed argument. */
export const E_INVAL: i32 = 2;
/** The client is not connected; kv_get: the key is absent. */
export const E_NOTFOUND: i32 = 3;
/** Over a size maximum. */
export const E_TOOLARGE: i32 = 4;
/** The send queue or the task queue is full. */
export const E_QUEUEFULL: i32 = 5;
/** The registry backend or Redis did not answer in time. */
export const E_UNAVAILABLE: i32 = 6;
/** A host failure. */
export const E_INTERNAL: i32 = 7;
/** A per-module or per-client bound is reached. */
export const E_LIMIT: i32 = 8;
/** Not possible here. */
export const E_UNSUPPORTED: i32 = 9;

// Send flags (ABI.md §4), kv_cas flags (§5.6), task statuses (§5.7), log
// levels (§5.5).

/** Send flag: a binary frame (otherwise text, valid UTF-8). */
export const BINARY: i32 = 1;
/** sendToAll flag: only the clients of the `only` list. */
export const ONLY_LIST: i32 = 2;
/** kvCas flag: swap only if the key is absent. */
export const KV_ABSENT: i32 = 1;
export const TASK_OK: i32 = 0;
export const TASK_FAILED: i32 = 1;
export const TASK_CRASHED: i32 = 2;
export const DEBUG: i32 = 0;
export const INFO: i32 = 1;
export const WARN: i32 = 2;
export const ERROR: i32 = 3;

/** closeCode(c) is the closeClient flag that closes with code c (1000 or
 * 4000-4999; wasmgate.js does not reconnect after 4000-4099). */
export function closeCode(code: u32): i32 {
  return <i32>(code << 16);
}

// ---- Host functions (module "wasmgate", ABI.md §5) -----------------------
// Pointers, lengths, capacities, flags and levels are i32 (usize, u32, i32);
// ttl, delta, delay and task/timer ids are i64. Parameter names are the
// ABI's: abi/sdk_test.go checks every declaration against abi.HostFuncs().

@external("wasmgate", "send_to_client")
export declare function wasmgate_send_to_client(id_ptr: usize, id_len: u32, msg_ptr: usize, msg_len: u32, flags: i32): i32;
@external("wasmgate", "send_to_all")
export declare function wasmgate_send_to_all(msg_ptr: usize, msg_len: u32, flags: i32, only_ptr: usize, only_len: u32, exclude_ptr: usize, exclude_len: u32): i32;
@external("wasmgate", "close_client")
export declare function wasmgate_close_client(id_ptr: usize, id_len: u32, msg_ptr: usize, msg_len: u32, flags: i32): i32;
@external("wasmgate", "is_online")
export declare function wasmgate_is_online(id_ptr: usize, id_len: u32): i32;
@external("wasmgate", "bind_uid")
export declare function wasmgate_bind_uid(id_ptr: usize, id_len: u32, uid_ptr: usize, uid_len: u32): i32;
@external("wasmgate", "unbind_uid")
export declare function wasmgate_unbind_uid(id_ptr: usize, id_len: u32, uid_ptr: usize, uid_len: u32): i32;
@external("wasmgate", "is_uid_online")
export declare function wasmgate_is_uid_online(uid_ptr: usize, uid_len: u32): i32;
@external("wasmgate", "get_client_id_by_uid")
export declare function wasmgate_get_client_id_by_uid(uid_ptr: usize, uid_len: u32, out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "get_uid_by_client_id")
export declare function wasmgate_get_uid_by_client_id(id_ptr: usize, id_len: u32, out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "send_to_uid")
export declare function wasmgate_send_to_uid(uids_ptr: usize, uids_len: u32, msg_ptr: usize, msg_len: u32, flags: i32): i32;
@external("wasmgate", "join_group")
export declare function wasmgate_join_group(id_ptr: usize, id_len: u32, group_ptr: usize, group_len: u32): i32;
@external("wasmgate", "leave_group")
export declare function wasmgate_leave_group(id_ptr: usize, id_len: u32, group_ptr: usize, group_len: u32): i32;
@external("wasmgate", "ungroup")
export declare function wasmgate_ungroup(group_ptr: usize, group_len: u32): i32;
@external("wasmgate", "send_to_group")
export declare function wasmgate_send_to_group(groups_ptr: usize, groups_len: u32, msg_ptr: usize, msg_len: u32, flags: i32, exclude_ptr: usize, exclude_len: u32): i32;
@external("wasmgate", "get_client_id_count_by_group")
export declare function wasmgate_get_client_id_count_by_group(group_ptr: usize, group_len: u32): i32;
@external("wasmgate", "get_client_id_list_by_group")
export declare function wasmgate_get_client_id_list_by_group(group_ptr: usize, group_len: u32, out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "get_uid_list_by_group")
export declare function wasmgate_get_uid_list_by_group(group_ptr: usize, group_len: u32, out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "get_uid_count_by_group")
export declare function wasmgate_get_uid_count_by_group(group_ptr: usize, group_len: u32): i32;
@external("wasmgate", "get_all_client_id_count")
export declare function wasmgate_get_all_client_id_count(): i32;
@external("wasmgate", "get_all_client_id_list")
export declare function wasmgate_get_all_client_id_list(out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "get_all_uid_list")
export declare function wasmgate_get_all_uid_list(out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "get_all_uid_count")
export declare function wasmgate_get_all_uid_count(): i32;
@external("wasmgate", "get_all_group_id_list")
export declare function wasmgate_get_all_group_id_list(out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "set_session")
export declare function wasmgate_set_session(id_ptr: usize, id_len: u32, json_ptr: usize, json_len: u32): i32;
@external("wasmgate", "update_session")
export declare function wasmgate_update_session(id_ptr: usize, id_len: u32, json_ptr: usize, json_len: u32): i32;
@external("wasmgate", "get_session")
export declare function wasmgate_get_session(id_ptr: usize, id_len: u32, out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "closing_state")
export declare function wasmgate_closing_state(out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "log")
export declare function wasmgate_log(level: i32, msg_ptr: usize, msg_len: u32): i32;
@external("wasmgate", "now")
export declare function wasmgate_now(): i64;
@external("wasmgate", "kv_get")
export declare function wasmgate_kv_get(key_ptr: usize, key_len: u32, out_ptr: usize, out_cap: u32): i32;
@external("wasmgate", "kv_set")
export declare function wasmgate_kv_set(key_ptr: usize, key_len: u32, val_ptr: usize, val_len: u32, ttl_ms: i64): i32;
@external("wasmgate", "kv_delete")
export declare function wasmgate_kv_delete(key_ptr: usize, key_len: u32): i32;
@external("wasmgate", "kv_incr")
export declare function wasmgate_kv_incr(key_ptr: usize, key_len: u32, delta: i64, ttl_ms: i64, out_ptr: usize): i32;
@external("wasmgate", "kv_cas")
export declare function wasmgate_kv_cas(key_ptr: usize, key_len: u32, old_ptr: usize, old_len: u32, new_ptr: usize, new_len: u32, ttl_ms: i64, flags: i32): i32;
@external("wasmgate", "task")
export declare function wasmgate_task(payload_ptr: usize, payload_len: u32): i64;
@external("wasmgate", "task_result")
export declare function wasmgate_task_result(result_ptr: usize, result_len: u32): i32;
@external("wasmgate", "set_timer")
export declare function wasmgate_set_timer(delay_ms: i64, payload_ptr: usize, payload_len: u32): i64;
@external("wasmgate", "clear_timer")
export declare function wasmgate_clear_timer(timer_id: i64): i32;

// ---- abort ---------------------------------------------------------------

// abortBuf holds the abort message as UTF-8; static, since the arena may be
// what failed.
const abortBuf = memory.data(512);

/** wasmgate_abort replaces the compiler's env.abort (build with
 * `--use abort=wasmgate/wasmgate_abort`): it logs "abort: MSG at FILE:L:C"
 * at level error and traps. */
export function wasmgate_abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let n: usize = 0;
  n = abortPut(n, "abort: ");
  n = abortPut(n, message != null ? message : "(no message)");
  if (fileName != null) {
    n = abortPut(n, " at ");
    n = abortPut(n, fileName);
    n = abortPut(n, ":");
    n = abortNum(n, line);
    n = abortPut(n, ":");
    n = abortNum(n, column);
  }
  wasmgate_log(ERROR, abortBuf, <u32>n);
  unreachable();
}

function abortPut(n: usize, s: string): usize {
  for (let i = 0; i < s.length && n < 508; i++) {
    let c = s.charCodeAt(i);
    store<u8>(abortBuf + n++, c < 0x80 ? <u8>c : <u8>0x3f); // non-ASCII as '?'
  }
  return n;
}

function abortNum(n: usize, v: u32): usize {
  let digits: usize = 1;
  for (let x = v; x >= 10; x /= 10) digits++;
  if (n + digits > 508) return n;
  for (let i = digits; i > 0; i--) {
    store<u8>(abortBuf + n + i - 1, <u8>(0x30 + v % 10));
    v /= 10;
  }
  return n + digits;
}

// ---- The event buffer and the arena (ABI.md §2) --------------------------

// evBuf is the address wasmgate_buffer last returned: events get only
// lengths, so the guest must remember it.
let evBuf: usize = 0;
let evCap: u32 = 0;

// The arena: one block from the runtime, bumped from arenaTop, reset before
// every event. A block that fills up is replaced by one twice as large; the
// old one stays valid (its Bytes may still be in use) and is freed at the
// next reset, through the `retired` list threaded through the blocks' first
// word.
let arenaBase: usize = 0;
let arenaTop: usize = 0;
let arenaEnd: usize = 0;
let retired: usize = 0;

/** The ABI's version, 1. Re-export it from your entry file. */
export function wasmgate_abi_version(): i32 {
  return 1;
}

/** The event buffer (ABI.md §2). Re-export it from your entry file. */
export function wasmgate_buffer(min_size: u32): usize {
  if (min_size > evCap) {
    // The host calls this only between events: the old buffer is unused.
    if (evBuf != 0) heap.free(evBuf);
    evBuf = heap.alloc(min_size);
    evCap = min_size;
  }
  return evBuf;
}

// reset empties the arena before an event.
function reset(): void {
  while (retired != 0) {
    let next = load<usize>(retired);
    heap.free(retired);
    retired = next;
  }
  arenaTop = arenaBase + 8;
}

// done ends an event: under the minimal runtime, a collection.
// @ts-ignore: decorator
@inline function done(): void {
  if (ASC_RUNTIME == 1) __collect();
}

/** alloc returns n bytes of the arena (8-byte aligned), valid until the
 * event returns. */
export function alloc(n: u32): usize {
  let p = (arenaTop + 7) & ~(<usize>7);
  if (arenaBase == 0 || p + n > arenaEnd) {
    let size: usize = max<usize>(max<usize>(arenaEnd - arenaBase, 2048) * 2, <usize>n + 16);
    let block = heap.alloc(size);
    if (arenaBase != 0) {
      store<usize>(arenaBase, retired);
      retired = arenaBase;
    }
    arenaBase = block;
    arenaEnd = block + size;
    p = block + 8; // the first word links retired blocks
  }
  arenaTop = p + n;
  return p;
}

// ---- Byte strings --------------------------------------------------------

/** Bytes is a byte string (pointer, length) in guest memory, itself in the
 * arena: valid until the event returns. */
@unmanaged
export class Bytes {
  ptr: usize;
  len: u32;

  /** at makes a Bytes of len bytes at ptr. */
  static at(ptr: usize, len: u32): Bytes {
    let b = changetype<Bytes>(alloc(offsetof<Bytes>()));
    b.ptr = ptr;
    b.len = len;
    return b;
  }

  /** of makes a Bytes of s's UTF-8 (in the arena). */
  static of(s: string): Bytes {
    let n = <u32>String.UTF8.byteLength(s);
    let p = alloc(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
    return Bytes.at(p, n);
  }

  /** byte i (unchecked). */
  @inline byte(i: u32): u8 {
    return load<u8>(this.ptr + i);
  }

  /** slice returns bytes [from, to). */
  slice(from: u32, to: u32): Bytes {
    return Bytes.at(this.ptr + from, to - from);
  }

  /** equals compares byte for byte. */
  equals(o: Bytes): bool {
    return this.len == o.len && memory.compare(this.ptr, o.ptr, this.len) == 0;
  }

  /** is compares with s's UTF-8, without allocating. */
  is(s: string): bool {
    let n = s.length;
    let i: u32 = 0;
    for (let j = 0; j < n; j++) {
      let c = <u32>s.charCodeAt(j);
      if (c >= 0x80) return this.equals(Bytes.of(s));
      if (i >= this.len || load<u8>(this.ptr + i) != <u8>c) return false;
      i++;
    }
    return i == this.len;
  }

  /** less orders byte strings as Go's < on strings. */
  less(o: Bytes): bool {
    let n = min(this.len, o.len);
    let c = memory.compare(this.ptr, o.ptr, n);
    return c < 0 || (c == 0 && this.len < o.len);
  }

  /** toString decodes UTF-8 into a managed string (allocates: see Memory). */
  toString(): string {
    return String.UTF8.decodeUnsafe(this.ptr, this.len);
  }
}

/** The empty byte string. */
export function empty(): Bytes {
  return Bytes.at(0, 0);
}

/** Buf is a growable byte buffer in the arena, for messages and lists. */
@unmanaged
export class Buf {
  ptr: usize;
  len: u32;
  cap: u32;

  /** make returns an empty Buf of capacity cap, in the arena. */
  static make(cap: u32 = 256): Buf {
    let b = changetype<Buf>(alloc(offsetof<Buf>()));
    b.ptr = alloc(cap);
    b.len = 0;
    b.cap = cap;
    return b;
  }

  /** reserve makes room for n more bytes and returns where they go. */
  reserve(n: u32): usize {
    if (this.len + n > this.cap) {
      let cap = max<u32>(this.cap * 2, 64);
      while (cap < this.len + n) cap *= 2;
      let q = alloc(cap);
      memory.copy(q, this.ptr, this.len);
      this.ptr = q;
      this.cap = cap;
    }
    let p = this.ptr + this.len;
    this.len += n;
    return p;
  }

  /** put appends n bytes at p. */
  put(p: usize, n: u32): Buf {
    memory.copy(this.reserve(n), p, n);
    return this;
  }

  /** bytes appends b. */
  bytes(b: Bytes): Buf {
    return this.put(b.ptr, b.len);
  }

  /** str appends s as UTF-8. */
  str(s: string): Buf {
    let n = s.length;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (<u32>s.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      let p = this.reserve(<u32>n);
      for (let i = 0; i < n; i++) store<u8>(p + i, <u8>s.charCodeAt(i));
    } else {
      let m = <u32>String.UTF8.byteLength(s);
      String.UTF8.encodeUnsafe(changetype<usize>(s), n, this.reserve(m));
    }
    return this;
  }

  /** byte appends one byte. */
  byte(c: u8): Buf {
    store<u8>(this.reserve(1), c);
    return this;
  }

  /** int appends v in decimal. */
  int(v: i64): Buf {
    let u: u64 = v < 0 ? <u64>0 - <u64>v : <u64>v;
    let digits: u32 = 1;
    for (let x = u; x >= 10; x /= 10) digits++;
    if (v < 0) this.byte(0x2d);
    let p = this.reserve(digits);
    for (let i = digits; i > 0; i--) {
      store<u8>(p + i - 1, <u8>(0x30 + <u32>(u % 10)));
      u /= 10;
    }
    return this;
  }

  /** listAdd appends one entry to a list being built (ABI.md §2). */
  listAdd(e: Bytes): Buf {
    store<u32>(this.reserve(4), e.len);
    return this.bytes(e);
  }

  /** view returns the contents (valid until the event returns). */
  view(): Bytes {
    return Bytes.at(this.ptr, this.len);
  }
}

// ---- Lists (ABI.md §2): u32 little-endian length, then the bytes ---------

/** ListReader reads a list entry by entry. */
@unmanaged
export class ListReader {
  ptr: usize;
  len: u32;
  /** bad is set when the encoding is broken. */
  bad: bool;

  static of(list: Bytes): ListReader {
    let r = changetype<ListReader>(alloc(offsetof<ListReader>()));
    r.ptr = list.ptr;
    r.len = list.len;
    r.bad = false;
    return r;
  }

  /** next returns the next entry, or null at the end (or if bad). */
  next(): Bytes | null {
    if (this.len == 0) return null;
    if (this.len < 4) {
      this.bad = true;
      return null;
    }
    let n = load<u32>(this.ptr);
    if (n > this.len - 4) {
      this.bad = true;
      return null;
    }
    let e = Bytes.at(this.ptr + 4, n);
    this.ptr += 4 + n;
    this.len -= 4 + n;
    return e;
  }
}

/** listCount returns the number of entries, or -E_INVAL. */
export function listCount(list: Bytes): i32 {
  let r = ListReader.of(list);
  let n = 0;
  while (r.next() != null) n++;
  return r.bad ? -E_INVAL : n;
}

/** listContains reports whether the list has the entry s. */
export function listContains(list: Bytes, s: Bytes): bool {
  let r = ListReader.of(list);
  for (let e = r.next(); e != null; e = r.next()) {
    if (e.equals(s)) return true;
  }
  return false;
}

/** list1 makes a one-entry list (for sendToUid, sendToGroup, …). */
export function list1(s: Bytes): Bytes {
  return Buf.make(s.len + 4).listAdd(s).view();
}

/** handshakeField returns field i (0 client id, 1 method, 2 path, 3 query,
 * 4 remote address) of on_handshake's input, or null. */
export function handshakeField(fields: Bytes, i: i32): Bytes | null {
  let r = ListReader.of(fields);
  for (let j = 0; j < 5; j++) {
    let e = r.next();
    if (e == null) return null;
    if (j == i) return e;
  }
  return null;
}

/** handshakeHeader returns the value of the request header name (lower
 * case) in on_handshake's input, or null. */
export function handshakeHeader(fields: Bytes, name: string): Bytes | null {
  let r = ListReader.of(fields);
  for (let j = 0; j < 5; j++) if (r.next() == null) return null;
  for (;;) {
    let k = r.next();
    let v = r.next();
    if (k == null || v == null) return null;
    if (k.is(name)) return v;
  }
  return null; // not reached: asc requires it after for (;;)
}

// ---- Events: register a callback, re-export the export (ABI.md §3) -------

/** on_message: id and message; flags bit 0 (BINARY) for a binary frame. */
export type MessageFn = (id: Bytes, msg: Bytes, flags: i32) => i32;
/** on_start: the module config; non-zero fails the instance. */
export type StartFn = (config: Bytes) => i32;
/** on_handshake: the request fields (handshakeField, handshakeHeader); 0
 * accepts, 400..599 refuses with that status. */
export type HandshakeFn = (fields: Bytes) => i32;
/** on_connect, on_close: the client id. */
export type ClientFn = (id: Bytes) => i32;
/** on_task: the task id and payload; pass the result to taskResult. */
export type TaskFn = (taskId: i64, payload: Bytes) => i32;
/** on_finish: the task id, its result (or the host's error text) and status. */
export type FinishFn = (taskId: i64, result: Bytes, status: i32) => i32;
/** on_timer: the timer id and payload. */
export type TimerFn = (timerId: i64, payload: Bytes) => i32;

let messageFn: MessageFn | null = null;
let startFn: StartFn | null = null;
let handshakeFn: HandshakeFn | null = null;
let connectFn: ClientFn | null = null;
let closeFn: ClientFn | null = null;
let taskFn: TaskFn | null = null;
let finishFn: FinishFn | null = null;
let timerFn: TimerFn | null = null;

/** onMessage registers the on_message callback (required). */
export function onMessage(fn: MessageFn): void {
  messageFn = fn;
}
/** onStart registers the on_start callback (re-export on_start). */
export function onStart(fn: StartFn): void {
  startFn = fn;
}
/** onHandshake registers the on_handshake callback (re-export on_handshake). */
export function onHandshake(fn: HandshakeFn): void {
  handshakeFn = fn;
}
/** onConnect registers the on_connect callback (re-export on_connect). */
export function onConnect(fn: ClientFn): void {
  connectFn = fn;
}
/** onClose registers the on_close callback (re-export on_close). */
export function onClose(fn: ClientFn): void {
  closeFn = fn;
}
/** onTask registers the on_task callback (re-export on_task and on_finish). */
export function onTask(fn: TaskFn): void {
  taskFn = fn;
}
/** onFinish registers the on_finish callback (re-export on_task and on_finish). */
export function onFinish(fn: FinishFn): void {
  finishFn = fn;
}
/** onTimer registers the on_timer callback (re-export on_timer). */
export function onTimer(fn: TimerFn): void {
  timerFn = fn;
}

// The exports. An export whose callback is not registered returns 1 (the
// host logs a warning; on_start and on_handshake refuse).

export function on_message(id_len: u32, msg_len: u32, flags: i32): i32 {
  reset();
  let fn = messageFn;
  if (fn == null) return 1;
  let r = fn(Bytes.at(evBuf, id_len), Bytes.at(evBuf + id_len, msg_len), flags);
  done();
  return r;
}

export function on_start(config_len: u32): i32 {
  reset();
  let fn = startFn;
  if (fn == null) return 0;
  let r = fn(Bytes.at(evBuf, config_len));
  done();
  return r;
}

export function on_handshake(req_len: u32): i32 {
  reset();
  let fn = handshakeFn;
  if (fn == null) return 0;
  let r = fn(Bytes.at(evBuf, req_len));
  done();
  return r;
}

export function on_connect(id_len: u32): i32 {
  reset();
  let fn = connectFn;
  if (fn == null) return 0;
  let r = fn(Bytes.at(evBuf, id_len));
  done();
  return r;
}

export function on_close(id_len: u32): i32 {
  reset();
  let fn = closeFn;
  if (fn == null) return 0;
  let r = fn(Bytes.at(evBuf, id_len));
  done();
  return r;
}

export function on_task(task_id: i64, payload_len: u32): i32 {
  reset();
  let fn = taskFn;
  if (fn == null) return 1;
  let r = fn(task_id, Bytes.at(evBuf, payload_len));
  done();
  return r;
}

export function on_finish(task_id: i64, result_len: u32, status: i32): i32 {
  reset();
  let fn = finishFn;
  if (fn == null) return 1;
  let r = fn(task_id, Bytes.at(evBuf, result_len), status);
  done();
  return r;
}

export function on_timer(timer_id: i64, payload_len: u32): i32 {
  reset();
  let fn = timerFn;
  if (fn == null) return 1;
  let r = fn(timer_id, Bytes.at(evBuf, payload_len));
  done();
  return r;
}

// ---- Helpers over the host functions (ABI.md §5) -------------------------

let errno: i32 = 0;

/** lastError is the negative code of the last helper that returned null. */
export function lastError(): i32 {
  return errno;
}

/** strerror names a code (positive or negative), as the Go SDK does. */
export function strerror(e: i32): string {
  if (e < 0) e = -e;
  switch (e) {
    case 0: return "ok";
    case 1: return "bad pointer";
    case 2: return "invalid argument";
    case 3: return "not found";
    case 4: return "too large";
    case 5: return "queue full";
    case 6: return "unavailable";
    case 7: return "internal error";
    case 8: return "limit reached";
    case 9: return "unsupported here";
  }
  return "unknown error";
}

// 5.1 Sending

/** send sends msg to client id (flags: BINARY). 0 or a negative code. */
export function send(id: Bytes, msg: Bytes, flags: i32 = 0): i32 {
  return wasmgate_send_to_client(id.ptr, id.len, msg.ptr, msg.len, flags);
}
/** sendToAll sends to every client but exclude (a list), or with
 * ONLY_LIST only to the only list minus exclude. Returns the count queued. */
export function sendToAll(msg: Bytes, flags: i32, only: Bytes, exclude: Bytes): i32 {
  return wasmgate_send_to_all(msg.ptr, msg.len, flags, only.ptr, only.len, exclude.ptr, exclude.len);
}
/** sendToUid sends to the clients of the uids (a list). */
export function sendToUid(uids: Bytes, msg: Bytes, flags: i32 = 0): i32 {
  return wasmgate_send_to_uid(uids.ptr, uids.len, msg.ptr, msg.len, flags);
}
/** sendToGroup sends to the members of the groups (a list) but exclude (a list). */
export function sendToGroup(groups: Bytes, msg: Bytes, flags: i32, exclude: Bytes): i32 {
  return wasmgate_send_to_group(groups.ptr, groups.len, msg.ptr, msg.len, flags, exclude.ptr, exclude.len);
}
/** closeClient sends msg (if not empty) and closes; flags may carry
 * closeCode(c). */
export function closeClient(id: Bytes, msg: Bytes, flags: i32 = 0): i32 {
  return wasmgate_close_client(id.ptr, id.len, msg.ptr, msg.len, flags);
}

// 5.2 Clients and uids

/** isOnline: 1 connected, 0 not, or a negative code. */
export function isOnline(id: Bytes): i32 {
  return wasmgate_is_online(id.ptr, id.len);
}
export function bindUid(id: Bytes, uid: Bytes): i32 {
  return wasmgate_bind_uid(id.ptr, id.len, uid.ptr, uid.len);
}
export function unbindUid(id: Bytes, uid: Bytes): i32 {
  return wasmgate_unbind_uid(id.ptr, id.len, uid.ptr, uid.len);
}
/** isUidOnline: 1 if a client of uid is connected, 0 if not, or a negative code. */
export function isUidOnline(uid: Bytes): i32 {
  return wasmgate_is_uid_online(uid.ptr, uid.len);
}
export function allClientCount(): i32 {
  return wasmgate_get_all_client_id_count();
}
export function allUidCount(): i32 {
  return wasmgate_get_all_uid_count();
}

// Functions with results: fetch runs the call into the arena, growing until
// the result fits (ABI.md §2: the call returns the full size and writes
// only if it fits).
const F_UID_OF: i32 = 0, F_IDS_OF_UID: i32 = 1, F_IDS_OF_GROUP: i32 = 2, F_UIDS_OF_GROUP: i32 = 3,
  F_SESSION: i32 = 4, F_KV: i32 = 5, F_ALL_IDS: i32 = 6, F_ALL_UIDS: i32 = 7, F_ALL_GROUPS: i32 = 8,
  F_CLOSING: i32 = 9;

function call(f: i32, a: Bytes | null, p: usize, cap: u32): i32 {
  let ap: usize = 0, an: u32 = 0;
  if (a != null) {
    ap = a.ptr;
    an = a.len;
  }
  switch (f) {
    case F_UID_OF: return wasmgate_get_uid_by_client_id(ap, an, p, cap);
    case F_IDS_OF_UID: return wasmgate_get_client_id_by_uid(ap, an, p, cap);
    case F_IDS_OF_GROUP: return wasmgate_get_client_id_list_by_group(ap, an, p, cap);
    case F_UIDS_OF_GROUP: return wasmgate_get_uid_list_by_group(ap, an, p, cap);
    case F_SESSION: return wasmgate_get_session(ap, an, p, cap);
    case F_KV: return wasmgate_kv_get(ap, an, p, cap);
    case F_ALL_IDS: return wasmgate_get_all_client_id_list(p, cap);
    case F_ALL_UIDS: return wasmgate_get_all_uid_list(p, cap);
    case F_CLOSING: return wasmgate_closing_state(p, cap);
    default: return wasmgate_get_all_group_id_list(p, cap);
  }
}

function fetch(f: i32, a: Bytes | null): Bytes | null {
  let cap: u32 = 256;
  for (;;) {
    let p = alloc(cap);
    let n = call(f, a, p, cap);
    if (n < 0) {
      errno = n;
      return null;
    }
    if (<u32>n <= cap) return Bytes.at(p, <u32>n);
    cap = <u32>n;
  }
  return null; // not reached
}

/** uid: the client's uid (empty: none), or null (lastError). */
export function uid(id: Bytes): Bytes | null {
  return fetch(F_UID_OF, id);
}
/** clientIdsByUid: the list of uid's client ids, or null. */
export function clientIdsByUid(uid: Bytes): Bytes | null {
  return fetch(F_IDS_OF_UID, uid);
}
/** allClientIds, allUids: whole-gateway lists, or null. */
export function allClientIds(): Bytes | null {
  return fetch(F_ALL_IDS, null);
}
export function allUids(): Bytes | null {
  return fetch(F_ALL_UIDS, null);
}

// 5.3 Groups

export function joinGroup(id: Bytes, group: Bytes): i32 {
  return wasmgate_join_group(id.ptr, id.len, group.ptr, group.len);
}
export function leaveGroup(id: Bytes, group: Bytes): i32 {
  return wasmgate_leave_group(id.ptr, id.len, group.ptr, group.len);
}
export function ungroup(group: Bytes): i32 {
  return wasmgate_ungroup(group.ptr, group.len);
}
export function clientCountByGroup(group: Bytes): i32 {
  return wasmgate_get_client_id_count_by_group(group.ptr, group.len);
}
export function uidCountByGroup(group: Bytes): i32 {
  return wasmgate_get_uid_count_by_group(group.ptr, group.len);
}
/** clientIdsByGroup, uidsByGroup: lists, or null. */
export function clientIdsByGroup(group: Bytes): Bytes | null {
  return fetch(F_IDS_OF_GROUP, group);
}
export function uidsByGroup(group: Bytes): Bytes | null {
  return fetch(F_UIDS_OF_GROUP, group);
}
/** allGroups: the groups with at least one member, or null. */
export function allGroups(): Bytes | null {
  return fetch(F_ALL_GROUPS, null);
}

// 5.4 Sessions

export function setSession(id: Bytes, json: Bytes): i32 {
  return wasmgate_set_session(id.ptr, id.len, json.ptr, json.len);
}
export function updateSession(id: Bytes, json: Bytes): i32 {
  return wasmgate_update_session(id.ptr, id.len, json.ptr, json.len);
}
/** session: the client's session, a JSON object ({} if none), or null. */
export function session(id: Bytes): Bytes | null {
  return fetch(F_SESSION, id);
}
/**
 * closingState: during on_close, the closing client's state as a list
 * (ABI.md §5.4): its uid (empty if none), its session JSON, then its groups,
 * sorted. null outside on_close (lastError: unsupported) or if the registry
 * did not answer (unavailable). Walk it like every list result.
 */
export function closingState(): Bytes | null {
  return fetch(F_CLOSING, null);
}

// 5.5 Utilities

/** log logs msg at level (DEBUG, INFO, WARN, ERROR). */
export function log(level: i32, msg: Bytes): i32 {
  return wasmgate_log(level, msg.ptr, msg.len);
}
/** now: nanoseconds since the Unix epoch. */
export function now(): i64 {
  return wasmgate_now();
}

// 5.6 Key-value store

/** kvGet: the value, or null (lastError: -E_NOTFOUND if absent). */
export function kvGet(key: Bytes): Bytes | null {
  return fetch(F_KV, key);
}
export function kvSet(key: Bytes, val: Bytes, ttlMs: i64 = 0): i32 {
  return wasmgate_kv_set(key.ptr, key.len, val.ptr, val.len, ttlMs);
}
/** kvDelete: 1 deleted, 0 absent, or a negative code. */
export function kvDelete(key: Bytes): i32 {
  return wasmgate_kv_delete(key.ptr, key.len);
}

const incrSlot = memory.data(8, 8);

/** kvIncr adds delta (creating the key with ttlMs if absent): 0 or a
 * negative code; the new value is kvIncrValue(). */
export function kvIncr(key: Bytes, delta: i64, ttlMs: i64 = 0): i32 {
  return wasmgate_kv_incr(key.ptr, key.len, delta, ttlMs, incrSlot);
}
/** kvIncrValue is the value of the last successful kvIncr. */
export function kvIncrValue(): i64 {
  return load<i64>(incrSlot);
}
/** kvCas sets key to val if it equals old (or, with KV_ABSENT, if absent):
 * 1 swapped, 0 not, or a negative code. */
export function kvCas(key: Bytes, old: Bytes, val: Bytes, ttlMs: i64 = 0, flags: i32 = 0): i32 {
  return wasmgate_kv_cas(key.ptr, key.len, old.ptr, old.len, val.ptr, val.len, ttlMs, flags);
}

// 5.7 Tasks, 5.8 Timers

/** task queues payload for on_task: the task id (> 0) or a negative code. */
export function task(payload: Bytes): i64 {
  return wasmgate_task(payload.ptr, payload.len);
}
/** taskResult hands on_task's result to the host. */
export function taskResult(result: Bytes): i32 {
  return wasmgate_task_result(result.ptr, result.len);
}
/** setTimer arms a one-shot timer: the timer id (> 0) or a negative code. */
export function setTimer(delayMs: i64, payload: Bytes): i64 {
  return wasmgate_set_timer(delayMs, payload.ptr, payload.len);
}
/** clearTimer: 1 cleared, 0 not pending. */
export function clearTimer(timerId: i64): i32 {
  return wasmgate_clear_timer(timerId);
}
