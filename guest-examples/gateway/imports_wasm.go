//go:build wasm

package gateway

import "unsafe"

// Host functions of ABI.md §5 (module "wasmgate"). Every (ptr, len) pair is
// two i32s; unsafe.Pointer parameters are passed as 32-bit addresses. Callers
// keep the memory alive across the call with runtime.KeepAlive.

//go:wasmimport wasmgate send_to_client
func hostSendToClient(idPtr unsafe.Pointer, idLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32) int32

//go:wasmimport wasmgate send_to_all
func hostSendToAll(msgPtr unsafe.Pointer, msgLen uint32, flags uint32, onlyPtr unsafe.Pointer, onlyLen uint32, excludePtr unsafe.Pointer, excludeLen uint32) int32

//go:wasmimport wasmgate close_client
func hostCloseClient(idPtr unsafe.Pointer, idLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32) int32

//go:wasmimport wasmgate is_online
func hostIsOnline(idPtr unsafe.Pointer, idLen uint32) int32

//go:wasmimport wasmgate bind_uid
func hostBindUid(idPtr unsafe.Pointer, idLen uint32, uidPtr unsafe.Pointer, uidLen uint32) int32

//go:wasmimport wasmgate unbind_uid
func hostUnbindUid(idPtr unsafe.Pointer, idLen uint32, uidPtr unsafe.Pointer, uidLen uint32) int32

//go:wasmimport wasmgate is_uid_online
func hostIsUidOnline(uidPtr unsafe.Pointer, uidLen uint32) int32

//go:wasmimport wasmgate get_client_id_by_uid
func hostGetClientIdByUid(uidPtr unsafe.Pointer, uidLen uint32, outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate get_uid_by_client_id
func hostGetUidByClientId(idPtr unsafe.Pointer, idLen uint32, outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate send_to_uid
func hostSendToUid(uidsPtr unsafe.Pointer, uidsLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32) int32

//go:wasmimport wasmgate join_group
func hostJoinGroup(idPtr unsafe.Pointer, idLen uint32, groupPtr unsafe.Pointer, groupLen uint32) int32

//go:wasmimport wasmgate leave_group
func hostLeaveGroup(idPtr unsafe.Pointer, idLen uint32, groupPtr unsafe.Pointer, groupLen uint32) int32

//go:wasmimport wasmgate ungroup
func hostUngroup(groupPtr unsafe.Pointer, groupLen uint32) int32

//go:wasmimport wasmgate send_to_group
func hostSendToGroup(groupsPtr unsafe.Pointer, groupsLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32, excludePtr unsafe.Pointer, excludeLen uint32) int32

//go:wasmimport wasmgate get_client_id_count_by_group
func hostGetClientIdCountByGroup(groupPtr unsafe.Pointer, groupLen uint32) int32

//go:wasmimport wasmgate get_client_id_list_by_group
func hostGetClientIdListByGroup(groupPtr unsafe.Pointer, groupLen uint32, outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate get_uid_list_by_group
func hostGetUidListByGroup(groupPtr unsafe.Pointer, groupLen uint32, outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate get_uid_count_by_group
func hostGetUidCountByGroup(groupPtr unsafe.Pointer, groupLen uint32) int32

//go:wasmimport wasmgate get_all_client_id_count
func hostGetAllClientIdCount() int32

//go:wasmimport wasmgate get_all_client_id_list
func hostGetAllClientIdList(outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate get_all_uid_list
func hostGetAllUidList(outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate get_all_uid_count
func hostGetAllUidCount() int32

//go:wasmimport wasmgate get_all_group_id_list
func hostGetAllGroupIdList(outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate set_session
func hostSetSession(idPtr unsafe.Pointer, idLen uint32, jsonPtr unsafe.Pointer, jsonLen uint32) int32

//go:wasmimport wasmgate update_session
func hostUpdateSession(idPtr unsafe.Pointer, idLen uint32, jsonPtr unsafe.Pointer, jsonLen uint32) int32

//go:wasmimport wasmgate get_session
func hostGetSession(idPtr unsafe.Pointer, idLen uint32, outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate log
func hostLog(level int32, msgPtr unsafe.Pointer, msgLen uint32) int32

//go:wasmimport wasmgate now
func hostNow() int64

// Per-module state, tasks and timers (ABI.md §5.6–5.8). int64 parameters and
// results are i64.

//go:wasmimport wasmgate kv_get
func hostKVGet(keyPtr unsafe.Pointer, keyLen uint32, outPtr unsafe.Pointer, outCap uint32) int32

//go:wasmimport wasmgate kv_set
func hostKVSet(keyPtr unsafe.Pointer, keyLen uint32, valPtr unsafe.Pointer, valLen uint32, ttlMs int64) int32

//go:wasmimport wasmgate kv_delete
func hostKVDelete(keyPtr unsafe.Pointer, keyLen uint32) int32

//go:wasmimport wasmgate kv_incr
func hostKVIncr(keyPtr unsafe.Pointer, keyLen uint32, delta int64, ttlMs int64, outPtr unsafe.Pointer) int32

//go:wasmimport wasmgate kv_cas
func hostKVCAS(keyPtr unsafe.Pointer, keyLen uint32, oldPtr unsafe.Pointer, oldLen uint32, newPtr unsafe.Pointer, newLen uint32, ttlMs int64, flags uint32) int32

//go:wasmimport wasmgate task
func hostTask(payloadPtr unsafe.Pointer, payloadLen uint32) int64

//go:wasmimport wasmgate task_result
func hostTaskResult(resultPtr unsafe.Pointer, resultLen uint32) int32

//go:wasmimport wasmgate set_timer
func hostSetTimer(delayMs int64, payloadPtr unsafe.Pointer, payloadLen uint32) int64

//go:wasmimport wasmgate clear_timer
func hostClearTimer(timerID int64) int32

// on_close's view of the closing client (ABI.md §5.4).

//go:wasmimport wasmgate closing_state
func hostClosingState(outPtr unsafe.Pointer, outCap uint32) int32
