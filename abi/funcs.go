package abi

import "strings"

// ValueType is a WebAssembly value type, encoded as in the binary format.
type ValueType byte

// The two value types the ABI uses. Pointers and lengths are i32.
const (
	I32 ValueType = 0x7f
	I64 ValueType = 0x7e
)

// Func describes one host function: its import name and its signature.
// ParamNames documents the parameters and names them in traces.
type Func struct {
	Name       string
	ParamNames []string
	Params     []ValueType
	Results    []ValueType
}

// Host function import names (module HostModule). Every function returns an
// i32 (except now, task and set_timer, which return an i64): a negative
// value is -Errno (now never fails); a non-negative value is the function's
// result (0, a count, a flag, an id, or the full size of an output). A
// function with (out_ptr, out_cap) writes its output only when it fits in
// out_cap bytes, and always returns its full size, so a guest whose buffer
// was too small calls again with a larger one.
const (
	FuncSendToClient            = "send_to_client"
	FuncSendToAll               = "send_to_all"
	FuncCloseClient             = "close_client"
	FuncIsOnline                = "is_online"
	FuncBindUid                 = "bind_uid"
	FuncUnbindUid               = "unbind_uid"
	FuncIsUidOnline             = "is_uid_online"
	FuncGetClientIdByUid        = "get_client_id_by_uid"
	FuncGetUidByClientId        = "get_uid_by_client_id"
	FuncSendToUid               = "send_to_uid"
	FuncJoinGroup               = "join_group"
	FuncLeaveGroup              = "leave_group"
	FuncUngroup                 = "ungroup"
	FuncSendToGroup             = "send_to_group"
	FuncGetClientIdCountByGroup = "get_client_id_count_by_group"
	FuncGetClientIdListByGroup  = "get_client_id_list_by_group"
	FuncGetUidListByGroup       = "get_uid_list_by_group"
	FuncGetUidCountByGroup      = "get_uid_count_by_group"
	FuncGetAllClientIdCount     = "get_all_client_id_count"
	FuncGetAllClientIdList      = "get_all_client_id_list"
	FuncGetAllUidList           = "get_all_uid_list"
	FuncGetAllUidCount          = "get_all_uid_count"
	FuncGetAllGroupIdList       = "get_all_group_id_list"
	FuncSetSession              = "set_session"
	FuncUpdateSession           = "update_session"
	FuncGetSession              = "get_session"
	FuncLog                     = "log"
	FuncNow                     = "now"

	// Per-module state, tasks and timers (ABI.md §5.6–5.8).
	FuncKVGet      = "kv_get"
	FuncKVSet      = "kv_set"
	FuncKVDelete   = "kv_delete"
	FuncKVIncr     = "kv_incr"
	FuncKVCAS      = "kv_cas"
	FuncTask       = "task"
	FuncTaskResult = "task_result"
	FuncSetTimer   = "set_timer"
	FuncClearTimer = "clear_timer"
	// FuncClosingState reads, during on_close, what the closing client had:
	// its uid, session and groups (ABI.md §5.4). Added to v1 without a bump.
	FuncClosingState = "closing_state"
)

func fn(name string, params ...string) Func {
	f := Func{Name: name, ParamNames: params, Results: []ValueType{I32}}
	f.Params = make([]ValueType, len(params))
	for i := range params {
		f.Params[i] = I32
	}
	return f
}

