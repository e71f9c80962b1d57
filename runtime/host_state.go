package runtime

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// Host functions over the module's State (state.go): the key-value store,
// tasks and timers. They find the calling module through the instance in
// ctx; a call from outside an event (impossible through the ABI) is
// ErrnoInternal.

func stateOf(ctx context.Context) (*instance, *State) {
	inst := instanceFrom(ctx)
	if inst == nil {
		return nil, nil
	}
	return inst, inst.mod.state
}

func ttlArg(v uint64) (time.Duration, abi.Errno) {
	ms := int64(v)
	if ms < 0 || ms > int64(time.Duration(1<<62)/time.Millisecond) {
		return 0, abi.ErrnoInvalid
	}
	return time.Duration(ms) * time.Millisecond, abi.ErrnoSuccess
}

// kv_get(key_ptr, key_len, out_ptr, out_cap) -> size | -errno
func (h hostFuncs) kvGet(ctx context.Context, mod api.Module, stack []uint64) {
	_, st := stateOf(ctx)
	key, e := readString(mod.Memory(), stack, 0)
	if e == abi.ErrnoSuccess && st == nil {
		e = abi.ErrnoInternal
	}
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	v, err := st.kv.Get(ctx, key)
	if err == nil && len(v) == 0 {
		setResult(stack, 0) // present but empty: 0, not NotFound
		return
	}
	setBytes(mod.Memory(), stack, 2, v, err)
}

// kv_set(key_ptr, key_len, val_ptr, val_len, ttl_ms i64) -> 0 | -errno
func (h hostFuncs) kvSet(ctx context.Context, mod api.Module, stack []uint64) {
	_, st := stateOf(ctx)
	mem := mod.Memory()
	key, e := readString(mem, stack, 0)
	val, e2 := view(mem, stack, 2)
	ttl, e3 := ttlArg(stack[4])
	if e = firstErrno(e, e2, e3, h.sizeOK(len(val)), stateOK(st)); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	setErr(stack, st.kv.Set(ctx, key, val, ttl))
}

// kv_delete(key_ptr, key_len) -> 1 deleted | 0 absent | -errno
func (h hostFuncs) kvDelete(ctx context.Context, mod api.Module, stack []uint64) {
	_, st := stateOf(ctx)
	key, e := readString(mod.Memory(), stack, 0)
	if e = firstErrno(e, stateOK(st)); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	ok, err := st.kv.Delete(ctx, key)
	setBool(stack, ok, err)
}

// kv_incr(key_ptr, key_len, delta i64, ttl_ms i64, out_ptr) -> 0 | -errno;
// the new value is written to out_ptr as a little-endian i64.
func (h hostFuncs) kvIncr(ctx context.Context, mod api.Module, stack []uint64) {
	_, st := stateOf(ctx)
	mem := mod.Memory()
	key, e := readString(mem, stack, 0)
	ttl, e2 := ttlArg(stack[3])
	out := api.DecodeU32(stack[4])
	if _, ok := mem.Read(out, 8); !ok && e == abi.ErrnoSuccess {
		e = abi.ErrnoBadPointer
	}
	if e = firstErrno(e, e2, stateOK(st)); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	n, err := st.kv.Incr(ctx, key, int64(stack[2]), ttl)
	if err == nil {
		mem.WriteUint64Le(out, uint64(n))
	}
	setErr(stack, err)
}

// kv_cas(key_ptr, key_len, old_ptr, old_len, new_ptr, new_len, ttl_ms i64,
// flags) -> 1 swapped | 0 not | -errno
func (h hostFuncs) kvCAS(ctx context.Context, mod api.Module, stack []uint64) {
	_, st := stateOf(ctx)
	mem := mod.Memory()
	key, e := readString(mem, stack, 0)
	old, e2 := view(mem, stack, 2)
	val, e3 := view(mem, stack, 4)
	ttl, e4 := ttlArg(stack[6])
	flags := api.DecodeU32(stack[7])
	if flags&^abi.KVAbsent != 0 && e == abi.ErrnoSuccess {
		e = abi.ErrnoInvalid
	}
	if e = firstErrno(e, e2, e3, e4, h.sizeOK(len(val)), stateOK(st)); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	ok, err := st.kv.CompareAndSwap(ctx, key, old, flags&abi.KVAbsent != 0, val, ttl)
	setBool(stack, ok, err)
}

// task(payload_ptr, payload_len) -> i64 task id | -errno
func (h hostFuncs) task(ctx context.Context, mod api.Module, stack []uint64) {
	inst, st := stateOf(ctx)
	payload, e := readBytes(mod.Memory(), stack, 0, h.maxSize)
	if e = firstErrno(e, stateOK(st)); e == abi.ErrnoSuccess && (!inst.mod.exports.task || !inst.mod.exports.finish) {
		e = abi.ErrnoUnsupported
	}
	if e != abi.ErrnoSuccess {
		setErrno64(stack, e)
		return
	}
	id, err := st.tasks.submit(payload)
	if err != nil {
		setErrno64(stack, abi.ErrnoOf(err))
		return
	}
	stack[0] = api.EncodeI64(id)
}

// task_result(result_ptr, result_len) -> 0 | -errno; only inside on_task.
func (h hostFuncs) taskResult(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	if inst == nil || !inst.inTask {
		setErrno(stack, abi.ErrnoUnsupported)
		return
	}
	result, e := readBytes(mod.Memory(), stack, 0, h.maxSize)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	inst.taskResult = result
	setResult(stack, 0)
}

// set_timer(delay_ms i64, payload_ptr, payload_len) -> i64 timer id | -errno
func (h hostFuncs) setTimer(ctx context.Context, mod api.Module, stack []uint64) {
	inst, st := stateOf(ctx)
	delay, e := ttlArg(stack[0])
	payload, e2 := readBytes(mod.Memory(), stack, 1, h.maxSize)
	if e = firstErrno(e, e2, stateOK(st)); e == abi.ErrnoSuccess && !inst.mod.exports.timer {
		e = abi.ErrnoUnsupported
	}
	if e != abi.ErrnoSuccess {
		setErrno64(stack, e)
		return
	}
	id, err := st.timers.set(delay, payload)
	if err != nil {
		setErrno64(stack, abi.ErrnoOf(err))
		return
	}
	stack[0] = api.EncodeI64(id)
}

// clear_timer(timer_id i64) -> 1 cleared | 0 not pending | -errno
func (h hostFuncs) clearTimer(ctx context.Context, _ api.Module, stack []uint64) {
	_, st := stateOf(ctx)
	if st == nil {
		setErrno(stack, abi.ErrnoInternal)
		return
	}
	setBool(stack, st.timers.clear(int64(stack[0])), nil)
}

// setErrno64 is setErrno for the functions whose result is an i64 (task,
// set_timer): a negative errno, like the i32 ones.
func setErrno64(stack []uint64, e abi.Errno) { stack[0] = api.EncodeI64(-int64(e)) }

func stateOK(st *State) abi.Errno {
	if st == nil {
		return abi.ErrnoInternal
	}
	return abi.ErrnoSuccess
}

// sizeOK refuses a value longer than the configured message size.
func (h hostFuncs) sizeOK(n int) abi.Errno {
	if h.maxSize > 0 && n > h.maxSize {
		return abi.ErrnoTooLarge
	}
	return abi.ErrnoSuccess
}
