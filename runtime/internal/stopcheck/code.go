package stopcheck

import "fmt"

// This file decodes function bodies. Finding every `loop` needs the exact
// length of every instruction's immediates, so the decoder knows the whole
// instruction set wazero v1.12 accepts (internal/wasm/func_validation.go and
// internal/engine/wazevo/frontend/lower.go): MVP, WebAssembly 2.0 (multi-value,
// reference types, bulk memory, non-trapping conversions, sign extension,
// SIMD), threads, tail calls, exception handling (try_table) and typed
// function references. Anything else is refused with ErrUnsupported rather
// than guessed at: a wrong length would shift the decoder into the middle of
// an immediate and corrupt the rewrite silently.

// stopCheck returns the instructions inserted at the top of every loop body:
//
//	global.get $stop
//	if (empty block type)
//	  unreachable
//	end
//
// A br to a loop label jumps to the instruction right after the loop's block
// type, so the check runs on entry and on every back edge. It leaves the
// loop's parameters on the stack untouched, so it is valid for every block
// type.
func stopCheck(stopGlobal uint32) []byte {
	b := appendU32([]byte{opGlobalGet}, stopGlobal)
	return append(b, opIf, blockTypeEmpty, opUnreachable, opEnd)
}

// yieldCheck returns the instructions that follow stopCheck when
// Options.YieldEvery is every (> 0):
//
//	global.get $tick
//	if
//	  global.get $tick
//	  i32.const 1
//	  i32.sub
//	  global.set $tick
//	else
//	  i32.const 0
//	  memory.grow 0   ;; leaves native code: a preemption point for Go
//	  drop
//	  i32.const every-1
//	  global.set $tick
//	end
//
// so one iteration in every leaves native code. memory.grow(0) changes
// nothing but is implemented by an exit to wazero's Go code.
func yieldCheck(tickGlobal, every uint32) []byte {
	tick := appendU32(nil, tickGlobal)
	b := append([]byte{opGlobalGet}, tick...)
	b = append(b, opIf, blockTypeEmpty, opGlobalGet)
	b = append(b, tick...)
	b = append(b, opI32Const, 1, opI32Sub, opGlobalSet)
	b = append(b, tick...)
	b = append(b, opElse, opI32Const, 0, opMemoryGrow, 0, opDrop, opI32Const)
	b = appendS32(b, int32(every-1))
	b = append(b, opGlobalSet)
	b = append(b, tick...)
	return append(b, opEnd)
}

// depthEnter returns the instructions that count a call against
// Options.MaxDepth at function entry:
//
//	global.get $depth
//	i32.eqz
//	if
//	  unreachable   ;; MaxDepth frames deep already
//	end
//	global.get $depth
//	i32.const 1
//	i32.sub
//	global.set $depth
func depthEnter(depthGlobal uint32) []byte {
	d := appendU32(nil, depthGlobal)
	b := append([]byte{opGlobalGet}, d...)
	b = append(b, opI32Eqz, opIf, blockTypeEmpty, opUnreachable, opEnd, opGlobalGet)
	b = append(b, d...)
	b = append(b, opI32Const, 1, opI32Sub, opGlobalSet)
	return append(b, d...)
}

// depthExit returns the instructions that give the frame back when the
// function returns: global.get $depth; i32.const 1; i32.add; global.set.
// They leave the operand stack as it is, so they fit before any return.
func depthExit(depthGlobal uint32) []byte {
	d := appendU32(nil, depthGlobal)
	b := append([]byte{opGlobalGet}, d...)
	b = append(b, opI32Const, 1, opI32Add, opGlobalSet)
	return append(b, d...)
}

