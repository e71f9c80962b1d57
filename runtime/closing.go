package runtime

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// The closing client's state (ABI.md §5.4, closing_state). The caller of
// OnClose reads it from its registry before removing the client and hands
// it over in the context: the server's Handler interface, which native Go
// handlers and tests implement too, keeps its OnClose(ctx, id) signature,
// and a caller without a state to give changes nothing.

// closingKey is the context key of WithClosingState.
type closingKey struct{}

// WithClosingState returns ctx carrying st, the state on_close's
// closing_state answers with when ctx is passed to OnClose.
func WithClosingState(ctx context.Context, st *abi.ClosingState) context.Context {
	return context.WithValue(ctx, closingKey{}, st)
}

func closingStateFrom(ctx context.Context) *abi.ClosingState {
	st, _ := ctx.Value(closingKey{}).(*abi.ClosingState)
	return st
}

// WantsClosingState reports whether on_close will ask for the closing
// client's state: the module exports on_close and imports closing_state.
// A caller may skip reading the state (registry round trips in cluster
// mode) for every other module.
func (m *Module) WantsClosingState() bool { return m.exports.close && m.exports.closingState }

// importsHost reports whether c imports the host function name.
func importsHost(c wazero.CompiledModule, name string) bool {
	for _, def := range c.ImportedFunctions() {
		if mod, n, _ := def.Import(); mod == abi.HostModule && n == name {
			return true
		}
	}
	return false
}

// closing_state(out_ptr, out_cap) -> list size | -errno: [uid, session,
// groups...] of the client whose on_close is running.
func (h hostFuncs) closingState(ctx context.Context, mod api.Module, stack []uint64) {
	inst := instanceFrom(ctx)
	switch {
	case inst == nil || inst.closing == nil && !inst.inClose:
		setErrno(stack, abi.ErrnoUnsupported)
	case inst.closing == nil:
		setErrno(stack, abi.ErrnoUnavailable)
	case inst.closing.Err != nil:
		setErr(stack, inst.closing.Err)
	default:
		setList(mod.Memory(), stack, 0, inst.closing.Fields(), nil)
	}
}
