//! rust-chat: the chat example (guest-examples/chat/main.go) on the Rust
//! SDK, speaking exactly its protocol: the same requests, replies, error
//! replies, rate limit (kv_incr on "rate:<client id>", config
//! "rate_limit=N"), rooms kept in the session as {"rooms":{"r":true}} and
//! presence (a join with "presence":true announces the client's join, leave
//! and close to the room; {"type":"presence","room":"r"} answers the
//! sender; the rooms are kept in the key-value store under
//! "presence:<client id>" as {"r":true}). See chat/main.go's header comment
//! for the protocol. Only the text after
//! "bad json: " differs: it names the problem in this parser's words, not
//! encoding/json's. JSON is read and written without a library, as
//! encoding/json does (field names matched case-insensitively, null leaves a
//! field as it was, <, >, & and U+2028/9 escaped, invalid UTF-8 as U+FFFD).
//!
//! Memory: the working buffers (the reply, the session, lists) live in a
//! thread-local and are reused from message to message, so once they have
//! grown a message allocates little (a request string is borrowed from the
//! event buffer unless it has escapes).
//!
//! Build: see guest-examples/rust/README.md (`make guests` builds it).

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use wasmgate::{Client, Errno, Flags, List};

/// The most messages a client may send per one-second window; 0: no limit.
/// Every instance sets it from the module config in on_start.
static RATE_LIMIT: AtomicI64 = AtomicI64::new(20);
const RATE_WINDOW: Duration = Duration::from_secs(1);

// ---- JSON reading ----------------------------------------------------------

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
    err: Option<&'static str>,
    depth: u32,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, p: 0, err: None, depth: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.p += 1;
        }
    }

    fn fail(&mut self, why: &'static str) -> bool {
        if self.err.is_none() {
            self.err = Some(why);
        }
        false
    }

    fn lit(&mut self, s: &[u8]) -> bool {
        if self.b[self.p..].starts_with(s) {
            self.p += s.len();
            true
        } else {
            self.fail("invalid literal")
        }
    }

    /// str reads a JSON string at p (a '"'), decoding it into out if given.
    /// Lone surrogates become U+FFFD, as in Go.
    fn str(&mut self, mut out: Option<&mut Vec<u8>>) -> bool {
        if self.peek() != Some(b'"') {
            return self.fail("expected a string");
        }
        self.p += 1;
        while let Some(c) = self.peek() {
            self.p += 1;
            match c {
                b'"' => return true,
                0..=0x1f => return self.fail("control character in string"),
                b'\\' => {}
                _ => {
                    if let Some(o) = out.as_deref_mut() {
                        o.push(c);
                    }
                    continue;
                }
            }
            let e = match self.peek() {
                Some(e) => e,
                None => break,
            };
            self.p += 1;
            let d = match e {
                b'"' | b'\\' | b'/' => e,
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let mut u = match hex4(&self.b[self.p..]) {
                        Some(u) => u,
                        None => return self.fail("invalid \\u escape"),
                    };
                    self.p += 4;
                    if (0xd800..0xdc00).contains(&u) {
                        let r = &self.b[self.p..];
                        match (r.starts_with(b"\\u"), hex4(r.get(2..).unwrap_or(&[]))) {
                            (true, Some(lo)) if (0xdc00..0xe000).contains(&lo) => {
                                self.p += 6;
                                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                            }
                            _ => u = 0xfffd,
                        }
                    } else if (0xdc00..0xe000).contains(&u) {
                        u = 0xfffd;
                    }
                    if let Some(o) = out.as_deref_mut() {
                        let ch = char::from_u32(u).unwrap_or('\u{fffd}');
                        o.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    continue;
                }
                _ => return self.fail("invalid escape in string"),
            };
            if let Some(o) = out.as_deref_mut() {
                o.push(d);
            }
        }
        self.fail("unterminated string")
    }

    fn digits(&mut self) -> bool {
        let s = self.p;
        while let Some(b'0'..=b'9') = self.peek() {
            self.p += 1;
        }
        self.p > s
    }

    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.p += 1;
        }
        if self.peek() == Some(b'0') {
            self.p += 1;
        } else if !self.digits() {
            return self.fail("invalid number");
        }
        if self.peek() == Some(b'.') {
            self.p += 1;
            if !self.digits() {
                return self.fail("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.p += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.p += 1;
            }
            if !self.digits() {
                return self.fail("invalid number");
            }
        }
        true
    }

    /// value skips one JSON value (validating it) after any whitespace.
    fn value(&mut self) -> bool {
        self.ws();
        let c = match self.peek() {
            Some(c) => c,
            None => return self.fail("unexpected end of JSON input"),
        };
        match c {
            b'"' => self.str(None),
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            b'{' | b'[' => {
                let (close, obj) = if c == b'{' { (b'}', true) } else { (b']', false) };
                // 1000 levels, as c-chat (encoding/json allows 10000): the
                // recursion must fit the 128 KiB stack the Makefile links with.
                self.depth += 1;
                if self.depth > 1000 {
                    return self.fail("exceeded max depth");
                }
                self.p += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.p += 1;
                    self.depth -= 1;
                    return true;
                }
                loop {
                    if obj {
                        self.ws();
                        if !self.str(None) {
                            return false;
                        }
                        self.ws();
                        if self.peek() != Some(b':') {
                            return self.fail("expected ':' after object key");
                        }
                        self.p += 1;
                    }
                    if !self.value() {
                        return false;
                    }
                    self.ws();
                    match self.peek() {
                        None => return self.fail("unexpected end of JSON input"),
                        Some(b',') => self.p += 1,
                        Some(x) if x == close => {
                            self.p += 1;
                            self.depth -= 1;
                            return true;
                        }
                        Some(_) => return self.fail(if obj { "expected ',' or '}'" } else { "expected ',' or ']'" }),
                    }
                }
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.fail("invalid character looking for beginning of value"),
        }
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    let s = b.get(..4)?;
    let mut v = 0;
    for &c in s {
        v = v << 4 | (c as char).to_digit(16)?;
    }
    Some(v)
}

