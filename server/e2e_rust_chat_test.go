package server_test

import "testing"

// The Rust examples (guest-examples/rust-echo, rust-chat, built by `make
// guests` on the SDK crate guest-examples/rust/wasmgate) against the same
// scenarios as the Go ones: /rust-chat speaks exactly the protocol of
// /chat, and every TestChat_* test runs against it too (chatModules).

// TestRustChat_ErrorsMatchGoChat sends the same bad requests to /chat and
// /rust-chat: the replies are the same (after "bad json: ", where each
// names the problem in its own words).
func TestRustChat_ErrorsMatchGoChat(t *testing.T) { chatErrorsMatchGo(t, "rust-chat") }

// TestRustChat_BadConfigRefused: a rate_limit that is not a number refuses
// the module with a log line naming it.
func TestRustChat_BadConfigRefused(t *testing.T) { chatBadConfigRefused(t, "rust-chat") }
