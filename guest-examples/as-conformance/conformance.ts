// as-conformance: the AssemblyScript build of the conformance handler
// (docs/SDK-CONFORMANCE.md), with the SDK ../as/wasmgate.ts. Every text
// message is a command naming a host function and its arguments; the
// handler makes the call through the SDK and answers "TAG ok VALUES…",
// "TAG err N" or "TAG bad" to the sender. guest-examples/conformance (Go)
// is the reference; the suite server/conformance_sdk_test.go checks that
// every build answers the same.
//
//   → 7 kv_set greeting h%C3%A9llo 0
//   ← 7 ok
//   → 8 kv_get greeting
//   ← 8 ok h%C3%A9llo
//
// It is also an example of every part of the SDK: every event, sends, uids,
// groups, sessions, the key-value store, tasks, timers and closingState.
// Everything an event builds (decoded arguments, lists, the answer) lives in
// the SDK's per-event arena, as Bytes and Buf: nothing managed is allocated
// per message (the stub runtime never frees).
import {
  BINARY, Buf, Bytes, KV_ABSENT, ListReader, alloc, allClientCount, allClientIds, allGroups, allUidCount, allUids,
  bindUid, clearTimer, clientCountByGroup, clientIdsByGroup, clientIdsByUid, closeClient, closingState, empty,
  handshakeField, handshakeHeader, isOnline, isUidOnline, joinGroup, kvCas, kvDelete, kvGet, kvIncr, kvIncrValue,
  kvSet, lastError, leaveGroup, list1, log, now, onClose, onConnect, onFinish, onHandshake, onMessage, onStart,
  onTask, onTimer, send, sendToAll, sendToGroup, sendToUid, session, setSession, setTimer, task, taskResult, uid,
  uidCountByGroup, uidsByGroup, unbindUid, ungroup, updateSession,
} from "../as/wasmgate";
export {
  wasmgate_abi_version, wasmgate_buffer, on_start, on_handshake, on_connect, on_message, on_close, on_task,
  on_finish, on_timer,
} from "../as/wasmgate";

// The module config on_start received (every instance gets it), copied out
// of the event buffer into a block of its own.
let configPtr: usize = 0;
let configLen: u32 = 0;

// ---- The protocol's encodings ------------------------------------------------

function unhex(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10; // a-f
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10; // A-F
  return -1;
}

/** dec decodes an argument into the arena: "-" is empty, "*N" is N bytes of
 * 'x', anything else is percent-decoded; null if malformed. */
function dec(s: Bytes): Bytes | null {
  if (s.is("-")) return empty();
  if (s.len > 0 && s.byte(0) == 0x2a) { // '*'
    if (s.len == 1) return null;
    let n: u32 = 0;
    for (let i: u32 = 1; i < s.len; i++) {
      let c = s.byte(i);
      if (c < 0x30 || c > 0x39 || n > 100000000) return null;
      n = n * 10 + (c - 0x30);
    }
    let p = alloc(n);
    memory.fill(p, 0x78, n); // 'x'
    return Bytes.at(p, n);
  }
  let b = Buf.make(s.len);
  for (let i: u32 = 0; i < s.len; i++) {
    let c = s.byte(i);
    if (c == 0x25) { // '%'
      if (i + 2 >= s.len) return null;
      let hi = unhex(s.byte(i + 1)), lo = unhex(s.byte(i + 2));
      if (hi < 0 || lo < 0) return null;
      c = <u8>(hi << 4 | lo);
      i += 2;
    }
    b.byte(c);
  }
  return b.view();
}

const HEX = "0123456789ABCDEF";

/** enc appends a value: "-" if empty, else every byte outside '!'..'~', and
 * '%', ',' and '-', as %XX. */
function enc(b: Buf, v: Bytes): Buf {
  if (v.len == 0) return b.byte(0x2d);
  for (let i: u32 = 0; i < v.len; i++) {
    let c = v.byte(i);
    if (c < 0x21 || c > 0x7e || c == 0x25 || c == 0x2c || c == 0x2d) {
      b.byte(0x25).byte(<u8>HEX.charCodeAt(c >> 4)).byte(<u8>HEX.charCodeAt(c & 15));
    } else {
      b.byte(c);
    }
  }
  return b;
}