/// valid checks that b is exactly one JSON value (and whitespace).
fn valid(b: &[u8]) -> Result<(), &'static str> {
    let mut r = Reader::new(b);
    if r.value() {
        r.ws();
        if r.p != b.len() {
            r.fail("invalid character after top-level value");
        }
    }
    match r.err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// string decodes a JSON string token: borrowed when it has no escapes.
fn string(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if raw.len() >= 2 && raw[0] == b'"' && !raw.contains(&b'\\') {
        return Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    let mut out = Vec::new();
    Reader::new(raw).str(Some(&mut out)).then(|| Cow::Owned(out))
}

/// members calls f with each key (decoded) and raw value of the top-level
/// object of a valid JSON text (nothing if it is not an object).
fn members<'a>(b: &'a [u8], mut f: impl FnMut(&[u8], &'a [u8])) {
    let mut r = Reader::new(b);
    r.ws();
    if r.peek() != Some(b'{') {
        return;
    }
    r.p += 1;
    loop {
        r.ws();
        match r.peek() {
            Some(b'}') | None => return,
            Some(b',') => {
                r.p += 1;
                r.ws();
            }
            _ => {}
        }
        let ks = r.p;
        if !r.str(None) {
            return;
        }
        let key = match string(&b[ks..r.p]) {
            Some(k) => k,
            None => return,
        };
        r.ws();
        r.p += 1; // ':'
        r.ws();
        let vs = r.p;
        if !r.value() {
            return;
        }
        f(&key, &b[vs..r.p]);
    }
}

/// key_is compares an object key case-insensitively (ASCII), as
/// encoding/json matches struct fields.
fn key_is(k: &[u8], name: &str) -> bool {
    k.eq_ignore_ascii_case(name.as_bytes())
}

// ---- The request -----------------------------------------------------------

#[derive(Default)]
struct Request<'a> {
    typ: Cow<'a, [u8]>,
    uid: Cow<'a, [u8]>,
    room: Cow<'a, [u8]>,
    text: Cow<'a, [u8]>,
    client_id: Cow<'a, [u8]>,
    session: &'a [u8],
    presence: bool,
}

