package runtime

import (
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
)

// Guest memory is untrusted: every (ptr, len) pair from a guest goes through
// these helpers, which copy what they return and report abi.ErrnoBadPointer
// instead of panicking.

// view returns the guest bytes at stack[i] (ptr) and stack[i+1] (len). The
// slice aliases guest memory: use it before the call returns, never keep it.
func view(mem api.Memory, stack []uint64, i int) ([]byte, abi.Errno) {
	ptr, n := api.DecodeU32(stack[i]), api.DecodeU32(stack[i+1])
	if n == 0 {
		return nil, abi.ErrnoSuccess
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, abi.ErrnoBadPointer
	}
	return b, abi.ErrnoSuccess
}

// readBytes is view plus a copy, refusing more than maxLen bytes (0: no
// limit) before copying anything: a guest cannot make the host allocate
// gigabytes.
func readBytes(mem api.Memory, stack []uint64, i int, maxLen int) ([]byte, abi.Errno) {
	if maxLen > 0 && uint64(api.DecodeU32(stack[i+1])) > uint64(maxLen) {
		return nil, abi.ErrnoTooLarge
	}
	b, e := view(mem, stack, i)
	if e != abi.ErrnoSuccess || b == nil {
		return nil, e
	}
	return append([]byte(nil), b...), e
}

// readString reads a non-empty string argument.
func readString(mem api.Memory, stack []uint64, i int) (string, abi.Errno) {
	b, e := view(mem, stack, i)
	if e != abi.ErrnoSuccess {
		return "", e
	}
	if len(b) == 0 {
		return "", abi.ErrnoInvalid
	}
	return string(b), abi.ErrnoSuccess
}

// MaxListItems bounds the entries of one list argument (uids, groups,
// client ids to include or exclude): a list of empty strings costs the
// guest 4 bytes an entry and the host a 16-byte string header an entry,
// so the byte bound alone (readList) would still let a 64 MiB list make
// 16M strings per call.
const MaxListItems = 16384

// readList decodes an abi list argument, refusing with abi.ErrnoTooLarge a
// list over maxLen bytes (0: no limit) before reading it, or over
// MaxListItems entries before making any string.
func readList(mem api.Memory, stack []uint64, i int, maxLen int) ([]string, abi.Errno) {
	if maxLen > 0 && uint64(api.DecodeU32(stack[i+1])) > uint64(maxLen) {
		return nil, abi.ErrnoTooLarge
	}
	b, e := view(mem, stack, i)
	if e != abi.ErrnoSuccess {
		return nil, e
	}
	return decodeList(b, MaxListItems)
}

// decodeList is abi.DecodeList with an entry bound: it counts the entries
// (checking the encoding) before it allocates anything.
func decodeList(b []byte, maxItems int) ([]string, abi.Errno) {
	n := 0
	for off := 0; off < len(b); n++ {
		if n == maxItems {
			return nil, abi.ErrnoTooLarge
		}
		if len(b)-off < 4 {
			return nil, abi.ErrnoInvalid
		}
		size := uint64(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		if size > uint64(len(b)-off) {
			return nil, abi.ErrnoInvalid
		}
		off += int(size)
	}
	if n == 0 {
		return nil, abi.ErrnoSuccess
	}
	items := make([]string, 0, n)
	for off := 0; off < len(b); {
		size := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		items = append(items, string(b[off:off+size]))
		off += size
	}
	return items, abi.ErrnoSuccess
}

// readMessage reads a message at stack[i], stack[i+1] with flags at
// stack[flagsAt]. allowed lists the flag bits this function accepts.
func readMessage(mem api.Memory, stack []uint64, i, flagsAt int, allowed uint32, maxLen int) (abi.Message, abi.Errno) {
	flags := api.DecodeU32(stack[flagsAt])
	if flags&^allowed != 0 {
		return abi.Message{}, abi.ErrnoInvalid
	}
	data, e := readBytes(mem, stack, i, maxLen)
	return abi.Message{Data: data, Binary: flags&abi.FlagBinary != 0}, e
}

// writeOut writes data to the (out_ptr, out_cap) pair at stack[i] if it
// fits, and returns its full size (or -ErrnoBadPointer).
func writeOut(mem api.Memory, stack []uint64, i int, data []byte) int32 {
	ptr, capacity := api.DecodeU32(stack[i]), api.DecodeU32(stack[i+1])
	if uint64(len(data)) > uint64(capacity) || len(data) == 0 {
		return int32(len(data))
	}
	if !mem.Write(ptr, data) {
		return -int32(abi.ErrnoBadPointer)
	}
	return int32(len(data))
}
