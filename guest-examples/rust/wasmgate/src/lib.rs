//! `wasmgate`: the Rust SDK of the wasmgate handler ABI, version 1
//! (`abi/ABI.md`). No dependencies beyond `core`, `alloc` and `std`; built
//! with Debian's `rustc`/`cargo` 1.63 for `wasm32-unknown-unknown`.
//!
//! ```ignore
//! use wasmgate::{Client, Flags};
//!
//! fn echo(c: Client, msg: &[u8], flags: Flags) -> wasmgate::Result<()> {
//!     c.send_flags(msg, flags & Flags::BINARY)
//! }
//!
//! wasmgate::export! { on_message: echo }
//! ```
//!
//! # Events
//! [`export!`] exports `wasmgate_abi_version`, `wasmgate_buffer` and one
//! export per event you name, and nothing else: the host then knows which
//! events exist (`task` needs `on_task` and `on_finish`, `set_timer` needs
//! `on_timer`). Handler signatures, `R` being `()`, `i32` or a
//! `Result<(), E: Display>` (see [`EventResult`]):
//!
//! | event | handler |
//! | --- | --- |
//! | `on_message` (required) | `fn(Client, &[u8], Flags) -> R` |
//! | `on_start` | `fn(&str) -> R` — the module config; anything but success fails the instance |
//! | `on_handshake` | `fn(&Handshake) -> H` — `H`: [`HandshakeResult`]: `0`/`Ok(())` accepts, `403`/`Err(403)` refuses |
//! | `on_connect`, `on_close` | `fn(Client) -> R` |
//! | `on_task` | `fn(TaskId, &[u8]) -> R` — hand the result to [`task_result`] |
//! | `on_finish` | `fn(TaskId, &[u8], TaskStatus) -> R` |
//! | `on_timer` | `fn(TimerId, &[u8]) -> R` |
//!
//! # Memory: no allocation per message
//! The host writes every event's input into one buffer the guest owns
//! (ABI.md §2). Here it is a `Vec<u8>` in a `static`, handed to the host by
//! `wasmgate_buffer` and replaced only when the host asks for more room
//! than it has (at most a few times per instance: at the first event, then
//! for a message or config larger than any before). Handlers get the
//! client id, the message and every other input as slices of that buffer,
//! valid until they return: receiving a message allocates nothing, and
//! neither do [`Client::send`] and the other calls that take bytes. A list
//! argument given as a slice (`["alice"]`) is encoded into a scratch
//! buffer the SDK keeps and reuses. Results of variable size (sessions,
//! key-value values, lists) come in two forms: `x()` returns an owned
//! `String`/`Vec`, and `x_into(&mut out)` fills a `Vec<u8>` you keep and
//! reuse, which allocates only when it must grow.
//!
//! A panic traps: the host logs it with the module, event and client,
//! throws the instance away and uses a fresh one (the client stays
//! connected). The SDK logs the panic message first, at error level.
//!
//! Instances share no memory (ABI.md §1): keep per-client state in
//! sessions and module-wide state in the key-value store ([`kv`]).

#![warn(missing_docs)]

pub mod sys;

mod client;
mod closing;
mod errno;
mod handshake;
pub mod kv;
mod list;
mod rt;
mod tasks;

pub use client::*;
pub use closing::{closing, closing_into, ClosingState, ClosingStateRef};
pub use errno::{Errno, Result};
pub use handshake::{Handshake, Headers};
pub use list::{AsList, List, ListBuf, ListIter};
pub use rt::{EventResult, HandshakeResult};
pub use tasks::*;

#[doc(hidden)]
pub mod __rt {
    pub use crate::rt::*;
}

/// The ABI version this SDK implements; `wasmgate_abi_version` returns it.
pub const ABI_VERSION: i32 = 1;

/// Flags of the send functions and of [`close_client`] (ABI.md §4).
/// Combine them with `|`: `Flags::BINARY | Flags::close_code(4000)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub i32);

impl Flags {
    /// A text frame (no flag): the message must be valid UTF-8.
    pub const TEXT: Flags = Flags(0);
    /// A binary frame. In `on_message`, set for a binary message.
    pub const BINARY: Flags = Flags(1);
    /// [`send_to_all_only`] sets it: send only to the `only` list.
    pub const ONLY_LIST: Flags = Flags(2);

    /// The [`close_client`] flag that closes with `code` (bits 16–31):
    /// 1000, or 4000–4999, the application's range (the browser client
    /// `wasmgate.js` does not reconnect after 4000–4099). Another code makes
    /// the call fail with [`Errno::INVALID`].
    pub const fn close_code(code: u16) -> Flags {
        Flags((code as u32 as i32) << 16)
    }

    /// Reports whether bit 0 (a binary frame) is set.
    pub const fn is_binary(self) -> bool {
        self.0 & 1 != 0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    #[inline(always)]
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

impl core::ops::BitAnd for Flags {
    type Output = Flags;
    #[inline(always)]
    fn bitand(self, o: Flags) -> Flags {
        Flags(self.0 & o.0)
    }
}

/// Log levels of [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// Debug (0).
    Debug = 0,
    /// Info (1).
    Info = 1,
    /// Warning (2).
    Warn = 2,
    /// Error (3).
    Error = 3,
}

/// Writes `msg` to the server log, tagged with the module name (at most
/// 4096 bytes of it are kept).
pub fn log(level: Level, msg: impl AsRef<[u8]>) -> Result<()> {
    let m = msg.as_ref();
    errno::check(unsafe { sys::log(level as i32, m.as_ptr(), m.len() as u32) })
}

/// [`log`] at debug level, ignoring failure.
pub fn debug(msg: impl AsRef<[u8]>) {
    let _ = log(Level::Debug, msg);
}
/// [`log`] at info level, ignoring failure.
pub fn info(msg: impl AsRef<[u8]>) {
    let _ = log(Level::Info, msg);
}
/// [`log`] at warning level, ignoring failure.
pub fn warn(msg: impl AsRef<[u8]>) {
    let _ = log(Level::Warn, msg);
}
/// [`log`] at error level, ignoring failure.
pub fn error(msg: impl AsRef<[u8]>) {
    let _ = log(Level::Error, msg);
}

/// Wall-clock time in nanoseconds since the Unix epoch (the host's clock:
/// `std::time::SystemTime` does not work on `wasm32-unknown-unknown`).
pub fn now() -> i64 {
    unsafe { sys::now() }
}

/// Converts a TTL or delay to the ABI's milliseconds: `Duration::ZERO` is
/// 0 (no expiry, or "as soon as possible"), a non-zero duration under a
/// millisecond rounds up to 1 rather than silently meaning "no expiry",
/// and a huge one saturates.
pub(crate) fn millis(d: core::time::Duration) -> i64 {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        1
    } else if ms > i64::MAX as u128 {
        i64::MAX
    } else {
        ms as i64
    }
}
