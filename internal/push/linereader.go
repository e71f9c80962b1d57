package push

import (
	"bytes"
	"errors"
	"net"
	"time"
)

// errLineTooLong reports a request line over push.max_line.
var errLineTooLong = errors.New("line too long")

// lineReader splits a connection into lines without bufio, so that it knows
// whether a line is half-read: only then does a read deadline apply (a
// backend may keep an idle connection open for as long as it likes, but may
// not stall in the middle of a line). The deadline runs from the arrival of
// a line's first byte to its newline, whatever arrives in between: a line
// trickled one byte at a time is cut at lineTimeout like a stalled one.
type lineReader struct {
	conn        net.Conn
	buf         []byte
	start, end  int // unconsumed bytes are buf[start:end]
	nl          int // offset from start of the next newline, -1 if none is buffered
	max         int // longest line; the text port lowers it until a backend authenticates
	lineTimeout time.Duration
	lastRead    time.Time // when the latest bytes arrived
	lineStart   time.Time // when the first buffered, unfinished line began to arrive
	// idleDeadline, when set, bounds the wait for a line's first byte too:
	// the text port gives a peer that has not authenticated until then to
	// send its auth line, so silent connections cannot hold
	// push.max_backends slots for ever.
	idleDeadline time.Time
	// beforeBlock runs before a read that may block: the text port flushes
	// its answers there, so pipelined answers go out in one write.
	beforeBlock func() error
}

// newLineReader reads lines of up to max bytes with a first buffer of
// bufSize bytes (it grows as lines need, up to just over max).
func newLineReader(conn net.Conn, max, bufSize int, lineTimeout time.Duration, beforeBlock func() error) *lineReader {
	return &lineReader{conn: conn, buf: make([]byte, bufSize), nl: -1, max: max, lineTimeout: lineTimeout, beforeBlock: beforeBlock}
}

// buffered reports whether another complete line is already buffered: next
// will return it without reading.
func (r *lineReader) buffered() bool { return r.nl >= 0 }

// next returns the next line without its newline. It aliases the reader's
// buffer and is valid until the next call.
func (r *lineReader) next() ([]byte, error) {
	scanned := 0
	for {
		i := r.nl
		if i < 0 {
			if i = bytes.IndexByte(r.buf[r.start+scanned:r.end], '\n'); i >= 0 {
				i += scanned
			}
		}
		if i >= 0 {
			line := r.buf[r.start : r.start+i]
			r.start += i + 1
			r.nl = bytes.IndexByte(r.buf[r.start:r.end], '\n')
			// Bytes after a newline came with the latest read (next reads
			// only when no newline is buffered): the next line began then.
			r.lineStart = r.lastRead
			if len(line) > r.max {
				return nil, errLineTooLong
			}
			return line, nil
		}
		scanned = r.end - r.start
		if scanned > r.max {
			return nil, errLineTooLong
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more input, making room first.
func (r *lineReader) fill() error {
	if r.start > 0 && r.start == r.end {
		r.start, r.end = 0, 0
	}
	if r.end == len(r.buf) {
		r.makeRoom()
	}
	if err := r.beforeBlock(); err != nil {
		return err
	}
	started := r.end > r.start
	deadline := r.idleDeadline
	if started {
		deadline = r.lineStart.Add(r.lineTimeout)
	}
	if err := r.conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	n, err := r.conn.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		r.lastRead = time.Now()
		if !started {
			r.lineStart = r.lastRead
		}
		return nil
	}
	return err
}

// makeRoom moves pending bytes to the front, or grows the buffer (up to
// just over max) when they already fill it.
func (r *lineReader) makeRoom() {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
		return
	}
	size := min(2*len(r.buf), r.max+2)
	if size <= len(r.buf) {
		size = len(r.buf) + 1
	}
	grown := make([]byte, size)
	copy(grown, r.buf[:r.end])
	r.buf = grown
}
