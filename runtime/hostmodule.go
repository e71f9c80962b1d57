package runtime

import (
	"context"
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// hostFuncs implements the ABI's host functions on top of an abi.Host. Each
// function decodes its arguments from guest memory (bounds-checked), calls
// the host and encodes the result; none panics on guest input.
type hostFuncs struct {
	host    abi.Host
	maxSize int // largest message or session a guest may pass; 0: no limit
}

// impls maps every abi.HostFuncs name to its implementation.
func (h hostFuncs) impls() map[string]api.GoModuleFunc {
	return map[string]api.GoModuleFunc{
		abi.FuncSendToClient:            h.sendToClient,
		abi.FuncSendToAll:               h.sendToAll,
		abi.FuncCloseClient:             h.closeClient,
		abi.FuncIsOnline:                h.isOnline,
		abi.FuncBindUid:                 h.bindUid,
		abi.FuncUnbindUid:               h.unbindUid,
		abi.FuncIsUidOnline:             h.isUidOnline,
		abi.FuncGetClientIdByUid:        h.getClientIdByUid,
		abi.FuncGetUidByClientId:        h.getUidByClientId,
		abi.FuncSendToUid:               h.sendToUid,
		abi.FuncJoinGroup:               h.joinGroup,
		abi.FuncLeaveGroup:              h.leaveGroup,
		abi.FuncUngroup:                 h.ungroup,
		abi.FuncSendToGroup:             h.sendToGroup,
		abi.FuncGetClientIdCountByGroup: h.getClientIdCountByGroup,
		abi.FuncGetClientIdListByGroup:  h.getClientIdListByGroup,
		abi.FuncGetUidListByGroup:       h.getUidListByGroup,
		abi.FuncGetUidCountByGroup:      h.getUidCountByGroup,
		abi.FuncGetAllClientIdCount:     h.getAllClientIdCount,
		abi.FuncGetAllClientIdList:      h.getAllClientIdList,
		abi.FuncGetAllUidList:           h.getAllUidList,
		abi.FuncGetAllUidCount:          h.getAllUidCount,
		abi.FuncGetAllGroupIdList:       h.getAllGroupIdList,
		abi.FuncSetSession:              h.setSession,
		abi.FuncUpdateSession:           h.updateSession,
		abi.FuncGetSession:              h.getSession,
		abi.FuncLog:                     h.log,
		abi.FuncNow:                     h.now,
		abi.FuncKVGet:                   h.kvGet,
		abi.FuncKVSet:                   h.kvSet,
		abi.FuncKVDelete:                h.kvDelete,
		abi.FuncKVIncr:                  h.kvIncr,
		abi.FuncKVCAS:                   h.kvCAS,
		abi.FuncTask:                    h.task,
		abi.FuncTaskResult:              h.taskResult,
		abi.FuncSetTimer:                h.setTimer,
		abi.FuncClearTimer:              h.clearTimer,
		abi.FuncClosingState:            h.closingState,
	}
}

// instantiateHostModule registers every host function of the ABI, in the
// order abi.HostFuncs gives, under abi.HostModule.
func (r *Runtime) instantiateHostModule(ctx context.Context) error {
	bound, err := bindHostFuncs(abi.HostFuncs(), hostFuncs{host: r.host, maxSize: r.cfg.MaxMessageSize}.impls())
	if err != nil {
		return err
	}
	b := r.wz.NewHostModuleBuilder(abi.HostModule)
	for _, f := range bound {
		b.NewFunctionBuilder().
			WithGoModuleFunction(f.impl, toAPI(f.Params), toAPI(f.Results)).
			WithParameterNames(f.ParamNames...).
			Export(f.Name)
	}
	_, err = b.Instantiate(ctx)
	return err
}

// boundFunc is one row of the ABI's table with its implementation.
type boundFunc struct {
	abi.Func
	impl api.GoModuleFunc
}

// bindHostFuncs pairs each function of the table (abi.HostFuncs, the one
// source of truth for names and signatures) with its implementation. A
// table row without an implementation, or an implementation of a name the
// table does not have, is an error: the runtime refuses to start rather
// than serve a guest a partial or unofficial ABI.
func bindHostFuncs(table []abi.Func, impls map[string]api.GoModuleFunc) ([]boundFunc, error) {
	bound := make([]boundFunc, 0, len(table))
	var missing, extra []string
	inTable := make(map[string]bool, len(table))
	for _, f := range table {
		inTable[f.Name] = true
		impl := impls[f.Name]
		if impl == nil {
			missing = append(missing, f.Name)
			continue
		}
		bound = append(bound, boundFunc{Func: f, impl: impl})
	}
	for name := range impls {
		if !inTable[name] {
			extra = append(extra, name)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		slices.Sort(extra)
		return nil, fmt.Errorf("host functions out of step with abi.HostFuncs: no implementation of %v; implemented but not in the table: %v", missing, extra)
	}
	return bound, nil
}

// Result encoders: each writes the i32 result to stack[0].

func setResult(stack []uint64, v int32) { stack[0] = api.EncodeI32(v) }

func setErrno(stack []uint64, e abi.Errno) { setResult(stack, -int32(e)) }

func setErr(stack []uint64, err error) { setResult(stack, abi.Result(err)) }

func setCount(stack []uint64, n int, err error) {
	if err != nil {
		setErr(stack, err)
		return
	}
	setResult(stack, int32(min(n, 1<<31-1)))
}

func setBool(stack []uint64, b bool, err error) {
	n := 0
	if b {
		n = 1
	}
	setCount(stack, n, err)
}

func setList(mem api.Memory, stack []uint64, outAt int, items []string, err error) {
	if err != nil {
		setErr(stack, err)
		return
	}
	setResult(stack, writeOut(mem, stack, outAt, abi.EncodeList(items)))
}

func setBytes(mem api.Memory, stack []uint64, outAt int, data []byte, err error) {
	if err != nil {
		setErr(stack, err)
		return
	}
	setResult(stack, writeOut(mem, stack, outAt, data))
}
