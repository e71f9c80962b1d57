package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/wasmgate/wasmgate/abi"
)

// MergeSession returns dst with patch merged in, as PHP's
// array_replace_recursive does for a session: every key of patch replaces
// dst's, except that when both values are JSON objects they are merged
// recursively. A null in patch sets the key to null (it does not delete it).
// Unlike PHP, arrays are not merged index by index: a JSON array in patch
// replaces dst's value whole, which is what a JSON author expects.
//
// It is pure: neither argument is modified. The result may share unchanged
// nested values with both, so callers must treat stored sessions as
// immutable.
func MergeSession(dst, patch map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(patch))
	for k, v := range dst {
		out[k] = v
	}
	for k, pv := range patch {
		pm, pIsObj := pv.(map[string]any)
		dm, dIsObj := out[k].(map[string]any)
		if pIsObj && dIsObj {
			out[k] = MergeSession(dm, pm)
			continue
		}
		out[k] = pv
	}
	return out
}

// decodeSessionJSON parses b, which must be exactly one JSON object (white
// space around it allowed). Numbers are kept as json.Number so that they
// round-trip exactly. Anything else is abi.ErrnoInvalid.
func decodeSessionJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("session: %v: %w", err, abi.ErrnoInvalid)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("session: data after the JSON object: %w", abi.ErrnoInvalid)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("session: not a JSON object: %w", abi.ErrnoInvalid)
	}
	return obj, nil
}

// encodeSessionJSON encodes a session as compact JSON with sorted keys and
// without HTML escaping; nil or empty is "{}".
func encodeSessionJSON(s map[string]any) ([]byte, error) {
	if len(s) == 0 {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("session: %v: %w", err, abi.ErrnoInternal)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// longSessionKey returns the first key of v (a decoded session value, at any
// depth) longer than max bytes, or "".
func longSessionKey(v any, max int) string {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if len(k) > max {
				return k
			}
			if long := longSessionKey(e, max); long != "" {
				return long
			}
		}
	case []any:
		for _, e := range v {
			if long := longSessionKey(e, max); long != "" {
				return long
			}
		}
	}
	return ""
}

// CheckName refuses an empty uid or group name (abi.ErrnoInvalid), or one
// longer than MaxNameBytes (abi.ErrnoTooLarge). Every Registry
// implementation checks names with it, so they refuse the same names the
// same way.
func (l Limits) CheckName(what, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s: %w", what, abi.ErrnoInvalid)
	}
	if max := l.MaxNameBytes; max > 0 && len(name) > max {
		return fmt.Errorf("%s of %d bytes exceeds max_name_bytes %d: %w", what, len(name), max, abi.ErrnoTooLarge)
	}
	return nil
}

// DecodeSession decodes a session or session patch a handler or backend
// gave: a JSON object whose keys are within the name limit. Every Registry
// implementation decodes with it, so they refuse the same input the same way.
func (l Limits) DecodeSession(b []byte) (map[string]any, error) {
	obj, err := decodeSessionJSON(b)
	if err != nil {
		return nil, err
	}
	if max := l.MaxNameBytes; max > 0 {
		if k := longSessionKey(obj, max); k != "" {
			return nil, fmt.Errorf("session: key of %d bytes exceeds max_name_bytes %d: %w", len(k), max, abi.ErrnoTooLarge)
		}
	}
	return obj, nil
}

// EncodeSession encodes a session about to be stored for client id and
// checks it against the session size limit. The encoding is compact and its
// keys sorted, so every Registry implementation stores the same bytes.
func (l Limits) EncodeSession(id string, s map[string]any) ([]byte, error) {
	enc, err := encodeSessionJSON(s)
	if err != nil {
		return nil, err
	}
	if max := l.MaxSessionBytes; max > 0 && len(enc) > max {
		return nil, fmt.Errorf("session: client %q's session would be %d bytes, over max_session_bytes %d: %w", id, len(enc), max, abi.ErrnoLimit)
	}
	return enc, nil
}

// DecodeStoredSession decodes a session as stored (EncodeSession's output)
// to merge a patch into it.
func DecodeStoredSession(b []byte) (map[string]any, error) { return decodeSessionJSON(b) }
