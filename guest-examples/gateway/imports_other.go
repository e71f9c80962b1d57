//go:build !wasm

package gateway

import (
	"time"
	"unsafe"
)

// Stand-ins for the host functions when the package is compiled for a
// non-wasm target (for unit tests and editors): every call fails with
// ErrnoInternal, and now reads the local clock.

func hostSendToClient(idPtr unsafe.Pointer, idLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostSendToAll(msgPtr unsafe.Pointer, msgLen uint32, flags uint32, onlyPtr unsafe.Pointer, onlyLen uint32, excludePtr unsafe.Pointer, excludeLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostCloseClient(idPtr unsafe.Pointer, idLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostIsOnline(idPtr unsafe.Pointer, idLen uint32) int32 { return -int32(ErrnoInternal) }

func hostBindUid(idPtr unsafe.Pointer, idLen uint32, uidPtr unsafe.Pointer, uidLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostUnbindUid(idPtr unsafe.Pointer, idLen uint32, uidPtr unsafe.Pointer, uidLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostIsUidOnline(uidPtr unsafe.Pointer, uidLen uint32) int32 { return -int32(ErrnoInternal) }

func hostGetClientIdByUid(uidPtr unsafe.Pointer, uidLen uint32, outPtr unsafe.Pointer, outCap uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetUidByClientId(idPtr unsafe.Pointer, idLen uint32, outPtr unsafe.Pointer, outCap uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostSendToUid(uidsPtr unsafe.Pointer, uidsLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostJoinGroup(idPtr unsafe.Pointer, idLen uint32, groupPtr unsafe.Pointer, groupLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostLeaveGroup(idPtr unsafe.Pointer, idLen uint32, groupPtr unsafe.Pointer, groupLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostUngroup(groupPtr unsafe.Pointer, groupLen uint32) int32 { return -int32(ErrnoInternal) }

func hostSendToGroup(groupsPtr unsafe.Pointer, groupsLen uint32, msgPtr unsafe.Pointer, msgLen uint32, flags uint32, excludePtr unsafe.Pointer, excludeLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetClientIdCountByGroup(groupPtr unsafe.Pointer, groupLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetClientIdListByGroup(groupPtr unsafe.Pointer, groupLen uint32, outPtr unsafe.Pointer, outCap uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetUidListByGroup(groupPtr unsafe.Pointer, groupLen uint32, outPtr unsafe.Pointer, outCap uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetUidCountByGroup(groupPtr unsafe.Pointer, groupLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetAllClientIdCount() int32 { return -int32(ErrnoInternal) }

func hostGetAllClientIdList(outPtr unsafe.Pointer, outCap uint32) int32 { return -int32(ErrnoInternal) }

func hostGetAllUidList(outPtr unsafe.Pointer, outCap uint32) int32 { return -int32(ErrnoInternal) }

func hostGetAllUidCount() int32 { return -int32(ErrnoInternal) }

func hostGetAllGroupIdList(outPtr unsafe.Pointer, outCap uint32) int32 { return -int32(ErrnoInternal) }

func hostSetSession(idPtr unsafe.Pointer, idLen uint32, jsonPtr unsafe.Pointer, jsonLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostUpdateSession(idPtr unsafe.Pointer, idLen uint32, jsonPtr unsafe.Pointer, jsonLen uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostGetSession(idPtr unsafe.Pointer, idLen uint32, outPtr unsafe.Pointer, outCap uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostLog(level int32, msgPtr unsafe.Pointer, msgLen uint32) int32 { return -int32(ErrnoInternal) }

func hostNow() int64 { return time.Now().UnixNano() }

func hostKVGet(keyPtr unsafe.Pointer, keyLen uint32, outPtr unsafe.Pointer, outCap uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostKVSet(keyPtr unsafe.Pointer, keyLen uint32, valPtr unsafe.Pointer, valLen uint32, ttlMs int64) int32 {
	return -int32(ErrnoInternal)
}

func hostKVDelete(keyPtr unsafe.Pointer, keyLen uint32) int32 { return -int32(ErrnoInternal) }

func hostKVIncr(keyPtr unsafe.Pointer, keyLen uint32, delta int64, ttlMs int64, outPtr unsafe.Pointer) int32 {
	return -int32(ErrnoInternal)
}

func hostKVCAS(keyPtr unsafe.Pointer, keyLen uint32, oldPtr unsafe.Pointer, oldLen uint32, newPtr unsafe.Pointer, newLen uint32, ttlMs int64, flags uint32) int32 {
	return -int32(ErrnoInternal)
}

func hostTask(payloadPtr unsafe.Pointer, payloadLen uint32) int64 { return -int64(ErrnoInternal) }

func hostTaskResult(resultPtr unsafe.Pointer, resultLen uint32) int32 { return -int32(ErrnoInternal) }

func hostSetTimer(delayMs int64, payloadPtr unsafe.Pointer, payloadLen uint32) int64 {
	return -int64(ErrnoInternal)
}

func hostClearTimer(timerID int64) int32 { return -int32(ErrnoInternal) }

func hostClosingState(outPtr unsafe.Pointer, outCap uint32) int32 { return -int32(ErrnoInternal) }