/// parse reads msg as Go's json.Unmarshal into the request struct would:
/// null is an empty request, anything but an object or null is an error.
fn parse(msg: &[u8]) -> Result<Request<'_>, &'static str> {
    valid(msg)?;
    let mut q = Request::default();
    let start = msg.iter().position(|c| !b" \t\r\n".contains(c)).unwrap_or(0);
    match msg[start] {
        b'n' => return Ok(q),
        b'{' => {}
        _ => return Err("cannot unmarshal non-object into Go value of type main.request"),
    }
    let mut err = None;
    members(msg, |k, raw| {
        let (dst, name) = if key_is(k, "type") {
            (&mut q.typ, "type")
        } else if key_is(k, "uid") {
            (&mut q.uid, "uid")
        } else if key_is(k, "room") {
            (&mut q.room, "room")
        } else if key_is(k, "text") {
            (&mut q.text, "text")
        } else if key_is(k, "client_id") {
            (&mut q.client_id, "client_id")
        } else {
            if key_is(k, "session") {
                q.session = raw;
            } else if key_is(k, "presence") {
                match raw[0] {
                    b't' => q.presence = true,
                    b'f' => q.presence = false,
                    b'n' => {} // null leaves the field as it was
                    _ => {
                        err.get_or_insert("cannot unmarshal into Go struct field request.presence of type bool");
                    }
                }
            }
            return;
        };
        if raw.starts_with(b"null") {
            return; // null leaves the field as it was
        }
        match string(raw) {
            Some(s) if raw[0] == b'"' => *dst = s,
            _ => {
                err.get_or_insert(match name {
                    "type" => "cannot unmarshal into Go struct field request.type of type string",
                    "uid" => "cannot unmarshal into Go struct field request.uid of type string",
                    "room" => "cannot unmarshal into Go struct field request.room of type string",
                    "text" => "cannot unmarshal into Go struct field request.text of type string",
                    _ => "cannot unmarshal into Go struct field request.client_id of type string",
                });
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(q),
    }
}

// ---- JSON writing (as encoding/json) -----------------------------------------

/// jstr appends s as a JSON string, escaped as encoding/json does.
fn jstr(b: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    b.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c >= 0x80 {
            let n = utf8_len(&s[i..]);
            match n {
                Some(3) if s[i] == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9) => {
                    b.extend_from_slice(if s[i + 2] == 0xa8 { b"\\u2028" } else { b"\\u2029" });
                    i += 3;
                }
                Some(n) => {
                    b.extend_from_slice(&s[i..i + n]);
                    i += n;
                }
                None => {
                    b.extend_from_slice(b"\\ufffd");
                    i += 1;
                }
            }
            continue;
        }
        i += 1;
        match c {
            b'"' => b.extend_from_slice(b"\\\""),
            b'\\' => b.extend_from_slice(b"\\\\"),
            b'\n' => b.extend_from_slice(b"\\n"),
            b'\r' => b.extend_from_slice(b"\\r"),
            b'\t' => b.extend_from_slice(b"\\t"),
            8 => b.extend_from_slice(b"\\b"),
            12 => b.extend_from_slice(b"\\f"),
            0..=0x1f | b'<' | b'>' | b'&' => b.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
            _ => b.push(c),
        }
    }
    b.push(b'"');
}

/// utf8_len is the length of the valid UTF-8 sequence at the start of s.
fn utf8_len(s: &[u8]) -> Option<usize> {
    let n = match s[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    core::str::from_utf8(s.get(..n)?).ok().map(|_| n)
}

/// Out builds a reply object: {"type":…, then fields, then '}'.
struct Out<'b>(&'b mut Vec<u8>);

impl<'b> Out<'b> {
    fn new(buf: &'b mut Vec<u8>, typ: &str) -> Out<'b> {
        buf.clear();
        buf.push(b'{');
        let mut o = Out(buf);
        o.str("type", typ.as_bytes());
        o
    }
    fn key(&mut self, k: &str) -> &mut Self {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(k.as_bytes());
        self.0.extend_from_slice(b"\":");
        self
    }
    fn str(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        jstr(self.0, v);
        self
    }
    fn raw(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        self.0.extend_from_slice(v);
        self
    }
    fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        self.0.extend_from_slice(v.to_string().as_bytes());
        self
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }
    fn list(&mut self, k: &str, l: List<'_>) -> &mut Self {
        self.key(k);
        self.0.push(b'[');
        for (i, e) in l.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            jstr(self.0, e);
        }
        self.0.push(b']');
        self
    }
    fn done(&mut self) -> &[u8] {
        self.0.push(b'}');
        self.0
    }
}

