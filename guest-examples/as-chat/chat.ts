// as-chat: the chat example (guest-examples/chat/main.go) in
// AssemblyScript with the SDK ../as/wasmgate.ts, speaking exactly its
// protocol: the same requests, replies, error replies, rate limit (kvIncr on
// "rate:<client id>", config "rate_limit=N"), rooms kept in the session as
// {"rooms":{"r":true}} and presence ("presence" in a join,
// {"type":"presence"}, kept under "presence:<client id>"). See
// chat/main.go's header comment for the protocol. Only the text after
// "bad json: " differs: it names the problem in this parser's words, not
// encoding/json's. A port of ../c-chat/chat.c: JSON is read and written
// without a library, on Bytes and Buf in the SDK's per-event arena, so no
// managed object is allocated per message (the stub runtime never frees).
import {
  Buf, Bytes, ERROR, ListReader, WARN, allClientCount, allClientIds, allGroups, allUidCount, allUids,
  bindUid, clientCountByGroup, clientIdsByGroup, clientIdsByUid, closeClient, empty, isOnline, isUidOnline, joinGroup,
  kvDelete, kvGet, kvIncr, kvIncrValue, kvSet, lastError, leaveGroup, list1, listContains, log, onClose, onMessage,
  onStart, send, sendToAll, sendToGroup, sendToUid, session as getSession, setSession, strerror, uid as getUid,
  uidCountByGroup, uidsByGroup, unbindUid, ungroup as hostUngroup, updateSession, alloc,
} from "../as/wasmgate";
export { wasmgate_abi_version, wasmgate_buffer, on_message, on_start, on_close } from "../as/wasmgate";

// rateLimit: the most messages a client may send per one-second window; 0:
// no limit. Every instance sets it from the module config in on_start.
let rateLimit: i64 = 20;
const RATE_WINDOW_MS: i64 = 1000;

// ---- JSON reading ----------------------------------------------------------

// jerr is the first problem of the text being read, for "bad json: …".
let jerr: string | null = null;

/** Reader reads JSON from p to end. */
@unmanaged
class Reader {
  p: usize;
  end: usize;
  depth: i32;

  static of(b: Bytes): Reader {
    let r = changetype<Reader>(alloc(offsetof<Reader>()));
    r.p = b.ptr;
    r.end = b.ptr + b.len;
    r.depth = 0;
    return r;
  }

  @inline more(): bool {
    return this.p < this.end;
  }

  @inline cur(): u8 {
    return load<u8>(this.p);
  }

  ws(): void {
    while (this.p < this.end) {
      let c = load<u8>(this.p);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.p++;
    }
  }
}

function fail(why: string): bool {
  if (jerr == null) jerr = why;
  return false;
}

function lit(r: Reader, s: string): bool {
  for (let i = 0; i < s.length; i++, r.p++) {
    if (!r.more() || r.cur() != <u8>s.charCodeAt(i)) return fail("invalid literal");
  }
  return true;
}

function hexv(c: u32): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>(c - 0x30);
  if (c >= 0x61 && c <= 0x66) return <i32>(c - 0x61 + 10);
  if (c >= 0x41 && c <= 0x46) return <i32>(c - 0x41 + 10);
  return -1;
}

