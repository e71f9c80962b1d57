package runtime

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// Host functions about clients, uids and groups. Each reads its string
// arguments, then calls the host; on a bad argument it returns the errno
// without calling the host.

// pairOp serves (a_ptr, a_len, b_ptr, b_len) -> 0 functions such as
// bind_uid(id, uid) and join_group(id, group).
func (h hostFuncs) pairOp(ctx context.Context, mod api.Module, stack []uint64, op func(context.Context, string, string) error) {
	mem := mod.Memory()
	a, e := readString(mem, stack, 0)
	b, e2 := readString(mem, stack, 2)
	if e = firstErrno(e, e2); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	setErr(stack, op(ctx, a, b))
}

func (h hostFuncs) isOnline(ctx context.Context, mod api.Module, stack []uint64) {
	id, e := readString(mod.Memory(), stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	ok, err := h.host.IsOnline(ctx, id)
	setBool(stack, ok, err)
}

func (h hostFuncs) bindUid(ctx context.Context, mod api.Module, stack []uint64) {
	h.pairOp(ctx, mod, stack, h.host.BindUid)
}

func (h hostFuncs) unbindUid(ctx context.Context, mod api.Module, stack []uint64) {
	h.pairOp(ctx, mod, stack, h.host.UnbindUid)
}

func (h hostFuncs) isUidOnline(ctx context.Context, mod api.Module, stack []uint64) {
	uid, e := readString(mod.Memory(), stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	ok, err := h.host.IsUidOnline(ctx, uid)
	setBool(stack, ok, err)
}

func (h hostFuncs) getClientIdByUid(ctx context.Context, mod api.Module, stack []uint64) {
	h.listOf(ctx, mod, stack, h.host.GetClientIdByUid)
}

func (h hostFuncs) getUidByClientId(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	id, e := readString(mem, stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	uid, err := h.host.GetUidByClientId(ctx, id)
	setBytes(mem, stack, 2, []byte(uid), err)
}

func (h hostFuncs) joinGroup(ctx context.Context, mod api.Module, stack []uint64) {
	h.pairOp(ctx, mod, stack, h.host.JoinGroup)
}

func (h hostFuncs) leaveGroup(ctx context.Context, mod api.Module, stack []uint64) {
	h.pairOp(ctx, mod, stack, h.host.LeaveGroup)
}

func (h hostFuncs) ungroup(ctx context.Context, mod api.Module, stack []uint64) {
	group, e := readString(mod.Memory(), stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	setErr(stack, h.host.Ungroup(ctx, group))
}

func (h hostFuncs) getClientIdCountByGroup(ctx context.Context, mod api.Module, stack []uint64) {
	h.countOf(ctx, mod, stack, h.host.GetClientIdCountByGroup)
}

func (h hostFuncs) getUidCountByGroup(ctx context.Context, mod api.Module, stack []uint64) {
	h.countOf(ctx, mod, stack, h.host.GetUidCountByGroup)
}

func (h hostFuncs) getClientIdListByGroup(ctx context.Context, mod api.Module, stack []uint64) {
	h.listOf(ctx, mod, stack, h.host.GetClientIdListByGroup)
}

func (h hostFuncs) getUidListByGroup(ctx context.Context, mod api.Module, stack []uint64) {
	h.listOf(ctx, mod, stack, h.host.GetUidListByGroup)
}

func (h hostFuncs) getAllClientIdCount(ctx context.Context, _ api.Module, stack []uint64) {
	n, err := h.host.GetAllClientIdCount(ctx)
	setCount(stack, n, err)
}

func (h hostFuncs) getAllUidCount(ctx context.Context, _ api.Module, stack []uint64) {
	n, err := h.host.GetAllUidCount(ctx)
	setCount(stack, n, err)
}

func (h hostFuncs) getAllClientIdList(ctx context.Context, mod api.Module, stack []uint64) {
	items, err := h.host.GetAllClientIdList(ctx)
	setList(mod.Memory(), stack, 0, items, err)
}

func (h hostFuncs) getAllUidList(ctx context.Context, mod api.Module, stack []uint64) {
	items, err := h.host.GetAllUidList(ctx)
	setList(mod.Memory(), stack, 0, items, err)
}

func (h hostFuncs) getAllGroupIdList(ctx context.Context, mod api.Module, stack []uint64) {
	items, err := h.host.GetAllGroupIdList(ctx)
	setList(mod.Memory(), stack, 0, items, err)
}

// countOf serves (key_ptr, key_len) -> count functions.
func (h hostFuncs) countOf(ctx context.Context, mod api.Module, stack []uint64, get func(context.Context, string) (int, error)) {
	key, e := readString(mod.Memory(), stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	n, err := get(ctx, key)
	setCount(stack, n, err)
}

// listOf serves (key_ptr, key_len, out_ptr, out_cap) -> list functions.
func (h hostFuncs) listOf(ctx context.Context, mod api.Module, stack []uint64, get func(context.Context, string) ([]string, error)) {
	mem := mod.Memory()
	key, e := readString(mem, stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	items, err := get(ctx, key)
	setList(mem, stack, 2, items, err)
}
