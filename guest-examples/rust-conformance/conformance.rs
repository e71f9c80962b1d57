//! rust-conformance: the Rust build of the conformance handler
//! (docs/SDK-CONFORMANCE.md). Every text message is a command naming a host
//! function and its arguments; the handler makes the call through the
//! `wasmgate` crate and answers "TAG ok VALUES…", "TAG err N" or "TAG bad"
//! to the sender. guest-examples/conformance (Go) is the reference; the
//! suite server/conformance_sdk_test.go checks that both answer the same.
//!
//! Where the SDK's types cannot express a bad argument the protocol sends
//! (a negative TTL or delay: `Duration`; a log level outside 0–3: `Level`),
//! the handler calls the raw import in `wasmgate::sys`, so that the host's
//! answer is what the client sees.
//!
//! Build: see guest-examples/rust/README.md (`make guests` builds it).

use std::cell::RefCell;
use std::time::Duration;

use wasmgate::{kv, sys, Client, Errno, Flags, Handshake, List, TaskId, TaskStatus, TimerId};

thread_local! {
    /// The module config on_start received (every instance gets it).
    static CONFIG: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

// ---- The protocol's encodings ------------------------------------------------

/// dec decodes an argument: "-" is empty, "*N" is N bytes of 'x', anything
/// else is percent-decoded; None if malformed.
fn dec(s: &[u8]) -> Option<Vec<u8>> {
    if s == b"-" {
        return Some(Vec::new());
    }
    if let Some(n) = s.strip_prefix(b"*") {
        let n: usize = std::str::from_utf8(n).ok()?.parse().ok()?;
        return Some(vec![b'x'; n]);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let h = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
            out.push((h(s.get(i + 1))? * 16 + h(s.get(i + 2))?) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// enc appends a value: "-" if empty, else every byte outside '!'..'~', and
/// '%', ',' and '-', as %XX.
fn enc(out: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if v.is_empty() {
        out.push(b'-');
    }
    for &c in v {
        if !(b'!'..=b'~').contains(&c) || c == b'%' || c == b',' || c == b'-' {
            out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        } else {
            out.push(c);
        }
    }
}

/// enc_list appends a list: "-" if empty, else its entries joined by ','.
fn enc_list(out: &mut Vec<u8>, l: List<'_>) {
    if l.is_empty() {
        out.push(b'-');
    }
    for (i, e) in l.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        enc(out, e);
    }
}

// ---- Arguments and answers ---------------------------------------------------

/// Bad marks a request the handler cannot parse: it answers "bad".
struct Bad;

/// The arguments of a command, read in order.
struct Args<'a>(std::slice::Split<'a, u8, fn(&u8) -> bool>);

impl<'a> Args<'a> {
    fn next(&mut self) -> Result<&'a [u8], Bad> {
        self.0.next().ok_or(Bad)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Bad> {
        dec(self.next()?).ok_or(Bad)
    }
    fn int(&mut self) -> Result<i64, Bad> {
        std::str::from_utf8(self.next()?).ok().and_then(|s| s.parse().ok()).ok_or(Bad)
    }
    fn flags(&mut self) -> Result<Flags, Bad> {
        Ok(Flags(self.int()? as u32 as i32))
    }
    /// A list argument ("-": empty; else entries split at ',').
    fn list(&mut self) -> Result<Vec<Vec<u8>>, Bad> {
        let s = self.next()?;
        if s == b"-" {
            return Ok(Vec::new());
        }
        s.split(|&c| c == b',').map(|e| dec(e).ok_or(Bad)).collect()
    }
    /// done checks that no argument is left over.
    fn done(&mut self) -> Result<(), Bad> {
        match self.0.next() {
            Some(_) => Err(Bad),
            None => Ok(()),
        }
    }
}

/// A value of an answer.
enum Val<'a> {
    None,
    Int(i64),
    Bool(bool),
    Data(&'a [u8]),
    List(List<'a>),
}

/// A non-negative TTL or delay as a Duration; None for a negative one,
/// which only the raw import can pass.
fn duration(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

fn check(rc: i32) -> wasmgate::Result<()> {
    if rc < 0 {
        Err(Errno(-rc))
    } else {
        Ok(())
    }
}

/// run executes one command and appends its answer to out.
fn run(cmd: &[u8], a: &mut Args<'_>, out: &mut Vec<u8>) -> Result<(), Bad> {
    let mut buf = Vec::new(); // a result of variable size
    let r: wasmgate::Result<Val<'_>> = match cmd {
        b"config" => {
            a.done()?;
            buf = CONFIG.with(|c| c.borrow().clone());
            Ok(Val::Data(&buf))
        }
        b"send_to_client" | b"close_client" => {
            let (id, msg, flags) = (a.bytes()?, a.bytes()?, a.flags()?);
            a.done()?;
            if cmd == b"send_to_client" {
                wasmgate::send_to_client(&id, &msg, flags)
            } else {
                wasmgate::close_client(&id, &msg, flags)
            }
            .map(|()| Val::None)
        }
        b"send_to_all" => {
            let (msg, flags, only, exclude) = (a.bytes()?, a.flags()?, a.list()?, a.list()?);
            a.done()?;
            if flags.0 & Flags::ONLY_LIST.0 != 0 {
                wasmgate::send_to_all_only(&msg, flags, &only, &exclude)
            } else {
                wasmgate::send_to_all(&msg, flags, &exclude)
            }
            .map(|n| Val::Int(n.into()))
        }
        b"send_to_uid" => {
            let (uids, msg, flags) = (a.list()?, a.bytes()?, a.flags()?);
            a.done()?;
            wasmgate::send_to_uid(&uids, &msg, flags).map(|n| Val::Int(n.into()))
        }
        b"send_to_group" => {
            let (groups, msg, flags, exclude) = (a.list()?, a.bytes()?, a.flags()?, a.list()?);
            a.done()?;
            wasmgate::send_to_group(&groups, &msg, flags, &exclude).map(|n| Val::Int(n.into()))
        }
        b"is_online" | b"is_uid_online" => {
            let x = a.bytes()?;
            a.done()?;
            if cmd == b"is_online" { wasmgate::is_online(&x) } else { wasmgate::is_uid_online(&x) }.map(Val::Bool)
        }
        b"bind_uid" | b"unbind_uid" | b"join_group" | b"leave_group" | b"set_session" | b"update_session" => {
            let (id, x) = (a.bytes()?, a.bytes()?);
            a.done()?;
            let c = Client::new(&id);
            match cmd {
                b"bind_uid" => c.bind_uid(&x),
                b"unbind_uid" => c.unbind_uid(&x),
                b"join_group" => c.join_group(&x),
                b"leave_group" => c.leave_group(&x),
                b"set_session" => c.set_session(&x),
                _ => c.update_session(&x),
            }
            .map(|()| Val::None)
        }
        b"get_client_id_by_uid" | b"get_client_id_list_by_group" | b"get_uid_list_by_group" => {
            let x = a.bytes()?;
            a.done()?;
            match cmd {
                b"get_client_id_by_uid" => wasmgate::client_ids_by_uid_into(&x, &mut buf),
                b"get_client_id_list_by_group" => wasmgate::client_ids_by_group_into(&x, &mut buf),
                _ => wasmgate::uids_by_group_into(&x, &mut buf),
            }
            .map(Val::List)
        }
        b"get_uid_by_client_id" | b"get_session" | b"kv_get" => {
            let x = a.bytes()?;
            a.done()?;
            match cmd {
                b"get_uid_by_client_id" => wasmgate::uid_by_client_id_into(&x, &mut buf),
                b"get_session" => wasmgate::session_into(&x, &mut buf),
                _ => kv::get_into(&x, &mut buf),
            }
            .map(Val::Data)
        }
        b"get_all_client_id_count" | b"get_all_uid_count" => {
            a.done()?;
            if cmd == b"get_all_client_id_count" { wasmgate::all_client_count() } else { wasmgate::all_uid_count() }.map(|n| Val::Int(n.into()))
        }
        b"get_all_client_id_list" => {
            a.done()?;
            wasmgate::all_client_ids_into(&mut buf).map(Val::List)
        }
        b"get_all_uid_list" => {
            a.done()?;
            wasmgate::all_uids_into(&mut buf).map(Val::List)
        }
        b"get_all_group_id_list" => {
            a.done()?;
            wasmgate::all_groups_into(&mut buf).map(Val::List)
        }
        b"ungroup" => {
            let g = a.bytes()?;
            a.done()?;
            wasmgate::ungroup(&g).map(|()| Val::None)
        }
        b"get_client_id_count_by_group" | b"get_uid_count_by_group" => {
            let g = a.bytes()?;
            a.done()?;
            if cmd == b"get_client_id_count_by_group" { wasmgate::client_count_by_group(&g) } else { wasmgate::uid_count_by_group(&g) }
                .map(|n| Val::Int(n.into()))
        }
        b"closing_state" => {
            // Unsupported outside on_close.
            a.done()?;
            match wasmgate::closing_into(&mut buf) {
                Ok(st) => {
                    out.extend_from_slice(b"ok ");
                    closing(out, st);
                    return Ok(());
                }
                Err(e) => Err(e),
            }
        }
        b"log" => {
            let (level, msg) = (a.int()?, a.bytes()?);
            a.done()?;
            let level = match level {
                0 => wasmgate::Level::Debug,
                1 => wasmgate::Level::Info,
                2 => wasmgate::Level::Warn,
                3 => wasmgate::Level::Error,
                // Level cannot hold another value: the raw import can.
                n => return Ok(answer(out, check(unsafe { sys::log(n as i32, msg.as_ptr(), msg.len() as u32) }).map(|()| Val::None))),
            };
            wasmgate::log(level, &msg).map(|()| Val::None)
        }
        b"now" => {
            a.done()?;
            Ok(Val::Int(wasmgate::now()))
        }
        b"kv_set" => {
            let (k, v, ttl) = (a.bytes()?, a.bytes()?, a.int()?);
            a.done()?;
            match duration(ttl) {
                Some(d) => kv::set(&k, &v, d),
                None => check(unsafe { sys::kv_set(k.as_ptr(), k.len() as u32, v.as_ptr(), v.len() as u32, ttl) }),
            }
            .map(|()| Val::None)
        }
        b"kv_delete" => {
            let k = a.bytes()?;
            a.done()?;
            kv::delete(&k).map(Val::Bool)
        }
        b"kv_incr" => {
            let (k, delta, ttl) = (a.bytes()?, a.int()?, a.int()?);
            a.done()?;
            match duration(ttl) {
                Some(d) => kv::incr(&k, delta, d),
                None => {
                    let mut n = 0i64;
                    check(unsafe { sys::kv_incr(k.as_ptr(), k.len() as u32, delta, ttl, &mut n) }).map(|()| n)
                }
            }
            .map(Val::Int)
        }
        b"kv_cas" => {
            let (k, old, new, ttl, absent) = (a.bytes()?, a.bytes()?, a.bytes()?, a.int()?, a.int()?);
            a.done()?;
            let flags = if absent == 1 { kv::ABSENT } else { 0 };
            match duration(ttl) {
                Some(d) if absent == 1 => kv::set_if_absent(&k, &new, d),
                Some(d) => kv::cas(&k, &old, &new, d),
                None => {
                    let rc = unsafe { sys::kv_cas(k.as_ptr(), k.len() as u32, old.as_ptr(), old.len() as u32, new.as_ptr(), new.len() as u32, ttl, flags) };
                    check(rc).map(|()| rc == 1)
                }
            }
            .map(Val::Bool)
        }
        b"task" => {
            let p = a.bytes()?;
            a.done()?;
            wasmgate::task(&p).map(Val::Int)
        }
        b"task_result" => {
            // Unsupported outside on_task.
            let r = a.bytes()?;
            a.done()?;
            wasmgate::task_result(&r).map(|()| Val::None)
        }
        b"set_timer" => {
            let (delay, p) = (a.int()?, a.bytes()?);
            a.done()?;
            match duration(delay) {
                Some(d) => wasmgate::set_timer(d, &p),
                None => {
                    let id = unsafe { sys::set_timer(delay, p.as_ptr(), p.len() as u32) };
                    if id < 0 {
                        Err(Errno(-id as i32))
                    } else {
                        Ok(id)
                    }
                }
            }
            .map(Val::Int)
        }
        b"clear_timer" => {
            let id = a.int()?;
            a.done()?;
            wasmgate::clear_timer(id).map(Val::Bool)
        }
        _ => return Err(Bad),
    };
    answer(out, r);
    Ok(())
}

/// answer appends "ok" and the value, or "err N".
fn answer(out: &mut Vec<u8>, r: wasmgate::Result<Val<'_>>) {
    match r {
        Err(e) => {
            out.extend_from_slice(b"err ");
            out.extend_from_slice(e.0.to_string().as_bytes());
        }
        Ok(v) => {
            out.extend_from_slice(b"ok");
            match v {
                Val::None => return,
                _ => out.push(b' '),
            }
            match v {
                Val::None => {}
                Val::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Val::Bool(b) => out.push(if b { b'1' } else { b'0' }),
                Val::Data(d) => enc(out, d),
                Val::List(l) => enc_list(out, l),
            }
        }
    }
}

/// closing appends the state as "uid session groups".
fn closing(out: &mut Vec<u8>, st: wasmgate::ClosingStateRef<'_>) {
    enc(out, st.uid);
    out.push(b' ');
    enc(out, st.session);
    out.push(b' ');
    enc_list(out, st.groups);
}

// ---- Events -----------------------------------------------------------------

fn on_start(config: &str) {
    CONFIG.with(|c| *c.borrow_mut() = config.as_bytes().to_vec());
}

/// on_handshake refuses with the status in ?refuse=N, and otherwise keeps
/// what it saw for on_connect (which may run on another instance).
fn on_handshake(h: &Handshake<'_>) -> i32 {
    if let Some(n) = h.query_value("refuse").and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()) {
        return n;
    }
    let mut seen = Vec::new();
    enc(&mut seen, h.method().as_bytes());
    seen.push(b' ');
    enc(&mut seen, h.path());
    seen.push(b' ');
    enc(&mut seen, h.query());
    seen.push(b' ');
    enc(&mut seen, h.header("x-conf").unwrap_or(b""));
    let _ = kv::set(format!("hs:{}", h.client_id()), &seen, Duration::from_secs(60));
    0
}

fn on_connect(c: Client<'_>) -> wasmgate::Result<()> {
    let key = format!("hs:{}", c.id());
    let seen = kv::get(&key).unwrap_or_else(|_| b"-".to_vec());
    kv::delete(&key)?;
    let mut hello = format!("hello {} ", c.id()).into_bytes();
    hello.extend_from_slice(&seen);
    c.send(&hello)
}

/// on_message runs one command; a binary message is echoed as binary.
fn on_message(c: Client<'_>, msg: &[u8], flags: Flags) -> wasmgate::Result<()> {
    if flags.is_binary() {
        return c.send_binary(msg);
    }
    let sp: fn(&u8) -> bool = |&b| b == b' ';
    let mut f = msg.split(sp);
    let tag = f.next().unwrap_or(b"");
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(tag);
    out.push(b' ');
    let r = match f.next() {
        Some(cmd) => run(cmd, &mut Args(f), &mut out),
        None => Err(Bad),
    };
    if r.is_err() {
        out.truncate(tag.len() + 1);
        out.extend_from_slice(b"bad");
    }
    c.send(&out)
}

/// watch sends an event line to the "watch" group: on_close, on_finish and
/// on_timer belong to no client that could be answered.
fn watch(line: &[u8]) -> wasmgate::Result<()> {
    wasmgate::send_to_group("watch", line, Flags::TEXT, ()).map(|_| ())
}

fn on_close(c: Client<'_>) -> wasmgate::Result<()> {
    let mut line = format!("closed {} ", c.id()).into_bytes();
    let mut buf = Vec::new();
    match wasmgate::closing_into(&mut buf) {
        Ok(st) => closing(&mut line, st),
        Err(e) => line.extend_from_slice(format!("err {}", e.0).as_bytes()),
    }
    watch(&line)
}

/// on_task: the payload is "ok DATA" (result DATA), "fail DATA" (result
/// DATA, the task fails) or "hang" (runs until task_timeout stops it).
fn on_task(_: TaskId, payload: &[u8]) -> i32 {
    let mut parts = payload.splitn(2, |&c| c == b' ');
    let (mode, data) = (parts.next().unwrap_or(b""), parts.next().unwrap_or(b""));
    match mode {
        b"ok" => wasmgate::task_result(data).map_or(1, |()| 0),
        b"fail" => {
            let _ = wasmgate::task_result(data);
            1
        }
        b"hang" => loop {
            wasmgate::now();
        },
        _ => {
            let mut msg = b"unknown mode ".to_vec();
            msg.extend_from_slice(mode);
            let _ = wasmgate::task_result(&msg);
            1
        }
    }
}

fn on_finish(id: TaskId, result: &[u8], status: TaskStatus) -> wasmgate::Result<()> {
    let code = match status {
        TaskStatus::Ok => 0,
        TaskStatus::Failed => 1,
        TaskStatus::Crashed => 2,
        TaskStatus::Other(c) => c,
    };
    let mut line = format!("finish {id} {code} ").into_bytes();
    enc(&mut line, result);
    watch(&line)
}

fn on_timer(id: TimerId, payload: &[u8]) -> wasmgate::Result<()> {
    let mut line = format!("timer {id} ").into_bytes();
    enc(&mut line, payload);
    watch(&line)
}

wasmgate::export! {
    on_start: on_start,
    on_handshake: on_handshake,
    on_connect: on_connect,
    on_message: on_message,
    on_close: on_close,
    on_task: on_task,
    on_finish: on_finish,
    on_timer: on_timer,
}