/** encList appends a list: "-" if empty, else its entries joined by ','. */
function encList(b: Buf, list: Bytes): Buf {
  if (list.len == 0) return b.byte(0x2d);
  let r = ListReader.of(list);
  let first = true;
  for (let e = r.next(); e != null; e = r.next()) {
    if (!first) b.byte(0x2c);
    enc(b, e);
    first = false;
  }
  return b;
}

/** closing appends a closing state (a list: uid, session, groups…) as
 * "UID SESSION GROUPS". */
function closing(b: Buf, st: Bytes): Buf {
  let r = ListReader.of(st);
  let u = r.next(), s = r.next();
  enc(b, u != null ? u : empty()).byte(0x20);
  enc(b, s != null ? s : empty()).byte(0x20);
  // What is left of the reader is the groups, a list of its own.
  return encList(b, Bytes.at(r.ptr, r.len));
}

// ---- Arguments ----------------------------------------------------------------

/** Args reads a request's space-separated fields in order; the first
 * problem (a missing, extra or malformed argument) sets bad. */
@unmanaged
class Args {
  p: usize;
  end: usize;
  /** more: a field is left (an empty one after a trailing space, too). */
  more: bool;
  bad: bool;

  static of(msg: Bytes): Args {
    let a = changetype<Args>(alloc(offsetof<Args>()));
    a.p = msg.ptr;
    a.end = msg.ptr + msg.len;
    a.more = true;
    a.bad = false;
    return a;
  }

  /** next returns the next field as it is (empty and bad if none is left). */
  next(): Bytes {
    if (!this.more) {
      this.bad = true;
      return empty();
    }
    let q = this.p;
    while (q < this.end && load<u8>(q) != 0x20) q++;
    let f = Bytes.at(this.p, <u32>(q - this.p));
    if (q < this.end) this.p = q + 1;
    else this.more = false;
    return f;
  }

  /** bytes decodes the next field as a byte string. */
  bytes(): Bytes {
    let v = dec(this.next());
    if (v == null) {
      this.bad = true;
      return empty();
    }
    return v;
  }

  /** num reads the next field as a decimal i64, optionally negative. */
  num(): i64 {
    let s = this.next();
    let neg = s.len > 0 && s.byte(0) == 0x2d;
    let i: u32 = neg ? 1 : 0;
    let limit: u64 = neg ? <u64>1 << 63 : (<u64>1 << 63) - 1;
    let v: u64 = 0;
    if (i == s.len) this.bad = true;
    for (; i < s.len; i++) {
      let c = s.byte(i);
      let d = <u64>(c - 0x30);
      if (c < 0x30 || c > 0x39 || v > (limit - d) / 10) {
        this.bad = true;
        return 0;
      }
      v = v * 10 + d;
    }
    return neg ? -<i64>v : <i64>v;
  }

  /** list decodes the next field ("-": no entries; else entries joined by
   * ',') into the ABI's list encoding. */
  list(): Bytes {
    let s = this.next();
    if (s.is("-")) return empty();
    let b = Buf.make(s.len + 16);
    let start: u32 = 0;
    for (let i: u32 = 0; i <= s.len; i++) {
      if (i < s.len && s.byte(i) != 0x2c) continue;
      let e = dec(s.slice(start, i));
      if (e == null) {
        this.bad = true;
        e = empty();
      }
      b.listAdd(e);
      start = i + 1;
    }
    return b.view();
  }

  /** ready reports whether every field was read and well-formed. */
  ready(): bool {
    return !this.bad && !this.more;
  }
}

// ---- Answers ------------------------------------------------------------------

// The kinds of "ok" value.
const NONE = 0, INT = 1, BOOL = 2, DATA = 3, LIST = 4;

/** answer appends "ok" and the value of kind k, or "err N" if rc < 0. A
 * DATA or LIST value of null means the helper failed: lastError() is rc. */
