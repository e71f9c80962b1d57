package runtime

import (
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// exportSet records which optional events a module implements.
type exportSet struct {
	initialize, start, handshake, connect, close bool
	task, finish, timer                          bool
	// closingState: the module imports closing_state, so on_close needs
	// the closing client's state (closing.go).
	closingState bool
}

// validate checks a compiled module against the ABI: its imports must all be
// known host functions (or WASI) with the right signatures, and it must export
// memory and the required functions. Errors name the offending item.
func validate(c wazero.CompiledModule) (exportSet, error) {
	if err := validateImports(c); err != nil {
		return exportSet{}, err
	}
	set, err := validateExports(c)
	set.closingState = importsHost(c, abi.FuncClosingState)
	return set, err
}

func validateImports(c wazero.CompiledModule) error {
	host := map[string]abi.Func{}
	for _, f := range abi.HostFuncs() {
		host[f.Name] = f
	}
	for _, def := range c.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case abi.WASIModule:
			continue
		case abi.HostModule:
			f, ok := host[name]
			if !ok {
				return fmt.Errorf("imports unknown host function %s.%s", mod, name)
			}
			if !sameSig(def, f.Params, f.Results) {
				return fmt.Errorf("imports %s.%s with signature %s, ABI v%d has %s",
					mod, name, sigString(def.ParamTypes(), def.ResultTypes()), abi.Version, sigString(toAPI(f.Params), toAPI(f.Results)))
			}
		default:
			return fmt.Errorf("imports %s.%s from unknown module %q (only %q and %q are provided)",
				mod, name, mod, abi.HostModule, abi.WASIModule)
		}
	}
	if mems := c.ImportedMemories(); len(mems) > 0 {
		mod, name, _ := mems[0].Import()
		return fmt.Errorf("imports memory %s.%s: a handler must export its own memory", mod, name)
	}
	return nil
}

func validateExports(c wazero.CompiledModule) (exportSet, error) {
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return exportSet{}, fmt.Errorf("does not export %q", abi.ExportMemory)
	}
	funcs := c.ExportedFunctions()
	has := map[string]bool{}
	for _, e := range abi.GuestExports() {
		def, ok := funcs[e.Name]
		if !ok {
			if e.Required {
				return exportSet{}, fmt.Errorf("does not export required function %q%s", e.Name, noExportsHint(funcs))
			}
			continue
		}
		if !sameSig(def, e.Params, e.Results) {
			return exportSet{}, fmt.Errorf("exports %q with signature %s, want %s",
				e.Name, sigString(def.ParamTypes(), def.ResultTypes()), sigString(toAPI(e.Params), toAPI(e.Results)))
		}
		has[e.Name] = true
	}
	_, init := funcs[abi.ExportInitialize]
	return exportSet{
		initialize: init,
		start:      has[abi.ExportOnStart],
		handshake:  has[abi.ExportOnHandshake],
		connect:    has[abi.ExportOnConnect],
		close:      has[abi.ExportOnClose],
		task:       has[abi.ExportOnTask],
		finish:     has[abi.ExportOnFinish],
		timer:      has[abi.ExportOnTimer],
	}, nil
}

func sameSig(def api.FunctionDefinition, params, results []abi.ValueType) bool {
	return slices.Equal(def.ParamTypes(), toAPI(params)) && slices.Equal(def.ResultTypes(), toAPI(results))
}

func toAPI(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}

func sigString(params, results []api.ValueType) string {
	return "(" + typeNames(params) + ") -> (" + typeNames(results) + ")"
}

func typeNames(ts []api.ValueType) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += api.ValueTypeName(t)
	}
	return s
}

// noExportsHint explains the commonest cause of a module that exports
// memory and no function at all: clang gives wasm32 symbols hidden
// visibility, and --export-dynamic exports only visible ones.
func noExportsHint(funcs map[string]api.FunctionDefinition) string {
	if len(funcs) > 0 {
		return ""
	}
	return `: the module exports no function at all, only memory. clang hides wasm32 symbols by default: ` +
		`mark each export __attribute__((export_name("on_message"))) or build with -fvisibility=default -Wl,--export-dynamic ` +
		`(abi/ABI.md §6; guest-examples/c/wasmgate.h does it for you)`
}
