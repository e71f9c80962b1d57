//! Error codes (ABI.md §2).

use core::fmt;

/// The result of the SDK's calls.
pub type Result<T> = core::result::Result<T, Errno>;

/// The error a host function reports: the negation of its negative result
/// (ABI.md §2). Compare with the constants: `Err(Errno::NOT_FOUND)`.
/// It prints as the Go SDK's errors do: `wasmgate: not found`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// 1: a (pointer, length) pair is not inside guest memory.
    pub const BAD_POINTER: Errno = Errno(1);
    /// 2: a malformed argument: an empty id, uid, group or key, a bad list,
    /// an unknown flag bit or close code, invalid UTF-8 in a text message,
    /// a session that is not a JSON object, a negative TTL or delay, or
    /// `kv::incr` on a value that is not an integer or would overflow.
    pub const INVALID: Errno = Errno(2);
    /// 3: the client id is not connected; `kv::get`: the key is absent.
    pub const NOT_FOUND: Errno = Errno(3);
    /// 4: a message, value, payload, key, list or name is over its maximum.
    pub const TOO_LARGE: Errno = Errno(4);
    /// 5: the client's send queue (it is being closed as a slow consumer)
    /// or the module's task queue is full.
    pub const QUEUE_FULL: Errno = Errno(5);
    /// 6: the registry backend (cluster mode) did not answer in time.
    pub const UNAVAILABLE: Errno = Errno(6);
    /// 7: a host failure unrelated to the arguments.
    pub const INTERNAL: Errno = Errno(7);
    /// 8: a per-module or per-client bound is reached (key-value store
    /// full, too many timers, session too big, too many groups).
    pub const LIMIT: Errno = Errno(8);
    /// 9: not possible here (`task_result` outside `on_task`, `task`
    /// without `on_task`/`on_finish` or with tasks off, `set_timer` without
    /// `on_timer`).
    pub const UNSUPPORTED: Errno = Errno(9);

    /// The code's name, such as `not found` (the Go and C SDKs' names).
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 10] = [
            "ok", "bad pointer", "invalid argument", "not found", "too large", "queue full", "unavailable", "internal error", "limit reached",
            "unsupported here",
        ];
        match NAMES.get(self.0 as usize) {
            Some(n) if self.0 > 0 => n,
            _ => "unknown error",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name() == "unknown error" {
            write!(f, "wasmgate: errno {}", self.0)
        } else {
            write!(f, "wasmgate: {}", self.name())
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self.name())
    }
}

impl std::error::Error for Errno {}

/// check turns a result that is 0 or `-e` into `Ok(())` or `Err(e)`.
#[inline(always)]
pub(crate) fn check(r: i32) -> Result<()> {
    if r < 0 {
        Err(Errno(-r))
    } else {
        Ok(())
    }
}

/// count turns a result that is a count or `-e` into a `u32`.
#[inline(always)]
pub(crate) fn count(r: i32) -> Result<u32> {
    if r < 0 {
        Err(Errno(-r))
    } else {
        Ok(r as u32)
    }
}

/// flag turns a result that is 1, 0 or `-e` into a `bool`.
#[inline(always)]
pub(crate) fn flag(r: i32) -> Result<bool> {
    if r < 0 {
        Err(Errno(-r))
    } else {
        Ok(r != 0)
    }
}

/// id64 turns an `i64` result (a task or timer id, or `-e`) into an id.
#[inline(always)]
pub(crate) fn id64(r: i64) -> Result<i64> {
    if r < 0 {
        Err(Errno((-r) as i32))
    } else {
        Ok(r)
    }
}
