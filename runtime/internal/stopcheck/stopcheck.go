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
// Such a loop never leaves native code, and Go cannot preempt native code:
// while a guest spins, its goroutine keeps its P and every stop-the-world
// of the garbage collector waits for it, freezing the whole process, the
// goroutine that would set the global included. A Go host therefore needs
// Options.YieldEvery (InstrumentWith), which also makes loops leave native
// code periodically; see TestGCWhileSpinning.
//
// Only loops are checked, as with WithCloseOnContextDone: code without loops
// runs for a bounded time per call, but recursion can still call many
// functions (a binary recursion of depth 60 makes 2^60 calls) without ever
// reaching a check.
package stopcheck

import (
	"errors"
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
	loops       int    // loop instructions instrumented
	stopGlobal  uint32 // index of the added stop global
	tickGlobal  uint32 // index of the yield counter, if Options.YieldEvery > 0
	addedMemory bool   // a memory was created for memory.grow
}

// Options selects what InstrumentWith inserts in every loop.
type Options struct {
	// YieldEvery, when not zero, makes the guest also leave native code for
	// wazero's Go code once every YieldEvery loop iterations, counted over
	// all the loops of an instance, by executing memory.grow(0).
	//
	// Without it an instrumented loop never leaves native code, and Go
	// cannot preempt a goroutine running native code. A guest in a long or
	// endless loop then blocks every stop-the-world phase of the garbage
	// collector (which freezes all goroutines of the process, the one that
	// would set the stop global included: a deadlock), and with GOMAXPROCS
	// spinning guests no other goroutine runs at all. The yield gives the
	// scheduler a preemption point, at the price of a counter decrement per
	// iteration. The stop global is still tested on every iteration.
	//
	// A module without memory gets an empty one (0 pages, not exported) to
	// grow. The counter is one more global, not exported, after the stop
	// global.
	YieldEvery uint32
}

// DefaultYieldEvery is a YieldEvery that bounds the wait of a stop-the-world
// to a few microseconds of a tight loop. An exit costs about 30 ns, under
// 0.01 ns per iteration at this period: the price of yielding is the
// per-iteration counter (about 1 ns per iteration in BenchmarkStop), which
// does not depend on the period.
const DefaultYieldEvery = 1 << 12

// Instrument returns a copy of the binary module wasm in which every loop
// traps when the exported mutable i32 global named Export is non-zero; see
// the package documentation. The global is appended at the end of the global
// index space, so no existing index changes. All sections other than global,
// export and code are copied byte for byte, custom sections included; a
// missing global or export section is created in its place in the section
// order, right after the last section that must precede it.
//
// Instrument does not validate the module: wazero does, when it compiles the
// result. It returns an error wrapping ErrExportExists if the module already
// exports Export, one wrapping ErrUnsupported for an instruction it cannot
// decode, and other errors for malformed input.
//
// Warning: a loop instrumented this way never leaves native code, which Go
// cannot preempt, so a spinning guest blocks the garbage collector's
// stop-the-world and with it the whole process, including the goroutine
// that would stop it. Use InstrumentWith and Options.YieldEvery in a
// long-running host.
func Instrument(wasm []byte) ([]byte, error) {
	out, _, err := instrument(wasm, Options{})
	return out, err
}

// InstrumentWith is Instrument with options; InstrumentWith(wasm, Options{})
// is Instrument(wasm).
func InstrumentWith(wasm []byte, opts Options) ([]byte, error) {
	out, _, err := instrument(wasm, opts)
	return out, err
}

// header is the binary module preamble: magic and version 1.
const header = "\x00asm\x01\x00\x00\x00"

// exportKindGlobal is the export descriptor kind of a global.
const exportKindGlobal = 0x03

