package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// response is one parsed answer line; its slices point into the line.
type response struct {
	id     []byte // raw JSON of "id", nil if absent
	ok     bool
	result []byte // raw JSON of "result", nil if absent
	errObj []byte // raw JSON of "error", nil if absent
}

// maxAnswerDepth bounds the nesting of an answer the client accepts: that
// of encoding/json, which decodes the results afterwards anyway. It is above
// the server's request limit (wire.MaxDepth) because sessions a handler
// stores may nest deeper than a backend may send.
const maxAnswerDepth = 10000

// parseResponse splits an answer line {"id":…,"ok":…,"result"|"error":…}
// into its parts without allocating, with the server's own scanner
// (wire.Fields): keys may come in any order with any whitespace, unknown
// keys are skipped, and the whole line must be valid JSON.
func parseResponse(b []byte) (r response, ok bool) {
	sawOK, good := false, true
	err := wire.Fields(b, maxAnswerDepth, func(key, val []byte) {
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
				good = false
			}
			sawOK = true
		case "result":
			r.result = val
		case "error":
			r.errObj = val
		}
	})
	return r, err == nil && good && sawOK
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