// HostFuncs returns every host function of this ABI version in a fixed order.
// It is the one table of names and signatures: the runtime registers exactly
// these and refuses to start if its implementations differ, and a guest
// importing anything else from HostModule is refused. A new host function
// is a row here, its implementation in runtime/hostmodule.go, a row in
// ABI.md §5 and an import in the Go guest SDK (guest-examples/gateway); the
// TestHostFuncs_* and TestDoc_* tests fail until all four agree.
func HostFuncs() []Func {
	now := Func{Name: FuncNow, Results: []ValueType{I64}}
	return []Func{
		fn(FuncSendToClient, "id_ptr", "id_len", "msg_ptr", "msg_len", "flags"),
		fn(FuncSendToAll, "msg_ptr", "msg_len", "flags", "only_ptr", "only_len", "exclude_ptr", "exclude_len"),
		fn(FuncCloseClient, "id_ptr", "id_len", "msg_ptr", "msg_len", "flags"),
		fn(FuncIsOnline, "id_ptr", "id_len"),
		fn(FuncBindUid, "id_ptr", "id_len", "uid_ptr", "uid_len"),
		fn(FuncUnbindUid, "id_ptr", "id_len", "uid_ptr", "uid_len"),
		fn(FuncIsUidOnline, "uid_ptr", "uid_len"),
		fn(FuncGetClientIdByUid, "uid_ptr", "uid_len", "out_ptr", "out_cap"),
		fn(FuncGetUidByClientId, "id_ptr", "id_len", "out_ptr", "out_cap"),
		fn(FuncSendToUid, "uids_ptr", "uids_len", "msg_ptr", "msg_len", "flags"),
		fn(FuncJoinGroup, "id_ptr", "id_len", "group_ptr", "group_len"),
		fn(FuncLeaveGroup, "id_ptr", "id_len", "group_ptr", "group_len"),
		fn(FuncUngroup, "group_ptr", "group_len"),
		fn(FuncSendToGroup, "groups_ptr", "groups_len", "msg_ptr", "msg_len", "flags", "exclude_ptr", "exclude_len"),
		fn(FuncGetClientIdCountByGroup, "group_ptr", "group_len"),
		fn(FuncGetClientIdListByGroup, "group_ptr", "group_len", "out_ptr", "out_cap"),
		fn(FuncGetUidListByGroup, "group_ptr", "group_len", "out_ptr", "out_cap"),
		fn(FuncGetUidCountByGroup, "group_ptr", "group_len"),
		fn(FuncGetAllClientIdCount),
		fn(FuncGetAllClientIdList, "out_ptr", "out_cap"),
		fn(FuncGetAllUidList, "out_ptr", "out_cap"),
		fn(FuncGetAllUidCount),
		fn(FuncGetAllGroupIdList, "out_ptr", "out_cap"),
		fn(FuncSetSession, "id_ptr", "id_len", "json_ptr", "json_len"),
		fn(FuncUpdateSession, "id_ptr", "id_len", "json_ptr", "json_len"),
		fn(FuncGetSession, "id_ptr", "id_len", "out_ptr", "out_cap"),
		fn(FuncLog, "level", "msg_ptr", "msg_len"),
		now,
		fn(FuncKVGet, "key_ptr", "key_len", "out_ptr", "out_cap"),
		typed(FuncKVSet, I32, "key_ptr", "key_len", "val_ptr", "val_len", "ttl_ms:i64"),
		fn(FuncKVDelete, "key_ptr", "key_len"),
		typed(FuncKVIncr, I32, "key_ptr", "key_len", "delta:i64", "ttl_ms:i64", "out_ptr"),
		typed(FuncKVCAS, I32, "key_ptr", "key_len", "old_ptr", "old_len", "new_ptr", "new_len", "ttl_ms:i64", "flags"),
		typed(FuncTask, I64, "payload_ptr", "payload_len"),
		fn(FuncTaskResult, "result_ptr", "result_len"),
		typed(FuncSetTimer, I64, "delay_ms:i64", "payload_ptr", "payload_len"),
		typed(FuncClearTimer, I32, "timer_id:i64"),
		fn(FuncClosingState, "out_ptr", "out_cap"),
	}
}

// typed is fn for signatures with i64 parameters (named "name:i64") or an
// i64 result.
func typed(name string, result ValueType, params ...string) Func {
	f := Func{Name: name, Results: []ValueType{result}}
	for _, p := range params {
		t := I32
		if n, ok := strings.CutSuffix(p, ":i64"); ok {
			p, t = n, I64
		}
		f.ParamNames = append(f.ParamNames, p)
		f.Params = append(f.Params, t)
	}
	return f
}

// Export describes a guest export the host may call.
type Export struct {
	Name     string
	Params   []ValueType
	Results  []ValueType
	Required bool
}

// GuestExports returns the functions a guest exports, required or not, with
// their signatures.
func GuestExports() []Export {
	i32 := []ValueType{I32}
	return []Export{
		{Name: ExportABIVersion, Results: i32, Required: true},
		{Name: ExportBuffer, Params: i32, Results: i32, Required: true},
		{Name: ExportOnMessage, Params: []ValueType{I32, I32, I32}, Results: i32, Required: true},
		{Name: ExportOnStart, Params: i32, Results: i32},
		{Name: ExportOnHandshake, Params: i32, Results: i32},
		{Name: ExportOnConnect, Params: i32, Results: i32},
		{Name: ExportOnClose, Params: i32, Results: i32},
		{Name: ExportOnTask, Params: []ValueType{I64, I32}, Results: i32},
		{Name: ExportOnFinish, Params: []ValueType{I64, I32, I32}, Results: i32},
		{Name: ExportOnTimer, Params: []ValueType{I64, I32}, Results: i32},
	}
}
