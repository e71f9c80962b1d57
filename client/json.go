package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// response is one parsed answer line; its slices point into the line.
type response struct {
	id     []byte // raw JSON of "id", nil if absent
	ok     bool
	result []byte // raw JSON of "result", nil if absent
	errObj []byte // raw JSON of "error", nil if absent
}

// parseResponse splits an answer line {"id":…,"ok":…,"result"|"error":…}
// into its parts without allocating. Keys may come in any order with any
// whitespace; unknown keys are skipped. Values are delimited, not fully
// validated: results are validated when they are decoded.
func parseResponse(b []byte) (r response, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return r, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return r, false // no "ok"
	}
	sawOK := false
	for {
		if i >= len(b) || b[i] != '"' {
			return r, false
		}
		kEnd, good := skipString(b, i)
		if !good {
			return r, false
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return r, false
		}
		i = skipSpace(b, i+1)
		vEnd, good := skipValue(b, i)
		if !good {
			return r, false
		}
		val := b[i:vEnd]
		switch string(key) {
		case "id":
			r.id = val
		case "ok":
			switch string(val) {
			case "true":
				r.ok = true
			case "false":
				r.ok = false
			default:
				return r, false
			}
			sawOK = true
		case "result":
			r.result = val
		case "error":
			r.errObj = val
		}
		i = skipSpace(b, vEnd)
		if i >= len(b) {
			return r, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return r, false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return r, false
	}
	return r, sawOK
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at b[i].
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	default:
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i, i > start
			}
			i++
		}
		return i, i > start
	}
}

// decodeInt decodes a JSON number result (a plain integer on the fast path).
func decodeInt(raw []byte) (int, error) {
	if n, err := strconv.Atoi(string(raw)); err == nil {
		return n, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, err
	}
	return int(f), nil
}

// decodeBool decodes 1/0 (or true/false) as a bool.
func decodeBool(raw []byte) (bool, error) {
	switch string(raw) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	var f flag
	err := f.UnmarshalJSON(raw)
	return bool(f), err
}

// flag is a 1/0 (or true/false) JSON value.
type flag bool

// UnmarshalJSON accepts any JSON number (non-zero is true) or a boolean.
func (f *flag) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*f = v != 0
	case bool:
		*f = flag(v)
	default:
		return fmt.Errorf("wasmgate: expected 1, 0, true or false, got %s", b)
	}
	return nil
}

// isNull reports whether raw is the JSON null (or absent).
func isNull(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
