package gateway

import "encoding/binary"

// Lists (client ids, uids, groups, handshake fields) cross the ABI as the
// concatenation of their entries, each a 4-byte little-endian length followed
// by that many bytes; an empty list is zero bytes (ABI.md §2).

// appendList appends the encoding of items to dst.
func appendList(dst []byte, items []string) []byte {
	for _, s := range items {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// decodeList parses an encoded list. The result never aliases b (its strings
// share one copy of b), and is non-nil even when empty so that it encodes to
// a JSON array.
func decodeList(b []byte) ([]string, bool) {
	n := 0
	for off := 0; off < len(b); n++ {
		if len(b)-off < 4 {
			return nil, false
		}
		l := binary.LittleEndian.Uint32(b[off:])
		off += 4
		if uint64(l) > uint64(len(b)-off) {
			return nil, false
		}
		off += int(l)
	}
	out := make([]string, 0, n)
	if n == 0 {
		return out, true
	}
	s := string(b)
	for off := 0; off < len(s); {
		l := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		out = append(out, s[off:off+l])
		off += l
	}
	return out, true
}
