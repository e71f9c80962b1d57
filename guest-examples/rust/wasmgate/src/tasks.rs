//! Tasks (ABI.md §5.7) and timers (§5.8).

use core::time::Duration;

use crate::client::pl;
use crate::errno::{check, flag, id64, Result};
use crate::{millis, sys};

/// A task id (> 0), as returned by [`task`] and given to `on_task` and
/// `on_finish`.
pub type TaskId = i64;

/// A timer id (> 0), as returned by [`set_timer`] and given to `on_timer`.
pub type TimerId = i64;

/// How a task ended (the `status` of `on_finish`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// 0: `on_task` returned 0; the input is what it passed to [`task_result`].
    Ok,
    /// 1: `on_task` returned non-zero; the input is its result, if any.
    Failed,
    /// 2: `on_task` trapped, timed out or could not run; the input is the
    /// host's error text.
    Crashed,
    /// A status this SDK does not know.
    Other(i32),
}

impl TaskStatus {
    /// The status of an ABI code.
    pub fn from_code(code: i32) -> TaskStatus {
        match code {
            0 => TaskStatus::Ok,
            1 => TaskStatus::Failed,
            2 => TaskStatus::Crashed,
            c => TaskStatus::Other(c),
        }
    }
}

/// Queues `payload` for `on_task` on a task-pool instance and returns the
/// task id at once. The module must export `on_task` and `on_finish`
/// ([`Errno::UNSUPPORTED`](crate::Errno::UNSUPPORTED) otherwise);
/// [`Errno::QUEUE_FULL`](crate::Errno::QUEUE_FULL) if the queue is full.
pub fn task(payload: impl AsRef<[u8]>) -> Result<TaskId> {
    let (p, n) = pl(payload.as_ref());
    id64(unsafe { sys::task(p, n) })
}

/// Sets the result of the running task (in `on_task` only); a later call
/// replaces an earlier one.
pub fn task_result(result: impl AsRef<[u8]>) -> Result<()> {
    let (p, n) = pl(result.as_ref());
    check(unsafe { sys::task_result(p, n) })
}

/// Arms a one-shot timer: after `delay` the host calls `on_timer` with
/// `payload`. The module must export `on_timer`.
pub fn set_timer(delay: Duration, payload: impl AsRef<[u8]>) -> Result<TimerId> {
    let (p, n) = pl(payload.as_ref());
    id64(unsafe { sys::set_timer(millis(delay), p, n) })
}

/// Cancels a pending timer; returns false if it already fired, was
/// cleared or never existed.
pub fn clear_timer(id: TimerId) -> Result<bool> {
    flag(unsafe { sys::clear_timer(id) })
}
