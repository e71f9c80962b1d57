package gateway

import "strings"

// Handshake is the WebSocket upgrade request an OnHandshake callback decides
// on.
type Handshake struct {
	// ClientID is the id the client will have if accepted: 20 lower-case hex
	// digits, opaque.
	ClientID string
	// Method is the HTTP method, normally "GET".
	Method string
	// Path is the request path, such as "/chat".
	Path string
	// Query is the raw query string, without the leading '?'.
	Query string
	// RemoteAddr is the peer's address as "ip:port".
	RemoteAddr string
	// Headers holds the request headers as name/value pairs in request
	// order; names are lower case and may repeat.
	Headers [][2]string
}

// Header returns the value of the first header named name (matched without
// regard to case), or "" if there is none.
func (h Handshake) Header(name string) string {
	v, _ := h.LookupHeader(name)
	return v
}

// LookupHeader returns the value of the first header named name (matched
// without regard to case) and whether it was present.
func (h Handshake) LookupHeader(name string) (string, bool) {
	name = strings.ToLower(name)
	for _, kv := range h.Headers {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// HeaderValues returns the values of every header named name (matched without
// regard to case), in request order.
func (h Handshake) HeaderValues(name string) []string {
	name = strings.ToLower(name)
	var out []string
	for _, kv := range h.Headers {
		if kv[0] == name {
			out = append(out, kv[1])
		}
	}
	return out
}

// QueryValue returns the first value of the query parameter key, decoded
// like a form value ('+' is a space, %XX an escaped byte), or "" if it is
// absent or badly escaped.
func (h Handshake) QueryValue(key string) string {
	v, _ := h.LookupQuery(key)
	return v
}

// LookupQuery returns the first value of the query parameter key, decoded
// like a form value, and whether it was present (and correctly escaped).
func (h Handshake) LookupQuery(key string) (string, bool) {
	q := h.Query
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(part, "=")
		if k, ok := unescape(k); !ok || k != key {
			continue
		}
		return unescape(v)
	}
	return "", false
}

// unescape decodes a form-encoded query component.
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseHandshake decodes the on_handshake input list. It copies everything
// it keeps.
func parseHandshake(b []byte) (Handshake, bool) {
	f, ok := decodeList(b)
	if !ok || len(f) < 5 {
		return Handshake{}, false
	}
	h := Handshake{ClientID: f[0], Method: f[1], Path: f[2], Query: f[3], RemoteAddr: f[4]}
	if n := (len(f) - 5) / 2; n > 0 {
		h.Headers = make([][2]string, n)
		for i := range h.Headers {
			h.Headers[i] = [2]string{f[5+2*i], f[6+2*i]}
		}
	}
	return h, true
}