// hex4 reads four hex digits at p: the value, or -1.
function hex4(p: usize): i32 {
  let v = 0;
  for (let i: usize = 0; i < 4; i++) {
    let d = hexv(load<u8>(p + i));
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

function putRune(b: Buf, c: u32): void {
  if (c < 0x80) {
    b.byte(<u8>c);
  } else if (c < 0x800) {
    b.byte(<u8>(0xc0 | (c >> 6))).byte(<u8>(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    b.byte(<u8>(0xe0 | (c >> 12))).byte(<u8>(0x80 | ((c >> 6) & 0x3f))).byte(<u8>(0x80 | (c & 0x3f)));
  } else {
    b.byte(<u8>(0xf0 | (c >> 18))).byte(<u8>(0x80 | ((c >> 12) & 0x3f)));
    b.byte(<u8>(0x80 | ((c >> 6) & 0x3f))).byte(<u8>(0x80 | (c & 0x3f)));
  }
}

// str reads a JSON string at r.p (a '"'), decoding it into out if out is
// not null. Lone surrogates become U+FFFD, as in Go.
function str(r: Reader, out: Buf | null): bool {
  if (!r.more() || r.cur() != 0x22) return fail("expected a string");
  r.p++;
  while (r.more()) {
    let c = <u32>load<u8>(r.p++);
    if (c == 0x22) return true;
    if (c < 0x20) return fail("control character in string");
    if (c != 0x5c) {
      if (out != null) out.byte(<u8>c);
      continue;
    }
    if (!r.more()) break;
    c = load<u8>(r.p++);
    switch (c) {
      case 0x22: case 0x5c: case 0x2f: break;
      case 0x62: c = 0x08; break;
      case 0x66: c = 0x0c; break;
      case 0x6e: c = 0x0a; break;
      case 0x72: c = 0x0d; break;
      case 0x74: c = 0x09; break;
      case 0x75: {
        let u = r.end - r.p >= 4 ? hex4(r.p) : -1;
        if (u < 0) return fail("invalid \\u escape");
        r.p += 4;
        if (u >= 0xd800 && u < 0xdc00) {
          let lo = -1;
          if (r.end - r.p >= 6 && load<u8>(r.p) == 0x5c && load<u8>(r.p + 1) == 0x75) lo = hex4(r.p + 2);
          if (lo >= 0xdc00 && lo < 0xe000) {
            r.p += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
          } else {
            u = 0xfffd;
          }
        } else if (u >= 0xdc00 && u < 0xe000) {
          u = 0xfffd;
        }
        if (out != null) putRune(out, <u32>u);
        continue;
      }
      default:
        return fail("invalid escape in string");
    }
    if (out != null) out.byte(<u8>c);
  }
  return fail("unterminated string");
}

function digits(r: Reader): bool {
  let s = r.p;
  while (r.more() && r.cur() >= 0x30 && r.cur() <= 0x39) r.p++;
  return r.p > s;
}

function number(r: Reader): bool {
  if (r.more() && r.cur() == 0x2d) r.p++;
  if (r.more() && r.cur() == 0x30) r.p++;
  else if (!digits(r)) return fail("invalid number");
  if (r.more() && r.cur() == 0x2e) {
    r.p++;
    if (!digits(r)) return fail("invalid number");
  }
  if (r.more() && (r.cur() == 0x65 || r.cur() == 0x45)) {
    r.p++;
    if (r.more() && (r.cur() == 0x2b || r.cur() == 0x2d)) r.p++;
    if (!digits(r)) return fail("invalid number");
  }
  return true;
}

// value skips one JSON value (validating it) after any whitespace.
function value(r: Reader): bool {
  r.ws();
  if (!r.more()) return fail("unexpected end of JSON input");
  let c = r.cur();
  if (c == 0x22) return str(r, null);
  if (c == 0x74) return lit(r, "true");
  if (c == 0x66) return lit(r, "false");
  if (c == 0x6e) return lit(r, "null");
  if (c == 0x7b || c == 0x5b) {
    let obj = c == 0x7b;
    let close: u8 = obj ? 0x7d : 0x5d;
    if (++r.depth > 1000) return fail("exceeded max depth");
    r.p++;
    r.ws();
    if (r.more() && r.cur() == close) {
      r.p++;
      r.depth--;
      return true;
    }
    for (;;) {
      if (obj) {
        r.ws();
        if (!str(r, null)) return false;
        r.ws();
        if (!r.more() || load<u8>(r.p++) != 0x3a) return fail("expected ':' after object key");
      }
      if (!value(r)) return false;
      r.ws();
      if (!r.more()) return fail("unexpected end of JSON input");
      if (r.cur() == 0x2c) {
        r.p++;
        continue;
      }
      if (load<u8>(r.p++) != close) return fail(obj ? "expected ',' or '}'" : "expected ',' or ']'");
      r.depth--;
      return true;
    }
  }
  if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return number(r);
  return fail("invalid character looking for beginning of value");
}

// valid reports whether b is exactly one JSON value (and whitespace); if
// not, jerr says why.
function valid(b: Bytes): bool {
  jerr = null;
  let r = Reader.of(b);
  if (value(r)) {
    r.ws();
    if (r.more()) fail("invalid character after top-level value");
  }
  return jerr == null;
}

// keyIs compares an object key case-insensitively (ASCII), as encoding/json
// matches struct fields.
function keyIs(k: Bytes, name: string): bool {
  if (k.len != <u32>name.length) return false;
  for (let i: u32 = 0; i < k.len; i++) {
    let a = k.byte(i);
    if (a >= 0x41 && a <= 0x5a) a += 0x20;
    if (a != <u8>name.charCodeAt(i)) return false;
  }
  return true;
}

/** Members walks the top-level object of a valid JSON text: after next()
 * returns true, key is the decoded key and raw the raw value. */
@unmanaged
class Members {
  r: Reader;
  key: Bytes;
  raw: Bytes;

  // of returns null if b is not an object.
  static of(b: Bytes): Members | null {
    let r = Reader.of(b);
    r.ws();
    if (!r.more() || r.cur() != 0x7b) return null;
    r.p++;
    let m = changetype<Members>(alloc(offsetof<Members>()));
    m.r = r;
    return m;
  }

  next(): bool {
    let r = this.r;
    r.ws();
    if (!r.more() || r.cur() == 0x7d) return false;
    if (r.cur() == 0x2c) {
      r.p++;
      r.ws();
    }
    let k = Buf.make(32);
    if (!str(r, k)) return false;
    r.ws();
    r.p++; // ':'
    r.ws();
    let s = r.p;
    if (!value(r)) return false;
    this.key = k.view();
    this.raw = Bytes.at(s, <u32>(r.p - s));
    return true;
  }
}

// ---- The request -----------------------------------------------------------

@unmanaged
class Request {
  type: Bytes;
  uid: Bytes;
  room: Bytes;
  text: Bytes;
  clientId: Bytes;
  session: Bytes;
  presence: bool;
}

let reqErr: string | null = null;

// field decodes a string field's raw value; null leaves it as it was.
function field(raw: Bytes, dst: Bytes, bad: string): Bytes {
  if (raw.len > 0 && raw.byte(0) == 0x6e) return dst;
  if (raw.len == 0 || raw.byte(0) != 0x22) {
    if (reqErr == null) reqErr = bad;
    return dst;
  }
  let b = Buf.make(raw.len);
  str(Reader.of(raw), b);
  return b.view();
}

// parse reads msg as Go's json.Unmarshal into the request struct would:
// null is an empty request, anything but an object or null is an error.
// It returns the problem, or null.
function parse(msg: Bytes, q: Request): string | null {
  if (!valid(msg)) return jerr;
  let r = Reader.of(msg);
  r.ws();
  if (r.cur() == 0x6e) return null;
  let m = Members.of(msg);
  if (m == null) return "cannot unmarshal non-object into Go value of type main.request";
  reqErr = null;
  while (m.next()) {
    let k = m.key, raw = m.raw;
    if (keyIs(k, "type")) q.type = field(raw, q.type, "cannot unmarshal into Go struct field request.type of type string");
    else if (keyIs(k, "uid")) q.uid = field(raw, q.uid, "cannot unmarshal into Go struct field request.uid of type string");
    else if (keyIs(k, "room")) q.room = field(raw, q.room, "cannot unmarshal into Go struct field request.room of type string");
    else if (keyIs(k, "text")) q.text = field(raw, q.text, "cannot unmarshal into Go struct field request.text of type string");
    else if (keyIs(k, "client_id")) q.clientId = field(raw, q.clientId, "cannot unmarshal into Go struct field request.client_id of type string");
    else if (keyIs(k, "session")) q.session = raw;
    else if (keyIs(k, "presence")) {
      let c = raw.len > 0 ? raw.byte(0) : 0;
      if (c == 0x74) q.presence = true;
      else if (c == 0x66) q.presence = false;
      else if (c != 0x6e && reqErr == null) reqErr = "cannot unmarshal into Go struct field request.presence of type bool";
    }
  }
  return reqErr;
}

// ---- JSON writing (as encoding/json: <, >, & and U+2028/9 escaped,
// invalid UTF-8 as U+FFFD) ----------------------------------------------------

// utf8Len returns the length of the valid UTF-8 sequence at p (n bytes
// left), -1 if invalid, -2/-3 for U+2028/U+2029 (escaped).
function utf8Len(p: usize, n: u32): i32 {
  let c = <u32>load<u8>(p);
  let need: u32, lo: u32, cp: u32;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c < 0xe0) {
    need = 1; lo = 0x80; cp = c & 0x1f;
  } else if (c >= 0xe0 && c < 0xf0) {
    need = 2; lo = 0x800; cp = c & 0x0f;
  } else if (c >= 0xf0 && c < 0xf5) {
    need = 3; lo = 0x10000; cp = c & 0x07;
  } else return -1;
  if (n < need + 1) return -1;
  for (let i: u32 = 1; i <= need; i++) {
    let d = <u32>load<u8>(p + i);
    if ((d & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < lo || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return -1;
  if (cp == 0x2028 || cp == 0x2029) return -2 - <i32>(cp & 1);
  return <i32>need + 1;
}

const HEX = "0123456789abcdef";

function jstr(b: Buf, s: Bytes): void {
  let p = s.ptr;
  let n = s.len;
  b.byte(0x22);
  while (n > 0) {
    let c = load<u8>(p);
    if (c >= 0x80) {
      let l = utf8Len(p, n);
      if (l > 0) {
        b.put(p, <u32>l);
        p += l;
        n -= <u32>l;
      } else if (l < -1) {
        b.str(l == -2 ? "\\u2028" : "\\u2029");
        p += 3;
        n -= 3;
      } else {
        b.str("\\ufffd");
        p++;
        n--;
      }
      continue;
    }
    p++;
    n--;
    if (c == 0x22 || c == 0x5c) b.byte(0x5c).byte(c);
    else if (c == 0x0a) b.str("\\n");
    else if (c == 0x0d) b.str("\\r");
    else if (c == 0x09) b.str("\\t");
    else if (c < 0x20 || c == 0x3c || c == 0x3e || c == 0x26) {
      b.str("\\u00").byte(<u8>HEX.charCodeAt(c >> 4)).byte(<u8>HEX.charCodeAt(c & 15));
    } else b.byte(c);
  }
  b.byte(0x22);
}

// key appends ,"k": (or "k": first: obj opens the object with '{').
function key(b: Buf, k: string): Buf {
  if (b.len > 1) b.byte(0x2c);
  return b.byte(0x22).str(k).str("\":");
}
function kstr(b: Buf, k: string, v: Bytes): void {
  jstr(key(b, k), v);
}
function kraw(b: Buf, k: string, v: Bytes): void {
  key(b, k).bytes(v);
}
function kint(b: Buf, k: string, v: i64): void {
  key(b, k).int(v);
}
function kbool(b: Buf, k: string, v: bool): void {
  key(b, k).str(v ? "true" : "false");
}
function klist(b: Buf, k: string, list: Bytes): void {
  key(b, k).byte(0x5b);
  let r = ListReader.of(list);
  let first = true;
  for (let e = r.next(); e != null; e = r.next()) {
    if (!first) b.byte(0x2c);
    first = false;
    jstr(b, e);
  }
  b.byte(0x5d);
}
function obj(type: string): Buf {
  let b = Buf.make();
  b.byte(0x7b);
  kstr(b, "type", Bytes.of(type));
  return b;
}

// ---- Replies -----------------------------------------------------------------

// Errors are negative E_* codes, or E_USER with the text in userErr.
const E_USER: i32 = -1000;
let userErr: Bytes = changetype<Bytes>(0);

function user(msg: Bytes): i32 {
  userErr = msg;
  return E_USER;
}

// errText is the Go SDK's error text for a code.
function errText(e: i32): Bytes {
  if (e == E_USER) return userErr;
  return Buf.make(64).str("wasmgate: ").str(strerror(e)).view();
}

function reply(id: Bytes, b: Buf): i32 {
  b.byte(0x7d);
  let rc = send(id, b.view(), 0);
  return rc < 0 ? rc : 0;
}

function replyError(id: Bytes, msg: Bytes): void {
  let b = obj("error");
  kstr(b, "error", msg);
  let rc = reply(id, b);
  if (rc < 0) log(WARN, Buf.make().str("chat: cannot send error to ").bytes(id).str(": ").bytes(errText(rc)).view());
}

function need(name: string, v: Bytes): i32 {
  if (v.len > 0) return 0;
  return user(Buf.make(32).str(name).str(" required").view());
}

// ---- Rooms: a sorted, duplicate-free list of Bytes ------------------------------

@unmanaged
class Rooms {
  list: usize; // Bytes pointers
  n: i32;
  cap: i32;

  static make(): Rooms {
    let rs = changetype<Rooms>(alloc(offsetof<Rooms>()));
    rs.list = 0;
    rs.n = 0;
    rs.cap = 0;
    return rs;
  }

  @inline get(i: i32): Bytes {
    return load<Bytes>(this.list + (<usize>i << alignof<usize>()));
  }

  has(k: Bytes): bool {
    for (let i = 0; i < this.n; i++) if (this.get(i).equals(k)) return true;
    return false;
  }

  add(k: Bytes): void {
    if (this.has(k)) return;
    if (this.n == this.cap) {
      let cap = this.cap > 0 ? this.cap * 2 : 16;
      let l = alloc(<u32>cap * sizeof<usize>());
      if (this.n > 0) memory.copy(l, this.list, <usize>this.n * sizeof<usize>());
      this.list = l;
      this.cap = cap;
    }
    store<Bytes>(this.list + (<usize>this.n << alignof<usize>()), k);
    this.n++;
  }

  // addTrue adds the keys of an object whose value is true.
  addTrue(o: Bytes): void {
    let m = Members.of(o);
    if (m == null) return;
    while (m.next()) {
      if (m.raw.len == 4 && m.raw.byte(0) == 0x74) this.add(m.key);
    }
  }

  sort(): void {
    for (let i = 1; i < this.n; i++) {
      for (let j = i; j > 0 && this.get(j).less(this.get(j - 1)); j--) {
        let a = this.list + (<usize>j << alignof<usize>());
        let t = load<usize>(a);
        store<usize>(a, load<usize>(a - sizeof<usize>()));
        store<usize>(a - sizeof<usize>(), t);
      }
    }
  }
}

// markRoom records in the client's session whether it is in room.
function markRoom(id: Bytes, room: Bytes, isIn: bool): i32 {
  let b = Buf.make().str("{\"rooms\":{");
  jstr(b, room);
  b.str(isIn ? ":true}}" : ":false}}");
  return updateSession(id, b.view());
}

// sessionRooms lists the rooms the client's session says it is in,
// sorted. A session whose "rooms" is not an object lists none.
function sessionRooms(id: Bytes, rs: Rooms): i32 {
  let s = getSession(id);
  if (s == null) return lastError();
  let m = Members.of(s);
  let roomsRaw = empty();
  if (m != null) {
    while (m.next()) if (keyIs(m.key, "rooms")) roomsRaw = m.raw;
  }
  if (roomsRaw.len > 0 && roomsRaw.byte(0) == 0x7b) rs.addTrue(roomsRaw);
  rs.sort();
  return 0;
}

// ---- Presence (chat/main.go's header) ---------------------------------------

function presenceKey(id: Bytes): Bytes {
  return Buf.make(32).str("presence:").bytes(id).view();
}

// presenceRooms lists the rooms the client joined with presence: the object
// {"r":true} stored under presenceKey.
function presenceRooms(id: Bytes, rs: Rooms): void {
  let v = kvGet(presenceKey(id));
  if (v != null && v.len > 0 && v.byte(0) == 0x7b) rs.addTrue(v);
}

// setPresenceRooms stores rs's rooms but skip (or deletes the key).
function setPresenceRooms(id: Bytes, rs: Rooms, skip: Bytes): i32 {
  let b = Buf.make().byte(0x7b);
  let n = 0;
  for (let i = 0; i < rs.n; i++) {
    let r = rs.get(i);
    if (r.equals(skip)) continue;
    if (n++ > 0) b.byte(0x2c);
    jstr(b, r);
    b.str(":true");
  }
  b.byte(0x7d);
  if (n == 0) {
    kvDelete(presenceKey(id));
    return 0;
  }
  let rc = kvSet(presenceKey(id), b.view(), 0);
  return rc < 0 ? rc : 0;
}

let presenceMsg: Buf = changetype<Buf>(0);

// presenceOf builds the room's presence message in presenceMsg (event
// null: none).
function presenceOf(room: Bytes, event: string | null, id: Bytes): i32 {
  let b = obj("presence");
  kstr(b, "room", room);
  if (event != null) {
    kstr(b, "event", Bytes.of(event));
    kstr(b, "client_id", id);
  }
  let uids = uidsByGroup(room);
  if (uids == null) return lastError();
  klist(b, "uids", uids);
  let n = clientCountByGroup(room);
  if (n < 0) return n;
  kint(b, "clients", n);
  b.byte(0x7d);
  presenceMsg = b;
  return 0;
}

function announce(room: Bytes, event: string, id: Bytes): i32 {
  let rc = presenceOf(room, event, id);
  if (rc < 0) return rc;
  rc = sendToGroup(list1(room), presenceMsg.view(), 0, empty());
  return rc < 0 ? rc : 0;
}

function presence(id: Bytes, q: Request): i32 {
  let rc = need("room", q.room);
  if (rc < 0) return rc;
  rc = presenceOf(q.room, null, id);
  if (rc < 0) return rc;
  rc = send(id, presenceMsg.view(), 0);
  return rc < 0 ? rc : 0;
}

function presenceClosed(id: Bytes): void {
  let rs = Rooms.make();
  presenceRooms(id, rs);
  if (rs.n == 0) return;
  kvDelete(presenceKey(id));
  rs.sort();
  for (let i = 0; i < rs.n; i++) {
    let rc = announce(rs.get(i), "close", id);
    if (rc < 0) {
      log(WARN, Buf.make().str("chat: presence of ").bytes(id).str(" in ").bytes(rs.get(i)).str(": ").bytes(errText(rc)).view());
    }
  }
}

// ---- Requests --------------------------------------------------------------------

function login(id: Bytes, q: Request): i32 {
  let rc = need("uid", q.uid);
  if (rc < 0) return rc;
  rc = bindUid(id, q.uid);
  if (rc < 0) return rc;
  let b = obj("login");
  kbool(b, "ok", true);
  kstr(b, "uid", q.uid);
  return reply(id, b);
}

function join(id: Bytes, q: Request): i32 {
  let rc = need("room", q.room);
  if (rc < 0) return rc;
  if ((rc = joinGroup(id, q.room)) < 0) return rc;
  if ((rc = markRoom(id, q.room, true)) < 0) return rc;
  let b = obj("joined");
  kstr(b, "room", q.room);
  if ((rc = reply(id, b)) < 0) return rc;
  if (!q.presence) return 0;
  let rs = Rooms.make();
  presenceRooms(id, rs);
  rs.add(q.room);
  if ((rc = setPresenceRooms(id, rs, empty())) < 0) return rc;
  return announce(q.room, "join", id);
}

function leave(id: Bytes, q: Request): i32 {
  let rc = need("room", q.room);
  if (rc < 0) return rc;
  if ((rc = leaveGroup(id, q.room)) < 0) return rc;
  if ((rc = markRoom(id, q.room, false)) < 0) return rc;
  let b = obj("left");
  kstr(b, "room", q.room);
  if ((rc = reply(id, b)) < 0) return rc;
  let rs = Rooms.make();
  presenceRooms(id, rs);
  if (!rs.has(q.room)) return 0;
  if ((rc = setPresenceRooms(id, rs, q.room)) < 0) return rc;
  return announce(q.room, "leave", id);
}

function say(id: Bytes, q: Request): i32 {
  let rs = Rooms.make();
  let rc = sessionRooms(id, rs);
  if (rc < 0) return rc;
  let u = getUid(id);
  if (u == null) return lastError();
  let sent = 0;
  for (let i = 0; i < rs.n; i++) {
    let room = rs.get(i);
    // The session may be stale: another client may have ungrouped the
    // room. Never send to a room the sender is no longer in.
    let members = clientIdsByGroup(room);
    if (members == null) return lastError();
    if (!listContains(members, id)) {
      if ((rc = markRoom(id, room, false)) < 0) return rc;
      continue;
    }
    let b = obj("say");
    kstr(b, "room", room);
    kstr(b, "from", id);
    kstr(b, "uid", u);
    kstr(b, "text", q.text);
    b.byte(0x7d);
    if ((rc = sendToGroup(list1(room), b.view(), 0, empty())) < 0) return rc;
    sent++;
  }
  return sent > 0 ? 0 : user(Bytes.of("not in any room"));
}

function toUid(id: Bytes, q: Request): i32 {
  let rc = need("uid", q.uid);
  if (rc < 0) return rc;
  let b = obj("to_uid");
  kstr(b, "from", id);
  kstr(b, "text", q.text);
  b.byte(0x7d);
  rc = sendToUid(list1(q.uid), b.view(), 0);
  return rc < 0 ? rc : 0;
}

function ungroup(q: Request): i32 {
  let rc = need("room", q.room);
  if (rc < 0) return rc;
  return hostUngroup(q.room);
}

function whoami(id: Bytes): i32 {
  let u = getUid(id);
  if (u == null) return lastError();
  let s = getSession(id);
  if (s == null) return lastError();
  let b = obj("whoami");
  kstr(b, "client_id", id);
  kstr(b, "uid", u);
  kraw(b, "session", s);
  return reply(id, b);
}

function sessionSet(id: Bytes, q: Request, update: bool): i32 {
  if (q.session.len == 0 || q.session.byte(0) != 0x7b) return user(Bytes.of("session must be a JSON object"));
  let rc = update ? updateSession(id, q.session) : setSession(id, q.session);
  if (rc < 0) return rc;
  let s = getSession(id);
  if (s == null) return lastError();
  let b = obj("session");
  kraw(b, "session", s);
  return reply(id, b);
}

function stats(id: Bytes, q: Request): i32 {
  let b = obj("stats");
  let n = allClientCount();
  if (n < 0) return n;
  kint(b, "all_clients", n);
  let l = allClientIds();
  if (l == null) return lastError();
  klist(b, "all_client_ids", l);
  if ((l = allUids()) == null) return lastError();
  klist(b, "all_uids", l);
  if ((n = allUidCount()) < 0) return n;
  kint(b, "uid_count", n);
  if ((l = allGroups()) == null) return lastError();
  klist(b, "groups", l);
  kstr(b, "room", q.room);
  let rc: Bytes = empty(), ru: Bytes = empty();
  let rcount = 0, rucount = 0;
  if (q.room.len > 0) {
    let x = clientIdsByGroup(q.room);
    if (x == null) return lastError();
    rc = x;
    if ((rcount = clientCountByGroup(q.room)) < 0) return rcount;
    let y = uidsByGroup(q.room);
    if (y == null) return lastError();
    ru = y;
    if ((rucount = uidCountByGroup(q.room)) < 0) return rucount;
  }
  klist(b, "room_clients", rc);
  kint(b, "room_count", rcount);
  klist(b, "room_uids", ru);
  kint(b, "room_uid_count", rucount);
  let uc: Bytes = empty();
  let online = 0;
  if (q.uid.len > 0) {
    kstr(b, "uid", q.uid);
    let x = clientIdsByUid(q.uid);
    if (x == null) return lastError();
    uc = x;
    if ((online = isUidOnline(q.uid)) < 0) return online;
  }
  klist(b, "uid_clients", uc);
  kbool(b, "uid_online", online != 0);
  return reply(id, b);
}

function logout(id: Bytes): i32 {
  let u = getUid(id);
  if (u == null) return lastError();
  if (u.len == 0) return user(Bytes.of("not logged in"));
  let rc = unbindUid(id, u);
  if (rc < 0) return rc;
  let b = obj("logout");
  kbool(b, "ok", true);
  kstr(b, "uid", u);
  return reply(id, b);
}

function broadcast(id: Bytes, q: Request): i32 {
  let b = obj("broadcast");
  kstr(b, "from", id);
  kstr(b, "text", q.text);
  b.byte(0x7d);
  let rc = sendToAll(b.view(), 0, empty(), list1(id));
  return rc < 0 ? rc : 0;
}

function online(id: Bytes, q: Request): i32 {
  let rc = need("client_id", q.clientId);
  if (rc < 0) return rc;
  let on = isOnline(q.clientId);
  if (on < 0) return on;
  let b = obj("online");
  kstr(b, "client_id", q.clientId);
  kbool(b, "online", on != 0);
  return reply(id, b);
}

function kick(q: Request): i32 {
  let rc = need("client_id", q.clientId);
  if (rc < 0) return rc;
  let b = obj("kicked");
  kstr(b, "error", q.text);
  b.byte(0x7d);
  return closeClient(q.clientId, b.view(), 0);
}

// ---- Events ------------------------------------------------------------------------

function rateKey(id: Bytes): Bytes {
  return Buf.make(32).str("rate:").bytes(id).view();
}

// rateLimited counts the message in the client's current window. The window
// starts with the first message: kv_incr sets the TTL only when it creates
// the key. A failure (the store is full, say) lets it through.
function rateLimited(id: Bytes): bool {
  if (rateLimit == 0) return false;
  let rc = kvIncr(rateKey(id), 1, RATE_WINDOW_MS);
  if (rc < 0) {
    log(WARN, Buf.make().str("chat: rate limit for ").bytes(id).str(": ").bytes(errText(rc)).view());
    return false;
  }
  return kvIncrValue() > rateLimit;
}

function dispatch(id: Bytes, q: Request): i32 {
  let t = q.type;
  if (t.is("login")) return login(id, q);
  if (t.is("join")) return join(id, q);
  if (t.is("leave")) return leave(id, q);
  if (t.is("say")) return say(id, q);
  if (t.is("to_uid")) return toUid(id, q);
  if (t.is("ungroup")) return ungroup(q);
  if (t.is("whoami")) return whoami(id);
  if (t.is("session_set")) return sessionSet(id, q, false);
  if (t.is("session_update")) return sessionSet(id, q, true);
  if (t.is("stats")) return stats(id, q);
  if (t.is("logout")) return logout(id);
  if (t.is("broadcast")) return broadcast(id, q);
  if (t.is("online")) return online(id, q);
  if (t.is("kick")) return kick(q);
  if (t.is("presence")) return presence(id, q);
  if (t.len == 0) return user(Bytes.of("missing type"));
  let b = Buf.make().str("unknown type ");
  jstr(b, t);
  return user(b.view());
}

onMessage((id: Bytes, msg: Bytes, flags: i32): i32 => {
  if (rateLimited(id)) {
    replyError(id, Bytes.of("rate limited"));
    return 0;
  }
  let q = changetype<Request>(alloc(offsetof<Request>()));
  let e = empty();
  q.type = e;
  q.uid = e;
  q.room = e;
  q.text = e;
  q.clientId = e;
  q.session = e;
  q.presence = false;
  let why = parse(msg, q);
  if (why != null) {
    replyError(id, Buf.make().str("bad json: ").str(why).view());
    return 0;
  }
  let rc = dispatch(id, q);
  if (rc < 0) replyError(id, errText(rc));
  return 0;
});

onClose((id: Bytes): i32 => {
  kvDelete(rateKey(id));
  presenceClosed(id);
  return 0;
});

// parseLimit reads a rate_limit value as strconv.ParseInt (base 10, an
// optional sign) and requires it to be >= 0; -1 if it is not.
function parseLimit(v: Bytes): i64 {
  let i: u32 = 0;
  let neg = false;
  let n: u64 = 0;
  if (i < v.len && (v.byte(i) == 0x2b || v.byte(i) == 0x2d)) neg = v.byte(i++) == 0x2d;
  if (i == v.len) return -1;
  for (; i < v.len; i++) {
    let c = v.byte(i);
    if (c < 0x30 || c > 0x39) return -1;
    if (n > 922337203685477580) return -1;
    n = n * 10 + <u64>(c - 0x30);
    if (n > 0x7fffffffffffffff) return -1;
  }
  if (neg && n != 0) return -1;
  return <i64>n;
}

function configError(what: string, v: Bytes): i32 {
  let m = Buf.make().str(what);
  jstr(m, v);
  log(ERROR, m.view());
  return 1; // fails the instance: the server refuses the module
}

// on_start reads the module config: space- or comma-separated key=value
// pairs, of which only rate_limit is known.
onStart((config: Bytes): i32 => {
  let i: u32 = 0;
  let n = config.len;
  while (i < n) {
    while (i < n && (config.byte(i) == 0x20 || config.byte(i) == 0x2c)) i++;
    let s = i;
    while (i < n && config.byte(i) != 0x20 && config.byte(i) != 0x2c) i++;
    if (i == s) break;
    let f = config.slice(s, i);
    let k = f, v = empty();
    for (let j: u32 = 0; j < f.len; j++) {
      if (f.byte(j) == 0x3d) {
        k = f.slice(0, j);
        v = f.slice(j + 1, f.len);
        break;
      }
    }
    if (!k.is("rate_limit")) return configError("chat config: unknown key ", k);
    let lim = parseLimit(v);
    if (lim < 0) return configError("chat config: rate_limit must be a number >= 0, not ", v);
    rateLimit = lim;
  }
  return 0;
});