// ---- Errors and replies ------------------------------------------------------

/// Fail is an error reply: a text for the client, or a host error (its
/// text is the Go SDK's, "wasmgate: not found").
enum Fail {
    User(Cow<'static, [u8]>),
    Host(Errno),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Host(e)
    }
}

type Res = Result<(), Fail>;

/// fail_text is the error's text for the client or the log.
fn fail_text(f: &Fail) -> Cow<'_, [u8]> {
    match f {
        Fail::User(m) => Cow::Borrowed(&m[..]),
        Fail::Host(e) => Cow::Owned(e.to_string().into_bytes()),
    }
}

fn user(msg: &'static str) -> Fail {
    Fail::User(Cow::Borrowed(msg.as_bytes()))
}

fn need(field: &'static str, v: &[u8]) -> Res {
    if v.is_empty() {
        let mut m = field.as_bytes().to_vec();
        m.extend_from_slice(b" required");
        return Err(Fail::User(Cow::Owned(m)));
    }
    Ok(())
}

/// Bufs are the working buffers of one message, kept between messages.
#[derive(Default)]
struct Bufs {
    out: Vec<u8>,
    session: Vec<u8>,
    uid: Vec<u8>,
    list: Vec<u8>,
    kv: Vec<u8>,
}

thread_local! {
    static BUFS: RefCell<Bufs> = RefCell::new(Bufs::default());
}

fn reply_error(c: Client, out: &mut Vec<u8>, msg: &[u8]) {
    if let Err(e) = c.send(Out::new(out, "error").str("error", msg).done()) {
        wasmgate::warn(format!("chat: cannot send error to {}: {e}", c.id()));
    }
}

// ---- Rooms in the session ----------------------------------------------------

/// mark_room records in the client's session whether it is in room.
fn mark_room(c: Client, out: &mut Vec<u8>, room: &[u8], on: bool) -> Res {
    out.clear();
    out.extend_from_slice(b"{\"rooms\":{");
    jstr(out, room);
    out.extend_from_slice(if on { b":true}}" } else { b":false}}" });
    Ok(c.update_session(&out[..])?)
}

/// session_rooms lists the rooms a session says the client is in, sorted,
/// as encoding/json would decode {"rooms": map[string]bool}.
fn session_rooms(session: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut rooms: Vec<(Cow<[u8]>, bool)> = Vec::new();
    members(session, |k, raw| {
        if !key_is(k, "rooms") {
            return;
        }
        if raw.starts_with(b"null") {
            rooms.clear();
            return;
        }
        bool_members(raw, &mut rooms);
    });
    true_keys(rooms)
}

