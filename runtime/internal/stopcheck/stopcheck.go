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
// The same check (and yield) also runs at every function entry, so that
// code without loops is bounded too: a binary recursion of depth 60 makes
// 2^60 calls without reaching a loop. Options.MaxDepth also bounds how
// deeply calls nest, so that a recursing guest traps after a few frames
// instead of growing the engine's call stack on the Go heap.
//
// The rewrite appends globals (and, to yield, a memory to a module without
// one), so it first refuses any reference to a global or memory the module
// does not declare (ErrUndeclared): such a module is invalid as written, but
// would resolve to the added ones after the rewrite and could clear its own
// stop flag.
package stopcheck

import (
	"fmt"
	"math"
	"slices"
)

// Export is the name under which Instrument exports the stop global.
const Export = "wasmgate_stop"

// ExportDepth is the name under which InstrumentWith exports the call depth
// budget global when Options.MaxDepth is set: the number of calls that may
// still nest. It is MaxDepth between calls; 0 after a call means the call
// trapped for being too deep.
const ExportDepth = "wasmgate_depth"

// Error is the type of this package's sentinel errors. It is a string type so
// that they can be constants rather than package variables.
type Error string

// Error implements error.
func (e Error) Error() string { return string(e) }

const (
	// ErrExportExists is returned (wrapped) for a module that already
	// exports the name Export (or ExportDepth, when it is added):
	// exporting the stop global would make the module invalid, and the
	// host would stop the wrong thing.
	ErrExportExists Error = "the module already exports a name the deadline rewrite adds"

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
	funcs       int    // function bodies given the entry check
	depthGlobal uint32 // index of the depth budget, if Options.MaxDepth > 0
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

	// MaxDepth, when not zero, bounds how deeply guest calls may nest: a
	// call made MaxDepth frames deep traps with "unreachable" before its
	// frame is used. Without it the bound is the engine's: wazero v1.12
	// grows a call stack on the Go heap up to ~400 MB. The budget is one
	// more mutable i32 global, exported as ExportDepth, decremented at
	// function entry and incremented when the function returns; at most
	// 2^31-1.
	//
	// A trap leaves the budget reduced by the frames it unwound, and so
	// does an exception caught frames above its throw (exception
	// handling): the host resets the global to MaxDepth, or discards the
	// instance, after a call that failed.
	MaxDepth uint32
}

// DefaultYieldEvery is a YieldEvery that bounds the wait of a stop-the-world
// to a few microseconds of a tight loop. An exit costs about 30 ns, under
// 0.01 ns per iteration at this period: the price of yielding is the
// per-iteration counter (about 1 ns per iteration in BenchmarkStop), which
// does not depend on the period.
const DefaultYieldEvery = 1 << 12

