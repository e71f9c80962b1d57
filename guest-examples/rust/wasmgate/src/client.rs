//! Sending, clients, uids, groups and sessions (ABI.md §5.1–5.4).

use crate::errno::{check, count, flag, Errno, Result};
use crate::list::{with_list, AsList, List};
use crate::{sys, Flags};

/// A connected client, by its id (20 lower-case hex digits; do not parse
/// it). Events hand you one borrowed from the event buffer; make one for
/// another client with [`Client::new`]. Copying it is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client<'a> {
    id: &'a [u8],
}

impl<'a> Client<'a> {
    /// The client with this id.
    pub fn new<S: AsRef<[u8]> + ?Sized>(id: &'a S) -> Client<'a> {
        Client { id: id.as_ref() }
    }

    /// The client id, as bytes.
    pub fn id_bytes(&self) -> &'a [u8] {
        self.id
    }

    /// The client id ("" if it is not UTF-8, which a host id always is).
    pub fn id(&self) -> &'a str {
        core::str::from_utf8(self.id).unwrap_or("")
    }

    /// Sends a text message (valid UTF-8, or [`Errno::INVALID`]).
    #[inline]
    pub fn send(&self, msg: impl AsRef<[u8]>) -> Result<()> {
        send_to_client(self.id, msg, Flags::TEXT)
    }

    /// Sends a binary message.
    #[inline]
    pub fn send_binary(&self, msg: impl AsRef<[u8]>) -> Result<()> {
        send_to_client(self.id, msg, Flags::BINARY)
    }

    /// Sends a message with flags ([`Flags::BINARY`] or [`Flags::TEXT`]).
    #[inline]
    pub fn send_flags(&self, msg: impl AsRef<[u8]>, flags: Flags) -> Result<()> {
        send_to_client(self.id, msg, flags)
    }

    /// Sends `msg` as text if it is not empty, then closes the client
    /// normally (code 1000).
    pub fn close(&self, msg: impl AsRef<[u8]>) -> Result<()> {
        close_client(self.id, msg, Flags::TEXT)
    }

    /// Like [`Client::close`] with a close code (1000 or 4000–4999).
    pub fn close_with_code(&self, code: u16, msg: impl AsRef<[u8]>) -> Result<()> {
        close_client(self.id, msg, Flags::close_code(code))
    }

    /// Reports whether the client is connected.
    pub fn is_online(&self) -> Result<bool> {
        is_online(self.id)
    }

    /// Binds the client to `uid` (replacing any other uid it had).
    pub fn bind_uid(&self, uid: impl AsRef<[u8]>) -> Result<()> {
        bind_uid(self.id, uid)
    }

    /// Unbinds the client from `uid` (no effect if bound to another).
    pub fn unbind_uid(&self, uid: impl AsRef<[u8]>) -> Result<()> {
        unbind_uid(self.id, uid)
    }

    /// The client's uid ("" if none).
    pub fn uid(&self) -> Result<String> {
        uid_by_client_id(self.id)
    }

    /// The client's uid into `out` (empty if none).
    pub fn uid_into<'b>(&self, out: &'b mut Vec<u8>) -> Result<&'b [u8]> {
        uid_by_client_id_into(self.id, out)
    }

    /// Adds the client to `group`.
    pub fn join_group(&self, group: impl AsRef<[u8]>) -> Result<()> {
        join_group(self.id, group)
    }

    /// Removes the client from `group`.
    pub fn leave_group(&self, group: impl AsRef<[u8]>) -> Result<()> {
        leave_group(self.id, group)
    }

    /// Replaces the client's session with `json` (a JSON object).
    pub fn set_session(&self, json: impl AsRef<[u8]>) -> Result<()> {
        set_session(self.id, json)
    }

    /// Merges `json` (a JSON object) into the client's session.
    pub fn update_session(&self, json: impl AsRef<[u8]>) -> Result<()> {
        update_session(self.id, json)
    }

    /// The client's session, a JSON object (`{}` if none).
    pub fn session(&self) -> Result<String> {
        session(self.id)
    }

    /// The client's session into `out`.
    pub fn session_into<'b>(&self, out: &'b mut Vec<u8>) -> Result<&'b [u8]> {
        session_into(self.id, out)
    }
}

#[inline(always)]
pub(crate) fn pl(b: &[u8]) -> (*const u8, u32) {
    (b.as_ptr(), b.len() as u32)
}

