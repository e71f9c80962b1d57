// Package stopcheck rewrites a WebAssembly module so that the host can stop
// a runaway call cheaply.
//
// wazero's own mechanism, RuntimeConfig.WithCloseOnContextDone, makes every
// loop header call out of native code into Go to look at a flag, and makes
// every api.Function call start a goroutine that watches the context. That
// costs one to two microseconds per call and much more in loop-heavy guests.
// Instrument instead adds one mutable i32 global to the module, exports it as
// Export, and makes every loop test it on each iteration:
//
//	loop ...
//	  global.get $wasmgate_stop
//	  if
//	    unreachable
//	  end
//	  ...
//
// The host stops a call by setting the global to a non-zero value from any
// goroutine (api.MutableGlobal.Set): wazero's compiler reloads a global at a
// loop header, because the header has two predecessors, so the running loop
// sees the store at its next iteration and traps with "unreachable". The
// host must set it back to 0 before it calls the instance again.
//
// Only loops are checked: without a loop, wasm code can run only as long as
// its call depth allows, which the engine's stack limit bounds.
package stopcheck

import (
	"fmt"
	"math"
)

// Export is the name under which Instrument exports the stop global.
const Export = "wasmgate_stop"

// Error is the type of this package's sentinel errors. It is a string type so
// that they can be constants rather than package variables.
type Error string

// Error implements error.
func (e Error) Error() string { return string(e) }

const (
	// ErrExportExists is returned (wrapped) for a module that already
	// exports the name Export: exporting the stop global would make the
	// module invalid, and the host would stop the wrong thing.
	ErrExportExists Error = "module already exports " + Export

	// ErrUnsupported is returned (wrapped) for an instruction or encoding
	// the decoder does not know. Instrument refuses such a module instead of
	// guessing an instruction length, which could corrupt the rewrite.
	ErrUnsupported Error = "unsupported instruction"
)

// Section IDs.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank is the position of a known non-custom section in the order the
// binary format requires, or 0 for an unknown ID. The tag section (13) sits
// between memory and global, and data count (12) between element and code.
func sectionRank(id byte) int {
	switch id {
	case secType, secImport, secFunction, secTable, secMemory:
		return int(id)
	case secTag:
		return 6
	case secGlobal, secExport, secStart, secElement:
		return int(id) + 1
	case secDataCount:
		return 11
	case secCode:
		return 12
	case secData:
		return 13
	}
	return 0
}

// Import kinds.
const (
	importFunc   = 0x00
	importTable  = 0x01
	importMemory = 0x02
	importGlobal = 0x03
	importTag    = 0x04
)

// section is one section of the input module.
type section struct {
	id      byte
	raw     []byte // the whole section: id, size and content
	content []byte
	offset  int // of content in the module
}

// stats describes one rewrite; tests use it to check the loop count.
type stats struct {
	loops      int    // loop instructions instrumented
	stopGlobal uint32 // index of the added global
}

// Instrument returns a copy of the binary module wasm in which every loop
// traps when the exported mutable i32 global named Export is non-zero; see
// the package documentation. The global is appended at the end of the global
// index space, so no existing index changes. All sections other than global,
// export and code are copied byte for byte, custom sections included; a
// missing global or export section is created in its place in the section
// order.
//
// Instrument does not validate the module: wazero does, when it compiles the
// result. It returns an error wrapping ErrExportExists if the module already
// exports Export, one wrapping ErrUnsupported for an instruction it cannot
// decode, and other errors for malformed input.
func Instrument(wasm []byte) ([]byte, error) {
	out, _, err := instrument(wasm)
	return out, err
}

// header is the binary module preamble: magic and version 1.
const header = "\x00asm\x01\x00\x00\x00"

// exportKindGlobal is the export descriptor kind of a global.
const exportKindGlobal = 0x03