// Instrument returns a copy of the binary module wasm in which every loop
// and every function entry traps when the exported mutable i32 global named
// Export is non-zero; see the package documentation. The global is appended at the end of the global
// index space, so no existing index changes. All sections other than global,
// export and code are copied byte for byte, custom sections included; a
// missing global or export section is created in its place in the section
// order, right after the last section that must precede it.
//
// Instrument does not validate the module fully — wazero does, when it
// compiles the result — but it refuses every reference to an index the
// rewrite appends (ErrUndeclared): a global.get/global.set, an export or a
// memory instruction or data segment beyond what the module declares, which
// would otherwise resolve to the added globals or memory. Constant
// expressions need no such check: in WebAssembly 1.0 and 2.0 they may refer
// only to imported globals, and the added ones are defined, not imported.
// It returns an error wrapping ErrExportExists if the module already
// exports Export (or ExportDepth when it is added), one wrapping
// ErrUnsupported for an instruction it cannot decode, and other errors for
// malformed input.
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
		return nil, st, fmt.Errorf("not a WebAssembly 1.0 binary module (bad magic or version)")
	}
	if opts.MaxDepth > math.MaxInt32 {
		return nil, st, fmt.Errorf("MaxDepth %d is over 2^31-1", opts.MaxDepth)
	}
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, st, err
	}
	reserved := []string{Export}
	if opts.MaxDepth > 0 {
		reserved = append(reserved, ExportDepth)
	}

	// What the rewrite needs from the module: how many functions, globals
	// and memories are imported, how many globals and memories are defined,
	// and whether the export name is free.
	var imp imports
	var definedGlobals, definedMemories uint32
	var types []funcType
	var funcs []uint32 // type index of each defined function
	var memorySec, globalSec, exportSec, codeSec *section
	// Sections come in their binary order (splitSections checks it), so
	// the counts an export or data segment is checked against are final
	// when it is read.
	lim := func() *limits {
		return &limits{globals: imp.globals + definedGlobals, memories: imp.memories + definedMemories}
	}
	for i := range sections {
		s := &sections[i]
		switch s.id {
		case secType:
			if types, err = decodeTypes(s.content); err != nil {
				return nil, st, fmt.Errorf("type section: %w", err)
			}
		case secImport:
			if imp, err = countImports(s.content); err != nil {
				return nil, st, fmt.Errorf("import section: %w", err)
			}
		case secFunction:
			if funcs, err = decodeFuncs(s.content, len(types)); err != nil {
				return nil, st, fmt.Errorf("function section: %w", err)
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
			if err := checkExports(s.content, reserved, lim()); err != nil {
				return nil, st, fmt.Errorf("export section: %w", err)
			}
		case secCode:
			codeSec = s
		case secData:
			if err := checkData(s.content, lim()); err != nil {
				return nil, st, fmt.Errorf("data section: %w", err)
			}
		}
	}
	if uint64(imp.globals)+uint64(definedGlobals)+3 > math.MaxUint32 {
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
	newExport := appendExport(nil, Export, st.stopGlobal)
	nNewExports := uint32(1)
	rw := rewrite{lim: lim(), types: types, funcs: funcs, check: check, entry: check}
	if opts.MaxDepth > 0 {
		st.depthGlobal = st.stopGlobal + nNewGlobals
		newGlobals = append(newGlobals, 0x7f, 0x01, opI32Const)
		newGlobals = appendS32(newGlobals, int32(opts.MaxDepth))
		newGlobals = append(newGlobals, opEnd)
		nNewGlobals++
		newExport = appendExport(newExport, ExportDepth, st.depthGlobal)
		nNewExports++
		rw.entry = append(slices.Clip(check), depthEnter(st.depthGlobal)...)
		rw.exit = depthExit(st.depthGlobal)
	}

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
		missing = append(missing, newSection{secExport, append(appendU32(nil, nNewExports), newExport...)})
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
			out, err = extendVector(out, s, n, nNewExports, newExport)
		case codeSec:
			var body []byte
			body, st.loops, st.funcs, err = rw.code(s.content, imp.funcs)
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
	if codeSec == nil && len(funcs) > 0 {
		return nil, st, fmt.Errorf("function section declares %d functions, but there is no code section", len(funcs))
	}
	return out, st, nil
}

// appendExport appends one export entry of a global.
func appendExport(dst []byte, name string, global uint32) []byte {
	dst = appendU32(dst, uint32(len(name)))
	dst = append(dst, name...)
	dst = append(dst, exportKindGlobal)
	return appendU32(dst, global)
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

// checkExports decodes the export section and fails if a reserved name is
// taken or a global or memory export refers past lim.
func checkExports(content []byte, reserved []string, lim *limits) error {
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
		if slices.Contains(reserved, string(name)) {
			return fmt.Errorf("export %d %q: %w", i, name, ErrExportExists)
		}
		kind, err := r.byte()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		idx, err := r.u32()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		switch {
		case kind == exportKindGlobal && idx >= lim.globals:
			return fmt.Errorf("export %d (%q) of global %d: %w (it has %d globals)", i, name, idx, ErrUndeclared, lim.globals)
		case kind == importMemory && idx >= lim.memories:
			return fmt.Errorf("export %d (%q) of memory %d: %w (it has %d memories)", i, name, idx, ErrUndeclared, lim.memories)
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

// rewrite is what rewriteCode inserts into every function body.
type rewrite struct {
	lim   *limits
	types []funcType
	funcs []uint32 // type index of each defined function
	check []byte   // after the block type of every loop
	entry []byte   // at function entry
	exit  []byte   // before every return; empty: no depth bound
}

// funcType is what the rewrite needs of a function type.
type funcType struct {
	params, results uint32
	result          []byte // the encoding of the result type, if just one
}

// decodeTypes decodes the type section. wazero v1.12 knows function types
// (0x60), alone or in a recursive group (0x4e, count, function types), where
// each function type of the group takes one type index.
func decodeTypes(content []byte) ([]funcType, error) {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	types := make([]funcType, 0, min(n, uint32(len(content)))) // each type takes at least 3 bytes
	for i := uint32(0); i < n; i++ {
		group := uint32(1)
		if r.pos < len(r.b) && r.b[r.pos] == 0x4e {
			r.pos++
			if group, err = r.u32(); err != nil {
				return nil, fmt.Errorf("type %d: rec group: %w", i, err)
			}
		}
		for j := uint32(0); j < group; j++ {
			ft, err := r.funcType()
			if err != nil {
				return nil, fmt.Errorf("type %d: %w", i, err)
			}
			types = append(types, ft)
		}
	}
	if !r.eof() {
		return nil, fmt.Errorf("%d bytes after the last type", len(r.b)-r.pos)
	}
	return types, nil
}

// funcType reads one function type: 0x60, parameters, results.
func (r *reader) funcType() (funcType, error) {
	var ft funcType
	form, err := r.byte()
	if err != nil {
		return ft, err
	}
	if form != 0x60 {
		return ft, fmt.Errorf("%w: type form %#02x (not a function type)", ErrUnsupported, form)
	}
	for _, count := range []*uint32{&ft.params, &ft.results} {
		if *count, err = r.u32(); err != nil {
			return ft, err
		}
		for k := uint32(0); k < *count; k++ {
			start := r.pos
			if err := r.valType(); err != nil {
				return ft, err
			}
			if count == &ft.results && *count == 1 {
				ft.result = r.b[start:r.pos]
			}
		}
	}
	return ft, nil
}

// decodeFuncs decodes the function section: the type index of every
// defined function, each checked against the number of types.
func decodeFuncs(content []byte, types int) ([]uint32, error) {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	funcs := make([]uint32, 0, min(n, uint32(len(content))))
	for i := uint32(0); i < n; i++ {
		t, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		if uint64(t) >= uint64(types) {
			return nil, fmt.Errorf("defined function %d has type %d: %w (it has %d types)", i, t, ErrUndeclared, types)
		}
		funcs = append(funcs, t)
	}
	if !r.eof() {
		return nil, fmt.Errorf("%d bytes after the last function", len(r.b)-r.pos)
	}
	return funcs, nil
}

// checkData refuses an active data segment for a memory the module does
// not declare: the memory the rewrite adds would otherwise take it.
func checkData(content []byte, lim *limits) error {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		flag, err := r.u32()
		if err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		var mem uint32
		switch flag {
		case 0: // active, memory 0
		case 1: // passive
		case 2: // active, memory index
			if mem, err = r.u32(); err != nil {
				return fmt.Errorf("segment %d: %w", i, err)
			}
		default:
			return fmt.Errorf("segment %d: unknown flag %d", i, flag)
		}
		if flag != 1 {
			if err := lim.checkMemory(fmt.Sprintf("data segment %d", i), mem, r.pos); err != nil {
				return err
			}
			if err := walkExpr(&r, nil); err != nil {
				return fmt.Errorf("segment %d offset: %w", i, err)
			}
		}
		size, err := r.u32()
		if err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		if _, err := r.bytes(uint64(size)); err != nil {
			return fmt.Errorf("segment %d: %d bytes: %w", i, size, err)
		}
	}
	if !r.eof() {
		return fmt.Errorf("%d bytes after the last segment", len(r.b)-r.pos)
	}
	return nil
}

// code returns the content of the code section with every function body
// instrumented, the number of loops instrumented and the number of bodies.
// importedFuncs turns a body's position into its function index for error
// messages.
func (rw *rewrite) code(content []byte, importedFuncs uint32) ([]byte, int, int, error) {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("code section: %w", err)
	}
	if uint64(n) != uint64(len(rw.funcs)) {
		return nil, 0, 0, fmt.Errorf("code section has %d bodies for %d functions", n, len(rw.funcs))
	}
	out := appendU32(make([]byte, 0, len(content)+len(content)/8), n)
	var body []byte // scratch: one rewritten body, before its size is known
	loops := 0
	for i := uint32(0); i < n; i++ {
		fn := uint64(importedFuncs) + uint64(i)
		size, err := r.u32()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("code section: function %d: body size: %w", fn, err)
		}
		in, err := r.bytes(uint64(size))
		if err != nil {
			return nil, 0, 0, fmt.Errorf("code section: function %d: body of %d bytes: %w", fn, size, err)
		}
		var k int
		body, k, err = rw.body(body[:0], in, rw.types[rw.funcs[i]], rw.funcs[i])
		if err != nil {
			return nil, 0, 0, fmt.Errorf("code section: function %d: %w", fn, err)
		}
		if len(body) > math.MaxUint32 {
			return nil, 0, 0, fmt.Errorf("code section: function %d: body grows over 4 GiB", fn)
		}
		loops += k
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if !r.eof() {
		return nil, 0, 0, fmt.Errorf("code section: %d bytes after the last body", len(r.b)-r.pos)
	}
	return out, loops, int(n), nil
}

// body appends to dst the function body in (locals and instructions,
// without its size), of type ft (index typeIdx), rewritten, and returns the
// number of loops. rw.check goes after the block type of every loop and
// rw.entry before the first instruction. With a depth bound (rw.exit) the
// instructions are also wrapped in a block whose end runs rw.exit:
//
//	entry
//	block (result ...)    ;; the function's results
//	  ...                 ;; the body; return becomes br to this block
//	end                   ;; the body's own end
//	exit
//	end
//
// A br to the function's label now lands on the wrapper's end, so every
// way out passes exit except return_call*, which get exit in front (the
// callee counts itself) — and traps and caught exceptions (Options.MaxDepth).
func (rw *rewrite) body(dst, in []byte, ft funcType, typeIdx uint32) ([]byte, int, error) {
	r := reader{b: in}
	if err := r.locals(); err != nil {
		return nil, 0, err
	}
	dst = append(dst, in[:r.pos]...)
	dst = append(dst, rw.entry...)
	depth := len(rw.exit) > 0
	if depth {
		switch ft.results {
		case 0:
			dst = append(dst, opBlock, blockTypeEmpty)
		case 1:
			dst = append(dst, opBlock)
			dst = append(dst, ft.result...)
		default:
			// A multi-value block type is a type index, and the
			// function's own type takes its parameters: push them
			// (copies of the locals, left untouched) and drop them
			// inside, which the compiler optimises away.
			if typeIdx > math.MaxInt32 {
				return nil, 0, fmt.Errorf("type index %d too large for a block type", typeIdx)
			}
			for p := uint32(0); p < ft.params; p++ {
				dst = appendU32(append(dst, opLocalGet), p)
			}
			dst = appendS32(append(dst, opBlock), int32(typeIdx))
			for p := uint32(0); p < ft.params; p++ {
				dst = append(dst, opDrop)
			}
		}
	}
	copied, loops := r.pos, 0
	v := visitor{lim: rw.lim, onLoop: func(_, pos int) {
		dst = append(dst, in[copied:pos]...)
		dst = append(dst, rw.check...)
		copied = pos
		loops++
	}}
	if depth {
		v.onExit = func(op byte, at, open int) {
			dst = append(dst, in[copied:at]...)
			if op == opReturn {
				dst = appendU32(append(dst, opBr), uint32(open))
				copied = at + 1
				return
			}
			dst = append(dst, rw.exit...)
			copied = at
		}
	}
	if err := walkCode(&r, &v); err != nil {
		return nil, 0, err
	}
	if !r.eof() {
		return nil, 0, fmt.Errorf("%d bytes after the end of the body", len(r.b)-r.pos)
	}
	dst = append(dst, in[copied:]...)
	if depth {
		dst = append(dst, rw.exit...)
		dst = append(dst, opEnd)
	}
	return dst, loops, nil
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