/// bool_members reads the object obj into rooms as encoding/json decodes
/// into a map[string]bool it already holds: a later key wins, a value
/// that is not a bool is skipped.
fn bool_members(obj: &[u8], rooms: &mut Vec<(Cow<'_, [u8]>, bool)>) {
    members(obj, |room, v| {
        let on = match v {
            b"true" => true,
            b"false" => false,
            _ => return, // not a bool: skipped
        };
        match rooms.iter_mut().find(|(r, _)| &r[..] == room) {
            Some(e) => e.1 = on,
            None => rooms.push((Cow::Owned(room.to_vec()), on)),
        }
    });
}

/// true_keys lists the keys set to true, sorted.
fn true_keys(rooms: Vec<(Cow<'_, [u8]>, bool)>) -> Vec<Cow<'_, [u8]>> {
    let mut out: Vec<Cow<[u8]>> = rooms.into_iter().filter(|r| r.1).map(|r| r.0).collect();
    out.sort();
    out
}

// ---- Requests ----------------------------------------------------------------

fn login(c: Client, b: &mut Bufs, q: &Request) -> Res {
    need("uid", &q.uid)?;
    c.bind_uid(&q.uid[..])?;
    Ok(c.send(Out::new(&mut b.out, "login").bool("ok", true).str("uid", &q.uid).done())?)
}

fn join(c: Client, b: &mut Bufs, q: &Request) -> Res {
    need("room", &q.room)?;
    c.join_group(&q.room[..])?;
    mark_room(c, &mut b.out, &q.room, true)?;
    c.send(Out::new(&mut b.out, "joined").str("room", &q.room).done())?;
    if !q.presence {
        return Ok(());
    }
    let mut rooms = presence_rooms(c, &mut b.kv);
    if !rooms.iter().any(|r| r[..] == q.room[..]) {
        rooms.push(Cow::Borrowed(&q.room[..]));
        rooms.sort();
    }
    set_presence_rooms(c, &rooms, &mut b.out)?;
    announce(&q.room, "join", c.id_bytes(), &mut b.out, &mut b.list)
}

fn leave(c: Client, b: &mut Bufs, q: &Request) -> Res {
    need("room", &q.room)?;
    c.leave_group(&q.room[..])?;
    mark_room(c, &mut b.out, &q.room, false)?;
    c.send(Out::new(&mut b.out, "left").str("room", &q.room).done())?;
    let mut rooms = presence_rooms(c, &mut b.kv);
    match rooms.iter().position(|r| r[..] == q.room[..]) {
        Some(i) => drop(rooms.remove(i)),
        None => return Ok(()),
    }
    set_presence_rooms(c, &rooms, &mut b.out)?;
    announce(&q.room, "leave", c.id_bytes(), &mut b.out, &mut b.list)
}

// ---- Presence ------------------------------------------------------------------

/// presence_rooms lists the rooms the client joined with presence, sorted:
/// the object {"r":true} under "presence:<client id>" in the key-value
/// store, read into buf. Any failure to read it lists none, as in chat.
fn presence_rooms<'k>(c: Client, buf: &'k mut Vec<u8>) -> Vec<Cow<'k, [u8]>> {
    let v = match with_key(b"presence:", c, move |k| wasmgate::kv::get_into(k, buf)) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    let mut rooms = Vec::new();
    if valid(v).is_ok() {
        bool_members(v, &mut rooms);
    }
    true_keys(rooms)
}

/// set_presence_rooms stores rooms (sorted) as {"r":true,…}, or deletes
/// the key if there are none.
fn set_presence_rooms(c: Client, rooms: &[Cow<[u8]>], out: &mut Vec<u8>) -> Res {
    if rooms.is_empty() {
        with_key(b"presence:", c, |k| wasmgate::kv::delete(k))?;
        return Ok(());
    }
    out.clear();
    out.push(b'{');
    for (i, r) in rooms.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        jstr(out, r);
        out.extend_from_slice(b":true");
    }
    out.push(b'}');
    Ok(with_key(b"presence:", c, |k| wasmgate::kv::set(k, &out[..], Duration::ZERO))?)
}

