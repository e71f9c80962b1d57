//! The closing client's state (ABI.md §5.4, `closing_state`): what it had
//! when it closed, readable during `on_close` although the client is
//! already gone from the registry (GatewayWorker's `$_SESSION` in
//! `onClose`, plus its uid and groups).
//!
//! ```ignore
//! fn on_close(c: wasmgate::Client) -> wasmgate::Result<()> {
//!     let st = wasmgate::closing()?;
//!     let msg = format!("{} ({}) left {}", c.id(), st.uid, st.groups.join(","));
//!     wasmgate::send_to_group(&st.groups, msg, wasmgate::Flags::TEXT, ())?;
//!     Ok(())
//! }
//! ```

use crate::client::fetch_into;
use crate::errno::{Errno, Result};
use crate::list::{List, ListIter};
use crate::sys;

/// What the closing client had, owned: see [`closing`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClosingState {
    /// The uid it was bound to, "" if none.
    pub uid: String,
    /// Its session, a compact JSON object (`{}` if it had none).
    pub session: String,
    /// The groups it was in, sorted by byte value.
    pub groups: Vec<String>,
}

/// What the closing client had, borrowed from the buffer given to
/// [`closing_into`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosingStateRef<'a> {
    /// The uid it was bound to, empty if none.
    pub uid: &'a [u8],
    /// Its session, a compact JSON object (`{}` if it had none).
    pub session: &'a [u8],
    /// The groups it was in, sorted by byte value: pass it to
    /// [`send_to_group`](crate::send_to_group) as is.
    pub groups: List<'a>,
}

/// The closing client's uid, session and groups (`closing_state`). It
/// works only during `on_close` ([`Errno::UNSUPPORTED`] elsewhere);
/// [`Errno::UNAVAILABLE`] means the server could not read them (in cluster
/// mode, the registry did not answer). A server older than this function
/// refuses the module at load.
pub fn closing() -> Result<ClosingState> {
    let mut buf = Vec::new();
    let st = closing_into(&mut buf)?;
    Ok(ClosingState {
        uid: String::from_utf8_lossy(st.uid).into_owned(),
        session: String::from_utf8_lossy(st.session).into_owned(),
        groups: st.groups.to_strings(),
    })
}

/// [`closing`] into `out` (which allocates only if it must grow).
pub fn closing_into(out: &mut Vec<u8>) -> Result<ClosingStateRef<'_>> {
    let b = fetch_into(out, |p, c| unsafe { sys::closing_state(p, c) })?;
    let mut it = ListIter::from_bytes(b);
    // The host always sends the uid and the session; a shorter list is a
    // host bug, reported as the Go SDK does.
    match (it.next(), it.next()) {
        (Some(uid), Some(session)) => Ok(ClosingStateRef { uid, session, groups: List::from_encoded(it.rest()) }),
        _ => Err(Errno::INTERNAL),
    }
}