/// fetch_into runs a host call that follows the (out_ptr, out_cap) rule of
/// ABI.md §2 into out, growing it until the result fits.
pub(crate) fn fetch_into<'b>(out: &'b mut Vec<u8>, mut call: impl FnMut(*mut u8, u32) -> i32) -> Result<&'b [u8]> {
    out.clear();
    if out.capacity() < 256 {
        out.reserve(256);
    }
    loop {
        let cap = out.capacity();
        let n = call(out.as_mut_ptr(), cap.min(u32::MAX as usize) as u32);
        if n < 0 {
            return Err(Errno(-n));
        }
        let n = n as usize;
        if n <= cap {
            // Safety: the host wrote n <= capacity bytes at out's pointer.
            unsafe { out.set_len(n) };
            return Ok(&out[..]);
        }
        out.reserve(n); // len is 0: the capacity becomes at least n
    }
}

fn fetch_string(call: impl FnMut(*mut u8, u32) -> i32) -> Result<String> {
    let mut v = Vec::new();
    fetch_into(&mut v, call)?;
    Ok(String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn fetch_list(call: impl FnMut(*mut u8, u32) -> i32) -> Result<Vec<String>> {
    let mut v = Vec::new();
    Ok(List::from_encoded(fetch_into(&mut v, call)?).to_strings())
}

/// Sends `msg` to the client `id` (`send_to_client`).
#[inline]
pub fn send_to_client(id: impl AsRef<[u8]>, msg: impl AsRef<[u8]>, flags: Flags) -> Result<()> {
    let ((ip, il), (mp, ml)) = (pl(id.as_ref()), pl(msg.as_ref()));
    check(unsafe { sys::send_to_client(ip, il, mp, ml, flags.0) })
}

/// Sends `msg` to every client except those in `exclude` (`()` for none);
/// returns how many clients it was queued for (`send_to_all`).
pub fn send_to_all(msg: impl AsRef<[u8]>, flags: Flags, exclude: impl AsList) -> Result<u32> {
    send_to_all_raw(msg.as_ref(), Flags(flags.0 & !Flags::ONLY_LIST.0), &(), &exclude)
}

/// Sends `msg` only to the clients in `only` (none if it is empty) minus
/// those in `exclude` (`send_to_all` with [`Flags::ONLY_LIST`]).
pub fn send_to_all_only(msg: impl AsRef<[u8]>, flags: Flags, only: impl AsList, exclude: impl AsList) -> Result<u32> {
    send_to_all_raw(msg.as_ref(), flags | Flags::ONLY_LIST, &only, &exclude)
}

fn send_to_all_raw(msg: &[u8], flags: Flags, only: &dyn AsListDyn, exclude: &dyn AsListDyn) -> Result<u32> {
    only.with(&mut |o| {
        exclude.with(&mut |e| {
            let ((mp, ml), (op, ol), (ep, el)) = (pl(msg), pl(o), pl(e));
            count(unsafe { sys::send_to_all(mp, ml, flags.0, op, ol, ep, el) })
        })
    })
}

// AsListDyn lets the two-list functions take their lists as trait objects,
// keeping one copy of their code.
trait AsListDyn {
    fn with(&self, f: &mut dyn FnMut(&[u8]) -> Result<u32>) -> Result<u32>;
}
impl<L: AsList + ?Sized> AsListDyn for L {
    fn with(&self, f: &mut dyn FnMut(&[u8]) -> Result<u32>) -> Result<u32> {
        with_list(self, |b| f(b))
    }
}

/// Sends `msg` to every client of each uid in `uids` (`["alice"]` or
/// `"alice"`); returns how many clients it was queued for (`send_to_uid`).
pub fn send_to_uid(uids: impl AsList, msg: impl AsRef<[u8]>, flags: Flags) -> Result<u32> {
    let msg = msg.as_ref();
    with_list(&uids, |u| {
        let ((up, ul), (mp, ml)) = (pl(u), pl(msg));
        count(unsafe { sys::send_to_uid(up, ul, mp, ml, flags.0) })
    })
}

/// Sends `msg` once to every member of the groups in `groups`, except the
/// clients in `exclude` (`()` for none); returns how many clients it was
/// queued for (`send_to_group`).
pub fn send_to_group(groups: impl AsList, msg: impl AsRef<[u8]>, flags: Flags, exclude: impl AsList) -> Result<u32> {
    let msg = msg.as_ref();
    let exclude: &dyn AsListDyn = &exclude;
    (&groups as &dyn AsListDyn).with(&mut |g| {
        exclude.with(&mut |e| {
            let ((gp, gl), (mp, ml), (ep, el)) = (pl(g), pl(msg), pl(e));
            count(unsafe { sys::send_to_group(gp, gl, mp, ml, flags.0, ep, el) })
        })
    })
}

/// Sends `msg` to the client `id` if it is not empty, then closes it;
/// bits 16–31 of `flags` are the close code ([`Flags::close_code`])
/// (`close_client`).
pub fn close_client(id: impl AsRef<[u8]>, msg: impl AsRef<[u8]>, flags: Flags) -> Result<()> {
    let ((ip, il), (mp, ml)) = (pl(id.as_ref()), pl(msg.as_ref()));
    check(unsafe { sys::close_client(ip, il, mp, ml, flags.0) })
}

/// Reports whether the client `id` is connected (`is_online`).
pub fn is_online(id: impl AsRef<[u8]>) -> Result<bool> {
    let (ip, il) = pl(id.as_ref());
    flag(unsafe { sys::is_online(ip, il) })
}

/// Binds the client `id` to `uid` (`bind_uid`).
pub fn bind_uid(id: impl AsRef<[u8]>, uid: impl AsRef<[u8]>) -> Result<()> {
    let ((ip, il), (up, ul)) = (pl(id.as_ref()), pl(uid.as_ref()));
    check(unsafe { sys::bind_uid(ip, il, up, ul) })
}

/// Unbinds the client `id` from `uid` (`unbind_uid`).
pub fn unbind_uid(id: impl AsRef<[u8]>, uid: impl AsRef<[u8]>) -> Result<()> {
    let ((ip, il), (up, ul)) = (pl(id.as_ref()), pl(uid.as_ref()));
    check(unsafe { sys::unbind_uid(ip, il, up, ul) })
}

/// Reports whether any client is bound to `uid` (`is_uid_online`).
pub fn is_uid_online(uid: impl AsRef<[u8]>) -> Result<bool> {
    let (up, ul) = pl(uid.as_ref());
    flag(unsafe { sys::is_uid_online(up, ul) })
}

/// The ids of the clients bound to `uid` (`get_client_id_by_uid`).
pub fn client_ids_by_uid(uid: impl AsRef<[u8]>) -> Result<Vec<String>> {
    let (up, ul) = pl(uid.as_ref());
    fetch_list(|p, c| unsafe { sys::get_client_id_by_uid(up, ul, p, c) })
}

/// [`client_ids_by_uid`] into `out`.
pub fn client_ids_by_uid_into<'b>(uid: impl AsRef<[u8]>, out: &'b mut Vec<u8>) -> Result<List<'b>> {
    let (up, ul) = pl(uid.as_ref());
    fetch_into(out, |p, c| unsafe { sys::get_client_id_by_uid(up, ul, p, c) }).map(List::from_encoded)
}

