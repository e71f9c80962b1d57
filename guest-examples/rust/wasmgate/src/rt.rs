//! The guest side of events: the event buffer (ABI.md §2), the dispatch
//! behind [`export!`](crate::export), and what handlers may return.

use core::cell::UnsafeCell;
use core::fmt::Display;

use crate::handshake::Handshake;
use crate::tasks::{TaskId, TaskStatus, TimerId};
use crate::{Client, Flags, Level};

/// The event buffer: a Vec replaced only when the host asks for more room
/// than it has. An instance runs one event at a time and the host never
/// calls wasmgate_buffer during one, so nothing else touches it meanwhile.
struct EventBuf(UnsafeCell<Vec<u8>>);

// Safety: wasm32-unknown-unknown has one thread per instance.
unsafe impl Sync for EventBuf {}

static BUF: EventBuf = EventBuf(UnsafeCell::new(Vec::new()));

/// The smallest buffer: the host asks for at least this much.
const MIN_BUFFER: usize = 4096;

/// `wasmgate_buffer(min_size)`: the address of at least `min_size` bytes.
/// It returns 0 (the host then fails the event and logs that the guest
/// cannot allocate) when the memory cannot grow.
pub fn buffer(min_size: u32) -> *mut u8 {
    hook_panics();
    let buf = unsafe { &mut *BUF.0.get() };
    let min = min_size as usize;
    if buf.len() < min || buf.is_empty() {
        let size = min.max(buf.len().saturating_mul(2)).max(MIN_BUFFER);
        let mut v = Vec::new();
        if v.try_reserve_exact(size).is_err() {
            return core::ptr::null_mut();
        }
        v.resize(size, 0);
        *buf = v;
    }
    buf.as_mut_ptr()
}

/// input returns `n` bytes of the event buffer at `off`, or None if the
/// host's lengths do not fit in it (never, from a correct host).
#[inline(always)]
fn input(off: u32, n: u32) -> Option<&'static [u8]> {
    let buf = unsafe { &*BUF.0.get() };
    let (off, n) = (off as usize, n as usize);
    let end = off.checked_add(n)?;
    buf.get(off..end)
}

fn bad_input(event: &str) -> i32 {
    crate::error(format!("{event}: the event's input lies outside the buffer wasmgate_buffer returned"));
    1
}

static mut HOOKED: bool = false;

/// hook_panics makes a panic log its message at error level before it
/// traps (the host then logs the trap and replaces the instance).
#[inline(always)]
fn hook_panics() {
    // Safety: one thread (see EventBuf).
    unsafe {
        if HOOKED {
            return;
        }
        HOOKED = true;
    }
    std::panic::set_hook(Box::new(|info| {
        crate::error(format!("panic: {info}"));
    }));
}

/// What an event handler returns: `()` (success), an `i32` (0 is
/// success; another value is logged by the host as a warning, and fails
/// the instance in `on_start` and the task in `on_task`), or a
/// `Result<(), E>` whose error is logged (with the event's name) and
/// counts as 1.
pub trait EventResult {
    /// The event's result code.
    fn into_code(self, event: &str) -> i32;
}

impl EventResult for () {
    #[inline(always)]
    fn into_code(self, _: &str) -> i32 {
        0
    }
}

impl EventResult for i32 {
    #[inline(always)]
    fn into_code(self, _: &str) -> i32 {
        self
    }
}

impl<E: Display> EventResult for Result<(), E> {
    #[inline(always)]
    fn into_code(self, event: &str) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                let level = if event == "on_start" { Level::Error } else { Level::Warn };
                let _ = crate::log(level, format!("{event}: {e}"));
                1
            }
        }
    }
}

/// What an `on_handshake` handler returns: `0`, `()` or `Ok(())` accepts;
/// an HTTP status from 400 to 599 (`403`, `Err(403)`) refuses with it.
pub trait HandshakeResult {
    /// 0 or the status.
    fn into_status(self) -> i32;
}

impl HandshakeResult for () {
    fn into_status(self) -> i32 {
        0
    }
}
impl HandshakeResult for i32 {
    fn into_status(self) -> i32 {
        self
    }
}
impl HandshakeResult for u16 {
    fn into_status(self) -> i32 {
        self as i32
    }
}
impl HandshakeResult for Result<(), u16> {
    fn into_status(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(s) => s as i32,
        }
    }
}