// Single-byte opcodes the decoder needs by name.
const (
	opUnreachable       = 0x00
	opNop               = 0x01
	opBlock             = 0x02
	opLoop              = 0x03
	opIf                = 0x04
	opElse              = 0x05
	opLegacyTry         = 0x06
	opLegacyCatch       = 0x07
	opThrow             = 0x08
	opLegacyRethrow     = 0x09
	opThrowRef          = 0x0a
	opEnd               = 0x0b
	opBr                = 0x0c
	opBrIf              = 0x0d
	opBrTable           = 0x0e
	opReturn            = 0x0f
	opCall              = 0x10
	opCallIndirect      = 0x11
	opReturnCall        = 0x12
	opReturnCallInd     = 0x13
	opCallRef           = 0x14
	opReturnCallRef     = 0x15
	opLegacyDelegate    = 0x18
	opLegacyCatchAll    = 0x19
	opDrop              = 0x1a
	opSelect            = 0x1b
	opSelectTyped       = 0x1c
	opTryTable          = 0x1f
	opLocalGet          = 0x20
	opGlobalGet         = 0x23
	opGlobalSet         = 0x24
	opTableGet          = 0x25
	opTableSet          = 0x26
	opI32Load           = 0x28
	opI64Store32        = 0x3e
	opMemorySize        = 0x3f
	opMemoryGrow        = 0x40
	opI32Const          = 0x41
	opI64Const          = 0x42
	opF32Const          = 0x43
	opF64Const          = 0x44
	opI32Eqz            = 0x45
	opI32Add            = 0x6a
	opI32Sub            = 0x6b
	opI64Extend32S      = 0xc4
	opRefNull           = 0xd0
	opRefIsNull         = 0xd1
	opRefFunc           = 0xd2
	opRefAsNonNull      = 0xd4
	opBrOnNull          = 0xd5
	opBrOnNonNull       = 0xd6
	opPrefixMisc        = 0xfc
	opPrefixSIMD        = 0xfd
	opPrefixAtomic      = 0xfe
	blockTypeEmpty      = 0x40
	refTypeNullable     = 0x63 // (ref null ht): followed by a heap type
	refTypeNonNullable  = 0x64 // (ref ht): followed by a heap type
	s33RefNullable      = -29  // refTypeNullable read as an s33 block type
	s33RefNonNullable   = -28  // refTypeNonNullable read as an s33 block type
	catchKindCatch      = 0x00
	catchKindCatchRef   = 0x01
	catchKindCatchAll   = 0x02
	catchKindCatchAllRf = 0x03
)

// simdImm classifies the immediates of a 0xFD-prefixed instruction.
type simdImm uint8

const (
	simdUnknown    simdImm = iota // unassigned opcode
	simdNone                      // no immediate
	simdMemarg                    // memarg
	simdLane                      // one lane-index byte
	simdMemargLane                // memarg, then one lane-index byte
	simdBytes16                   // 16 raw bytes (v128.const, i8x16.shuffle)
)

// simdKind returns the immediate class of SIMD opcode op (0..255). The
// ranges are those of the final SIMD spec, which are exactly the opcodes
// wazero v1.12 defines in internal/wasm/instruction.go.
func simdKind(op uint32) simdImm {
	switch {
	case op <= 0x0b: // v128.load*, v128.load*_splat, v128.store
		return simdMemarg
	case op == 0x0c || op == 0x0d: // v128.const, i8x16.shuffle
		return simdBytes16
	case op <= 0x14: // i8x16.swizzle, *.splat
		return simdNone
	case op <= 0x22: // *.extract_lane*, *.replace_lane
		return simdLane
	case op <= 0x53: // comparisons, v128 bitwise ops, any_true
		return simdNone
	case op <= 0x5b: // v128.load*_lane, v128.store*_lane
		return simdMemargLane
	case op <= 0x5d: // v128.load32_zero, v128.load64_zero
		return simdMemarg
	case op <= 0xff:
		switch op {
		case 0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
			0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee:
			return simdUnknown
		}
		return simdNone
	}
	return simdUnknown // relaxed SIMD (0x100+) and beyond: wazero has none
}

// walkExpr decodes instructions from r up to and including the `end` that
// closes the enclosing body (a function body or a constant expression) and
// calls onLoop, if not nil, for every `loop` with the offsets of its opcode
// and of the byte just past its block type. Offsets are relative to r.b.
func walkExpr(r *reader, onLoop func(at, end int)) error {
	return walkCode(r, &visitor{onLoop: onLoop})
}

