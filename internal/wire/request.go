// Package wire parses and encodes the backend push protocol: one JSON
// object per line (text port) or per HTTP body. It does no I/O.
//
// Parsing is a single pass over the line that records where each known
// top-level field's value starts and ends; values are decoded only when a
// command asks for them. Fields the command set does not use are skipped (a
// seed-protocol line may carry anything). The slices in a Request alias the
// input, which must not change while the Request is in use.
package wire

import (
	"errors"
	"fmt"
)

// ErrNotJSON means the input is not well-formed JSON.
var ErrNotJSON = errors.New("not valid JSON")

// ErrTooDeep means the input nests arrays and objects more than MaxDepth
// levels deep. It is refused before being parsed further, so that a nesting
// bomb costs no more than a flat line of the same length.
var ErrTooDeep = errors.New("JSON nested too deeply")

// ErrNotObject means the input is JSON but not an object.
var ErrNotObject = errors.New("not a JSON object")

// Request holds the raw JSON value of each field the command set knows;
// a nil slice means the field is absent.
type Request struct {
	ID, Cmd, Data, Binary, ClientID, Uid, Group  []byte
	ClientIDArray, ExcludeClientID, Uids, Groups []byte
	Session, Secret                              []byte
	Code                                         []byte // close_client's close code, a JSON number
}

// field returns where the value of key goes, or nil for keys not used.
func (r *Request) field(key []byte) *[]byte {
	switch string(key) { // the compiler does not allocate for this conversion
	case "id":
		return &r.ID
	case "cmd":
		return &r.Cmd
	case "data":
		return &r.Data
	case "binary":
		return &r.Binary
	case "client_id":
		return &r.ClientID
	case "uid":
		return &r.Uid
	case "group":
		return &r.Group
	case "client_id_array":
		return &r.ClientIDArray
	case "exclude_client_id":
		return &r.ExcludeClientID
	case "uids":
		return &r.Uids
	case "groups":
		return &r.Groups
	case "code":
		return &r.Code
	case "session":
		return &r.Session
	case "secret":
		return &r.Secret
	}
	return nil
}

// Parse fills r from one JSON object. The whole input is validated, and
// may nest at most MaxDepth deep. A key given twice keeps its last value, as
// encoding/json does.
func Parse(line []byte, r *Request) error {
	*r = Request{}
	return Fields(line, MaxDepth, func(key, value []byte) {
		if dst := r.field(key); dst != nil {
			*dst = value
		}
	})
}

// Fields validates one JSON object and calls fn with each member, in
// order: the key as written between its quotes (escapes are not decoded)
// and the raw value, which aliases b. Arrays and objects may nest at most
// maxDepth levels (0: MaxDepth), b's own braces included (ErrTooDeep); another JSON value
// than an object is ErrNotObject. Members already visited when an error is
// found have been passed to fn.
//
// Parse reads requests with it, and the Go client reads answers with it:
// the one JSON scanner of the push protocol.
func Fields(b []byte, maxDepth int, fn func(key, value []byte)) error {
	p := parser{b: b, maxDepth: maxDepth}
	p.space()
	if p.i >= len(p.b) {
		return ErrNotJSON
	}
	if p.b[p.i] != '{' {
		if _, err := p.value(); errors.Is(err, ErrTooDeep) {
			return err
		} else if err != nil || !p.atEnd() {
			return ErrNotJSON
		}
		return ErrNotObject
	}
	if err := p.object(fn); err != nil {
		return err
	}
	if !p.atEnd() {
		return fmt.Errorf("%w: data after the object at byte %d", ErrNotJSON, p.i)
	}
	return nil
}
