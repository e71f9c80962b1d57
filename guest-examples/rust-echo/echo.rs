//! rust-echo: the echo handler of wasmgate on the Rust SDK
//! (guest-examples/rust/wasmgate). It sends every message back to its
//! sender in the same frame type, allocating nothing: the id and message
//! are slices of the SDK's event buffer.
//!
//! Build (see guest-examples/rust/README.md; `make guests` does this):
//!
//!   rustc --edition 2021 -O --target wasm32-unknown-unknown --crate-type rlib \
//!         --crate-name wasmgate -o libwasmgate.rlib rust/wasmgate/src/lib.rs
//!   rustc --edition 2021 -O --target wasm32-unknown-unknown --crate-type cdylib \
//!         --extern wasmgate=libwasmgate.rlib -o rust-echo.wasm rust-echo/echo.rs

use wasmgate::{Client, Flags};

fn echo(c: Client, msg: &[u8], flags: Flags) {
    // A failed send (typically: the client has just disconnected) is not
    // worth a warning, as in the Go echo.
    let _ = c.send_flags(msg, flags & Flags::BINARY);
}

wasmgate::export! { on_message: echo }
