package abi

import (
	"encoding/binary"
	"fmt"
)

// A list (of client ids, uids, groups, handshake fields) crosses the ABI as
// the concatenation of its entries, each a 4-byte little-endian length followed
// by that many bytes. An empty list is zero bytes.

// ListSize returns the encoded size of items.
func ListSize(items []string) int {
	n := 0
	for _, s := range items {
		n += 4 + len(s)
	}
	return n
}

// AppendList appends the encoding of items to dst.
func AppendList(dst []byte, items []string) []byte {
	for _, s := range items {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// EncodeList returns the encoding of items.
func EncodeList(items []string) []byte {
	return AppendList(make([]byte, 0, ListSize(items)), items)
}

// DecodeList parses an encoded list. The strings it returns are copies, so b
// may be reused afterwards.
func DecodeList(b []byte) ([]string, error) {
	var out []string
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("list: %d trailing bytes, want a 4-byte length: %w", len(b)-off, ErrnoInvalid)
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		if n > len(b)-off {
			return nil, fmt.Errorf("list: entry of %d bytes overruns the %d left: %w", n, len(b)-off, ErrnoInvalid)
		}
		out = append(out, string(b[off:off+n]))
		off += n
	}
	return out, nil
}