// limits are the index spaces the original module declares. walkCode
// refuses code that refers past them: the rewrite appends globals (and a
// memory to a module without one), and code addressing those would load
// after the rewrite although the module as written is invalid — a loop doing
// global.set on the stop global's index would clear every stop.
type limits struct {
	globals  uint32 // imported + defined
	memories uint32 // imported + defined
}

// visitor is what walkCode reports while it decodes.
type visitor struct {
	lim    *limits // nil: no index checks
	onLoop func(at, end int)
	// onExit, if not nil, is called for every instruction that leaves the
	// function — return and the return_call family — with the offset of
	// its opcode and the number of blocks open around it.
	onExit func(op byte, at, depth int)
}

// walkCode is walkExpr with index checks and more callbacks.
func walkCode(r *reader, v *visitor) error {
	depth := 0 // open blocks inside the body
	for {
		at := r.pos
		op, err := r.byte()
		if err != nil {
			return fmt.Errorf("at offset %d: body has no final end: %w", at, err)
		}
		if err := skipImmediates(r, op, at, v.lim); err != nil {
			return err
		}
		switch op {
		case opBlock, opIf, opTryTable:
			depth++
		case opLoop:
			depth++
			if v.onLoop != nil {
				v.onLoop(at, r.pos)
			}
		case opReturn, opReturnCall, opReturnCallInd, opReturnCallRef:
			if v.onExit != nil {
				v.onExit(op, at, depth)
			}
		case opEnd:
			if depth == 0 {
				return nil
			}
			depth--
		}
	}
}

// ErrUndeclared is returned (wrapped) for code that refers to a global or
// memory the module does not declare. Such a module is invalid, but the
// rewrite appends globals and may add a memory, after which the reference
// would resolve to them: it is refused before the rewrite.
const ErrUndeclared Error = "refers to an index the module does not declare"

// checkGlobal refuses a global.get/global.set of an undeclared global.
func (lim *limits) checkGlobal(op byte, idx uint32, at int) error {
	if lim == nil || idx < lim.globals {
		return nil
	}
	name := "global.get"
	if op == opGlobalSet {
		name = "global.set"
	}
	return fmt.Errorf("%s %d at offset %d: %w (it has %d globals)", name, idx, at, ErrUndeclared, lim.globals)
}

// checkMemory refuses a memory instruction on an undeclared memory.
func (lim *limits) checkMemory(what string, idx uint32, at int) error {
	if lim == nil || idx < lim.memories {
		return nil
	}
	if lim.memories == 0 {
		return fmt.Errorf("%s at offset %d: %w (it has no memory)", what, at, ErrUndeclared)
	}
	return fmt.Errorf("%s on memory %d at offset %d: %w (it has %d memories)", what, idx, at, ErrUndeclared, lim.memories)
}

