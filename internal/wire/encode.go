package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendOK appends {"id":…,"ok":true,"result":…} and a newline. id is the
// request's raw id (nil: omitted). result is encoded by AppendValue.
func AppendOK(dst, id []byte, result any) []byte {
	dst = appendHead(dst, id)
	dst = append(dst, `"ok":true,"result":`...)
	dst = AppendValue(dst, result)
	return append(dst, '}', '\n')
}

// AppendError appends {"id":…,"ok":false,"error":{"code":…,"message":…}}
// and a newline.
func AppendError(dst, id []byte, code, message string) []byte {
	dst = appendHead(dst, id)
	dst = append(dst, `"ok":false,"error":{"code":`...)
	dst = AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, message)
	return append(dst, '}', '}', '\n')
}

func appendHead(dst, id []byte) []byte {
	dst = append(dst, '{')
	if id != nil {
		dst = append(dst, `"id":`...)
		dst = append(dst, id...)
		dst = append(dst, ',')
	}
	return dst
}

// AppendValue appends v as JSON, with fast paths for the result types the
// commands return most.
func AppendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case string:
		return AppendString(dst, x)
	case []string:
		return AppendStrings(dst, x)
	case json.RawMessage:
		return append(dst, x...)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// AppendStrings appends ss as a JSON array of strings ("[]" for nil).
func AppendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Control characters, '"' and '\'
// are escaped; invalid UTF-8 becomes U+FFFD, as encoding/json does, so the
// output is always valid JSON (strconv.AppendQuote's is not).
func AppendString[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		end := min(i+utf8.UTFMax, len(s))
		r, size := utf8.DecodeRuneInString(string(s[i:end]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
