//! rust-echo: the echo handler of wasmgate (ABI version 1) in Rust, with no
//! crates. It sends every message back to its sender in the same frame type.
//!
//! Build: /usr/bin/rustc --edition 2021 -O --target wasm32-unknown-unknown \
//!            --crate-type cdylib -o rust-echo.wasm echo.rs

use std::ptr::addr_of_mut;

/// The event input region returned by `wasmgate_buffer`, reused for every
/// event and replaced only when the host asks for more room.
static mut BUF: Vec<u8> = Vec::new();

const BINARY: u32 = 1;

#[link(wasm_import_module = "wasmgate")]
extern "C" {
    fn send_to_client(id_ptr: *const u8, id_len: u32, msg_ptr: *const u8, msg_len: u32, flags: u32) -> i32;
}

#[no_mangle]
pub extern "C" fn wasmgate_abi_version() -> i32 {
    1
}

#[no_mangle]
pub extern "C" fn wasmgate_buffer(min_size: u32) -> *mut u8 {
    // Safety: an instance runs one event at a time, and no event is running
    // while the host calls wasmgate_buffer.
    let buf = unsafe { &mut *addr_of_mut!(BUF) };
    let min = min_size as usize;
    if buf.is_empty() || buf.len() < min {
        let size = min.max(buf.len() * 2).max(4096);
        *buf = vec![0u8; size];
    }
    buf.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn on_message(id_len: u32, msg_len: u32, flags: u32) -> i32 {
    let buf = unsafe { &*addr_of_mut!(BUF) };
    let (id, msg) = (id_len as usize, msg_len as usize);
    match id.checked_add(msg) {
        Some(end) if end <= buf.len() => {}
        _ => return 1,
    }
    let p = buf.as_ptr();
    // Safety: both regions were checked to lie inside BUF. A failed send
    // (typically: the client has just disconnected) is not worth a warning,
    // as in the Go echo.
    unsafe { send_to_client(p, id_len, p.add(id), msg_len, flags & BINARY) };
    0
}
