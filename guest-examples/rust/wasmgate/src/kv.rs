//! The module's key-value store (ABI.md §5.6), shared by all its instances
//! (task-pool ones too): counters, rate limits, small state. Keys are
//! non-empty, at most 1024 bytes; values at most `max_message_size`.
//! A TTL of `Duration::ZERO` means no expiry.
//!
//! ```ignore
//! use std::time::Duration;
//! // A fixed one-second window rate limit, one call per event:
//! let n = wasmgate::kv::incr(format!("rate:{}", c.id()), 1, Duration::from_secs(1))?;
//! ```

use core::time::Duration;

use crate::client::{fetch_into, pl};
use crate::errno::{check, flag, Result};
use crate::{millis, sys};

/// The value at `key`; [`Errno::NOT_FOUND`](crate::Errno::NOT_FOUND) if absent.
pub fn get(key: impl AsRef<[u8]>) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    get_into(key, &mut v)?;
    Ok(v)
}

/// [`get`] into `out` (which allocates only if it must grow).
pub fn get_into<'b>(key: impl AsRef<[u8]>, out: &'b mut Vec<u8>) -> Result<&'b [u8]> {
    let (kp, kl) = pl(key.as_ref());
    fetch_into(out, |p, c| unsafe { sys::kv_get(kp, kl, p, c) })
}

/// Sets `key` to `value`, replacing the value and the expiry.
pub fn set(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, ttl: Duration) -> Result<()> {
    let ((kp, kl), (vp, vl)) = (pl(key.as_ref()), pl(value.as_ref()));
    check(unsafe { sys::kv_set(kp, kl, vp, vl, millis(ttl)) })
}

/// Deletes `key`; returns whether it was present.
pub fn delete(key: impl AsRef<[u8]>) -> Result<bool> {
    let (kp, kl) = pl(key.as_ref());
    flag(unsafe { sys::kv_delete(kp, kl) })
}

/// Adds `delta` (which may be negative) to the integer at `key` and
/// returns the sum. An absent key counts as 0 and is created with `ttl`;
/// an existing key keeps its expiry. A value that is not a decimal `i64`,
/// or an overflow, is [`Errno::INVALID`](crate::Errno::INVALID).
pub fn incr(key: impl AsRef<[u8]>, delta: i64, ttl: Duration) -> Result<i64> {
    let (kp, kl) = pl(key.as_ref());
    let mut out = 0i64;
    check(unsafe { sys::kv_incr(kp, kl, delta, millis(ttl), &mut out) })?;
    Ok(out)
}

/// Sets `key` to `new` (with `ttl`) if its value equals `old` byte for
/// byte; returns whether it swapped. An absent key never equals `old`.
pub fn cas(key: impl AsRef<[u8]>, old: impl AsRef<[u8]>, new: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
    let ((kp, kl), (op, ol), (np, nl)) = (pl(key.as_ref()), pl(old.as_ref()), pl(new.as_ref()));
    flag(unsafe { sys::kv_cas(kp, kl, op, ol, np, nl, millis(ttl), 0) })
}

/// `kv_cas` flag bit 0: swap only if the key is absent.
pub const ABSENT: i32 = 1;

/// Sets `key` to `value` (with `ttl`) only if it is absent; returns
/// whether it did (`kv_cas` with [`ABSENT`]).
pub fn set_if_absent(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
    let ((kp, kl), (np, nl)) = (pl(key.as_ref()), pl(value.as_ref()));
    flag(unsafe { sys::kv_cas(kp, kl, np, 0, np, nl, millis(ttl), ABSENT) })
}