function answer(b: Buf, rc: i64, k: i32, v: Bytes | null): void {
  if (k >= DATA && v == null) rc = lastError();
  if (rc < 0) {
    b.str("err ").int(-rc);
    return;
  }
  b.str("ok");
  if (k == NONE) return;
  b.byte(0x20);
  if (k == INT) b.int(rc);
  else if (k == BOOL) b.byte(rc != 0 ? 0x31 : 0x30);
  else if (k == DATA) enc(b, changetype<Bytes>(v));
  else encList(b, changetype<Bytes>(v));
}

/** run executes one command with its arguments and appends the answer
 * (without the tag) to out. */
function run(cmd: Bytes, a: Args, out: Buf): void {
  let rc: i64 = 0;
  let k = NONE;
  let v: Bytes | null = null;
  if (cmd.is("config")) {
    if (!a.ready()) return bad(out);
    k = DATA;
    v = Bytes.at(configPtr, configLen);
  } else if (cmd.is("send_to_client") || cmd.is("close_client")) {
    let id = a.bytes(), msg = a.bytes(), flags = <i32>a.num();
    if (!a.ready()) return bad(out);
    rc = cmd.is("send_to_client") ? send(id, msg, flags) : closeClient(id, msg, flags);
  } else if (cmd.is("send_to_all")) {
    let msg = a.bytes(), flags = <i32>a.num(), only = a.list(), exclude = a.list();
    if (!a.ready()) return bad(out);
    rc = sendToAll(msg, flags, only, exclude);
    k = INT;
  } else if (cmd.is("send_to_uid")) {
    let uids = a.list(), msg = a.bytes(), flags = <i32>a.num();
    if (!a.ready()) return bad(out);
    rc = sendToUid(uids, msg, flags);
    k = INT;
  } else if (cmd.is("send_to_group")) {
    let groups = a.list(), msg = a.bytes(), flags = <i32>a.num(), exclude = a.list();
    if (!a.ready()) return bad(out);
    rc = sendToGroup(groups, msg, flags, exclude);
    k = INT;
  } else if (cmd.is("is_online") || cmd.is("is_uid_online")) {
    let x = a.bytes();
    if (!a.ready()) return bad(out);
    rc = cmd.is("is_online") ? isOnline(x) : isUidOnline(x);
    k = BOOL;
  } else if (cmd.is("bind_uid") || cmd.is("unbind_uid") || cmd.is("join_group") || cmd.is("leave_group") ||
    cmd.is("set_session") || cmd.is("update_session")) {
    let id = a.bytes(), x = a.bytes();
    if (!a.ready()) return bad(out);
    if (cmd.is("bind_uid")) rc = bindUid(id, x);
    else if (cmd.is("unbind_uid")) rc = unbindUid(id, x);
    else if (cmd.is("join_group")) rc = joinGroup(id, x);
    else if (cmd.is("leave_group")) rc = leaveGroup(id, x);
    else if (cmd.is("set_session")) rc = setSession(id, x);
    else rc = updateSession(id, x);
  } else if (cmd.is("get_client_id_by_uid") || cmd.is("get_client_id_list_by_group") ||
    cmd.is("get_uid_list_by_group")) {
    let x = a.bytes();
    if (!a.ready()) return bad(out);
    if (cmd.is("get_client_id_by_uid")) v = clientIdsByUid(x);
    else if (cmd.is("get_client_id_list_by_group")) v = clientIdsByGroup(x);
    else v = uidsByGroup(x);
    k = LIST;
  } else if (cmd.is("get_uid_by_client_id") || cmd.is("get_session") || cmd.is("kv_get")) {
    let x = a.bytes();
    if (!a.ready()) return bad(out);
    if (cmd.is("get_uid_by_client_id")) v = uid(x);
    else if (cmd.is("get_session")) v = session(x);
    else v = kvGet(x);
    k = DATA;
  } else if (cmd.is("get_all_client_id_count") || cmd.is("get_all_uid_count")) {
    if (!a.ready()) return bad(out);
    rc = cmd.is("get_all_client_id_count") ? allClientCount() : allUidCount();
    k = INT;
  } else if (cmd.is("get_all_client_id_list") || cmd.is("get_all_uid_list") || cmd.is("get_all_group_id_list")) {
    if (!a.ready()) return bad(out);
    if (cmd.is("get_all_client_id_list")) v = allClientIds();
    else if (cmd.is("get_all_uid_list")) v = allUids();
    else v = allGroups();
    k = LIST;
  } else if (cmd.is("ungroup")) {
    let g = a.bytes();
    if (!a.ready()) return bad(out);
    rc = ungroup(g);
  } else if (cmd.is("get_client_id_count_by_group") || cmd.is("get_uid_count_by_group")) {
    let g = a.bytes();
    if (!a.ready()) return bad(out);
    rc = cmd.is("get_client_id_count_by_group") ? clientCountByGroup(g) : uidCountByGroup(g);
    k = INT;
  } else if (cmd.is("closing_state")) { // unsupported outside on_close
    if (!a.ready()) return bad(out);
    let st = closingState();
    if (st != null) {
      closing(out.str("ok "), st);
      return;
    }
    rc = lastError();
  } else if (cmd.is("log")) {
    let level = a.num(), msg = a.bytes();
    if (!a.ready()) return bad(out);
    rc = log(<i32>level, msg);
  } else if (cmd.is("now")) {
    if (!a.ready()) return bad(out);
    rc = now();
    k = INT;
  } else if (cmd.is("kv_set")) {
    let key = a.bytes(), val = a.bytes(), ttl = a.num();
    if (!a.ready()) return bad(out);
    rc = kvSet(key, val, ttl);
  } else if (cmd.is("kv_delete")) {
    let key = a.bytes();
    if (!a.ready()) return bad(out);
    rc = kvDelete(key);
    k = BOOL;
  } else if (cmd.is("kv_incr")) {
    let key = a.bytes(), delta = a.num(), ttl = a.num();
    if (!a.ready()) return bad(out);
    rc = kvIncr(key, delta, ttl);
    if (rc >= 0) { // the new value may be negative: not an error
      out.str("ok ").int(kvIncrValue());
      return;
    }
  } else if (cmd.is("kv_cas")) {
    let key = a.bytes(), old = a.bytes(), val = a.bytes(), ttl = a.num(), absent = a.num();
    if (!a.ready()) return bad(out);
    rc = kvCas(key, old, val, ttl, absent == 1 ? KV_ABSENT : 0);
    k = BOOL;
  } else if (cmd.is("task")) {
    let p = a.bytes();
    if (!a.ready()) return bad(out);
    rc = task(p);
    k = INT;
  } else if (cmd.is("task_result")) { // unsupported outside on_task
    let r = a.bytes();
    if (!a.ready()) return bad(out);
    rc = taskResult(r);
  } else if (cmd.is("set_timer")) {
    let delay = a.num(), p = a.bytes();
    if (!a.ready()) return bad(out);
    rc = setTimer(delay, p);
    k = INT;
  } else if (cmd.is("clear_timer")) {
    let id = a.num();
    if (!a.ready()) return bad(out);
    rc = clearTimer(id);
    k = BOOL;
  } else {
    return bad(out);
  }
  answer(out, rc, k, v);
}