func instrument(wasm []byte, opts Options) ([]byte, stats, error) {
	var st stats
	if len(wasm) < len(header) || string(wasm[:len(header)]) != header {
		return nil, st, errors.New("not a WebAssembly 1.0 binary module (bad magic or version)")
	}
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, st, err
	}

	// What the rewrite needs from the module: how many functions, globals
	// and memories are imported, how many globals and memories are defined,
	// and whether the export name is free.
	var imp imports
	var definedGlobals, definedMemories uint32
	var memorySec, globalSec, exportSec, codeSec *section
	for i := range sections {
		s := &sections[i]
		switch s.id {
		case secImport:
			if imp, err = countImports(s.content); err != nil {
				return nil, st, fmt.Errorf("import section: %w", err)
			}
		case secMemory:
			memorySec = s
			r := reader{b: s.content}
			if definedMemories, err = r.u32(); err != nil {
				return nil, st, fmt.Errorf("memory section: %w", err)
			}
		case secGlobal:
			globalSec = s
			r := reader{b: s.content}
			if definedGlobals, err = r.u32(); err != nil {
				return nil, st, fmt.Errorf("global section: %w", err)
			}
		case secExport:
			exportSec = s
			if err := checkExports(s.content); err != nil {
				return nil, st, fmt.Errorf("export section: %w", err)
			}
		case secCode:
			codeSec = s
		}
	}
	if uint64(imp.globals)+uint64(definedGlobals)+2 > math.MaxUint32 {
		return nil, st, fmt.Errorf("too many globals (%d imported, %d defined)", imp.globals, definedGlobals)
	}

	// The new globals, appended after the existing ones: the stop flag and,
	// to yield, the iteration counter.
	st.stopGlobal = imp.globals + definedGlobals
	newGlobals := []byte{0x7f, 0x01, opI32Const, 0x00, opEnd} // mut i32 = 0
	nNewGlobals := uint32(1)
	check := stopCheck(st.stopGlobal)
	if opts.YieldEvery > 0 {
		st.tickGlobal = st.stopGlobal + 1
		newGlobals = append(newGlobals, 0x7f, 0x01, opI32Const)
		newGlobals = appendS32(newGlobals, int32(opts.YieldEvery-1))
		newGlobals = append(newGlobals, opEnd)
		nNewGlobals++
		check = append(check, yieldCheck(st.tickGlobal, opts.YieldEvery)...)
		st.addedMemory = imp.memories == 0 && definedMemories == 0
	}
	newExport := appendU32(nil, uint32(len(Export)))
	newExport = append(newExport, Export...)
	newExport = append(newExport, exportKindGlobal)
	newExport = appendU32(newExport, st.stopGlobal)

	// Sections to create because the module has none, in section order.
	type newSection struct {
		id      byte
		content []byte
	}
	var missing []newSection
	newMemory := []byte{0x00, 0} // limits: no maximum, minimum 0 pages
	if st.addedMemory && memorySec == nil {
		missing = append(missing, newSection{secMemory, append(appendU32(nil, 1), newMemory...)})
	}
	if globalSec == nil {
		missing = append(missing, newSection{secGlobal, append(appendU32(nil, nNewGlobals), newGlobals...)})
	}
	if exportSec == nil {
		missing = append(missing, newSection{secExport, append(appendU32(nil, 1), newExport...)})
	}

	out := make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, header...)
	// emitMissing writes the sections to create whose rank is below the
	// given one. It runs right after the header and after every non-custom
	// section, with the rank of the next non-custom section (math.MaxInt at
	// the end), so that a created section follows the section it must
	// follow and custom sections after that one stay after it: wazero's
	// decoder of the "name" section reads past a malformed section to the
	// end of the module, which a module ending with it survives only if it
	// stays last.
	emitMissing := func(rank int) error {
		for len(missing) > 0 && sectionRank(missing[0].id) < rank {
			var err error
			if out, err = appendSection(out, missing[0].id, missing[0].content); err != nil {
				return err
			}
			missing = missing[1:]
		}
		return nil
	}
	// nextRank returns the rank of the first non-custom section from index i.
	nextRank := func(i int) int {
		for ; i < len(sections); i++ {
			if sections[i].id != secCustom {
				return sectionRank(sections[i].id)
			}
		}
		return math.MaxInt
	}
	if err := emitMissing(nextRank(0)); err != nil {
		return nil, st, err
	}
	for i := range sections {
		s := &sections[i]
		switch s {
		case memorySec:
			if st.addedMemory { // an empty memory section
				out, err = extendVector(out, s, definedMemories, 1, newMemory)
			} else {
				out = append(out, s.raw...)
			}
		case globalSec:
			out, err = extendVector(out, s, definedGlobals, nNewGlobals, newGlobals)
		case exportSec:
			r := reader{b: s.content}
			n, _ := r.u32() // checkExports read it already
			out, err = extendVector(out, s, n, 1, newExport)
		case codeSec:
			var body []byte
			body, st.loops, err = rewriteCode(s.content, imp.funcs, check)
			if err == nil {
				out, err = appendSection(out, secCode, body)
			}
		default:
			out = append(out, s.raw...)
		}
		if err == nil && s.id != secCustom {
			err = emitMissing(nextRank(i + 1))
		}
		if err != nil {
			return nil, st, err
		}
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

// imports counts the imports of each kind that matters to the rewrite.
type imports struct {
	funcs, globals, memories uint32
}

// countImports decodes the import section.
func countImports(content []byte) (imports, error) {
	var imp imports
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return imp, err
	}
	for i := uint32(0); i < n; i++ {
		if err := imp.skipImport(&r); err != nil {
			return imp, fmt.Errorf("import %d: %w", i, err)
		}
	}
	if !r.eof() {
		return imp, fmt.Errorf("%d bytes after the last import", len(r.b)-r.pos)
	}
	return imp, nil
}

func (imp *imports) skipImport(r *reader) error {
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
		imp.funcs++
		_, err = r.u32()
	case importTable:
		err = r.tableType()
	case importMemory:
		imp.memories++
		err = r.limits()
	case importGlobal: // value type, mutability
		imp.globals++
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

// extendVector appends section s, a vector of n entries, with k more
// entries appended: the count is re-encoded and the entries are copied
// verbatim.
func extendVector(out []byte, s *section, n, k uint32, entries []byte) ([]byte, error) {
	if n > math.MaxUint32-k {
		return nil, fmt.Errorf("section %d is full", s.id)
	}
	r := reader{b: s.content}
	if _, err := r.u32(); err != nil {
		return nil, fmt.Errorf("section %d: %w", s.id, err)
	}
	return appendSection(out, s.id, appendU32(nil, n+k), s.content[r.pos:], entries)
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
