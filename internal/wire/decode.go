package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Decoders for the raw values of a parsed (so well-formed) Request. Each
// reports ok=false when the value has another JSON type.

// String decodes a JSON string. Strings without escapes, the common case,
// are converted without a second parse.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if plain(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// plain reports whether a string body needs no decoding: no escapes and
// valid UTF-8 (encoding/json turns invalid bytes into U+FFFD).
func plain(inner []byte) bool {
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}

// Bytes is String returning bytes (a copy, never aliasing raw).
func Bytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	if plain(inner) {
		return append([]byte(nil), inner...), true
	}
	s, ok := String(raw)
	return []byte(s), ok
}

// Plain returns the body of a JSON string that needs no decoding (no
// escapes, valid UTF-8), aliasing raw; ok is false for any other value,
// which String or Bytes then decode.
func Plain(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	return inner, plain(inner)
}

// Key decodes a JSON string or number as a string: GatewayWorker uids and
// groups may be either. A number keeps its literal text ("4" for 4).
func Key(raw []byte) (string, bool) {
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return string(raw), true
	}
	return String(raw)
}

// Keys decodes a JSON array of strings or numbers.
func Keys(raw []byte) ([]string, bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	p := parser{b: raw, i: 1, depth: 1}
	out := []string{}
	for {
		p.space()
		if p.i >= len(p.b) {
			return nil, false
		}
		if p.b[p.i] == ']' {
			return out, true
		}
		v, err := p.value()
		if err != nil {
			return nil, false
		}
		k, ok := Key(v)
		if !ok {
			return nil, false
		}
		out = append(out, k)
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
		}
	}
}

// OneOrMany decodes a key or an array of keys.
func OneOrMany(raw []byte) ([]string, bool) {
	if len(raw) > 0 && raw[0] == '[' {
		return Keys(raw)
	}
	k, ok := Key(raw)
	if !ok {
		return nil, false
	}
	return []string{k}, true
}

// Bool decodes true or false.
func Bool(raw []byte) (bool, bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// IsNull reports whether a present value is null.
func IsNull(raw []byte) bool { return string(raw) == "null" }

// Object returns a copy of a JSON object value.
func Object(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	return append([]byte(nil), raw...), true
}