// skipImmediates advances r past the immediates of op, which was read at
// offset at, and checks its global and memory indices against lim.
func skipImmediates(r *reader, op byte, at int, lim *limits) error {
	var err error
	switch {
	case op == opUnreachable, op == opNop, op == opElse, op == opEnd, op == opReturn,
		op == opThrowRef, op == opDrop, op == opSelect,
		op == opRefIsNull, op == opRefAsNonNull,
		opI32Eqz <= op && op <= opI64Extend32S: // numeric: no immediates
		return nil

	case op == opBlock, op == opLoop, op == opIf:
		err = r.blockType()

	case op == opTryTable:
		if err = r.blockType(); err == nil {
			err = r.catchClauses()
		}

	case op == opBr, op == opBrIf, op == opCall, op == opReturnCall,
		op == opCallRef, op == opReturnCallRef, op == opThrow,
		op == opBrOnNull, op == opBrOnNonNull, op == opRefFunc,
		opLocalGet <= op && op < opGlobalGet, // local.get/set/tee
		op == opTableGet, op == opTableSet:
		_, err = r.u32()

	case op == opGlobalGet, op == opGlobalSet:
		var idx uint32
		if idx, err = r.u32(); err == nil {
			return lim.checkGlobal(op, idx, at)
		}

	case op == opMemorySize, op == opMemoryGrow: // memory index
		var idx uint32
		if idx, err = r.u32(); err == nil {
			return lim.checkMemory(fmt.Sprintf("opcode %#02x", op), idx, at)
		}

	case op == opCallIndirect, op == opReturnCallInd: // type index, table index
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}

	case op == opBrTable:
		var n uint32
		if n, err = r.u32(); err != nil {
			break
		}
		for i := uint64(0); i <= uint64(n) && err == nil; i++ { // n labels + default
			_, err = r.u32()
		}

	case op == opSelectTyped:
		var n uint32
		if n, err = r.u32(); err != nil {
			break
		}
		for i := uint32(0); i < n && err == nil; i++ {
			err = r.valType()
		}

	case opI32Load <= op && op <= opI64Store32:
		var mem uint32
		if mem, err = r.memarg(); err == nil {
			return lim.checkMemory(fmt.Sprintf("opcode %#02x", op), mem, at)
		}

	case op == opI32Const:
		err = r.s32()
	case op == opI64Const:
		err = r.s64()
	case op == opF32Const:
		err = r.skip(4)
	case op == opF64Const:
		err = r.skip(8)

	case op == opRefNull:
		// A heap type. wazero reads an abstract type as one byte and a
		// concrete one as a u32; both have the same length as the spec's
		// s33 for every encoding wazero accepts.
		_, err = r.u32()

	case op == opPrefixMisc:
		return r.miscImmediates(at, lim)
	case op == opPrefixSIMD:
		return r.simdImmediates(at, lim)
	case op == opPrefixAtomic:
		return r.atomicImmediates(at, lim)

	case op == opLegacyTry, op == opLegacyCatch, op == opLegacyRethrow,
		op == opLegacyDelegate, op == opLegacyCatchAll:
		return fmt.Errorf("%w: legacy exception-handling opcode %#02x at offset %d (wazero rejects it too; translate to try_table)",
			ErrUnsupported, op, at)

	default:
		return fmt.Errorf("%w: opcode %#02x at offset %d", ErrUnsupported, op, at)
	}
	if err != nil {
		return fmt.Errorf("immediate of opcode %#02x at offset %d: %w", op, at, err)
	}
	return nil
}

// blockType reads a block type: an s33 that is either a negative value type
// code (0x40 for empty) or a type index; the reference-type codes 0x63/0x64
// are followed by a heap type (typed function references).
func (r *reader) blockType() error {
	v, err := r.s33()
	if err != nil {
		return err
	}
	if v == s33RefNullable || v == s33RefNonNullable {
		_, err = r.s33()
	}
	return err
}

// valType reads a value type: one byte, or 0x63/0x64 and a heap type.
func (r *reader) valType() error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b == refTypeNullable || b == refTypeNonNullable {
		_, err = r.s33()
	}
	return err
}

// memarg reads an alignment and an offset and returns the memory index.
// Bit 6 of the alignment flags a memory index (multi-memory); wazero
// refuses it, but reading it keeps the decoder aligned with the spec.
func (r *reader) memarg() (mem uint32, err error) {
	align, err := r.u32()
	if err != nil {
		return 0, err
	}
	if align&0x40 != 0 {
		if mem, err = r.u32(); err != nil {
			return 0, err
		}
	}
	_, err = r.u32()
	return mem, err
}