func instrument(wasm []byte) ([]byte, stats, error) {
	var st stats
	if len(wasm) < len(header) || string(wasm[:len(header)]) != header {
		return nil, st, fmt.Errorf("stopcheck: not a WebAssembly 1.0 binary module (bad magic or version)")
	}
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, st, fmt.Errorf("stopcheck: %w", err)
	}

	// What the rewrite needs from the module: how many functions and
	// globals are imported, how many globals are defined, and whether the
	// export name is free.
	var importedFuncs, importedGlobals, definedGlobals uint32
	var globalSec, exportSec, codeSec *section
	for i := range sections {
		s := &sections[i]
		switch s.id {
		case secImport:
			if importedFuncs, importedGlobals, err = countImports(s.content); err != nil {
				return nil, st, fmt.Errorf("stopcheck: import section: %w", err)
			}
		case secGlobal:
			globalSec = s
			r := reader{b: s.content}
			if definedGlobals, err = r.u32(); err != nil {
				return nil, st, fmt.Errorf("stopcheck: global section: %w", err)
			}
		case secExport:
			exportSec = s
			if err := checkExports(s.content); err != nil {
				return nil, st, fmt.Errorf("stopcheck: export section: %w", err)
			}
		case secCode:
			codeSec = s
		}
	}
	if uint64(importedGlobals)+uint64(definedGlobals) >= math.MaxUint32 {
		return nil, st, fmt.Errorf("stopcheck: too many globals (%d imported, %d defined)", importedGlobals, definedGlobals)
	}
	st.stopGlobal = importedGlobals + definedGlobals

	newGlobal := []byte{0x7f, 0x01, opI32Const, 0x00, opEnd} // mut i32 = i32.const 0
	newExport := appendU32(nil, uint32(len(Export)))
	newExport = append(newExport, Export...)
	newExport = append(newExport, exportKindGlobal)
	newExport = appendU32(newExport, st.stopGlobal)

	out := make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, header...)
	addedGlobal, addedExport := false, false
	// emitMissing writes the sections to create that must come before a
	// section of the given rank (math.MaxInt: the end of the module).
	emitMissing := func(rank int) error {
		var err error
		if globalSec == nil && !addedGlobal && rank > sectionRank(secGlobal) {
			out, err = appendSection(out, secGlobal, appendU32(nil, 1), newGlobal)
			addedGlobal = true
		}
		if err == nil && exportSec == nil && !addedExport && rank > sectionRank(secExport) {
			out, err = appendSection(out, secExport, appendU32(nil, 1), newExport)
			addedExport = true
		}
		return err
	}
	for i := range sections {
		s := &sections[i]
		if s.id != secCustom {
			if err := emitMissing(sectionRank(s.id)); err != nil {
				return nil, st, fmt.Errorf("stopcheck: %w", err)
			}
		}
		switch s {
		case globalSec:
			out, err = extendVector(out, s, definedGlobals, newGlobal)
		case exportSec:
			r := reader{b: s.content}
			n, _ := r.u32() // checkExports read it already
			out, err = extendVector(out, s, n, newExport)
		case codeSec:
			var body []byte
			body, st.loops, err = rewriteCode(s.content, importedFuncs, stopCheck(st.stopGlobal))
			if err == nil {
				out, err = appendSection(out, secCode, body)
			}
		default:
			out = append(out, s.raw...)
		}
		if err != nil {
			return nil, st, fmt.Errorf("stopcheck: %w", err)
		}
	}
	if err := emitMissing(math.MaxInt); err != nil {
		return nil, st, fmt.Errorf("stopcheck: %w", err)
	}
	return out, st, nil
}

// splitSections splits the module after its header into sections and checks
// their order, so that created sections can be placed correctly.
func splitSections(wasm []byte) ([]section, error) {
	var sections []section
	r := reader{b: wasm, pos: len(header)}
	lastRank := 0
	for !r.eof() {
		start := r.pos
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("size of section %d at offset %d: %w", id, start, err)
		}
		content, err := r.bytes(uint64(size))
		if err != nil {
			return nil, fmt.Errorf("section %d at offset %d: size %d: %w", id, start, size, err)
		}
		if id != secCustom {
			rank := sectionRank(id)
			if rank == 0 {
				return nil, fmt.Errorf("unknown section id %d at offset %d", id, start)
			}
			if rank <= lastRank {
				return nil, fmt.Errorf("section %d at offset %d is out of order or repeated", id, start)
			}
			lastRank = rank
		}
		sections = append(sections, section{id: id, raw: wasm[start:r.pos], content: content, offset: r.pos - len(content)})
	}
	return sections, nil
}

// countImports returns the number of imported functions and globals.
func countImports(content []byte) (funcs, globals uint32, err error) {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return 0, 0, err
	}
	for i := uint32(0); i < n; i++ {
		if err := skipImport(&r, &funcs, &globals); err != nil {
			return 0, 0, fmt.Errorf("import %d: %w", i, err)
		}
	}
	if !r.eof() {
		return 0, 0, fmt.Errorf("%d bytes after the last import", len(r.b)-r.pos)
	}
	return funcs, globals, nil
}

func skipImport(r *reader, funcs, globals *uint32) error {
	if _, err := r.name(); err != nil { // module
		return err
	}
	if _, err := r.name(); err != nil { // field
		return err
	}
	kind, err := r.byte()
	if err != nil {
		return err
	}
	switch kind {
	case importFunc: // type index
		*funcs++
		_, err = r.u32()
	case importTable:
		err = r.tableType()
	case importMemory:
		err = r.limits()
	case importGlobal: // value type, mutability
		*globals++
		if err = r.valType(); err == nil {
			_, err = r.byte()
		}
	case importTag: // attribute, type index
		if _, err = r.byte(); err == nil {
			_, err = r.u32()
		}
	default:
		return fmt.Errorf("unknown import kind %#02x", kind)
	}
	return err
}

