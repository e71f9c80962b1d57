package stopcheck

import (
	"errors"
	"fmt"
)

// errEOF is returned when an immediate or a section runs past the end of its
// enclosing byte range: the module is truncated or a size is wrong.
const errEOF Error = "unexpected end of input"

// reader walks a byte slice. It never panics on malformed input: every read
// checks bounds and reports errEOF instead, so Instrument is safe on
// arbitrary bytes (see FuzzInstrument).
type reader struct {
	b   []byte
	pos int
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errEOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// bytes returns the next n bytes without copying.
func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.pos) {
		return nil, errEOF
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s, nil
}

func (r *reader) skip(n int) error {
	_, err := r.bytes(uint64(n))
	return err
}

// u32 reads an unsigned LEB128 of at most 5 bytes, rejecting values over
// 32 bits with the same rule as wazero's decoder, so that the length of every
// immediate we skip is the length wazero will read.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && c&0xf0 != 0 {
			return 0, errors.New("u32 LEB128 overflows 32 bits")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("u32 LEB128 longer than 5 bytes")
}

// signed reads a signed LEB128 of at most maxBytes bytes and the given bit
// width and returns its value sign-extended to int64. Over-long encodings and
// unused bits that are not a sign extension are errors, as in the spec.
func (r *reader) signed(bits, maxBytes int) (int64, error) {
	var v int64
	shift := 0
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 != 0 {
			continue
		}
		if i == maxBytes-1 {
			// The last byte holds bits-7*(maxBytes-1) value bits; the
			// rest (below the continuation bit) must repeat the sign.
			used := bits - 7*(maxBytes-1)
			rest := (c & 0x7f) >> (used - 1) // the sign bit and the unused bits
			if rest != 0 && rest != 0x7f>>(used-1) {
				return 0, fmt.Errorf("s%d LEB128 overflows", bits)
			}
		}
		if shift < 64 && c&0x40 != 0 {
			v |= -1 << shift
		}
		return v, nil
	}
	return 0, fmt.Errorf("s%d LEB128 longer than %d bytes", bits, maxBytes)
}

func (r *reader) s32() error {
	_, err := r.signed(32, 5)
	return err
}

func (r *reader) s33() (int64, error) { return r.signed(33, 5) }

func (r *reader) s64() error {
	_, err := r.signed(64, 10)
	return err
}

// name reads a length-prefixed byte string (a wasm "name"). UTF-8 validity
// is left to wazero: Instrument only needs to compare names byte for byte.
func (r *reader) name() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	return r.bytes(uint64(n))
}

// appendU32 appends v as an unsigned LEB128 in its shortest form.
func appendU32(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendS32 appends v as a signed LEB128 in its shortest form.
func appendS32(dst []byte, v int32) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}