function bad(out: Buf): void {
  out.str("bad");
}

// ---- Events -------------------------------------------------------------------

onStart((config: Bytes): i32 => {
  if (configPtr != 0) heap.free(configPtr);
  configPtr = heap.alloc(max<u32>(config.len, 1));
  memory.copy(configPtr, config.ptr, config.len);
  configLen = config.len;
  return 0;
});

/** queryValue finds key=value in a query string (no decoding: the suite
 * sends only digits there), or null. */
function queryValue(q: Bytes, key: string): Bytes | null {
  let i: u32 = 0;
  let n = <u32>key.length;
  while (i < q.len) {
    let s = i;
    while (i < q.len && q.byte(i) != 0x26) i++; // '&'
    let part = q.slice(s, i);
    i++;
    if (part.len > n && part.byte(n) == 0x3d && part.slice(0, n).is(key)) return part.slice(n + 1, part.len);
  }
  return null;
}

/** orEmpty is b, or the empty byte string for null. */
function orEmpty(b: Bytes | null): Bytes {
  return b != null ? b : empty();
}

/** handshakeKey is "hs:<client id>", where on_handshake leaves what it saw
 * for on_connect (which may run on another instance). */
function handshakeKey(id: Bytes): Bytes {
  return Buf.make(id.len + 3).str("hs:").bytes(id).view();
}