// tableType reads a table type as wazero does: an optional 0x40 0x00 prefix
// announcing an initialiser expression (typed function references), the
// reference type, the limits, then the expression if announced.
func (r *reader) tableType() error {
	hasInit := false
	if r.pos < len(r.b) && r.b[r.pos] == 0x40 {
		hasInit = true
		if err := r.skip(2); err != nil {
			return err
		}
	}
	if err := r.valType(); err != nil {
		return err
	}
	if err := r.limits(); err != nil {
		return err
	}
	if hasInit {
		return walkExpr(r, nil)
	}
	return nil
}

// limits reads memory or table limits: a flag (bit 0: has maximum, bit 1:
// shared), the minimum and the optional maximum. The 64-bit flags of
// memory64 are refused, as wazero refuses them.
func (r *reader) limits() error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if flag > 0x03 {
		return fmt.Errorf("unsupported limits flag %#02x", flag)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag&0x01 != 0 {
		_, err = r.u32()
	}
	return err
}

// checkExports decodes the export section and fails if Export is taken.
func checkExports(content []byte) error {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		name, err := r.name()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		if string(name) == Export {
			return fmt.Errorf("export %d: %w", i, ErrExportExists)
		}
		if _, err := r.byte(); err != nil { // kind
			return fmt.Errorf("export %d: %w", i, err)
		}
		if _, err := r.u32(); err != nil { // index
			return fmt.Errorf("export %d: %w", i, err)
		}
	}
	if !r.eof() {
		return fmt.Errorf("%d bytes after the last export", len(r.b)-r.pos)
	}
	return nil
}

// extendVector appends section s, a vector of n entries, with one more entry
// appended: the count is re-encoded and the entries are copied verbatim.
func extendVector(out []byte, s *section, n uint32, entry []byte) ([]byte, error) {
	if n == math.MaxUint32 {
		return nil, fmt.Errorf("section %d is full", s.id)
	}
	r := reader{b: s.content}
	if _, err := r.u32(); err != nil {
		return nil, fmt.Errorf("section %d: %w", s.id, err)
	}
	return appendSection(out, s.id, appendU32(nil, n+1), s.content[r.pos:], entry)
}

// appendSection appends a section made of the concatenation of parts.
func appendSection(out []byte, id byte, parts ...[]byte) ([]byte, error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("section %d would be %d bytes, over the 4 GiB limit", id, size)
	}
	out = appendU32(append(out, id), uint32(size))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// rewriteCode returns the content of the code section with every function
// body instrumented, and the number of loops instrumented. importedFuncs
// turns a body's position into its function index for error messages.
func rewriteCode(content []byte, importedFuncs uint32, check []byte) ([]byte, int, error) {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return nil, 0, fmt.Errorf("code section: %w", err)
	}
	out := appendU32(make([]byte, 0, len(content)+len(content)/8), n)
	var body []byte // scratch: one rewritten body, before its size is known
	loops := 0
	for i := uint32(0); i < n; i++ {
		fn := uint64(importedFuncs) + uint64(i)
		size, err := r.u32()
		if err != nil {
			return nil, 0, fmt.Errorf("code section: function %d: body size: %w", fn, err)
		}
		in, err := r.bytes(uint64(size))
		if err != nil {
			return nil, 0, fmt.Errorf("code section: function %d: body of %d bytes: %w", fn, size, err)
		}
		var k int
		body, k, err = rewriteBody(body[:0], in, check)
		if err != nil {
			return nil, 0, fmt.Errorf("code section: function %d: %w", fn, err)
		}
		if len(body) > math.MaxUint32 {
			return nil, 0, fmt.Errorf("code section: function %d: body grows over 4 GiB", fn)
		}
		loops += k
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if !r.eof() {
		return nil, 0, fmt.Errorf("code section: %d bytes after the last body", len(r.b)-r.pos)
	}
	return out, loops, nil
}

// rewriteBody appends to dst the function body in (locals and instructions,
// without its size) with check inserted after the block type of every loop,
// and returns the number of loops.
func rewriteBody(dst, in, check []byte) ([]byte, int, error) {
	r := reader{b: in}
	if err := r.locals(); err != nil {
		return nil, 0, err
	}
	copied, loops := 0, 0
	err := walkExpr(&r, func(_, pos int) {
		dst = append(dst, in[copied:pos]...)
		dst = append(dst, check...)
		copied = pos
		loops++
	})
	if err != nil {
		return nil, 0, err
	}
	if !r.eof() {
		return nil, 0, fmt.Errorf("%d bytes after the end of the body", len(r.b)-r.pos)
	}
	return append(dst, in[copied:]...), loops, nil
}

// locals reads the local declarations at the start of a function body.
func (r *reader) locals() error {
	groups, err := r.u32()
	if err != nil {
		return fmt.Errorf("locals: %w", err)
	}
	for i := uint32(0); i < groups; i++ {
		if _, err := r.u32(); err != nil { // count
			return fmt.Errorf("locals: %w", err)
		}
		if err := r.valType(); err != nil {
			return fmt.Errorf("locals: %w", err)
		}
	}
	return nil
}
