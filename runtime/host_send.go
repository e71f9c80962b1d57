package runtime

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// send_to_client(id_ptr, id_len, msg_ptr, msg_len, flags)
func (h hostFuncs) sendToClient(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	id, e := readString(mem, stack, 0)
	msg, e2 := readMessage(mem, stack, 2, 4, abi.FlagBinary, h.maxSize)
	if e = firstErrno(e, e2); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	setErr(stack, h.host.SendToClient(ctx, id, msg))
}

// send_to_all(msg_ptr, msg_len, flags, only_ptr, only_len, exclude_ptr, exclude_len)
func (h hostFuncs) sendToAll(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	msg, e := readMessage(mem, stack, 0, 2, abi.FlagBinary|abi.FlagOnly, h.maxSize)
	only, e2 := readList(mem, stack, 3, h.maxSize)
	exclude, e3 := readList(mem, stack, 5, h.maxSize)
	if e = firstErrno(e, e2, e3); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	onlyGiven := api.DecodeU32(stack[2])&abi.FlagOnly != 0
	n, err := h.host.SendToAll(ctx, msg, only, onlyGiven, exclude)
	setCount(stack, n, err)
}

// send_to_uid(uids_ptr, uids_len, msg_ptr, msg_len, flags)
func (h hostFuncs) sendToUid(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	uids, e := readList(mem, stack, 0, h.maxSize)
	msg, e2 := readMessage(mem, stack, 2, 4, abi.FlagBinary, h.maxSize)
	if e = firstErrno(e, e2); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	n, err := h.host.SendToUid(ctx, uids, msg)
	setCount(stack, n, err)
}

// send_to_group(groups_ptr, groups_len, msg_ptr, msg_len, flags, exclude_ptr, exclude_len)
func (h hostFuncs) sendToGroup(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	groups, e := readList(mem, stack, 0, h.maxSize)
	msg, e2 := readMessage(mem, stack, 2, 4, abi.FlagBinary, h.maxSize)
	exclude, e3 := readList(mem, stack, 5, h.maxSize)
	if e = firstErrno(e, e2, e3); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	n, err := h.host.SendToGroup(ctx, groups, msg, exclude)
	setCount(stack, n, err)
}

// close_client(id_ptr, id_len, msg_ptr, msg_len, flags); flags bits 16–31
// carry the close code (abi.CloseCodeShift).
func (h hostFuncs) closeClient(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	code := int(uint32(stack[4]) >> abi.CloseCodeShift)
	if !abi.CloseCodeOK(code) {
		setErrno(stack, abi.ErrnoInvalid)
		return
	}
	stack[4] &= 1<<abi.CloseCodeShift - 1 // the message flags
	id, e := readString(mem, stack, 0)
	msg, e2 := readMessage(mem, stack, 2, 4, abi.FlagBinary, h.maxSize)
	if e = firstErrno(e, e2); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	var final *abi.Message
	if len(msg.Data) > 0 {
		final = &msg
	}
	setErr(stack, h.host.CloseClient(ctx, id, final, code))
}

// firstErrno returns the first code that is not success.
func firstErrno(es ...abi.Errno) abi.Errno {
	for _, e := range es {
		if e != abi.ErrnoSuccess {
			return e
		}
	}
	return abi.ErrnoSuccess
}
