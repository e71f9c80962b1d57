package wire

import "fmt"

// MaxDepth is how deeply arrays and objects may nest in a request. The
// parser recurses once per level, so without a bound one line of '[' would
// grow a goroutine stack by about 190 bytes per byte of input (a 1 MiB line
// took ~190 MiB, before authentication), and a line of a few MiB would pass
// Go's 1 GB stack limit and crash the process. No command needs more than a
// few levels; sessions are the deepest legitimate values.
const MaxDepth = 64

// parser is a JSON validator that returns the extent of values. It accepts
// exactly RFC 8259 JSON nested at most maxDepth deep.
type parser struct {
	b        []byte
	i        int
	depth    int // arrays and objects open at p.i
	maxDepth int // 0 or less means MaxDepth
}

// enter counts one more level of nesting, refusing more than maxDepth.
func (p *parser) enter() error {
	limit := p.maxDepth
	if limit <= 0 {
		limit = MaxDepth
	}
	p.depth++
	if p.depth > limit {
		return fmt.Errorf("%w: more than %d levels of nested arrays and objects at byte %d", ErrTooDeep, limit, p.i)
	}
	return nil
}

func (p *parser) errorf(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrNotJSON, what, p.i)
}

func (p *parser) space() {
	// Locals, not p.i and p.b: the loop then stays in registers. Most calls
	// find no space at all.
	b, i := p.b, p.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	p.i = i
}

func (p *parser) atEnd() bool {
	p.space()
	return p.i == len(p.b)
}

// object parses {"k": v, ...} at p.i, calling visit (if not nil) with each
// member's key, without its quotes and undecoded, and raw value.
func (p *parser) object(visit func(key, value []byte)) error {
	if err := p.enter(); err != nil {
		return err
	}
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return nil
	}
	for {
		p.space()
		key, err := p.stringRaw()
		if err != nil {
			return err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return p.errorf("expected ':'")
		}
		p.i++
		p.space()
		v, err := p.value()
		if err != nil {
			return err
		}
		if visit != nil {
			visit(key[1:len(key)-1], v)
		}
		p.space()
		if p.i >= len(p.b) {
			return p.errorf("unterminated object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			p.depth-- // an error anywhere ends the parse, so only success unwinds
			return nil
		default:
			return p.errorf("expected ',' or '}'")
		}
	}
}

// value parses any JSON value at p.i and returns its bytes.
func (p *parser) value() ([]byte, error) {
	if p.i >= len(p.b) {
		return nil, p.errorf("expected a value")
	}
	start := p.i
	var err error
	switch c := p.b[p.i]; {
	case c == '"':
		_, err = p.stringRaw()
	case c == '{':
		err = p.object(nil)
	case c == '[':
		err = p.array()
	case c == 't':
		err = p.literal("true")
	case c == 'f':
		err = p.literal("false")
	case c == 'n':
		err = p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		err = p.number()
	default:
		err = p.errorf("unexpected character")
	}
	if err != nil {
		return nil, err
	}
	return p.b[start:p.i], nil
}

func (p *parser) array() error {
	if err := p.enter(); err != nil {
		return err
	}
	p.i++ // [
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return nil
	}
	for {
		p.space()
		if _, err := p.value(); err != nil {
			return err
		}
		p.space()
		if p.i >= len(p.b) {
			return p.errorf("unterminated array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			p.depth--
			return nil
		default:
			return p.errorf("expected ',' or ']'")
		}
	}
}

func (p *parser) literal(word string) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return p.errorf("bad literal")
	}
	p.i += len(word)
	return nil
}

func (p *parser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *parser) number() error {
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if p.digits() == 0 {
		return p.errorf("bad number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return p.errorf("bad fraction")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return p.errorf("bad exponent")
		}
	}
	return nil
}

// stringRaw parses a string at p.i and returns it with its quotes.
func (p *parser) stringRaw() ([]byte, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, p.errorf("expected a string")
	}
	start := p.i
	p.i++
	for p.i < len(p.b) {
		// Skip plain bytes with locals (kept in registers), then look at
		// the byte that stopped the run.
		b, i := p.b, p.i
		for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
			i++
		}
		p.i = i
		if i == len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			p.i++
			return p.b[start:p.i], nil
		case c == '\\':
			if err := p.escape(); err != nil {
				return nil, err
			}
		default:
			return nil, p.errorf("control character in string")
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *parser) escape() error {
	p.i++ // backslash
	if p.i >= len(p.b) {
		return p.errorf("unterminated escape")
	}
	switch p.b[p.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		p.i++
		return nil
	case 'u':
		if len(p.b)-p.i < 5 {
			return p.errorf("short \\u escape")
		}
		for _, h := range p.b[p.i+1 : p.i+5] {
			if !isHex(h) {
				return p.errorf("bad \\u escape")
			}
		}
		p.i += 5
		return nil
	}
	return p.errorf("bad escape")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