/// Calls an `on_message` handler with the id and message in the buffer.
#[inline(always)]
pub fn on_message<R: EventResult>(id_len: u32, msg_len: u32, flags: i32, f: impl FnOnce(Client<'_>, &[u8], Flags) -> R) -> i32 {
    match (input(0, id_len), input(id_len, msg_len)) {
        (Some(id), Some(msg)) => f(Client::new(id), msg, Flags(flags)).into_code("on_message"),
        _ => bad_input("on_message"),
    }
}

/// Calls an `on_start` handler with the module config.
pub fn on_start<R: EventResult>(len: u32, f: impl FnOnce(&str) -> R) -> i32 {
    hook_panics();
    let cfg: &[u8] = if len == 0 {
        &[]
    } else {
        match input(0, len) {
            Some(c) => c,
            None => return bad_input("on_start"),
        }
    };
    match core::str::from_utf8(cfg) {
        Ok(s) => f(s).into_code("on_start"),
        Err(e) => {
            crate::error(format!("on_start: the module config is not UTF-8: {e}"));
            1
        }
    }
}

/// Calls an `on_handshake` handler with the parsed request.
pub fn on_handshake<R: HandshakeResult>(len: u32, f: impl FnOnce(&Handshake<'_>) -> R) -> i32 {
    match input(0, len).and_then(Handshake::parse) {
        Some(h) => f(&h).into_status(),
        None => bad_input("on_handshake"),
    }
}

/// Calls an `on_connect` or `on_close` handler with the client.
pub fn on_client<R: EventResult>(event: &str, id_len: u32, f: impl FnOnce(Client<'_>) -> R) -> i32 {
    match input(0, id_len) {
        Some(id) => f(Client::new(id)).into_code(event),
        None => bad_input(event),
    }
}

/// Calls an `on_task` handler with the payload.
pub fn on_task<R: EventResult>(id: i64, len: u32, f: impl FnOnce(TaskId, &[u8]) -> R) -> i32 {
    match input(0, len) {
        Some(p) => f(id, p).into_code("on_task"),
        None => bad_input("on_task"),
    }
}

/// Calls an `on_finish` handler with the result and status.
pub fn on_finish<R: EventResult>(id: i64, len: u32, status: i32, f: impl FnOnce(TaskId, &[u8], TaskStatus) -> R) -> i32 {
    match input(0, len) {
        Some(p) => f(id, p, TaskStatus::from_code(status)).into_code("on_finish"),
        None => bad_input("on_finish"),
    }
}

/// Calls an `on_timer` handler with the payload.
pub fn on_timer<R: EventResult>(id: i64, len: u32, f: impl FnOnce(TimerId, &[u8]) -> R) -> i32 {
    match input(0, len) {
        Some(p) => f(id, p).into_code("on_timer"),
        None => bad_input("on_timer"),
    }
}

/// Exports the handler: `wasmgate_abi_version`, `wasmgate_buffer` and one
/// export per event named, each calling the given function (a path or a
/// closure). Use it once, in the crate's root:
///
/// ```ignore
/// wasmgate::export! {
///     on_start: configure,
///     on_message: on_message,
///     on_close: |c| { let _ = wasmgate::kv::delete(format!("rate:{}", c.id())); },
/// }
/// ```
///
/// Events: `on_message` (required), `on_start`, `on_handshake`,
/// `on_connect`, `on_close`, `on_task`, `on_finish`, `on_timer`; see the
/// crate documentation for each handler's signature. An unknown name is a
/// compile error.
#[macro_export]
macro_rules! export {
    ($($event:ident : $f:expr),+ $(,)?) => {
        // export_name, not no_mangle with the event's name: a handler
        // function may itself be called on_message.
        const _: () = {
            #[export_name = "wasmgate_abi_version"]
            pub extern "C" fn __wasmgate_wasmgate_abi_version() -> i32 {
                $crate::ABI_VERSION
            }
            #[export_name = "wasmgate_buffer"]
            pub extern "C" fn __wasmgate_wasmgate_buffer(min_size: u32) -> *mut u8 {
                $crate::__rt::buffer(min_size)
            }
        };
        $( $crate::__export_event!($event, $f); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_event {
    (on_message, $f:expr) => {
        const _: () = {
            #[export_name = "on_message"]
            pub extern "C" fn __wasmgate_on_message(id_len: u32, msg_len: u32, flags: i32) -> i32 {
                $crate::__rt::on_message(id_len, msg_len, flags, $f)
            }
        };
    };
    (on_start, $f:expr) => {
        const _: () = {
            #[export_name = "on_start"]
            pub extern "C" fn __wasmgate_on_start(config_len: u32) -> i32 {
                $crate::__rt::on_start(config_len, $f)
            }
        };
    };
    (on_handshake, $f:expr) => {
        const _: () = {
            #[export_name = "on_handshake"]
            pub extern "C" fn __wasmgate_on_handshake(req_len: u32) -> i32 {
                $crate::__rt::on_handshake(req_len, $f)
            }
        };
    };
    (on_connect, $f:expr) => {
        const _: () = {
            #[export_name = "on_connect"]
            pub extern "C" fn __wasmgate_on_connect(id_len: u32) -> i32 {
                $crate::__rt::on_client("on_connect", id_len, $f)
            }
        };
    };
    (on_close, $f:expr) => {
        const _: () = {
            #[export_name = "on_close"]
            pub extern "C" fn __wasmgate_on_close(id_len: u32) -> i32 {
                $crate::__rt::on_client("on_close", id_len, $f)
            }
        };
    };
    (on_task, $f:expr) => {
        const _: () = {
            #[export_name = "on_task"]
            pub extern "C" fn __wasmgate_on_task(task_id: i64, payload_len: u32) -> i32 {
                $crate::__rt::on_task(task_id, payload_len, $f)
            }
        };
    };
    (on_finish, $f:expr) => {
        const _: () = {
            #[export_name = "on_finish"]
            pub extern "C" fn __wasmgate_on_finish(task_id: i64, result_len: u32, status: i32) -> i32 {
                $crate::__rt::on_finish(task_id, result_len, status, $f)
            }
        };
    };
    (on_timer, $f:expr) => {
        const _: () = {
            #[export_name = "on_timer"]
            pub extern "C" fn __wasmgate_on_timer(timer_id: i64, payload_len: u32) -> i32 {
                $crate::__rt::on_timer(timer_id, payload_len, $f)
            }
        };
    };
    ($other:ident, $f:expr) => {
        compile_error!(concat!(
            "wasmgate::export!: unknown event `",
            stringify!($other),
            "` (events: on_message, on_start, on_handshake, on_connect, on_close, on_task, on_finish, on_timer)"
        ));
    };
}