/// presence_of builds the room's presence message into out: event and id
/// are left out when empty (the answer to {"type":"presence"}).
fn presence_of<'o>(room: &[u8], event: &str, id: &[u8], out: &'o mut Vec<u8>, list: &mut Vec<u8>) -> Result<&'o [u8], Fail> {
    let uids = wasmgate::uids_by_group_into(room, list)?;
    let n = wasmgate::client_count_by_group(room)?;
    let mut o = Out::new(out, "presence");
    o.str("room", room);
    if !event.is_empty() {
        o.str("event", event.as_bytes());
    }
    if !id.is_empty() {
        o.str("client_id", id);
    }
    o.list("uids", uids).int("clients", n as i64).done();
    Ok(&out[..])
}

/// announce tells the room that client id joined, left or disconnected.
fn announce(room: &[u8], event: &str, id: &[u8], out: &mut Vec<u8>, list: &mut Vec<u8>) -> Res {
    let msg = presence_of(room, event, id, out, list)?;
    wasmgate::send_to_group([room], msg, Flags::TEXT, ())?;
    Ok(())
}

/// presence answers {"type":"presence","room":"r"} to the sender.
fn presence(c: Client, b: &mut Bufs, q: &Request) -> Res {
    need("room", &q.room)?;
    let msg = presence_of(&q.room, "", b"", &mut b.out, &mut b.list)?;
    Ok(c.send(msg)?)
}

/// presence_closed tells each room the closing client joined with
/// presence that it is gone (on_close: the host has already removed it).
fn presence_closed(c: Client, b: &mut Bufs) {
    let rooms = presence_rooms(c, &mut b.kv);
    if rooms.is_empty() {
        return;
    }
    let _ = with_key(b"presence:", c, |k| wasmgate::kv::delete(k));
    for r in &rooms {
        if let Err(e) = announce(r, "close", c.id_bytes(), &mut b.out, &mut b.list) {
            wasmgate::warn(format!("chat: presence of {} in {}: {}", c.id(), String::from_utf8_lossy(r), String::from_utf8_lossy(&fail_text(&e))));
        }
    }
}

fn say(c: Client, b: &mut Bufs, q: &Request) -> Res {
    let rooms = session_rooms(c.session_into(&mut b.session)?);
    let uid = c.uid_into(&mut b.uid)?;
    let mut sent = 0;
    for room in &rooms {
        // The session may be stale: another client may have ungrouped the
        // room. Never send to a room the sender is no longer in.
        if !wasmgate::client_ids_by_group_into(&room[..], &mut b.list)?.contains(c.id_bytes()) {
            mark_room(c, &mut b.out, room, false)?;
            continue;
        }
        let mut o = Out::new(&mut b.out, "say");
        let msg = o.str("room", room).str("from", c.id_bytes()).str("uid", uid).str("text", &q.text).done();
        wasmgate::send_to_group([&room[..]], msg, Flags::TEXT, ())?;
        sent += 1;
    }
    if sent == 0 {
        return Err(user("not in any room"));
    }
    Ok(())
}

fn to_uid(c: Client, b: &mut Bufs, q: &Request) -> Res {
    need("uid", &q.uid)?;
    let mut o = Out::new(&mut b.out, "to_uid");
    let msg = o.str("from", c.id_bytes()).str("text", &q.text).done();
    wasmgate::send_to_uid([&q.uid[..]], msg, Flags::TEXT)?;
    Ok(())
}

fn ungroup(q: &Request) -> Res {
    need("room", &q.room)?;
    Ok(wasmgate::ungroup(&q.room[..])?)
}

fn whoami(c: Client, b: &mut Bufs) -> Res {
    let uid = c.uid_into(&mut b.uid)?;
    let s = c.session_into(&mut b.session)?;
    Ok(c.send(Out::new(&mut b.out, "whoami").str("client_id", c.id_bytes()).str("uid", uid).raw("session", s).done())?)
}