// catchClauses reads try_table's vector of catch clauses.
func (r *reader) catchClauses() error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case catchKindCatch, catchKindCatchRef: // tag index, label
			if _, err := r.u32(); err != nil {
				return err
			}
		case catchKindCatchAll, catchKindCatchAllRf: // label only
		default:
			return fmt.Errorf("%w: try_table catch kind %#02x", ErrUnsupported, kind)
		}
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// miscImmediates reads a 0xFC instruction after its prefix.
func (r *reader) miscImmediates(at int, lim *limits) error {
	sub, err := r.u32()
	if err != nil {
		return fmt.Errorf("opcode 0xfc at offset %d: %w", at, err)
	}
	var n int // number of u32 immediates
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // *.trunc_sat_*
		n = 0
	case 8: // memory.init data, mem
		n = 2
	case 9: // data.drop data
		n = 1
	case 10: // memory.copy dst, src
		n = 2
	case 11: // memory.fill mem
		n = 1
	case 12: // table.init elem, table
		n = 2
	case 13: // elem.drop elem
		n = 1
	case 14: // table.copy dst, src
		n = 2
	case 15, 16, 17: // table.grow, table.size, table.fill: table
		n = 1
	default:
		return fmt.Errorf("%w: opcode 0xfc %#x at offset %d", ErrUnsupported, sub, at)
	}
	var imm [2]uint32
	for i := 0; i < n; i++ {
		if imm[i], err = r.u32(); err != nil {
			return fmt.Errorf("immediate of opcode 0xfc %#x at offset %d: %w", sub, at, err)
		}
	}
	what := fmt.Sprintf("opcode 0xfc %#x", sub)
	switch sub {
	case 8: // memory.init data, mem
		return lim.checkMemory(what, imm[1], at)
	case 10: // memory.copy dst, src
		if err := lim.checkMemory(what, imm[0], at); err != nil {
			return err
		}
		return lim.checkMemory(what, imm[1], at)
	case 11: // memory.fill mem
		return lim.checkMemory(what, imm[0], at)
	}
	return nil
}

// simdImmediates reads a 0xFD instruction after its prefix.
//
// The spec encodes the SIMD sub-opcode as a u32 LEB128, but wazero reads a
// single byte. The two agree on canonical encodings: an opcode below 0x80 is
// one byte, and one in 0x80..0xFF is the byte itself followed by 0x01, which
// wazero then reads as a nop. Any other encoding is refused, as wazero would
// decode it differently from the spec.
func (r *reader) simdImmediates(at int, lim *limits) error {
	sub, err := r.byte()
	if err != nil {
		return fmt.Errorf("opcode 0xfd at offset %d: %w", at, err)
	}
	if sub >= 0x80 {
		hi, err := r.byte()
		if err != nil {
			return fmt.Errorf("opcode 0xfd at offset %d: %w", at, err)
		}
		if hi != 0x01 {
			return fmt.Errorf("%w: opcode 0xfd %#02x %#02x at offset %d (relaxed SIMD or a non-canonical encoding)",
				ErrUnsupported, sub, hi, at)
		}
	}
	mem, hasMem := uint32(0), false
	switch simdKind(uint32(sub)) {
	case simdNone:
	case simdMemarg:
		mem, err = r.memarg()
		hasMem = true
	case simdLane:
		err = r.skip(1)
	case simdMemargLane:
		if mem, err = r.memarg(); err == nil {
			err = r.skip(1)
		}
		hasMem = true
	case simdBytes16:
		err = r.skip(16)
	default:
		return fmt.Errorf("%w: opcode 0xfd %#x at offset %d", ErrUnsupported, sub, at)
	}
	if err != nil {
		return fmt.Errorf("immediate of opcode 0xfd %#x at offset %d: %w", sub, at, err)
	}
	if hasMem {
		return lim.checkMemory(fmt.Sprintf("opcode 0xfd %#x", sub), mem, at)
	}
	return nil
}

// atomicImmediates reads a 0xFE instruction after its prefix. Like SIMD,
// wazero reads the sub-opcode as one byte; every atomic opcode is below 0x80,
// where that equals the spec's LEB128.
func (r *reader) atomicImmediates(at int, lim *limits) error {
	sub, err := r.byte()
	if err != nil {
		return fmt.Errorf("opcode 0xfe at offset %d: %w", at, err)
	}
	switch {
	case sub == 0x03: // atomic.fence: one reserved 0x00 byte
		err = r.skip(1)
	case sub <= 0x02, // memory.atomic.notify, memory.atomic.wait32/64
		0x10 <= sub && sub <= 0x4e: // atomic loads, stores, rmw, cmpxchg
		var mem uint32
		if mem, err = r.memarg(); err == nil {
			err = lim.checkMemory(fmt.Sprintf("opcode 0xfe %#x", sub), mem, at)
			if err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: opcode 0xfe %#x at offset %d", ErrUnsupported, sub, at)
	}
	if err != nil {
		return fmt.Errorf("immediate of opcode 0xfe %#x at offset %d: %w", sub, at, err)
	}
	return nil
}