/// The uid of the client `id`, "" if none (`get_uid_by_client_id`).
pub fn uid_by_client_id(id: impl AsRef<[u8]>) -> Result<String> {
    let (ip, il) = pl(id.as_ref());
    fetch_string(|p, c| unsafe { sys::get_uid_by_client_id(ip, il, p, c) })
}

/// [`uid_by_client_id`] into `out`.
pub fn uid_by_client_id_into<'b>(id: impl AsRef<[u8]>, out: &'b mut Vec<u8>) -> Result<&'b [u8]> {
    let (ip, il) = pl(id.as_ref());
    fetch_into(out, |p, c| unsafe { sys::get_uid_by_client_id(ip, il, p, c) })
}

/// The number of connected clients (`get_all_client_id_count`).
pub fn all_client_count() -> Result<u32> {
    count(unsafe { sys::get_all_client_id_count() })
}

/// The ids of every connected client (`get_all_client_id_list`).
pub fn all_client_ids() -> Result<Vec<String>> {
    fetch_list(|p, c| unsafe { sys::get_all_client_id_list(p, c) })
}

/// [`all_client_ids`] into `out`.
pub fn all_client_ids_into(out: &mut Vec<u8>) -> Result<List<'_>> {
    fetch_into(out, |p, c| unsafe { sys::get_all_client_id_list(p, c) }).map(List::from_encoded)
}

/// Every uid bound to a client (`get_all_uid_list`).
pub fn all_uids() -> Result<Vec<String>> {
    fetch_list(|p, c| unsafe { sys::get_all_uid_list(p, c) })
}

/// [`all_uids`] into `out`.
pub fn all_uids_into(out: &mut Vec<u8>) -> Result<List<'_>> {
    fetch_into(out, |p, c| unsafe { sys::get_all_uid_list(p, c) }).map(List::from_encoded)
}

/// The number of uids bound to a client (`get_all_uid_count`).
pub fn all_uid_count() -> Result<u32> {
    count(unsafe { sys::get_all_uid_count() })
}

/// Adds the client `id` to `group` (`join_group`).
pub fn join_group(id: impl AsRef<[u8]>, group: impl AsRef<[u8]>) -> Result<()> {
    let ((ip, il), (gp, gl)) = (pl(id.as_ref()), pl(group.as_ref()));
    check(unsafe { sys::join_group(ip, il, gp, gl) })
}