fn set_session(c: Client, b: &mut Bufs, q: &Request, update: bool) -> Res {
    if !q.session.starts_with(b"{") {
        return Err(user("session must be a JSON object"));
    }
    if update {
        c.update_session(q.session)?;
    } else {
        c.set_session(q.session)?;
    }
    let s = c.session_into(&mut b.session)?;
    Ok(c.send(Out::new(&mut b.out, "session").raw("session", s).done())?)
}

fn stats(c: Client, b: &mut Bufs, q: &Request) -> Res {
    let mut o = Out::new(&mut b.out, "stats");
    o.int("all_clients", wasmgate::all_client_count()? as i64);
    o.list("all_client_ids", wasmgate::all_client_ids_into(&mut b.list)?);
    o.list("all_uids", wasmgate::all_uids_into(&mut b.list)?);
    o.int("uid_count", wasmgate::all_uid_count()? as i64);
    o.list("groups", wasmgate::all_groups_into(&mut b.list)?);
    o.str("room", &q.room);
    if q.room.is_empty() {
        o.list("room_clients", List::EMPTY).int("room_count", 0);
        o.list("room_uids", List::EMPTY).int("room_uid_count", 0);
    } else {
        let room = &q.room[..];
        o.list("room_clients", wasmgate::client_ids_by_group_into(room, &mut b.list)?);
        o.int("room_count", wasmgate::client_count_by_group(room)? as i64);
        o.list("room_uids", wasmgate::uids_by_group_into(room, &mut b.list)?);
        o.int("room_uid_count", wasmgate::uid_count_by_group(room)? as i64);
    }
    if q.uid.is_empty() {
        o.list("uid_clients", List::EMPTY).bool("uid_online", false);
    } else {
        let uid = &q.uid[..];
        o.str("uid", uid);
        o.list("uid_clients", wasmgate::client_ids_by_uid_into(uid, &mut b.list)?);
        o.bool("uid_online", wasmgate::is_uid_online(uid)?);
    }
    Ok(c.send(o.done())?)
}

fn logout(c: Client, b: &mut Bufs) -> Res {
    let uid = c.uid_into(&mut b.uid)?;
    if uid.is_empty() {
        return Err(user("not logged in"));
    }
    c.unbind_uid(uid)?;
    Ok(c.send(Out::new(&mut b.out, "logout").bool("ok", true).str("uid", uid).done())?)
}

fn broadcast(c: Client, b: &mut Bufs, q: &Request) -> Res {
    let mut o = Out::new(&mut b.out, "broadcast");
    let msg = o.str("from", c.id_bytes()).str("text", &q.text).done();
    wasmgate::send_to_all(msg, Flags::TEXT, [c.id_bytes()])?;
    Ok(())
}

fn online(c: Client, b: &mut Bufs, q: &Request) -> Res {
    need("client_id", &q.client_id)?;
    let on = wasmgate::is_online(&q.client_id[..])?;
    Ok(c.send(Out::new(&mut b.out, "online").str("client_id", &q.client_id).bool("online", on).done())?)
}

fn kick(b: &mut Bufs, q: &Request) -> Res {
    need("client_id", &q.client_id)?;
    let mut o = Out::new(&mut b.out, "kicked");
    let msg = o.str("error", &q.text).done();
    Ok(wasmgate::close_client(&q.client_id[..], msg, Flags::TEXT)?)
}

fn dispatch(c: Client, b: &mut Bufs, q: &Request) -> Res {
    match &q.typ[..] {
        b"login" => login(c, b, q),
        b"join" => join(c, b, q),
        b"leave" => leave(c, b, q),
        b"say" => say(c, b, q),
        b"to_uid" => to_uid(c, b, q),
        b"ungroup" => ungroup(q),
        b"whoami" => whoami(c, b),
        b"session_set" => set_session(c, b, q, false),
        b"session_update" => set_session(c, b, q, true),
        b"stats" => stats(c, b, q),
        b"logout" => logout(c, b),
        b"broadcast" => broadcast(c, b, q),
        b"online" => online(c, b, q),
        b"kick" => kick(b, q),
        b"presence" => presence(c, b, q),
        b"" => Err(user("missing type")),
        t => {
            let mut m = b"unknown type ".to_vec();
            jstr(&mut m, t);
            Err(Fail::User(Cow::Owned(m)))
        }
    }
}