// on_handshake refuses with the status in ?refuse=N, and otherwise keeps
// METHOD PATH QUERY X-CONF for on_connect.
onHandshake((fields: Bytes): i32 => {
  let id = orEmpty(handshakeField(fields, 0));
  let query = orEmpty(handshakeField(fields, 3));
  let refuse = queryValue(query, "refuse");
  if (refuse != null) {
    let a = Args.of(refuse);
    let n = a.num();
    if (a.ready()) return <i32>n;
  }
  let seen = Buf.make();
  enc(seen, orEmpty(handshakeField(fields, 1))).byte(0x20);
  enc(seen, orEmpty(handshakeField(fields, 2))).byte(0x20);
  enc(seen, query).byte(0x20);
  enc(seen, orEmpty(handshakeHeader(fields, "x-conf")));
  kvSet(handshakeKey(id), seen.view(), 60000);
  return 0;
});

onConnect((id: Bytes): i32 => {
  let key = handshakeKey(id);
  let seen = kvGet(key);
  kvDelete(key);
  let b = Buf.make().str("hello ").bytes(id).byte(0x20);
  if (seen != null) b.bytes(seen);
  else b.byte(0x2d);
  send(id, b.view(), 0);
  return 0;
});

// on_message runs one command; a binary message is echoed as binary.
onMessage((id: Bytes, msg: Bytes, flags: i32): i32 => {
  if (flags & BINARY) return send(id, msg, BINARY) < 0 ? 1 : 0;
  let a = Args.of(msg);
  let out = Buf.make().bytes(a.next()).byte(0x20);
  if (!a.more) bad(out);
  else run(a.next(), a, out);
  return send(id, out.view(), 0) < 0 ? 1 : 0;
});

/** watch sends an event line to the group "watch": on_close, on_finish and
 * on_timer belong to no client that could be answered. */
function watch(b: Buf): void {
  sendToGroup(list1(Bytes.of("watch")), b.view(), 0, empty());
}

onClose((id: Bytes): i32 => {
  let b = Buf.make().str("closed ").bytes(id).byte(0x20);
  let st = closingState();
  if (st != null) closing(b, st);
  else b.str("err ").int(-lastError());
  watch(b);
  return 0;
});

// on_task: the payload is "ok DATA" (result DATA), "fail DATA" (result
// DATA, the task fails) or "hang" (runs until task_timeout stops it).
onTask((taskId: i64, payload: Bytes): i32 => {
  let i: u32 = 0;
  while (i < payload.len && payload.byte(i) != 0x20) i++;
  let mode = payload.slice(0, i);
  let data = i < payload.len ? payload.slice(i + 1, payload.len) : empty();
  if (mode.is("hang")) {
    for (;;) now();
  }
  if (mode.is("ok")) return taskResult(data) < 0 ? 1 : 0;
  if (mode.is("fail")) {
    taskResult(data);
    return 1;
  }
  taskResult(Buf.make().str("unknown mode ").bytes(mode).view());
  return 1;
});

onFinish((taskId: i64, result: Bytes, status: i32): i32 => {
  let b = Buf.make().str("finish ").int(taskId).byte(0x20).int(status).byte(0x20);
  watch(enc(b, result));
  return 0;
});

onTimer((timerId: i64, payload: Bytes): i32 => {
  let b = Buf.make().str("timer ").int(timerId).byte(0x20);
  watch(enc(b, payload));
  return 0;
});
