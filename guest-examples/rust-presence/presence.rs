//! rust-presence: guest-examples/presence on the Rust SDK. on_close reads
//! the closing client's uid, session and groups with `wasmgate::closing`
//! (GatewayWorker's `$_SESSION` in onClose), although the client is already
//! gone from the registry, and tells the other members of its groups:
//!
//!   closed <client id> uid=<uid> groups=<g1,g2> session=<session JSON>
//!
//! Messages: "uid U" (bind), "join G" (join group), "session J" (set the
//! session); each is answered "ok" or "error: …".
//!
//! Build: see guest-examples/rust/README.md (`make guests` builds it).

use wasmgate::{Client, Flags};

fn on_message(c: Client, msg: &[u8], _: Flags) {
    let (cmd, arg) = match msg.iter().position(|&b| b == b' ') {
        Some(i) => (&msg[..i], &msg[i + 1..]),
        None => (msg, &b""[..]),
    };
    let r = match cmd {
        b"uid" => c.bind_uid(arg),
        b"join" => c.join_group(arg),
        b"session" => c.set_session(arg),
        _ => {
            let _ = c.send([&b"error: unknown command "[..], cmd].concat());
            return;
        }
    };
    let _ = match r {
        Ok(()) => c.send("ok"),
        Err(e) => c.send(format!("error: {e}")),
    };
}

fn on_close(c: Client) {
    let st = match wasmgate::closing() {
        Ok(st) => st,
        Err(e) => {
            wasmgate::error(format!("closing state of {}: {e}", c.id()));
            return;
        }
    };
    if st.groups.is_empty() {
        return;
    }
    let report = format!("closed {} uid={} groups={} session={}", c.id(), st.uid, st.groups.join(","), st.session);
    let _ = wasmgate::send_to_group(&st.groups, report, Flags::TEXT, ());
}

wasmgate::export! {
    on_message: on_message,
    on_close: on_close,
}