/// Removes the client `id` from `group` (`leave_group`).
pub fn leave_group(id: impl AsRef<[u8]>, group: impl AsRef<[u8]>) -> Result<()> {
    let ((ip, il), (gp, gl)) = (pl(id.as_ref()), pl(group.as_ref()));
    check(unsafe { sys::leave_group(ip, il, gp, gl) })
}

/// Removes every member from `group` (`ungroup`).
pub fn ungroup(group: impl AsRef<[u8]>) -> Result<()> {
    let (gp, gl) = pl(group.as_ref());
    check(unsafe { sys::ungroup(gp, gl) })
}

/// The number of clients in `group` (`get_client_id_count_by_group`).
pub fn client_count_by_group(group: impl AsRef<[u8]>) -> Result<u32> {
    let (gp, gl) = pl(group.as_ref());
    count(unsafe { sys::get_client_id_count_by_group(gp, gl) })
}

/// The ids of the clients in `group` (`get_client_id_list_by_group`).
pub fn client_ids_by_group(group: impl AsRef<[u8]>) -> Result<Vec<String>> {
    let (gp, gl) = pl(group.as_ref());
    fetch_list(|p, c| unsafe { sys::get_client_id_list_by_group(gp, gl, p, c) })
}

/// [`client_ids_by_group`] into `out`.
pub fn client_ids_by_group_into<'b>(group: impl AsRef<[u8]>, out: &'b mut Vec<u8>) -> Result<List<'b>> {
    let (gp, gl) = pl(group.as_ref());
    fetch_into(out, |p, c| unsafe { sys::get_client_id_list_by_group(gp, gl, p, c) }).map(List::from_encoded)
}

/// The distinct uids of the members of `group` (`get_uid_list_by_group`).
pub fn uids_by_group(group: impl AsRef<[u8]>) -> Result<Vec<String>> {
    let (gp, gl) = pl(group.as_ref());
    fetch_list(|p, c| unsafe { sys::get_uid_list_by_group(gp, gl, p, c) })
}

/// [`uids_by_group`] into `out`.
pub fn uids_by_group_into<'b>(group: impl AsRef<[u8]>, out: &'b mut Vec<u8>) -> Result<List<'b>> {
    let (gp, gl) = pl(group.as_ref());
    fetch_into(out, |p, c| unsafe { sys::get_uid_list_by_group(gp, gl, p, c) }).map(List::from_encoded)
}

/// The number of distinct uids in `group` (`get_uid_count_by_group`).
pub fn uid_count_by_group(group: impl AsRef<[u8]>) -> Result<u32> {
    let (gp, gl) = pl(group.as_ref());
    count(unsafe { sys::get_uid_count_by_group(gp, gl) })
}

/// Every group with at least one member (`get_all_group_id_list`).
pub fn all_groups() -> Result<Vec<String>> {
    fetch_list(|p, c| unsafe { sys::get_all_group_id_list(p, c) })
}

/// [`all_groups`] into `out`.
pub fn all_groups_into(out: &mut Vec<u8>) -> Result<List<'_>> {
    fetch_into(out, |p, c| unsafe { sys::get_all_group_id_list(p, c) }).map(List::from_encoded)
}

/// Replaces the session of the client `id` (`set_session`).
pub fn set_session(id: impl AsRef<[u8]>, json: impl AsRef<[u8]>) -> Result<()> {
    let ((ip, il), (jp, jl)) = (pl(id.as_ref()), pl(json.as_ref()));
    check(unsafe { sys::set_session(ip, il, jp, jl) })
}

/// Merges `json` into the session of the client `id`, recursively for
/// nested objects (`update_session`).
pub fn update_session(id: impl AsRef<[u8]>, json: impl AsRef<[u8]>) -> Result<()> {
    let ((ip, il), (jp, jl)) = (pl(id.as_ref()), pl(json.as_ref()));
    check(unsafe { sys::update_session(ip, il, jp, jl) })
}

/// The session of the client `id`, `{}` if none (`get_session`).
pub fn session(id: impl AsRef<[u8]>) -> Result<String> {
    let (ip, il) = pl(id.as_ref());
    fetch_string(|p, c| unsafe { sys::get_session(ip, il, p, c) })
}

/// [`session`] into `out`.
pub fn session_into<'b>(id: impl AsRef<[u8]>, out: &'b mut Vec<u8>) -> Result<&'b [u8]> {
    let (ip, il) = pl(id.as_ref());
    fetch_into(out, |p, c| unsafe { sys::get_session(ip, il, p, c) })
}
