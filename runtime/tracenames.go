package runtime

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
)

// Readable trap backtraces. wazero names each frame of a trap's "wasm
// stack trace" "module.function": the function's name from the module's
// name section, or "$index" when it has none (a stripped module), and an
// instance of ours has an empty module name, so a frame reads
// ".$3(i32,i32,i32) i32". traceNames drops the empty module name and gives
// a nameless exported function its export name: "$3 on_message(…)".

// traceNames maps the index of each exported function that has no name in
// the name section to its export name; nil when there is none.
type traceNames map[uint32]string

func newTraceNames(c wazero.CompiledModule) traceNames {
	var names traceNames
	for name, def := range c.ExportedFunctions() {
		if def.Name() != "" {
			continue // the name section names it
		}
		if names == nil {
			names = traceNames{}
		}
		if old, ok := names[def.Index()]; !ok || name < old { // one name per function, always the same
			names[def.Index()] = name
		}
	}
	return names
}

// traceFrame matches a frame line of wazero's trace: tab, empty module
// name, dot, then the function's name or $index.
var traceFrame = regexp.MustCompile(`(?m)^\t\.(\$(\d+))?`)

// rewrite returns err with its trace frames renamed, or err itself when it
// has no trace. The result unwraps to err.
func (n traceNames) rewrite(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.Contains(msg, "wasm stack trace:") {
		return err
	}
	out := traceFrame.ReplaceAllStringFunc(msg, func(frame string) string {
		m := traceFrame.FindStringSubmatch(frame)
		if m[2] == "" {
			return "\t" // a named function: keep its name
		}
		idx, _ := strconv.ParseUint(m[2], 10, 32)
		if name, ok := n[uint32(idx)]; ok {
			return "\t" + m[1] + " " + name
		}
		return "\t" + m[1]
	})
	return &renamedErr{msg: out, err: err}
}

// renamedErr is an error whose text was rewritten; errors.Is and As see
// the original.
type renamedErr struct {
	msg string
	err error
}

func (e *renamedErr) Error() string { return e.msg }
func (e *renamedErr) Unwrap() error { return e.err }