// ---- Events --------------------------------------------------------------------

/// with_key calls f with the key prefix + client id, built on the stack.
fn with_key<R>(prefix: &[u8], c: Client, f: impl FnOnce(&[u8]) -> R) -> R {
    let (id, n) = (c.id_bytes(), prefix.len());
    let mut k = [0u8; 64];
    if id.len() + n > k.len() {
        return f(&[prefix, id].concat());
    }
    k[..n].copy_from_slice(prefix);
    k[n..n + id.len()].copy_from_slice(id);
    f(&k[..n + id.len()])
}

/// with_rate_key calls f with "rate:<client id>".
fn with_rate_key<R>(c: Client, f: impl FnOnce(&[u8]) -> R) -> R {
    with_key(b"rate:", c, f)
}

/// rate_limited counts the message in the client's current window. The
/// window starts with the first message: kv_incr sets the TTL only when
/// it creates the key. A failure (the store is full, say) lets it through.
fn rate_limited(c: Client) -> bool {
    let limit = RATE_LIMIT.load(Ordering::Relaxed);
    if limit == 0 {
        return false;
    }
    match with_rate_key(c, |k| wasmgate::kv::incr(k, 1, RATE_WINDOW)) {
        Ok(n) => n > limit,
        Err(e) => {
            wasmgate::warn(format!("chat: rate limit for {}: {e}", c.id()));
            false
        }
    }
}

fn on_message(c: Client, msg: &[u8], _: Flags) {
    // The buffers are taken out for the message and put back after, so
    // no borrow is held across host calls.
    let mut b = BUFS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if rate_limited(c) {
        reply_error(c, &mut b.out, b"rate limited");
    } else {
        match parse(msg) {
            Err(why) => {
                let m = [b"bad json: ", why.as_bytes()].concat();
                reply_error(c, &mut b.out, &m);
            }
            Ok(q) => {
                if let Err(e) = dispatch(c, &mut b, &q) {
                    reply_error(c, &mut b.out, &fail_text(&e));
                }
            }
        }
    }
    BUFS.with(|cell| *cell.borrow_mut() = b);
}

fn on_close(c: Client) {
    let _ = with_rate_key(c, |k| wasmgate::kv::delete(k));
    let mut b = BUFS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    presence_closed(c, &mut b);
    BUFS.with(|cell| *cell.borrow_mut() = b);
}

/// parse_limit reads a rate_limit value as strconv.ParseInt (base 10, an
/// optional sign) and requires it to be >= 0.
fn parse_limit(v: &str) -> Option<i64> {
    let n: i64 = v.parse().ok()?;
    (n >= 0).then(|| n)
}

fn quote(s: &str) -> String {
    let mut b = Vec::new();
    jstr(&mut b, s.as_bytes());
    String::from_utf8(b).unwrap_or_default()
}

/// configure reads the module config: space- or comma-separated key=value
/// pairs, of which only rate_limit is known. An error fails the instance
/// (logged): the server refuses the module rather than run it with a
/// setting it did not ask for.
fn configure(config: &str) -> Result<(), String> {
    for f in config.split(|c| c == ',' || c == ' ').filter(|f| !f.is_empty()) {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        if k != "rate_limit" {
            return Err(format!("chat config: unknown key {}", quote(k)));
        }
        match parse_limit(v) {
            Some(n) => RATE_LIMIT.store(n, Ordering::Relaxed),
            None => return Err(format!("chat config: rate_limit must be a number >= 0, not {}", quote(v))),
        }
    }
    Ok(())
}

wasmgate::export! {
    on_start: configure,
    on_message: on_message,
    on_close: on_close,
}
