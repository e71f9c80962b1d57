//! The raw host functions of ABI version 1 (abi/ABI.md §5), one for one,
//! under the ABI's own names and parameter names. Every call returns the
//! ABI's result: a negative value `-e` is an error code (see
//! [`Errno`](crate::Errno)). Prefer the safe wrappers of the crate root;
//! these are here for what they do not cover (passing raw values on
//! purpose, such as a negative TTL in a conformance test).
//!
//! abi/sdk_test.go checks this block against `abi.HostFuncs()`: every
//! function, its parameter names and its wasm value types.
#![allow(missing_docs)]

#[link(wasm_import_module = "wasmgate")]
extern "C" {
    pub fn send_to_client(id_ptr: *const u8, id_len: u32, msg_ptr: *const u8, msg_len: u32, flags: i32) -> i32;
    pub fn send_to_all(msg_ptr: *const u8, msg_len: u32, flags: i32, only_ptr: *const u8, only_len: u32, exclude_ptr: *const u8, exclude_len: u32) -> i32;
    pub fn send_to_uid(uids_ptr: *const u8, uids_len: u32, msg_ptr: *const u8, msg_len: u32, flags: i32) -> i32;
    pub fn send_to_group(groups_ptr: *const u8, groups_len: u32, msg_ptr: *const u8, msg_len: u32, flags: i32, exclude_ptr: *const u8, exclude_len: u32) -> i32;
    pub fn close_client(id_ptr: *const u8, id_len: u32, msg_ptr: *const u8, msg_len: u32, flags: i32) -> i32;
    pub fn is_online(id_ptr: *const u8, id_len: u32) -> i32;
    pub fn bind_uid(id_ptr: *const u8, id_len: u32, uid_ptr: *const u8, uid_len: u32) -> i32;
    pub fn unbind_uid(id_ptr: *const u8, id_len: u32, uid_ptr: *const u8, uid_len: u32) -> i32;
    pub fn is_uid_online(uid_ptr: *const u8, uid_len: u32) -> i32;
    pub fn get_client_id_by_uid(uid_ptr: *const u8, uid_len: u32, out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn get_uid_by_client_id(id_ptr: *const u8, id_len: u32, out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn get_all_client_id_count() -> i32;
    pub fn get_all_client_id_list(out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn get_all_uid_list(out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn get_all_uid_count() -> i32;
    pub fn join_group(id_ptr: *const u8, id_len: u32, group_ptr: *const u8, group_len: u32) -> i32;
    pub fn leave_group(id_ptr: *const u8, id_len: u32, group_ptr: *const u8, group_len: u32) -> i32;
    pub fn ungroup(group_ptr: *const u8, group_len: u32) -> i32;
    pub fn get_client_id_count_by_group(group_ptr: *const u8, group_len: u32) -> i32;
    pub fn get_client_id_list_by_group(group_ptr: *const u8, group_len: u32, out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn get_uid_list_by_group(group_ptr: *const u8, group_len: u32, out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn get_uid_count_by_group(group_ptr: *const u8, group_len: u32) -> i32;
    pub fn get_all_group_id_list(out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn set_session(id_ptr: *const u8, id_len: u32, json_ptr: *const u8, json_len: u32) -> i32;
    pub fn update_session(id_ptr: *const u8, id_len: u32, json_ptr: *const u8, json_len: u32) -> i32;
    pub fn get_session(id_ptr: *const u8, id_len: u32, out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn closing_state(out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn log(level: i32, msg_ptr: *const u8, msg_len: u32) -> i32;
    pub fn now() -> i64;
    pub fn kv_get(key_ptr: *const u8, key_len: u32, out_ptr: *mut u8, out_cap: u32) -> i32;
    pub fn kv_set(key_ptr: *const u8, key_len: u32, val_ptr: *const u8, val_len: u32, ttl_ms: i64) -> i32;
    pub fn kv_delete(key_ptr: *const u8, key_len: u32) -> i32;
    pub fn kv_incr(key_ptr: *const u8, key_len: u32, delta: i64, ttl_ms: i64, out_ptr: *mut i64) -> i32;
    pub fn kv_cas(key_ptr: *const u8, key_len: u32, old_ptr: *const u8, old_len: u32, new_ptr: *const u8, new_len: u32, ttl_ms: i64, flags: i32) -> i32;
    pub fn task(payload_ptr: *const u8, payload_len: u32) -> i64;
    pub fn task_result(result_ptr: *const u8, result_len: u32) -> i32;
    pub fn set_timer(delay_ms: i64, payload_ptr: *const u8, payload_len: u32) -> i64;
    pub fn clear_timer(timer_id: i64) -> i32;
}
