package runtime

import (
	"context"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/runtime/internal/guestlog"
)

func (h hostFuncs) setSession(ctx context.Context, mod api.Module, stack []uint64) {
	h.writeSession(ctx, mod, stack, h.host.SetSession)
}

func (h hostFuncs) updateSession(ctx context.Context, mod api.Module, stack []uint64) {
	h.writeSession(ctx, mod, stack, h.host.UpdateSession)
}

// writeSession serves (id_ptr, id_len, json_ptr, json_len) functions.
func (h hostFuncs) writeSession(ctx context.Context, mod api.Module, stack []uint64, write func(context.Context, string, []byte) error) {
	mem := mod.Memory()
	id, e := readString(mem, stack, 0)
	doc, e2 := readBytes(mem, stack, 2, h.maxSize)
	if e = firstErrno(e, e2); e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	setErr(stack, write(ctx, id, doc))
}

func (h hostFuncs) getSession(ctx context.Context, mod api.Module, stack []uint64) {
	mem := mod.Memory()
	id, e := readString(mem, stack, 0)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	doc, err := h.host.GetSession(ctx, id)
	setBytes(mem, stack, 2, doc, err)
}

// log(level, msg_ptr, msg_len)
func (h hostFuncs) log(ctx context.Context, mod api.Module, stack []uint64) {
	level := api.DecodeI32(stack[0])
	msg, e := view(mod.Memory(), stack, 1)
	if e != abi.ErrnoSuccess {
		setErrno(stack, e)
		return
	}
	if level < abi.LogDebug || level > abi.LogError {
		setErrno(stack, abi.ErrnoInvalid)
		return
	}
	inst := instanceFrom(ctx)
	slevel := slog.Level(4 * (level - abi.LogInfo)) // debug -4, info 0, warn 4, error 8
	// A record the logger would discard costs no log budget.
	if msg = msg[:min(len(msg), guestlog.MaxLine)]; inst != nil && inst.mod.rt.log.Enabled(ctx, slevel) && inst.mod.logLimit.Allow(len(msg)) {
		inst.mod.rt.log.LogAttrs(ctx, slevel, string(msg), slog.String("module", inst.mod.name))
	}
	setResult(stack, 0)
}

// now() -> i64 nanoseconds since the Unix epoch.
func (h hostFuncs) now(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeI64(time.Now().UnixNano())
}
